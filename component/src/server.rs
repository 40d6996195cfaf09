//! The service loop: one task owns the link and the engine.
//!
//! One task drives everything because the engine is synchronous and its store calls are
//! short: a request is parsed, decided, committed and answered before the next one is read,
//! which gives FIFO order per publisher without locks.

use crate::link::{self, Backoff, Link, LinkError};
use crate::pubsub::{self, IqKind};
use crate::Config;
use futures::{FutureExt, SinkExt, StreamExt};
use minidom::Element;
use roost_nodes::{Jid, Service, Store};
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

/// Roost's stanza handling over one engine.
pub struct Roost<S: Store> {
    service: Service<S>,
    jid: Jid,
    server_domain: String,
    id_prefix: String,
    next_id: u64,
}

impl<S: Store> Roost<S> {
    /// Wrap an engine for the component domain of `cfg`.
    pub fn new(service: Service<S>, cfg: &Config) -> Self {
        let started = now_millis();
        Roost {
            service,
            jid: Jid::from(cfg.jid.clone()),
            server_domain: cfg.server_domain(),
            // Ids must not repeat across restarts, or a client could match a new stanza to an
            // old one; the start time makes the prefix unique per process.
            id_prefix: format!("roost-{started:x}"),
            next_id: 0,
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

    /// Handle one stanza; returns the stanzas to send, replies first.
    pub fn handle_stanza(&mut self, stanza: Stanza) -> Vec<Stanza> {
        match stanza {
            Stanza::Iq(Iq::Get {
                from: Some(from),
                id,
                payload,
                ..
            }) => self.handle_iq(IqKind::Get, from, id, payload),
            Stanza::Iq(Iq::Set {
                from: Some(from),
                id,
                payload,
                ..
            }) => self.handle_iq(IqKind::Set, from, id, payload),
            // Never answer results or errors (RFC 6120 §8.2.3); they are keepalive pongs or
            // bounces of our own notifications.
            Stanza::Iq(_) => Vec::new(),
            Stanza::Message(m) => {
                debug!(from = ?m.from, "ignoring message to the service");
                Vec::new()
            }
            Stanza::Presence(p) => {
                debug!(from = ?p.from, type_ = ?p.type_, "ignoring presence");
                Vec::new()
            }
        }
    }

    fn handle_iq(&mut self, kind: IqKind, from: Jid, id: String, payload: Element) -> Vec<Stanza> {
        let result = match self.service_level(&kind, &payload) {
            Some(r) => r,
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
                    let now = now_millis();
                    match self.service.handle(&from, req, now) {
                        Ok(outcome) => {
                            let mut out = Vec::with_capacity(1 + outcome.notifications.len());
                            out.push(self.result(
                                &from,
                                id,
                                pubsub::reply_payload(&outcome.reply, &self.jid, owner_ns),
                            ));
                            for n in &outcome.notifications {
                                let nid = self.new_id();
                                out.push(pubsub::notification_message(n, &self.jid, nid).into());
                            }
                            return out;
                        }
                        Err(e) => {
                            if matches!(e, roost_nodes::Error::Storage(_)) {
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

    /// Turn one raw element from the link into stanzas to send: a stanza is checked,
    /// converted and handled; one that breaks the rules gets `bad-request` where it has an id
    /// and a sender and is not itself an error or a result (RFC 6120 §8.3.1).
    fn handle_element(&mut self, el: Element) -> Vec<Stanza> {
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
                self.handle_stanza(st)
            }
            Err(e) => {
                warn!(from = ?from, "malformed <{name}/> refused: {e}");
                self.bad_stanza_reply(&name, from, id, type_, format!("malformed stanza: {e}"))
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
        why: String,
    ) -> Option<Stanza> {
        let from: Jid = from?.parse().ok()?;
        let id = id?;
        if matches!(type_.as_deref(), Some("error") | Some("result")) {
            return None;
        }
        let error = StanzaError::new(ErrorType::Modify, DefinedCondition::BadRequest, "en", why);
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
    fn withheld_errors(&self, out: Vec<Stanza>) -> Vec<Stanza> {
        out.into_iter()
            .filter_map(|st| match st {
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
            })
            .collect()
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

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

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
        let mut link = match connected {
            Ok(link) => link,
            // A wrong secret never heals. A conflict at first start means another instance
            // owns the domain; after a server restart it may be our own stale session, so
            // keep retrying then.
            Err(e @ LinkError::BadSecret { .. }) | Err(e @ LinkError::Refused { .. }) => {
                return Err(e.into())
            }
            Err(e @ LinkError::Conflict { .. }) if !ever_connected => return Err(e.into()),
            Err(e) => {
                warn!(attempt, "{e}; retrying");
                continue;
            }
        };
        ever_connected = true;
        backoff.reset();
        attempt = 0;
        info!(server = %cfg.server, "connected as {domain}");
        match serve(&mut link, roost, &mut shutdown).await {
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

/// Stanzas handled before one flush at most: bounds reply latency under a flood.
const MAX_BATCH: usize = 512;

/// What one element read from the link asks of the session.
enum Step {
    Send(Vec<Stanza>),
    End(SessionEnd),
}

fn step<S: Store>(roost: &mut Roost<S>, next: Option<Result<Element, ReadError>>) -> Step {
    match next {
        None => Step::End(SessionEnd::Disconnected(
            "the server closed the connection".into(),
        )),
        Some(Err(ReadError::SoftTimeout)) => {
            debug!("link idle; pinging the server");
            Step::Send(vec![roost.keepalive_ping()])
        }
        Some(Err(ReadError::ParseError(e))) => {
            warn!("unparsable element from the server, ignored: {e}");
            Step::Send(Vec::new())
        }
        Some(Err(ReadError::StreamFooterReceived)) => Step::End(SessionEnd::Disconnected(
            "the server closed the stream".into(),
        )),
        Some(Err(ReadError::HardError(e))) => Step::End(SessionEnd::Disconnected(e.to_string())),
        Some(Ok(el)) if el.is("error", link::NS_STREAM) => {
            let why = xmpp_parsers::stream_error::StreamError::try_from(el)
                .map(|e| e.to_string())
                .unwrap_or_else(|e| e.to_string());
            Step::End(SessionEnd::Disconnected(format!(
                "stream error from the server: {why}"
            )))
        }
        Some(Ok(el)) => Step::Send(roost.handle_element(el)),
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
    roost: &mut Roost<S>,
    shutdown: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut out: Vec<Stanza> = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => return SessionEnd::Shutdown,
            next = link.next() => next,
        };
        let mut end = None;
        let mut pending = Some(first);
        let mut handled = 0;
        while let Some(next) = pending.take() {
            match step(roost, next) {
                Step::Send(v) => out.extend(v),
                Step::End(e) => {
                    end = Some(e);
                    break;
                }
            }
            handled += 1;
            if handled < MAX_BATCH {
                // Only what is already buffered: never wait here.
                pending = link.next().now_or_never();
            }
        }
        if let Err(e) = roost.service_mut().store_mut().sync() {
            // The batch's changes are applied but maybe not on disk: acknowledge none of
            // them. Clients see the requests fail; the state stays as committed.
            error!(
                "flushing the store failed; {} stanzas withheld: {e}",
                out.len()
            );
            out = roost.withheld_errors(std::mem::take(&mut out));
        }
        for st in out.drain(..) {
            trace!(stanza = ?st, "out");
            if let Err(e) = link.feed(&st).await {
                return SessionEnd::Disconnected(format!("write failed: {e}"));
            }
        }
        if let Err(e) = SinkExt::<&Stanza>::flush(link).await {
            return SessionEnd::Disconnected(format!("write failed: {e}"));
        }
        if let Some(e) = end {
            return e;
        }
    }
}
