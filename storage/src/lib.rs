//! Roost's sled store: [`SledStore`] implements the `roost_nodes` storage contract.
//!
//! The key layout is in [`keys`] (schema version 2: entries packed into buckets, see
//! [`packed`]), the value encoding in [`codec`], how each change becomes writes in
//! [`apply`]. A commit turns the whole [`ChangeSet`] into writes staged in memory, which this
//! store's reads see at once; [`Store::sync`] makes everything staged since the last one
//! durable as one group, a record appended to the commit log ([`wal`]: one `pwrite`, one
//! `fdatasync`). The writes stay staged a while longer, reads still seeing them first, and
//! reach sled several groups at once ([`APPLY_BYTES`]): a publish rewrites its node's last
//! item bucket, its id index bucket and its counters, and sled then takes each of them once
//! per many publishes rather than once per group. sled writes them out on its own and is
//! flushed only at the log's checkpoints. (sled's flush seals and writes out a log buffer through its I/O
//! thread pool: at the small groups of a moderate load, one per sync was most of a
//! publish's cost, see docs/benchmarks.md.) A store opened without a data directory has no
//! commit log: its groups are made atomic inside sled ([`journal`]) and its syncs flush sled.
//! A change is durable once the `Store::sync` that follows its commit returns `Ok`; its
//! reply and its notifications are sent only after that, and a failed sync sends neither
//! (the engine is rebuilt from what is on disk).
//!
//! The data directory holds the database of each schema version in a directory of its
//! own ([`layout`]): a version-1 directory found there is migrated once ([`migrate`]).
//!
//! [`Reopenable`] is the store as the service runs it: closable for that rebuild.

pub mod apply;
pub mod backup;
pub mod bulk;
pub mod check;
pub mod codec;
pub mod journal;
pub mod keys;
pub mod layout;
mod load;
pub mod lock;
pub mod migrate;
pub mod ops;
pub mod packed;
pub mod progress;
mod reopen;
mod scan;
pub mod v1;
pub mod wal;

pub use reopen::Reopenable;

use ops::OpCounts;
use packed::{Pending, Writes};
use roost_nodes::{ChangeSet, Expiry, Item, ItemRange, Loader, Store, StoreError};
use std::path::{Path, PathBuf};

/// How long opening waits for the directory's lock.
pub const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// sled's page cache, in bytes (sled's default is 1 GiB). Loading reads every node and
/// subscription bucket once, and sled keeps what it read cached up to this size although
/// the engine never reads those again (it keeps its own copy). Items, read on demand, are
/// what the cache is for; the recent items of the active nodes fit many times over.
pub const CACHE_CAPACITY: u64 = 64 * 1024 * 1024;

/// sled's log segment size (its default is 512 KiB). A tree node larger than a quarter of
/// a segment is written to a file of its own (a "blob"); with buckets of up to 4 KiB a leaf
/// of 16 is 64 KiB, within a quarter of the default. Fixed when a database is created.
pub const SEGMENT_SIZE: usize = 512 * 1024;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// The sled configuration of a schema-2 database at `path`.
pub fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(CACHE_CAPACITY)
        .segment_size(SEGMENT_SIZE)
}

