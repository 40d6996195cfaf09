//! `roost-publish`: publish items to a Roost (XEP-0060) pubsub node as a plain
//! XMPP client.
//!
//! It logs in to an ordinary XMPP account (c2s, `jabber:client`), optionally
//! creates the node, then publishes one item per text argument (or per line of
//! stdin when there are none). Every item carries an Atom entry payload:
//!
//! ```xml
//! <entry xmlns='http://www.w3.org/2005/Atom'><title>TEXT</title></entry>
//! ```
//!
//! `--attr NAME=VALUE` (repeatable) puts attributes on the entry element, for subscribers
//! whose content filter selects on them (`roost-subscribe --filter "@host = 'web-1'"`).
//!
//! Each publish waits for the service's IQ reply and prints the item id the
//! service assigned. Any IQ error stops the program with a non-zero exit code
//! and prints the stanza error condition and text.
//!
//! ```text
//! roost-publish --jid alice@localhost --password pw \
//!     --service pubsub.localhost --node news --create "Hello" "World"
//! echo "from stdin" | ROOST_PASSWORD=pw roost-publish --jid alice@localhost --node news
//! ```
//!
//! Run with `RUST_LOG=debug` to see the connection and XMPP traffic.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use clap::Parser;
use futures::StreamExt;
use minidom::rxml::NcName;
use minidom::Element;
use roost_examples::connect::{self, ConnectArgs};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_xmpp::stanzastream::{Event as StreamEvent, StanzaStream};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::{Iq, IqSetPayload};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::pubsub::pubsub::{Create, Item, Publish};
use xmpp_parsers::pubsub::{NodeName, PubSub};
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Namespace of the Atom payload we publish (RFC 4287).
const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

/// Publish items to a node of a Roost pubsub service.
///
/// Each TEXT becomes one item with the payload
/// `<entry xmlns='http://www.w3.org/2005/Atom'><title>TEXT</title></entry>`.
/// Without TEXT arguments, each non-empty line of stdin is published.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Account to log in with, e.g. alice@localhost (a resource is optional).
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

    /// Node to publish to.
    #[arg(long)]
    node: String,

    /// Create the node first (an "already exists" conflict is not an error).
    #[arg(long)]
    create: bool,

    /// An attribute of every entry, e.g. `--attr host=web-1 --attr level=error`, for
    /// content filters to select on (`@host = 'web-1'`).
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = roost_examples::parse_attr)]
    attrs: Vec<(NcName, String)>,

    /// Seconds to wait for login and for each reply from the service.
    #[arg(long, default_value_t = 15)]
    timeout: u64,

    /// Texts to publish, one item each. Reads stdin lines when omitted.
    #[arg(value_name = "TEXT")]
    texts: Vec<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("roost-publish: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut session = Session::connect(&args).await?;

    // A publisher does not need to send presence: pubsub IQs work from any
    // authenticated session. (The subscriber does, to receive messages.)

    let result = publish_all(&mut session, &args).await;
    // Close the stream politely (</stream:stream>) even after an error,
    // instead of just dropping the TCP connection.
    session.close().await;
    result
}

async fn publish_all(session: &mut Session, args: &Args) -> anyhow::Result<()> {
    if args.create {
        create_node(session, &args.service, &args.node).await?;
    }
    if args.texts.is_empty() {
        // Publish as lines arrive, so `tail -f log | roost-publish ...` works.
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Some(line) = lines.next_line().await.context("reading stdin")? {
            // Blank lines carry no title; skip them rather than publish empty entries.
            if line.trim().is_empty() {
                continue;
            }
            publish(session, args, &line).await?;
        }
    } else {
        for text in &args.texts {
            publish(session, args, text).await?;
        }
    }
    Ok(())
}

/// `<iq type='set'><pubsub><create node='NODE'/></pubsub></iq>`.
///
/// A `conflict` error means the node already exists, which is what we
/// wanted anyway, so it is reported and ignored.
async fn create_node(session: &mut Session, service: &Jid, node: &str) -> anyhow::Result<()> {
    let create = PubSub::Create {
        create: Create {
            node: Some(NodeName(node.to_owned())),
        },
        configure: None,
    };
    match session.iq_set(service, create).await? {
        Ok(_) => eprintln!("created node {node}"),
        Err(e) if e.defined_condition == DefinedCondition::Conflict => {
            eprintln!("node {node} already exists")
        }
        Err(e) => bail!("creating node {node} failed: {}", describe_error(&e)),
    }
    Ok(())
}

