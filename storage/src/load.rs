//! Reading: what the engine loads at start-up, and walks over a node's items.

use crate::codec;
use crate::keys;
use crate::ops::OpCounts;
use crate::packed;
use roost_nodes::{ItemCounters, Loader, StoreError};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::mpsc;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// Feeds everything the engine keeps in memory to `loader`. Subscriptions (most of the
/// rows) are read from sled on a second thread, grouped by node, while node records,
/// counters and affiliations are read and handed over on this one; each node's buckets
/// are then decoded in place, rows borrowing from the buckets' bytes.
pub fn load_into(
    tree: &sled::Tree,
    ops: &OpCounts,
    loader: &mut dyn Loader,
) -> Result<(), StoreError> {
    std::thread::scope(|s| {
        // Bounded, so that a slow loader holds back the reader rather than memory.
        let (tx, rx) = mpsc::sync_channel(256);
        let reader = s.spawn(move || read_subscriptions(tree, ops, &tx));
        nodes_and_affiliations(tree, ops, loader)?;
        for group in rx {
            let (node, buckets) = group?;
            let mut rows = buckets.iter().flat_map(|b| packed::entries(b)).map(|e| {
                let (subid, sub) = e?;
                let subid = std::str::from_utf8(subid)
                    .map_err(|_| StoreError(format!("corrupt subid {subid:02x?}")))?;
                codec::decode_sub_row(subid, sub)
            });
            loader.subscriptions(&node, &mut rows)?;
        }
        reader
            .join()
            .unwrap_or_else(|_| Err(StoreError("reading subscriptions panicked".into())))
    })
}

fn nodes_and_affiliations(
    tree: &sled::Tree,
    ops: &OpCounts,
    loader: &mut dyn Loader,
) -> Result<(), StoreError> {
    let mut counters: HashMap<u64, ItemCounters> = HashMap::new();
    for kv in tree.scan_prefix([keys::COUNTERS]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        counters.insert(keys::decode_counters(&k)?, codec::decode_head(&v)?.counters);
    }

    for kv in tree.scan_prefix([keys::NODE]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        let rec = codec::decode_node(keys::decode_node(&k)?.to_owned(), &v)?;
        let c = counters.get(&rec.uid).copied().unwrap_or_default();
        loader.node(rec, c)?;
    }

    for kv in tree.scan_prefix([keys::AFFS]) {
        ops.read(1);
        let (k, v) = kv.map_err(sled_err)?;
        let (node, _) = keys::decode_node_bucket(keys::AFFS, &k)?;
        for e in packed::entries(&v) {
            let (jid, a) = e?;
            let jid = std::str::from_utf8(jid)
                .map_err(|_| StoreError(format!("corrupt affiliation key {jid:02x?}")))?;
            loader.affiliation(node, jid, codec::decode_affiliation(a)?)?;
        }
    }

    if let Some(v) = tree.get(keys::last_uid()).map_err(sled_err)? {
        loader.last_uid(keys::decode_u64_value("last_uid", &v)?);
    }
    Ok(())
}

/// One node's subscription buckets, in key order.
type Group = Result<(String, Vec<sled::IVec>), StoreError>;

/// Sends the subscription buckets node by node; stops at the first error (sent on) or
/// when the receiver has gone (it failed).
fn read_subscriptions(
    tree: &sled::Tree,
    ops: &OpCounts,
    tx: &mpsc::SyncSender<Group>,
) -> Result<(), StoreError> {
    let mut node = String::new();
    let mut buckets = Vec::new();
    for kv in tree.scan_prefix([keys::SUBS]) {
        ops.read(1);
        let (k, v) = match kv.map_err(sled_err) {
            Ok(kv) => kv,
            Err(e) => {
                let _ = tx.send(Err(e));
                return Ok(());
            }
        };
        let this = match keys::decode_node_bucket(keys::SUBS, &k) {
            Ok((this, _)) => this,
            Err(e) => {
                let _ = tx.send(Err(e));
                return Ok(());
            }
        };
        if this != node {
            let done = (std::mem::replace(&mut node, this.to_owned()), buckets);
            buckets = Vec::new();
            if !done.1.is_empty() && tx.send(Ok(done)).is_err() {
                return Ok(());
            }
        }
        buckets.push(v);
    }
    if !buckets.is_empty() {
        let _ = tx.send(Ok((node, buckets)));
    }
    Ok(())
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
