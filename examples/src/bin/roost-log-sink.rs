//! `roost-log-sink`: collect the lines `roost-log-ship` publishes to a node into a file,
//! in order, each exactly once, across disconnects and restarts.
//!
//! ```text
//! roost-log-sink --jid bob@localhost --password pw \
//!     --service pubsub.localhost --node logs --out collected.log
//! roost-log-sink ... --node logs --out-dir collected/   # one file per shipper and node
//! ```
//!
//! * The node may be a collection (XEP-0248), e.g. `logs` above `logs/web/nginx` and
//!   `logs/db/pg` on a service with topic hierarchies: the sink then finds the leaves
//!   below it (disco#items, recursively), subscribes to the collection for items at any
//!   depth, and catches up from each leaf's history in turn; a leaf that appears later
//!   comes live, and its earlier lines with the next catch-up (a gap in its numbering
//!   triggers one). With `--out-dir` each (node, shipper) gets its own file,
//!   `DIR/NODE/SHIPPER.log`; with `--out` every line goes to one file, in arrival order.
//!
//! * It subscribes its *full* JID (`--resource`), so notifications come straight to this
//!   session whatever its presence, and no offline copies pile up while it is away.
//! * Every line has a number per shipper (see the `roost_examples` crate); the sink writes
//!   line `n` only after line `n - 1`, and never twice. Items arriving ahead of a gap wait
//!   in memory until the gap is filled.
//! * On every (re)connection it subscribes, then catches up from the node's history
//!   (XEP-0313, paging with RSM after the last item it wrote) while live notifications
//!   keep arriving; both go through the same numbering, so the switch-over neither loses
//!   nor repeats a line. If the history no longer has that item, it reads it from the
//!   start. Lines older than the oldest item the whole history still has (dropped for
//!   `max_items`) are reported on stderr and skipped. A gap after that is a late line (a
//!   publish being retried while later ones went through): the sink waits for it, live or
//!   from a later read of the history, and never writes past it.
//! * A subscribe or history query left unanswered for 15 s (the service restarted while
//!   it was in flight: requests it had not read yet are lost, nobody bounces them) is
//!   sent again, and so is a subscribe that failed because the service was away.
//! * With `--filter EXPR` (Roost's content filters, `x-roost#filter`) it collects only
//!   the items whose payload matches EXPR, e.g. the streams of the shippers started with
//!   `--attr host=web-1`: `--filter "@host = 'web-1'"`. Its subscription is filtered by
//!   the service; the node's history is not, so catching up applies the same filter here,
//!   with the engine's own parser and matcher (`roost_nodes::filter`). A filtered
//!   subscribe makes a new subscription every time, so the sink keeps its subid in the
//!   state file and, on every (re)connection, finds that subscription again (the service's
//!   list and its options form); when it is gone or shows another filter, it subscribes
//!   anew and drops the stale one (see `roost_examples::filtered`). A filter should select
//!   whole streams: one that selects some items of a stream works too, but each gap it
//!   leaves in the stream's numbering is filled from the history (a short delay).
//! * The state file (`--state`, default `OUT.state`) holds, fsync'd right after the
//!   output is flushed and fsync'd, the output size(s) and the last line number per
//!   shipper (and node). On start the output is cut back to that size, so a crash between
//!   the two writes repeats nothing (see `roost_examples::sink`).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use minidom::Element;
use roost_examples::connect::ConnectArgs;
use roost_examples::filtered::{self, Held, SinkFilter, Wanted};
use roost_examples::sink::{Dest, Output, Source};
use roost_examples::{describe_error, init_logging, is_transient, shipper_of, Incoming, Session};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";
const DISCO_INFO_NS: &str = "http://jabber.org/protocol/disco#info";
const DISCO_ITEMS_NS: &str = "http://jabber.org/protocol/disco#items";
const DATA_NS: &str = "jabber:x:data";
const EVENT_NS: &str = "http://jabber.org/protocol/pubsub#event";
const MAM_NS: &str = "urn:xmpp:mam:2";
const RSM_NS: &str = "http://jabber.org/protocol/rsm";
const FORWARD_NS: &str = "urn:xmpp:forward:0";
const CLIENT_NS: &str = "jabber:client";

