//! The service loop: one task owns the link and the engine; it reads a batch, handles it,
//! makes it durable, and writes what it asks to send.
//!
//! One task drives everything because the engine is synchronous and its store calls are
//! short: a request is parsed, decided and committed before the next one is read, which
//! gives FIFO order per publisher without locks.
//!
//! A change is durable once the `Store::sync` that follows its commit returns `Ok`; its
//! reply and its notifications are sent only after that, and a failed sync sends neither
//! (the engine is rebuilt from what is on disk).

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use minidom::Element;
use roost_nodes::Store;
use tokio::sync::watch;
use tokio_xmpp::xmlstream::ReadError;
use tracing::{debug, error, info, warn};

use crate::effects::Effects;
use crate::link::{self, Backoff, Link, LinkError, LinkWriter};
use crate::outbox::Outbox;
use crate::roost::Roost;
use crate::Config;

/// Why the service loop stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The link cannot be established with this configuration.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// How one connected session ended.
enum SessionEnd {
    Shutdown,
    Disconnected(String),
}

/// How long a `<conflict/>` at start-up is retried before Roost concludes that another
/// instance holds the domain.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(4);

/// Keep the link up until `shutdown` turns true: connect, serve, reconnect with backoff.
/// A configuration sent on `reload` is applied between batches ([`Roost::reload`]).
pub async fn run<S: Store>(
    cfg: &Config,
    roost: &mut Roost<S>,
    mut shutdown: watch::Receiver<bool>,
    mut reload: watch::Receiver<Arc<Config>>,
) -> Result<(), RunError> {
    let domain = cfg.jid.to_string();
    let mut backoff = Backoff::new(Duration::from_secs(5));
    let mut ever_connected = false;
    let mut attempt: u64 = 0;
    let started = std::time::Instant::now();
    loop {
        let delay = backoff.next_delay();
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.changed() => return Ok(()),
            }
        }
        if *shutdown.borrow() {
            return Ok(());
        }
        attempt += 1;
        info!(attempt, server = %cfg.server, "connecting as {domain}");
        let connected = tokio::select! {
            r = link::connect(&cfg.server, &domain, &cfg.secret, cfg.keepalive, cfg.limits) => r,
            _ = shutdown.changed() => return Ok(()),
        };
        let (mut link, mut writer) = match connected {
            Ok(link) => link,
            // A wrong secret never heals. A conflict after we were connected may be our own
            // stale session on a restarted server, so keep retrying then.
            Err(e @ LinkError::BadSecret { .. }) | Err(e @ LinkError::Refused { .. }) => {
                return Err(e.into())
            }
            // On a quick restart the server may not have dropped our previous session yet;
            // only a conflict that outlasts that window means another instance owns the domain.
            Err(e @ LinkError::Conflict { .. })
                if !ever_connected && started.elapsed() >= CONFLICT_PATIENCE =>
            {
                return Err(e.into())
            }
            Err(e) => {
                warn!(attempt, "{e}; retrying");
                continue;
            }
        };
        if ever_connected {
            roost.metrics().reconnects.inc();
        }
        roost.metrics().set_linked(true);
        ever_connected = true;
        backoff.reset();
        attempt = 0;
        info!(server = %cfg.server, "connected as {domain}");
        // Sent with the first batch, after its sync: deciding again the requests that waited
        // for rosters may have changed something.
        let hello = roost.on_connect();
        if !hello.stanzas.is_empty() {
            info!(
                probes = hello.stanzas.len(),
                "probing the presence of subscribers"
            );
        }
        let mut outbox = Outbox::default();
        outbox.push(hello);
        let ended = serve(
            &mut link,
            &mut writer,
            roost,
            outbox,
            cfg.group_commit_wait,
            &mut shutdown,
            &mut reload,
        )
        .await;
        roost.metrics().set_linked(false);
        match ended {
            SessionEnd::Shutdown => {
                info!("closing the stream");
                // Best effort: the process exits next either way.
                let _ = tokio::time::timeout(Duration::from_secs(2), link.shutdown()).await;
                return Ok(());
            }
            SessionEnd::Disconnected(why) => warn!("link lost: {why}; reconnecting"),
        }
    }
}

