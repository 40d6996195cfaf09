//! Bulk writing into a new database: large unflushed batches, buckets packed full. Used by
//! the schema migration ([`crate::migrate`]) and by `roost import` ([`Loader`]).
//!
//! A [`Loader`] builds the database in `DATA_DIR/v2.tmp` and renames it to `DATA_DIR/v2`
//! once complete (the same commit point as a migration, see [`crate::layout`]): an import
//! interrupted by a crash or a kill leaves `v2.tmp`, which the next open removes.

use crate::apply::{AFF_BUCKET, ID_BUCKET, ITEM_BUCKET, SUB_BUCKET};
use crate::codec::{self, Head};
use crate::{keys, layout, packed, SledStore};
use roost_nodes::{Affiliation, BareJid, Item, ItemCounters, NodeRecord, Store, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// Bytes written per sled batch: large enough that per-batch costs vanish.
pub const BATCH_BYTES: usize = 8 << 20;

/// Writes batches of about [`BATCH_BYTES`] to one tree.
pub struct Writer {
    tree: sled::Tree,
    batch: sled::Batch,
    bytes: usize,
    /// Keys written so far.
    pub keys: u64,
}

impl Writer {
    /// A writer on `tree`.
    pub fn new(tree: sled::Tree) -> Self {
        Writer {
            tree,
            batch: sled::Batch::default(),
            bytes: 0,
            keys: 0,
        }
    }

    /// Queues one key.
    pub fn put(&mut self, k: Vec<u8>, v: Vec<u8>) -> Result<(), StoreError> {
        self.bytes += k.len() + v.len();
        self.keys += 1;
        self.batch.insert(k, v);
        if self.bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Queues a whole packed map (entries in any order) under `prefix`.
    pub fn put_map(
        &mut self,
        prefix: &[u8],
        entries: &mut [(Vec<u8>, Vec<u8>)],
        cap: usize,
    ) -> Result<(), StoreError> {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (lower, bucket) in packed::pack(entries.iter().map(|(k, v)| (&k[..], &v[..])), cap) {
            let mut k = prefix.to_vec();
            k.extend_from_slice(&lower);
            self.put(k, bucket)?;
        }
        Ok(())
    }

    /// Applies what is queued (visible to reads, not yet flushed to disk).
    pub fn flush(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::take(&mut self.batch);
        self.bytes = 0;
        self.tree.apply_batch(batch).map_err(sled_err)
    }
}

/// The items of the node being loaded: written bucket by bucket as they come (in seq
/// order), their ids kept to build the id index at the end of the node.
struct NodeItems {
    uid: u64,
    last_seq: u64,
    prev_seq: Option<u64>,
    bucket: Option<(Vec<u8>, Vec<u8>)>,
    ids: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Fills an empty data directory: nodes with their affiliations and subscriptions, then
/// each node's items in publish order, then expiry entries. Everything is checked as it
/// comes (unique names, uids, item ids; seqs in order); [`Loader::finish`] makes it the
/// data directory's database.
pub struct Loader {
    store: Option<SledStore>,
    w: Writer,
    dir: PathBuf,
    tmp: PathBuf,
    last_uid: u64,
    /// Node name → (uid, last seq, whether its items were loaded).
    nodes: HashMap<String, (u64, u64, bool)>,
    uids: HashMap<u64, String>,
    current: Option<NodeItems>,
    /// Every item is applied to the tree (expiries come after the items).
    items_visible: bool,
}

/// Why a directory cannot be imported into, if it cannot.
pub fn refuse_non_empty(dir: &Path) -> Result<(), StoreError> {
    match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError(format!("cannot read {}: {e}", dir.display()))),
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(StoreError(format!(
                "{} is not empty: import only into a new or empty directory (it holds a \
                 database or other files; move them away, or choose another --data-dir)",
                dir.display()
            ))),
        },
    }
}

