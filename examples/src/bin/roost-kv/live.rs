//! The long-running commands: `write` (stdin's lines to the node), `watch` (the node's
//! changes to stdout) and `clone` (both, plus a copy kept in step). One event loop over the
//! session, stdin, signals and a timer.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use minidom::Element;
use roost_examples::{describe_error, is_transient, Incoming, Session};
use tokio::signal::unix::Signal;
use tokio::sync::mpsc;
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::catchup::{self, Next, Pass};
use crate::kv::{self, Change, Command};
use crate::wire::{self, Notice};
use crate::Args;

/// How long a request may go unanswered (for a history query: without a result arriving)
/// before it is sent again. A request in flight when the service restarts may never be
/// answered: the server does not bounce what the component had not read.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait before retrying after the service was away, or the node missing.
const RETRY: Duration = Duration::from_secs(1);
/// How often the timers run (and the state file is saved, when changed).
const TICK: Duration = Duration::from_millis(200);

/// Which command runs.
pub enum Mode {
    Write,
    Watch,
    Clone(CloneOpts),
}

/// The options of `clone`.
pub struct CloneOpts {
    pub state: Option<PathBuf>,
    pub dump: Option<PathBuf>,
    pub resync: Option<Duration>,
    pub usr1: Option<Signal>,
}

/// Whether a retraction failed only because the key (or the whole node) is not there:
/// what a delete wanted anyway.
pub fn already_gone(e: &StanzaError) -> bool {
    e.defined_condition == DefinedCondition::ItemNotFound
}

/// Writes from stdin, sent one at a time in order (so one writer's writes of a key land
/// in the order given), each retried until the service accepts or refuses it.
#[derive(Default)]
struct Writer {
    queue: VecDeque<Change>,
    /// The IQ id of the head of the queue, and when it was sent.
    inflight: Option<(String, Instant)>,
    /// Not before this, after a transient failure.
    retry_at: Option<Instant>,
    /// Stdin is done.
    eof: bool,
}

/// A history query in flight.
struct Page {
    iq: String,
    queryid: String,
    /// The item it reads after (`None`: from the start).
    after: Option<String>,
    /// When it was sent or last brought a result.
    progress: Instant,
}

/// The subscription and the copy (`watch` has the first, `clone` both).
struct Follow {
    /// The subscribe request in flight.
    sub_iq: Option<(String, Instant)>,
    /// When to subscribe (and, for a clone, catch up) again.
    restart_at: Option<Instant>,
    /// Said already that the node is missing.
    missing_told: bool,
    copy: Option<Replica>,
}

/// A clone's copy of the store.
struct Replica {
    map: BTreeMap<String, String>,
    /// The catch-up in progress, if any.
    pass: Option<Pass>,
    /// Its page in flight.
    page: Option<Page>,
    queries: u64,
    synced_at: Option<Instant>,
    state: Option<PathBuf>,
    dump: Option<PathBuf>,
    resync: Option<Duration>,
    usr1: Option<Signal>,
    dirty: bool,
}

struct Loop<'a> {
    s: &'a mut Session,
    args: &'a Args,
    writer: Option<Writer>,
    follow: Option<Follow>,
    /// A request found the service away: what was sent meanwhile may be lost, so a clone
    /// catches up again once the service answers.
    away: bool,
    out: std::io::Stdout,
}