/// Opens sled, waiting up to [`LOCK_PATIENCE`] for a lock held on the directory: after a
/// store of this process is dropped (a reopen after a storage failure, a test reopening its
/// database), sled's flusher thread may hold the file lock a little longer. Another
/// process holding it still gets the error, after that wait.
pub(crate) fn open_sled(config: &sled::Config) -> Result<sled::Db, StoreError> {
    let started = std::time::Instant::now();
    loop {
        match config.open() {
            Ok(db) => return Ok(db),
            // sled reports a held lock as an io::Error of kind Other: only its message
            // tells it apart.
            Err(e) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() >= LOCK_PATIENCE {
                    let dir = config.get_path();
                    // The data directory is the parent of `v2/`.
                    let data_dir = dir.parent().unwrap_or(&dir);
                    return Err(StoreError(lock::in_use_message(
                        data_dir,
                        lock::holder(&dir),
                    )));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(sled_err(e)),
        }
    }
}

/// The sled-backed [`Store`].
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    path: Option<PathBuf>,
    /// The directory sled itself uses (under `path`, see [`layout`]).
    sled_dir: Option<PathBuf>,
    /// Something was committed since the last `sync`.
    dirty: bool,
    /// `sync` flushes to disk; off only to measure what durability costs.
    durable: bool,
    ops: OpCounts,
    /// What opening applied again from the commit log.
    replayed: Option<wal::Replayed>,
    /// Commits not yet applied to sled (a lock only because reads take `&self`).
    staged: std::sync::Mutex<Staged>,
}

/// The writes of the change sets committed since the last [`SledStore::settle`]: every read
/// of this store sees them over the tree.
#[derive(Default)]
struct Staged {
    writes: Writes,
    /// With a commit log: the writes committed since the last record was appended, the next
    /// group (`writes` also holds groups already in the log, not yet applied to sled).
    group: Writes,
    /// Bytes of keys and values staged since the last settle, a key written again counted
    /// again (an upper bound of what `writes` holds): past [`APPLY_BYTES`] a sync applies
    /// them, past [`STAGED_BYTES_MAX`] a commit does.
    bytes: usize,
    /// Why an earlier settle failed: its writes are lost, so every later sync fails too
    /// (the service then rebuilds its state from the store, which no longer has them).
    lost: Option<String>,
    /// The last bucket lookup over `writes` and the tree, for the next reader or change
    /// set; cleared whenever either changes. A publish asks whether its item id exists,
    /// then stores the item: both look up the same bucket of the id index.
    memo: packed::SharedMemo,
    /// The last bucket of each node's items that was appended to lately, over `writes` and
    /// the tree: a publish appends, and finds its bucket with a point read.
    tails: packed::Tails,
    /// The commit log, for a store opened by path: each settle goes there first.
    wal: Option<wal::Wal>,
}

/// Staged writes beyond this many bytes are applied at once rather than at the next sync,
/// which bounds the memory a batch of large commits holds.
pub const STAGED_BYTES_MAX: usize = 8 * 1024 * 1024;

/// With a commit log, synced groups stay staged until they hold this many bytes (counted as
/// [`STAGED_BYTES_MAX`] counts them), a checkpoint is due, or something reads the tree
/// itself: then they are applied to sled at once, each key once. The memory they hold is
/// bounded by this; reads look them up in memory before the tree.
pub const APPLY_BYTES: usize = 1024 * 1024;

