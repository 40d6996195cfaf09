//! Relay nodes: a local node that mirrors a node of another pubsub service (Roost or not).
//!
//! The service subscribes upstream once, as itself, and republishes every item it is sent
//! on the local node, where local subscribers get it from the local server. N subscribers on
//! this server then cost one server-to-server notification per publish instead of N.
//!
//! The mirror keeps the upstream order and holds no duplicates across its own downtime, the
//! same way `roost-log-sink` does: on every (re)connect it first catches up from the
//! upstream history (XEP-0313 on the node, paged with RSM after the newest local item; a
//! service without node archives is asked for its items instead), holding back the live
//! notifications that arrive meanwhile, then applies those and goes live. An item whose id
//! the mirror already holds with the same payload is not published again, so the overlap
//! between history and live notifications is harmless.
//!
//! Publishing goes through the engine like any request, from the service's own JID (an
//! admin when relays are configured), so the mirror's items are stored before they are
//! announced and a storage failure announces nothing; a failed item is fetched again by the
//! next catch-up.
//!
//! The requests sent upstream are xmpp-parsers' types. What comes back is read as plain
//! elements where it is forwarded: xmpp-parsers 0.23's typed `Message` is bound to
//! `jabber:component:accept` in this crate, while history results forward `jabber:client`
//! messages (or whatever stanza namespace the upstream uses).

use crate::effects::Effects;
use crate::pubsub::serialize_payload;
use minidom::Element;
use roost_nodes::{
    BareJid, Error, Jid, MaxItems, NewItem, NodeConfigPatch, Reply, Request, Service, Store,
};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use tracing::{debug, info, warn};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::mam::{Query, QueryId};
use xmpp_parsers::message::Message;
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::event::{Event as PsEvent, Payload as EventPayload};
use xmpp_parsers::pubsub::pubsub::{Items, PubSub, Subscribe};
use xmpp_parsers::pubsub::NodeName;
use xmpp_parsers::rsm::SetQuery;
use xmpp_parsers::stanza::Stanza;

/// Items asked for per history page.
const PAGE: usize = 250;
/// Live notifications held back while catching up. Past this the held ones are dropped and
/// the catch-up runs once more afterwards: they are in the upstream history anyway.
const MAX_HELD: usize = 50_000;
/// An upstream request unanswered this long counts as failed (the link to the upstream
/// server may be down); the relay starts over after [`RETRY_MS`].
const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// Wait before starting over after a failure.
const RETRY_MS: u64 = 10_000;

/// One mirrored node: local node `local` copies node `node` of service `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySpec {
    /// The NodeID on this service.
    pub local: String,
    /// The upstream pubsub service.
    pub upstream: BareJid,
    /// The NodeID on the upstream service.
    pub node: String,
}

impl FromStr for RelaySpec {
    type Err = String;

    /// `LOCAL=SERVICE/NODE`, e.g. `logs=pubsub.a.example/logs`. The upstream node may
    /// contain `/` (a domain cannot), so the service ends at the first one.
    fn from_str(s: &str) -> Result<Self, String> {
        let (local, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?} is not LOCAL=SERVICE/NODE"))?;
        let (service, node) = rest
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not LOCAL=SERVICE/NODE"))?;
        let (local, service, node) = (local.trim(), service.trim(), node.trim());
        if local.is_empty() || node.is_empty() {
            return Err(format!("{s:?}: empty node name"));
        }
        let upstream: BareJid = service
            .parse()
            .map_err(|e| format!("{s:?}: service {service:?}: {e}"))?;
        Ok(RelaySpec {
            local: local.to_owned(),
            upstream,
            node: node.to_owned(),
        })
    }
}

impl fmt::Display for RelaySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}/{}", self.local, self.upstream, self.node)
    }
}

