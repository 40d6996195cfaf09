//! `roost-log-ship`: follow a log file (or read stdin) and publish its lines to a Roost
//! pubsub node, for `roost-log-sink` (or any subscriber) to collect.
//!
//! ```text
//! roost-log-ship --jid alice@localhost --password pw \
//!     --service pubsub.localhost --node logs --create --state app.ship /var/log/app.log
//! ```
//!
//! * Lines are batched: one item per line while idle, up to `--max-lines` lines or
//!   `--max-bytes` of payload per item under load. The payload format is described in
//!   the `roost_examples` crate (`<lines xmlns='urn:roost:log:0' first='N'>`).
//! * Item ids are `<shipper id>-<number of the first line, zero-padded>`.
//! * `--attr NAME=VALUE` (repeatable) puts attributes on every payload, so that a
//!   subscriber's content filter (`x-roost#filter`) can select this stream among others.
//! * At most `--window` publishes are unanswered at a time: when the service is slow
//!   the shipper stops reading (backpressure) instead of buffering without bound.
//! * The state file (`--state`) records, fsync'd, how far the file was acknowledged
//!   (inode, offset) and the next line number. After a restart the shipper resumes
//!   there: lines whose publish was not acknowledged are sent again with the same
//!   numbers, so the sink sees no gap and writes no line twice.
//! * The file is followed across rotation (a new inode at the path) and truncation
//!   (the file shrank): the rest of the old file is shipped, then the new one from its
//!   start. A file rotated away *while the shipper is down* is found again by its inode
//!   in the same directory (`app.log.1`, `app.log-DATE`, …; not if it was compressed or
//!   deleted) and its rest is shipped before the new file.
//! * A publish that fails transiently (the service restarting) or is not answered
//!   within 10 s is sent again; a permanent error (forbidden, no such node, …) stops it.
//!
//! Progress (lines/s, in flight, bytes not yet acknowledged) goes to stderr every second
//! when stderr is a terminal.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use minidom::rxml::NcName;
use minidom::Element;
use roost_examples::connect::ConnectArgs;
use roost_examples::{
    describe_error, encode, init_logging, is_transient, item_id, load_state, save_state, units_of,
    Incoming, Session, Unit,
};
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::pubsub::pubsub::{Item, Publish};
use xmpp_parsers::pubsub::{ItemId, NodeName, PubSub};
use xmpp_parsers::stanza_error::DefinedCondition;

/// Ship a log file's lines to a pubsub node.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Account to log in with, e.g. alice@localhost.
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

    /// Node to publish to.
    #[arg(long)]
    node: String,

    /// Create the node first (keeping as many items as the service allows); an
    /// existing node is left as it is.
    #[arg(long)]
    create: bool,

    /// This shipper's id, the prefix of its item ids. Defaults to the one in the state
    /// file, else "log".
    #[arg(long)]
    id: Option<String>,

    /// State file (acknowledged position and next line number).
    #[arg(long, default_value = "roost-log-ship.state")]
    state: PathBuf,

    /// Publishes in flight at most.
    #[arg(long, default_value_t = 8)]
    window: usize,

    /// Lines per item at most.
    #[arg(long, default_value_t = 256)]
    max_lines: usize,

    /// Payload bytes per item at most (the node's max_payload_size is 64 KiB by default).
    #[arg(long, default_value_t = 60_000)]
    max_bytes: usize,

    /// Stop at the end of the file once everything is acknowledged, instead of following.
    #[arg(long)]
    exit_at_eof: bool,

    /// An attribute of every payload (`<lines/>`), e.g. `--attr host=web-1 --attr
    /// app=nginx`, for subscribers' content filters to select this stream on
    /// (`roost-log-sink --filter "@host = 'web-1'"`). Not `first`, the payload's own.
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = ship_attr)]
    attrs: Vec<(NcName, String)>,

    /// Seconds to wait for login.
    #[arg(long, default_value_t = 15)]
    timeout: u64,

    /// The file to follow; `-` or nothing reads stdin (which cannot be resumed: a
    /// restart continues with new input only).
    file: Option<PathBuf>,
}

