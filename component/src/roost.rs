//! [`Roost`]: the engine and the state around it on one connection. One stanza, tick or
//! connection start in, its [`Effects`] out.
//!
//! Routing only: ingress checks are in [`crate::ingress`], IQ handling in [`crate::iq`],
//! presence in [`crate::presence`], rosters in [`crate::rosters`], relays in
//! [`crate::relay`], recovery in [`crate::recovery`]; what is sent, and when, is decided by
//! the service loop ([`crate::session`]) with the [`crate::outbox`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use minidom::Element;
use roost_nodes::{Jid, Millis, Service, Store};
use tracing::{debug, error, info, trace};
use xmpp_parsers::iq::Iq;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza::Stanza;

use crate::effects::Effects;
use crate::encoder::StanzaEncoder;
use crate::errors::{refusal, stanza_error, Refusal};
use crate::ingress::{self, Admission};
use crate::iq::{self, Context, Handled, IqRequest};
use crate::link::LinkWriter;
use crate::metrics::{Kind, Metrics};
use crate::outbox::{Ids, Outbox};
use crate::presence::{self, Probing};
use crate::privilege::{self, Waiting};
use crate::pubsub::{self, IqKind};
use crate::quota::Quotas;
use crate::recovery::{Recover, Recovery};
use crate::relay::Relays;
use crate::rosters::Rosters;
use crate::Config;

/// Roost's stanza handling over one engine.
pub struct Roost<S: Store> {
    service: Service<S>,
    /// The component's JID.
    me: Jid,
    /// The server's domain: where privileges and roster pushes come from.
    server_domain: String,
    ids: Ids,
    quotas: Option<Quotas>,
    pub(crate) recovery: Recovery<S>,
    probing: Probing,
    /// Relay nodes: mirrors of nodes of other pubsub services.
    relays: Relays,
    /// XEP-0356 privileges and the owners' rosters.
    rosters: Rosters,
    /// Run after each durable batch, before the next: online backups.
    between_batches: Option<crate::backup::Hook<S>>,
    /// Counters and histograms, shared with the metrics endpoint.
    metrics: Arc<Metrics>,
}

impl<S: Store> Roost<S> {
    /// Wrap an engine for the component domain of `cfg`.
    pub fn new(service: Service<S>, cfg: &Config) -> Self {
        // Ids must not repeat across restarts, or a client could match a new stanza to an
        // old one; the start time makes the prefix unique per process.
        let id_prefix = format!("roost-{:x}", now_millis());
        Roost {
            relays: Relays::new(&cfg.relays, &id_prefix),
            service,
            me: Jid::from(cfg.jid.clone()),
            server_domain: cfg.server_domain(),
            ids: Ids::new(id_prefix),
            quotas: cfg.rate_limit.map(Quotas::new),
            recovery: Recovery::default(),
            probing: Probing::default(),
            rosters: Rosters::default(),
            between_batches: None,
            metrics: Arc::new(Metrics::new()),
        }
    }

    /// Run `hook` after each batch that is durable, before the next batch is read: no
    /// commit is under way then (online backups, [`crate::backup`]).
    pub fn with_between_batches(mut self, hook: crate::backup::Hook<S>) -> Self {
        self.between_batches = Some(hook);
        self
    }

    /// Apply a reloaded configuration (see [`crate::reload`]): the engine's policy and the
    /// request rate (every JID's allowance starts afresh).
    pub fn reload(&mut self, cfg: &Config) {
        self.service.set_policy(cfg.policy.clone());
        self.quotas = cfg.rate_limit.map(Quotas::new);
        info!("configuration reloaded: limits, admins, rate and log filter in force");
    }

    /// The service's metrics, shared with the metrics endpoint.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// After a storage failure, rebuild the engine with `recover` instead of carrying on
    /// with memory that may be ahead of the disk. Without it a failure only withholds the
    /// batch's acknowledgements.
    pub fn with_recovery(mut self, recover: Recover<S>) -> Self {
        self.recovery = Recovery::new(recover);
        self
    }

