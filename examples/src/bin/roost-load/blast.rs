//! The blast component: a do-nothing pubsub service on an XEP-0114 component connection.
//!
//! It answers every publish with a result and writes one notification per subscriber, of
//! the same shape as Roost's (`component/src/pubsub/notify.rs`): a headline `<message/>`
//! from the service with `<event><items node=…><item id=…>PAYLOAD</item></items></event>`,
//! rendered once per publish with `to` and `id` spliced in per recipient, and all the
//! stanzas of one read written with one call, as Roost writes a batch. It stores nothing,
//! checks nothing and keeps no state but a counter, so what the server spends on its
//! stanzas is the server's own cost per notification: the yardstick Roost's fan-out is
//! measured against (`scripts/bench`).
//!
//! The component protocol is spoken by hand, like the c2s side (`wire.rs`): tokio-xmpp's
//! component support needs its `component` feature, which turns on xmpp-parsers'
//! `component` feature and so switches the stanza namespace of this whole workspace's
//! c2s clients to `jabber:component:accept` (see `examples/Cargo.toml`). The handshake is
//! XEP-0114 §3; stanzas are found by counting element depth in the received bytes, which
//! is enough for what a server sends a component (no CDATA, `>` escaped in attributes).

use std::io::Write as _;

use anyhow::{anyhow, bail, Context as _};
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::wire::find;

/// A running blast component, on a thread of its own.
pub(crate) struct Blast {
    /// `PID/task/TID` of its thread, for its CPU time under /proc.
    task: String,
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<anyhow::Result<u64>>,
}

impl Blast {
    /// Connects to the component listener `addr` as `jid` with `secret`; returns once the
    /// server accepted the handshake. Every publish is fanned out to `subscribers`.
    pub(crate) async fn start(
        addr: &str,
        jid: &str,
        secret: &str,
        subscribers: Vec<String>,
    ) -> anyhow::Result<Blast> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let (addr, jid, secret) = (addr.to_owned(), jid.to_owned(), secret.to_owned());
        std::thread::Builder::new()
            .name("blast".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow!(e)));
                        return;
                    }
                };
                let r = rt.block_on(async move {
                    let task = std::fs::read_link("/proc/thread-self")
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let tcp = match connect(&addr, &jid, &secret).await {
                        Ok(t) => t,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return Ok(0);
                        }
                    };
                    let _ = ready_tx.send(Ok(task));
                    serve(tcp, &jid, &subscribers, stop_rx).await
                });
                let _ = done_tx.send(r);
            })?;
        let task = ready_rx
            .await
            .map_err(|_| anyhow!("the blast component's thread ended"))??;
        Ok(Blast {
            task,
            stop: stop_tx,
            done: done_rx,
        })
    }

    /// Where its thread's counters are under /proc (`PID/task/TID`).
    pub(crate) fn proc_task(&self) -> String {
        self.task.clone()
    }

    /// Closes the stream; returns the errors it saw (bounced notifications).
    pub(crate) async fn stop(self) -> anyhow::Result<u64> {
        let _ = self.stop.send(());
        self.done
            .await
            .map_err(|_| anyhow!("the blast component's thread ended"))?
    }
}

/// The XEP-0114 handshake: open the stream, answer the server's stream id with
/// SHA-1(id + secret) in hex, wait for the empty `<handshake/>`.
async fn connect(addr: &str, jid: &str, secret: &str) -> anyhow::Result<TcpStream> {
    let mut tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("blast component: cannot connect to {addr}"))?;
    tcp.set_nodelay(true)?;
    tcp.write_all(
        format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' \
             xmlns:stream='http://etherx.jabber.org/streams' to='{jid}'>"
        )
        .as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(p) = find(&buf, b"<stream:stream") {
            if let Some(e) = buf[p..].iter().position(|&b| b == b'>') {
                break p + e;
            }
        }
        read_more(&mut tcp, &mut buf).await?;
    };
    let header = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let id = attr(&header, "id")
        .ok_or_else(|| anyhow!("blast component: no stream id from the server: {header}"))?;
    let digest = Sha1::digest(format!("{id}{secret}").as_bytes());
    tcp.write_all(format!("<handshake>{digest:x}</handshake>").as_bytes())
        .await?;
    buf.drain(..=header_end);
    loop {
        if find(&buf, b"<handshake").is_some() {
            return Ok(tcp);
        }
        if find(&buf, b"error").is_some() || find(&buf, b"</stream:stream>").is_some() {
            // Let the whole error arrive before quoting it.
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(200),
                read_more(&mut tcp, &mut buf),
            )
            .await;
            bail!(
                "blast component: the server refused {jid}: {}",
                String::from_utf8_lossy(&buf)
            );
        }
        read_more(&mut tcp, &mut buf).await?;
    }
}

