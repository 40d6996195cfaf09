//! Stanza limits, enforced on the bytes the link reads before the XML parser sees them.
//!
//! Parsing is not linear in nesting depth: rxml resolves an unprefixed name by walking the
//! namespace declarations of every open element, and xso's minidom builder hands each event
//! down the chain of open elements; minidom then recurses once per level to clone, print
//! and drop a tree. A 10 000-deep stanza (70 KB, well within the servers' size limits) thus
//! costs tens of seconds of CPU before any check on the built tree could refuse it, and the
//! one link every user shares stalls meanwhile. So the limits are enforced here, on the way
//! in, with a scanner whose cost per byte is constant.
//!
//! Each stanza (a child of `<stream:stream>`) is held back until it is complete. Within the
//! limits it is passed on unchanged. Beyond them the rest of it is skipped as it arrives and
//! the parser gets the stanza's own start tag (so its `from`, `id` and `type` survive) with a
//! single marker child naming the limit, which [`limit_of`] recognises and `ingress` turns
//! into an error reply. Closing the stream is not an option on a component link shared by all
//! users, and skipping the stanza without a word would leave its sender waiting. A stanza
//! whose start tag alone is beyond the size limit cannot be answered and is dropped.
//!
//! The marker's namespace carries a random token chosen once per process, so a client cannot
//! send a marker of its own.
//!
//! The scanner tracks only what delimits elements (tags, quoted attribute values, comments,
//! CDATA sections, processing instructions); it checks nothing else. The servers serialize
//! what they route, and anything malformed is still passed on for rxml to reject.

use std::io;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{ready, Context, Poll};

use minidom::Element;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tracing::warn;

/// The limits on one stanza.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StanzaLimits {
    /// Deepest element nesting accepted (the stanza itself is level 1).
    pub max_depth: usize,
    /// Largest stanza accepted, in bytes as they arrive.
    pub max_bytes: usize,
}

impl StanzaLimits {
    /// Default depth: real payloads stay far below it (Atom entries, data forms and XHTML-IM
    /// bodies nest a dozen levels at most).
    pub const DEFAULT_DEPTH: usize = 128;
    /// Deepest limit that can be configured: parsing a stanza costs its size times its depth.
    pub const MAX_DEPTH: usize = 1024;
    /// Default size, when the largest payload accepted is smaller than half of it.
    pub const DEFAULT_BYTES: usize = 1 << 20;
}

impl Default for StanzaLimits {
    fn default() -> Self {
        StanzaLimits {
            max_depth: Self::DEFAULT_DEPTH,
            max_bytes: Self::DEFAULT_BYTES,
        }
    }
}

/// A limit a stanza went beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Nested deeper than this many levels.
    Depth(usize),
    /// Larger than this many bytes.
    Size(usize),
}

impl Exceeded {
    fn marker_name(self) -> &'static str {
        match self {
            Exceeded::Depth(_) => "depth",
            Exceeded::Size(_) => "size",
        }
    }

    fn max(self) -> usize {
        match self {
            Exceeded::Depth(n) | Exceeded::Size(n) => n,
        }
    }
}

/// The namespace of the marker: fixed prefix, random token per process.
fn marker_ns() -> &'static str {
    static NS: OnceLock<String> = OnceLock::new();
    NS.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // std's hasher keys are drawn from the OS's random source.
        let token = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("urn:x-roost:limit:{token:016x}")
    })
}

/// The limit a stanza went beyond, if the guard replaced its content with a marker.
pub fn limit_of(stanza: &Element) -> Option<Exceeded> {
    let marker = stanza.children().next()?;
    if marker.ns() != marker_ns() {
        return None;
    }
    let max = marker.attr("max")?.parse().ok()?;
    match marker.name() {
        "depth" => Some(Exceeded::Depth(max)),
        "size" => Some(Exceeded::Size(max)),
        _ => None,
    }
}

/// Where the scanner is in the XML syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    /// Character data, or between stanzas.
    Text,
    /// After `<`.
    Open,
    /// In a start tag, outside attribute values; `slash` if the last byte was `/`.
    StartTag { slash: bool },
    /// In an attribute value delimited by `quote`.
    Quoted { quote: u8 },
    /// In an end tag.
    EndTag,
    /// After `<!`.
    Bang,
    /// After `<!-`.
    CommentOpen,
    /// In a comment; `dashes` counts the `-` just read.
    Comment { dashes: u8 },
    /// In a CDATA section (after `<![`); `brackets` counts the `]` just read.
    Cdata { brackets: u8 },
    /// In a processing instruction or the XML declaration; `question` if the last byte was `?`.
    Pi { question: bool },
    /// In any other `<!…>` declaration.
    Decl,
}