/// History page size asked for while catching up.
const PAGE: u32 = 250;
/// How long items may wait behind a gap before the history is asked for it.
const GAP_PATIENCE: Duration = Duration::from_secs(3);
/// How long a discovery request (finding the leaves of a collection) may take.
const DISCO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a subscribe or history query may go without an answer (for a query: without
/// a result arriving) before it is given up and sent again. A request in flight when the
/// service restarts may never be answered; without this the sink would wait forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Extra wait, beyond [`GAP_PATIENCE`], before the whole history is read again for lines
/// that a whole read did not find but that later ones say were published (late ones).
const LATE_PATIENCE: Duration = Duration::from_secs(10);

/// Collect a node's log lines into a file.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Account to log in with, e.g. bob@localhost.
    #[arg(long)]
    jid: Jid,

    /// Password of that account.
    #[arg(long, env = "ROOST_PASSWORD", hide_env_values = true)]
    password: String,

    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    connect: ConnectArgs,

    /// JID of the pubsub service.
    #[arg(long, default_value = "pubsub.localhost")]
    service: Jid,

    /// Node to collect from: a leaf, or a collection (every leaf below it).
    #[arg(long)]
    node: String,

    /// Output file (appended to), for every line.
    #[arg(long, required_unless_present = "out_dir", conflicts_with = "out_dir")]
    out: Option<PathBuf>,

    /// Output directory: one file per node and shipper, DIR/NODE/SHIPPER.log.
    #[arg(long)]
    out_dir: Option<PathBuf>,

    /// State file; defaults to OUT.state (or DIR.state).
    #[arg(long)]
    state: Option<PathBuf>,

    /// Collect only the items whose payload matches this content filter (Roost's
    /// x-roost#filter), e.g. "@host = 'web-1'" for the shippers run with --attr host=web-1.
    #[arg(long)]
    filter: Option<String>,

    /// Resource of the subscribed full JID.
    #[arg(long, default_value = "roost-log-sink")]
    resource: String,

    /// Seconds to wait for login.
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
            eprintln!("roost-log-sink: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A history query in progress, and the reads of the same round still to come.
struct CatchUp {
    iq: String,
    queryid: String,
    /// The leaf whose history is read.
    node: String,
    /// Reading its whole history (no resume point, it was gone, or a gap remained).
    from_start: bool,
    /// When it was sent or last brought a result: for [`REQUEST_TIMEOUT`].
    progress: Instant,
    /// Per source, the first line of its oldest item seen in this round (over all pages
    /// and leaves).
    oldest: BTreeMap<Source, u64>,
    /// The leaves to read next, each with whether from its start.
    queue: VecDeque<(String, bool)>,
    /// Every read of this round is from the start: what it did not find is gone.
    whole: bool,
}

/// What the sink's node is, as found on (re)connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// A leaf: its own history, its own items.
    Leaf,
    /// A collection, with the leaves below it.
    Collection(Vec<String>),
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (dest, base) = match (&args.out, &args.out_dir) {
        (Some(f), _) => (Dest::File(f.clone()), f.clone()),
        (None, Some(d)) => (Dest::Dir(d.clone()), d.clone()),
        (None, None) => bail!("--out or --out-dir is required"),
    };
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut s = base.into_os_string();
        s.push(".state");
        PathBuf::from(s)
    });
    let filter = args.filter.as_deref().map(SinkFilter::parse).transpose()?;
    let mut out = Output::open(dest, &args.node, state_path)?;

    let jid: Jid = format!("{}/{}", args.jid.to_bare(), args.resource)
        .parse()
        .context("--jid with --resource is not a valid JID")?;
    let limit = Duration::from_secs(args.timeout);
    let mut s = Session::connect(jid, args.password.clone(), &args.connect, limit, "sink").await?;
    eprintln!("roost-log-sink: connected as {}", s.bound);

    let mut catchup: Option<CatchUp> = None;
    // When to subscribe and catch up again, after the node was found missing or the
    // service away.
    let mut restart_at: Option<Instant> = None;
    // Subscribe requests in flight, by IQ id, with when they were sent.
    let mut subscribe_iq: HashMap<String, Instant> = HashMap::new();
    let mut queries = 0u64;
    // What the node is (a leaf, or a collection and its leaves): found by `start`.
    let mut shape = Shape::Leaf;
    let mut sink = Sink {
        args: &args,
        subscribe_iq: &mut subscribe_iq,
        catchup: &mut catchup,
        queries: &mut queries,
        shape: &mut shape,
        restart_at: &mut restart_at,
        filter: filter.as_ref(),
        said: None,
    };
    sink.start(&mut s, &mut out).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut stop = Box::pin(shutdown());

    loop {
        tokio::select! {
            incoming = s.next() => match incoming {
                None => bail!("connection closed"),
                Some(Incoming::Reconnected) => {
                    eprintln!("roost-log-sink: reconnected; catching up");
                    sink.start(&mut s, &mut out).await?;
                }
                Some(Incoming::Stanza(st)) => match *st {
                    Stanza::Message(m) => on_message(&m, &args, sink.filter, sink.catchup, sink.shape, &mut out)?,
                    Stanza::Iq(Iq::Result { id, payload, .. }) => {
                        if sink.subscribe_iq.remove(&id).is_some() {
                            continue;
                        }
                        let Some(c) = sink.catchup.take_if(|c| c.iq == id) else { continue };
                        let fin = payload.filter(|p| p.is("fin", MAM_NS));
                        let complete = fin.as_ref().is_none_or(|f| {
                            matches!(f.attr("complete"), Some("true") | Some("1"))
                        });
                        let last = fin
                            .as_ref()
                            .and_then(|f| f.get_child("set", RSM_NS))
                            .and_then(|set| set.get_child("last", RSM_NS))
                            .map(|l| l.text());
                        out.commit()?;
                        if !complete && last.is_some() {
                            let (node, from_start) = (c.node.clone(), c.from_start);
                            sink.query(&mut s, c, node, last, from_start).await;
                        } else {
                            sink.next_read(&mut s, c, &mut out).await?;
                        }
                    }
                    Stanza::Iq(Iq::Error { id, error, .. }) => {
                        if sink.subscribe_iq.remove(&id).is_some() {
                            if error.defined_condition == DefinedCondition::Conflict {
                                // Subscribed to the collection already (XEP-0248: one
                                // subscription per kind of news): that one serves.
                                continue;
                            }
                            if error.defined_condition == DefinedCondition::ItemNotFound {
                                // Deleted meanwhile: find out again shortly.
                                sink.later(1);
                                continue;
                            }
                            if is_transient(&error) {
                                // Roost is away: subscribe (and catch up) again shortly;
                                // without a subscription nothing live would come.
                                tracing::info!("subscribe failed: {}", describe_error(&error));
                                sink.later(1);
                                continue;
                            }
                            bail!("subscribing to {} failed: {}", args.node, describe_error(&error));
                        }
                        let Some(c) = sink.catchup.take_if(|c| c.iq == id) else { continue };
                        if error.defined_condition == DefinedCondition::ItemNotFound && !c.from_start {
                            // The item we resumed after is gone (expired or replaced).
                            let node = c.node.clone();
                            sink.query(&mut s, c, node, None, true).await;
                        } else if error.defined_condition == DefinedCondition::ItemNotFound {
                            // The leaf is gone: on with the others.
                            sink.next_read(&mut s, c, &mut out).await?;
                        } else if is_transient(&error) {
                            // Retried by the gap timer below, or on the next item.
                            tracing::info!("history query failed: {}", describe_error(&error));
                            out.waiting_since.get_or_insert_with(Instant::now);
                        } else {
                            bail!("reading the history of {} failed: {}", c.node, describe_error(&error));
                        }
                    }
                    _ => {}
                },
            },
            _ = tick.tick() => {
                out.commit()?;
                // Stuck behind a gap (a notification lost while Roost restarted, say), or a
                // history query that failed: ask the history again.
                if sink.restart_at.is_some_and(|t| Instant::now() >= t) {
                    *sink.restart_at = None;
                    sink.start(&mut s, &mut out).await?;
                    continue;
                }
                // A request lost on the way (the service restarted while it was in flight):
                // subscribe and catch up again, from where the output stands.
                let lost_query = sink.catchup.as_ref().is_some_and(|c| c.progress.elapsed() >= REQUEST_TIMEOUT);
                let lost_subscribe = sink.subscribe_iq.values().any(|t| t.elapsed() >= REQUEST_TIMEOUT);
                if lost_query || lost_subscribe {
                    eprintln!("roost-log-sink: no answer from the service for {}s; subscribing and catching up again",
                        REQUEST_TIMEOUT.as_secs());
                    sink.start(&mut s, &mut out).await?;
                    continue;
                }
                let stuck = out.waiting_since.is_some_and(|t| t.elapsed() >= GAP_PATIENCE);
                if sink.catchup.is_none() && sink.restart_at.is_none() && stuck {
                    out.waiting_since = Some(Instant::now());
                    sink.start(&mut s, &mut out).await?;
                }
            }
            _ = &mut stop => break,
        }
    }
    out.commit()?;
    s.close().await;
    Ok(())
}

