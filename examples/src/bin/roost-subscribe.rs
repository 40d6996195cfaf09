//! `roost-subscribe`: subscribe to a Roost (XEP-0060) pubsub node as a plain
//! XMPP client and print the items published to it.
//!
//! It logs in to an ordinary XMPP account (c2s, `jabber:client`), sends
//! presence, subscribes its bare JID to the node (printing the subscription
//! state the service reports), then prints one line per item notification:
//!
//! ```text
//! <node> <item id> <Atom title text, or the payload XML>
//! ```
//!
//! With `--count N` it exits after N items; otherwise it runs until Ctrl-C.
//!
//! With `--filter EXPR` it makes a content-filtered subscription (Roost's
//! `x-roost#filter` option, feature `urn:roost:filter:0`): only items whose payload
//! matches EXPR are sent, e.g. `--filter "@level = 'error' and @host ^= 'web-'"` for
//! items published with `roost-publish --attr level=error --attr host=web-1`. Each
//! such subscription is a new one with its own subid (printed), so several can run
//! side by side for one account; a filter that does not parse is refused with the
//! place and the reason.
//!
//! ```text
//! roost-subscribe --jid bob@localhost --password pw \
//!     --service pubsub.localhost --node news --count 2
//! ```
//!
//! Run with `RUST_LOG=debug` to see the connection and XMPP traffic.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Parser;
use futures::StreamExt;
use minidom::Element;
use roost_examples::connect::{self, ConnectArgs};
use tokio_xmpp::stanzastream::{Event as StreamEvent, StanzaStream, StreamEvent as StreamState};
use tokio_xmpp::Stanza;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::iq::{Iq, IqSetPayload};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::pubsub::event::{Event as PubSubEvent, Payload};
use xmpp_parsers::pubsub::pubsub::{Options, Subscribe};
use xmpp_parsers::pubsub::{NodeName, PubSub};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Namespace of the Atom payload `roost-publish` sends (RFC 4287).
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
/// XEP-0060 main namespace, used to read the subscribe reply by hand.
const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";
/// FORM_TYPE of the subscription options form (XEP-0060 §16.4.2).
const SUBSCRIBE_OPTIONS_NS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";

/// Subscribe to a node of a Roost pubsub service and print its items.
///
/// Prints one line per published item: `<node> <item id> <title or payload>`.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Account to log in with, e.g. bob@localhost (a resource is optional).
    #[arg(long)]
    jid: Jid,

    /// Password of that account.
    #[arg(long, env = "ROOST_PASSWORD", hide_env_values = true)]
    password: String,

    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    connect: ConnectArgs,

    /// JID of the pubsub service (the Roost component).
    #[arg(long, default_value = "pubsub.localhost")]
    service: Jid,

    /// Node to subscribe to.
    #[arg(long)]
    node: String,

    /// Only items whose payload matches this content filter (Roost's `x-roost#filter`),
    /// e.g. "@level = 'error' and (@host = 'web-1' or @host = 'web-2')".
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,

    /// Exit after this many item notifications (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    count: Option<u64>,

    /// Seconds to wait for login and for the reply to the subscribe request.
    #[arg(long, default_value_t = 15)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost-subscribe: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut session = Session::connect(&args).await?;
    let result = subscribe_and_print(&mut session, &args).await;
    // Close the stream politely (</stream:stream>) even after an error.
    session.close().await;
    result
}

async fn subscribe_and_print(session: &mut Session, args: &Args) -> anyhow::Result<()> {
    let (state, subid) =
        subscribe(session, &args.service, &args.node, args.filter.as_deref()).await?;
    // Scripts look for "subscription to NODE: STATE"; the subid comes after it.
    match subid {
        Some(subid) => eprintln!("subscription to {}: {state} (subid {subid})", args.node),
        None => eprintln!("subscription to {}: {state}", args.node),
    }
    if state == "pending" || state == "unconfigured" {
        eprintln!("(items arrive only once the subscription is approved/configured)");
    }

    // A Ctrl-C future created once, so every loop turn polls the same one.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut seen: u64 = 0;
    while args.count.is_none_or(|n| seen < n) {
        let message = tokio::select! {
            _ = &mut ctrl_c => break,
            message = session.next_message() => message?,
        };
        // Only trust events from the service we subscribed to.
        if message.from.as_ref() != Some(&args.service) {
            continue;
        }
        if message.type_ == MessageType::Error {
            eprintln!(
                "error message from {}: {}",
                args.service,
                message_error(&message)
            );
            continue;
        }
        seen += print_items(&message);
    }
    // We leave the subscription in place: pubsub subscriptions are meant to
    // outlive a session (send <unsubscribe/> to end it).
    Ok(())
}

