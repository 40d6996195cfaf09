//! `roost`: an XEP-0060 publish-subscribe service as an XEP-0114 external component.
//! The work is in the `roost_component` library; this is configuration, logging, the store
//! and signals.

use clap::Parser;
use roost_component::{config, server, Config};
use roost_nodes::{ChangeSet, Item, ItemRange, Policy, Service, Snapshot, Store, StoreError};
use roost_storage::SledStore;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tokio::sync::watch;
use tracing::{error, info};

fn main() -> ExitCode {
    let cli = config::Cli::parse();
    let check_only = cli.check_config;
    let cfg = match Config::resolve(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("roost: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&cfg.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("roost: invalid configuration: log: {:?}: {e}", cfg.log);
            return ExitCode::from(2);
        }
    };
    if check_only {
        println!(
            "roost: configuration OK: {} via {}, data in {}",
            cfg.jid,
            cfg.server,
            cfg.data_dir.display()
        );
        return ExitCode::SUCCESS;
    }
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // One thread is enough: the engine is driven by one task, and sled flushes on its own.
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The XML parser under tokio-xmpp builds each stanza's tree recursively, one call per
    // nesting level, before Roost can look at it; a client's deeply nested payload (bounded
    // only by the XMPP server's stanza size limit) would overflow the default 8 MiB stack
    // and abort the process. The reservation is virtual: only pages touched are resident.
    let worker = std::thread::Builder::new()
        .name("roost".into())
        .stack_size(STACK_BYTES)
        .spawn(move || rt.block_on(run(cfg)));
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => ExitCode::FAILURE,
        Err(e) => {
            error!("cannot start the service thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Stack of the service thread; see the comment where it is spawned.
const STACK_BYTES: usize = 1 << 30;

/// The sled store, closable so that it can be reopened in the same process. Every `Store`
/// method is delegated, including those with defaults, so that sled's faster versions are
/// the ones used.
///
/// sled 0.34 poisons a database after an I/O error (e.g. ENOSPC while writing its log):
/// every later call returns that error until the database is opened again. Opening needs
/// the old handle dropped first (sled holds an exclusive file lock), but the engine owns
/// its store; so the engine's store is this wrapper, which can let go of sled while the
/// failed engine is being replaced.
///
/// It also completes sled's flush. On Linux sled 0.34 makes its log writes stable with
/// `sync_file_range`, which neither flushes the drive's volatile write cache nor the file's
/// metadata (its size, when the log grew): enough to survive a crash of the process, not
/// a power cut. An `fdatasync` of sled's log file after each flush that had something to
/// write closes that gap (fsync works on the file, whichever descriptor asks).
struct Reopenable {
    inner: Option<SledStore>,
    /// sled's log file (`SledStore::log_file`), when durable.
    log: Option<std::fs::File>,
    /// Something was committed since the last sync.
    dirty: bool,
}

impl Reopenable {
    fn open(path: &Path, durable: bool) -> Result<Self, StoreError> {
        let mut s = SledStore::open(path)?;
        s.set_durable(durable);
        let log = if durable {
            let file = s
                .log_file()
                .ok_or_else(|| StoreError("the store has no log file to sync".into()))?;
            Some(std::fs::File::open(&file).map_err(|e| {
                StoreError(format!("cannot open {} to sync it: {e}", file.display()))
            })?)
        } else {
            None
        };
        Ok(Reopenable {
            inner: Some(s),
            log,
            dirty: false,
        })
    }

    fn close(&mut self) {
        self.inner = None;
        self.log = None;
    }

    fn get(&self) -> Result<&SledStore, StoreError> {
        self.inner
            .as_ref()
            .ok_or_else(|| StoreError("the store is closed for recovery".into()))
    }

    fn get_mut(&mut self) -> Result<&mut SledStore, StoreError> {
        self.inner
            .as_mut()
            .ok_or_else(|| StoreError("the store is closed for recovery".into()))
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.get()?.flush()
    }
}

impl Store for Reopenable {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        self.get_mut()?.load()
    }
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.get_mut()?.commit(changes)?;
        self.dirty |= !changes.is_empty();
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        self.get_mut()?.sync()?;
        if std::mem::take(&mut self.dirty) {
            if let Some(log) = &self.log {
                if let Err(e) = log.sync_data() {
                    // Stay dirty: the next sync must try again before anything is acked.
                    self.dirty = true;
                    return Err(StoreError(format!("fdatasync of sled's log: {e}")));
                }
            }
        }
        Ok(())
    }
    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
        self.get()?.item(uid, id)
    }
    fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError> {
        self.get()?.latest_items(uid, max)
    }
    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
        self.get()?.oldest_items(uid, n)
    }
    fn items_range(&self, uid: u64, range: &ItemRange) -> Result<Vec<Item>, StoreError> {
        self.get()?.items_range(uid, range)
    }
    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        self.get()?.count_before(uid, before)
    }
    fn due_expiries(
        &self,
        now: roost_nodes::Millis,
        limit: usize,
    ) -> Result<Vec<roost_nodes::Expiry>, StoreError> {
        self.get()?.due_expiries(now, limit)
    }
}

/// Rebuilds the engine from disk: drops the failed engine's sled handle, reopens the
/// directory and reloads, so that memory holds exactly what is durable.
fn recovery(path: PathBuf, durable: bool, policy: Policy) -> server::Recover<Reopenable> {
    Box::new(move |failed: &mut Service<Reopenable>| {
        failed.store_mut().close();
        let store = Reopenable::open(&path, durable).map_err(|e| e.to_string())?;
        Service::open(store, policy.clone()).map_err(|e| e.to_string())
    })
}

async fn run(cfg: Config) -> ExitCode {
    info!(data_dir = %cfg.data_dir.display(), "opening the store");
    let store = match Reopenable::open(&cfg.data_dir, cfg.durable) {
        Ok(s) => {
            if !cfg.durable {
                tracing::warn!("durable = false: acknowledged changes may be lost in a crash");
            }
            s
        }
        Err(e) => {
            error!(
                "cannot open the store in {}: {e} (is another roost using it? is the directory writable?)",
                cfg.data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let service = match Service::open(store, cfg.policy.clone()) {
        Ok(s) => s,
        Err(e) => {
            error!("cannot load the store in {}: {e}", cfg.data_dir.display());
            return ExitCode::FAILURE;
        }
    };
    let mut roost = server::Roost::new(service, &cfg).with_recovery(recovery(
        cfg.data_dir.clone(),
        cfg.durable,
        cfg.policy.clone(),
    ));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutting down: no new requests");
        let _ = stop_tx.send(true);
    });

    let result = server::run(&cfg, &mut roost, stop_rx).await;
    let flushed = roost.service_mut().store_mut().flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => {
            info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        (Err(e), _) => {
            error!("{e}");
            ExitCode::FAILURE
        }
        (Ok(()), Err(e)) => {
            error!("flushing the store on shutdown failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            error!("cannot listen for SIGTERM ({e}); only SIGINT will stop roost cleanly");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