/// Bytes of outgoing stanzas serialized before they are written to the link.
const WRITE_CHUNK: usize = 256 * 1024;

/// Stanzas handled before one flush at most: bounds reply latency under a flood.
const MAX_BATCH: usize = 512;

/// Per-batch timing counters of the service loop, logged at debug level under the
/// `roost::batch` target every [`BatchStats::EVERY`] (`--log warn,roost::batch=debug`):
/// how many stanzas a group commit shares, and where a batch's time goes.
#[derive(Default)]
struct BatchStats {
    since: Option<std::time::Instant>,
    batches: u64,
    stanzas_in: u64,
    handle: Duration,
    sync: Duration,
    write: Duration,
    bytes_out: u64,
}

impl BatchStats {
    const EVERY: Duration = Duration::from_secs(5);

    fn record(
        &mut self,
        stanzas_in: u64,
        handle: Duration,
        sync: Duration,
        write: Duration,
        bytes: u64,
    ) {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        self.batches += 1;
        self.stanzas_in += stanzas_in;
        self.handle += handle;
        self.sync += sync;
        self.write += write;
        self.bytes_out += bytes;
        let elapsed = since.elapsed();
        if elapsed >= Self::EVERY {
            let b = self.batches.max(1) as f64;
            let us = |d: Duration| d.as_secs_f64() * 1e6 / b;
            debug!(
                target: "roost::batch",
                batches_per_s = self.batches as f64 / elapsed.as_secs_f64(),
                stanzas_per_batch = self.stanzas_in as f64 / b,
                handle_us = us(self.handle),
                sync_us = us(self.sync),
                write_us = us(self.write),
                bytes_per_batch = self.bytes_out as f64 / b,
                "batch statistics"
            );
            *self = BatchStats::default();
        }
    }
}

/// Handle one element read from the link, queueing what it asks to send in `out`; `Some`
/// when the session ends.
fn step<S: Store>(
    roost: &mut Roost<S>,
    next: Option<Result<Element, ReadError>>,
    out: &mut Outbox,
) -> Option<SessionEnd> {
    match next {
        None => Some(SessionEnd::Disconnected(
            "the server closed the connection".into(),
        )),
        Some(Err(ReadError::SoftTimeout)) => {
            debug!("link idle; pinging the server");
            out.push(Effects::stanza(roost.keepalive_ping()));
            None
        }
        Some(Err(ReadError::ParseError(e))) => {
            warn!("unparsable element from the server, ignored: {e}");
            None
        }
        Some(Err(ReadError::StreamFooterReceived)) => Some(SessionEnd::Disconnected(
            "the server closed the stream".into(),
        )),
        Some(Err(ReadError::HardError(e))) => Some(SessionEnd::Disconnected(e.to_string())),
        Some(Ok(el)) if el.is("error", link::NS_STREAM) => {
            let why = xmpp_parsers::stream_error::StreamError::try_from(el)
                .map(|e| e.to_string())
                .unwrap_or_else(|e| e.to_string());
            Some(SessionEnd::Disconnected(format!(
                "stream error from the server: {why}"
            )))
        }
        Some(Ok(el)) => {
            out.push(roost.handle_element(el));
            None
        }
    }
}