/// An event from upstream, in the order it arrived.
#[derive(Debug, Clone)]
enum Change {
    Item {
        id: Option<String>,
        payload: Option<Element>,
    },
    Retract(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not started on this connection, or failed and waiting for `retry_at`.
    Idle,
    /// Fetching the upstream history; live changes are held.
    CatchingUp,
    /// Applying live changes as they come.
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Asked {
    Subscribe,
    /// A history page; `after` is the RSM position it started from.
    History {
        queryid: String,
        after: Option<String>,
    },
    Items,
}

struct Relay {
    spec: RelaySpec,
    phase: Phase,
    held: VecDeque<Change>,
    overflowed: bool,
    /// History results of the page in flight.
    page: Vec<Change>,
    retry_at: u64,
}

/// Every configured relay, and the upstream requests in flight.
pub struct Relays {
    relays: Vec<Relay>,
    /// IQ id → (relay index, what was asked, when).
    asked: HashMap<String, (usize, Asked, u64)>,
    next: u64,
    prefix: String,
}

impl Relays {
    /// Relays for `specs`; `prefix` makes this process's IQ ids unique.
    pub fn new(specs: &[RelaySpec], prefix: &str) -> Self {
        Relays {
            relays: specs
                .iter()
                .map(|spec| Relay {
                    spec: spec.clone(),
                    phase: Phase::Idle,
                    held: VecDeque::new(),
                    overflowed: false,
                    page: Vec::new(),
                    retry_at: 0,
                })
                .collect(),
            asked: HashMap::new(),
            next: 0,
            prefix: format!("{prefix}-relay"),
        }
    }

    /// True when no relay is configured.
    pub fn is_empty(&self) -> bool {
        self.relays.is_empty()
    }

    fn new_id(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.prefix, self.next)
    }

    /// On every (re)connect, and after the engine was rebuilt from the store: make sure the
    /// local nodes exist, subscribe upstream (again: repeating a subscription is harmless and
    /// repairs one the upstream lost), and catch up.
    pub fn on_connect<S: Store>(&mut self, svc: &mut Service<S>, me: &Jid, now: u64) -> Effects {
        self.asked.clear();
        let mut out = Effects::none();
        for i in 0..self.relays.len() {
            out.extend(self.start(i, svc, me, now));
        }
        out
    }

    /// Time-driven work: requests that were never answered, and relays waiting to retry.
    pub fn tick<S: Store>(&mut self, svc: &mut Service<S>, me: &Jid, now: u64) -> Effects {
        let expired: Vec<String> = self
            .asked
            .iter()
            .filter(|(_, (_, _, at))| now.saturating_sub(*at) >= REQUEST_TIMEOUT_MS)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some((i, asked, _)) = self.asked.remove(&id) {
                warn!(relay = %self.relays[i].spec, ?asked, "upstream did not answer within {} s; starting over", REQUEST_TIMEOUT_MS / 1000);
                self.fail(i, now);
            }
        }
        let mut out = Effects::none();
        for i in 0..self.relays.len() {
            let r = &self.relays[i];
            if r.phase == Phase::Idle && r.retry_at != 0 && now >= r.retry_at {
                out.extend(self.start(i, svc, me, now));
            }
        }
        out
    }

    fn fail(&mut self, i: usize, now: u64) {
        self.asked.retain(|_, (j, _, _)| *j != i);
        let r = &mut self.relays[i];
        r.phase = Phase::Idle;
        r.held.clear();
        r.page.clear();
        r.overflowed = false;
        r.retry_at = now + RETRY_MS;
    }

    fn start<S: Store>(&mut self, i: usize, svc: &mut Service<S>, me: &Jid, now: u64) -> Effects {
        let mut out = Effects::none();
        let spec = self.relays[i].spec.clone();
        match svc.handle(
            me,
            Request::Create {
                node: Some(spec.local.clone()),
                // A mirror keeps as much of the upstream history as this service allows;
                // the default publish model (publishers) leaves publishing to the relay.
                // An owner may reconfigure it afterwards.
                config: Some(NodeConfigPatch {
                    max_items: Some(MaxItems::Max),
                    ..NodeConfigPatch::default()
                }),
            },
            now,
        ) {
            Ok(_) => info!(relay = %spec, "created the local node of the relay"),
            Err(Error::NodeExists) => {}
            Err(e) => {
                out.engine_error(&e);
                warn!(relay = %spec, "cannot create the local node ({e}); retrying in {} s", RETRY_MS / 1000);
                self.fail(i, now);
                return out;
            }
        }
        {
            let r = &mut self.relays[i];
            r.phase = Phase::CatchingUp;
            r.held.clear();
            r.page.clear();
            r.overflowed = false;
            r.retry_at = 0;
        }
        let id = self.new_id();
        out.stanzas.push(iq_set(
            me,
            &spec.upstream,
            &id,
            PubSub::Subscribe {
                subscribe: Some(Subscribe {
                    jid: Jid::from(me.to_bare()),
                    node: Some(NodeName(spec.node.clone())),
                }),
                options: None,
            }
            .into(),
        ));
        self.asked.insert(id, (i, Asked::Subscribe, now));
        let after = newest_local(svc, me, &spec.local, now);
        out.stanzas.push(self.ask_history(i, me, after, now));
        out
    }