async fn read_more(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), tcp.read(&mut chunk))
        .await
        .map_err(|_| anyhow!("blast component: no answer from the server"))??;
    if n == 0 {
        bail!(
            "blast component: the server closed the connection: {}",
            String::from_utf8_lossy(buf)
        );
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Answers publishes until `stop`; returns the number of bounced notifications.
async fn serve(
    tcp: TcpStream,
    me: &str,
    subscribers: &[String],
    mut stop: oneshot::Receiver<()>,
) -> anyhow::Result<u64> {
    let (mut r, mut w) = tcp.into_split();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut out = Vec::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 16];
    let mut state = State {
        me: me.to_owned(),
        next: 0,
        errors: 0,
    };
    loop {
        let n = tokio::select! {
            _ = &mut stop => break,
            n = r.read(&mut chunk) => n?,
        };
        if n == 0 {
            bail!("blast component: the server closed the stream");
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while let Some((s, e)) = next_stanza(&buf[at..])? {
            state.handle(&buf[at + s..at + e], subscribers, &mut out);
            at += e;
        }
        buf.drain(..at);
        if !out.is_empty() {
            w.write_all(&out).await?;
            out.clear();
        }
    }
    w.write_all(b"</stream:stream>").await.ok();
    Ok(state.errors)
}

struct State {
    me: String,
    /// Numbers message ids and item ids.
    next: u64,
    errors: u64,
}

impl State {
    fn handle(&mut self, stanza: &[u8], subscribers: &[String], out: &mut Vec<u8>) {
        let Some(tag_end) = tag_end(stanza, 0) else {
            return;
        };
        let tag = String::from_utf8_lossy(&stanza[..=tag_end]);
        let kind = attr(&tag, "type").unwrap_or_default();
        if tag.starts_with("<message") && kind == "error" {
            self.errors += 1;
            return;
        }
        if !tag.starts_with("<iq") || !(kind == "set" || kind == "get") {
            return;
        }
        let (from, id) = (
            attr(&tag, "from").unwrap_or_default(),
            attr(&tag, "id").unwrap_or_default(),
        );
        let me = &self.me;
        let Some(publish) = publish_of(stanza) else {
            let _ = write!(
                out,
                "<iq type='error' from='{me}' to='{from}' id='{id}'><error type='cancel'>\
                 <service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            );
            return;
        };
        self.next += 1;
        let item_id = publish
            .item_id
            .unwrap_or_else(|| format!("{:016x}", self.next.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let node = publish.node;
        let _ = write!(
            out,
            "<iq type='result' from='{me}' to='{from}' id='{id}'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='{node}'>\
             <item id='{item_id}'/></publish></pubsub></iq>"
        );
        // Rendered once, spliced per recipient, as Roost's NotificationRenderer does.
        let head = format!("<message from='{me}' type='headline'");
        let mut rest = format!(
            "><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>\
             <item id='{item_id}'>"
        )
        .into_bytes();
        rest.extend_from_slice(publish.payload);
        rest.extend_from_slice(b"</item></items></event></message>");
        for to in subscribers {
            self.next += 1;
            out.extend_from_slice(head.as_bytes());
            let _ = write!(out, " to='{to}' id='b-{}'", self.next);
            out.extend_from_slice(&rest);
        }
    }
}

/// What a publish request carries.
struct Publish<'a> {
    node: String,
    item_id: Option<String>,
    /// The item's content, as the server sent it.
    payload: &'a [u8],
}

fn publish_of(stanza: &[u8]) -> Option<Publish<'_>> {
    let p = find(stanza, b"<publish")?;
    let pe = tag_end(stanza, p)?;
    let node = attr(&String::from_utf8_lossy(&stanza[p..=pe]), "node")?;
    let Some(i) = find(&stanza[pe..], b"<item").map(|i| pe + i) else {
        return Some(Publish {
            node,
            item_id: None,
            payload: b"",
        });
    };
    let ie = tag_end(stanza, i)?;
    let item_id = attr(&String::from_utf8_lossy(&stanza[i..=ie]), "id");
    let payload = if stanza[ie - 1] == b'/' {
        &b""[..]
    } else {
        let close = stanza.windows(7).rposition(|w| w == b"</item>")?;
        &stanza[ie + 1..close.max(ie + 1)]
    };
    Some(Publish {
        node,
        item_id,
        payload,
    })
}

/// The value of attribute `name` in a start tag, as written (entities left escaped).
fn attr(tag: &str, name: &str) -> Option<String> {
    for q in ['\'', '"'] {
        let pat = format!(" {name}={q}");
        if let Some(p) = tag.find(&pat) {
            let v = &tag[p + pat.len()..];
            return v.find(q).map(|e| v[..e].to_owned());
        }
    }
    None
}

/// Index of the `>` ending the tag that starts at `start`, skipping quoted values.
fn tag_end(b: &[u8], start: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().skip(start + 1) {
        match (quote, c) {
            (None, b'\'' | b'"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// The next complete top-level element in `b` as (start, end), None if it is not all
/// there yet. Whitespace (keepalives) between stanzas is skipped.
fn next_stanza(b: &[u8]) -> anyhow::Result<Option<(usize, usize)>> {
    let Some(start) = b.iter().position(|c| !c.is_ascii_whitespace()) else {
        return Ok(None);
    };
    if b[start] != b'<' {
        bail!(
            "blast component: unexpected text from the server: {}",
            String::from_utf8_lossy(&b[start..])
        );
    }
    if b[start..].starts_with(b"</stream:stream") || b[start..].starts_with(b"<stream:error") {
        bail!(
            "blast component: the server ended the stream: {}",
            String::from_utf8_lossy(&b[start..])
        );
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let Some(e) = tag_end(b, i) else {
            return Ok(None);
        };
        match b.get(i + 1) {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(b'?' | b'!') => {}
            _ if b[e - 1] == b'/' => {}
            _ => depth += 1,
        }
        i = e + 1;
        if depth == 0 {
            return Ok(Some((start, i)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanzas_are_split_at_depth_zero_and_kept_whole() {
        let s = b" <iq type='set' a='>'><x/><y>t</y></iq><message/><iq";
        let (a, b) = next_stanza(s).unwrap().unwrap();
        assert_eq!(&s[a..b], b"<iq type='set' a='>'><x/><y>t</y></iq>");
        let (c, d) = next_stanza(&s[b..]).unwrap().unwrap();
        assert_eq!(&s[b + c..b + d], b"<message/>");
        assert!(next_stanza(&s[b + d..]).unwrap().is_none());
    }

    #[test]
    fn a_publish_gets_its_result_and_one_notification_per_subscriber() {
        let iq =
            b"<iq type=\"set\" id=\"~L5~1\" from=\"u0@localhost/load\" to=\"blast.localhost\">\
                   <pubsub xmlns=\"http://jabber.org/protocol/pubsub\"><publish node=\"n\"><item>\
                   <entry xmlns=\"urn:roost:load\">~T5~xx</entry></item></publish></pubsub></iq>";
        let mut st = State {
            me: "blast.localhost".into(),
            next: 0,
            errors: 0,
        };
        let mut out = Vec::new();
        let subs = ["u1@localhost".to_owned(), "u2@localhost".to_owned()];
        st.handle(iq, &subs, &mut out);
        let out = String::from_utf8(out).unwrap();
        let item = format!("{:016x}", 1u64.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        assert_eq!(
            out,
            format!(
                "<iq type='result' from='blast.localhost' to='u0@localhost/load' id='~L5~1'>\
                 <pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'>\
                 <item id='{item}'/></publish></pubsub></iq>\
                 <message from='blast.localhost' type='headline' to='u1@localhost' id='b-2'>\
                 <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'>\
                 <item id='{item}'><entry xmlns=\"urn:roost:load\">~T5~xx</entry></item>\
                 </items></event></message>\
                 <message from='blast.localhost' type='headline' to='u2@localhost' id='b-3'>\
                 <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='n'>\
                 <item id='{item}'><entry xmlns=\"urn:roost:load\">~T5~xx</entry></item>\
                 </items></event></message>"
            )
        );
    }

    #[test]
    fn other_requests_are_refused_and_bounces_counted() {
        let mut st = State {
            me: "b".into(),
            next: 0,
            errors: 0,
        };
        let mut out = Vec::new();
        st.handle(
            b"<iq type='get' id='d' from='u'><query xmlns='x'/></iq>",
            &[],
            &mut out,
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("service-unavailable"));
        let mut out = Vec::new();
        st.handle(b"<message type='error' from='u1'/>", &[], &mut out);
        assert!(out.is_empty());
        assert_eq!(st.errors, 1);
    }
}
