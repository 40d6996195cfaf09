//! `roost-log-sink`: collect the lines `roost-log-ship` publishes to a node into a file,
//! in order, each exactly once, across disconnects and restarts.
//!
//! ```text
//! roost-log-sink --jid bob@localhost --password pw \
//!     --service pubsub.localhost --node logs --out collected.log
//! ```
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
//! * The state file (`--state`, default `OUT.state`) holds, fsync'd right after the
//!   output is flushed and fsync'd, the output size and the last line number per shipper.
//!   On start the output is cut back to that size, so a crash between the two writes
//!   repeats nothing.

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use minidom::Element;
use roost_examples::connect::ConnectArgs;
use roost_examples::{
    decode, describe_error, init_logging, is_transient, load_state, open_append, save_state,
    shipper_of, Incoming, Session, Unit,
};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";
const EVENT_NS: &str = "http://jabber.org/protocol/pubsub#event";
const MAM_NS: &str = "urn:xmpp:mam:2";
const RSM_NS: &str = "http://jabber.org/protocol/rsm";
const FORWARD_NS: &str = "urn:xmpp:forward:0";
const CLIENT_NS: &str = "jabber:client";

/// History page size asked for while catching up.
const PAGE: u32 = 250;
/// How long items may wait behind a gap before the history is asked for it.
const GAP_PATIENCE: Duration = Duration::from_secs(3);
/// Items waiting behind gaps, at most; beyond, they are dropped and refetched.
const MAX_WAITING: usize = 100_000;
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

    /// Node to collect from.
    #[arg(long)]
    node: String,

    /// Output file (appended to).
    #[arg(long)]
    out: PathBuf,

    /// State file; defaults to OUT.state.
    #[arg(long)]
    state: Option<PathBuf>,

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

/// The output and what was written to it.
struct Output {
    file: BufWriter<std::fs::File>,
    state_path: PathBuf,
    /// Bytes written (flushed or not).
    size: u64,
    /// Last line number written, per shipper.
    last: BTreeMap<String, u64>,
    /// The item that brought the newest line: where catching up resumes.
    last_item: Option<String>,
    /// Items waiting behind a gap, by (shipper, first line number).
    waiting: BTreeMap<(String, u64), Vec<Unit>>,
    /// Since when something has been waiting.
    waiting_since: Option<Instant>,
    dirty: bool,
}

impl Output {
    /// Take one item: write what follows on from the shipper's last line, keep what is
    /// ahead of a gap, drop what was written already. Returns the item's first line
    /// number (`None` when it is not a log batch).
    fn deliver(&mut self, id: &str, payload: &Element) -> std::io::Result<Option<u64>> {
        let (Some(shipper), Some((first, units))) = (shipper_of(id), decode(payload)) else {
            tracing::warn!(id, "item is not a roost-log-ship batch; ignored");
            return Ok(None);
        };
        if units.is_empty() {
            return Ok(Some(first));
        }
        if self.apply(shipper, first, &units)? {
            self.last_item = Some(id.to_owned());
            self.drain_waiting(shipper)?;
        } else if first > self.last.get(shipper).copied().unwrap_or(0) + 1
            && self.waiting.len() < MAX_WAITING
        {
            let slot = self.waiting.entry((shipper.to_owned(), first)).or_default();
            if units.len() > slot.len() {
                *slot = units;
            }
        }
        self.waiting_since = match (self.waiting.is_empty(), self.waiting_since) {
            (true, _) => None,
            (false, None) => Some(Instant::now()),
            (false, since) => since,
        };
        Ok(Some(first))
    }

    /// Write whatever waited for the lines of `shipper` written so far.
    fn drain_waiting(&mut self, shipper: &str) -> std::io::Result<()> {
        loop {
            let next = self.last.get(shipper).copied().unwrap_or(0) + 1;
            let ready: Vec<(String, u64)> = self
                .waiting
                .range((shipper.to_owned(), 0)..=(shipper.to_owned(), next))
                .map(|(k, _)| k.clone())
                .collect();
            if ready.is_empty() {
                return Ok(());
            }
            for k in ready {
                if let Some(u) = self.waiting.remove(&k) {
                    self.apply(shipper, k.1, &u)?;
                }
            }
        }
    }

