//! The XEP-0114 link to the server: connect, handshake, and classify failures.
//!
//! Built on tokio-xmpp's lower-level stream API rather than `tokio_xmpp::Component`, whose
//! stream ends on an idle link's read timeout and on any one stanza that fails to parse:
//! here a soft timeout becomes a keepalive ping and a bad stanza an error reply.

use futures::{SinkExt, StreamExt};
use minidom::Element;
use std::borrow::Cow;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, BufStream, ReadBuf};
use tokio::net::TcpStream;
use tokio_xmpp::xmlstream::{initiate_stream, ReadError, StreamHeader, Timeouts, XmlStream};
use xmpp_parsers::component::Handshake;
use xmpp_parsers::stream_error::{DefinedCondition, StreamError};

use crate::encoder::StanzaEncoder;
use crate::guard::{Guarded, StanzaLimits};

/// The established link. It yields raw elements rather than typed stanzas: RFC 6120 rules
/// that the typed parsers let through (an IQ with two payloads) must be checked on the raw
/// element, and a stanza that fails to convert still needs its attributes for the reply.
/// What it reads goes through the [`Guarded`] stanza limits before the XML parser.
pub type Link = XmlStream<BufStream<Guarded<SharedTcp>>, Element>;

/// The TCP socket of a link, shared between the [`Link`] (which reads, and writes the
/// handshake and the closing footer) and the [`LinkWriter`] (which writes every stanza while
/// the session is served). tokio-xmpp's `XmlStream` gives no mutable access to its transport,
/// and its sink serializes element by element; the writer needs to put whole batches of
/// already serialized bytes on the wire, so both hold the socket through an `Arc` and use
/// tokio's `&self` readiness API.
#[derive(Debug, Clone)]
pub struct SharedTcp(Arc<TcpStream>);

impl AsyncRead for SharedTcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.0.poll_read_ready(cx))?;
            match self.0.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                // Readiness was stale: poll again, which registers the waker.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for SharedTcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.0.poll_write_ready(cx))?;
            match self.0.try_write(buf) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // TCP_NODELAY is set and nothing is buffered here.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // tokio offers no half-close through a shared `&TcpStream`. The stream footer is
        // written before this is called, and the socket closes when the link and its
        // writer are dropped.
        Poll::Ready(Ok(()))
    }
}

/// The sending side of a link while a session is served: stanzas are serialized into one
/// buffer per batch and written together.
pub struct LinkWriter {
    tcp: Arc<TcpStream>,
    /// The serializer of every stanza in [`LinkWriter::buf`].
    pub encoder: StanzaEncoder,
    /// Bytes of the current batch, not yet written.
    pub buf: Vec<u8>,
}