/// Run `mode` until stdin ends (`write`) or SIGINT/SIGTERM (`watch`, `clone`).
pub async fn run(s: &mut Session, args: &Args, mode: Mode) -> anyhow::Result<()> {
    let writes = !matches!(mode, Mode::Watch);
    let following = !matches!(mode, Mode::Write);
    let copy = match mode {
        Mode::Write | Mode::Watch => None,
        Mode::Clone(o) => {
            let map = match &o.state {
                Some(p) => kv::load_map(p)?.inspect(|m| {
                    eprintln!("roost-kv: loaded {} keys from {}", m.len(), p.display())
                }),
                None => None,
            };
            let copy = Replica {
                map: map.unwrap_or_default(),
                pass: None,
                page: None,
                queries: 0,
                synced_at: None,
                state: o.state,
                dump: o.dump,
                resync: o.resync,
                usr1: o.usr1,
                dirty: false,
            };
            Some(copy)
        }
    };
    let mut l = Loop {
        s,
        args,
        writer: writes.then(Writer::default),
        follow: following.then_some(Follow {
            sub_iq: None,
            restart_at: None,
            missing_told: false,
            copy,
        }),
        away: false,
        out: std::io::stdout(),
    };
    let mut lines = if writes { Some(stdin_lines()) } else { None };
    l.start().await;
    let mut tick = tokio::time::interval(TICK);
    let mut stop = std::pin::pin!(shutdown());
    loop {
        if l.finished() {
            break;
        }
        let usr1 = async {
            match l
                .follow
                .as_mut()
                .and_then(|f| f.copy.as_mut())
                .and_then(|c| c.usr1.as_mut())
            {
                Some(sig) => sig.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            incoming = l.s.next() => match incoming {
                None => bail!("the connection ended"),
                Some(Incoming::Reconnected) => {
                    let watching = l.follow.as_ref().is_some_and(|f| f.copy.is_none());
                    eprintln!(
                        "roost-kv: reconnected{}",
                        if watching { "; changes made meanwhile were not seen" } else { "" }
                    );
                    l.start().await;
                    l.resend();
                }
                Some(Incoming::Stanza(st)) => l.stanza(*st).await?,
            },
            line = recv(&mut lines) => match line {
                Some(line) => l.line(&line)?,
                None => {
                    lines = None;
                    if let Some(w) = l.writer.as_mut() {
                        w.eof = true;
                    }
                }
            },
            _ = tick.tick() => l.tick().await?,
            _ = usr1 => l.dump()?,
            _ = &mut stop => break,
        }
        l.send_next().await;
    }
    l.finish().await
}

impl Loop<'_> {
    /// `write` is done once stdin ended and every line was acknowledged.
    fn finished(&self) -> bool {
        self.follow.is_none()
            && self
                .writer
                .as_ref()
                .is_some_and(|w| w.eof && w.queue.is_empty())
    }

    /// Subscribe (again: an existing subscription is just confirmed) and, for a clone,
    /// start a catch-up: both requests go at once, and the service handles them in order.
    async fn start(&mut self) {
        let Some(f) = self.follow.as_mut() else {
            return;
        };
        f.restart_at = None;
        if f.copy.is_some() {
            // This catch-up covers whatever the service's absence lost.
            self.away = false;
        }
        // Delivery to a full JID needs no presence; it only makes the session look normal.
        self.s.send(Presence::new(PresenceType::None)).await;
        let id = self.s.new_id();
        f.sub_iq = Some((id.clone(), Instant::now()));
        let payload = wire::subscribe(&self.args.node, &self.s.bound);
        send_set(self.s, self.args, id, payload).await;
        if let Some(c) = f.copy.as_mut() {
            let pass = Pass::new();
            let first = pass.first();
            c.pass = Some(pass);
            query(self.s, self.args, c, first).await;
        }
    }

    async fn stanza(&mut self, st: Stanza) -> anyhow::Result<()> {
        match st {
            Stanza::Message(m) if m.from.as_ref() == Some(&self.args.service) => {
                for n in wire::notices(&m, &self.args.node) {
                    self.notice(n)?;
                }
            }
            Stanza::Iq(Iq::Result { id, payload, .. }) => self.reply(&id, Ok(payload)).await?,
            Stanza::Iq(Iq::Error { id, error, .. }) => self.reply(&id, Err(error)).await?,
            _ => {}
        }
        Ok(())
    }

    fn notice(&mut self, n: Notice) -> anyhow::Result<()> {
        let Some(f) = self.follow.as_mut() else {
            return Ok(());
        };
        let Some(c) = f.copy.as_mut() else {
            // watch: print what happens.
            let line = match n {
                Notice::Change(ch) => ch.line(),
                Notice::Purge => "purge".to_owned(),
                Notice::Deleted => "deleted".to_owned(),
                Notice::Result { .. } => return Ok(()),
            };
            return print(&mut self.out, &[line]);
        };
        match (n, c.pass.as_mut()) {
            (
                Notice::Result {
                    queryid,
                    key,
                    value,
                },
                Some(p),
            ) => {
                if let Some(page) = c.page.as_mut().filter(|pg| pg.queryid == queryid) {
                    page.progress = Instant::now();
                    p.on_result(&key, value);
                }
            }
            (Notice::Result { .. }, None) => {}
            // A change goes to the catch-up in progress, in its place among the history's
            // results, and to the copy at once: the copy stays live, and the catch-up's
            // result replaces it only where it had missed something.
            (Notice::Change(ch), pass) => {
                if let Some(p) = pass {
                    p.on_change(&ch);
                }
                if catchup::apply(&mut c.map, &ch) {
                    c.dirty = true;
                    print(&mut self.out, &[ch.line()])?;
                }
            }
            (Notice::Purge, pass) => {
                if let Some(p) = pass {
                    p.on_purge();
                }
                c.replace(BTreeMap::new(), &mut self.out)?;
            }
            (Notice::Deleted, _) => {
                eprintln!(
                    "roost-kv: node {} was deleted; waiting for it to exist again",
                    self.args.node
                );
                c.pass = None;
                c.page = None;
                c.replace(BTreeMap::new(), &mut self.out)?;
                f.restart_at = Some(Instant::now() + RETRY);
                f.missing_told = true;
            }
        }
        Ok(())
    }

    /// An IQ reply: to the subscribe, a history page or a write.
    async fn reply(
        &mut self,
        id: &str,
        reply: Result<Option<Element>, StanzaError>,
    ) -> anyhow::Result<()> {
        if let Some(f) = self.follow.as_mut() {
            if f.sub_iq.as_ref().is_some_and(|s| s.0 == id) {
                f.sub_iq = None;
                return self.subscribed(reply);
            }
            if let Some(c) = f.copy.as_mut() {
                if let Some(page) = c.page.take_if(|p| p.iq == id) {
                    return self.page_done(page, reply).await;
                }
            }
        }
        let Some(w) = self.writer.as_mut() else {
            return Ok(());
        };
        if w.inflight.as_ref().is_none_or(|(i, _)| i != id) {
            return Ok(());
        }
        w.inflight = None;
        let Some(change) = w.queue.front().cloned() else {
            return Ok(());
        };
        match reply {
            Ok(_) => {}
            Err(e) if matches!(change, Change::Del(_)) && already_gone(&e) => {
                tracing::info!("{} was not set", change.key());
            }
            Err(e) if is_transient(&e) => {
                tracing::info!("{} failed, retrying: {}", change.line(), describe_error(&e));
                self.away = true;
                w.retry_at = Some(Instant::now() + RETRY);
                return Ok(());
            }
            Err(e) => {
                let why = format!("{} refused: {}", change.line(), describe_error(&e));
                if self.follow.is_none() {
                    bail!("{why}");
                }
                eprintln!("roost-kv: {why}; dropped");
            }
        }
        w.queue.pop_front();
        if std::mem::take(&mut self.away) {
            self.service_back().await;
        }
        Ok(())
    }

    fn subscribed(&mut self, reply: Result<Option<Element>, StanzaError>) -> anyhow::Result<()> {
        let Some(f) = self.follow.as_mut() else {
            return Ok(());
        };
        let e = match reply {
            Ok(_) => {
                if std::mem::take(&mut f.missing_told) {
                    eprintln!("roost-kv: node {} is there", self.args.node);
                }
                return Ok(());
            }
            Err(e) => e,
        };
        if e.defined_condition == DefinedCondition::ItemNotFound {
            if !f.missing_told {
                eprintln!(
                    "roost-kv: node {} does not exist (yet); waiting for it (create it with \
                     `roost-kv create`)",
                    self.args.node
                );
                f.missing_told = true;
            }
        } else if is_transient(&e) {
            tracing::info!("subscribe failed, retrying: {}", describe_error(&e));
            self.away = true;
        } else {
            bail!(
                "subscribing to node {} failed: {}",
                self.args.node,
                describe_error(&e)
            );
        }
        // Subscribe and catch up again shortly; the pass in flight is worthless without
        // the subscription.
        f.restart_at = Some(Instant::now() + RETRY);
        if let Some(c) = f.copy.as_mut() {
            c.pass = None;
            c.page = None;
        }
        Ok(())
    }

    async fn page_done(
        &mut self,
        page: Page,
        reply: Result<Option<Element>, StanzaError>,
    ) -> anyhow::Result<()> {
        let Some(f) = self.follow.as_mut() else {
            return Ok(());
        };
        let Some(c) = f.copy.as_mut() else {
            return Ok(());
        };
        let Some(p) = c.pass.as_mut() else {
            return Ok(());
        };
        let next = match reply {
            Ok(fin) => p.on_fin(wire::complete(fin)),
            // The item the page continued from was retracted; from the start, the node is
            // missing (deleted since the subscribe, or the subscribe failed too).
            Err(e) if e.defined_condition == DefinedCondition::ItemNotFound => {
                if page.after.is_none() {
                    c.pass = None;
                    f.restart_at = Some(Instant::now() + RETRY);
                    return Ok(());
                }
                p.on_anchor_gone()
            }
            Err(e) if is_transient(&e) => {
                tracing::info!("history query failed, retrying: {}", describe_error(&e));
                self.away = true;
                c.pass = None;
                f.restart_at = Some(Instant::now() + RETRY);
                return Ok(());
            }
            Err(e) => bail!(
                "reading the history of node {} failed: {}",
                self.args.node,
                describe_error(&e)
            ),
        };
        match next {
            Next::Page(after) => query(self.s, self.args, c, after).await,
            Next::Done(map) => {
                let (pages, rereads) = (p.pages, p.rereads);
                c.pass = None;
                c.synced_at = Some(Instant::now());
                let changes = c.replace(map, &mut self.out)?;
                eprintln!(
                    "roost-kv: caught up: {} keys, {changes} corrected ({pages} pages, {rereads} \
                     read again)",
                    c.map.len()
                );
            }
        }
        Ok(())
    }

    /// The service answers again after being away: notifications may have been lost.
    async fn service_back(&mut self) {
        let catching_up = self
            .follow
            .as_ref()
            .and_then(|f| f.copy.as_ref())
            .is_some_and(|c| c.pass.is_some());
        if self.follow.as_ref().is_some_and(|f| f.copy.is_some()) && !catching_up {
            eprintln!("roost-kv: the service was away; catching up");
            self.start().await;
        }
    }

    fn line(&mut self, line: &str) -> anyhow::Result<()> {
        let cmd = match kv::parse_line(line) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A bad line is the writer's mistake, not a reason to stop following.
                eprintln!("roost-kv: line ignored: {e:#}: {line}");
                return Ok(());
            }
        };
        match cmd {
            Command::Write(change) => {
                if let Some(w) = self.writer.as_mut() {
                    w.queue.push_back(change);
                }
            }
            Command::Dump => self.dump()?,
        }
        Ok(())
    }

    /// Send the head of the write queue, if nothing is in flight.
    async fn send_next(&mut self) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        if w.inflight.is_some() || w.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let Some(change) = w.queue.front() else {
            return;
        };
        w.retry_at = None;
        let id = self.s.new_id();
        let payload = wire::write(&self.args.node, change);
        w.inflight = Some((id.clone(), Instant::now()));
        send_set(self.s, self.args, id, payload).await;
    }

    /// After a reconnection the write in flight may be lost: send it again.
    fn resend(&mut self) {
        if let Some(w) = self.writer.as_mut() {
            w.inflight = None;
            w.retry_at = None;
        }
    }

    async fn tick(&mut self) -> anyhow::Result<()> {
        let now = Instant::now();
        if let Some(w) = self.writer.as_mut() {
            if w.inflight
                .as_ref()
                .is_some_and(|(_, t)| now - *t >= REQUEST_TIMEOUT)
            {
                tracing::info!("a write went unanswered; sending it again");
                w.inflight = None;
                self.away = true;
            }
        }
        let Some(f) = self.follow.as_mut() else {
            return Ok(());
        };
        let lost_sub = f
            .sub_iq
            .as_ref()
            .is_some_and(|(_, t)| now - *t >= REQUEST_TIMEOUT);
        let lost_page = f
            .copy
            .as_ref()
            .and_then(|c| c.page.as_ref())
            .is_some_and(|p| now - p.progress >= REQUEST_TIMEOUT);
        let resync = f.copy.as_ref().is_some_and(|c| {
            c.pass.is_none()
                && c.resync
                    .zip(c.synced_at)
                    .is_some_and(|(every, at)| now - at >= every)
        });
        if lost_sub || lost_page {
            eprintln!(
                "roost-kv: no answer from the service for {}s; subscribing and catching up again",
                REQUEST_TIMEOUT.as_secs()
            );
            self.away = true;
            self.start().await;
        } else if f.restart_at.is_some_and(|t| now >= t) || resync {
            self.start().await;
        }
        if let Some(c) = self.follow.as_mut().and_then(|f| f.copy.as_mut()) {
            c.save()?;
        }
        Ok(())
    }

    fn dump(&mut self) -> anyhow::Result<()> {
        if let Some(c) = self.follow.as_ref().and_then(|f| f.copy.as_ref()) {
            if let Some(p) = &c.dump {
                kv::save_map(p, &c.map)?;
                eprintln!("roost-kv: dumped {} keys to {}", c.map.len(), p.display());
            }
        }
        Ok(())
    }

    /// Save and dump the copy, and unsubscribe (a full JID that is gone has no use for
    /// notifications).
    async fn finish(mut self) -> anyhow::Result<()> {
        if let Some(w) = &self.writer {
            if self.follow.is_some() && !w.queue.is_empty() {
                eprintln!("roost-kv: {} write(s) not sent", w.queue.len());
            }
        }
        let Some(f) = self.follow.as_mut() else {
            return Ok(());
        };
        if let Some(c) = f.copy.as_mut() {
            c.dirty = true;
            c.save()?;
        }
        self.dump()?;
        let payload = wire::unsubscribe(&self.args.node, &self.s.bound);
        let limit = Duration::from_secs(2);
        match self
            .s
            .request(&self.args.service, true, payload, limit)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::info!("unsubscribing failed: {}", describe_error(&e)),
            Err(e) => tracing::info!("unsubscribing failed: {e:#}"),
        }
        Ok(())
    }
}