/// Serve one connected session, starting with what `out` holds already.
///
/// Group commit: every stanza already read from the socket is handled (each request's
/// changes committed atomically), then one `sync` makes them all durable, and only then are
/// the replies and notifications written. Many publishers in flight thus share one flush.
async fn serve<S: Store>(
    link: &mut Link,
    writer: &mut LinkWriter,
    roost: &mut Roost<S>,
    mut out: Outbox,
    gather_for: Duration,
    shutdown: &mut watch::Receiver<bool>,
    reload: &mut watch::Receiver<Arc<Config>>,
) -> SessionEnd {
    let mut stats = BatchStats::default();
    let mut last_sync: Option<std::time::Instant> = None;
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.changed() => return SessionEnd::Shutdown,
            Ok(()) = reload.changed() => {
                let cfg = reload.borrow_and_update().clone();
                roost.reload(&cfg);
                None
            }
            _ = ticker.tick() => {
                out.push(roost.tick());
                None
            }
            next = link.next() => Some(next),
        };
        roost.try_recover();
        let t0 = std::time::Instant::now();
        let mut end = None;
        let mut pending = first;
        let mut handled = 0;
        // Group commit across arrivals: a batch that starts within twice the wait of the
        // last sync means requests are coming back to back; waiting a little for the next
        // ones lets them share the sync, which costs the same whatever it carries (mostly
        // sled's two log writes per batch and the kernel's work around them, see
        // docs/benchmarks.md). At moderate load batches are further apart and nothing waits.
        let gather = !gather_for.is_zero()
            && last_sync.is_some_and(|t: std::time::Instant| t0 - t < gather_for * 2);
        let deadline = tokio::time::Instant::from_std(t0) + gather_for;
        loop {
            while let Some(next) = pending.take() {
                if let Some(e) = step(roost, next, &mut out) {
                    end = Some(e);
                    break;
                }
                handled += 1;
                if handled < MAX_BATCH {
                    // Only what is already buffered: never wait here.
                    pending = link.next().now_or_never();
                }
            }
            if !gather
                || end.is_some()
                || handled >= MAX_BATCH
                || roost.is_degraded()
                || !roost.service_mut().store().sync_pending()
            {
                break;
            }
            match tokio::time::timeout_at(deadline, link.next()).await {
                Ok(next) => pending = Some(next),
                Err(_) => break,
            }
        }
        let t1 = std::time::Instant::now();
        // A degraded engine committed nothing, and its store may be closed for recovery.
        let sync = if roost.is_degraded() {
            Ok(())
        } else {
            // Only a sync that waits for the disk marks requests as coming back to back
            // (not one after a timer tick or a read-only batch).
            let flushes = roost.service_mut().store().sync_pending();
            let r = roost.service_mut().store_mut().sync();
            if flushes {
                last_sync = Some(std::time::Instant::now());
            }
            if handled > 0 {
                let m = roost.metrics();
                m.sync_seconds.observe(t1.elapsed().as_secs_f64());
                m.batch_size.observe(handled as f64);
            }
            r
        };
        let synced = match sync {
            Ok(()) => true,
            Err(e) => {
                // The batch's changes are applied in memory but maybe not on disk:
                // acknowledge none of them, and rebuild the engine from the disk.
                error!("flushing the store failed; the batch's acknowledgements are withheld: {e}");
                out.withhold();
                false
            }
        };
        // Both checked every batch: each clears what it reports.
        let calls_ok = !out.take_storage_failed();
        roost.after_batch(synced && calls_ok);
        roost.metrics().set_store_ok(!roost.is_degraded());
        let t2 = std::time::Instant::now();
        // The batch is serialized into one buffer and written at once: one system call (and
        // one TCP segment train) per batch instead of one per stanza. A batch larger than
        // WRITE_CHUNK (a fan-out to many subscribers) goes out a chunk at a time, so the first
        // subscribers are notified while the notifications of the last are still to be built.
        let mut bytes = 0u64;
        loop {
            roost.write(&mut out, writer, WRITE_CHUNK);
            bytes += writer.buf.len() as u64;
            if let Err(e) = writer.flush().await {
                return SessionEnd::Disconnected(format!("write failed: {e}"));
            }
            if out.is_empty() {
                break;
            }
        }
        stats.record(handled as u64, t1 - t0, t2 - t1, t2.elapsed(), bytes);
        if let Some(e) = end {
            return e;
        }
    }
}