    /// Write the units numbered after the shipper's last line, if they follow on from
    /// it; true when something was written.
    fn apply(&mut self, shipper: &str, first: u64, units: &[Unit]) -> std::io::Result<bool> {
        let last = self.last.get(shipper).copied().unwrap_or(0);
        let end = first + units.len() as u64 - 1;
        if first > last + 1 || end <= last {
            return Ok(false);
        }
        for u in &units[(last + 1 - first) as usize..] {
            let bytes = u.to_log_bytes();
            self.file.write_all(&bytes)?;
            self.size += bytes.len() as u64;
        }
        self.last.insert(shipper.to_owned(), end);
        self.dirty = true;
        Ok(true)
    }

    /// After reading the whole history: give up on the lines it no longer has, those
    /// before `oldest[shipper]`, the first line of the shipper's oldest item in it (older
    /// items were dropped for `max_items`). A gap *after* that is not skipped: the lines
    /// are late, not gone (a publish being retried while later ones went through, as
    /// around a Roost restart), and come live or with a later read. Returns whether a gap
    /// remains.
    fn skip_expired(&mut self, oldest: &BTreeMap<String, u64>) -> std::io::Result<bool> {
        for (shipper, &h) in oldest {
            let last = self.last.get(shipper).copied().unwrap_or(0);
            if h > last + 1 {
                eprintln!(
                    "roost-log-sink: lines {}..{} of shipper {shipper} are no longer in the \
                     node's history; skipped",
                    last + 1,
                    h - 1
                );
                self.last.insert(shipper.clone(), h - 1);
                self.dirty = true;
                self.drain_waiting(shipper)?;
            }
        }
        if self.waiting.is_empty() {
            self.waiting_since = None;
        }
        Ok(!self.waiting.is_empty())
    }

    /// Make the output durable, then record it: the state never claims unwritten lines.
    fn commit(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.file.flush()?;
        self.file.get_ref().sync_data()?;
        let mut st = BTreeMap::new();
        st.insert("size".to_owned(), self.size.to_string());
        if let Some(id) = &self.last_item {
            st.insert("last_item".to_owned(), id.clone());
        }
        for (s, n) in &self.last {
            st.insert(format!("line.{s}"), n.to_string());
        }
        save_state(&self.state_path, &st).context("saving state")?;
        self.dirty = false;
        Ok(())
    }
}