impl Replica {
    /// Replace the copy with `map`, printing the difference; how many keys changed.
    fn replace(
        &mut self,
        map: BTreeMap<String, String>,
        out: &mut std::io::Stdout,
    ) -> anyhow::Result<usize> {
        let changes = kv::diff(&self.map, &map);
        self.map = map;
        self.dirty |= !changes.is_empty();
        print(out, &changes.iter().map(Change::line).collect::<Vec<_>>())?;
        Ok(changes.len())
    }

    fn save(&mut self) -> anyhow::Result<()> {
        if let (true, Some(p)) = (self.dirty, &self.state) {
            kv::save_map(p, &self.map)?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// Ask for the history page after `after` (from the start when `None`).
async fn query(s: &mut Session, args: &Args, c: &mut Replica, after: Option<String>) {
    c.queries += 1;
    let queryid = format!("kv-{}", c.queries);
    let id = s.new_id();
    let payload = wire::history(&args.node, &queryid, after.clone());
    c.page = Some(Page {
        iq: id.clone(),
        queryid,
        after,
        progress: Instant::now(),
    });
    send_set(s, args, id, payload).await;
}

async fn send_set(s: &mut Session, args: &Args, id: String, payload: Element) {
    s.send(Iq::Set {
        from: None,
        to: Some(args.service.clone()),
        id,
        payload,
    })
    .await;
}

fn print(out: &mut std::io::Stdout, lines: &[String]) -> anyhow::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut o = out.lock();
    for l in lines {
        writeln!(o, "{l}").context("writing stdout")?;
    }
    o.flush().context("writing stdout")
}

/// Stdin's lines, read on a thread of their own; the channel closes at the end of input.
/// Not tokio's stdin: its blocking read would hold up the runtime's shutdown (and the
/// exit on SIGTERM) until the next line came.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(1024);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(l) => {
                    if tx.blocking_send(l).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("roost-kv: reading stdin: {e}");
                    return;
                }
            }
        }
    });
    rx
}

async fn recv(lines: &mut Option<mpsc::Receiver<String>>) -> Option<String> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
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