    /// True while the engine waits to be rebuilt from the store; requests then fail with
    /// `internal-server-error` (wait).
    pub fn is_degraded(&self) -> bool {
        self.recovery.is_degraded()
    }

    /// The engine, e.g. to flush its store on shutdown.
    pub fn service_mut(&mut self) -> &mut Service<S> {
        &mut self.service
    }

    /// Called after each batch's sync (`durable`: the sync and every storage call of the
    /// batch succeeded): on a failure, rebuild the engine from the store so that memory
    /// equals what is durable. While that fails, stay degraded and try again (see
    /// [`Roost::try_recover`]).
    pub fn after_batch(&mut self, durable: bool) {
        self.recovery.after_batch(durable);
        self.try_recover();
        if !self.is_degraded() {
            if let Some(hook) = self.between_batches.as_mut() {
                hook(&mut self.service);
            }
        }
    }

    /// While degraded, rebuild the engine from the store (at most once per
    /// [`crate::recovery::RECOVERY_INTERVAL_MS`]).
    pub fn try_recover(&mut self) {
        if self.recovery.try_recover(&mut self.service, now_millis()) {
            // The rebuilt engine knows no rosters and no presence: fetch and probe again.
            self.rosters.engine_replaced(&mut self.service);
            self.probing.engine_replaced();
            info!("store reopened; the service state is what is on disk again");
        }
    }

    /// Serialize the front of `outbox` into `w`'s buffer, up to `budget` bytes (see
    /// [`Outbox::fill`]).
    pub fn write(&mut self, outbox: &mut Outbox, w: &mut LinkWriter, budget: usize) {
        self.fill(outbox, &mut w.encoder, &mut w.buf, budget);
    }

    /// [`Roost::write`] into any buffer.
    pub fn fill(
        &mut self,
        outbox: &mut Outbox,
        enc: &mut StanzaEncoder,
        buf: &mut Vec<u8>,
        budget: usize,
    ) {
        let sent = outbox.fill(&self.service, &self.me, &mut self.ids, enc, buf, budget);
        if sent > 0 {
            self.metrics.notifications.inc_by(sent);
        }
    }

    /// A keepalive ping to the server.
    pub fn keepalive_ping(&mut self) -> Stanza {
        iq::ping(&self.me, &self.server_domain, self.ids.next_id())
    }

    /// Handle one raw element from the link (see [`crate::ingress`]).
    pub fn handle_element(&mut self, el: Element) -> Effects {
        match ingress::admit(el, &self.me) {
            Admission::Handle(st) => {
                trace!(stanza = ?st, "in");
                self.handle_stanza(st)
            }
            Admission::Refuse(reply) => Effects::stanza(reply),
            Admission::Drop => Effects::none(),
        }
    }