/// A history query in progress.
struct CatchUp {
    iq: String,
    queryid: String,
    /// Reading the whole history (the resume point was gone, or a gap remained).
    from_start: bool,
    /// When it was sent or last brought a result: for [`REQUEST_TIMEOUT`].
    progress: Instant,
    /// Per shipper, the first line of its oldest item seen in this read (over all pages).
    oldest: BTreeMap<String, u64>,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let state_path = args.state.clone().unwrap_or_else(|| {
        let mut s = args.out.clone().into_os_string();
        s.push(".state");
        PathBuf::from(s)
    });
    let st = load_state(&state_path)
        .with_context(|| format!("reading state file {}", state_path.display()))?;
    let size: u64 = st.get("size").and_then(|v| v.parse().ok()).unwrap_or(0);
    {
        // Lines written after the last commit are not recorded: cut them, they come again.
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&args.out)
            .with_context(|| format!("opening {}", args.out.display()))?;
        let len = f.metadata()?.len();
        if len < size {
            bail!(
                "{} has {len} bytes but {size} were written to it: it was changed behind \
                 the sink's back (remove {} to start over)",
                args.out.display(),
                state_path.display()
            );
        }
        f.set_len(size)?;
        f.sync_all()?;
    }
    let mut out = Output {
        file: BufWriter::with_capacity(1 << 16, open_append(&args.out)?),
        state_path,
        size,
        last: st
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("line.")?.to_owned(), v.parse().ok()?)))
            .collect(),
        last_item: st.get("last_item").cloned(),
        waiting: BTreeMap::new(),
        waiting_since: None,
        dirty: false,
    };

    let jid: Jid = format!("{}/{}", args.jid.to_bare(), args.resource)
        .parse()
        .context("--jid with --resource is not a valid JID")?;
    let limit = Duration::from_secs(args.timeout);
    let mut s = Session::connect(jid, args.password.clone(), &args.connect, limit, "sink").await?;
    eprintln!("roost-log-sink: connected as {}", s.bound);

    let mut catchup: Option<CatchUp> = None;
    // When to subscribe and catch up again, after the node was found missing.
    let mut restart_at: Option<Instant> = None;
    // Subscribe requests in flight, by IQ id, with when they were sent.
    let mut subscribe_iq: HashMap<String, Instant> = HashMap::new();
    let mut queries = 0u64;
    start(
        &mut s,
        &args,
        &mut subscribe_iq,
        &mut catchup,
        &out,
        &mut queries,
    )
    .await;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut stop = Box::pin(shutdown());

    loop {
        tokio::select! {
            incoming = s.next() => match incoming {
                None => bail!("connection closed"),
                Some(Incoming::Reconnected) => {
                    eprintln!("roost-log-sink: reconnected; catching up");
                    start(&mut s, &args, &mut subscribe_iq, &mut catchup, &out, &mut queries).await;
                }
                Some(Incoming::Stanza(st)) => match *st {
                    Stanza::Message(m) => on_message(&m, &args, &mut catchup, &mut out)?,
                    Stanza::Iq(Iq::Result { id, payload, .. }) => {
                        if subscribe_iq.remove(&id).is_some() {
                            continue;
                        }
                        let Some(c) = catchup.take_if(|c| c.iq == id) else { continue };
                        let fin = payload.filter(|p| p.is("fin", MAM_NS));
                        let complete = fin.as_ref().map_or(true, |f| {
                            matches!(f.attr("complete"), Some("true") | Some("1"))
                        });
                        let last = fin
                            .as_ref()
                            .and_then(|f| f.get_child("set", RSM_NS))
                            .and_then(|set| set.get_child("last", RSM_NS))
                            .map(|l| l.text());
                        out.commit()?;
                        if !complete && last.is_some() {
                            query(&mut s, &args, &mut catchup, last, c.from_start, &mut queries).await;
                            if let Some(n) = catchup.as_mut() {
                                n.oldest = c.oldest;
                            }
                        } else if !out.waiting.is_empty() {
                            if c.from_start {
                                if out.skip_expired(&c.oldest)? {
                                    // Late lines: give them time to arrive live before the
                                    // history is read again.
                                    out.waiting_since = Some(Instant::now() + LATE_PATIENCE);
                                    eprintln!("roost-log-sink: waiting for late lines");
                                } else {
                                    eprintln!("roost-log-sink: caught up; following live");
                                }
                                out.commit()?;
                            } else {
                                // Something is missing between where we resumed and the
                                // waiting items: read the whole history once.
                                query(&mut s, &args, &mut catchup, None, true, &mut queries).await;
                            }
                        } else {
                            eprintln!("roost-log-sink: caught up; following live");
                        }
                    }
                    Stanza::Iq(Iq::Error { id, error, .. }) => {
                        if subscribe_iq.remove(&id).is_some() {
                            if error.defined_condition == DefinedCondition::ItemNotFound {
                                // The shipper has not created the node yet: wait for it.
                                if restart_at.is_none() {
                                    eprintln!("roost-log-sink: node {} does not exist (yet); waiting", args.node);
                                }
                                restart_at = Some(Instant::now() + Duration::from_secs(1));
                                catchup = None;
                                continue;
                            }
                            if is_transient(&error) {
                                // Roost is away: subscribe (and catch up) again shortly;
                                // without a subscription nothing live would come.
                                tracing::info!("subscribe failed: {}", describe_error(&error));
                                restart_at = Some(Instant::now() + Duration::from_secs(1));
                                catchup = None;
                                continue;
                            }
                            bail!("subscribing to {} failed: {}", args.node, describe_error(&error));
                        }
                        let Some(c) = catchup.take_if(|c| c.iq == id) else { continue };
                        if error.defined_condition == DefinedCondition::ItemNotFound && c.from_start {
                            // No such node: the subscribe error above schedules the retry.
                        } else if error.defined_condition == DefinedCondition::ItemNotFound {
                            // The item we resumed after is gone (expired or replaced).
                            query(&mut s, &args, &mut catchup, None, true, &mut queries).await;
                        } else if is_transient(&error) {
                            // Retried by the gap timer below, or on the next item.
                            tracing::info!("history query failed: {}", describe_error(&error));
                            out.waiting_since.get_or_insert_with(Instant::now);
                        } else {
                            bail!("reading the history of {} failed: {}", args.node, describe_error(&error));
                        }
                    }
                    _ => {}
                },
            },
            _ = tick.tick() => {
                out.commit()?;
                // Stuck behind a gap (a notification lost while Roost restarted, say), or a
                // history query that failed: ask the history again.
                if restart_at.is_some_and(|t| Instant::now() >= t) {
                    restart_at = None;
                    start(&mut s, &args, &mut subscribe_iq, &mut catchup, &out, &mut queries).await;
                    continue;
                }
                // A request lost on the way (the service restarted while it was in flight):
                // subscribe and catch up again, from where the output stands.
                let lost_query = catchup.as_ref().is_some_and(|c| c.progress.elapsed() >= REQUEST_TIMEOUT);
                let lost_subscribe = subscribe_iq.values().any(|t| t.elapsed() >= REQUEST_TIMEOUT);
                if lost_query || lost_subscribe {
                    eprintln!("roost-log-sink: no answer from the service for {}s; subscribing and catching up again",
                        REQUEST_TIMEOUT.as_secs());
                    subscribe_iq.clear();
                    start(&mut s, &args, &mut subscribe_iq, &mut catchup, &out, &mut queries).await;
                    continue;
                }
                let stuck = out.waiting_since.is_some_and(|t| t.elapsed() >= GAP_PATIENCE);
                if catchup.is_none() && restart_at.is_none() && stuck {
                    out.waiting_since = Some(Instant::now());
                    start(&mut s, &args, &mut subscribe_iq, &mut catchup, &out, &mut queries).await;
                }
            }
            _ = &mut stop => break,
        }
    }
    out.commit()?;
    s.close().await;
    Ok(())
}

