//! Connecting to an XMPP server as a client, shared by every example program.
//!
//! By default a connection is secured with STARTTLS (RFC 6120 §5) and the server's
//! certificate is verified against the XMPP domain of the account (`example.org` for
//! `alice@example.org`), whatever host the connection goes to. Trusted roots are the
//! system's (`rustls-native-certs`, which honours `SSL_CERT_FILE`) plus, with `--ca-file`,
//! the certificates of a PEM file: a private CA, or the test CA of the end-to-end tests.
//! Without `--server`, the host and port come from the domain's `_xmpp-client._tcp` SRV
//! records (RFC 6120 §3.2.1), falling back to the domain itself on port 5222.
//! `--insecure-plaintext` skips TLS altogether, for local test servers only.
//!
//! Why not tokio-xmpp's own `StartTlsServerConnector`: it builds its root store from the
//! system store alone (no extra CA file) and, like every connector driven by
//! `StanzaStream::new_c2s`, retries forever whatever went wrong, logging each attempt. A
//! client that cannot trust the server's certificate, or whose password is wrong, should
//! say so once and stop. So this module performs the same steps (tokio-xmpp's XML stream,
//! STARTTLS, rustls on the `ring` backend, SASL with tokio-xmpp's `client_login`) and hands
//! the authenticated stream to a `StanzaStream` through [`StanzaStream::new`], sorting
//! failures into fatal ones (reported, no retry) and transient ones (retried with backoff).
//!
//! To use it in a program of your own, copy this file along with the program: it needs
//! `tokio-xmpp` (feature `dns`), `tokio-rustls` (feature `ring`), `rustls-native-certs`,
//! `clap` and `anyhow`.

use std::borrow::Cow;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use futures::{SinkExt, StreamExt};
use tokio::io::BufStream;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, Notify};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_xmpp::connect::{AsyncReadAndWrite, DnsConfig};
use tokio_xmpp::error::{AuthError, Error as XmppError};
use tokio_xmpp::parsers::ns;
use tokio_xmpp::parsers::sasl::DefinedCondition as SaslCondition;
use tokio_xmpp::parsers::starttls;
use tokio_xmpp::stanzastream::{
    Connection, Event as StreamEvent, StanzaStream, StreamEvent as StreamState,
};
use tokio_xmpp::xmlstream::{
    initiate_stream, ReadError, StreamHeader, Timeouts, XmppStream, XmppStreamElement,
};
use xmpp_parsers::jid::Jid;

/// Where and how to connect: the options every example program takes (`#[command(flatten)]`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConnectArgs {
    /// The server's client-to-server listener, HOST:PORT. Without it, the `_xmpp-client._tcp`
    /// SRV records of the account's domain are looked up (falling back to DOMAIN:5222).
    #[arg(long, value_name = "HOST:PORT")]
    pub server: Option<String>,

    /// Also trust the CA certificates in this PEM file (besides the system's), e.g. a
    /// private CA that signed the server's certificate.
    #[arg(long, env = "ROOST_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,

    /// Connect over plaintext TCP, without TLS: the password and everything else travel
    /// unencrypted. Only for a local test server that allows it.
    #[arg(long, conflicts_with = "ca_file")]
    pub insecure_plaintext: bool,
}

