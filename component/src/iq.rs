//! IQ gets and sets to the service: its own disco#info, ping and version, and every other
//! payload through the pubsub translation ([`crate::pubsub`]) to the engine and back.

use std::collections::BTreeSet;

use minidom::Element;
use roost_nodes::{BareJid, Jid, Millis, Reply, Service, Store};
use tracing::{debug, error};
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::ns;
use xmpp_parsers::ping::Ping;
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::StanzaError;
use xmpp_parsers::version::VersionResult;

use crate::admin;
use crate::effects::Effects;
use crate::errors::{refusal, stanza_error, Refusal};
use crate::metrics::{Kind, Metrics, Outcome};
use crate::outbox::Ids;
use crate::presence;
use crate::pubsub::{self, IqKind};

/// An IQ get or set addressed to the service.
#[derive(Debug, Clone)]
pub struct IqRequest {
    /// Get or set.
    pub kind: IqKind,
    /// The requester.
    pub from: Jid,
    /// The IQ id.
    pub id: String,
    /// The one payload.
    pub payload: Element,
}

/// What the IQ handler needs to know of the service around the engine.
pub struct Context<'a> {
    /// The service's JID.
    pub me: &'a Jid,
    /// Names the archive result messages of a XEP-0313 query.
    pub ids: &'a mut Ids,
    /// The server grants roster access (XEP-0356): the presence and roster access models
    /// are offered.
    pub roster_granted: bool,
    /// The engine waits to be rebuilt from the store: only service-level requests are
    /// answered.
    pub degraded: bool,
    /// The request may wait for owners' rosters (it is not being decided again).
    pub may_wait: bool,
    /// The time the engine decides the request as of: when it arrived.
    pub as_of: Millis,
    /// The time now.
    pub now: Millis,
    /// Where requests are counted.
    pub metrics: &'a Metrics,
}

/// How an IQ was handled.
#[derive(Debug)]
pub enum Handled {
    /// Answered.
    Done(Effects),
    /// The engine needs these owners' rosters to decide: fetch them, then handle the request
    /// again (only when [`Context::may_wait`] and rosters can be fetched).
    NeedsRosters(Vec<BareJid>),
}

/// Handle `iq` on `svc`, counting it in the metrics by kind and outcome once it is
/// answered (a request waiting for rosters is counted when decided again).
pub fn handle<S: Store>(svc: &mut Service<S>, cx: Context<'_>, iq: &IqRequest) -> Handled {
    let metrics = cx.metrics;
    let (kind, handled) = decide(svc, cx, iq);
    if let Handled::Done(fx) = &handled {
        count(metrics, kind, fx);
    }
    handled
}

/// Count a request by the IQ answering it: the first IQ of its effects (archive result
/// messages may come before it).
pub fn count(metrics: &Metrics, kind: Kind, fx: &Effects) {
    let answer = fx.stanzas.iter().find_map(|st| match st {
        Stanza::Iq(Iq::Result { .. }) => Some(Outcome::Ok),
        Stanza::Iq(Iq::Error { error, .. }) => Some(Outcome::Error(&error.defined_condition)),
        _ => None,
    });
    if let Some(outcome) = answer {
        metrics.requests.count(kind, outcome);
        if kind == Kind::Publish && matches!(outcome, Outcome::Ok) {
            metrics.publishes.inc();
        }
    }
}

fn decide<S: Store>(svc: &mut Service<S>, cx: Context<'_>, iq: &IqRequest) -> (Kind, Handled) {
    let done = |fx| (Kind::Other, Handled::Done(fx));
    let admin = svc.policy().is_admin(&iq.from.to_bare());
    if let Some(answer) = service_level(&iq.kind, &iq.payload, cx.me, cx.roster_granted, admin) {
        let fx = Effects::stanza(reply(cx.me, iq, answer));
        return (Kind::Service, Handled::Done(fx));
    }
    // Until the engine is rebuilt from the store, its memory may hold changes the disk
    // lost: serve nothing from it.
    if cx.degraded {
        return done(Effects::stanza(refuse(
            cx.me,
            iq,
            refusal(&Refusal::Recovering),
        )));
    }
    let ask = admin::Ask {
        from: &iq.from,
        kind: iq.kind,
        payload: &iq.payload,
        now: cx.as_of,
        metrics: cx.metrics,
    };
    if let Some(answer) = admin::handle(svc, &ask) {
        let fx = match answer {
            Ok((command, mut fx)) => {
                fx.stanzas.insert(0, reply(cx.me, iq, Some(command)));
                fx
            }
            Err((error, mut fx)) => {
                fx.stanzas.insert(0, refuse(cx.me, iq, error));
                fx
            }
        };
        return (Kind::Admin, Handled::Done(fx));
    }
    let req = match pubsub::parse_request(iq.kind, &iq.payload, &iq.from) {
        None => {
            let why = Refusal::NotHandled(iq.payload.ns());
            return done(Effects::stanza(refuse(cx.me, iq, refusal(&why))));
        }
        Some(Err(e)) => return done(Effects::stanza(refuse(cx.me, iq, e))),
        Some(Ok(req)) => req,
    };
    let kind = Kind::of(&req);
    (kind, engine(svc, cx, iq, req))
}