impl LinkWriter {
    /// Write the batch (nothing if it is empty) and clear it.
    pub async fn flush(&mut self) -> io::Result<()> {
        let mut off = 0;
        while off < self.buf.len() {
            self.tcp.writable().await?;
            match self.tcp.try_write(&self.buf[off..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => off += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        self.buf.clear();
        // A flood once grew it large: give the memory back.
        if self.buf.capacity() > 1 << 20 {
            self.buf.shrink_to(1 << 16);
        }
        Ok(())
    }
}

/// Namespace of stream-level elements such as `<stream:error/>`.
pub const NS_STREAM: &str = "http://etherx.jabber.org/streams";

/// Why a connection attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The server refused the secret. Retrying cannot help.
    #[error("the server refused the handshake for {domain} (not-authorized): the secret does not match the server's component_secret/password for this domain")]
    BadSecret {
        /// The component domain.
        domain: String,
    },
    /// Another component is connected for the same domain (Prosody answers `<conflict/>`).
    #[error("the server refused {domain} with <conflict/>: another component is already connected for this domain; stop it or use another --jid")]
    Conflict {
        /// The component domain.
        domain: String,
    },
    /// The server does not know the domain as a component.
    #[error("the server refused {domain} ({condition}): is a component for this domain configured on the server (Prosody: Component \"{domain}\"; ejabberd: ejabberd_service hosts)?")]
    Refused {
        /// The component domain.
        domain: String,
        /// The stream error condition.
        condition: String,
    },
    /// Network or stream failure; worth retrying.
    #[error("{0}")]
    Io(String),
}

/// Connect to `server`, open a `jabber:component:accept` stream to `domain` and authenticate.
/// Every stanza read is held to `limits`.
///
/// Returns the stream (to read, and to close) and the writer for stanzas. Anything written
/// through the stream itself must be flushed before the writer is used, and the other way
/// round.
pub async fn connect(
    server: &str,
    domain: &str,
    secret: &str,
    keepalive: Duration,
    limits: StanzaLimits,
) -> Result<(Link, LinkWriter), LinkError> {
    let tcp = TcpStream::connect(server)
        .await
        .map_err(|e| LinkError::Io(format!("cannot connect to {server}: {e}")))?;
    // Notifications are many small writes; Nagle would add latency to each.
    tcp.set_nodelay(true)
        .map_err(|e| LinkError::Io(format!("TCP_NODELAY: {e}")))?;
    let tcp = Arc::new(tcp);
    let writer = LinkWriter {
        tcp: tcp.clone(),
        encoder: StanzaEncoder::new(),
        buf: Vec::new(),
    };
    let timeouts = Timeouts {
        read_timeout: keepalive,
        response_timeout: keepalive.max(Duration::from_secs(10)),
    };
    let mut pending = initiate_stream(
        BufStream::new(Guarded::new(SharedTcp(tcp), limits)),
        xmpp_parsers::ns::COMPONENT,
        StreamHeader {
            to: Some(Cow::Borrowed(domain)),
            from: None,
            id: None,
        },
        timeouts,
    )
    .await
    .map_err(|e| LinkError::Io(format!("stream header exchange with {server}: {e}")))?;
    let header = pending.take_header();
    let stream_id = header
        .id
        .map(|id| id.into_owned())
        .ok_or_else(|| LinkError::Io(format!("{server} sent no stream id")))?;
    // Component streams carry no stream features (XEP-0114 §3).
    let mut link: Link = pending.skip_features();
    link.send(&Handshake::from_stream_id_and_password(stream_id, secret))
        .await
        .map_err(|e| LinkError::Io(format!("sending handshake: {e}")))?;

    loop {
        match link.next().await {
            Some(Ok(el)) if el.is("handshake", xmpp_parsers::ns::COMPONENT) => {
                return Ok((link, writer))
            }
            Some(Ok(el)) if el.is("error", NS_STREAM) => {
                let domain = domain.to_owned();
                let err = match StreamError::try_from(el) {
                    Ok(e) => e,
                    Err(e) => return Err(LinkError::Io(format!("unreadable stream error: {e}"))),
                };
                return Err(match err.condition {
                    DefinedCondition::NotAuthorized => LinkError::BadSecret { domain },
                    DefinedCondition::Conflict => LinkError::Conflict { domain },
                    c => {
                        let text = err.texts.values().cloned().collect::<Vec<_>>().join(" ");
                        LinkError::Refused {
                            domain,
                            condition: format!("{c:?} {text}").trim().to_owned(),
                        }
                    }
                });
            }
            Some(Ok(other)) => {
                return Err(LinkError::Io(format!(
                    "unexpected <{}/> during the handshake",
                    other.name()
                )))
            }
            Some(Err(ReadError::SoftTimeout)) => continue,
            Some(Err(e)) => return Err(LinkError::Io(format!("handshake: {e}"))),
            None => {
                return Err(LinkError::Io(
                    "the server closed the stream during the handshake".to_owned(),
                ))
            }
        }
    }
}

/// Reconnection delays: the first retry at once, then doubling up to `cap`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// A fresh schedule capped at `cap`.
    pub fn new(cap: Duration) -> Self {
        Backoff {
            next: Duration::ZERO,
            cap,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = if d.is_zero() {
            Duration::from_millis(100)
        } else {
            (d * 2).min(self.cap)
        };
        d
    }

    /// Start again from an immediate retry (after a successful connection).
    pub fn reset(&mut self) {
        self.next = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_once_and_caps() {
        let mut b = Backoff::new(Duration::from_secs(5));
        let d: Vec<_> = (0..10).map(|_| b.next_delay()).collect();
        assert_eq!(d[0], Duration::ZERO);
        assert_eq!(d[1], Duration::from_millis(100));
        assert!(d.iter().all(|d| *d <= Duration::from_secs(5)));
        assert_eq!(d[9], Duration::from_secs(5));
        b.reset();
        assert_eq!(b.next_delay(), Duration::ZERO);
    }
}