/// Subscribe (again: a subscription that exists is simply confirmed) and catch up.
async fn start(
    s: &mut Session,
    args: &Args,
    subscribe_iq: &mut HashMap<String, Instant>,
    catchup: &mut Option<CatchUp>,
    out: &Output,
    queries: &mut u64,
) {
    // Presence is not needed for delivery to a full JID; it only makes the session
    // look normal to the server.
    s.send(Presence::new(PresenceType::None)).await;
    let sub: Element = Element::builder("pubsub", PUBSUB_NS)
        .append(
            Element::builder("subscribe", PUBSUB_NS)
                .attr(name("node"), args.node.as_str())
                .attr(name("jid"), s.bound.to_string()),
        )
        .build();
    let id = s.new_id();
    subscribe_iq.insert(id.clone(), Instant::now());
    s.send(Iq::Set {
        from: None,
        to: Some(args.service.clone()),
        id,
        payload: sub,
    })
    .await;
    let after = out.last_item.clone();
    let from_start = after.is_none();
    query(s, args, catchup, after, from_start, queries).await;
}

/// Ask for the page of history after `after` (from the start when `None`).
async fn query(
    s: &mut Session,
    args: &Args,
    catchup: &mut Option<CatchUp>,
    after: Option<String>,
    from_start: bool,
    queries: &mut u64,
) {
    *queries += 1;
    let queryid = format!("catchup-{queries}");
    let mut set = Element::builder("set", RSM_NS)
        .append(Element::builder("max", RSM_NS).append(PAGE.to_string()));
    if let Some(a) = after {
        set = set.append(Element::builder("after", RSM_NS).append(a));
    }
    let q = Element::builder("query", MAM_NS)
        .attr(name("node"), args.node.as_str())
        .attr(name("queryid"), queryid.as_str())
        .append(set)
        .build();
    let iq = s.new_id();
    *catchup = Some(CatchUp {
        iq: iq.clone(),
        queryid,
        from_start,
        progress: Instant::now(),
        oldest: BTreeMap::new(),
    });
    s.send(Iq::Set {
        from: None,
        to: Some(args.service.clone()),
        id: iq,
        payload: q,
    })
    .await;
}

/// Live notifications and history results, both from the service, both delivered.
fn on_message(
    m: &Message,
    args: &Args,
    catchup: &mut Option<CatchUp>,
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
        if items.attr("node") != Some(args.node.as_str()) {
            continue;
        }
        for item in items.children().filter(|i| i.is("item", EVENT_NS)) {
            if let (Some(id), Some(payload)) = (item.attr("id"), item.children().next()) {
                let first = out.deliver(id, payload)?;
                if let (true, Some(first), Some(shipper), Some(c)) =
                    (from_history, first, shipper_of(id), catchup.as_mut())
                {
                    let o = c.oldest.entry(shipper.to_owned()).or_insert(first);
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