/// `--attr`: as `roost-publish --attr`, but `first` numbers the payload's lines.
fn ship_attr(s: &str) -> Result<(NcName, String), String> {
    let attr = roost_examples::parse_attr(s)?;
    if attr.0.as_str() == "first" {
        return Err("first is the payload's own attribute (its first line's number)".to_owned());
    }
    Ok(attr)
}

/// How long a publish may go unanswered before it is sent again.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// How long a batch may wait for more lines while earlier ones are in flight.
const LINGER: Duration = Duration::from_millis(20);
/// Pause before retrying a publish that failed transiently.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roost-log-ship: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What the reader thread hands over.
enum Feed {
    /// One unit, and where in which file it ends.
    Unit { unit: Unit, ino: u64, end: u64 },
    /// End of input (stdin closed, or `--exit-at-eof`).
    Eof,
}

/// A batch being published.
struct Batch {
    first: u64,
    units: Vec<Unit>,
    /// Where its last unit ends.
    ino: u64,
    end: u64,
    bytes: usize,
    iq: String,
    sent: Instant,
    retry_at: Option<Instant>,
    acked: bool,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut state = load_state(&args.state)
        .with_context(|| format!("reading state file {}", args.state.display()))?;
    let id = match (&args.id, state.get("id")) {
        (Some(a), Some(s)) if a != s => bail!(
            "--id {a} but the state file {} belongs to shipper {s}",
            args.state.display()
        ),
        (Some(a), _) => a.clone(),
        (None, Some(s)) => s.clone(),
        (None, None) => "log".to_owned(),
    };
    if id.is_empty() || id.contains(char::is_whitespace) {
        bail!("shipper id {id:?} must be non-empty and without spaces");
    }
    let num = |k: &str| state.get(k).and_then(|v| v.parse::<u64>().ok());
    let mut next = num("next").unwrap_or(1);
    let (ino, offset) = (num("ino").unwrap_or(0), num("offset").unwrap_or(0));
    state.insert("id".into(), id.clone());

    // Bounded: when publishing lags, the reader blocks (backpressure).
    let (tx, mut rx) = mpsc::channel::<Feed>(4096);
    let file = args.file.clone().filter(|f| f.as_os_str() != "-");
    let exit_at_eof = args.exit_at_eof;
    std::thread::spawn(move || {
        let r = match file {
            Some(path) => follow(path, ino, offset, exit_at_eof, &tx),
            None => read_stdin(&tx),
        };
        if let Err(e) = r {
            eprintln!("roost-log-ship: reading input: {e:#}");
        }
        let _ = tx.blocking_send(Feed::Eof);
    });

    let limit = Duration::from_secs(args.timeout);
    let mut s = Session::connect(
        args.jid.clone(),
        args.password.clone(),
        &args.connect,
        limit,
        "ship",
    )
    .await?;
    eprintln!("roost-log-ship: connected as {}", s.bound);
    if args.create {
        create_node(&mut s, &args.service, &args.node).await?;
    }

    let max_bytes = args.max_bytes.clamp(1024, 60_000);
    let mut inflight: VecDeque<Batch> = VecDeque::new();
    let mut pending: Option<Feed> = None;
    let mut eof = false;
    let mut dirty = false;
    let mut last_save = Instant::now();
    let mut tick = tokio::time::interval(LINGER);
    let progress = std::io::stderr().is_terminal();
    let (mut shipped, mut last_report, mut reported) = (0u64, Instant::now(), 0u64);
    let mut stop = Box::pin(shutdown());

