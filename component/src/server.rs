//! The service loop: one task owns the link and the engine.
//!
//! One task drives everything because the engine is synchronous and its store calls are
//! short: a request is parsed, decided, committed and answered before the next one is read,
//! which gives FIFO order per publisher without locks.

use crate::link::{self, Backoff, Link, LinkError, LinkWriter, StanzaEncoder};
use crate::presence;
use crate::privilege::{self, Privileges, RosterFetches, Waiting};
use crate::pubsub::{self, IqKind, NotificationRenderer};
use crate::quota::Quotas;
use crate::relay::{self, Relays};
use crate::Config;
use futures::{FutureExt, SinkExt, StreamExt};
use minidom::Element;
use roost_nodes::{BareJid, Dispatch, Jid, Service, Store};
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio_xmpp::xmlstream::ReadError;
use tracing::{debug, error, info, trace, warn};
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};
use xmpp_parsers::version::VersionResult;

const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_PING: &str = "urn:xmpp:ping";
const NS_VERSION: &str = "jabber:iq:version";

/// Why the service loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The link cannot be established with this configuration.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// How one connected session ended.
enum SessionEnd {
    Shutdown,
    Disconnected(String),
}

/// Rebuilds the engine from what the store holds durably, after a storage failure: given the
/// failed engine (so that it can release the store first), returns a fresh one.
pub type Recover<S> = Box<dyn FnMut(&mut Service<S>) -> Result<Service<S>, String>>;

/// Least time between two recovery attempts while the store stays broken (e.g. the disk is
/// still full): reopening reloads every node, too costly to do per batch under a flood.
const RECOVERY_INTERVAL_MS: u64 = 1_000;

/// Roost's stanza handling over one engine.
pub struct Roost<S: Store> {
    service: Service<S>,
    jid: Jid,
    server_domain: String,
    id_prefix: String,
    next_id: u64,
    quotas: Option<Quotas>,
    recover: Option<Recover<S>>,
    /// A storage call failed in the current batch: memory may be ahead of the disk.
    storage_failed: bool,
    /// The engine must not be used until it is rebuilt from the store: after a failed sync
    /// its memory holds changes that may never reach the disk, and serving them (or
    /// building on them) would acknowledge what a restart forgets.
    degraded: bool,
    last_recovery_ms: u64,
    /// When the current session began, until the presence probes sent then have had time
    /// to be answered (see [`PROBE_GRACE_MS`]).
    probing_since_ms: Option<u64>,
    /// The engine was rebuilt from the store and so forgot every presence: probe again.
    reprobe: bool,
    /// Relay nodes: mirrors of nodes of other pubsub services.
    relays: Relays,
    /// What the server lets the service do on this connection (XEP-0356).
    privileges: Privileges,
    /// Roster fetches in flight, and requests waiting for them.
    fetches: RosterFetches,
    /// Notifications of the stanza being handled, sent after its other stanzas (see
    /// [`Roost::take_outgoing`]).
    deferred: Vec<Dispatch>,
    /// Serializes notifications once per event rather than once per recipient.
    renderer: NotificationRenderer,
}

/// One thing to write once the batch is durable.
// The stanza variant is large, but a batch held `Stanza`s by value before too; boxing would
// add an allocation per reply.
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    /// A reply, a presence, a ping.
    Stanza(Stanza),
    /// The notifications one stanza caused, in order. They stay engine values until written,
    /// so that the message for one event is built and serialized once for all recipients,
    /// and a fan-out's recipients are walked as they are written (see
    /// [`Roost::write_outgoing`]).
    Notifications(VecDeque<Dispatch>),
}

/// How long after a (re)connect answers to probes are taken as resources that were online
/// all along rather than coming online (no `on_sub_and_presence` item is sent again).
const PROBE_GRACE_MS: u64 = 10_000;

impl<S: Store> Roost<S> {
    /// Wrap an engine for the component domain of `cfg`.
    pub fn new(service: Service<S>, cfg: &Config) -> Self {
        let started = now_millis();
        let id_prefix = format!("roost-{started:x}");
        Roost {
            relays: Relays::new(&cfg.relays, &id_prefix),
            service,
            jid: Jid::from(cfg.jid.clone()),
            server_domain: cfg.server_domain(),
            // Ids must not repeat across restarts, or a client could match a new stanza to an
            // old one; the start time makes the prefix unique per process.
            id_prefix,
            next_id: 0,
            quotas: cfg.rate_limit.map(Quotas::new),
            recover: None,
            storage_failed: false,
            degraded: false,
            last_recovery_ms: 0,
            probing_since_ms: None,
            reprobe: false,
            privileges: Privileges::default(),
            fetches: RosterFetches::default(),
            deferred: Vec::new(),
            renderer: NotificationRenderer::default(),
        }
    }

    /// Keep notifications to send after the stanzas being returned (see
    /// [`Roost::take_outgoing`]).
    fn defer<N: Into<Dispatch>>(&mut self, notifications: impl IntoIterator<Item = N>) {
        self.deferred
            .extend(notifications.into_iter().map(Into::into));
    }

    /// Append `stanzas` (returned by [`Roost::handle_element`] or [`Roost::tick`]) to `out`,
    /// then the notifications the same call produced: replies go out before the
    /// notifications of the same request, as they did when both were stanzas.
    pub fn take_outgoing(&mut self, stanzas: Vec<Stanza>, out: &mut VecDeque<Outgoing>) {
        out.extend(stanzas.into_iter().map(Outgoing::Stanza));
        if !self.deferred.is_empty() {
            // From a Vec without copying: the notifications are taken from the front as
            // they are written, a chunk at a time.
            out.push_back(Outgoing::Notifications(VecDeque::from(std::mem::take(
                &mut self.deferred,
            ))));
        }
    }

    /// Serialize the front of `out` into the writer's batch buffer until it holds `budget`
    /// bytes or `out` is empty; notifications get their message ids here. A stanza that
    /// cannot be serialized is logged and left out.
    pub fn write_outgoing(
        &mut self,
        out: &mut VecDeque<Outgoing>,
        w: &mut LinkWriter,
        budget: usize,
    ) {
        self.fill(out, &mut w.encoder, &mut w.buf, budget);
    }