    fn ask_history(&mut self, i: usize, me: &Jid, after: Option<String>, now: u64) -> Stanza {
        let id = self.new_id();
        let queryid = id.clone();
        let spec = &self.relays[i].spec;
        let query = Query {
            queryid: Some(QueryId(queryid.clone())),
            node: Some(NodeName(spec.node.clone())),
            form: None,
            set: Some(SetQuery {
                max: Some(PAGE),
                after: after.clone(),
                before: None,
                index: None,
            }),
            flip_page: false,
        };
        let st = iq_set(me, &spec.upstream, &id, query.into());
        self.asked
            .insert(id, (i, Asked::History { queryid, after }, now));
        st
    }

    fn ask_items(&mut self, i: usize, me: &Jid, now: u64) -> Stanza {
        let id = self.new_id();
        let spec = &self.relays[i].spec;
        let st = Iq::Get {
            from: Some(me.clone()),
            to: Some(Jid::from(spec.upstream.clone())),
            id: id.clone(),
            payload: PubSub::Items(Items::new(&spec.node)).into(),
        }
        .into();
        self.asked.insert(id, (i, Asked::Items, now));
        st
    }

    /// A message to the service: a notification from an upstream node or a history result.
    /// `None` when it is neither, for the caller's other handlers.
    pub fn handle_message<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        me: &Jid,
        m: &Message,
        now: u64,
    ) -> Option<Effects> {
        if self.relays.is_empty() {
            return None;
        }
        let from = m.from.as_ref()?.to_bare();
        for p in &m.payloads {
            if p.is("result", ns::MAM) {
                let queryid = p.attr("queryid")?;
                let i = self.asked.values().find_map(|(i, a, _)| match a {
                    Asked::History { queryid: q, .. } if q == queryid => Some(*i),
                    _ => None,
                })?;
                if self.relays[i].spec.upstream != from {
                    return None;
                }
                let changes = forwarded_changes(p, &self.relays[i].spec.node);
                self.relays[i].page.extend(changes);
                return Some(Effects::none());
            }
            if p.is("event", ns::PUBSUB_EVENT) {
                let ev = match PsEvent::try_from(p.clone()) {
                    Ok(ev) => ev,
                    Err(e) => {
                        debug!(%from, "unreadable event: {e}");
                        return None;
                    }
                };
                let EventPayload::Items {
                    node,
                    published,
                    retracted,
                } = ev.payload
                else {
                    return None;
                };
                let i = self
                    .relays
                    .iter()
                    .position(|r| r.spec.upstream == from && r.spec.node == node.0)?;
                let mut changes: Vec<Change> = published
                    .into_iter()
                    .map(|it| Change::Item {
                        id: it.id.map(|i| i.0),
                        payload: it.payload,
                    })
                    .collect();
                changes.extend(retracted.into_iter().map(|id| Change::Retract(id.0)));
                return Some(self.live(i, svc, me, changes, now));
            }
        }
        None
    }

    fn live<S: Store>(
        &mut self,
        i: usize,
        svc: &mut Service<S>,
        me: &Jid,
        changes: Vec<Change>,
        now: u64,
    ) -> Effects {
        let r = &mut self.relays[i];
        match r.phase {
            Phase::Live => apply(svc, me, &r.spec, changes, now),
            Phase::CatchingUp => {
                if r.held.len() + changes.len() > MAX_HELD {
                    if !r.overflowed {
                        warn!(relay = %r.spec, "more than {MAX_HELD} live items during catch-up; they will come from the history instead");
                    }
                    r.overflowed = true;
                    r.held.clear();
                } else {
                    r.held.extend(changes);
                }
                Effects::none()
            }
            // Not subscribed as far as this connection knows: what arrives is in the
            // history the next start fetches.
            Phase::Idle => Effects::none(),
        }
    }

    /// A result or error IQ. `None` when it answers nothing the relays asked.
    pub fn handle_iq_response<S: Store>(
        &mut self,
        svc: &mut Service<S>,
        me: &Jid,
        iq: &Iq,
        now: u64,
    ) -> Option<Effects> {
        let (id, result) = match iq {
            Iq::Result { id, payload, .. } => (id, Ok(payload.as_ref())),
            Iq::Error { id, error, .. } => (id, Err(error)),
            _ => return None,
        };
        let (i, asked, _) = self.asked.remove(id)?;
        let spec = self.relays[i].spec.clone();
        let mut out = Effects::none();
        match (asked, result) {
            (Asked::Subscribe, Ok(payload)) => {
                let state = payload
                    .and_then(|p| p.get_child("subscription", ns::PUBSUB))
                    .and_then(|s| s.attr("subscription"))
                    .unwrap_or("subscribed");
                if state == "subscribed" {
                    info!(relay = %spec, "subscribed upstream");
                } else {
                    warn!(relay = %spec, "upstream subscription is {state}: an owner of the upstream node must approve {me}");
                }
            }
            (Asked::Subscribe, Err(e)) => {
                warn!(relay = %spec, "upstream refused the subscription ({:?}: {}); make {me} allowed to subscribe there; retrying in {} s",
                    e.defined_condition, e.texts.values().next().map(String::as_str).unwrap_or(""), RETRY_MS / 1000);
                self.fail(i, now);
            }
            (Asked::History { after, .. }, Ok(payload)) => {
                let page = std::mem::take(&mut self.relays[i].page);
                let last = page.iter().rev().find_map(|c| match c {
                    Change::Item { id: Some(id), .. } => Some(id.clone()),
                    _ => None,
                });
                let fin = payload.filter(|p| p.is("fin", ns::MAM));
                let complete = fin
                    .map(|f| f.attr("complete") == Some("true"))
                    .unwrap_or(true);
                let n = page.len();
                out.extend(apply(svc, me, &spec, page, now));
                if out.storage_failed {
                    self.fail(i, now);
                    return Some(out);
                }
                if complete || last.is_none() {
                    debug!(relay = %spec, items = n, "history caught up");
                    out.extend(self.go_live(i, svc, me, now));
                } else {
                    debug!(relay = %spec, items = n, "history page applied");
                    out.stanzas
                        .push(self.ask_history(i, me, last.or(after), now));
                }
            }
            (
                Asked::History {
                    after: Some(after), ..
                },
                Err(e),
            ) if e.defined_condition
                == xmpp_parsers::stanza_error::DefinedCondition::ItemNotFound =>
            {
                // The newest local item is gone upstream (trimmed): take all the upstream
                // still has; what the mirror holds already is skipped.
                info!(relay = %spec, "item {after} no longer upstream; fetching the whole upstream history");
                self.relays[i].page.clear();
                out.stanzas.push(self.ask_history(i, me, None, now));
            }
            (Asked::History { .. }, Err(e)) => {
                info!(relay = %spec, "upstream has no node history ({:?}); catching up from its items", e.defined_condition);
                self.relays[i].page.clear();
                out.stanzas.push(self.ask_items(i, me, now));
            }
            (Asked::Items, Ok(payload)) => {
                let changes = payload
                    .and_then(|p| p.get_child("items", ns::PUBSUB))
                    .map(|items| item_changes(items, ns::PUBSUB))
                    .unwrap_or_default();
                out.extend(apply(svc, me, &spec, changes, now));
                if out.storage_failed {
                    self.fail(i, now);
                    return Some(out);
                }
                out.extend(self.go_live(i, svc, me, now));
            }
            (Asked::Items, Err(e)) => {
                warn!(relay = %spec, "upstream refused its items ({:?}); retrying in {} s", e.defined_condition, RETRY_MS / 1000);
                self.fail(i, now);
            }
        }
        Some(out)
    }

    fn go_live<S: Store>(&mut self, i: usize, svc: &mut Service<S>, me: &Jid, now: u64) -> Effects {
        let r = &mut self.relays[i];
        if r.overflowed {
            // Live items were dropped while catching up: one more round from the history.
            r.overflowed = false;
            let after = newest_local(svc, me, &r.spec.local, now);
            let mut out = Effects::none();
            out.stanzas.push(self.ask_history(i, me, after, now));
            return out;
        }
        let held: Vec<Change> = r.held.drain(..).collect();
        r.phase = Phase::Live;
        info!(relay = %r.spec, held = held.len(), "relay live");
        let out = apply(svc, me, &r.spec, held, now);
        if out.storage_failed {
            self.fail(i, now);
        }
        out
    }
}