/// The sink's requests: discovery, subscription, history reads.
struct Sink<'a> {
    args: &'a Args,
    subscribe_iq: &'a mut HashMap<String, Instant>,
    catchup: &'a mut Option<CatchUp>,
    queries: &'a mut u64,
    shape: &'a mut Shape,
    restart_at: &'a mut Option<Instant>,
    /// `--filter`: then the sink holds one filtered subscription (see `filtered`).
    filter: Option<&'a SinkFilter>,
    /// The subid last reported on stderr.
    said: Option<String>,
}

impl Sink<'_> {
    /// Try again in `secs` seconds.
    fn later(&mut self, secs: u64) {
        *self.catchup = None;
        *self.restart_at = Some(Instant::now() + Duration::from_secs(secs));
    }

    /// Find out what the node is (and, for a collection, its leaves), subscribe (again: a
    /// subscription that exists is simply confirmed; a filtered one is found again) and
    /// catch up. When the node is not there yet or the service is away, try again shortly.
    async fn start(&mut self, s: &mut Session, out: &mut Output) -> anyhow::Result<()> {
        let args = self.args;
        self.subscribe_iq.clear();
        *self.catchup = None;
        // Presence is not needed for delivery to a full JID; it only makes the session
        // look normal to the server.
        s.send(Presence::new(PresenceType::None)).await;
        let shape = match discover(s, &args.service, &args.node).await? {
            Found::Shape(shape) => shape,
            Found::Missing => {
                if *self.shape == Shape::Leaf && self.restart_at.is_none() {
                    eprintln!(
                        "roost-log-sink: node {} does not exist (yet); waiting",
                        args.node
                    );
                }
                self.later(1);
                return Ok(());
            }
            Found::Away(why) => {
                tracing::info!("discovery failed: {why}");
                self.later(1);
                return Ok(());
            }
        };
        let leaves = match &shape {
            Shape::Leaf => vec![args.node.clone()],
            Shape::Collection(leaves) => leaves.clone(),
        };
        if let Shape::Collection(l) = &shape {
            if *self.shape != shape {
                eprintln!(
                    "roost-log-sink: {} is a collection of {} leaves",
                    args.node,
                    l.len()
                );
            }
        }
        let collection = matches!(shape, Shape::Collection(_));
        *self.shape = shape;
        if let Some(filter) = self.filter {
            // Found again or made before the catch-up, so that nothing published from here
            // on is missed: what arrives meanwhile is in the history read next.
            let jid = s.bound.clone();
            let w = Wanted {
                service: &args.service,
                node: &args.node,
                jid: &jid,
                filter,
                collection,
                timeout: DISCO_TIMEOUT,
            };
            let remembered = out.subscription().map(str::to_owned);
            match filtered::ensure(s, &w, remembered.as_deref()).await? {
                Held::Subscribed { subid, reused } => {
                    if self.said.as_ref() != Some(&subid) {
                        let how = if reused { "found again" } else { "made" };
                        eprintln!(
                            "roost-log-sink: filtered subscription to {} {how}: subid {subid} \
                             (filter {})",
                            args.node,
                            filter.text()
                        );
                        self.said = Some(subid.clone());
                    }
                    out.set_subscription(Some(subid));
                    out.commit()?;
                }
                Held::Missing => {
                    self.later(1);
                    return Ok(());
                }
                Held::Away(why) => {
                    tracing::info!("subscribing failed: {why}");
                    self.later(1);
                    return Ok(());
                }
            }
        } else {
            let mut subscribe = Element::builder("pubsub", PUBSUB_NS).append(
                Element::builder("subscribe", PUBSUB_NS)
                    .attr(name("node"), args.node.as_str())
                    .attr(name("jid"), s.bound.to_string()),
            );
            if collection {
                // Items from every leaf below, at any depth (XEP-0248 §subscribe).
                subscribe = subscribe
                    .append(Element::builder("options", PUBSUB_NS).append(collection_options()));
            }
            let id = s.new_id();
            self.subscribe_iq.insert(id.clone(), Instant::now());
            s.send(Iq::Set {
                from: None,
                to: Some(args.service.clone()),
                id,
                payload: subscribe.build(),
            })
            .await;
        }
        let mut queue: VecDeque<(String, bool)> = leaves
            .into_iter()
            .map(|l| {
                let from_start = !out.last_item.contains_key(&l);
                (l, from_start)
            })
            .collect();
        let whole = queue.iter().all(|(_, f)| *f);
        let Some((node, from_start)) = queue.pop_front() else {
            eprintln!(
                "roost-log-sink: no leaf below {} yet; following live",
                args.node
            );
            return Ok(());
        };
        let c = CatchUp {
            iq: String::new(),
            queryid: String::new(),
            node: node.clone(),
            from_start,
            progress: Instant::now(),
            oldest: BTreeMap::new(),
            queue,
            whole,
        };
        let after = if from_start {
            None
        } else {
            out.last_item.get(&node).cloned()
        };
        self.query(s, c, node, after, from_start).await;
        Ok(())
    }

    /// Ask for the page of `node`'s history after `after` (from the start when `None`),
    /// as the next step of the round `c`.
    async fn query(
        &mut self,
        s: &mut Session,
        mut c: CatchUp,
        node: String,
        after: Option<String>,
        from_start: bool,
    ) {
        *self.queries += 1;
        let queryid = format!("catchup-{}", self.queries);
        let mut set = Element::builder("set", RSM_NS)
            .append(Element::builder("max", RSM_NS).append(PAGE.to_string()));
        if let Some(a) = after {
            set = set.append(Element::builder("after", RSM_NS).append(a));
        }
        let q = Element::builder("query", MAM_NS)
            .attr(name("node"), node.as_str())
            .attr(name("queryid"), queryid.as_str())
            .append(set)
            .build();
        let iq = s.new_id();
        c.iq = iq.clone();
        c.queryid = queryid;
        c.node = node;
        c.from_start = from_start;
        c.progress = Instant::now();
        *self.catchup = Some(c);
        s.send(Iq::Set {
            from: None,
            to: Some(self.args.service.clone()),
            id: iq,
            payload: q,
        })
        .await;
    }

    /// A leaf's history was read to its end: read the next one of the round, or, at the
    /// end of the round, settle what is still missing.
    async fn next_read(
        &mut self,
        s: &mut Session,
        mut c: CatchUp,
        out: &mut Output,
    ) -> anyhow::Result<()> {
        if let Some((node, from_start)) = c.queue.pop_front() {
            let after = if from_start {
                None
            } else {
                out.last_item.get(&node).cloned()
            };
            self.query(s, c, node, after, from_start).await;
            return Ok(());
        }
        if out.waiting.is_empty() {
            eprintln!("roost-log-sink: caught up; following live");
            return Ok(());
        }
        if c.whole {
            if out.skip_expired(&c.oldest)? {
                // Late lines: give them time to arrive live before the history is read
                // again.
                out.waiting_since = Some(Instant::now() + LATE_PATIENCE);
                eprintln!("roost-log-sink: waiting for late lines");
            } else {
                eprintln!("roost-log-sink: caught up; following live");
            }
            out.commit()?;
            return Ok(());
        }
        // Something is missing between where we resumed and the waiting items: read the
        // whole history of the leaves concerned once.
        let nodes: BTreeSet<String> = out
            .waiting
            .keys()
            .map(|(src, _)| src.node.clone())
            .collect();
        let mut queue: VecDeque<(String, bool)> = nodes.into_iter().map(|n| (n, true)).collect();
        let (node, _) = queue.pop_front().expect("something waits");
        let round = CatchUp {
            oldest: BTreeMap::new(),
            queue,
            whole: true,
            ..c
        };
        self.query(s, round, node, None, true).await;
        Ok(())
    }
}