/// Publish one Atom entry and print the item id the service returned.
async fn publish(session: &mut Session, args: &Args, text: &str) -> anyhow::Result<()> {
    let (service, node) = (&args.service, args.node.as_str());
    let entry = args
        .attrs
        .iter()
        .fold(Element::builder("entry", ATOM_NS), |e, (name, value)| {
            e.attr(name.clone(), value.as_str())
        })
        .append(Element::builder("title", ATOM_NS).append(text))
        .build();
    let request = PubSub::Publish {
        publish: Publish {
            node: NodeName(node.to_owned()),
            // No item id: the service generates one and tells us in the reply.
            items: vec![Item {
                id: None,
                publisher: None,
                payload: Some(entry),
            }],
        },
        publish_options: None,
    };

    let payload = match session.iq_set(service, request).await? {
        Ok(payload) => payload,
        Err(e) => bail!("publishing to node {node} failed: {}", describe_error(&e)),
    };

    // XEP-0060 §7.1.2: the result carries
    // <pubsub><publish node='..'><item id='..'/></publish></pubsub>,
    // but a service may also reply with an empty result.
    let id = payload
        .and_then(|elem| PubSub::try_from(elem).ok())
        .and_then(|reply| match reply {
            PubSub::Publish { publish, .. } => publish.items.into_iter().next(),
            _ => None,
        })
        .and_then(|item| item.id)
        .map(|id| id.0);
    match id {
        Some(id) => println!("published {id}"),
        None => println!("published (the service returned no item id)"),
    }
    Ok(())
}

/// A logged-in client session on top of tokio-xmpp's `StanzaStream`.
///
/// Why not `tokio_xmpp::Client` and its `send_iq`? In tokio-xmpp 6.0.0 the
/// `Client` splits the stream into a sender and a receiver that share a
/// mutex, and the receiver returns `Pending` *without registering a wakeup*
/// when the sender holds that mutex. If that happens while an IQ is being
/// sent, the reply is received but never delivered, and `send_iq` hangs.
/// We saw this in practice (about one run in three when publishing stdin
/// lines). Owning the `StanzaStream` directly and matching replies by id
/// ourselves avoids the shared mutex altogether; it is the same pattern as
/// tokio-xmpp's own `examples/keep_connection.rs`.
struct Session {
    stream: StanzaStream,
    /// How long to wait for login and for each IQ reply.
    limit: Duration,
    /// Counter for unique IQ ids.
    next_id: u64,
}

impl Session {
    /// Connect, authenticate and bind a resource.
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
        Ok(Session {
            stream,
            limit,
            next_id: 0,
        })
    }

    /// Send `<iq type='set'>` with `payload` to `to` and wait for the reply.
    ///
    /// Returns `Ok(Ok(payload))` for a result, `Ok(Err(error))` for an IQ
    /// error, and `Err` when there is no reply within the time limit or the
    /// connection is gone.
    async fn iq_set(
        &mut self,
        to: &Jid,
        payload: impl IqSetPayload,
    ) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
        self.next_id += 1;
        let id = format!("roost-publish-{}", self.next_id);
        let iq = Iq::from_set(id.clone(), payload).with_to(to.clone());
        // Returns once queued; the reply tells us it was sent.
        self.stream.send(Box::new(iq.into())).await;

        let limit = self.limit;
        let reply = async {
            loop {
                let Some(event) = self.stream.next().await else {
                    bail!("connection closed while waiting for a reply from {to}");
                };
                let StreamEvent::Stanza(stanza) = event else {
                    continue;
                };
                match stanza {
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
                    // Requests to us (ping, disco, ...) must get an answer
                    // (RFC 6120 §8.2.3); we support none of them.
                    Stanza::Iq(request @ (Iq::Get { .. } | Iq::Set { .. })) => {
                        self.refuse(request).await
                    }
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
    // The condition is an XML element (<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>);
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