    /// [`Roost::write_outgoing`] into any buffer. A fan-out is walked [`WALK_CHUNK`]
    /// recipients at a time as its messages are rendered, so the first chunk goes out
    /// before the last recipients are even looked up.
    fn fill(
        &mut self,
        out: &mut VecDeque<Outgoing>,
        enc: &mut StanzaEncoder,
        buf: &mut Vec<u8>,
        budget: usize,
    ) {
        let mut walked = Vec::new();
        while buf.len() < budget {
            match out.front_mut() {
                None => return,
                Some(Outgoing::Notifications(ns)) => {
                    while buf.len() < budget {
                        match ns.front() {
                            None => break,
                            Some(Dispatch::Fanout(f)) => {
                                if self.service.walk(f, WALK_CHUNK, &mut walked) {
                                    ns.pop_front();
                                }
                            }
                            Some(Dispatch::One(_)) => {
                                if let Some(Dispatch::One(n)) = ns.pop_front() {
                                    walked.push(n);
                                }
                            }
                        }
                        for n in walked.drain(..) {
                            let id = self.new_id();
                            trace!(to = %n.to, node = %n.node, id, "out notification");
                            if let Err(e) = self.renderer.render(&n, &self.jid, &id, enc, buf) {
                                error!(to = %n.to, "notification not sent, it cannot be serialized: {e}");
                            }
                        }
                    }
                    if ns.is_empty() {
                        out.pop_front();
                    }
                }
                Some(Outgoing::Stanza(_)) => {
                    if let Some(Outgoing::Stanza(st)) = out.pop_front() {
                        trace!(stanza = ?st, "out");
                        if let Err(e) = enc.encode(&st, buf) {
                            error!("stanza not sent, it cannot be serialized: {e}");
                        }
                    }
                }
            }
        }
    }

    /// After a storage failure, rebuild the engine with `recover` instead of carrying on
    /// with memory that may be ahead of the disk. Without it a failure only withholds the
    /// batch's acknowledgements.
    pub fn with_recovery(mut self, recover: Recover<S>) -> Self {
        self.recover = Some(recover);
        self
    }

    /// True while the engine waits to be rebuilt from the store; requests then fail with
    /// `internal-server-error` (wait).
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// Called after each batch's sync: on any storage failure, rebuild the engine from the
    /// store so that memory equals what is durable. While that fails, stay degraded and try
    /// again (at most once per [`RECOVERY_INTERVAL_MS`]) before a later batch.
    fn after_batch(&mut self, synced: bool) {
        if !synced || self.storage_failed {
            self.storage_failed = false;
            if self.recover.is_some() {
                self.degraded = true;
                // Right away after a fresh failure: the sooner memory equals the disk the
                // better; the interval only throttles retries.
                self.last_recovery_ms = 0;
            }
        }
        self.try_recover();
    }

    fn try_recover(&mut self) {
        if !self.degraded {
            return;
        }
        let now = now_millis();
        if now.saturating_sub(self.last_recovery_ms) < RECOVERY_INTERVAL_MS {
            return;
        }
        self.last_recovery_ms = now;
        let Some(recover) = self.recover.as_mut() else {
            return;
        };
        match recover(&mut self.service) {
            Ok(service) => {
                self.service = service;
                // The rebuilt engine knows no rosters; the tick fetches them again.
                self.service.set_roster_access(self.privileges.roster_get());
                self.degraded = false;
                self.reprobe = true;
                info!("store reopened; the service state is what is on disk again");
            }
            Err(e) => warn!("the store cannot be reopened yet ({e}); requests fail until it can"),
        }
    }