impl Drop for SledStore {
    /// Commits not yet synced still reach sled (as they did when every commit was applied
    /// at once), and sled is flushed (checkpointed, with a commit log), so that the next
    /// opening has nothing to apply again.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::error!(
                "closing the store: {e}; commits not yet synced are lost (synced ones are \
                 applied again from the commit log when the store is next opened)"
            );
        }
    }
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SledStore {
    /// Opens (creating if needed) the data directory `path`. A version-1 directory is
    /// migrated first, which takes a while for a large one (progress is logged).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_tuned(path, |c| c)
    }

    /// [`SledStore::open`], sled's configuration changed by `tune` first (e.g. its own
    /// default page cache, to measure what [`CACHE_CAPACITY`] saves). Unlike
    /// [`SledStore::open_with`] it replays the commit log, so it sees every synced group.
    pub fn open_tuned(
        path: &Path,
        tune: impl FnOnce(sled::Config) -> sled::Config,
    ) -> Result<Self, StoreError> {
        let sled_dir = layout::prepare(path)?;
        let mut s = Self::open_with(tune(sled_config(&sled_dir)))?;
        let (wal, replayed) = wal::Wal::open(&sled_dir, &s.db, &s.tree)?;
        if let Some(r) = replayed {
            tracing::warn!(
                "applied the last {} commit groups ({} writes) again from the commit log: \
                 Roost was not shut down cleanly",
                r.groups,
                r.writes
            );
        }
        s.lock().wal = Some(wal);
        s.replayed = replayed;
        s.path = Some(path.to_owned());
        s.sled_dir = Some(sled_dir);
        Ok(s)
    }

    /// Opens a schema-2 database from a sled configuration (e.g. `temporary(true)` for
    /// tests), stamping an empty one with the schema version. Without the commit log: for
    /// a new or temporary database; a data directory is opened with [`SledStore::open`].
    pub fn open_with(config: sled::Config) -> Result<Self, StoreError> {
        let db = open_sled(&config)?;
        let tree = db.open_tree(keys::TREE).map_err(sled_err)?;
        if let Some(n) = journal::replay(&db, &tree)? {
            tracing::warn!(
                "completed the last commit group before the crash ({n} writes, from its record)"
            );
        }
        let store = SledStore {
            db,
            tree,
            path: None,
            sled_dir: None,
            dirty: false,
            durable: true,
            ops: OpCounts::default(),
            replayed: None,
            staged: Default::default(),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// With `false`, [`Store::sync`] no longer waits for the disk: acknowledged changes may be
    /// lost in a crash (sled still writes them out within about half a second). Only for
    /// measuring the cost of durability.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
        if let Some(wal) = &mut self.lock().wal {
            wal.set_durable(durable);
        }
    }

    /// The path given to [`SledStore::open`], if it was opened that way.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The commit groups opening applied again from the commit log ([`wal`]), if any: the
    /// store was not closed cleanly.
    pub fn replayed(&self) -> Option<wal::Replayed> {
        self.replayed
    }

    /// The sled operations this store made so far (for benchmarks).
    pub fn ops(&self) -> &OpCounts {
        &self.ops
    }

    /// Refuses a database this code cannot read; stamps a fresh one with our version.
    fn check_schema(&self) -> Result<(), StoreError> {
        match self.tree.get(keys::schema()).map_err(sled_err)? {
            Some(v) => {
                let found = keys::decode_schema(&v)?;
                if found == keys::SCHEMA_VERSION {
                    Ok(())
                } else if found > keys::SCHEMA_VERSION {
                    Err(StoreError(format!(
                        "database schema version {found} is newer than this Roost understands \
                         (version {}): run the Roost release that wrote it, or restore a backup \
                         made by this release",
                        keys::SCHEMA_VERSION
                    )))
                } else {
                    Err(StoreError(format!(
                        "database schema version {found} found where version {} belongs: open \
                         the data directory by path (SledStore::open) to migrate it, or restore \
                         a backup",
                        keys::SCHEMA_VERSION
                    )))
                }
            }
            None => {
                if let Some(first) = self.tree.iter().next() {
                    let (k, _) = first.map_err(sled_err)?;
                    return Err(StoreError(format!(
                        "database has data (first key {:02x?}) but no schema version: it is \
                         not a Roost database or it is damaged; point Roost at an empty \
                         directory or restore a backup",
                        &k[..]
                    )));
                }
                self.tree
                    .insert(keys::schema(), &keys::SCHEMA_VERSION.to_be_bytes())
                    .map_err(sled_err)?;
                self.flush()
            }
        }
    }

    /// Applies `changes` atomically but without waiting for the disk: the changes are
    /// visible at once and survive a crash only after the next [`SledStore::flush`].
    /// Kept apart from the flush so that several commits can share one flush.
    pub fn commit_no_flush(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.stage(changes)?;
        self.settle()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Staged> {
        // A panic while the lock was held left either the old or the new write set: both
        // are whole change sets.
        self.staged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Turns `changes` into writes staged over the earlier ones: all of them or, when a
    /// change cannot be applied, none.
    fn stage(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut staged = self.lock();
        let mut p = Pending::over_shared(&self.tree, &self.ops, &staged.writes, &staged.memo)
            .with_tails(&staged.tails);
        for c in &changes.0 {
            apply::apply(&mut p, c)?;
        }
        self.ops.write(p.len() as u64);
        let mine = p.into_writes();
        staged.memo.clear();
        for (k, v) in &mine {
            staged.tails.wrote(k, v.is_some());
        }
        let logged = staged.wal.is_some();
        for (k, v) in mine {
            staged.bytes += k.len() + v.as_ref().map_or(0, |v| v.len());
            if logged {
                // sled's values are shared buffers: the group holds no second copy.
                staged.group.insert(k.clone(), v.clone());
            }
            staged.writes.insert(k, v);
        }
        if staged.bytes > STAGED_BYTES_MAX {
            self.settle_locked(&mut staged)?;
        }
        Ok(())
    }

    /// Applies the staged writes to sled: with a commit log (a store opened by path), after
    /// appending the group not yet in it, which makes it durable; without one, as one group
    /// made atomic in sled, durable after the next flush.
    pub fn settle(&self) -> Result<(), StoreError> {
        let mut staged = self.lock();
        self.settle_locked(&mut staged)
    }

    fn settle_locked(&self, staged: &mut Staged) -> Result<(), StoreError> {
        self.log_locked(staged)?;
        if staged.writes.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut staged.writes);
        let n = writes.len();
        staged.bytes = 0;
        staged.memo.clear();
        let applied = match &mut staged.wal {
            // Write by write, every group being in the log: a crash in between is completed
            // from it. A checkpoint is due only now that everything logged is in sled.
            Some(wal) => journal::apply_each(&self.tree, writes).and_then(|()| {
                if wal.needs_checkpoint() {
                    wal.checkpoint()
                } else {
                    Ok(())
                }
            }),
            None => journal::apply(&self.db, &self.tree, writes),
        };
        applied
            .map_err(|e| Self::lose(staged, format!("{e} (while applying {n} committed writes)")))
    }

    /// With a commit log, appends the group committed since the last record: from then on
    /// it is durable and may be applied to sled.
    fn log_locked(&self, staged: &mut Staged) -> Result<(), StoreError> {
        if let Some(why) = &staged.lost {
            return Err(StoreError(why.clone()));
        }
        if staged.group.is_empty() {
            return Ok(());
        }
        let group = std::mem::take(&mut staged.group);
        let Some(wal) = &mut staged.wal else {
            return Ok(());
        };
        wal.append(&group).map_err(|e| {
            Self::lose(
                staged,
                format!("{e} (while logging {} committed writes)", group.len()),
            )
        })
    }

    /// Every later sync fails with `why`: writes were lost, and the service rebuilds its
    /// state from the store, which does not have them.
    fn lose(staged: &mut Staged, why: String) -> StoreError {
        staged.tails.clear();
        staged.lost = Some(why.clone());
        StoreError(why)
    }

    /// Waits until everything committed so far is in sled on disk (with a commit log, a
    /// checkpoint: the log is emptied).
    pub fn flush(&self) -> Result<(), StoreError> {
        let mut staged = self.lock();
        self.settle_locked(&mut staged)?;
        match &mut staged.wal {
            Some(wal) => wal.checkpoint(),
            None => self.db.flush().map(|_| ()).map_err(sled_err),
        }
    }

    /// Raw access to the tree, for tests and offline tools (e.g. to inject corruption),
    /// with everything committed applied to it. If applying fails, the tree lacks those
    /// writes and the next [`SledStore::settle`] or sync reports the failure; callers that
    /// must know call `settle` first. Whoever writes through it must take it anew before
    /// reading through the store again: that forgets the bucket lookup kept for the next
    /// read, which the raw writes may have made stale.
    pub fn raw_tree(&self) -> &sled::Tree {
        let mut staged = self.lock();
        let _ = self.settle_locked(&mut staged);
        staged.memo.clear();
        staged.tails.clear();
        &self.tree
    }

    /// The node's live items with `lo <= seq <= hi`, oldest first, or newest first when
    /// `rev`, as (seq, bucket, byte range of the item's record in the bucket).
    fn walk(&self, uid: u64, lo: u64, hi: u64, rev: bool) -> Result<load::Walk<'_>, StoreError> {
        // The walk reads the tree itself.
        self.settle()?;
        let floor = apply::head(&Pending::new(&self.tree, &self.ops), uid)?.floor;
        Ok(load::Walk::new(
            &self.tree,
            &self.ops,
            uid,
            lo.max(floor),
            hi,
            rev,
        ))
    }

    fn decode_walk(
        &self,
        rows: impl Iterator<Item = Result<(u64, sled::IVec, std::ops::Range<usize>), StoreError>>,
    ) -> Result<Vec<Item>, StoreError> {
        rows.map(|r| {
            let (seq, bucket, at) = r?;
            codec::decode_item(seq, &bucket[at])
        })
        .collect()
    }
}