    /// Handle one stanza.
    pub fn handle_stanza(&mut self, stanza: Stanza) -> Effects {
        match stanza {
            Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }) if payload.is("query", xmpp_parsers::ns::ROSTER)
                && self.rosters.is_push(&from, &self.server_domain) =>
            {
                Effects::stanza(
                    self.rosters
                        .push(&mut self.service, &self.me, from, id, payload),
                )
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
            }) => self.handle_iq(
                IqRequest {
                    kind: IqKind::Get,
                    from,
                    id,
                    payload,
                },
                None,
            ),
            Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }) => self.handle_iq(
                IqRequest {
                    kind: IqKind::Set,
                    from,
                    id,
                    payload,
                },
                None,
            ),
            // Gets and sets without a sender: nobody to answer.
            Stanza::Iq(_) => Effects::none(),
            Stanza::Message(m) => self.handle_message(m),
            Stanza::Presence(p) => {
                if self.is_degraded() {
                    return Effects::none();
                }
                presence::handle_presence(&mut self.service, &self.me, p, now_millis())
            }
        }
    }

    /// What to send first on every (re)connect: the requests that waited for rosters of the
    /// old connection are decided without them, and every user whose presence the service
    /// needs is probed, since what it knew may be stale.
    pub fn on_connect(&mut self) -> Effects {
        let waiting = self.rosters.reset(&mut self.service);
        let mut fx = self.decide_again(waiting);
        fx.extend(self.probe_all());
        fx
    }

    /// Presence probes, and the relays started again.
    fn probe_all(&mut self) -> Effects {
        let now = now_millis();
        let mut fx = Effects::stanzas(self.probing.probe_all(&mut self.service, &self.me, now));
        if !self.is_degraded() && !self.relays.is_empty() {
            fx.extend(self.relays.on_connect(&mut self.service, &self.me, now));
        }
        fx
    }

    /// Time-driven work: presence grace, roster upkeep, relays, and the engine's own (item
    /// expiry, subscription leases, digests).
    pub fn tick(&mut self) -> Effects {
        self.metrics.set_store_ok(!self.is_degraded());
        if self.is_degraded() {
            return Effects::none();
        }
        self.metrics.set_totals(&self.service.stats());
        let now = now_millis();
        self.probing.tick(&mut self.service, now);
        let mut fx = if self.probing.probe_again() {
            self.probe_all()
        } else {
            Effects::none()
        };
        let ready = self.rosters.timed_out(now);
        fx.extend(self.decide_again(ready));
        fx.stanzas.extend(
            self.rosters
                .refresh(&mut self.service, &self.me, &mut self.ids, now),
        );
        if !self.relays.is_empty() {
            fx.extend(self.relays.tick(&mut self.service, &self.me, now));
        }
        match self.service.tick_streamed(now) {
            Ok(notifications) => fx.notify(notifications),
            Err(e) => {
                fx.engine_error(&e);
                error!("timed work failed, nothing was changed: {e}");
            }
        }
        fx
    }

    /// Messages to the service: the server's privilege advertisement, bounces, relayed
    /// upstream notifications, and an owner's answer to a subscription authorization request
    /// (§8.6, a request without a reply); every other message is ignored.
    fn handle_message(&mut self, m: Message) -> Effects {
        let Some(from) = m.from.clone() else {
            return Effects::none();
        };
        // XEP-0356 §4.1: the server (our domain itself, nobody else) advertises what the
        // service may do.
        if from.node().is_none() && from.domain().as_str() == self.server_domain {
            if let Some(p) = privilege::parse_advertisement(&m) {
                let now = now_millis();
                return Effects::stanzas(self.rosters.advertised(
                    &mut self.service,
                    p,
                    &self.me,
                    &mut self.ids,
                    now,
                ));
            }
        }
        if m.type_ == MessageType::Error {
            if !self.is_degraded() {
                presence::bounced(&mut self.service, &from);
            }
            return Effects::none();
        }
        if !self.is_degraded() {
            if let Some(fx) =
                self.relays
                    .handle_message(&mut self.service, &self.me, &m, now_millis())
            {
                return fx;
            }
        }
        let req = match pubsub::parse_message(&m, &from) {
            None => {
                debug!(%from, "ignoring message to the service");
                return Effects::none();
            }
            Some(Err(e)) => {
                debug!(%from, "malformed authorization answer: {:?}", e.texts);
                return Effects::none();
            }
            Some(Ok(req)) => req,
        };
        let mut fx = Effects::none();
        let now = now_millis();
        match self.service.handle_streamed(&from, req, now) {
            Ok(outcome) => {
                fx.notify(outcome.dispatches);
                fx.stanzas.extend(
                    presence::subscription_requests(&mut self.service, &self.me, now)
                        .into_iter()
                        .map(Stanza::from),
                );
            }
            Err(e) => {
                if fx.engine_error(&e) {
                    error!(%from, "authorization answer failed, nothing was changed: {e}");
                } else {
                    debug!(%from, "authorization answer refused: {e}");
                }
            }
        }
        fx
    }

    /// A result or error IQ: the answer to one of our roster gets or to a relay's request.
    fn handle_iq_answer(&mut self, iq: Iq) -> Effects {
        if let Some(ready) = self.rosters.answered(&mut self.service, &iq, now_millis()) {
            return self.decide_again(ready);
        }
        if self.is_degraded() {
            return Effects::none();
        }
        self.relays
            .handle_iq_response(&mut self.service, &self.me, &iq, now_millis())
            .unwrap_or_default()
    }

    /// An IQ get or set. `waited_since` is `None` for a request that has just arrived (it
    /// may wait for owners' rosters), and its arrival time when it is decided again after
    /// waiting: the engine decides it as of then (and it was counted against the rate when
    /// it arrived).
    fn handle_iq(&mut self, req: IqRequest, waited_since: Option<Millis>) -> Effects {
        let now = now_millis();
        let may_wait = waited_since.is_none();
        let over_quota = match self.quotas.as_mut() {
            Some(q) if may_wait => !q.allow(&req.from.to_bare(), now),
            _ => false,
        };
        if over_quota {
            debug!(from = %req.from, "request rate over quota");
            let refused = iq::refuse(&self.me, &req, refusal(&Refusal::RateLimited));
            let fx = Effects::stanza(refused);
            iq::count(&self.metrics, Kind::Other, &fx);
            return fx;
        }
        let cx = Context {
            me: &self.me,
            ids: &mut self.ids,
            roster_granted: self.rosters.granted(),
            degraded: self.recovery.is_degraded(),
            may_wait,
            as_of: waited_since.unwrap_or(now),
            now,
            metrics: &self.metrics,
        };
        match iq::handle(&mut self.service, cx, &req) {
            Handled::Done(fx) => fx,
            Handled::NeedsRosters(owners) => {
                let from = req.from.clone();
                let parked = self.rosters.park(Waiting {
                    kind: req.kind,
                    from: req.from.clone(),
                    id: req.id.clone(),
                    payload: req.payload.clone(),
                    needs: owners.iter().cloned().collect(),
                    arrived: now,
                });
                if !parked {
                    let error = stanza_error(&roost_nodes::Error::RosterNeeded(owners));
                    return Effects::stanza(iq::refuse(&self.me, &req, error));
                }
                debug!(%from, "request waits for rosters");
                Effects::stanzas(self.rosters.fetch(owners, &self.me, &mut self.ids, now))
            }
        }
    }

    /// Handle again requests that waited for rosters, as of their arrival, without letting
    /// them wait again.
    fn decide_again(&mut self, ready: Vec<Waiting>) -> Effects {
        let mut fx = Effects::none();
        for w in ready {
            let req = IqRequest {
                kind: w.kind,
                from: w.from,
                id: w.id,
                payload: w.payload,
            };
            fx.extend(self.handle_iq(req, Some(w.arrived)));
        }
        fx
    }
}