    /// The engine, e.g. to flush its store on shutdown.
    pub fn service_mut(&mut self) -> &mut Service<S> {
        &mut self.service
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.id_prefix, self.next_id)
    }

    /// Handle one stanza; returns the stanzas to send, replies first, notifications built
    /// as messages. (The service loop takes the notifications separately, through
    /// [`Roost::take_outgoing`], to serialize each event once.)
    pub fn handle_stanza(&mut self, stanza: Stanza) -> Vec<Stanza> {
        let mut out = self.dispatch(stanza);
        let mut notifications = Vec::new();
        for d in std::mem::take(&mut self.deferred) {
            match d {
                Dispatch::One(n) => notifications.push(n),
                Dispatch::Fanout(f) => {
                    while !self.service.walk(&f, usize::MAX, &mut notifications) {}
                }
            }
        }
        for n in notifications {
            let id = self.new_id();
            out.push(pubsub::notification_message(&n, &self.jid, id).into());
        }
        out
    }

    /// Handle one stanza; returns the stanzas to send, replies first, and keeps its
    /// notifications in `deferred`.
    fn dispatch(&mut self, stanza: Stanza) -> Vec<Stanza> {
        match stanza {
            Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }) if payload.is("query", xmpp_parsers::ns::ROSTER) => {
                self.roster_push(from, id, payload)
            }
            // Answers to our roster gets and the relays' requests; every other result or
            // error (keepalive pongs, bounces of notifications) is never answered (RFC 6120
            // §8.2.3).
            Stanza::Iq(iq @ (Iq::Result { .. } | Iq::Error { .. })) => self.handle_iq_answer(iq),
            Stanza::Iq(Iq::Get {
                from: Some(from),
                id,
                payload,
                ..
            }) => self.handle_iq(IqKind::Get, from, id, payload, None),
            Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }) => self.handle_iq(IqKind::Set, from, id, payload, None),
            // Gets and sets without a sender: nobody to answer.
            Stanza::Iq(_) => Vec::new(),
            Stanza::Message(m) => self.handle_message(m),
            Stanza::Presence(p) => self.handle_presence(p),
        }
    }

    /// Presence to the service: subscription handshakes, probes, and the availability of
    /// users who share their presence with it (see [`crate::presence`]).
    fn handle_presence(&mut self, p: xmpp_parsers::presence::Presence) -> Vec<Stanza> {
        if self.degraded {
            return Vec::new();
        }
        let outcome = presence::handle_presence(&mut self.service, &self.jid, p, now_millis());
        if outcome.storage_failed {
            self.storage_failed = true;
        }
        let out: Vec<Stanza> = outcome.replies.into_iter().map(Stanza::from).collect();
        self.defer(outcome.notifications);
        out
    }

    /// What to send first on every (re)connect: probes of every user whose presence the
    /// service needs, since what it knew may be stale.
    pub fn on_connect(&mut self) -> Vec<Stanza> {
        // Privileges hold for one connection: until the server advertises them again, the
        // presence and roster models admit nobody not affiliated. Requests that waited for
        // a roster from the old connection are decided without it.
        self.privileges = Privileges::default();
        self.service.set_roster_access(false);
        let mut out = Vec::new();
        for w in self.fetches.reset() {
            out.extend(self.handle_iq(w.kind, w.from, w.id, w.payload, Some(w.arrived)));
        }
        out.extend(self.probe_all());
        out
    }

    /// Reset the presence table and probe every user whose presence the service needs.
    fn probe_all(&mut self) -> Vec<Stanza> {
        self.probing_since_ms = Some(now_millis());
        let mut out: Vec<Stanza> = presence::on_connect(&mut self.service, &self.jid)
            .into_iter()
            .map(Stanza::from)
            .collect();
        if !self.degraded && !self.relays.is_empty() {
            let r = self
                .relays
                .on_connect(&mut self.service, &self.jid, now_millis());
            out.extend(self.relay_output(r));
        }
        out
    }

    /// A result or error IQ: the answer to one of our roster gets or to a relay's request.
    fn handle_iq_answer(&mut self, iq: Iq) -> Vec<Stanza> {
        match iq {
            Iq::Result {
                ref from,
                ref id,
                ref payload,
                ..
            } => {
                if let Some(owner) = self.fetches.answered(id, from.as_ref()) {
                    return self.roster_fetched(&owner, payload.as_ref());
                }
            }
            Iq::Error {
                ref from,
                ref id,
                ref error,
                ..
            } => {
                if let Some(owner) = self.fetches.answered(id, from.as_ref()) {
                    warn!(%owner, "the server refused the roster: {:?}", error.defined_condition);
                    return self.roster_fetched(&owner, None);
                }
            }
            _ => return Vec::new(),
        }
        if self.degraded {
            return Vec::new();
        }
        match self
            .relays
            .handle_iq_response(&mut self.service, &self.jid, &iq, now_millis())
        {
            Some(out) => self.relay_output(out),
            None => Vec::new(),
        }
    }

    /// What a relay step asks for: its requests upstream and the notifications of the items
    /// it republished.
    fn relay_output(&mut self, out: relay::Output) -> Vec<Stanza> {
        if out.storage_failed {
            self.storage_failed = true;
        }
        self.defer(out.notifications);
        out.stanzas
    }

    /// Presence subscription requests for users who just started needing one (e.g. they
    /// subscribed to a node that delivers by presence).
    fn presence_requests(&mut self) -> Vec<Stanza> {
        presence::subscription_requests(&mut self.service, &self.jid, now_millis())
            .into_iter()
            .map(Stanza::from)
            .collect()
    }

    /// Time-driven work (item expiry, subscription leases, digests), as stanzas to send
    /// after the next sync; its notifications are kept for [`Roost::take_outgoing`].
    pub fn tick(&mut self) -> Vec<Stanza> {
        if self.degraded {
            return Vec::new();
        }
        if let Some(since) = self.probing_since_ms {
            if now_millis().saturating_sub(since) >= PROBE_GRACE_MS {
                self.service.forget_stale_presence();
                self.probing_since_ms = None;
            }
        }
        self.service.forget_presence_answers(now_millis());
        let mut probes = if std::mem::take(&mut self.reprobe) {
            self.probe_all()
        } else {
            Vec::new()
        };
        probes.extend(self.roster_upkeep());
        if !self.relays.is_empty() {
            let r = self.relays.tick(&mut self.service, &self.jid, now_millis());
            probes.extend(self.relay_output(r));
        }
        match self.service.tick_streamed(now_millis()) {
            Ok(notifications) => {
                self.defer(notifications);
                probes
            }
            Err(e) => {
                if matches!(e, roost_nodes::Error::Storage(_)) {
                    self.storage_failed = true;
                }
                error!("timed work failed, nothing was changed: {e}");
                probes
            }
        }
    }

    /// Messages to the service: an owner's answer to a subscription authorization request
    /// (§8.6) is a request without a reply; every other message is ignored.
    fn handle_message(&mut self, m: xmpp_parsers::message::Message) -> Vec<Stanza> {
        let Some(from) = m.from.clone() else {
            return Vec::new();
        };
        // XEP-0356 §4.1: the server (our domain itself, nobody else) advertises what the
        // service may do.
        if from.node().is_none() && from.domain().as_str() == self.server_domain {
            if let Some(p) = privilege::parse_advertisement(&m) {
                return self.set_privileges(p);
            }
        }
        if m.type_ == xmpp_parsers::message::MessageType::Error {
            if !self.degraded {
                presence::bounced(&mut self.service, &from);
            }
            return Vec::new();
        }
        if !self.degraded {
            if let Some(out) =
                self.relays
                    .handle_message(&mut self.service, &self.jid, &m, now_millis())
            {
                return self.relay_output(out);
            }
        }
        let req = match pubsub::parse_message(&m, &from) {
            None => {
                debug!(%from, "ignoring message to the service");
                return Vec::new();
            }
            Some(Err(e)) => {
                debug!(%from, "malformed authorization answer: {:?}", e.texts);
                return Vec::new();
            }
            Some(Ok(req)) => req,
        };
        match self.service.handle_streamed(&from, req, now_millis()) {
            Ok(outcome) => {
                self.defer(outcome.dispatches);
                self.presence_requests()
            }
            Err(e) => {
                if matches!(e, roost_nodes::Error::Storage(_)) {
                    self.storage_failed = true;
                    error!(%from, "authorization answer failed, nothing was changed: {e}");
                } else {
                    debug!(%from, "authorization answer refused: {e}");
                }
                Vec::new()
            }
        }
    }

    /// The server advertised its XEP-0356 permissions: with roster access the presence
    /// and roster access models become available, and the rosters they need are fetched.
    fn set_privileges(&mut self, p: Privileges) -> Vec<Stanza> {
        info!(
            namespace = p.namespace,
            roster = ?p.roster,
            presence = ?p.presence,
            "the server granted privileges"
        );
        if !p.roster_get() {
            warn!("no roster access: the presence and roster access models are not offered");
        }
        self.service.set_roster_access(p.roster_get());
        self.privileges = p;
        let owners = self.service.roster_owners();
        self.fetch_rosters(owners)
    }

    /// Roster gets for those of `owners` not being fetched already.
    fn fetch_rosters(&mut self, owners: impl IntoIterator<Item = BareJid>) -> Vec<Stanza> {
        if !self.privileges.roster_get() {
            return Vec::new();
        }
        let now = now_millis();
        let mut out = Vec::new();
        for owner in owners {
            if self.fetches.fetching(&owner) {
                continue;
            }
            let id = self.new_id();
            self.fetches.start(&owner, &id, now);
            out.push(privilege::roster_get(&self.jid, &owner, id).into());
        }
        out
    }

    /// `owner`'s roster arrived (`None`: the server refused it, which leaves it empty, so it
    /// admits nobody until the next refresh). The requests that waited for it are decided.
    fn roster_fetched(&mut self, owner: &BareJid, payload: Option<&Element>) -> Vec<Stanza> {
        let roster = payload.and_then(|p| xmpp_parsers::roster::Roster::try_from(p.clone()).ok());
        if payload.is_some() && roster.is_none() {
            warn!(%owner, "malformed roster from the server; taken as empty");
        }
        let items = roster
            .as_ref()
            .map(privilege::roster_items)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(jid, item)| Some((jid, item?)));
        self.service.roster_fetched(owner, items, now_millis());
        debug!(%owner, "roster fetched");
        self.decide_waiting(owner)
    }

    /// Handle again the requests that no longer wait once `owner`'s roster is settled.
    fn decide_waiting(&mut self, owner: &BareJid) -> Vec<Stanza> {
        let mut out = Vec::new();
        for w in self.fetches.ready(owner) {
            out.extend(self.handle_iq(w.kind, w.from, w.id, w.payload, Some(w.arrived)));
        }
        out
    }

    /// A roster push (RFC 6121 §2.1.6) for a user of the server, which XEP-0356 servers
    /// send to a service with roster access. Anything else in `jabber:iq:roster` is not
    /// for this service.
    fn roster_push(&mut self, from: Jid, id: String, payload: Element) -> Vec<Stanza> {
        let ours = self.privileges.roster_get()
            && from.node().is_some()
            && from.resource().is_none()
            && from.domain().as_str() == self.server_domain;
        if !ours {
            return self.handle_iq(IqKind::Set, from, id, payload, None);
        }
        let owner = from.to_bare();
        match xmpp_parsers::roster::Roster::try_from(payload) {
            Ok(roster) => {
                for (contact, item) in privilege::roster_items(&roster) {
                    self.service.roster_pushed(&owner, &contact, item);
                }
                debug!(%owner, "roster push applied");
                vec![self.result(&from, id, None)]
            }
            Err(e) => {
                warn!(%owner, "malformed roster push refused: {e}");
                vec![Iq::Error {
                    from: Some(self.jid.clone()),
                    to: Some(from),
                    id,
                    payload: None,
                    error: StanzaError::new(
                        ErrorType::Modify,
                        DefinedCondition::BadRequest,
                        "en",
                        format!("malformed roster push: {e}"),
                    ),
                }
                .into()]
            }
        }
    }

    /// Roster upkeep, once per tick: fetches that never got an answer are given up (their
    /// waiting requests decided without them), and the rosters of owners of presence and
    /// roster nodes are fetched when missing or older than [`privilege::REFRESH_MS`].
    fn roster_upkeep(&mut self) -> Vec<Stanza> {
        let now = now_millis();
        let mut out = Vec::new();
        for owner in self
            .fetches
            .timed_out(now.saturating_sub(privilege::FETCH_TIMEOUT_MS))
        {
            warn!(%owner, "no answer to the roster get; deciding without that roster");
            out.extend(self.decide_waiting(&owner));
        }
        if !self.privileges.roster_get() {
            return out;
        }
        let owners = self.service.roster_owners();
        let stale: Vec<BareJid> = self
            .service
            .rosters()
            .fetched_before(now.saturating_sub(privilege::REFRESH_MS));
        for o in &stale {
            if !owners.contains(o) {
                self.service.forget_roster(o);
            }
        }
        let wanted: Vec<BareJid> = owners
            .into_iter()
            .filter(|o| !self.service.rosters().has(o) || stale.contains(o))
            .collect();
        out.extend(self.fetch_rosters(wanted));
        out
    }

    /// Handle an IQ get or set. `waited_since` is `None` for a request that has just arrived
    /// (it may wait for rosters), and its arrival time when it is decided again after
    /// waiting: the engine decides it as of then.
    fn handle_iq(
        &mut self,
        kind: IqKind,
        from: Jid,
        id: String,
        payload: Element,
        waited_since: Option<u64>,
    ) -> Vec<Stanza> {
        let may_wait = waited_since.is_none();
        // A request handled again once rosters came was counted when it first arrived.
        let over_quota = match self.quotas.as_mut() {
            Some(q) if may_wait => !q.allow(&from.to_bare(), now_millis()),
            _ => false,
        };
        let result = match self.service_level(&kind, &payload) {
            _ if over_quota => {
                debug!(%from, "request rate over quota");
                Err(StanzaError::new(
                    ErrorType::Wait,
                    DefinedCondition::ResourceConstraint,
                    "en",
                    "too many requests from this JID; slow down and retry",
                ))
            }
            Some(r) => r,
            // Until the engine is rebuilt from the store, its memory may hold changes the
            // disk lost: serve nothing from it.
            None if self.degraded => Err(StanzaError::new(
                ErrorType::Wait,
                DefinedCondition::InternalServerError,
                "en",
                "storage failure: the service is recovering; retry later",
            )),
            None => match pubsub::parse_request(kind, &payload, &from) {
                None => Err(StanzaError::new(
                    ErrorType::Cancel,
                    DefinedCondition::ServiceUnavailable,
                    "en",
                    format!("{} is not handled by this service", payload.ns()),
                )),
                Some(Err(e)) => Err(e),
                Some(Ok(req)) => {
                    let owner_ns = pubsub::owner_namespace(&req);
                    let now = waited_since.unwrap_or_else(now_millis);
                    match self.service.handle_streamed(&from, req, now) {
                        Ok(outcome) => {
                            let mut out = Vec::new();
                            let mut result =
                                pubsub::reply_payload(&outcome.reply, &self.jid, owner_ns);
                            if self.privileges.roster_get()
                                && matches!(outcome.reply, roost_nodes::Reply::Config { .. })
                            {
                                if let Some(p) = result.as_mut() {
                                    pubsub::offer_roster_models(p);
                                }
                            }
                            // XEP-0313 §4.2: archive results go out before the IQ result.
                            let service = self.jid.clone();
                            let msgs = pubsub::reply_messages(
                                &outcome.reply,
                                &payload,
                                &service,
                                &from,
                                &mut || self.new_id(),
                            );
                            out.extend(msgs.into_iter().map(Stanza::from));
                            out.push(self.result(&from, id, result));
                            self.defer(outcome.dispatches);
                            out.extend(self.presence_requests());
                            return out;
                        }
                        // The engine needs owners' rosters to decide: fetch them and decide
                        // again when they are in (see `roster_fetched`).
                        Err(roost_nodes::Error::RosterNeeded(owners))
                            if may_wait && self.privileges.roster_get() =>
                        {
                            let parked = self.fetches.wait(Waiting {
                                kind,
                                from: from.clone(),
                                id: id.clone(),
                                payload: payload.clone(),
                                needs: owners.iter().cloned().collect(),
                                arrived: now,
                            });
                            if parked {
                                debug!(%from, "request waits for rosters");
                                return self.fetch_rosters(owners);
                            }
                            Err(pubsub::stanza_error(&roost_nodes::Error::RosterNeeded(
                                owners,
                            )))
                        }
                        Err(e) => {
                            if matches!(e, roost_nodes::Error::Storage(_)) {
                                self.storage_failed = true;
                                error!(%from, "request failed, nothing was changed: {e}");
                            } else {
                                debug!(%from, "request refused: {e}");
                            }
                            Err(pubsub::stanza_error(&e))
                        }
                    }
                }
            },
        };
        vec![match result {
            Ok(payload) => self.result(&from, id, payload),
            Err(error) => Iq::Error {
                from: Some(self.jid.clone()),
                to: Some(from),
                id,
                payload: None,
                error,
            }
            .into(),
        }]
    }

    /// The service's own disco#info, ping and version; `None` for everything else.
    fn service_level(
        &self,
        kind: &IqKind,
        payload: &Element,
    ) -> Option<Result<Option<Element>, StanzaError>> {
        if !matches!(kind, IqKind::Get) {
            return None;
        }
        if let Some(answer) = pubsub::command_disco(payload, &self.jid) {
            return Some(Ok(Some(answer)));
        }
        if payload.is("query", NS_DISCO_INFO) && payload.attr("node").is_none() {
            let mut features: std::collections::BTreeSet<String> = [
                NS_DISCO_INFO,
                "http://jabber.org/protocol/disco#items",
                NS_PING,
                NS_VERSION,
                "http://jabber.org/protocol/pubsub",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            features.extend(pubsub::FEATURES.iter().map(|f| f.to_string()));
            features.extend(pubsub::OTHER_FEATURES.iter().map(|f| f.to_string()));
            if self.privileges.roster_get() {
                features.extend(pubsub::ROSTER_FEATURES.iter().map(|f| f.to_string()));
            }
            return Some(Ok(Some(
                DiscoInfoResult {
                    node: None,
                    identities: vec![Identity::new("pubsub", "service", "en", "Roost")],
                    features,
                    extensions: Vec::new(),
                }
                .into(),
            )));
        }
        if payload.is("ping", NS_PING) {
            return Some(Ok(None));
        }
        if payload.is("query", NS_VERSION) {
            return Some(Ok(Some(
                VersionResult {
                    name: "Roost".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    os: None,
                }
                .into(),
            )));
        }
        None
    }

    fn result(&self, to: &Jid, id: String, payload: Option<Element>) -> Stanza {
        Iq::Result {
            from: Some(self.jid.clone()),
            to: Some(to.clone()),
            id,
            payload,
        }
        .into()
    }

    /// Turn one raw element from the link into stanzas to send (its notifications are kept
    /// for [`Roost::take_outgoing`]): a stanza is checked, converted and handled; one that
    /// breaks the rules gets `bad-request` where it has an id and a sender and is not itself
    /// an error or a result (RFC 6120 §8.3.1).
    fn handle_element(&mut self, el: Element) -> Vec<Stanza> {
        if nested_deeper_than(&el, MAX_DEPTH) {
            let name = el.name().to_owned();
            let from = el.attr("from").map(str::to_owned);
            let id = el.attr("id").map(str::to_owned);
            let type_ = el.attr("type").map(str::to_owned);
            dismantle(el);
            warn!(from = ?from, "<{name}/> nested deeper than {MAX_DEPTH} levels refused");
            return self
                .bad_stanza_reply(
                    &name,
                    from,
                    id,
                    type_,
                    DefinedCondition::PolicyViolation,
                    format!("XML nested deeper than {MAX_DEPTH} levels is refused"),
                )
                .into_iter()
                .collect();
        }
        let name = el.name().to_owned();
        if el.ns() != xmpp_parsers::ns::COMPONENT
            || !matches!(name.as_str(), "iq" | "message" | "presence")
        {
            debug!("ignoring <{name} xmlns='{}'/> from the server", el.ns());
            return Vec::new();
        }
        let from = el.attr("from").map(str::to_owned);
        let id = el.attr("id").map(str::to_owned);
        let type_ = el.attr("type").map(str::to_owned);
        if name == "iq" && matches!(type_.as_deref(), Some("get") | Some("set")) {
            let payloads = el.children().count();
            if payloads != 1 {
                warn!(from = ?from, "iq {} with {payloads} payloads refused", type_.as_deref().unwrap_or(""));
                return self
                    .bad_stanza_reply(
                        &name,
                        from,
                        id,
                        type_,
                        DefinedCondition::BadRequest,
                        format!("an iq get/set carries exactly one payload, not {payloads}"),
                    )
                    .into_iter()
                    .collect();
            }
        }
        let parsed = match name.as_str() {
            "iq" => Iq::try_from(el).map(Stanza::Iq).map_err(|e| e.to_string()),
            "message" => xmpp_parsers::message::Message::try_from(el)
                .map(Stanza::Message)
                .map_err(|e| e.to_string()),
            _ => xmpp_parsers::presence::Presence::try_from(el)
                .map(Stanza::Presence)
                .map_err(|e| e.to_string()),
        };
        match parsed {
            Ok(st) => {
                trace!(stanza = ?st, "in");
                self.dispatch(st)
            }
            Err(e) => {
                warn!(from = ?from, "malformed <{name}/> refused: {e}");
                self.bad_stanza_reply(
                    &name,
                    from,
                    id,
                    type_,
                    DefinedCondition::BadRequest,
                    format!("malformed stanza: {e}"),
                )
                .into_iter()
                .collect()
            }
        }
    }

    fn bad_stanza_reply(
        &mut self,
        name: &str,
        from: Option<String>,
        id: Option<String>,
        type_: Option<String>,
        condition: DefinedCondition,
        why: String,
    ) -> Option<Stanza> {
        let from: Jid = from?.parse().ok()?;
        let id = id?;
        if matches!(type_.as_deref(), Some("error") | Some("result")) {
            return None;
        }
        let error = StanzaError::new(ErrorType::Modify, condition, "en", why);
        let me = Some(self.jid.clone());
        Some(match name {
            "iq" => Iq::Error {
                from: me,
                to: Some(from),
                id,
                payload: None,
                error,
            }
            .into(),
            "message" => {
                let mut m = xmpp_parsers::message::Message::new(Some(from));
                m.from = me;
                m.id = Some(xmpp_parsers::message::Id(id));
                m.type_ = xmpp_parsers::message::MessageType::Error;
                m.payloads.push(error.into());
                m.into()
            }
            _ => {
                let mut p =
                    xmpp_parsers::presence::Presence::new(xmpp_parsers::presence::Type::Error);
                p.from = me;
                p.to = Some(from);
                p.id = Some(id);
                p.payloads.push(error.into());
                p.into()
            }
        })
    }

    /// When the flush after a batch failed: IQ results become `internal-server-error`
    /// (type wait), notifications are dropped, everything else goes out as it was.
    fn withheld_outgoing(&self, out: VecDeque<Outgoing>) -> VecDeque<Outgoing> {
        out.into_iter()
            .filter_map(|o| match o {
                Outgoing::Stanza(st) => self.withheld_error(st).map(Outgoing::Stanza),
                Outgoing::Notifications(_) => None,
            })
            .collect()
    }

    /// What becomes of one stanza of a batch whose flush failed.
    fn withheld_error(&self, st: Stanza) -> Option<Stanza> {
        match st {
            Stanza::Iq(Iq::Result { from, to, id, .. }) => Some(
                Iq::Error {
                    from,
                    to,
                    id,
                    payload: None,
                    error: StanzaError::new(
                        ErrorType::Wait,
                        DefinedCondition::InternalServerError,
                        "en",
                        "storage failure: the change may not be durable; retry later",
                    ),
                }
                .into(),
            ),
            Stanza::Message(m) if m.type_ != xmpp_parsers::message::MessageType::Error => None,
            other => Some(other),
        }
    }

    fn keepalive_ping(&mut self) -> Stanza {
        let id = self.new_id();
        Iq::Get {
            from: Some(self.jid.clone()),
            to: self.server_domain.parse().ok(),
            id,
            payload: Ping.into(),
        }
        .into()
    }
}