/// What the guard has done so far, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GuardStats {
    /// Bytes read from the link.
    pub bytes_in: u64,
    /// Bytes handed to the XML parser.
    pub bytes_out: u64,
    /// Stanzas replaced by their start tag and a marker.
    pub stanzas_cut: u64,
    /// Stanzas dropped whole (their start tag alone was over the size limit).
    pub stanzas_dropped: u64,
}

/// The byte scanner: bytes in, the same bytes out except for stanzas beyond the limits.
#[derive(Debug)]
pub struct Scanner {
    limits: StanzaLimits,
    lex: Lex,
    /// Open elements, `<stream:stream>` included: stanzas open at level 1.
    level: usize,
    /// True from the `<` of a stanza's start tag to the `>` of its end.
    in_stanza: bool,
    /// The stanza so far (only its start tag once it is cut).
    held: Vec<u8>,
    /// Length of the stanza's start tag in `held`, once it is complete.
    start_tag_len: Option<usize>,
    /// Set when the stanza went beyond a limit: the rest of it is skipped.
    cut: Option<Exceeded>,
    stats: GuardStats,
}

impl Scanner {
    /// A scanner at the start of a stream.
    pub fn new(limits: StanzaLimits) -> Self {
        Scanner {
            limits,
            lex: Lex::Text,
            level: 0,
            in_stanza: false,
            held: Vec::new(),
            start_tag_len: None,
            cut: None,
            stats: GuardStats::default(),
        }
    }

    /// What it has done so far.
    pub fn stats(&self) -> GuardStats {
        self.stats
    }