/// A parsed request through the engine.
fn engine<S: Store>(
    svc: &mut Service<S>,
    cx: Context<'_>,
    iq: &IqRequest,
    req: roost_nodes::Request,
) -> Handled {
    let owner_ns = pubsub::owner_namespace(&req);
    // The payloads of a publish were serialized from the elements just parsed.
    let fresh = matches!(req, roost_nodes::Request::Publish { .. });
    let from = &iq.from;
    match svc.handle_streamed(from, req, cx.as_of) {
        Ok(outcome) => {
            let mut fx = Effects::none();
            if fresh {
                fx.fresh_payloads = outcome
                    .dispatches
                    .iter()
                    .filter_map(|d| match d {
                        roost_nodes::Dispatch::Fanout(f) => Some(f.event().clone()),
                        roost_nodes::Dispatch::One(_) => None,
                    })
                    .collect();
            }
            let mut result = pubsub::reply_payload(&outcome.reply, cx.me, owner_ns);
            let ids = cx.ids;
            if let Some(p) = result.as_mut() {
                pubsub::command_session(p, &iq.payload, || ids.next_id());
            }
            if cx.roster_granted && matches!(outcome.reply, Reply::Config { .. }) {
                if let Some(p) = result.as_mut() {
                    pubsub::offer_roster_models(p);
                }
            }
            // XEP-0313 §4.2: archive results go out before the IQ result.
            let msgs =
                pubsub::reply_messages(&outcome.reply, &iq.payload, cx.me, from, &mut || {
                    ids.next_id()
                });
            fx.stanzas.extend(msgs.into_iter().map(Stanza::from));
            fx.push(result_iq(cx.me, from, iq.id.clone(), result));
            fx.notify(outcome.dispatches);
            fx.stanzas.extend(
                presence::subscription_requests(svc, cx.me, cx.now)
                    .into_iter()
                    .map(Stanza::from),
            );
            Handled::Done(fx)
        }
        // The engine needs owners' rosters to decide: the caller fetches them and asks
        // again when they are in.
        Err(roost_nodes::Error::RosterNeeded(owners)) if cx.may_wait && cx.roster_granted => {
            Handled::NeedsRosters(owners)
        }
        Err(e) => {
            let mut fx = Effects::none();
            if fx.engine_error(&e) {
                error!(%from, "request failed, nothing was changed: {e}");
            } else {
                debug!(%from, "request refused: {e}");
            }
            fx.push(refuse(cx.me, iq, stanza_error(&e)));
            Handled::Done(fx)
        }
    }
}

/// The service's own disco#info, ping and version, and the discovery of its ad-hoc
/// commands; `None` for everything else.
fn service_level(
    kind: &IqKind,
    payload: &Element,
    me: &Jid,
    roster_granted: bool,
    admin: bool,
) -> Option<Option<Element>> {
    if !matches!(kind, IqKind::Get) {
        return None;
    }
    if let Some(answer) = pubsub::command_disco(payload, me, admin) {
        return Some(Some(answer));
    }
    if payload.is("query", ns::DISCO_INFO) && payload.attr("node").is_none() {
        let mut features: BTreeSet<String> = [
            ns::DISCO_INFO,
            ns::DISCO_ITEMS,
            ns::PING,
            ns::VERSION,
            ns::PUBSUB,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        features.extend(pubsub::FEATURES.iter().map(|f| f.to_string()));
        features.extend(pubsub::OTHER_FEATURES.iter().map(|f| f.to_string()));
        if roster_granted {
            features.extend(pubsub::ROSTER_FEATURES.iter().map(|f| f.to_string()));
        }
        return Some(Some(
            DiscoInfoResult {
                node: None,
                identities: vec![Identity::new("pubsub", "service", "en", "Roost")],
                features,
                extensions: Vec::new(),
            }
            .into(),
        ));
    }
    if payload.is("ping", ns::PING) {
        return Some(None);
    }
    if payload.is("query", ns::VERSION) {
        return Some(Some(
            VersionResult {
                name: "Roost".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                os: None,
            }
            .into(),
        ));
    }
    None
}

/// The result of `iq`, with `payload`.
fn reply(me: &Jid, iq: &IqRequest, payload: Option<Element>) -> Stanza {
    result_iq(me, &iq.from, iq.id.clone(), payload)
}

/// An IQ result from `me` to `to`.
pub fn result_iq(me: &Jid, to: &Jid, id: String, payload: Option<Element>) -> Stanza {
    Iq::Result {
        from: Some(me.clone()),
        to: Some(to.clone()),
        id,
        payload,
    }
    .into()
}

/// The error answering `iq`.
pub fn refuse(me: &Jid, iq: &IqRequest, error: StanzaError) -> Stanza {
    Iq::Error {
        from: Some(me.clone()),
        to: Some(iq.from.clone()),
        id: iq.id.clone(),
        payload: None,
        error,
    }
    .into()
}

/// A keepalive ping from `me` to the server `to`.
pub fn ping(me: &Jid, to: &str, id: String) -> Stanza {
    Iq::Get {
        from: Some(me.clone()),
        to: to.parse().ok(),
        id,
        payload: Ping.into(),
    }
    .into()
}