/// Why a login attempt failed, and whether trying again can help.
#[derive(Debug, Clone)]
pub enum LoginError {
    /// Trying again cannot help (untrusted certificate, no TLS offered, wrong password): the
    /// program should stop with this message.
    Fatal(String),
    /// Worth retrying (connection refused, server restarting, network trouble).
    Transient(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Fatal(m) | LoginError::Transient(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for LoginError {}

/// A resolved [`ConnectArgs`]: where to connect and with which TLS settings.
#[derive(Clone)]
pub struct Connector {
    dns: DnsConfig,
    /// What the error messages call the destination.
    target: String,
    tls: Option<Arc<ClientConfig>>,
}

impl ConnectArgs {
    /// The connector for accounts of `domain`; fails on a bad `--server` or `--ca-file`.
    pub fn connector(&self, domain: &str) -> anyhow::Result<Connector> {
        let (dns, target) = match &self.server {
            Some(server) => {
                let (host, port) = split_host_port(server)?;
                (DnsConfig::no_srv(&host, port), server.clone())
            }
            None => (
                DnsConfig::srv_default_client(domain),
                format!("{domain} (SRV _xmpp-client._tcp.{domain}, else port 5222)"),
            ),
        };
        let tls = if self.insecure_plaintext {
            None
        } else {
            Some(tls_config(self.ca_file.as_deref())?)
        };
        Ok(Connector { dns, target, tls })
    }
}

/// `host:port`, `[v6]:port` → host and port.
fn split_host_port(s: &str) -> anyhow::Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("--server {s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("--server {s:?}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        bail!("--server {s:?}: no host");
    }
    Ok((host.to_owned(), port))
}

/// The rustls client configuration: system roots plus those of `ca_file`.
pub fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!("loading the system's CA certificates: {e}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!("{added} CA certificates from the system store");
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| anyhow!("--ca-file {}: {e}", path.display()))?;
        if certs.is_empty() {
            bail!("--ca-file {}: no PEM certificate in it", path.display());
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| anyhow!("--ca-file {}: {e}", path.display()))?;
        }
    }
    if roots.is_empty() {
        bail!("no trusted CA certificates: the system store is empty; give one with --ca-file");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Connector {
    /// A TCP connection to the server (SRV lookup or `--server`).
    pub async fn tcp(&self) -> Result<TcpStream, LoginError> {
        let tcp = self.dns.resolve().await.map_err(|e| {
            LoginError::Transient(format!("cannot connect to {}: {e}", self.target))
        })?;
        // Small stanzas, latency matters more than packet count.
        let _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// The TLS settings; `None` with `--insecure-plaintext`.
    pub fn tls(&self) -> Option<&Arc<ClientConfig>> {
        self.tls.as_ref()
    }

    /// The TLS handshake on a connection whose STARTTLS exchange is done, verifying the
    /// certificate for `domain`.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
        domain: &str,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, LoginError> {
        let Some(config) = &self.tls else {
            return Err(LoginError::Fatal(
                "TLS is off (--insecure-plaintext)".into(),
            ));
        };
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| LoginError::Fatal(format!("{domain:?} is not a TLS server name: {e}")))?;
        TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(e, domain))
    }

    /// Connect, secure, authenticate: a stream ready for resource binding.
    async fn login(
        &self,
        jid: &Jid,
        password: &str,
        timeouts: Timeouts,
    ) -> Result<Connection, LoginError> {
        let domain = jid.domain().as_str();
        let header = || StreamHeader {
            to: Some(Cow::Borrowed(domain)),
            from: None,
            id: None,
        };
        let tcp = self.tcp().await?;
        let io: Box<dyn AsyncReadAndWrite + Send> = if self.tls.is_some() {
            let pending =
                initiate_stream(BufStream::new(tcp), ns::JABBER_CLIENT, header(), timeouts)
                    .await
                    .map_err(transient)?;
            let (features, mut stream): (_, XmppStream<BufStream<TcpStream>>) =
                pending.recv_features().await.map_err(transient)?;
            if !features.can_starttls() {
                return Err(LoginError::Fatal(format!(
                    "{} offers no STARTTLS: refusing to log in without TLS \
                     (--insecure-plaintext, for local test servers only, would)",
                    self.target
                )));
            }
            stream
                .send(&XmppStreamElement::Starttls(starttls::Nonza::Request(
                    starttls::Request,
                )))
                .await
                .map_err(transient)?;
            wait_proceed(&mut stream).await?;
            let tcp = stream.into_inner().into_inner();
            Box::new(BufStream::new(self.handshake(tcp, domain).await?))
        } else {
            Box::new(BufStream::new(tcp))
        };
        let pending = initiate_stream(io, ns::JABBER_CLIENT, header(), timeouts)
            .await
            .map_err(transient)?;
        let (features, stream): (_, XmppStream<_>) =
            pending.recv_features().await.map_err(transient)?;
        if features.sasl_mechanisms.is_empty() && features.can_starttls() {
            return Err(LoginError::Fatal(format!(
                "{} accepts logins only over TLS: drop --insecure-plaintext",
                self.target
            )));
        }
        let username = jid
            .node()
            .ok_or_else(|| LoginError::Fatal(format!("{jid} has no user part")))?;
        // No channel binding: the certificate is verified, which is what binding would
        // protect against, and servers differ in the binding types they support.
        let creds = sasl::common::Credentials::default()
            .with_username(username.as_str())
            .with_password(password)
            .with_channel_binding(sasl::common::ChannelBinding::None);
        let stream = tokio_xmpp::client_login(stream, features.sasl_mechanisms, creds)
            .await
            .map_err(|e| match e {
                XmppError::Auth(AuthError::Fail(SaslCondition::NotAuthorized)) => {
                    LoginError::Fatal(format!("login as {jid} refused: wrong --jid or password"))
                }
                XmppError::Auth(e) => LoginError::Fatal(format!("login as {jid} failed: {e}")),
                e => transient(e),
            })?;
        let (features, stream) = stream
            .send_header(header())
            .await
            .map_err(transient)?
            .recv_features()
            .await
            .map_err(transient)?;
        Ok(Connection {
            stream: XmppStream::box_stream(stream),
            features,
            identity: jid.clone(),
        })
    }
}

