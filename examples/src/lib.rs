//! Code shared by the examples: how to connect ([`connect`], used by all of them) and,
//! for the log distribution programs `roost-log-ship` and `roost-log-sink`, the item
//! payload format, durable state files, and a c2s session on tokio-xmpp's `StanzaStream`.
//!
//! # Payload
//!
//! One item carries consecutive *units* of a log, numbered per shipper from 1:
//!
//! ```xml
//! <lines xmlns='urn:roost:log:0' first='4711'>
//!   <line>first unit's text, XML-escaped</line>
//!   <line hex='1'>6d697865640d</line>
//!   <line nl='0'>a piece not followed by a newline</line>
//! </lines>
//! ```
//!
//! A unit is normally one line without its `\n`. Bytes XML cannot carry verbatim
//! (invalid UTF-8, `\r`, which parsers turn into `\n`, other control characters) are sent
//! hex-encoded with `hex='1'`. A line longer than [`MAX_UNIT`] bytes is cut into several
//! units, all but the last with `nl='0'`; so is the last, unterminated line of stdin.
//! Unit `first + k` is the `k`-th `<line/>`. Numbers make delivery idempotent: whatever
//! items and ids a unit travelled in, a sink writes unit `n` once, after unit `n - 1`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod connect;
pub mod filtered;
pub mod sink;

use connect::ConnectArgs;
use futures::StreamExt;
use minidom::rxml::NcName;
use minidom::Element;
use tokio_xmpp::stanzastream::{Event as StreamEvent, StanzaStream, StreamEvent as StreamState};
use tokio_xmpp::Stanza;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

/// Namespace of the log payload.
pub const LOG_NS: &str = "urn:roost:log:0";

/// The longest unit, in bytes: longer lines are cut, so that an item always fits the
/// node's `pubsub#max_payload_size` (64 KiB by default), even hex-encoded.
pub const MAX_UNIT: usize = 8 * 1024;

/// One unit of a log: a line (or piece of one) without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The bytes, without the trailing `\n`.
    pub bytes: Vec<u8>,
    /// Whether a `\n` follows it in the log.
    pub newline: bool,
}

impl Unit {
    /// An upper bound of the unit's size inside a payload, for batching.
    pub fn encoded_len(&self) -> usize {
        // The element's own markup, then the text as escaped or hex-encoded.
        const MARKUP: usize = 32;
        match verbatim(&self.bytes) {
            Some(text) => {
                MARKUP
                    + text
                        .bytes()
                        .map(|b| match b {
                            b'&' => 5,
                            b'<' | b'>' => 4,
                            b'"' | b'\'' => 6,
                            _ => 1,
                        })
                        .sum::<usize>()
            }
            None => MARKUP + 2 * self.bytes.len(),
        }
    }

    /// The log bytes of the unit, newline included.
    pub fn to_log_bytes(&self) -> Vec<u8> {
        let mut v = self.bytes.clone();
        if self.newline {
            v.push(b'\n');
        }
        v
    }
}

/// Cut `line` (without its newline) into units of at most [`MAX_UNIT`] bytes.
pub fn units_of(line: &[u8], newline: bool) -> Vec<Unit> {
    if line.len() <= MAX_UNIT {
        return vec![Unit {
            bytes: line.to_vec(),
            newline,
        }];
    }
    let chunks: Vec<&[u8]> = line.chunks(MAX_UNIT).collect();
    let last = chunks.len() - 1;
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, c)| Unit {
            bytes: c.to_vec(),
            newline: newline && i == last,
        })
        .collect()
}

/// `NAME=VALUE` of a program's `--attr`: an attribute to put on every payload element,
/// for content filters to select on (`@host = 'web-1'`). NAME must be an XML name without
/// a prefix, and not `xmlns`.
pub fn parse_attr(s: &str) -> Result<(NcName, String), String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    if name == "xmlns" {
        return Err("xmlns is the payload's namespace, not an attribute to set".to_owned());
    }
    let name = NcName::try_from(name)
        .map_err(|e| format!("{name:?} is not an XML attribute name: {e}"))?;
    Ok((name, value.to_owned()))
}