/// The id of the newest item of local node `node`, where the history catch-up resumes.
fn newest_local<S: Store>(svc: &mut Service<S>, me: &Jid, node: &str, now: u64) -> Option<String> {
    match svc.handle(
        me,
        Request::Items {
            node: node.to_owned(),
            max_items: Some(1),
            ids: Vec::new(),
            subid: None,
        },
        now,
    ) {
        Ok(o) => match o.reply {
            Reply::Items { items, .. } => items.into_iter().last().map(|it| it.id),
            _ => None,
        },
        Err(_) => None,
    }
}

/// Republish `changes` on the relay's local node, in order, skipping items it already holds
/// with the same payload.
fn apply<S: Store>(
    svc: &mut Service<S>,
    me: &Jid,
    spec: &RelaySpec,
    changes: Vec<Change>,
    now: u64,
) -> Effects {
    let mut out = Effects::none();
    for c in changes {
        let req = match c {
            Change::Item { id, payload } => {
                let payload = payload.as_ref().map(serialize_payload);
                if let Some(id) = &id {
                    if holds(svc, me, &spec.local, id, payload.as_deref(), now) {
                        continue;
                    }
                }
                Request::Publish {
                    node: spec.local.clone(),
                    item: Some(NewItem { id, payload }),
                    options: None,
                }
            }
            Change::Retract(id) => Request::Retract {
                node: spec.local.clone(),
                ids: vec![id],
                notify: true,
            },
        };
        match svc.handle(me, req, now) {
            Ok(o) => out.notify(o.notifications),
            Err(Error::ItemNotFound) => {}
            Err(e) => {
                if out.engine_error(&e) {
                    // Stop here: the next catch-up resumes after the newest item stored.
                    warn!(relay = %spec, "storing a relayed change failed: {e}");
                    return out;
                }
                warn!(relay = %spec, "relayed change refused locally: {e}");
            }
        }
    }
    out
}

