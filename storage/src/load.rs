//! Reading: the snapshot the engine loads at start-up, and walks over a node's items.

use crate::codec;
use crate::keys;
use crate::ops::OpCounts;
use crate::packed;
use roost_nodes::{Affiliation, ItemCounters, Snapshot, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// Everything the engine keeps in memory. Node records, counters and affiliations are
/// read on one thread while subscriptions (most of the rows) are decoded on another.
/// Strings are decoded from the buckets' bytes in place: the only allocations are the
/// snapshot's own strings.
pub fn snapshot(tree: &sled::Tree, ops: &OpCounts) -> Result<Snapshot, StoreError> {
    let (head, subs) = std::thread::scope(|s| {
        let subs = s.spawn(|| subscriptions(tree, ops));
        let head = nodes_and_affiliations(tree, ops);
        let subs = subs
            .join()
            .unwrap_or_else(|_| Err(StoreError("loading subscriptions panicked".into())));
        (head, subs)
    });
    let mut snap = head?;
    snap.subscriptions = subs?;
    Ok(snap)
}

fn nodes_and_affiliations(tree: &sled::Tree, ops: &OpCounts) -> Result<Snapshot, StoreError> {
    let mut counters: HashMap<u64, ItemCounters> = HashMap::new();
    for kv in tree.scan_prefix([keys::COUNTERS]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        counters.insert(keys::decode_counters(&k)?, codec::decode_head(&v)?.counters);
    }

    let mut snap = Snapshot::default();
    for kv in tree.scan_prefix([keys::NODE]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        let rec = codec::decode_node(keys::decode_node(&k)?.to_owned(), &v)?;
        let c = counters.get(&rec.uid).copied().unwrap_or_default();
        snap.last_uid = snap.last_uid.max(rec.uid);
        snap.nodes.insert(rec.name.clone(), (rec, c));
    }

    for kv in tree.scan_prefix([keys::AFFS]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        let (node, _) = keys::decode_node_bucket(keys::AFFS, &k)?;
        let affs = match snap.affiliations.get_mut(node) {
            Some(m) => m,
            None => snap.affiliations.entry(node.to_owned()).or_default(),
        };
        for e in packed::entries(&v) {
            let (jid, a) = e?;
            let jid = std::str::from_utf8(jid)
                .map_err(|_| StoreError(format!("corrupt affiliation key {jid:02x?}")))?;
            let jid = codec::parse_bare_jid(jid)?;
            let a = codec::decode_affiliation(a)?;
            // `none` is never written; should one appear it means exactly "no row".
            if a != Affiliation::None {
                affs.insert(jid, a);
            }
        }
        if affs.is_empty() {
            snap.affiliations.remove(node);
        }
    }

    if let Some(v) = tree.get(keys::last_uid()).map_err(sled_err)? {
        let stored = keys::decode_u64_value("last_uid", &v)?;
        snap.last_uid = snap.last_uid.max(stored);
    }
    Ok(snap)
}

type Subs = BTreeMap<String, BTreeMap<String, roost_nodes::Subscription>>;

fn subscriptions(tree: &sled::Tree, ops: &OpCounts) -> Result<Subs, StoreError> {
    let mut out = Subs::new();
    for kv in tree.scan_prefix([keys::SUBS]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        let (node, _) = keys::decode_node_bucket(keys::SUBS, &k)?;
        let subs = match out.get_mut(node) {
            Some(m) => m,
            None => out.entry(node.to_owned()).or_default(),
        };
        for e in packed::entries(&v) {
            let (subid, sub) = e?;
            let subid = std::str::from_utf8(subid)
                .map_err(|_| StoreError(format!("corrupt subid {subid:02x?}")))?;
            let sub = codec::decode_subscription(subid.to_owned(), sub)?;
            subs.insert(sub.subid.clone(), sub);
        }
        if subs.is_empty() {
            out.remove(node);
        }
    }
    Ok(out)
}

/// A node's live items between two seqs, in either direction, bucket by bucket: yields
/// (seq, bucket, byte range of the item's record within the bucket).
pub struct Walk<'a> {
    buckets: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a>,
    ops: &'a OpCounts,
    buf: Vec<(u64, Range<usize>)>,
    bucket: sled::IVec,
    lo: u64,
    hi: u64,
    rev: bool,
    done: bool,
}

impl<'a> Walk<'a> {
    /// Items of `uid` with `lo <= seq <= hi`, oldest first (newest first when `rev`).
    pub fn new(
        tree: &'a sled::Tree,
        ops: &'a OpCounts,
        uid: u64,
        lo: u64,
        hi: u64,
        rev: bool,
    ) -> Self {
        let prefix = keys::items(uid);
        let at = |s: u64| {
            let mut k = prefix.clone();
            k.extend_from_slice(&keys::seq(s));
            k
        };
        let end = at(hi);
        let buckets: Box<dyn Iterator<Item = _>> = if rev {
            Box::new(tree.range(prefix.clone()..=end).rev())
        } else {
            // Start at the bucket holding `lo`, which may be keyed below it.
            ops.read(1);
            let start = match tree.range(prefix.clone()..=at(lo)).next_back() {
                Some(Ok((k, _))) => k.to_vec(),
                _ => prefix.clone(),
            };
            Box::new(tree.range(start..=end))
        };
        Walk {
            buckets,
            ops,
            buf: Vec::new(),
            bucket: sled::IVec::default(),
            lo,
            hi,
            rev,
            done: lo > hi,
        }
    }

    fn refill(&mut self) -> Result<bool, StoreError> {
        let Some(kv) = self.buckets.next() else {
            return Ok(false);
        };
        self.ops.read(1);
        let (_, v) = kv.map_err(sled_err)?;
        let base = v.as_ptr() as usize;
        self.buf.clear();
        for e in packed::entries(&v) {
            let (k, item) = e?;
            let start = item.as_ptr() as usize - base;
            self.buf
                .push((keys::decode_seq(k)?, start..start + item.len()));
        }
        if !self.rev {
            self.buf.reverse();
        }
        self.bucket = v;
        Ok(true)
    }
}

impl Iterator for Walk<'_> {
    type Item = Result<(u64, sled::IVec, Range<usize>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.buf.pop() {
                Some((seq, at)) => {
                    if seq < self.lo {
                        if self.rev {
                            self.done = true;
                        }
                        continue;
                    }
                    if seq > self.hi {
                        if !self.rev {
                            self.done = true;
                        }
                        continue;
                    }
                    return Some(Ok((seq, self.bucket.clone(), at)));
                }
                None => match self.refill() {
                    Ok(true) => {}
                    Ok(false) => self.done = true,
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                },
            }
        }
        None
    }
}
