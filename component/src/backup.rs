//! Online backup: SIGUSR1 asks a running Roost for a consistent copy of its database.
//!
//! The copy is taken by the service loop itself, between two batches (after a batch's
//! sync, before the next batch is read): every request is committed as one sled batch and
//! nothing else writes, so the copy holds exactly the requests handled before it, a state
//! the service was in, and includes every change acknowledged before the signal. Requests
//! wait while it is taken (the copy reads every key once, without decoding; not yet
//! measured on the scale data set).
//!
//! It goes to `DATA_DIR/backups/<UTC time>/`, a data directory of its own: restore by
//! starting Roost with `--data-dir` on it (or a copy of it). `roost check` verifies it and
//! `roost export` dumps it, while Roost keeps running on the original.
//!
//! An admin command (XEP-0050) can take one the same way: hand the request to
//! [`Requests::ask`] (the copy is then taken after the batch that carries the command), or,
//! from inside a request's handling, call [`take`] directly: requests are committed one at
//! a time, so that copy is consistent too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use roost_nodes::Service;
use roost_storage::Reopenable;
use tracing::{error, info};

/// Runs between two batches of the service loop, after the sync of the first.
pub type Hook<S> = Box<dyn FnMut(&mut Service<S>)>;

/// Backups asked for and not yet taken.
#[derive(Debug, Clone, Default)]
pub struct Requests(Arc<AtomicBool>);

impl Requests {
    /// Asks for a backup after the current batch.
    pub fn ask(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }

    /// Asks for a backup on every SIGUSR1 (a task on the current tokio runtime).
    pub fn on_sigusr1(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let me = self.clone();
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                info!("SIGUSR1: a backup will be taken after the current batch");
                me.ask();
            }
        });
        Ok(())
    }
}

/// Where a backup taken now goes.
pub fn backup_dir(data_dir: &Path) -> PathBuf {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let stamp = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y%m%dT%H%M%S%.3fZ");
    data_dir.join("backups").join(stamp.to_string())
}

/// Copies the store into a new backup directory under `data_dir`; call it only between
/// commits. Returns the directory.
pub fn take(store: &Reopenable, data_dir: &Path) -> Result<PathBuf, String> {
    let dir = backup_dir(data_dir);
    let parent = dir.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    info!(dir = %dir.display(), "taking a backup (requests wait meanwhile)");
    let r = store.backup_to(&dir).map_err(|e| e.to_string())?;
    info!(
        dir = %dir.display(),
        keys = r.keys,
        mb = r.bytes as f64 / 1e6,
        seconds = r.took.as_secs_f64(),
        "backup taken; restore it by starting Roost with --data-dir {} (or a copy of it)",
        dir.display()
    );
    Ok(dir)
}

/// The hook that takes the backups `requests` asks for.
pub fn hook(data_dir: PathBuf, requests: Requests) -> Hook<Reopenable> {
    Box::new(move |service| {
        if requests.take() {
            if let Err(e) = take(service.store_mut(), &data_dir) {
                error!("backup failed: {e}; the service goes on (try again with SIGUSR1)");
            }
        }
    })
}