/// Deepest element nesting accepted in a stanza (the stanza itself is level 1). Real payloads
/// stay far below; the limit exists because parsing, cloning, printing and dropping a
/// minidom tree all recurse once per level, so a client sending 10 000 nested elements
/// (well within the servers' stanza size limits) would otherwise overflow the stack and abort
/// the process.
const MAX_DEPTH: usize = 128;

/// True if `el` nests deeper than `max` levels; iterative, for the reason above.
fn nested_deeper_than(el: &Element, max: usize) -> bool {
    let mut stack = vec![(el, 1usize)];
    while let Some((e, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        stack.extend(e.children().map(|c| (c, depth + 1)));
    }
    false
}

/// Drop a tree without recursion (minidom's drop recurses once per level).
fn dismantle(el: Element) {
    let mut stack = vec![el];
    while let Some(mut e) = stack.pop() {
        for node in e.take_nodes() {
            if let minidom::Node::Element(child) = node {
                stack.push(child);
            }
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long a `<conflict/>` at start-up is retried before Roost concludes that another
/// instance holds the domain.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(4);

/// Keep the link up until `shutdown` turns true: connect, serve, reconnect with backoff.
pub async fn run<S: Store>(
    cfg: &Config,
    roost: &mut Roost<S>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let domain = cfg.jid.to_string();
    let mut backoff = Backoff::new(Duration::from_secs(5));
    let mut ever_connected = false;
    let mut attempt: u64 = 0;
    let started = std::time::Instant::now();
    loop {
        let delay = backoff.next_delay();
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        attempt += 1;
        info!(attempt, server = %cfg.server, "connecting as {domain}");
        let connected = tokio::select! {
            r = link::connect(&cfg.server, &domain, &cfg.secret, cfg.keepalive) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        let (mut link, mut writer) = match connected {
            Ok(link) => link,
            // A wrong secret never heals. A conflict after we were connected may be our own
            // stale session on a restarted server, so keep retrying then.
            Err(e @ LinkError::BadSecret { .. }) | Err(e @ LinkError::Refused { .. }) => {
                return Err(e.into())
            }
            // On a quick restart the server may not have dropped our previous session yet;
            // only a conflict that outlasts that window means another instance owns the domain.
            Err(e @ LinkError::Conflict { .. })
                if !ever_connected && started.elapsed() >= CONFLICT_PATIENCE =>
            {
                return Err(e.into())
            }
            Err(e) => {
                warn!(attempt, "{e}; retrying");
                continue;
            }
        };
        ever_connected = true;
        backoff.reset();
        attempt = 0;
        info!(server = %cfg.server, "connected as {domain}");
        let hello = roost.on_connect();
        if !hello.is_empty() {
            info!(probes = hello.len(), "probing the presence of subscribers");
        }
        let mut sent = Ok(());
        for st in &hello {
            sent = link.feed(st).await;
            if sent.is_err() {
                break;
            }
        }
        if let Err(e) = sent.and(SinkExt::<&Stanza>::flush(&mut link).await) {
            warn!("link lost: write failed: {e}; reconnecting");
            continue;
        }
        match serve(&mut link, &mut writer, roost, &mut shutdown).await {
            SessionEnd::Shutdown => {
                info!("closing the stream");
                // Best effort: the process exits next either way.
                let _ = tokio::time::timeout(Duration::from_secs(2), link.shutdown()).await;
                return Ok(());
            }
            SessionEnd::Disconnected(why) => warn!("link lost: {why}; reconnecting"),
        }
    }
}

/// Bytes of outgoing stanzas serialized before they are written to the link.
const WRITE_CHUNK: usize = 256 * 1024;

/// How many recipients of a fan-out are walked at once while writing: a few dozen
/// messages, so that the first of a large fan-out are rendered at once and the walk never
/// runs far ahead of the writing.
const WALK_CHUNK: usize = 64;

/// Stanzas handled before one flush at most: bounds reply latency under a flood.
const MAX_BATCH: usize = 512;

/// Per-batch timing counters of the service loop, logged at debug level under the
/// `roost::batch` target every [`BatchStats::EVERY`] (`--log warn,roost::batch=debug`):
/// how many stanzas a group commit shares, and where a batch's time goes.
#[derive(Default)]
struct BatchStats {
    since: Option<std::time::Instant>,
    batches: u64,
    stanzas_in: u64,
    handle: Duration,
    sync: Duration,
    write: Duration,
    bytes_out: u64,
}

impl BatchStats {
    const EVERY: Duration = Duration::from_secs(5);

    fn record(
        &mut self,
        stanzas_in: u64,
        handle: Duration,
        sync: Duration,
        write: Duration,
        bytes: u64,
    ) {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        self.batches += 1;
        self.stanzas_in += stanzas_in;
        self.handle += handle;
        self.sync += sync;
        self.write += write;
        self.bytes_out += bytes;
        let elapsed = since.elapsed();
        if elapsed >= Self::EVERY {
            let b = self.batches.max(1) as f64;
            let us = |d: Duration| d.as_secs_f64() * 1e6 / b;
            debug!(
                target: "roost::batch",
                batches_per_s = self.batches as f64 / elapsed.as_secs_f64(),
                stanzas_per_batch = self.stanzas_in as f64 / b,
                handle_us = us(self.handle),
                sync_us = us(self.sync),
                write_us = us(self.write),
                bytes_per_batch = self.bytes_out as f64 / b,
                "batch statistics"
            );
            *self = BatchStats::default();
        }
    }
}

/// Handle one element read from the link, appending what it asks to send to `out`; `Some`
/// when the session ends.
fn step<S: Store>(
    roost: &mut Roost<S>,
    next: Option<Result<Element, ReadError>>,
    out: &mut VecDeque<Outgoing>,
) -> Option<SessionEnd> {
    match next {
        None => Some(SessionEnd::Disconnected(
            "the server closed the connection".into(),
        )),
        Some(Err(ReadError::SoftTimeout)) => {
            debug!("link idle; pinging the server");
            out.push_back(Outgoing::Stanza(roost.keepalive_ping()));
            None
        }
        Some(Err(ReadError::ParseError(e))) => {
            warn!("unparsable element from the server, ignored: {e}");
            None
        }
        Some(Err(ReadError::StreamFooterReceived)) => Some(SessionEnd::Disconnected(
            "the server closed the stream".into(),
        )),
        Some(Err(ReadError::HardError(e))) => Some(SessionEnd::Disconnected(e.to_string())),
        Some(Ok(el)) if el.is("error", link::NS_STREAM) => {
            let why = xmpp_parsers::stream_error::StreamError::try_from(el)
                .map(|e| e.to_string())
                .unwrap_or_else(|e| e.to_string());
            Some(SessionEnd::Disconnected(format!(
                "stream error from the server: {why}"
            )))
        }
        Some(Ok(el)) => {
            let stanzas = roost.handle_element(el);
            roost.take_outgoing(stanzas, out);
            None
        }
    }
}

/// Serve one connected session.
///
/// Group commit: every stanza already read from the socket is handled (each request's
/// changes committed atomically), then one `sync` makes them all durable, and only then are
/// the replies and notifications written. Many publishers in flight thus share one flush,
/// and nothing is acknowledged or announced before it is on disk.
async fn serve<S: Store>(
    link: &mut Link,
    writer: &mut LinkWriter,
    roost: &mut Roost<S>,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut out: VecDeque<Outgoing> = VecDeque::new();
    let mut stats = BatchStats::default();
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => return SessionEnd::Shutdown,
            _ = ticker.tick() => {
                let stanzas = roost.tick();
                roost.take_outgoing(stanzas, &mut out);
                None
            }
            next = link.next() => Some(next),
        };
        roost.try_recover();
        let t0 = std::time::Instant::now();
        let mut end = None;
        let mut pending = first;
        let mut handled = 0;
        while let Some(next) = pending.take() {
            if let Some(e) = step(roost, next, &mut out) {
                end = Some(e);
                break;
            }
            handled += 1;
            if handled < MAX_BATCH {
                // Only what is already buffered: never wait here.
                pending = link.next().now_or_never();
            }
        }
        let t1 = std::time::Instant::now();
        // A degraded engine committed nothing, and its store may be closed for recovery.
        let sync = if roost.is_degraded() {
            Ok(())
        } else {
            roost.service_mut().store_mut().sync()
        };
        let synced = match sync {
            Ok(()) => true,
            Err(e) => {
                // The batch's changes are applied in memory but maybe not on disk:
                // acknowledge none of them, and rebuild the engine from the disk.
                error!("flushing the store failed; the batch's acknowledgements are withheld: {e}");
                out = roost.withheld_outgoing(std::mem::take(&mut out));
                false
            }
        };
        roost.after_batch(synced);
        let t2 = std::time::Instant::now();
        // The batch is serialized into one buffer and written at once: one system call (and
        // one TCP segment train) per batch instead of one per stanza. A batch larger than
        // WRITE_CHUNK (a fan-out to many subscribers) goes out a chunk at a time, so the first
        // subscribers are notified while the notifications of the last are still to be built.
        let mut bytes = 0u64;
        loop {
            roost.write_outgoing(&mut out, writer, WRITE_CHUNK);
            bytes += writer.buf.len() as u64;
            if let Err(e) = writer.flush().await {
                return SessionEnd::Disconnected(format!("write failed: {e}"));
            }
            if out.is_empty() {
                break;
            }
        }
        stats.record(handled as u64, t1 - t0, t2 - t1, t2.elapsed(), bytes);
        if let Some(e) = end {
            return e;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use roost_nodes::{MemStore, Policy};
    use std::cell::Cell;
    use std::rc::Rc;

    fn config(extra: &[&str]) -> Config {
        let mut args = vec!["roost", "--jid", "pubsub.localhost", "--secret", "s"];
        args.extend_from_slice(extra);
        Config::resolve(crate::config::Cli::try_parse_from(args).unwrap()).unwrap()
    }

    fn create(node: &str, id: &str) -> Element {
        format!(
            "<iq xmlns='jabber:component:accept' type='set' id='{id}' from='alice@localhost/r' \
             to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
             <create node='{node}'/></pubsub></iq>"
        )
        .parse()
        .unwrap()
    }

    fn error_of(out: &[Stanza]) -> Option<(ErrorType, DefinedCondition)> {
        match out.first() {
            Some(Stanza::Iq(Iq::Error { error, .. })) => {
                Some((error.type_.clone(), error.defined_condition.clone()))
            }
            _ => None,
        }
    }

    fn is_result(out: &[Stanza]) -> bool {
        matches!(out.first(), Some(Stanza::Iq(Iq::Result { .. })))
    }

    /// A Roost on a MemStore whose recovery counts its calls and reloads `disk`.
    fn roost_with_recovery(
        disk: MemStore,
        fail_recovery: Rc<Cell<bool>>,
    ) -> (Roost<MemStore>, Rc<Cell<u32>>) {
        let cfg = config(&["--rate-limit", "0"]);
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        let service = Service::open(MemStore::default(), Policy::default()).unwrap();
        let mut disk = Some(disk);
        let roost = Roost::new(service, &cfg).with_recovery(Box::new(move |_failed| {
            c.set(c.get() + 1);
            if fail_recovery.get() {
                return Err("disk still full".into());
            }
            let store = disk.take().unwrap_or_default();
            Service::open(store, Policy::default()).map_err(|e| e.to_string())
        }));
        (roost, calls)
    }

    #[test]
    fn storage_failure_degrades_then_rebuilds_from_the_store() {
        let fail_recovery = Rc::new(Cell::new(true));
        let (mut roost, calls) = roost_with_recovery(MemStore::default(), fail_recovery.clone());
        assert!(is_result(&roost.handle_element(create("a", "1"))));
        roost.after_batch(true);
        assert_eq!(calls.get(), 0, "no failure, no recovery");

        roost.service_mut().store_mut().fail_next = Some("disk full".into());
        let out = roost.handle_element(create("b", "2"));
        assert_eq!(
            error_of(&out),
            Some((ErrorType::Wait, DefinedCondition::InternalServerError))
        );
        roost.after_batch(true);
        assert_eq!(
            calls.get(),
            1,
            "a storage failure triggers recovery at once"
        );
        assert!(roost.is_degraded(), "recovery failed: stay degraded");

        // Degraded: the engine is not touched, even for requests that would succeed.
        let out = roost.handle_element(create("c", "3"));
        assert_eq!(
            error_of(&out),
            Some((ErrorType::Wait, DefinedCondition::InternalServerError))
        );
        roost.after_batch(true);
        assert_eq!(calls.get(), 1, "retries are throttled");

        fail_recovery.set(false);
        roost.last_recovery_ms = 0;
        roost.try_recover();
        assert!(!roost.is_degraded());
        assert_eq!(calls.get(), 2);
        // The rebuilt engine holds what the store holds: here, nothing, so `a` is gone.
        assert!(is_result(&roost.handle_element(create("a", "4"))));
    }

    #[test]
    fn recovery_probes_the_presence_the_rebuilt_engine_forgot() {
        // A store holding a presence-based node with a subscriber.
        let mut svc = Service::open(MemStore::default(), Policy::default()).unwrap();
        let owner: Jid = "alice@localhost/r".parse().unwrap();
        let patch = roost_nodes::NodeConfigPatch {
            presence_based_delivery: Some(true),
            ..Default::default()
        };
        let create = roost_nodes::Request::Create {
            node: Some("n".into()),
            config: Some(patch),
        };
        svc.handle(&owner, create, 1).unwrap();
        let sub = roost_nodes::Request::Subscribe {
            node: "n".into(),
            jid: "bob@localhost".parse().unwrap(),
            options: None,
        };
        let bob: Jid = "bob@localhost/r".parse().unwrap();
        svc.handle(&bob, sub, 1).unwrap();
        let disk = std::mem::take(svc.store_mut());

        let (mut roost, _calls) = roost_with_recovery(disk, Rc::new(Cell::new(false)));
        assert!(
            roost.tick().is_empty(),
            "nothing to probe before the failure"
        );
        roost.after_batch(false);
        assert!(!roost.is_degraded());
        let probes: Vec<_> = roost
            .tick()
            .into_iter()
            .filter_map(|st| match st {
                Stanza::Presence(p) if p.type_ == xmpp_parsers::presence::Type::Probe => {
                    p.to.map(|t| t.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(probes, vec!["bob@localhost".to_owned()]);
        assert!(roost.tick().is_empty(), "probed once");
    }

    #[test]
    fn failed_sync_withholds_acks_and_notifications() {
        let (mut roost, calls) =
            roost_with_recovery(MemStore::default(), Rc::new(Cell::new(false)));
        let mut out = VecDeque::new();
        let iq = |id: &str, body: &str| -> Element {
            format!(
                "<iq xmlns='jabber:component:accept' type='set' id='{id}' from='alice@localhost/r' \
                 to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>{body}\
                 </pubsub></iq>"
            )
            .parse()
            .unwrap()
        };
        for el in [
            create("a", "1"),
            iq("2", "<subscribe node='a' jid='alice@localhost/r'/>"),
            iq(
                "3",
                "<publish node='a'><item id='i'><x xmlns='urn:x'/></item></publish>",
            ),
        ] {
            let stanzas = roost.handle_element(el);
            assert!(is_result(&stanzas));
            roost.take_outgoing(stanzas, &mut out);
        }
        assert!(
            matches!(out.back(), Some(Outgoing::Notifications(n)) if n.len() == 1),
            "the publish notifies the subscriber, after its result"
        );
        let out = roost.withheld_outgoing(out);
        let stanzas: Vec<Stanza> = out
            .into_iter()
            .map(|o| match o {
                Outgoing::Stanza(st) => st,
                Outgoing::Notifications(_) => panic!("notifications withheld"),
            })
            .collect();
        assert_eq!(stanzas.len(), 3);
        for st in &stanzas {
            assert_eq!(
                error_of(std::slice::from_ref(st)),
                Some((ErrorType::Wait, DefinedCondition::InternalServerError))
            );
        }
        roost.after_batch(false);
        assert_eq!(calls.get(), 1);
        assert!(!roost.is_degraded());
    }

    #[test]
    fn a_fanout_is_written_a_chunk_at_a_time_after_the_reply() {
        let mut roost = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &config(&["--rate-limit", "0"]),
        );
        assert!(is_result(&roost.handle_element(create("a", "1"))));
        let reader = |i: usize| format!("reader{i:03}@localhost");
        for i in 0..200 {
            let jid: Jid = reader(i).parse().unwrap();
            let sub = roost_nodes::Request::Subscribe {
                node: "a".into(),
                jid: jid.clone(),
                options: None,
            };
            roost.service_mut().handle(&jid, sub, 1).unwrap();
        }
        let publish: Element = "<iq xmlns='jabber:component:accept' type='set' id='p' \
             from='alice@localhost/r' to='pubsub.localhost'><pubsub \
             xmlns='http://jabber.org/protocol/pubsub'><publish node='a'><item id='i'>\
             <x xmlns='urn:x'/></item></publish></pubsub></iq>"
            .parse()
            .unwrap();
        let mut out = VecDeque::new();
        let stanzas = roost.handle_element(publish);
        roost.take_outgoing(stanzas, &mut out);
        let (mut enc, mut buf) = (StanzaEncoder::new(), Vec::new());
        let mut take = |roost: &mut Roost<MemStore>, out: &mut VecDeque<Outgoing>, budget| {
            buf.clear();
            roost.fill(out, &mut enc, &mut buf, budget);
            String::from_utf8(buf.clone()).unwrap()
        };
        let tos = |s: &str| -> Vec<String> {
            s.split("<message")
                .skip(1)
                .map(|m| {
                    let at = m.find(" to='").unwrap() + 5;
                    m[at..at + m[at..].find('\'').unwrap()].to_owned()
                })
                .collect()
        };
        // The IQ result first, alone when the budget is spent by it.
        let first = take(&mut roost, &mut out, 1);
        assert!(
            first.starts_with("<iq") && first.contains("id='p'"),
            "{first}"
        );
        assert!(!first.contains("<message"));
        // Then one walked chunk: the first subscribers in JID order, the rest not walked yet.
        let chunk = take(&mut roost, &mut out, 1);
        assert_eq!(tos(&chunk), (0..WALK_CHUNK).map(reader).collect::<Vec<_>>());
        assert!(
            !out.is_empty(),
            "the rest of the fan-out is still to be walked"
        );
        let rest = take(&mut roost, &mut out, usize::MAX);
        assert_eq!(
            tos(&rest),
            (WALK_CHUNK..200).map(reader).collect::<Vec<_>>()
        );
        assert!(out.is_empty());
    }

    #[test]
    fn without_recovery_a_failure_does_not_degrade() {
        let mut roost = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &config(&[]),
        );
        roost.service_mut().store_mut().fail_next = Some("x".into());
        assert!(error_of(&roost.handle_element(create("a", "1"))).is_some());
        roost.after_batch(false);
        assert!(!roost.is_degraded());
        assert!(is_result(&roost.handle_element(create("a", "2"))));
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let mut roost = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &config(&[]),
        );
        // Built inside out, so that building it does not recurse either.
        let mut payload = Element::bare("a", "urn:x");
        for _ in 0..100_000 {
            payload = Element::builder("a", "urn:x").append(payload).build();
        }
        let mut iq: Element = "<iq xmlns='jabber:component:accept' type='set' id='deep' \
                               from='alice@localhost/r' to='pubsub.localhost'/>"
            .parse()
            .unwrap();
        iq.append_child(payload);
        let out = roost.handle_element(iq);
        assert_eq!(
            error_of(&out),
            Some((ErrorType::Modify, DefinedCondition::PolicyViolation))
        );
    }

    #[test]
    fn rate_limit_answers_resource_constraint_wait() {
        let mut roost = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &config(&["--rate-limit", "1", "--rate-burst", "2"]),
        );
        let ping = |id: &str| -> Element {
            format!(
                "<iq xmlns='jabber:component:accept' type='get' id='{id}' \
                 from='bob@localhost/r' to='pubsub.localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
            )
            .parse()
            .unwrap()
        };
        assert!(is_result(&roost.handle_element(ping("1"))));
        assert!(is_result(&roost.handle_element(ping("2"))));
        assert_eq!(
            error_of(&roost.handle_element(ping("3"))),
            Some((ErrorType::Wait, DefinedCondition::ResourceConstraint))
        );
    }
}