/// Reads up to the server's `<proceed/>`.
async fn wait_proceed(stream: &mut XmppStream<BufStream<TcpStream>>) -> Result<(), LoginError> {
    loop {
        match stream
            .next()
            .await
            .map(|r| r.and_then(|e| e.into_read_error()))
        {
            Some(Ok(XmppStreamElement::Starttls(starttls::Nonza::Proceed(_)))) => return Ok(()),
            Some(Ok(other)) => {
                tracing::debug!("ignoring {other:?} while waiting for <proceed/>")
            }
            Some(Err(ReadError::SoftTimeout)) => {}
            Some(Err(ReadError::HardError(e))) => return Err(transient(e)),
            Some(Err(ReadError::ParseError(e))) => return Err(transient(e)),
            Some(Err(ReadError::StreamFooterReceived)) | None => {
                return Err(LoginError::Transient(
                    "the server closed the stream instead of starting TLS".into(),
                ))
            }
        }
    }
}

fn transient(e: impl std::fmt::Display) -> LoginError {
    LoginError::Transient(e.to_string())
}

/// A failed handshake; a certificate the client cannot trust is fatal.
fn tls_error(e: io::Error, domain: &str) -> LoginError {
    use rustls::CertificateError as Cert;
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        )) => LoginError::Fatal(format!(
            "TLS: the server's certificate is not valid for {domain} (the account's domain, \
             which the certificate must name whatever host --server or SRV points to)"
        )),
        Some(rustls::Error::InvalidCertificate(why)) => LoginError::Fatal(format!(
            "TLS: the server's certificate for {domain} is not trusted ({why:?}); if it is \
             signed by a private CA, pass that CA with --ca-file FILE"
        )),
        Some(other) => LoginError::Fatal(format!("TLS handshake for {domain} failed: {other}")),
        None => LoginError::Transient(format!("TLS handshake for {domain} failed: {e}")),
    }
}

/// What the background login task reports to [`login`].
#[derive(Default)]
struct Reports {
    /// The last failure, fatal or not.
    last: Mutex<Option<LoginError>>,
    /// Signalled when a fatal failure is stored.
    fatal: Notify,
    /// A login succeeded once: later fatal failures are logged, as nobody waits for them.
    logged_in: std::sync::atomic::AtomicBool,
}

