//! `roost-load`: load generator for XMPP publish-subscribe services, Roost or
//! any other (e.g. a server's built-in pubsub), over many real c2s connections.
//!
//! Scenarios, each printing one JSON line on stdout:
//!
//! - `publish`: N publishers, each on its own node, W IQs in flight each →
//!   publishes acknowledged per second and ack latency percentiles.
//! - `fanout`: one publisher, S online subscribers of one node → notifications
//!   delivered per second and publish→notification latency (from a timestamp in
//!   the payload). Closed loop (at most W items not yet delivered to everyone)
//!   or open loop with `--rate`.
//! - `route`: plain c2s→c2s messages between pairs of users, no pubsub at all:
//!   the server's own routing ceiling and message latency.
//! - `subscribe-storm`: S clients subscribe to K nodes at the same moment →
//!   subscriptions per second.
//!
//! Unlike `roost-publish`, this program does not use tokio-xmpp or
//! xmpp-parsers on the hot path: the load generator shares the machine with the
//! server under test, so every microsecond it spends parsing XML is a
//! microsecond taken from what it measures. It speaks the few stanzas it needs
//! as pre-formatted text (STARTTLS, SASL PLAIN, resource binding) and
//! finds replies by scanning received bytes for markers it planted: IQ ids
//! `~L<send time>~<seq>` and payload timestamps `~T<send time>~`. A marker is
//! never escaped by a server's XML serializer, so a byte scan finds it.
//!
//! ```text
//! roost-load --server 127.0.0.1:5222 --insecure-plaintext --service pubsub.localhost \
//!     --users-prefix u --users 20 --password pw publish --clients 8 --window 16
//! ```
//!
//! Connections use STARTTLS with a verified certificate unless `--insecure-plaintext`
//! (see `roost_examples::connect`): TLS costs the server CPU too, so compare services
//! with the same setting.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context as _};
use clap::{Parser, Subcommand};
use roost_examples::connect::{ConnectArgs, Connector};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

/// Namespace of XEP-0060 requests.
const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";

/// Drive publish-subscribe load at an XMPP server over real c2s connections.
#[derive(Parser, Debug, Clone)]
#[command(version)]
struct Args {
    /// Where and how to connect (STARTTLS with a verified certificate by default).
    #[command(flatten)]
    connect: ConnectArgs,

    /// The server's domain (the part after @ in the users' JIDs).
    #[arg(long, default_value = "localhost")]
    domain: String,

    /// JID of the pubsub service under test, e.g. pubsub.localhost (Roost) or
    /// pubsub-builtin.localhost (the server's own).
    #[arg(long, default_value = "pubsub.localhost")]
    service: String,

    /// Users are PREFIX0, PREFIX1, ...; they must already exist.
    #[arg(long, default_value = "u")]
    users_prefix: String,

    /// How many users exist (PREFIX0 .. PREFIX(N-1)); one connection each.
    #[arg(long, default_value_t = 20)]
    users: usize,

    /// Password shared by all users.
    #[arg(
        long,
        env = "ROOST_PASSWORD",
        hide_env_values = true,
        default_value = "pw"
    )]
    password: String,

    /// Seconds measured (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,

    /// Payload size in bytes (the payload element's text).
    #[arg(long, default_value_t = 256)]
    size: usize,

    /// `pubsub#max_items` of the nodes the run creates (the same for every
    /// service, so that each keeps and trims the same number of items).
    #[arg(long, default_value_t = 1000)]
    max_items: u32,

    /// Processes whose CPU time to report for the measured window, as
    /// NAME=PID, comma-separated (e.g. server=123,roost=456).
    #[arg(long, value_delimiter = ',')]
    pids: Vec<String>,

    /// Free-form label copied into the JSON line.
    #[arg(long, default_value = "")]
    label: String,

    /// Tokio worker threads of the load generator itself.
    #[arg(long, default_value_t = 1)]
    threads: usize,

    #[command(subcommand)]
    scenario: Scenario,
}