fn holds<S: Store>(
    svc: &mut Service<S>,
    me: &Jid,
    node: &str,
    id: &str,
    payload: Option<&str>,
    now: u64,
) -> bool {
    match svc.handle(
        me,
        Request::Items {
            node: node.to_owned(),
            max_items: None,
            ids: vec![id.to_owned()],
            subid: None,
        },
        now,
    ) {
        Ok(o) => match o.reply {
            Reply::Items { items, .. } => items
                .iter()
                .any(|it| it.id == id && it.payload == payload.unwrap_or("")),
            _ => false,
        },
        Err(_) => false,
    }
}

/// The changes in a history `<result/>`: the forwarded message's `<event/>` for `node`.
fn forwarded_changes(result: &Element, node: &str) -> Vec<Change> {
    let Some(fwd) = result.get_child("forwarded", ns::FORWARD) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // The forwarded message is in whatever stanza namespace the sender used.
    for msg in fwd.children().filter(|c| c.name() == "message") {
        for ev in msg.children().filter(|c| c.is("event", ns::PUBSUB_EVENT)) {
            for items in ev
                .children()
                .filter(|c| c.is("items", ns::PUBSUB_EVENT) && c.attr("node") == Some(node))
            {
                out.extend(item_changes(items, ns::PUBSUB_EVENT));
            }
        }
    }
    out
}

/// `<item/>` and `<retract/>` children of an `<items/>` element in namespace `ns`.
fn item_changes(items: &Element, ns: &str) -> Vec<Change> {
    items
        .children()
        .filter_map(|c| {
            if c.is("item", ns) {
                Some(Change::Item {
                    id: c.attr("id").map(str::to_owned),
                    payload: c.children().next().cloned(),
                })
            } else if c.is("retract", ns) {
                c.attr("id").map(|id| Change::Retract(id.to_owned()))
            } else {
                None
            }
        })
        .collect()
}

fn iq_set(me: &Jid, to: &BareJid, id: &str, payload: Element) -> Stanza {
    Iq::Set {
        from: Some(me.clone()),
        to: Some(Jid::from(to.clone())),
        id: id.to_owned(),
        payload,
    }
    .into()
}

#[cfg(test)]
mod tests;
