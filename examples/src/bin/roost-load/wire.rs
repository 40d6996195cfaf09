//! The c2s wire, spoken as pre-formatted text: login (STARTTLS, SASL PLAIN, bind) and,
//! on the hot path, a byte scan for the markers the load generator planted.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use roost_examples::connect::Connector;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant as TokioInstant;

use crate::measure::Stats;
use crate::{Args, PUBSUB_NS};

pub(crate) fn b64(input: &[u8]) -> String {
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

pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A c2s connection's byte stream: TCP, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The sending half of a connection.
pub(crate) type Writer = WriteHalf<Box<dyn Io>>;

/// Reads from `tcp` until `needle`; for the few exchanges before TLS starts.
pub(crate) async fn read_raw_until(
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
pub(crate) async fn starttls(tcp: &mut TcpStream, domain: &str) -> anyhow::Result<()> {
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
pub(crate) struct Conn {
    pub(crate) stream: Box<dyn Io>,
    /// Bytes received but not yet consumed.
    pub(crate) buf: Vec<u8>,
    pub(crate) jid: String,
}

impl Conn {
    /// Reads until `needle` appears; returns the bytes up to and including it.
    pub(crate) async fn read_until(&mut self, needle: &[u8]) -> anyhow::Result<Vec<u8>> {
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

    pub(crate) async fn send(&mut self, s: &str) -> anyhow::Result<()> {
        self.stream.write_all(s.as_bytes()).await?;
        Ok(())
    }

    pub(crate) async fn open_stream(&mut self, domain: &str) -> anyhow::Result<Vec<u8>> {
        self.send(&format!(
            "<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
        ))
        .await?;
        self.read_until(b"</stream:features>").await
    }

    /// A TCP connection, secured with STARTTLS unless the connector is plaintext; no
    /// stream opened yet.
    async fn connect(args: &Args, connector: &Connector, user: &str) -> anyhow::Result<Conn> {
        let mut tcp = connector.tcp().await?;
        let stream: Box<dyn Io> = if connector.tls().is_some() {
            starttls(&mut tcp, &args.domain).await?;
            Box::new(connector.handshake(tcp, &args.domain).await?)
        } else {
            Box::new(tcp)
        };
        Ok(Conn {
            stream,
            buf: Vec::new(),
            jid: format!("{user}@{}", args.domain),
        })
    }

    /// Creates the account `user` with in-band registration (XEP-0077 §3.1); an existing
    /// account (`conflict`) is fine.
    async fn register(args: &Args, connector: &Connector, user: &str) -> anyhow::Result<()> {
        let mut c = Conn::connect(args, connector, user).await?;
        c.open_stream(&args.domain).await?;
        c.send(&format!(
            "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>\
             <username>{user}</username><password>{}</password></query></iq>",
            args.password
        ))
        .await?;
        let r = match c.await_iq("reg1").await {
            Err(e) if e.to_string().contains("<conflict") => Ok(()),
            Err(e) => Err(anyhow!(
                "registering {user} refused ({e}); the server must allow in-band registration \
                 from this address (Prosody: allow_registration, PROSODY_ALLOW_REGISTRATION=1 \
                 for scripts/prosody; ejabberd: mod_register and registration_timeout: infinity)"
            )),
            Ok(()) => Ok(()),
        };
        c.send("</stream:stream>").await.ok();
        r
    }

    /// Connects, authenticates with SASL PLAIN, binds a resource and, if
    /// `available`, sends initial presence (servers deliver messages addressed
    /// to a bare JID only to available resources).
    pub(crate) async fn login(
        args: &Args,
        connector: &Connector,
        user: &str,
        available: bool,
    ) -> anyhow::Result<Conn> {
        let mut c = Conn::connect(args, connector, user).await?;
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
    pub(crate) async fn await_iq(&mut self, id: &str) -> anyhow::Result<()> {
        self.await_iq_text(id).await.map(|_| ())
    }

    /// Waits for the reply to IQ `id` and returns it with everything received before it
    /// (e.g. the messages of a MAM query); Err(text) if it is an error.
    pub(crate) async fn await_iq_text(&mut self, id: &str) -> anyhow::Result<String> {
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
                    let all = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    self.buf.drain(..end);
                    let tag = &stanza[..(tag_end - start).min(stanza.len())];
                    if tag.contains("type='error'") || tag.contains("type=\"error\"") {
                        bail!("{stanza}");
                    }
                    return Ok(all);
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
    pub(crate) async fn create_node(
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

    pub(crate) fn split(self) -> (Reader, Writer) {
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
pub(crate) struct Reader {
    pub(crate) r: ReadHalf<Box<dyn Io>>,
    /// Bytes received before the split, not yet consumed.
    pub(crate) pending: Vec<u8>,
}

/// A marker found in the received bytes.
pub(crate) enum Mark {
    /// An IQ reply carrying the send time from its id.
    Ack(u64),
    /// A payload timestamp (message or notification).
    Ts(u64),
    /// An IQ error (its text, for the first one).
    Error,
    /// A sequence number planted in a payload (`~S<n>~`).
    Seq(u64),
}

impl Reader {
    /// Calls `on` for every marker until `deadline`; consumed bytes are dropped,
    /// an incomplete marker at the end of a read is kept for the next one.
    pub(crate) async fn scan(
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
                    if kind == b'L' || kind == b'T' || kind == b'S' {
                        let digits = buf[i + 2..].iter().take(24).position(|&c| c == b'~');
                        match digits {
                            Some(n) => {
                                let t: u64 = std::str::from_utf8(&buf[i + 2..i + 2 + n])
                                    .ok()
                                    .and_then(|s| s.parse().ok())
                                    .unwrap_or(0);
                                let m = match kind {
                                    b'L' => Mark::Ack(t),
                                    b'T' => Mark::Ts(t),
                                    _ => Mark::Seq(t),
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

/// Registers users PREFIX`first` .. PREFIX`first+count-1`, `parallel` at a time.
pub(crate) async fn register_all(
    args: &Args,
    first: usize,
    count: usize,
    parallel: usize,
) -> anyhow::Result<()> {
    let connector = args.connect.connector(&args.domain)?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = Vec::new();
    for i in first..first + count {
        let (args, connector, sem) = (args.clone(), connector.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            let user = format!("{}{i}", args.users_prefix);
            Conn::register(&args, &connector, &user).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "roost-load: users {}{first}..{}{} registered",
        args.users_prefix,
        args.users_prefix,
        first + count - 1
    );
    Ok(())
}