/// Log in (within `limit`) and return the stream and the bound JID.
///
/// The stream reconnects by itself after a lost connection (the program sees a new
/// `StreamEvent::Reset`), retrying transient failures with a backoff of up to 10 s. A fatal
/// failure before the first login is returned at once, as one message; after it, fatal
/// failures are logged and retried every 30 s at most.
pub async fn login(
    args: &ConnectArgs,
    jid: Jid,
    password: String,
    limit: Duration,
    queue_depth: usize,
) -> anyhow::Result<(StanzaStream, Jid)> {
    let connector = args.connector(jid.domain().as_str())?;
    let reports = Arc::new(Reports::default());
    let shared = reports.clone();
    let reconnector = Box::new(
        move |_preferred: Option<String>, slot: oneshot::Sender<Connection>| {
            let (connector, jid, password, reports) = (
                connector.clone(),
                jid.clone(),
                password.clone(),
                shared.clone(),
            );
            tokio::spawn(async move {
                let mut delay = Duration::from_secs(1);
                loop {
                    match connector.login(&jid, &password, Timeouts::tight()).await {
                        Ok(conn) => {
                            reports.logged_in.store(true, Ordering::Relaxed);
                            // Fails only when the stream is gone: nothing to do then.
                            let _ = slot.send(conn);
                            return;
                        }
                        Err(e @ LoginError::Fatal(_))
                            if !reports.logged_in.load(Ordering::Relaxed) =>
                        {
                            // `login` reports it, once, and the program stops. The slot is
                            // kept until then: tokio-xmpp's worker panics when it is dropped.
                            *reports.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            reports.fatal.notify_one();
                            let mut slot = slot;
                            slot.closed().await;
                            return;
                        }
                        Err(e @ LoginError::Fatal(_)) => {
                            // After a first login nobody waits for the error, and a
                            // long-running program should survive, say, a certificate
                            // being replaced: log it and keep trying, slowly.
                            tracing::error!("{e}; retrying in {delay:?}");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(30));
                        }
                        Err(e) => {
                            tracing::warn!("{e}; retrying in {delay:?}");
                            *reports.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            });
        },
    );
    let mut stream = StanzaStream::new(reconnector, queue_depth);
    let last = || {
        reports
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    };
    let online = async {
        loop {
            tokio::select! {
                event = stream.next() => match event {
                    Some(StreamEvent::Stream(StreamState::Reset { bound_jid, .. })) => {
                        return Ok(bound_jid)
                    }
                    Some(_) => {}
                    None => {
                        return Err(match last() {
                            Some(e) => anyhow!("{e}"),
                            None => anyhow!("connection closed before login completed"),
                        })
                    }
                },
                _ = reports.fatal.notified() => {
                    return Err(anyhow!("{}", last().map(|e| e.to_string()).unwrap_or_default()))
                }
            }
        }
    };
    match tokio::time::timeout(limit, online).await {
        Ok(Ok(bound)) => Ok((stream, bound)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(match last() {
            Some(e) => anyhow!("not logged in after {}s: {e}", limit.as_secs()),
            None => anyhow!(
                "not logged in after {}s (RUST_LOG=debug shows details)",
                limit.as_secs()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(
            split_host_port("127.0.0.1:5222").unwrap(),
            ("127.0.0.1".into(), 5222)
        );
        assert_eq!(
            split_host_port("xmpp.example.org:5222").unwrap(),
            ("xmpp.example.org".into(), 5222)
        );
        assert_eq!(split_host_port("[::1]:5222").unwrap(), ("::1".into(), 5222));
        assert!(split_host_port("example.org").is_err());
        assert!(split_host_port(":5222").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[test]
    fn ca_file_errors_name_the_option() {
        let dir = std::env::temp_dir().join(format!("roost-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls_config(Some(&empty)).unwrap_err().to_string();
        assert!(
            e.contains("--ca-file") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = tls_config(Some(&dir.join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--ca-file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