/// `<iq type='set'><pubsub><subscribe node='NODE' jid='BARE'/></pubsub></iq>`, with
/// a filter subscribe-and-configure (XEP-0060 §6.3.7) with `x-roost#filter`, returning
/// the `subscription` state from the reply ("subscribed", ...) and the subid.
async fn subscribe(
    session: &mut Session,
    service: &Jid,
    node: &str,
    filter: Option<&str>,
) -> anyhow::Result<(String, Option<String>)> {
    // XEP-0060 §6.1.3: the jid must be our bare JID.
    let jid = Jid::from(session.bound.to_bare());
    let options = filter.map(|expr| Options {
        jid: jid.clone(),
        node: Some(NodeName(node.to_owned())),
        subid: None,
        form: Some(DataForm::new(
            DataFormType::Submit,
            SUBSCRIBE_OPTIONS_NS,
            vec![Field::text_single("x-roost#filter", expr)],
        )),
    });
    let request = PubSub::Subscribe {
        subscribe: Some(Subscribe {
            jid,
            node: Some(NodeName(node.to_owned())),
        }),
        options,
    };
    let payload = match session.iq_set(service, request).await? {
        Ok(payload) => payload,
        Err(e) => bail!("subscribing to node {node} failed: {}", describe_error(&e)),
    };

    // The reply is <pubsub><subscription node jid subid subscription='subscribed'/></pubsub>.
    // xmpp-parsers parses it into PubSub::Subscription(SubscriptionElem), but
    // SubscriptionElem's fields are private in 0.23, so we read the
    // attribute straight from the minidom Element instead.
    let sub = payload
        .as_ref()
        .and_then(|pubsub| pubsub.get_child("subscription", PUBSUB_NS));
    let state = sub
        .and_then(|sub| sub.attr("subscription"))
        // An empty result is allowed and means the request succeeded.
        .unwrap_or("subscribed");
    let subid = sub.and_then(|sub| sub.attr("subid")).map(str::to_owned);
    Ok((state.to_owned(), subid))
}

/// Print one line per published item in a pubsub event message and return
/// how many were printed. Other events (retract, purge, delete, ...) are
/// only logged.
fn print_items(message: &Message) -> u64 {
    let mut printed = 0;
    for payload in &message.payloads {
        // Non-pubsub payloads (delay, addresses, ...) fail to parse: skip them.
        let Ok(event) = PubSubEvent::try_from(payload.clone()) else {
            continue;
        };
        match event.payload {
            Payload::Items {
                node,
                published,
                retracted,
            } => {
                for item in published {
                    let id = item.id.map(|id| id.0).unwrap_or_else(|| "-".to_owned());
                    let text = item
                        .payload
                        .as_ref()
                        .map(payload_text)
                        .unwrap_or_else(|| "(no payload)".to_owned());
                    println!("{} {id} {text}", node.0);
                    printed += 1;
                }
                for id in retracted {
                    tracing::info!(node = node.0, id = id.0, "item retracted");
                }
            }
            other => tracing::info!(node = other.node_name().0, "other pubsub event: {other:?}"),
        }
    }
    printed
}

/// The Atom `<title>` text when the payload is an Atom entry, else the
/// payload serialised as XML.
fn payload_text(payload: &Element) -> String {
    if payload.is("entry", ATOM_NS) {
        if let Some(title) = payload.get_child("title", ATOM_NS) {
            return title.text();
        }
    }
    String::from(payload)
}

/// A logged-in, available client session on top of tokio-xmpp's
/// `StanzaStream`.
///
/// Why not `tokio_xmpp::Client` and its `send_iq`? In tokio-xmpp 6.0.0 the
/// `Client` splits the stream into a sender and a receiver that share a
/// mutex, and the receiver returns `Pending` *without registering a wakeup*
/// when the sender holds that mutex. If that happens while an IQ is being
/// sent, the reply is received but never delivered, and `send_iq` hangs
/// (seen in practice with roost-publish). Owning the `StanzaStream`
/// directly and matching replies by id ourselves avoids the shared mutex
/// altogether; it is the same pattern as tokio-xmpp's own
/// `examples/keep_connection.rs`.
struct Session {
    stream: StanzaStream,
    /// Our full JID, as bound by the server.
    bound: Jid,
    /// How long to wait for login and for each IQ reply.
    limit: Duration,
    /// Counter for unique IQ ids.
    next_id: u64,
}

impl Session {
    /// Connect, authenticate, bind a resource and send available presence.
    ///
    /// Gives up after `--timeout` seconds, or at once when retrying cannot help
    /// (untrusted certificate, wrong password: see `roost_examples::connect`).
    async fn connect(args: &Args) -> anyhow::Result<Session> {
        let limit = Duration::from_secs(args.timeout);
        let (stream, bound) = connect::login(
            &args.connect,
            args.jid.clone(),
            args.password.clone(),
            limit,
            16,
        )
        .await?;
        eprintln!("connected as {bound}");
        let session = Session {
            stream,
            bound,
            limit,
            next_id: 0,
        };
        session.send_presence().await;
        Ok(session)
    }

