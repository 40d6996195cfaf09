//! [`Reopenable`]: the sled store as the service runs it, closable so that it can be reopened
//! in the same process after a storage failure, and with sled's flush completed by an
//! `fdatasync` of its log.

use crate::SledStore;
use roost_nodes::{ChangeSet, Expiry, Item, ItemRange, Loader, Millis, Store, StoreError};
use std::path::Path;

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
pub struct Reopenable {
    inner: Option<SledStore>,
    /// sled's log file ([`SledStore::log_file`]), when durable.
    log: Option<std::fs::File>,
    /// Something was committed since the last sync.
    dirty: bool,
}

impl Reopenable {
    /// Opens the database in `path`; with `durable` false, [`Store::sync`] does not wait for
    /// the disk (see [`SledStore::set_durable`]).
    pub fn open(path: &Path, durable: bool) -> Result<Self, StoreError> {
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

    /// Lets go of sled (and its file lock); every later call fails until the directory is
    /// opened again with [`Reopenable::open`].
    pub fn close(&mut self) {
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

    /// Copies the database into the new data directory `dir` (see
    /// [`SledStore::backup_to`]); call it only between commits.
    pub fn backup_to(&self, dir: &Path) -> Result<crate::backup::BackupReport, StoreError> {
        self.get()?.backup_to(dir)
    }

    /// Waits until everything committed so far is on disk, e.g. on shutdown.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.get()?.flush()
    }
}

impl Store for Reopenable {
    fn load_into(&mut self, loader: &mut dyn Loader) -> Result<(), StoreError> {
        self.get_mut()?.load_into(loader)
    }
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.get_mut()?.commit(changes)?;
        self.dirty |= !changes.is_empty();
        Ok(())
    }

    fn sync_pending(&self) -> bool {
        self.dirty && self.log.is_some()
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
    fn due_expiries(&self, now: Millis, limit: usize) -> Result<Vec<Expiry>, StoreError> {
        self.get()?.due_expiries(now, limit)
    }
}