    let limits = (args.max_lines.max(1), max_bytes);
    // The batch being filled. It goes out at once when nothing is in flight (so an idle
    // log gets one item per line), else when it is full or has waited LINGER: under
    // load, lines pile up in it while earlier items are on their way (batching), and
    // once the window is full nothing more is read (backpressure).
    let mut open: Option<Batch> = None;
    loop {
        let room = inflight.len() < args.window.max(1);
        if let Some(b) = &open {
            let full = pending.is_some() || b.units.len() >= limits.0;
            if room && (full || eof || inflight.is_empty() || b.sent.elapsed() >= LINGER) {
                if let Some(mut b) = open.take() {
                    send(&mut s, &args, &id, &mut b).await;
                    inflight.push_back(b);
                }
                continue;
            }
        } else if let Some(f) = pending.take() {
            // A unit that did not fit the previous batch starts the next one.
            add(&mut open, &mut pending, f, &mut eof, limits, &mut next);
            continue;
        }
        if eof && open.is_none() && inflight.is_empty() && pending.is_none() {
            break;
        }
        let can_read = !eof && pending.is_none();
        tokio::select! {
            feed = rx.recv(), if can_read => {
                let Some(f) = feed else { eof = true; continue };
                add(&mut open, &mut pending, f, &mut eof, limits, &mut next);
                // Take what is already waiting, as long as it fits.
                while pending.is_none() && !eof {
                    let Ok(f) = rx.try_recv() else { break };
                    add(&mut open, &mut pending, f, &mut eof, limits, &mut next);
                }
            }
            incoming = s.next() => {
                match incoming {
                    None => bail!("connection closed"),
                    Some(Incoming::Reconnected) => {
                        eprintln!("roost-log-ship: reconnected; sending unacknowledged items again");
                        for b in inflight.iter_mut().filter(|b| !b.acked) {
                            send(&mut s, &args, &id, b).await;
                        }
                    }
                    Some(Incoming::Stanza(st)) => {
                        if let Stanza::Iq(iq) = *st {
                            on_reply(iq, &mut inflight)?;
                        }
                        while inflight.front().is_some_and(|b| b.acked) {
                            if let Some(b) = inflight.pop_front() {
                                shipped += b.units.len() as u64;
                                state.insert("ino".into(), b.ino.to_string());
                                state.insert("offset".into(), b.end.to_string());
                                state.insert("next".into(), (b.first + b.units.len() as u64).to_string());
                                dirty = true;
                            }
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                for b in inflight.iter_mut().filter(|b| !b.acked) {
                    let due = match b.retry_at {
                        Some(t) => now >= t,
                        None => now.duration_since(b.sent) >= RESEND_AFTER,
                    };
                    if due {
                        send(&mut s, &args, &id, b).await;
                    }
                }
                if progress && now.duration_since(last_report) >= Duration::from_secs(1) {
                    let rate = (shipped - reported) as f64 / now.duration_since(last_report).as_secs_f64();
                    let behind: usize = inflight.iter().map(|b| b.bytes).sum();
                    eprint!("\rroost-log-ship: {shipped} lines acked, {rate:.0} lines/s, {} in flight, ~{behind} bytes unacknowledged   ",
                        inflight.len());
                    last_report = now;
                    reported = shipped;
                }
            }
            _ = &mut stop => {
                eprintln!("roost-log-ship: stopping");
                break;
            }
        }
        // Durable progress, but not one fsync per item under load.
        if dirty && (last_save.elapsed() >= Duration::from_millis(200) || inflight.is_empty()) {
            save_state(&args.state, &state).context("saving state")?;
            dirty = false;
            last_save = Instant::now();
        }
    }
    if dirty {
        save_state(&args.state, &state).context("saving state")?;
    }
    if progress {
        eprintln!();
    }
    s.close().await;
    Ok(())
}

/// Add one fed unit to the open batch (opening one, numbered `next`, if needed), within
/// `(max lines, max bytes)` and one file; a unit that does not fit goes to `pending`.
fn add(
    open: &mut Option<Batch>,
    pending: &mut Option<Feed>,
    feed: Feed,
    eof: &mut bool,
    (max_lines, max_bytes): (usize, usize),
    next: &mut u64,
) {
    let Feed::Unit { unit, ino, end } = feed else {
        *eof = true;
        return;
    };
    let len = unit.encoded_len();
    match open.as_mut() {
        Some(b) if b.units.len() >= max_lines || b.bytes + len > max_bytes || b.ino != ino => {
            *pending = Some(Feed::Unit { unit, ino, end });
        }
        Some(b) => {
            b.bytes += len;
            b.end = end;
            b.units.push(unit);
            *next += 1;
        }
        None => {
            *open = Some(Batch {
                first: *next,
                units: vec![unit],
                ino,
                end,
                bytes: len,
                iq: String::new(),
                // Until sent: when the batch was opened, for LINGER.
                sent: Instant::now(),
                retry_at: None,
                acked: false,
            });
            *next += 1;
        }
    }
}

/// (Re)send a batch under a fresh IQ id; the item id stays the same.
async fn send(s: &mut Session, args: &Args, id: &str, b: &mut Batch) {
    let request = PubSub::Publish {
        publish: Publish {
            node: NodeName(args.node.clone()),
            items: vec![Item {
                id: Some(ItemId(item_id(id, b.first))),
                publisher: None,
                payload: Some(encode(b.first, &b.units, &args.attrs)),
            }],
        },
        publish_options: None,
    };
    b.iq = s.new_id();
    b.sent = Instant::now();
    b.retry_at = None;
    s.send(Iq::from_set(b.iq.clone(), request).with_to(args.service.clone()))
        .await;
}

fn on_reply(iq: Iq, inflight: &mut VecDeque<Batch>) -> anyhow::Result<()> {
    match iq {
        Iq::Result { id, .. } => {
            if let Some(b) = inflight.iter_mut().find(|b| b.iq == id) {
                b.acked = true;
            }
        }
        Iq::Error { id, error, .. } => {
            if let Some(b) = inflight.iter_mut().find(|b| b.iq == id) {
                if !is_transient(&error) {
                    bail!(
                        "publishing item {} failed: {}",
                        b.first,
                        describe_error(&error)
                    );
                }
                tracing::info!("publish failed, will retry: {}", describe_error(&error));
                b.retry_at = Some(Instant::now() + RETRY_AFTER);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Create the node keeping as many items as allowed; `conflict` (it exists) is fine.
/// Transient failures (the service restarting) and requests left unanswered for 15 s are
/// retried, 60 times at most.
async fn create_node(s: &mut Session, service: &Jid, node: &str) -> anyhow::Result<()> {
    let payload: Element = format!(
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='{}'/>\
         <configure><x xmlns='jabber:x:data' type='submit'>\
         <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>\
         <field var='pubsub#max_items'><value>max</value></field>\
         </x></configure></pubsub>",
        xml_escape(node)
    )
    .parse()
    .context("building the create request")?;
    for _ in 0..60 {
        let iq_id = s.new_id();
        s.send(Iq::Set {
            from: None,
            to: Some(service.clone()),
            id: iq_id.clone(),
            payload: payload.clone(),
        })
        .await;
        let reply = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                match s.next().await {
                    None => return None,
                    Some(Incoming::Stanza(st)) => match *st {
                        Stanza::Iq(Iq::Result { id, .. }) if id == iq_id => return Some(Ok(())),
                        Stanza::Iq(Iq::Error { id, error, .. }) if id == iq_id => {
                            return Some(Err(error))
                        }
                        _ => {}
                    },
                    Some(Incoming::Reconnected) => {}
                }
            }
        })
        .await;
        let Ok(reply) = reply else {
            // Lost on the way (Roost restarted while it was in flight: the server does not
            // bounce what the component had not read yet): ask again.
            tracing::info!("no reply to the create request; sending it again");
            continue;
        };
        match reply {
            None => bail!("connection closed"),
            Some(Ok(())) => {
                eprintln!("roost-log-ship: created node {node}");
                return Ok(());
            }
            Some(Err(e)) if e.defined_condition == DefinedCondition::Conflict => return Ok(()),
            Some(Err(e)) if is_transient(&e) => {
                tracing::info!("creating node {node}: {}; retrying", describe_error(&e));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Some(Err(e)) => bail!("creating node {node} failed: {}", describe_error(&e)),
        }
    }
    bail!("creating node {node}: the service stayed unavailable")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
}

/// Follow `path` from (`ino`, `offset`) when it is still that file, else from its start.
fn follow(
    path: PathBuf,
    ino: u64,
    offset: u64,
    exit_at_eof: bool,
    tx: &mpsc::Sender<Feed>,
) -> anyhow::Result<()> {
    let open = |path: &PathBuf| -> anyhow::Result<(BufReader<File>, u64)> {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let ino = f.metadata()?.ino();
        Ok((BufReader::new(f), ino))
    };
    let (mut reader, mut cur_ino) = loop {
        match open(&path) {
            Ok(r) => break r,
            // Not there yet (or mid-rotation): wait for it.
            Err(_) if !exit_at_eof => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => return Err(e),
        }
    };
    let mut pos = 0u64;
    if ino != 0 && cur_ino != ino {
        // Rotated while we were down: the file we were in is usually still there under
        // another name (app.log.1, app.log-DATE). Its unacknowledged rest comes first,
        // then the loop below moves on to the file now at the path, as for a rotation
        // seen live. Without this the rest of the old file would be skipped.
        match find_rotated(&path, ino) {
            Some(f) => {
                eprintln!(
                    "roost-log-ship: {} was rotated while stopped; shipping the rest of the old file first",
                    path.display()
                );
                (reader, cur_ino) = (BufReader::new(f), ino);
            }
            None => eprintln!(
                "roost-log-ship: warning: {} was rotated while stopped and the old file \
                 (inode {ino}) is gone; its unshipped lines are lost",
                path.display()
            ),
        }
    }
    if cur_ino == ino && reader.get_ref().metadata()?.len() >= offset {
        reader.seek(SeekFrom::Start(offset))?;
        pos = offset;
    }
    let mut buf = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut buf)?;
        if n > 0 && buf.last() == Some(&b'\n') {
            buf.pop();
            if !emit(tx, &buf, true, cur_ino, &mut pos) {
                return Ok(());
            }
            buf.clear();
            continue;
        }
        // At the end for now, maybe inside an unterminated line (kept in `buf`).
        if exit_at_eof {
            if !buf.is_empty() {
                emit(tx, &buf, false, cur_ino, &mut pos);
            }
            return Ok(());
        }
        let meta = std::fs::metadata(&path);
        let rotated = meta.as_ref().is_ok_and(|m| m.ino() != cur_ino);
        let truncated = meta
            .as_ref()
            .is_ok_and(|m| m.ino() == cur_ino && m.len() < pos + buf.len() as u64);
        if rotated || truncated {
            // The old file is read to its end; its unterminated tail goes as it is.
            if !buf.is_empty() {
                if !emit(tx, &buf, false, cur_ino, &mut pos) {
                    return Ok(());
                }
                buf.clear();
            }
            if let Ok(r) = open(&path) {
                (reader, cur_ino) = r;
                pos = 0;
            }
            continue;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The file with inode `ino` next to `path` (on the same device), if there is one: where
/// a rotation moved the file the state file points into.
fn find_rotated(path: &std::path::Path, ino: u64) -> Option<File> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dev = std::fs::metadata(&dir).ok()?.dev();
    let entries = std::fs::read_dir(&dir).ok()?;
    for e in entries.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_file() && m.ino() == ino && m.dev() == dev {
            let f = File::open(e.path()).ok()?;
            // Re-check on the open file: the name may have moved on meanwhile.
            return f.metadata().is_ok_and(|m| m.ino() == ino).then_some(f);
        }
    }
    None
}

/// Hand over one line's units; false when the receiver is gone.
fn emit(tx: &mpsc::Sender<Feed>, line: &[u8], newline: bool, ino: u64, pos: &mut u64) -> bool {
    for unit in units_of(line, newline) {
        *pos += unit.bytes.len() as u64 + u64::from(unit.newline);
        if tx
            .blocking_send(Feed::Unit {
                unit,
                ino,
                end: *pos,
            })
            .is_err()
        {
            return false;
        }
    }
    true
}

fn read_stdin(tx: &mpsc::Sender<Feed>) -> anyhow::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut buf = Vec::new();
    let mut pos = 0;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        let newline = buf.last() == Some(&b'\n');
        if newline {
            buf.pop();
        }
        if !emit(tx, &buf, newline, 0, &mut pos) {
            return Ok(());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_rotated_away_is_found_by_its_inode() {
        let dir = std::env::temp_dir().join(format!("roost-ship-rot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("app.log");
        std::fs::write(&path, b"old\n").unwrap();
        let ino = std::fs::metadata(&path).unwrap().ino();
        std::fs::rename(&path, dir.join("app.log.1")).unwrap();
        std::fs::write(&path, b"new\n").unwrap();
        let found = find_rotated(&path, ino).expect("the rotated file");
        assert_eq!(found.metadata().unwrap().ino(), ino);
        std::fs::remove_file(dir.join("app.log.1")).unwrap();
        assert!(
            find_rotated(&path, ino).is_none(),
            "deleted: nothing to find"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