impl Loader {
    /// Starts loading into `dir`, which must not exist or be empty.
    pub fn create(dir: &Path) -> Result<Self, StoreError> {
        refuse_non_empty(dir)?;
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError(format!("cannot create {}: {e}", dir.display())))?;
        let tmp = dir.join(layout::V2_TMP);
        let store = SledStore::open_with(crate::sled_config(&tmp))?;
        Ok(Loader {
            w: Writer::new(store.raw_tree().clone()),
            store: Some(store),
            dir: dir.to_owned(),
            tmp,
            last_uid: 0,
            nodes: HashMap::new(),
            uids: HashMap::new(),
            current: None,
            items_visible: false,
        })
    }

    fn store(&self) -> &SledStore {
        // Only `finish` takes it, consuming the loader.
        self.store
            .as_ref()
            .expect("the loader's store is open until finish")
    }

    /// The highest node uid ever handed out (at least the highest uid loaded).
    pub fn set_last_uid(&mut self, uid: u64) {
        self.last_uid = self.last_uid.max(uid);
    }

    /// One node: its record, the highest seq it ever gave an item, its affiliations and
    /// subscriptions.
    pub fn put_node(
        &mut self,
        rec: &NodeRecord,
        last_seq: u64,
        affiliations: &[(BareJid, Affiliation)],
        subscriptions: &[roost_nodes::Subscription],
    ) -> Result<(), StoreError> {
        if self.nodes.contains_key(&rec.name) {
            return Err(StoreError(format!("node {:?} is given twice", rec.name)));
        }
        if let Some(other) = self.uids.get(&rec.uid) {
            return Err(StoreError(format!(
                "nodes {other:?} and {:?} have the same uid {}",
                rec.name, rec.uid
            )));
        }
        self.nodes
            .insert(rec.name.clone(), (rec.uid, last_seq, false));
        self.uids.insert(rec.uid, rec.name.clone());
        self.last_uid = self.last_uid.max(rec.uid);
        self.w.put(keys::node(&rec.name), codec::node(rec))?;
        let mut affs = Vec::with_capacity(affiliations.len());
        for (jid, a) in affiliations {
            if *a == Affiliation::None {
                continue; // `none` is the absence of a row
            }
            affs.push((jid.as_str().as_bytes().to_vec(), codec::affiliation(*a)));
        }
        if has_duplicates(&mut affs) {
            return Err(StoreError(format!(
                "node {:?}: a JID has two affiliations",
                rec.name
            )));
        }
        self.w
            .put_map(&keys::affs(&rec.name), &mut affs, AFF_BUCKET)?;
        let mut subs: Vec<(Vec<u8>, Vec<u8>)> = subscriptions
            .iter()
            .map(|s| (s.subid.as_bytes().to_vec(), codec::subscription(s)))
            .collect();
        if has_duplicates(&mut subs) {
            return Err(StoreError(format!(
                "node {:?}: a subid is given twice",
                rec.name
            )));
        }
        self.w
            .put_map(&keys::subs(&rec.name), &mut subs, SUB_BUCKET)?;
        // Nodes without items have a head too: their counters (last_seq) matter.
        self.w.put(
            keys::counters(rec.uid),
            codec::head(&Head {
                counters: ItemCounters { count: 0, last_seq },
                floor: 0,
                live: 0,
            }),
        )
    }

    /// Starts the items of `node` (given with [`Loader::put_node`] before).
    pub fn begin_items(&mut self, node: &str) -> Result<(), StoreError> {
        if self.items_visible {
            return Err(StoreError(format!(
                "items of node {node:?} after the expiries (items come first)"
            )));
        }
        self.end_items()?;
        let Some((uid, last_seq, loaded)) = self.nodes.get_mut(node) else {
            return Err(StoreError(format!(
                "items of node {node:?}, which has no configuration before them"
            )));
        };
        if *loaded {
            return Err(StoreError(format!(
                "items of node {node:?} are given twice"
            )));
        }
        *loaded = true;
        self.current = Some(NodeItems {
            uid: *uid,
            last_seq: *last_seq,
            prev_seq: None,
            bucket: None,
            ids: Vec::new(),
        });
        Ok(())
    }

    /// The next item of the current node (seqs strictly increasing).
    pub fn push_item(&mut self, item: &Item) -> Result<(), StoreError> {
        let Some(mut cur) = self.current.take() else {
            return Err(StoreError("an item outside a node's items".into()));
        };
        let name = || self.uids.get(&cur.uid).cloned().unwrap_or_default();
        if cur.prev_seq.is_some_and(|p| item.seq <= p) {
            return Err(StoreError(format!(
                "node {:?}: item {:?} (seq {}) is not after the item before it",
                name(),
                item.id,
                item.seq
            )));
        }
        if item.seq == 0 || item.seq > cur.last_seq {
            return Err(StoreError(format!(
                "node {:?}: item {:?} has seq {}, outside 1..={} (the node's last seq)",
                name(),
                item.id,
                item.seq,
                cur.last_seq
            )));
        }
        cur.prev_seq = Some(item.seq);
        let k = keys::seq(item.seq);
        let v = codec::item(item);
        let full = cur
            .bucket
            .as_ref()
            .is_some_and(|(_, b)| b.len() > 1 && b.len() + packed::entry_len(&k, &v) > ITEM_BUCKET);
        if full {
            if let Some((lower, bucket)) = cur.bucket.take() {
                let mut key = keys::items(cur.uid);
                key.extend_from_slice(&lower);
                self.w.put(key, bucket)?;
            }
        }
        let (_, b) = cur
            .bucket
            .get_or_insert_with(|| (k.to_vec(), packed::new_bucket()));
        packed::put_entry(b, &k, &v);
        cur.ids.push((
            item.id.as_bytes().to_vec(),
            keys::u64_value(item.seq).to_vec(),
        ));
        self.current = Some(cur);
        Ok(())
    }

    /// Ends the current node's items: its last bucket, its id index, its head.
    fn end_items(&mut self) -> Result<(), StoreError> {
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        if let Some((lower, bucket)) = cur.bucket.take() {
            let mut key = keys::items(cur.uid);
            key.extend_from_slice(&lower);
            self.w.put(key, bucket)?;
        }
        let count = cur.ids.len() as u64;
        if has_duplicates(&mut cur.ids) {
            let name = self.uids.get(&cur.uid).cloned().unwrap_or_default();
            return Err(StoreError(format!(
                "node {name:?}: two items have the same id"
            )));
        }
        self.w
            .put_map(&keys::ids(cur.uid), &mut cur.ids, ID_BUCKET)?;
        self.w.put(
            keys::counters(cur.uid),
            codec::head(&Head {
                counters: ItemCounters {
                    count,
                    last_seq: cur.last_seq,
                },
                floor: 0,
                live: count,
            }),
        )
    }

    /// Item `id` of `node` expires at `at` (`pubsub#item_expire`). Given after every item.
    pub fn put_expiry(&mut self, at: u64, node: &str, id: &str) -> Result<(), StoreError> {
        if !self.items_visible {
            // Lookups below read the id index: make every item written so far visible.
            self.end_items()?;
            self.w.flush()?;
            self.items_visible = true;
        }
        let Some(&(uid, _, _)) = self.nodes.get(node) else {
            return Err(StoreError(format!(
                "an expiry for node {node:?}, which is not in the dump"
            )));
        };
        let Some(item) = self.store().item(uid, id)? else {
            return Err(StoreError(format!(
                "an expiry for item {id:?} of node {node:?}, which is not in the dump"
            )));
        };
        self.w.put(keys::expiry(at, uid, item.seq), Vec::new())
    }

    /// Writes what is left, flushes, and makes the database the data directory's.
    pub fn finish(mut self) -> Result<PathBuf, StoreError> {
        self.end_items()?;
        let last_uid = self.last_uid;
        self.w
            .put(keys::last_uid(), keys::u64_value(last_uid).to_vec())?;
        self.w.flush()?;
        let store = self.store.take().expect("open until finish");
        store.flush()?;
        drop(store);
        layout::sync_dir(&self.tmp)?;
        let v2 = self.dir.join(layout::V2);
        std::fs::rename(&self.tmp, &v2)
            .map_err(|e| StoreError(format!("cannot rename {} to v2: {e}", self.tmp.display())))?;
        layout::sync_dir(&self.dir)?;
        Ok(v2)
    }
}

/// Sorts `entries` by key and tells whether a key appears twice.
fn has_duplicates(entries: &mut [(Vec<u8>, Vec<u8>)]) -> bool {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.windows(2).any(|w| w[0].0 == w[1].0)
}
