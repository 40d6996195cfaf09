//! [`Reopenable`]: the sled store as the service runs it, closable so that it can be reopened
//! in the same process after a storage failure.

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
/// Its syncs are the commit log's ([`crate::wal`]), which also completes sled's flush at
/// its checkpoints: on Linux sled 0.34 makes its log writes stable with `sync_file_range`,
/// which neither flushes the drive's volatile write cache nor the file's metadata (its
/// size, when the log grew), enough to survive a crash of the process but not a power cut;
/// an `fdatasync` of sled's log file after sled's flush closes that gap (fsync works on the
/// file, whichever descriptor asks).
pub struct Reopenable {
    inner: Option<SledStore>,
}

impl Reopenable {
    /// Opens the database in `path`; with `durable` false, [`Store::sync`] does not wait for
    /// the disk (see [`SledStore::set_durable`]).
    pub fn open(path: &Path, durable: bool) -> Result<Self, StoreError> {
        let mut s = SledStore::open(path)?;
        s.set_durable(durable);
        Ok(Reopenable { inner: Some(s) })
    }

    /// Lets go of sled (and its file lock); every later call fails until the directory is
    /// opened again with [`Reopenable::open`].
    pub fn close(&mut self) {
        self.inner = None;
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
        self.get_mut()?.commit(changes)
    }

    fn sync_pending(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.sync_pending())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.get_mut()?.sync()
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