/// What discovery found.
enum Found {
    Shape(Shape),
    /// The node does not exist (yet).
    Missing,
    /// The service did not answer, or answered with a transient error.
    Away(String),
}

/// What `node` is: a leaf, or a collection and every leaf below it (disco#info for the
/// type, disco#items for a collection's children, recursively).
async fn discover(s: &mut Session, service: &Jid, node: &str) -> anyhow::Result<Found> {
    let mut leaves = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut todo = vec![node.to_owned()];
    let mut top = None;
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let info = Element::builder("query", DISCO_INFO_NS)
            .attr(name("node"), n.as_str())
            .build();
        let collection = match s.request(service, false, info, DISCO_TIMEOUT).await {
            Err(e) => return Ok(Found::Away(e.to_string())),
            Ok(Err(e)) if e.defined_condition == DefinedCondition::ItemNotFound => {
                if n == node {
                    return Ok(Found::Missing);
                }
                continue; // deleted meanwhile
            }
            Ok(Err(e)) if is_transient(&e) => return Ok(Found::Away(describe_error(&e))),
            Ok(Err(e)) => bail!("discovering {n} failed: {}", describe_error(&e)),
            Ok(Ok(p)) => p.is_some_and(|q| {
                q.children().any(|c| {
                    c.is("identity", DISCO_INFO_NS)
                        && c.attr("category") == Some("pubsub")
                        && c.attr("type") == Some("collection")
                })
            }),
        };
        top.get_or_insert(collection);
        if !collection {
            leaves.insert(n);
            continue;
        }
        let items = Element::builder("query", DISCO_ITEMS_NS)
            .attr(name("node"), n.as_str())
            .build();
        match s.request(service, false, items, DISCO_TIMEOUT).await {
            Err(e) => return Ok(Found::Away(e.to_string())),
            Ok(Err(e)) if is_transient(&e) => return Ok(Found::Away(describe_error(&e))),
            Ok(Err(_)) => continue, // gone meanwhile, or hidden from us
            Ok(Ok(p)) => todo.extend(
                p.iter()
                    .flat_map(|q| q.children())
                    .filter(|c| c.is("item", DISCO_ITEMS_NS))
                    .filter_map(|c| c.attr("node").map(str::to_owned)),
            ),
        }
    }
    Ok(Found::Shape(if top == Some(true) {
        Shape::Collection(leaves.into_iter().collect())
    } else {
        Shape::Leaf
    }))
}