/// The `<lines/>` payload for units numbered from `first`, with the extra attributes
/// `attrs` (`roost-log-ship --attr`; `first` is the payload's own, refused by the shipper).
pub fn encode(first: u64, units: &[Unit], attrs: &[(NcName, String)]) -> Element {
    let mut b = Element::builder("lines", LOG_NS).attr(ncname("first"), first.to_string());
    for (name, value) in attrs {
        b = b.attr(name.clone(), value.as_str());
    }
    for u in units {
        let mut line = Element::builder("line", LOG_NS);
        if !u.newline {
            line = line.attr(ncname("nl"), "0");
        }
        line = match verbatim(&u.bytes) {
            Some(text) => line.append(text),
            None => line.attr(ncname("hex"), "1").append(hex(&u.bytes)),
        };
        b = b.append(line.build());
    }
    b.build()
}

/// The number of the first unit and the units of a `<lines/>` payload; `None` when it
/// is not one (or is malformed).
pub fn decode(payload: &Element) -> Option<(u64, Vec<Unit>)> {
    if !payload.is("lines", LOG_NS) {
        return None;
    }
    let first = payload.attr("first")?.parse().ok()?;
    let mut units = Vec::new();
    for line in payload.children().filter(|c| c.is("line", LOG_NS)) {
        let text = line.text();
        let bytes = if line.attr("hex") == Some("1") {
            unhex(&text)?
        } else {
            text.into_bytes()
        };
        units.push(Unit {
            bytes,
            newline: line.attr("nl") != Some("0"),
        });
    }
    Some((first, units))
}

/// The item id of a batch: the shipper's id and the number of its first unit, padded so
/// that ids sort like numbers. A batch re-sent after a restart starts at the same unit and
/// so replaces the item it repeats instead of adding one.
pub fn item_id(shipper: &str, first: u64) -> String {
    format!("{shipper}-{first:012}")
}

/// The shipper id of an item id made by [`item_id`].
pub fn shipper_of(id: &str) -> Option<&str> {
    id.rsplit_once('-').map(|(s, _)| s)
}

fn ncname(s: &'static str) -> minidom::rxml::NcName {
    // Only called with ASCII literals that are valid names.
    minidom::rxml::NcName::try_from(s).unwrap_or_else(|_| unreachable!("{s} is an NcName"))
}