    /// Scan `input`, appending to `out` what the parser may see.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let before = out.len();
        self.stats.bytes_in += input.len() as u64;
        let mut i = 0;
        while i < input.len() {
            // Runs without a delimiter go through in one piece.
            let run_end = match self.lex {
                Lex::Text => find(input, i, |b| b == b'<'),
                Lex::Quoted { quote } => find(input, i, |b| b == quote),
                _ => i,
            };
            if run_end > i {
                self.emit(&input[i..run_end], out);
                i = run_end;
                continue;
            }
            let b = input[i];
            i += 1;
            self.step(b, out);
        }
        self.stats.bytes_out += (out.len() - before) as u64;
    }

    /// One delimiter byte.
    fn step(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.lex {
            Lex::Text => {
                // A `<`: emitted once it is known whether a stanza starts with it.
                self.lex = Lex::Open;
                return;
            }
            Lex::Open => {
                self.lex = match b {
                    b'/' => Lex::EndTag,
                    b'!' => Lex::Bang,
                    b'?' => Lex::Pi { question: false },
                    _ => {
                        self.start_element();
                        Lex::StartTag { slash: false }
                    }
                };
                self.emit(&[b'<', b], out);
                return;
            }
            _ => self.emit(&[b], out),
        }
        self.lex = match self.lex {
            // Handled above.
            Lex::Text | Lex::Open => self.lex,
            Lex::StartTag { slash } => match b {
                b'\'' | b'"' => Lex::Quoted { quote: b },
                b'>' => {
                    self.end_start_tag(slash, out);
                    Lex::Text
                }
                _ => Lex::StartTag { slash: b == b'/' },
            },
            // The closing quote.
            Lex::Quoted { .. } => Lex::StartTag { slash: false },
            Lex::EndTag if b == b'>' => {
                self.level = self.level.saturating_sub(1);
                if self.in_stanza && self.level == 1 {
                    self.end_stanza(out);
                }
                Lex::Text
            }
            Lex::EndTag => Lex::EndTag,
            Lex::Bang => match b {
                b'-' => Lex::CommentOpen,
                b'[' => Lex::Cdata { brackets: 0 },
                b'>' => Lex::Text,
                _ => Lex::Decl,
            },
            Lex::CommentOpen if b == b'-' => Lex::Comment { dashes: 0 },
            Lex::CommentOpen | Lex::Decl if b == b'>' => Lex::Text,
            Lex::CommentOpen | Lex::Decl => Lex::Decl,
            Lex::Comment { dashes } => match b {
                b'-' => Lex::Comment {
                    dashes: (dashes + 1).min(2),
                },
                b'>' if dashes == 2 => Lex::Text,
                _ => Lex::Comment { dashes: 0 },
            },
            Lex::Cdata { brackets } => match b {
                b']' => Lex::Cdata {
                    brackets: (brackets + 1).min(2),
                },
                b'>' if brackets == 2 => Lex::Text,
                _ => Lex::Cdata { brackets: 0 },
            },
            Lex::Pi { question } => match b {
                b'>' if question => Lex::Text,
                _ => Lex::Pi {
                    question: b == b'?',
                },
            },
        };
    }

    /// The `<` and first byte of a start tag have been read, not yet emitted.
    fn start_element(&mut self) {
        if self.level == 1 && !self.in_stanza {
            self.in_stanza = true;
            self.held.clear();
            self.start_tag_len = None;
            self.cut = None;
        } else if self.in_stanza && self.cut.is_none() && self.level > self.limits.max_depth {
            // `level` counts the open elements, the stream included, so an element that
            // starts at `level` is at that depth of its stanza (the stanza itself at 1).
            self.cut(Exceeded::Depth(self.limits.max_depth));
        }
    }

    /// The `>` of a start tag has been emitted; `empty` if the tag ended with `/>`.
    fn end_start_tag(&mut self, empty: bool, out: &mut Vec<u8>) {
        if self.in_stanza && self.level == 1 && self.start_tag_len.is_none() {
            // The stanza's own start tag; kept even if the stanza is cut later.
            if self.cut.is_none() {
                self.start_tag_len = Some(self.held.len());
            }
            if empty {
                self.end_stanza(out);
            }
        }
        if !empty {
            self.level += 1;
        }
    }

    fn cut(&mut self, why: Exceeded) {
        self.cut = Some(why);
        match self.start_tag_len {
            Some(n) => self.held.truncate(n),
            None => self.held.clear(),
        }
    }

    /// The stanza's last byte has been scanned: pass it on, or what stands for it.
    fn end_stanza(&mut self, out: &mut Vec<u8>) {
        self.in_stanza = false;
        match (self.cut.take(), self.start_tag_len) {
            (None, _) => out.extend_from_slice(&self.held),
            (Some(why), Some(n)) => {
                self.stats.stanzas_cut += 1;
                let start_tag = &self.held[..n];
                let name_len = start_tag[1..]
                    .iter()
                    .position(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
                    .unwrap_or(n - 1);
                let name = &start_tag[1..1 + name_len];
                out.extend_from_slice(start_tag);
                // Hand-built: these bytes go to the parser in place of the stanza's content,
                // so they must be XML text; `limit_of` reads them back as an element.
                out.extend_from_slice(
                    format!(
                        "<{} xmlns='{}' max='{}'/></",
                        why.marker_name(),
                        marker_ns(),
                        why.max()
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(name);
                out.push(b'>');
            }
            (Some(why), None) => {
                self.stats.stanzas_dropped += 1;
                warn!(
                    "a stanza whose start tag alone is over {} bytes was dropped unanswered ({why:?})",
                    self.limits.max_bytes
                );
            }
        }
        self.held.clear();
        self.start_tag_len = None;
        // One huge stanza once: give the memory back.
        if self.held.capacity() > 1 << 16 {
            self.held.shrink_to(1 << 16);
        }
    }

    /// Bytes scanned: held with the stanza they belong to, or passed on.
    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        if !self.in_stanza {
            out.extend_from_slice(bytes);
        } else if self.cut.is_none() {
            if self.held.len() + bytes.len() > self.limits.max_bytes {
                self.cut(Exceeded::Size(self.limits.max_bytes));
            } else {
                self.held.extend_from_slice(bytes);
            }
        }
    }
}

/// The index of the first byte from `from` on that `is_delim` accepts, or the end.
fn find(input: &[u8], from: usize, is_delim: impl Fn(u8) -> bool) -> usize {
    input[from..]
        .iter()
        .position(|&b| is_delim(b))
        .map_or(input.len(), |p| from + p)
}

/// A transport whose reading side goes through a [`Scanner`]; writes pass straight through.
#[derive(Debug)]
pub struct Guarded<T> {
    inner: T,
    scanner: Scanner,
    /// Bytes read from `inner`, before scanning.
    raw: Box<[u8]>,
    /// Scanned bytes not yet read by the parser, from `pos` on.
    ready: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<T> Guarded<T> {
    /// Guard the reading side of `inner`, which starts at the beginning of a stream.
    pub fn new(inner: T, limits: StanzaLimits) -> Self {
        Guarded {
            inner,
            scanner: Scanner::new(limits),
            raw: vec![0; 16 * 1024].into_boxed_slice(),
            ready: Vec::new(),
            pos: 0,
            eof: false,
        }
    }

    /// What the guard has done so far.
    pub fn stats(&self) -> GuardStats {
        self.scanner.stats()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.ready.len() || buf.remaining() == 0 {
                let n = buf.remaining().min(this.ready.len() - this.pos);
                buf.put_slice(&this.ready[this.pos..this.pos + n]);
                this.pos += n;
                if this.pos == this.ready.len() {
                    this.ready.clear();
                    this.pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Nothing to hand over yet (a stanza being held back): read on.
            let mut raw = ReadBuf::new(&mut this.raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw))?;
            if raw.filled().is_empty() {
                this.eof = true;
            } else {
                this.scanner.feed(raw.filled(), &mut this.ready);
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
