//! The version-1 store, frozen: one sled key per item, per item id, per subscription and
//! per affiliation, each mirrored by a by-JID index row (layout in [`keys`]).
//!
//! Roost no longer writes it. It stays for three jobs: reading a version-1 data dir while
//! migrating it ([`crate::migrate`]), writing version-1 fixtures for the migration tests
//! (the code path that wrote them in production, unchanged but for `TrimItems`, which it
//! applies the way the engine used to plan it: one delete per item), and the before/after
//! benchmark (`benches/store.rs`).

pub mod keys;

use crate::codec;
use crate::ops::OpCounts;

use roost_nodes::{
    Affiliation, Change, ChangeSet, Expiry, Item, ItemRange, Loader, Snapshot, Store, StoreError,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// The version-1 sled store.
pub struct V1Store {
    db: sled::Db,
    tree: sled::Tree,
    path: Option<PathBuf>,
    /// Something was committed since the last `sync`.
    dirty: bool,
    /// `sync` flushes to disk; off only to measure what durability costs.
    durable: bool,
    ops: OpCounts,
}

impl std::fmt::Debug for V1Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl V1Store {
    /// Opens (creating if needed) a version-1 database at `path`, with the page cache
    /// version-1 Roosts used.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(64 * 1024 * 1024);
        let mut s = Self::open_with(config)?;
        s.path = Some(path.to_owned());
        Ok(s)
    }

    /// Opens a version-1 database from a sled configuration (e.g. `temporary(true)`).
    pub fn open_with(config: sled::Config) -> Result<Self, StoreError> {
        let db = crate::open_sled(&config)?;
        let tree = db.open_tree(keys::TREE).map_err(sled_err)?;
        let store = V1Store {
            db,
            tree,
            path: None,
            dirty: false,
            durable: true,
            ops: OpCounts::default(),
        };
        store.check_schema()?;
        Ok(store)
    }

    /// With `false`, [`Store::sync`] no longer waits for the disk: acknowledged changes may be
    /// lost in a crash (sled still writes them out within about half a second). Only for
    /// measuring the cost of durability.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// The path given to [`V1Store::open`], if it was opened that way.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Refuses a database this code cannot read; stamps a fresh one with our version.
    fn check_schema(&self) -> Result<(), StoreError> {
        match self.tree.get(keys::schema()).map_err(sled_err)? {
            Some(v) => {
                let found = keys::decode_schema(&v)?;
                if found == keys::SCHEMA_VERSION {
                    Ok(())
                } else {
                    Err(StoreError(format!(
                        "database schema version {found} is not version {}",
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
    /// visible at once and survive a crash only after the next [`V1Store::flush`].
    /// Kept apart from the flush so that several commits can share one flush.
    pub fn commit_no_flush(&self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut p = Pending::new(&self.tree, &self.ops);
        for c in &changes.0 {
            p.apply(c)?;
        }
        self.ops.write(p.writes.len() as u64);
        self.tree.apply_batch(p.into_batch()).map_err(sled_err)
    }

    /// Waits until everything applied so far is on disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(sled_err)
    }

    /// Raw access to the tree, for tests and offline tools (e.g. to inject corruption).
    pub fn raw_tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The sled operations this store made so far (for benchmarks).
    pub fn ops(&self) -> &OpCounts {
        &self.ops
    }

    fn items_in(
        &self,
        uid: u64,
        iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        self.ops.read(1);
        for kv in iter {
            self.ops.read(1);
            let (k, v) = kv.map_err(sled_err)?;
            let (key_uid, seq) = keys::decode_item(&k)?;
            if key_uid != uid {
                return Err(StoreError(format!(
                    "item key {:02x?} found under node uid {uid}",
                    &k[..]
                )));
            }
            out.push(codec::decode_item(seq, &v)?);
        }
        Ok(out)
    }
}

impl Store for V1Store {
    // A version-1 store is only read to be migrated: a whole snapshot is what that wants.
    fn load_into(&mut self, loader: &mut dyn Loader) -> Result<(), StoreError> {
        self.load()?.feed(loader)
    }

    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let mut counters = BTreeMap::new();
        for kv in self.tree.scan_prefix([keys::COUNTERS]) {
            let (k, v) = kv.map_err(sled_err)?;
            counters.insert(keys::decode_counters(&k)?, codec::decode_counters(&v)?);
        }

        let mut snap = Snapshot::default();
        for kv in self.tree.scan_prefix([keys::NODE]) {
            let (k, v) = kv.map_err(sled_err)?;
            let rec = codec::decode_node(keys::decode_node(&k)?, &v)?;
            let c = counters.get(&rec.uid).copied().unwrap_or_default();
            snap.last_uid = snap.last_uid.max(rec.uid);
            snap.nodes.insert(rec.name.clone(), (rec, c));
        }

        for kv in self.tree.scan_prefix([keys::AFF]) {
            let (k, v) = kv.map_err(sled_err)?;
            let (node, jid) = keys::decode_aff(&k)?;
            let jid = codec::parse_bare_jid(&jid)?;
            let a = codec::decode_affiliation(&v)?;
            // `none` is never written; should one appear it means exactly "no row".
            if a != Affiliation::None {
                snap.affiliations.entry(node).or_default().insert(jid, a);
            }
        }

        for kv in self.tree.scan_prefix([keys::SUB]) {
            let (k, v) = kv.map_err(sled_err)?;
            let (node, subid) = keys::decode_sub(&k)?;
            let sub = codec::decode_subscription(subid.clone(), &v)?;
            snap.subscriptions
                .entry(node)
                .or_default()
                .insert(subid, sub);
        }

        if let Some(v) = self.tree.get(keys::last_uid()).map_err(sled_err)? {
            let stored = keys::decode_u64_value("last_uid", &v)?;
            snap.last_uid = snap.last_uid.max(stored);
        }
        Ok(snap)
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.commit_no_flush(changes)?;
        self.dirty = true;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        // A flush with nothing new still costs an fsync; skip it for read-only batches.
        if self.dirty && self.durable {
            self.flush()?;
        }
        self.dirty = false;
        Ok(())
    }

    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
        self.ops.read(1);
        let Some(seq) = self.tree.get(keys::item_id(uid, id)).map_err(sled_err)? else {
            return Ok(None);
        };
        let seq = keys::decode_u64_value("item id index", &seq)?;
        self.ops.read(1);
        let Some(v) = self.tree.get(keys::item(uid, seq)).map_err(sled_err)? else {
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
        let iter = self
            .tree
            .scan_prefix(keys::item_prefix(uid))
            .rev()
            .take(take);
        let mut v = self.items_in(uid, iter)?;
        v.reverse();
        Ok(v)
    }

    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
        let take = usize::try_from(n).unwrap_or(usize::MAX);
        let iter = self.tree.scan_prefix(keys::item_prefix(uid)).take(take);
        self.items_in(uid, iter)
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
        // A key range over (uid, seq): only the page's rows are read, from whichever end.
        let iter = self.tree.range(keys::item(uid, lo)..=keys::item(uid, hi));
        let rows = range.take(iter);
        self.items_in(uid, rows.into_iter())
    }

    fn due_expiries(&self, now: u64, limit: usize) -> Result<Vec<Expiry>, StoreError> {
        let mut out = Vec::new();
        let end = keys::expiry(now, u64::MAX, u64::MAX);
        for k in self
            .tree
            .range(keys::expiry(0, 0, 0)..=end)
            .keys()
            .take(limit)
        {
            out.push(keys::decode_expiry(&k.map_err(sled_err)?)?);
        }
        Ok(out)
    }

    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match before {
            Some(b) => Box::new(self.tree.range(keys::item(uid, 0)..keys::item(uid, b))),
            None => Box::new(self.tree.scan_prefix(keys::item_prefix(uid))),
        };
        for kv in iter {
            kv.map_err(sled_err)?;
            n += 1;
        }
        Ok(n)
    }
}

/// The writes of one commit, applied in order over the tree: reads see earlier changes
/// of the same change set, so e.g. a `DeleteItem` then `PutItem` of one id composes.
struct Pending<'a> {
    tree: &'a sled::Tree,
    ops: &'a OpCounts,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Item rows created (+) and removed (-) by this change set, by node uid, and the
    /// nodes purged by it (their stored count no longer applies): what `TrimItems` needs
    /// to know how many items a node holds, as the engine knew it from its counters.
    item_delta: BTreeMap<u64, i64>,
    purged: std::collections::BTreeSet<u64>,
}

impl<'a> Pending<'a> {
    fn new(tree: &'a sled::Tree, ops: &'a OpCounts) -> Self {
        Pending {
            tree,
            ops,
            writes: BTreeMap::new(),
            item_delta: BTreeMap::new(),
            purged: Default::default(),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(v.clone());
        }
        self.ops.read(1);
        Ok(self.tree.get(key).map_err(sled_err)?.map(|v| v.to_vec()))
    }

    fn count_items(&mut self, uid: u64, delta: i64) {
        *self.item_delta.entry(uid).or_default() += delta;
    }

    /// What the engine used to plan for `max_items`: read the node's count, then the
    /// oldest items beyond `keep` (skipping those this change set already deleted), and
    /// delete each.
    fn trim(&mut self, uid: u64, keep: u64) -> Result<(), StoreError> {
        let stored = match self.get(&keys::counters(uid))? {
            Some(v) if !self.purged.contains(&uid) => Some(codec::decode_counters(&v)?.count),
            _ => None,
        };
        let count = match stored {
            Some(stored) => {
                let delta = self.item_delta.get(&uid).copied().unwrap_or(0);
                (stored as i64 + delta).max(0) as u64
            }
            // No counters to go by (a caller other than the engine): count the items.
            None => self.scan(&keys::item_prefix(uid))?.len() as u64,
        };
        let Some(excess) = count.checked_sub(keep).filter(|e| *e > 0) else {
            return Ok(());
        };
        let mut doomed = Vec::new();
        self.ops.read(1);
        for kv in self.tree.scan_prefix(keys::item_prefix(uid)) {
            if doomed.len() as u64 == excess {
                break;
            }
            let (k, v) = kv.map_err(sled_err)?;
            self.ops.read(1);
            if matches!(self.writes.get(&k[..]), Some(None)) {
                continue;
            }
            let (_, seq) = keys::decode_item(&k)?;
            doomed.push((codec::decode_item_id(&v)?, seq));
        }
        for (id, seq) in doomed {
            self.apply(&Change::DeleteItem { uid, id, seq })?;
        }
        Ok(())
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn del(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Every live row under `prefix`, as the tree plus the pending writes show it.
    fn scan(&self, prefix: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        let mut rows = BTreeMap::new();
        for kv in self.tree.scan_prefix(prefix) {
            self.ops.read(1);
            let (k, v) = kv.map_err(sled_err)?;
            rows.insert(k.to_vec(), v.to_vec());
        }
        for (k, v) in self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            match v {
                Some(v) => rows.insert(k.clone(), v.clone()),
                None => rows.remove(k),
            };
        }
        Ok(rows)
    }

    /// Deletes every row under `prefix`; reads keys only, since item values can be large.
    fn del_prefix(&mut self, prefix: &[u8]) -> Result<(), StoreError> {
        let mut doomed = Vec::new();
        for k in self.tree.scan_prefix(prefix).keys() {
            doomed.push(k.map_err(sled_err)?.to_vec());
        }
        // Rows written earlier in this change set, not yet in the tree.
        doomed.extend(
            self.writes
                .range(prefix.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .filter(|(_, v)| v.is_some())
                .map(|(k, _)| k.clone()),
        );
        for k in doomed {
            self.del(k);
        }
        Ok(())
    }

    fn apply(&mut self, change: &Change) -> Result<(), StoreError> {
        match change {
            Change::PutNode(rec) => {
                self.put(keys::node(&rec.name), codec::node(rec));
                let last = match self.get(&keys::last_uid())? {
                    Some(v) => keys::decode_u64_value("last_uid", &v)?,
                    None => 0,
                };
                if rec.uid > last {
                    self.put(keys::last_uid(), keys::u64_value(rec.uid).to_vec());
                }
            }
            Change::DeleteNode { name, uid } => {
                self.purged.insert(*uid);
                self.item_delta.remove(uid);
                self.del(keys::node(name));
                self.del(keys::counters(*uid));
                self.purge_items(*uid)?;
                for (k, _) in self.scan(&keys::aff_prefix(name))? {
                    let (node, jid) = keys::decode_aff(&k)?;
                    self.del(keys::aff_by_jid(&jid, &node));
                    self.del(k);
                }
                for (k, v) in self.scan(&keys::sub_prefix(name))? {
                    let (node, subid) = keys::decode_sub(&k)?;
                    let sub = codec::decode_subscription(subid.clone(), &v)?;
                    self.del(keys::sub_by_jid(sub.jid.to_bare().as_str(), &node, &subid));
                    self.del(k);
                }
            }
            Change::PutCounters { uid, counters } => {
                // The counters now say how many items there are.
                self.item_delta.remove(uid);
                self.purged.remove(uid);
                self.put(keys::counters(*uid), codec::counters(counters));
            }
            Change::PutAffiliation {
                node,
                jid,
                affiliation,
            } => {
                let (k, idx) = (
                    keys::aff(node, jid.as_str()),
                    keys::aff_by_jid(jid.as_str(), node),
                );
                if *affiliation == Affiliation::None {
                    self.del(k);
                    self.del(idx);
                } else {
                    let v = codec::affiliation(*affiliation);
                    self.put(k, v.clone());
                    self.put(idx, v);
                }
            }
            Change::PutSubscription { node, sub } => {
                let k = keys::sub(node, &sub.subid);
                let bare = sub.jid.to_bare();
                // A replaced subscription may have belonged to another JID: drop its index row.
                if let Some(old) = self.get(&k)? {
                    let old = codec::decode_subscription(sub.subid.clone(), &old)?;
                    let old_bare = old.jid.to_bare();
                    if old_bare != bare {
                        self.del(keys::sub_by_jid(old_bare.as_str(), node, &sub.subid));
                    }
                }
                self.put(k, codec::subscription(sub));
                self.put(
                    keys::sub_by_jid(bare.as_str(), node, &sub.subid),
                    Vec::new(),
                );
            }
            Change::DeleteSubscription { node, jid, subid } => {
                let k = keys::sub(node, subid);
                // The stored JID is authoritative for the index row; the one in the change
                // is removed too in case an index row was left under it.
                if let Some(old) = self.get(&k)? {
                    let old = codec::decode_subscription(subid.clone(), &old)?;
                    self.del(keys::sub_by_jid(old.jid.to_bare().as_str(), node, subid));
                }
                self.del(keys::sub_by_jid(jid.to_bare().as_str(), node, subid));
                self.del(k);
            }
            Change::PutItem { uid, item } => {
                let id_key = keys::item_id(*uid, &item.id);
                // Ids are unique within a node: an id stored at another seq is replaced.
                if let Some(old_seq) = self.get(&id_key)? {
                    let old_seq = keys::decode_u64_value("item id index", &old_seq)?;
                    if old_seq != item.seq {
                        self.del(keys::item(*uid, old_seq));
                        self.count_items(*uid, -1);
                    }
                }
                let k = keys::item(*uid, item.seq);
                // Overwriting a seq that held another id: that id no longer exists.
                if let Some(old) = self.get(&k)? {
                    let old_id = codec::decode_item_id(&old)?;
                    if old_id != item.id {
                        self.del(keys::item_id(*uid, &old_id));
                    }
                } else {
                    self.count_items(*uid, 1);
                }
                self.put(k, codec::item(item));
                self.put(id_key, keys::u64_value(item.seq).to_vec());
            }
            Change::DeleteItem { uid, id, seq } => {
                let k = keys::item(*uid, *seq);
                if let Some(old) = self.get(&k)? {
                    let old_id = codec::decode_item_id(&old)?;
                    self.del_id_if_at(*uid, &old_id, *seq)?;
                    self.del(k);
                    self.count_items(*uid, -1);
                }
                self.del_id_if_at(*uid, id, *seq)?;
            }
            Change::PurgeItems { uid } => {
                self.purge_items(*uid)?;
                self.purged.insert(*uid);
                self.item_delta.remove(uid);
            }
            Change::TrimItems { uid, keep } => self.trim(*uid, *keep)?,
            Change::ScheduleExpiry { at, uid, seq } => {
                self.put(keys::expiry(*at, *uid, *seq), Vec::new())
            }
            Change::UnscheduleExpiry { at, uid, seq } => self.del(keys::expiry(*at, *uid, *seq)),
        }
        Ok(())
    }

    /// Removes the id index row of `id` if it points at `seq` (and not at a newer item).
    fn del_id_if_at(&mut self, uid: u64, id: &str, seq: u64) -> Result<(), StoreError> {
        let k = keys::item_id(uid, id);
        if let Some(v) = self.get(&k)? {
            if keys::decode_u64_value("item id index", &v)? == seq {
                self.del(k);
            }
        }
        Ok(())
    }

    fn purge_items(&mut self, uid: u64) -> Result<(), StoreError> {
        self.del_prefix(&keys::item_prefix(uid))?;
        self.del_prefix(&keys::item_id_prefix(uid))
    }

    fn into_batch(self) -> sled::Batch {
        let mut b = sled::Batch::default();
        for (k, v) in self.writes {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        b
    }
}