/// The text as-is when XML can carry it unchanged.
fn verbatim(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let ok = s
        .chars()
        .all(|c| (c >= ' ' || c == '\t') && c != '\u{FFFE}' && c != '\u{FFFF}');
    ok.then_some(s)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim().as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

/// A small `key=value` state file, replaced atomically and durably: written to a
/// temporary file, fsync'd, renamed over the old one, and the directory fsync'd, so that
/// after a crash it is either the old or the new state, never a mix.
pub fn save_state(path: &Path, state: &BTreeMap<String, String>) -> io::Result<()> {
    let mut text = Vec::new();
    for (k, v) in state {
        writeln!(text, "{k}={v}")?;
    }
    replace_file(path, &text)
}

/// Replace the file at `path` with `contents` atomically and durably (see [`save_state`]).
pub fn replace_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Directories cannot be fsync'd everywhere; the rename is then as durable as it gets.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A state file written by [`save_state`]; empty when there is none yet.
pub fn load_state(path: &Path) -> io::Result<BTreeMap<String, String>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Open `path` for appending, creating it.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// A logged-in c2s session on tokio-xmpp's `StanzaStream`, driven directly rather than
/// through `tokio_xmpp::Client` (see `roost-publish` for the lost-wakeup bug that avoids).
/// The programs run their own event loop over [`Session::next`]; tokio-xmpp reconnects
/// on its own, which they see as [`Incoming::Reconnected`].
pub struct Session {
    stream: StanzaStream,
    /// The JID the current stream is bound to.
    pub bound: Jid,
    next_id: u64,
    prefix: &'static str,
}

/// What [`Session::next`] yields.
#[derive(Debug)]
pub enum Incoming {
    /// A stanza for the program (IQ requests to us were answered already).
    Stanza(Box<Stanza>),
    /// A new session after a lost connection: state on the server side is gone.
    Reconnected,
}

impl Session {
    /// Connect as `connect` says (STARTTLS by default), log in and bind; fails after
    /// `limit`, or at once on a failure retrying cannot fix (see [`connect::login`]).
    pub async fn connect(
        jid: Jid,
        password: String,
        connect: &ConnectArgs,
        limit: Duration,
        prefix: &'static str,
    ) -> anyhow::Result<Session> {
        let (stream, bound) = connect::login(connect, jid, password, limit, 64).await?;
        Ok(Session {
            stream,
            bound,
            next_id: 0,
            prefix,
        })
    }

    /// A fresh IQ id.
    pub fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-{}", self.prefix, self.next_id)
    }

    /// Queue a stanza for sending.
    pub async fn send(&self, stanza: impl Into<Stanza>) {
        self.stream.send(Box::new(stanza.into())).await;
    }

    /// The next stanza or reconnection; `None` when the stream ended for good.
    pub async fn next(&mut self) -> Option<Incoming> {
        loop {
            match self.stream.next().await? {
                StreamEvent::Stream(StreamState::Reset { bound_jid, .. }) => {
                    self.bound = bound_jid;
                    return Some(Incoming::Reconnected);
                }
                StreamEvent::Stream(_) => {}
                // RFC 6120 §8.2.3: requests must be answered; we offer nothing.
                StreamEvent::Stanza(Stanza::Iq(request @ (Iq::Get { .. } | Iq::Set { .. }))) => {
                    if let Some(from) = request.from().cloned() {
                        let error = StanzaError::new(
                            ErrorType::Cancel,
                            DefinedCondition::ServiceUnavailable,
                            "en",
                            "not supported by this client",
                        );
                        let reply = Iq::from_error(request.id().to_owned(), error).with_to(from);
                        self.send(reply).await;
                    }
                }
                StreamEvent::Stanza(s) => return Some(Incoming::Stanza(Box::new(s))),
            }
        }
    }

    /// Send an IQ `get` (or `set`, with `set`) carrying `payload` to `to` and wait up to
    /// `limit` for its reply: `Ok(Ok(payload))` for a result, `Ok(Err(error))` for an
    /// error. Other stanzas arriving meanwhile are dropped: for programs that do one
    /// request at a time and expect nothing else.
    pub async fn request(
        &mut self,
        to: &Jid,
        set: bool,
        payload: Element,
        limit: Duration,
    ) -> anyhow::Result<Result<Option<Element>, StanzaError>> {
        let id = self.new_id();
        let iq = if set {
            Iq::Set {
                from: None,
                to: Some(to.clone()),
                id: id.clone(),
                payload,
            }
        } else {
            Iq::Get {
                from: None,
                to: Some(to.clone()),
                id: id.clone(),
                payload,
            }
        };
        self.send(iq).await;
        let wait = async {
            loop {
                match self.next().await {
                    None => anyhow::bail!("the connection ended while waiting for {to}"),
                    // The request may have been lost with the old stream; whether to ask
                    // again is the caller's decision.
                    Some(Incoming::Reconnected) => return Ok(None),
                    Some(Incoming::Stanza(s)) => match *s {
                        Stanza::Iq(Iq::Result {
                            id: rid, payload, ..
                        }) if rid == id => return Ok(Some(Ok(payload))),
                        Stanza::Iq(Iq::Error { id: rid, error, .. }) if rid == id => {
                            return Ok(Some(Err(error)))
                        }
                        _ => {}
                    },
                }
            }
        };
        match tokio::time::timeout(limit, wait).await {
            Ok(Ok(Some(reply))) => Ok(reply),
            Ok(Ok(None)) => Err(anyhow::anyhow!("reconnected while waiting for {to}")),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(anyhow::anyhow!(
                "no reply from {to} within {}s",
                limit.as_secs()
            )),
        }
    }

    /// Send `</stream:stream>` and wait for the connection to wind down.
    pub async fn close(self) {
        self.stream.close().await;
    }
}