#[cfg(test)]
impl<S: Store> Roost<S> {
    /// Handle `stanza`; everything it sends, notifications built as messages.
    pub(crate) fn exchange(&mut self, stanza: Stanza) -> Vec<Stanza> {
        let fx = self.handle_stanza(stanza);
        self.as_stanzas(fx)
    }

    /// The stanzas of `fx`, then its notifications (fan-outs walked whole) built as
    /// messages.
    pub(crate) fn as_stanzas(&mut self, fx: Effects) -> Vec<Stanza> {
        let mut out = fx.stanzas;
        let mut notifications = Vec::new();
        for d in fx.notifications {
            match d {
                roost_nodes::Dispatch::One(n) => notifications.push(n),
                roost_nodes::Dispatch::Fanout(f) => {
                    while !self.service.walk(&f, usize::MAX, &mut notifications) {}
                }
            }
        }
        for n in &notifications {
            let id = self.ids.next_id();
            out.push(pubsub::notification_message(n, &self.me, id).into());
        }
        out
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outgoing;
    use clap::Parser;
    use roost_nodes::{MemStore, Policy};
    use std::cell::Cell;
    use std::rc::Rc;
    use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

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

    /// One element as a batch of its own: its stanzas, then the end of the batch (a
    /// successful sync; the batch fails when a storage call did).
    fn batch(roost: &mut Roost<MemStore>, el: Element) -> Vec<Stanza> {
        let fx = roost.handle_element(el);
        roost.after_batch(!fx.storage_failed);
        fx.stanzas
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
        assert!(is_result(&batch(&mut roost, create("a", "1"))));
        assert_eq!(calls.get(), 0, "no failure, no recovery");

        roost.service_mut().store_mut().fail_next = Some("disk full".into());
        let out = batch(&mut roost, create("b", "2"));
        assert_eq!(
            error_of(&out),
            Some((ErrorType::Wait, DefinedCondition::InternalServerError))
        );
        assert_eq!(
            calls.get(),
            1,
            "a storage failure triggers recovery at once"
        );
        assert!(roost.is_degraded(), "recovery failed: stay degraded");

        // Degraded: the engine is not touched, even for requests that would succeed.
        let out = batch(&mut roost, create("c", "3"));
        assert_eq!(
            error_of(&out),
            Some((ErrorType::Wait, DefinedCondition::InternalServerError))
        );
        assert_eq!(calls.get(), 1, "retries are throttled");

        fail_recovery.set(false);
        roost.recovery.last_attempt_ms = 0;
        roost.try_recover();
        assert!(!roost.is_degraded());
        assert_eq!(calls.get(), 2);
        // The rebuilt engine holds what the store holds: here, nothing, so `a` is gone.
        assert!(is_result(&batch(&mut roost, create("a", "4"))));
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
            roost.tick().stanzas.is_empty(),
            "nothing to probe before the failure"
        );
        roost.after_batch(false);
        assert!(!roost.is_degraded());
        let probes: Vec<_> = roost
            .tick()
            .stanzas
            .into_iter()
            .filter_map(|st| match st {
                Stanza::Presence(p) if p.type_ == xmpp_parsers::presence::Type::Probe => {
                    p.to.map(|t| t.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(probes, vec!["bob@localhost".to_owned()]);
        assert!(roost.tick().stanzas.is_empty(), "probed once");
    }

    #[test]
    fn failed_sync_withholds_acks_and_notifications() {
        let (mut roost, calls) =
            roost_with_recovery(MemStore::default(), Rc::new(Cell::new(false)));
        let mut out = Outbox::default();
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
            let fx = roost.handle_element(el);
            assert!(is_result(&fx.stanzas));
            out.push(fx);
        }
        assert!(
            matches!(out.queued().last(), Some(Outgoing::Notifications(n)) if n.len() == 1),
            "the publish notifies the subscriber, after its result"
        );
        out.withhold();
        let stanzas: Vec<&Stanza> = out
            .queued()
            .map(|o| match o {
                Outgoing::Stanza(st) => st,
                Outgoing::Notifications(_) => panic!("notifications withheld"),
            })
            .collect();
        assert_eq!(stanzas.len(), 3);
        for st in stanzas {
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
        use crate::outbox::WALK_CHUNK;
        let mut roost = Roost::new(
            Service::open(MemStore::default(), Policy::default()).unwrap(),
            &config(&["--rate-limit", "0"]),
        );
        assert!(is_result(&roost.handle_element(create("a", "1")).stanzas));
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
        let mut out = Outbox::default();
        out.push(roost.handle_element(publish));
        let (mut enc, mut buf) = (StanzaEncoder::new(), Vec::new());
        let mut take = |roost: &mut Roost<MemStore>, out: &mut Outbox, budget| {
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
        let fx = roost.handle_element(create("a", "1"));
        assert!(fx.storage_failed, "the failure is in the effects");
        assert!(error_of(&fx.stanzas).is_some());
        roost.after_batch(false);
        assert!(!roost.is_degraded());
        assert!(is_result(&batch(&mut roost, create("a", "2"))));
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
        assert!(is_result(&roost.handle_element(ping("1")).stanzas));
        assert!(is_result(&roost.handle_element(ping("2")).stanzas));
        assert_eq!(
            error_of(&roost.handle_element(ping("3")).stanzas),
            Some((ErrorType::Wait, DefinedCondition::ResourceConstraint))
        );
    }
}