    /// Available presence. We subscribe the *bare* JID, so the service sends
    /// notifications to bob@localhost and the server routes them to the
    /// account's available resources. Without presence this session is not
    /// available and the server would not deliver them here.
    async fn send_presence(&self) {
        let presence = Presence::new(PresenceType::None);
        self.stream.send(Box::new(presence.into())).await;
    }

    /// Send `<iq type='set'>` with `payload` to `to` and wait for the reply.
    ///
    /// Returns `Ok(Ok(payload))` for a result, `Ok(Err(error))` for an IQ
    /// error, and `Err` when there is no reply within the time limit or the
    /// connection is gone. Messages arriving meanwhile are dropped: nothing
    /// of interest can arrive before we are subscribed.
    async fn iq_set(
        &mut self,
        to: &Jid,
        payload: impl IqSetPayload,
    ) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
        self.next_id += 1;
        let id = format!("roost-subscribe-{}", self.next_id);
        let iq = Iq::from_set(id.clone(), payload).with_to(to.clone());
        self.stream.send(Box::new(iq.into())).await;

        let limit = self.limit;
        let reply = async {
            loop {
                match self.next_stanza().await? {
                    // The reply: same id, from the entity we asked.
                    Stanza::Iq(Iq::Result {
                        from,
                        id: rid,
                        payload,
                        ..
                    }) if rid == id && from.as_ref() == Some(to) => return Ok(Ok(payload)),
                    Stanza::Iq(Iq::Error {
                        from,
                        id: rid,
                        error,
                        ..
                    }) if rid == id && from.as_ref() == Some(to) => return Ok(Err(error)),
                    other => tracing::debug!(stanza = ?other, "ignoring stanza"),
                }
            }
        };
        tokio::time::timeout(limit, reply).await.map_err(|_| {
            anyhow!(
                "no reply from {to} within {}s (is the service running?)",
                limit.as_secs()
            )
        })?
    }

    /// The next incoming `<message/>`.
    async fn next_message(&mut self) -> anyhow::Result<Message> {
        loop {
            match self.next_stanza().await? {
                Stanza::Message(message) => return Ok(message),
                other => tracing::debug!(stanza = ?other, "ignoring stanza"),
            }
        }
    }

    /// The next incoming stanza, after the housekeeping every client owes:
    /// IQ requests to us get an error reply, and after an automatic
    /// reconnect (a new session) presence is sent again.
    async fn next_stanza(&mut self) -> anyhow::Result<Stanza> {
        loop {
            match self.stream.next().await {
                None => bail!("connection closed"),
                Some(StreamEvent::Stream(StreamState::Reset { bound_jid, .. })) => {
                    eprintln!("reconnected as {bound_jid}");
                    self.bound = bound_jid;
                    self.send_presence().await;
                }
                Some(StreamEvent::Stream(_)) => {}
                // Requests to us (ping, disco, ...) must get an answer
                // (RFC 6120 §8.2.3); we support none of them.
                Some(StreamEvent::Stanza(Stanza::Iq(
                    request @ (Iq::Get { .. } | Iq::Set { .. }),
                ))) => self.refuse(request).await,
                Some(StreamEvent::Stanza(stanza)) => return Ok(stanza),
            }
        }
    }

    /// Answer an IQ request with `service-unavailable`.
    async fn refuse(&self, request: Iq) {
        let Some(from) = request.from().cloned() else {
            return;
        };
        let error = StanzaError::new(
            ErrorType::Cancel,
            DefinedCondition::ServiceUnavailable,
            "en",
            "not supported by this client",
        );
        let reply = Iq::from_error(request.id().to_owned(), error).with_to(from);
        self.stream.send(Box::new(reply.into())).await;
    }

    /// Send `</stream:stream>` and wait for the connection to wind down.
    async fn close(self) {
        self.stream.close().await;
    }
}

/// Render a stanza error as `condition (type) [app-condition]: text`.
fn describe_error(error: &StanzaError) -> String {
    // The condition is an XML element (<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>);
    // its element name is the readable form.
    let condition = Element::from(error.defined_condition.clone())
        .name()
        .to_owned();
    let mut out = format!("{condition} ({})", error.type_);
    // XEP-0060 adds a pubsub#errors element, e.g. <invalid-jid/>, <closed-node/>.
    if let Some(other) = &error.other {
        out.push_str(&format!(" [{}]", other.name()));
    }
    if let Some(text) = error.texts.values().next() {
        out.push_str(&format!(": {text}"));
    }
    out
}

/// The `<error/>` of a `type='error'` message, described like an IQ error.
fn message_error(message: &Message) -> String {
    message
        .payloads
        .iter()
        .find_map(|p| StanzaError::try_from(p.clone()).ok())
        .map(|e| describe_error(&e))
        .unwrap_or_else(|| "(no error element)".to_owned())
}

/// Log to stderr; `RUST_LOG` overrides the default (warnings only).
/// tokio-xmpp logs through the `log` crate, which tracing-subscriber picks up.
fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal, so redirected logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