/// What to measure.
#[derive(Subcommand, Debug, Clone)]
enum Scenario {
    /// N publishers, each publishing to its own node with W IQs in flight.
    Publish {
        /// Publisher connections.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Publish IQs in flight per publisher.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Total publishes per second across publishers (0: as fast as acks allow).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// One publisher, S online subscribers of one node.
    Fanout {
        /// Subscriber connections.
        #[arg(long, default_value_t = 16)]
        subscribers: usize,
        /// Items not yet delivered to every subscriber, at most.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Items published per second (0: closed loop on `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// Pairs of users sending each other plain messages (no pubsub).
    Route {
        /// Sender→receiver pairs (2 connections each).
        #[arg(long, default_value_t = 8)]
        pairs: usize,
        /// Messages not yet received, per pair, at most.
        #[arg(long, default_value_t = 16)]
        window: usize,
        /// Total messages per second across pairs (0: closed loop on `--window`).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// S clients subscribing to K nodes at once.
    SubscribeStorm {
        /// Subscribing connections.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Nodes each client subscribes to.
        #[arg(long, default_value_t = 20)]
        nodes: usize,
        /// Subscribe IQs in flight per client.
        #[arg(long, default_value_t = 16)]
        window: usize,
    },
}

/// Microseconds since the process's first call: the clock of every marker,
/// shared by senders and receivers because both live in this process.
fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// The measured window, in `now_us` time; set once connections are ready.
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Window {
    fn contains(&self, t: u64) -> bool {
        t >= self.start.load(Ordering::Relaxed) && t < self.end.load(Ordering::Relaxed)
    }
}

/// What one reader saw in the measured window.
#[derive(Default)]
struct Stats {
    count: u64,
    errors: u64,
    lat_us: Vec<u32>,
    first_error: Option<String>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.count += other.count;
        self.errors += other.errors;
        self.lat_us.extend(other.lat_us);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A c2s connection's byte stream: TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The sending half of a connection.
type Writer = WriteHalf<Box<dyn Io>>;

/// Reads from `tcp` until `needle`; for the few exchanges before TLS starts.
async fn read_raw_until(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    needle: &[u8],
) -> anyhow::Result<()> {
    let deadline = TokioInstant::now() + Duration::from_secs(30);
    while find(buf, needle).is_none() {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, tcp.read(&mut chunk))
            .await
            .map_err(|_| anyhow!("timed out waiting for {}", String::from_utf8_lossy(needle)))??;
        if n == 0 {
            bail!(
                "connection closed before TLS: {}",
                String::from_utf8_lossy(buf)
            );
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// The STARTTLS exchange (RFC 6120 §5.4) on a fresh connection, up to `<proceed/>`.
async fn starttls(tcp: &mut TcpStream, domain: &str) -> anyhow::Result<()> {
    tcp.write_all(
        format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        )
        .as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    read_raw_until(tcp, &mut buf, b"</stream:features>").await?;
    if find(&buf, b"<starttls").is_none() {
        bail!("the server offers no STARTTLS (--insecure-plaintext for a local test server)");
    }
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
        .await?;
    buf.clear();
    read_raw_until(tcp, &mut buf, b"xmpp-tls").await?;
    read_raw_until(tcp, &mut buf, b">").await?;
    if find(&buf, b"<proceed").is_none() {
        bail!("STARTTLS refused: {}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}

/// One logged-in c2s connection, before it is split for the hot path.
struct Conn {
    stream: Box<dyn Io>,
    /// Bytes received but not yet consumed.
    buf: Vec<u8>,
    jid: String,
}

impl Conn {
    /// Reads until `needle` appears; returns the bytes up to and including it.
    async fn read_until(&mut self, needle: &[u8]) -> anyhow::Result<Vec<u8>> {
        let deadline = TokioInstant::now() + Duration::from_secs(30);
        loop {
            if let Some(p) = find(&self.buf, needle) {
                let rest = self.buf.split_off(p + needle.len());
                return Ok(std::mem::replace(&mut self.buf, rest));
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut chunk))
                .await
                .map_err(|_| {
                    anyhow!("timed out waiting for {}", String::from_utf8_lossy(needle))
                })??;
            if n == 0 {
                bail!(
                    "connection closed while waiting for {}: {}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&self.buf)
                );
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    async fn send(&mut self, s: &str) -> anyhow::Result<()> {
        self.stream.write_all(s.as_bytes()).await?;
        Ok(())
    }

    async fn open_stream(&mut self, domain: &str) -> anyhow::Result<Vec<u8>> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ))
        .await?;
        self.read_until(b"</stream:features>").await
    }

    /// Connects, authenticates with SASL PLAIN, binds a resource and, if
    /// `available`, sends initial presence (servers deliver messages addressed
    /// to a bare JID only to available resources).
    async fn login(
        args: &Args,
        connector: &Connector,
        user: &str,
        available: bool,
    ) -> anyhow::Result<Conn> {
        let mut tcp = connector.tcp().await?;
        let stream: Box<dyn Io> = if connector.tls().is_some() {
            starttls(&mut tcp, &args.domain).await?;
            Box::new(connector.handshake(tcp, &args.domain).await?)
        } else {
            Box::new(tcp)
        };
        let mut c = Conn {
            stream,
            buf: Vec::new(),
            jid: format!("{user}@{}", args.domain),
        };
        let features = c.open_stream(&args.domain).await?;
        if find(&features, b">PLAIN<").is_none() {
            bail!(
                "server offers no SASL PLAIN: {}",
                String::from_utf8_lossy(&features)
            );
        }
        let creds = b64(format!("\0{user}\0{}", args.password).as_bytes());
        c.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
        ))
        .await?;
        // Read the SASL outcome: <success/>, <success>…</success> or <failure>.
        let mut resp = Vec::new();
        loop {
            resp.extend(c.read_until(b">").await?);
            if find(&resp, b"failure").is_some() {
                bail!("login of {user} failed: {}", String::from_utf8_lossy(&resp));
            }
            if let Some(p) = find(&resp, b"<success") {
                let tag_end = p + resp[p..].iter().position(|&b| b == b'>').unwrap_or(0);
                if resp[tag_end - 1] == b'/' || find(&resp, b"</success>").is_some() {
                    break;
                }
            }
        }
        c.buf.clear();
        c.open_stream(&args.domain).await?;
        c.send(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\
             <resource>load</resource></bind></iq>",
        )
        .await?;
        let bound = c.read_until(b"</iq>").await?;
        if find(&bound, b"error").is_some() {
            bail!(
                "bind failed for {user}: {}",
                String::from_utf8_lossy(&bound)
            );
        }
        // RFC 3921 sessions: harmless where optional, required by old servers.
        c.send(
            "<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>",
        )
        .await?;
        c.await_iq("sess1").await.ok();
        if available {
            c.send("<presence/>").await?;
        }
        Ok(c)
    }

    /// Waits for the reply to IQ `id`; Err(text) if it is an error.
    async fn await_iq(&mut self, id: &str) -> anyhow::Result<()> {
        loop {
            let pos = find(&self.buf, format!("id='{id}'").as_bytes())
                .or_else(|| find(&self.buf, format!("id=\"{id}\"").as_bytes()));
            if let Some(p) = pos {
                let start = self.buf[..p]
                    .windows(3)
                    .rposition(|w| w == b"<iq")
                    .unwrap_or(0);
                let tag_end = start
                    + self.buf[start..]
                        .iter()
                        .position(|&b| b == b'>')
                        .unwrap_or(0);
                let self_closing = self.buf[tag_end.saturating_sub(1)] == b'/';
                let end = if self_closing {
                    Some(tag_end + 1)
                } else {
                    find(&self.buf[start..], b"</iq>").map(|e| start + e + 5)
                };
                if let Some(end) = end {
                    let stanza = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                    self.buf.drain(..end);
                    let tag = &stanza[..(tag_end - start).min(stanza.len())];
                    if tag.contains("type='error'") || tag.contains("type=\"error\"") {
                        bail!("{stanza}");
                    }
                    return Ok(());
                }
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk))
                .await
                .map_err(|_| anyhow!("no reply to {id}"))??;
            if n == 0 {
                bail!("connection closed waiting for reply to {id}");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Creates `node` with the same persistence settings on every service; an
    /// existing node (conflict) is fine.
    async fn create_node(
        &mut self,
        service: &str,
        node: &str,
        max_items: u32,
    ) -> anyhow::Result<()> {
        let id = format!("create-{node}");
        self.send(&format!(
            "<iq type='set' to='{service}' id='{id}'><pubsub xmlns='{PUBSUB_NS}'>\
             <create node='{node}'/><configure><x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>{PUBSUB_NS}#node_config</value></field>\
             <field var='pubsub#persist_items'><value>1</value></field>\
             <field var='pubsub#max_items'><value>{max_items}</value></field>\
             </x></configure></pubsub></iq>"
        ))
        .await?;
        match self.await_iq(&id).await {
            Err(e) if e.to_string().contains("conflict") => Ok(()),
            r => r.with_context(|| format!("creating node {node} on {service}")),
        }
    }

    fn split(self) -> (Reader, Writer) {
        let (r, w) = tokio::io::split(self.stream);
        (
            Reader {
                r,
                pending: self.buf,
            },
            w,
        )
    }
}

/// The receiving half on the hot path: scans bytes for markers, never parses.
struct Reader {
    r: ReadHalf<Box<dyn Io>>,
    pending: Vec<u8>,
}

/// A marker found in the received bytes.
enum Mark {
    /// An IQ reply carrying the send time from its id.
    Ack(u64),
    /// A payload timestamp (message or notification).
    Ts(u64),
    /// An IQ error (its text, for the first one).
    Error,
}

impl Reader {
    /// Calls `on` for every marker until `deadline`; consumed bytes are dropped,
    /// an incomplete marker at the end of a read is kept for the next one.
    async fn scan(
        &mut self,
        deadline: TokioInstant,
        stats: &mut Stats,
        mut on: impl FnMut(Mark, &mut Stats) -> bool,
    ) -> anyhow::Result<()> {
        let mut buf = std::mem::take(&mut self.pending);
        let mut chunk = vec![0u8; 65536];
        loop {
            let mut i = 0;
            let mut keep_from = buf.len();
            let mut stop = false;
            while i < buf.len() {
                let b = buf[i];
                if b == b'~' {
                    let Some(&kind) = buf.get(i + 1) else {
                        keep_from = i;
                        break;
                    };
                    if kind == b'L' || kind == b'T' {
                        let digits = buf[i + 2..].iter().take(24).position(|&c| c == b'~');
                        match digits {
                            Some(n) => {
                                let t: u64 = std::str::from_utf8(&buf[i + 2..i + 2 + n])
                                    .ok()
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(0);
                                let m = if kind == b'L' {
                                    Mark::Ack(t)
                                } else {
                                    Mark::Ts(t)
                                };
                                stop |= on(m, stats);
                                i += 2 + n + 1;
                                continue;
                            }
                            None if buf.len() - i < 26 => {
                                keep_from = i;
                                break;
                            }
                            None => {}
                        }
                    }
                } else if b == b't' && buf[i..].starts_with(b"type=") {
                    if buf.len() - i < 12 {
                        keep_from = i;
                        break;
                    }
                    if &buf[i + 6..i + 11] == b"error" {
                        if stats.first_error.is_none() {
                            let s = i.saturating_sub(200);
                            let e = (i + 400).min(buf.len());
                            stats.first_error =
                                Some(String::from_utf8_lossy(&buf[s..e]).into_owned());
                        }
                        stop |= on(Mark::Error, stats);
                    }
                }
                i += 1;
            }
            if stop {
                return Ok(());
            }
            buf.drain(..keep_from);
            let n = match tokio::time::timeout_at(deadline, self.r.read(&mut chunk)).await {
                Err(_) => return Ok(()),
                Ok(r) => r?,
            };
            if n == 0 {
                bail!("server closed the connection");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Records a latency sample for an event received now, if inside the window.
fn record(win: &Window, stats: &mut Stats, sent: u64) -> bool {
    let now = now_us();
    if win.contains(now) {
        stats.count += 1;
        stats
            .lat_us
            .push(now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32);
        true
    } else {
        false
    }
}

/// CPU seconds (user + system) a process has used so far, from /proc.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5), counted from after the command name.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux.
}

fn cpu_snapshot(pids: &[(String, String)]) -> Vec<Option<f64>> {
    pids.iter().map(|(_, p)| cpu_seconds(p)).collect()
}

/// How a sender decides when to send: keep `window` outstanding, or a fixed rate.
#[derive(Clone, Copy)]
enum Pace {
    Window,
    Rate(f64),
}

/// Sends `make(buf)` stanzas until `end`, paced by `pace`; each stanza takes
/// `cost` permits of `sem`, which the reader side gives back as replies come in.
async fn send_loop(
    mut w: Writer,
    sem: Arc<Semaphore>,
    cost: u32,
    pace: Pace,
    end: TokioInstant,
    mut make: impl FnMut(&mut Vec<u8>),
) -> anyhow::Result<()> {
    let mut buf = Vec::with_capacity(65536);
    let t0 = TokioInstant::now();
    let mut sent: f64 = 0.0;
    loop {
        buf.clear();
        match pace {
            Pace::Window => {
                let Ok(Ok(p)) = tokio::time::timeout_at(end, sem.acquire_many(cost)).await else {
                    break;
                };
                p.forget();
                make(&mut buf);
                while buf.len() < 32768 {
                    let Ok(p) = sem.try_acquire_many(cost) else {
                        break;
                    };
                    p.forget();
                    make(&mut buf);
                }
            }
            Pace::Rate(r) => {
                if TokioInstant::now() >= end {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                let due = t0.elapsed().as_secs_f64() * r;
                while sent < due.floor() && buf.len() < 1 << 20 {
                    make(&mut buf);
                    sent += 1.0;
                }
            }
        }
        if !buf.is_empty() {
            w.write_all(&buf).await?;
        }
    }
    // Keep the connection open (dropping it would log out the user while its
    // replies are still being counted).
    tokio::time::sleep_until(end + Duration::from_secs(3)).await;
    drop(w);
    Ok(())
}

fn payload_text(size: usize) -> String {
    "x".repeat(size.saturating_sub(24))
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn login_all(
    args: &Args,
    first: usize,
    n: usize,
    available: bool,
) -> anyhow::Result<Vec<Conn>> {
    if first + n > args.users {
        bail!(
            "need users {}..{} but only {} exist (--users)",
            first,
            first + n,
            args.users
        );
    }
    let connector = args.connect.connector(&args.domain)?;
    let mut tasks = Vec::new();
    for i in first..first + n {
        let (args, connector) = (args.clone(), connector.clone());
        let user = format!("{}{}", args.users_prefix, i);
        tasks.push(tokio::spawn(async move {
            Conn::login(&args, &connector, &user, available).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await??);
    }
    Ok(out)
}

/// Unique per run, so runs never share nodes (nor hit "already subscribed").
fn run_id() -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "b{}{}",
        t.as_secs() % 100_000_000,
        std::process::id() % 1000
    )
}

struct Outcome {
    stats: Stats,
    /// Seconds over which `stats.count` was counted.
    seconds: f64,
    clients: usize,
    window: usize,
    rate: f64,
    cpu: Vec<(String, Option<f64>)>,
    cpu_start: Vec<Option<f64>>,
}

async fn run(args: Args) -> anyhow::Result<Outcome> {
    let pids: Vec<(String, String)> = args
        .pids
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (n, p) = s.split_once('=').unwrap_or(("pid", s));
            (n.to_string(), p.to_string())
        })
        .collect();
    let mut pids_all = pids.clone();
    pids_all.push(("load".into(), std::process::id().to_string()));
    let rid = run_id();
    let svc = args.service.clone();
    let win = Arc::new(Window {
        start: AtomicU64::new(u64::MAX),
        end: AtomicU64::new(u64::MAX),
    });
    let payload = payload_text(args.size);

    // Everything below sets up connections first, then opens the window.
    let warmup = Duration::from_secs_f64(args.warmup);
    let dur = Duration::from_secs_f64(args.duration);
    let open_window = |win: &Window| -> (TokioInstant, TokioInstant) {
        let now = now_us();
        let s = now + warmup.as_micros() as u64;
        win.start.store(s, Ordering::Relaxed);
        win.end.store(s + dur.as_micros() as u64, Ordering::Relaxed);
        let t = TokioInstant::now();
        (t + warmup, t + warmup + dur)
    };
    let drain = Duration::from_secs(2);

    match args.scenario.clone() {
        Scenario::Publish {
            clients,
            window,
            rate,
        } => {
            let mut conns = login_all(&args, 0, clients, false).await?;
            for (i, c) in conns.iter_mut().enumerate() {
                c.create_node(&svc, &format!("{rid}-p{i}"), args.max_items)
                    .await?;
            }
            eprintln!("roost-load: {clients} publishers ready");
            let (wstart, wend) = open_window(&win);
            let cpu0 = cpu_at(wstart, &pids_all).await;
            let mut readers = Vec::new();
            for (i, c) in conns.into_iter().enumerate() {
                let (mut r, w) = c.split();
                let sem = Arc::new(Semaphore::new(window));
                let node = format!("{rid}-p{i}");
                let (svc, payload, sem2, win) =
                    (svc.clone(), payload.clone(), sem.clone(), win.clone());
                let pace = if rate > 0.0 {
                    Pace::Rate(rate / clients as f64)
                } else {
                    Pace::Window
                };
                let mut seq = 0u64;
                tokio::spawn(send_loop(w, sem, 1, pace, wend, move |b| {
                    seq += 1;
                    let t = now_us();
                    let _ = write!(
                        b,
                        "<iq type='set' to='{svc}' id='~L{t}~{seq}'><pubsub xmlns='{PUBSUB_NS}'>\
                         <publish node='{node}'><item><entry xmlns='urn:roost:load'>~T{t}~{payload}\
                         </entry></item></publish></pubsub></iq>"
                    );
                }));
                readers.push(tokio::spawn(async move {
                    let mut st = Stats::default();
                    r.scan(wend + drain, &mut st, |m, st| match m {
                        Mark::Ack(t) => {
                            record(&win, st, t);
                            sem2.add_permits(1);
                            false
                        }
                        Mark::Error => {
                            st.errors += 1;
                            false
                        }
                        Mark::Ts(_) => false,
                    })
                    .await
                    .map(|_| st)
                }));
            }
            let cpu1 = cpu_at(wend, &pids_all).await;
            finish(
                readers,
                args.duration,
                clients,
                window,
                rate,
                &pids_all,
                cpu0,
                cpu1,
            )
            .await
        }
        Scenario::Fanout {
            subscribers,
            window,
            rate,
        } => {
            let mut conns = login_all(&args, 0, subscribers + 1, true).await?;
            let node = format!("{rid}-f");
            conns[0].create_node(&svc, &node, args.max_items).await?;
            for c in conns[1..].iter_mut() {
                let id = format!("sub-{}", c.jid);
                c.send(&format!(
                    "<iq type='set' to='{svc}' id='{id}'><pubsub xmlns='{PUBSUB_NS}'>\
                     <subscribe node='{node}' jid='{}'/></pubsub></iq>",
                    c.jid
                ))
                .await?;
            }
            for c in conns[1..].iter_mut() {
                let id = format!("sub-{}", c.jid);
                c.await_iq(&id)
                    .await
                    .with_context(|| format!("subscribing {}", c.jid))?;
            }
            eprintln!("roost-load: {subscribers} subscribers ready");
            let (wstart, wend) = open_window(&win);
            let cpu0 = cpu_at(wstart, &pids_all).await;
            let cost = subscribers as u32;
            let sem = Arc::new(Semaphore::new(window * subscribers));
            let mut readers = Vec::new();
            let mut it = conns.into_iter();
            let (mut pr, pw) = it.next().expect("publisher").split();
            let pace = if rate > 0.0 {
                Pace::Rate(rate)
            } else {
                Pace::Window
            };
            let (svc2, payload2, node2) = (svc.clone(), payload.clone(), node.clone());
            let mut seq = 0u64;
            tokio::spawn(send_loop(pw, sem.clone(), cost, pace, wend, move |b| {
                seq += 1;
                let t = now_us();
                let _ = write!(
                    b,
                    "<iq type='set' to='{svc2}' id='~L{t}~{seq}'><pubsub xmlns='{PUBSUB_NS}'>\
                     <publish node='{node2}'><item><entry xmlns='urn:roost:load'>~T{t}~{payload2}\
                     </entry></item></publish></pubsub></iq>"
                );
            }));
            // The publisher's acks: only errors matter here.
            let acks = tokio::spawn(async move {
                let mut st = Stats::default();
                pr.scan(wend + drain, &mut st, |m, st| {
                    if let Mark::Error = m {
                        st.errors += 1;
                    }
                    false
                })
                .await
                .map(|_| st)
            });
            for c in it {
                let (mut r, w) = c.split();
                let (sem, win) = (sem.clone(), win.clone());
                readers.push(tokio::spawn(async move {
                    // Dropping the write half would end the session.
                    let _w = w;
                    let mut st = Stats::default();
                    r.scan(wend + drain, &mut st, |m, st| match m {
                        Mark::Ts(t) => {
                            record(&win, st, t);
                            sem.add_permits(1);
                            false
                        }
                        Mark::Error => {
                            st.errors += 1;
                            false
                        }
                        Mark::Ack(_) => false,
                    })
                    .await
                    .map(|_| st)
                }));
            }
            let cpu1 = cpu_at(wend, &pids_all).await;
            let mut o = finish(
                readers,
                args.duration,
                subscribers,
                window,
                rate,
                &pids_all,
                cpu0,
                cpu1,
            )
            .await?;
            let a = acks.await??;
            o.stats.errors += a.errors;
            if o.stats.first_error.is_none() {
                o.stats.first_error = a.first_error;
            }
            Ok(o)
        }
        Scenario::Route {
            pairs,
            window,
            rate,
        } => {
            let conns = login_all(&args, 0, 2 * pairs, true).await?;
            eprintln!("roost-load: {pairs} pairs ready");
            let (wstart, wend) = open_window(&win);
            let cpu0 = cpu_at(wstart, &pids_all).await;
            let mut readers = Vec::new();
            let mut it = conns.into_iter();
            while let (Some(a), Some(b)) = (it.next(), it.next()) {
                let to = b.jid.clone();
                let (mut ar, aw) = a.split();
                let (mut br, bw) = b.split();
                let sem = Arc::new(Semaphore::new(window));
                let pace = if rate > 0.0 {
                    Pace::Rate(rate / pairs as f64)
                } else {
                    Pace::Window
                };
                let payload = payload.clone();
                tokio::spawn(send_loop(aw, sem.clone(), 1, pace, wend, move |buf| {
                    let t = now_us();
                    let _ = write!(
                        buf,
                        "<message to='{to}'><body>~T{t}~{payload}</body></message>"
                    );
                }));
                let mut a_stats = Stats::default();
                tokio::spawn(async move {
                    // Drain whatever the sender receives (errors, if any).
                    let _ = ar.scan(wend + drain, &mut a_stats, |_, _| false).await;
                });
                let win = win.clone();
                readers.push(tokio::spawn(async move {
                    let _w = bw;
                    let mut st = Stats::default();
                    br.scan(wend + drain, &mut st, |m, st| match m {
                        Mark::Ts(t) => {
                            record(&win, st, t);
                            sem.add_permits(1);
                            false
                        }
                        Mark::Error => {
                            st.errors += 1;
                            false
                        }
                        Mark::Ack(_) => false,
                    })
                    .await
                    .map(|_| st)
                }));
            }
            let cpu1 = cpu_at(wend, &pids_all).await;
            finish(
                readers,
                args.duration,
                pairs,
                window,
                rate,
                &pids_all,
                cpu0,
                cpu1,
            )
            .await
        }
        Scenario::SubscribeStorm {
            clients,
            nodes,
            window,
        } => {
            let mut conns = login_all(&args, 0, clients + 1, false).await?;
            let names: Arc<Vec<String>> =
                Arc::new((0..nodes).map(|k| format!("{rid}-s{k}")).collect());
            for n in names.iter() {
                conns[0].create_node(&svc, n, args.max_items).await?;
            }
            eprintln!("roost-load: {clients} clients and {nodes} nodes ready");
            // The storm is the window: from the first request to the last reply.
            win.start.store(0, Ordering::Relaxed);
            let cpu0 = cpu_snapshot(&pids_all);
            let t0 = now_us();
            let deadline = TokioInstant::now() + Duration::from_secs(120);
            let mut readers = Vec::new();
            for c in conns.into_iter().skip(1) {
                let jid = c.jid.clone();
                let (mut r, w) = c.split();
                let sem = Arc::new(Semaphore::new(window));
                let (svc, names, sem2, win) =
                    (svc.clone(), names.clone(), sem.clone(), win.clone());
                let n = names.len();
                let mut k = 0usize;
                let sender = tokio::spawn(send_loop(w, sem, 1, Pace::Window, deadline, move |b| {
                    if k < names.len() {
                        let t = now_us();
                        let _ = write!(
                            b,
                            "<iq type='set' to='{svc}' id='~L{t}~{k}'><pubsub xmlns='{PUBSUB_NS}'>\
                             <subscribe node='{}' jid='{jid}'/></pubsub></iq>",
                            names[k]
                        );
                        k += 1;
                    }
                }));
                readers.push(tokio::spawn(async move {
                    let mut st = Stats::default();
                    let mut seen = 0;
                    r.scan(deadline, &mut st, |m, st| {
                        match m {
                            Mark::Ack(t) => {
                                record(&win, st, t);
                                seen += 1;
                                sem2.add_permits(1);
                            }
                            Mark::Error => st.errors += 1,
                            Mark::Ts(_) => {}
                        }
                        seen >= n
                    })
                    .await?;
                    sender.abort();
                    Ok(st)
                }));
            }
            let mut o = finish(readers, 0.0, clients, window, 0.0, &pids_all, cpu0, vec![]).await?;
            o.seconds = (now_us() - t0) as f64 / 1e6;
            let cpu1 = cpu_snapshot(&pids_all);
            o.cpu = cpu_delta(&pids_all, &o.cpu_start, &cpu1);
            Ok(o)
        }
    }
}

/// CPU seconds each process used between two snapshots.
fn cpu_delta(
    pids: &[(String, String)],
    a: &[Option<f64>],
    b: &[Option<f64>],
) -> Vec<(String, Option<f64>)> {
    pids.iter()
        .enumerate()
        .map(|(i, (n, _))| {
            let d = a.get(i).copied().flatten().zip(b.get(i).copied().flatten());
            (n.clone(), d.map(|(a, b)| b - a))
        })
        .collect()
}

/// Sleeps until `at`, then reads the CPU counters.
async fn cpu_at(at: TokioInstant, pids: &[(String, String)]) -> Vec<Option<f64>> {
    tokio::time::sleep_until(at).await;
    cpu_snapshot(pids)
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    readers: Vec<tokio::task::JoinHandle<anyhow::Result<Stats>>>,
    seconds: f64,
    clients: usize,
    window: usize,
    rate: f64,
    pids: &[(String, String)],
    cpu0: Vec<Option<f64>>,
    cpu1: Vec<Option<f64>>,
) -> anyhow::Result<Outcome> {
    let mut stats = Stats::default();
    for r in readers {
        stats.merge(r.await??);
    }
    let cpu = cpu_delta(pids, &cpu0, &cpu1);
    Ok(Outcome {
        stats,
        seconds,
        clients,
        window,
        rate,
        cpu,
        cpu_start: cpu0,
    })
}

fn main() -> std::process::ExitCode {
    match measure(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, whatever RUST_BACKTRACE says.
            eprintln!("roost-load: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn measure(args: Args) -> anyhow::Result<()> {
    now_us();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let scenario = match &args.scenario {
        Scenario::Publish { .. } => "publish",
        Scenario::Fanout { .. } => "fanout",
        Scenario::Route { .. } => "route",
        Scenario::SubscribeStorm { .. } => "subscribe-storm",
    };
    let (service, size, label) = (args.service.clone(), args.size, args.label.clone());
    let mut o = rt.block_on(run(args))?;
    // An IQ error carries its marker too and was counted as a reply: only
    // successes count.
    o.stats.count = o.stats.count.saturating_sub(o.stats.errors);
    o.stats.lat_us.sort_unstable();
    let l = &o.stats.lat_us;
    let per_s = if o.seconds > 0.0 {
        o.stats.count as f64 / o.seconds
    } else {
        0.0
    };
    let cpu: Vec<String> = o
        .cpu
        .iter()
        .map(|(n, c)| format!("\"{n}\":{}", c.map_or("null".into(), |c| format!("{c:.2}"))))
        .collect();
    println!(
        "{{\"scenario\":\"{scenario}\",\"service\":\"{service}\",\"label\":\"{label}\",\
         \"clients\":{},\"window\":{},\"rate\":{},\"size\":{size},\"seconds\":{:.2},\
         \"count\":{},\"per_s\":{per_s:.1},\"errors\":{},\
         \"lat_us\":{{\"p50\":{},\"p90\":{},\"p99\":{},\"max\":{}}},\"cpu_s\":{{{}}}}}",
        o.clients,
        o.window,
        o.rate,
        o.seconds,
        o.stats.count,
        o.stats.errors,
        percentile(l, 0.5),
        percentile(l, 0.9),
        percentile(l, 0.99),
        l.last().copied().unwrap_or(0),
        cpu.join(",")
    );
    if let Some(e) = &o.stats.first_error {
        eprintln!("roost-load: first error: {e}");
    }
    Ok(())
}