/// Whether an IQ error is worth retrying: the service (or the route to it) is away or
/// busy, as while Roost restarts. Anything else (forbidden, item-not-found, …) is final.
pub fn is_transient(e: &StanzaError) -> bool {
    e.type_ == ErrorType::Wait
        || matches!(
            e.defined_condition,
            DefinedCondition::ServiceUnavailable
                | DefinedCondition::RemoteServerNotFound
                | DefinedCondition::RemoteServerTimeout
                | DefinedCondition::RecipientUnavailable
                | DefinedCondition::InternalServerError
        )
}

/// `condition (type): text` of a stanza error.
pub fn describe_error(error: &StanzaError) -> String {
    let condition = Element::from(error.defined_condition.clone())
        .name()
        .to_owned();
    let mut out = format!("{condition} ({})", error.type_);
    if let Some(text) = error.texts.values().next() {
        out.push_str(&format!(": {text}"));
    }
    out
}

/// Log to stderr; `RUST_LOG` overrides the default (warnings only).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut units = units_of(b"plain <&> \"text\"\t", true);
        units.extend(units_of(b"crlf\r", true));
        units.extend(units_of(&[0xff, 0x00, b'a'], true));
        units.extend(units_of(b"", true));
        units.extend(units_of(&vec![b'x'; MAX_UNIT * 2 + 3], true));
        units.extend(units_of(b"unterminated", false));
        let e = encode(42, &units, &[]);
        let text = String::from(&e);
        let back: Element = text.parse().unwrap();
        assert_eq!(decode(&back), Some((42, units.clone())));
        // Attributes for content filters ride along and change nothing for the reader.
        let attrs = [
            parse_attr("host=web-1").unwrap(),
            parse_attr("app=a'b").unwrap(),
        ];
        let e = encode(42, &units, &attrs);
        assert_eq!(
            (e.attr("host"), e.attr("app")),
            (Some("web-1"), Some("a'b"))
        );
        let back: Element = String::from(&e).parse().unwrap();
        assert_eq!(decode(&back), Some((42, units.clone())));
        assert!(parse_attr("xmlns=x").is_err() && parse_attr("a b=1").is_err());
        assert!(parse_attr("novalue").is_err());
        let log: Vec<u8> = units.iter().flat_map(|u| u.to_log_bytes()).collect();
        let mut want = b"plain <&> \"text\"\t\ncrlf\r\n\xff\x00a\n\n".to_vec();
        want.extend(vec![b'x'; MAX_UNIT * 2 + 3]);
        want.extend(b"\nunterminated");
        assert_eq!(log, want);
    }

    #[test]
    fn ids_sort_and_name_the_shipper() {
        assert!(item_id("web-1", 9) < item_id("web-1", 10));
        assert_eq!(shipper_of(&item_id("web-1", 9)), Some("web-1"));
    }

    #[test]
    fn state_round_trip() {
        let dir = std::env::temp_dir().join(format!("roost-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s");
        assert!(load_state(&p).unwrap().is_empty());
        let mut s = BTreeMap::new();
        s.insert("next".to_owned(), "7".to_owned());
        save_state(&p, &s).unwrap();
        assert_eq!(load_state(&p).unwrap(), s);
        fs::remove_dir_all(&dir).unwrap();
    }
}