/// The subscription options of a collection sink: items, at any depth (XEP-0248).
fn collection_options() -> Element {
    let field = |var: &str, value: &str| {
        Element::builder("field", DATA_NS)
            .attr(name("var"), var)
            .append(Element::builder("value", DATA_NS).append(value))
    };
    Element::builder("x", DATA_NS)
        .attr(name("type"), "submit")
        .append(field(
            "FORM_TYPE",
            "http://jabber.org/protocol/pubsub#subscribe_options",
        ))
        .append(field("pubsub#subscription_type", "items"))
        .append(field("pubsub#subscription_depth", "all"))
        .build()
}

/// Live notifications and history results, both from the service, both delivered.
fn on_message(
    m: &Message,
    args: &Args,
    filter: Option<&SinkFilter>,
    catchup: &mut Option<CatchUp>,
    shape: &Shape,
    out: &mut Output,
) -> anyhow::Result<()> {
    if m.from.as_ref() != Some(&args.service) {
        return Ok(());
    }
    for p in &m.payloads {
        let mut from_history = false;
        let event = if p.is("event", EVENT_NS) {
            Some(p)
        } else if let Some(c) = catchup
            .as_mut()
            .filter(|c| p.is("result", MAM_NS) && p.attr("queryid") == Some(c.queryid.as_str()))
        {
            c.progress = Instant::now();
            from_history = true;
            p.get_child("forwarded", FORWARD_NS)
                .and_then(|f| f.get_child("message", CLIENT_NS))
                .and_then(|m| m.get_child("event", EVENT_NS))
        } else {
            None
        };
        let Some(items) = event.and_then(|e| e.get_child("items", EVENT_NS)) else {
            continue;
        };
        // A history result is of the leaf queried; a live item of the node itself or, for
        // a collection, of any leaf below it (this full JID subscribes to nothing else).
        let Some(node) = items.attr("node") else {
            continue;
        };
        let ours = match shape {
            Shape::Leaf => node == args.node,
            Shape::Collection(_) => node != args.node,
        };
        if !ours {
            continue;
        }
        for item in items.children().filter(|i| i.is("item", EVENT_NS)) {
            if let (Some(id), Some(payload)) = (item.attr("id"), item.children().next()) {
                // History is not filtered by the service, and live items come filtered:
                // the same filter on both keeps them in agreement.
                let first = if filter.is_none_or(|f| f.selects(payload)) {
                    out.deliver(node, id, payload)?
                } else {
                    out.pass(node, id, payload)?
                };
                if let (true, Some(first), Some(shipper), Some(c)) =
                    (from_history, first, shipper_of(id), catchup.as_mut())
                {
                    let src = Source {
                        node: node.to_owned(),
                        shipper: shipper.to_owned(),
                    };
                    let o = c.oldest.entry(src).or_insert(first);
                    *o = (*o).min(first);
                }
            }
        }
    }
    Ok(())
}

fn name(s: &'static str) -> minidom::rxml::NcName {
    // Only called with ASCII literals that are valid names.
    minidom::rxml::NcName::try_from(s).unwrap_or_else(|_| unreachable!("{s} is an NcName"))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