impl Store for SledStore {
    fn load_into(&mut self, loader: &mut dyn Loader) -> Result<(), StoreError> {
        self.settle()?;
        load::load_into(&self.tree, &self.ops, loader)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.stage(changes)?;
        self.dirty = true;
        Ok(())
    }

    fn sync_pending(&self) -> bool {
        self.dirty && self.durable
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        let with_log = {
            let mut staged = self.lock();
            match &staged.wal {
                Some(_) => {
                    self.log_locked(&mut staged)?;
                    let due = staged.wal.as_ref().is_some_and(wal::Wal::needs_checkpoint);
                    if due || staged.bytes > APPLY_BYTES {
                        self.settle_locked(&mut staged)?;
                    }
                    true
                }
                None => {
                    self.settle_locked(&mut staged)?;
                    false
                }
            }
        };
        // With the commit log the settle made the group durable. Without it, a flush; one
        // with nothing new still costs an fsync, so not for read-only batches.
        if !with_log && self.sync_pending() {
            self.flush()?;
        }
        self.dirty = false;
        Ok(())
    }

    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
        let staged = self.lock();
        // With the tails: a generated id is looked up at the end of the index.
        let r = Pending::over_shared(&self.tree, &self.ops, &staged.writes, &staged.memo)
            .with_tails(&staged.tails);
        let Some(seq) = apply::ids(uid).get(&r, id.as_bytes())? else {
            return Ok(None);
        };
        let seq = keys::decode_u64_value("item id index", &seq)?;
        // Below the floor: trimmed, and the index entry not yet dropped.
        if seq < apply::head(&r, uid)?.floor {
            return Ok(None);
        }
        let Some(v) = apply::items(uid).get(&r, &keys::seq(seq))? else {
            return Err(StoreError(format!(
                "item index of node uid {uid} maps id {id:?} to missing seq {seq}"
            )));
        };
        let item = codec::decode_item(seq, &v)?;
        if item.id != id {
            return Err(StoreError(format!(
                "item index of node uid {uid} maps id {id:?} to seq {seq}, which holds id {:?}",
                item.id
            )));
        }
        Ok(Some(item))
    }

    fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError> {
        let take = max.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let mut v = self.decode_walk(self.walk(uid, 0, u64::MAX, true)?.take(take))?;
        v.reverse();
        Ok(v)
    }

    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
        let take = usize::try_from(n).unwrap_or(usize::MAX);
        self.decode_walk(self.walk(uid, 0, u64::MAX, false)?.take(take))
    }

    fn items_range(&self, uid: u64, range: &ItemRange) -> Result<Vec<Item>, StoreError> {
        let Some(lo) = range.after.map_or(Some(0), |a| a.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let Some(hi) = range.before.map_or(Some(u64::MAX), |b| b.checked_sub(1)) else {
            return Ok(Vec::new());
        };
        if lo > hi {
            return Ok(Vec::new());
        }
        let skip = usize::try_from(range.skip).unwrap_or(usize::MAX);
        let limit = usize::try_from(range.limit).unwrap_or(usize::MAX);
        // Only the page's buckets are read, from whichever end.
        let rows = self
            .walk(uid, lo, hi, range.from_end)?
            .skip(skip)
            .take(limit);
        let mut v = self.decode_walk(rows)?;
        if range.from_end {
            v.reverse();
        }
        Ok(v)
    }

    fn due_expiries(&self, now: u64, limit: usize) -> Result<Vec<Expiry>, StoreError> {
        self.settle()?;
        let mut out = Vec::new();
        let end = keys::expiry(now, u64::MAX, u64::MAX);
        for k in self
            .tree
            .range(keys::expiry(0, 0, 0)..=end)
            .keys()
            .take(limit)
        {
            self.ops.read(1);
            out.push(keys::decode_expiry(&k.map_err(sled_err)?)?);
        }
        Ok(out)
    }

    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        let hi = match before {
            Some(0) => return Ok(0),
            Some(b) => b - 1,
            None => u64::MAX,
        };
        let mut n = 0;
        for r in self.walk(uid, 0, hi, false)? {
            r?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::{BareJid, Change, Jid, NodeConfig, NodeRecord};

    fn node() -> Change {
        Change::PutNode(NodeRecord {
            name: "n".into(),
            uid: 1,
            creator: BareJid::new("o@example.org").unwrap(),
            created: 1,
            config: NodeConfig::default(),
        })
    }

    fn item(seq: u64, payload_len: usize) -> Change {
        Change::PutItem {
            uid: 1,
            item: Item {
                id: format!("i{seq}"),
                seq,
                first_seq: None,
                publisher: Jid::new("o@example.org/r").unwrap(),
                published: 5,
                payload: format!("<x>{}</x>", "p".repeat(payload_len)),
            },
        }
    }

    fn in_tree(s: &SledStore, seq: u64) -> bool {
        apply::items(1)
            .get(&Pending::new(&s.tree, &s.ops), &keys::seq(seq))
            .unwrap()
            .is_some()
    }

    /// A synced group is durable in the log but reaches sled only later, with the groups
    /// after it: reads see it meanwhile, and whatever reads the tree itself applies it.
    #[test]
    fn synced_groups_are_held_back_and_read_before_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SledStore::open(dir.path()).unwrap();
        s.commit(&ChangeSet(vec![node(), item(1, 10)])).unwrap();
        s.sync().unwrap();
        s.commit(&ChangeSet(vec![item(2, 10)])).unwrap();
        s.sync().unwrap();
        assert!(
            !in_tree(&s, 1) && !in_tree(&s, 2),
            "held back after the sync"
        );
        assert!(s.lock().group.is_empty(), "both groups are in the log");
        assert_eq!(s.item(1, "i2").unwrap().map(|i| i.seq), Some(2));
        s.settle().unwrap();
        assert!(in_tree(&s, 1) && in_tree(&s, 2));
    }

    /// Groups held back are applied by the sync after which they pass [`APPLY_BYTES`].
    #[test]
    fn a_sync_applies_what_is_held_back_once_it_is_large() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SledStore::open(dir.path()).unwrap();
        s.commit(&ChangeSet(vec![node()])).unwrap();
        s.sync().unwrap();
        let big = APPLY_BYTES / 2;
        s.commit(&ChangeSet(vec![item(1, big)])).unwrap();
        s.sync().unwrap();
        assert!(!in_tree(&s, 1));
        s.commit(&ChangeSet(vec![item(2, big)])).unwrap();
        s.sync().unwrap();
        assert!(
            in_tree(&s, 1) && in_tree(&s, 2),
            "applied at the second sync"
        );
        assert!(s.lock().writes.is_empty());
    }
}
