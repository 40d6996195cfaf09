//! Reading: what the engine loads at start-up, and walks over a node's items.

use crate::codec;
use crate::keys;
use crate::ops::OpCounts;
use crate::packed;
use roost_nodes::{ItemCounters, Loader, NodeRecord, StoreError};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::mpsc;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// Feeds everything the engine keeps in memory to `loader`, which builds on this thread.
///
/// The building is the slow part, so this thread does little else: a reader thread scans
/// sled and hands over what it read in chunks (one wake-up per chunk, not per row): the
/// counters and node records, decoded, then the affiliation buckets, then the
/// subscription buckets grouped by node, on a second channel so that it can read them
/// while the nodes are being built. The engine gets every node and affiliation before any
/// subscription. Each bucket is decoded here, in place, rows borrowing from its bytes.
///
/// One reader, not one per map: a second reading thread made start-up no faster on the
/// scale run's data set (the building is the bottleneck) and kept ~40 MB more in malloc's
/// arenas.
///
/// What the loader has used up goes back to the reader to be dropped there ([`Spent`]):
/// freeing the reader's buffers on this thread takes the lock of the reader's malloc arena,
/// and the two threads then waited on each other in the kernel (futex wait and wake-up,
/// ~6 % of start-up's samples on the scale run).
pub fn load_into(
    tree: &sled::Tree,
    ops: &OpCounts,
    loader: &mut dyn Loader,
) -> Result<(), StoreError> {
    std::thread::scope(|s| {
        // Bounded, so that a slow loader holds back the reader rather than memory.
        let (head_tx, head_rx) = mpsc::sync_channel(CHUNKS_AHEAD);
        let (subs_tx, subs_rx) = mpsc::sync_channel(CHUNKS_AHEAD);
        // Unbounded: the loader never waits to give something back.
        let (spent_tx, spent_rx) = mpsc::channel();
        let reader = s.spawn(move || {
            read_heads(tree, ops, Chunked::new(head_tx, &spent_rx));
            read_subscriptions(tree, ops, Chunked::new(subs_tx, &spent_rx));
            // Until the loader is done and hangs up.
            spent_rx.iter().for_each(drop);
        });
        // The reader's errors come through the channels; a failed build drops the receivers,
        // which stops the reader.
        let built = build(loader, head_rx, subs_rx, spent_tx);
        let panicked = reader.join().is_err();
        built?;
        if panicked {
            return Err(StoreError("reading the store panicked".into()));
        }
        Ok(())
    })
}

/// Chunks the reader may have read ahead of the loader, per channel.
const CHUNKS_AHEAD: usize = 8;
/// Rows (node records, affiliation buckets, or nodes' subscription groups) per chunk.
const CHUNK: usize = 256;

/// What the reader hands over first, in this order: the nodes, then their affiliations.
// Most rows are nodes: boxing them would add an allocation per node to save a few
// hundred bytes per chunk.
#[allow(clippy::large_enum_variant)]
enum Head {
    Node(NodeRecord, ItemCounters),
    /// A node's affiliation bucket: (node, packed JID → affiliation entries).
    Affiliations(String, sled::IVec),
    LastUid(u64),
}

/// One node's subscription buckets, in key order.
type Group = (String, Vec<sled::IVec>);

/// What the loader has read and no longer needs, handed back to be dropped by the reader,
/// which allocated it.
// Never read: held only to be dropped on the other thread.
#[allow(dead_code)]
enum Spent {
    Heads(Vec<Head>),
    Groups(Vec<Group>),
}

fn build(
    loader: &mut dyn Loader,
    heads: mpsc::Receiver<Result<Vec<Head>, StoreError>>,
    subs: mpsc::Receiver<Result<Vec<Group>, StoreError>>,
    spent: mpsc::Sender<Spent>,
) -> Result<(), StoreError> {
    // The reader may have stopped listening (it panicked): then this thread drops them.
    let give_back = |s: Spent| drop(spent.send(s));
    for chunk in heads {
        let mut chunk = chunk?;
        let mut used = Vec::with_capacity(chunk.len());
        for head in chunk.drain(..) {
            match head {
                Head::Node(rec, counters) => loader.node(rec, counters)?,
                Head::Affiliations(node, bucket) => {
                    for e in packed::entries(&bucket) {
                        let (jid, a) = e?;
                        let jid = std::str::from_utf8(jid).map_err(|_| {
                            StoreError(format!("corrupt affiliation key {jid:02x?}"))
                        })?;
                        loader.affiliation(&node, jid, codec::decode_affiliation(a)?)?;
                    }
                    used.push(Head::Affiliations(node, bucket));
                }
                Head::LastUid(uid) => loader.last_uid(uid),
            }
        }
        give_back(Spent::Heads(chunk));
        give_back(Spent::Heads(used));
    }
    for chunk in subs {
        let chunk = chunk?;
        for (node, buckets) in &chunk {
            let mut rows = buckets.iter().flat_map(|b| packed::entries(b)).map(|e| {
                let (subid, sub) = e?;
                let subid = std::str::from_utf8(subid)
                    .map_err(|_| StoreError(format!("corrupt subid {subid:02x?}")))?;
                codec::decode_sub_row(subid, sub)
            });
            loader.subscriptions(node, &mut rows)?;
        }
        give_back(Spent::Groups(chunk));
    }
    Ok(())
}

/// A reader's side of its channel: rows gathered into chunks.
struct Chunked<'a, T> {
    tx: mpsc::SyncSender<Result<Vec<T>, StoreError>>,
    chunk: Vec<T>,
    /// What the loader gave back, dropped here between chunks.
    spent: &'a mpsc::Receiver<Spent>,
}

/// Why a reader stopped early.
enum Stop {
    /// The loader hung up (it failed): nothing more to say.
    Gone,
    /// Reading failed: the loader is told in place of the rest.
    Failed(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Failed(e)
    }
}

impl From<sled::Error> for Stop {
    fn from(e: sled::Error) -> Self {
        Stop::Failed(sled_err(e))
    }
}

impl<'a, T> Chunked<'a, T> {
    fn new(
        tx: mpsc::SyncSender<Result<Vec<T>, StoreError>>,
        spent: &'a mpsc::Receiver<Spent>,
    ) -> Self {
        Chunked {
            tx,
            chunk: Vec::with_capacity(CHUNK),
            spent,
        }
    }

    fn push(&mut self, row: T) -> Result<(), Stop> {
        self.chunk.push(row);
        if self.chunk.len() < CHUNK {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.spent.try_iter().for_each(drop);
        self.tx.send(Ok(full)).map_err(|_| Stop::Gone)
    }

    /// Sends what is left, or the reader's error in place of it. A loader that has gone
    /// is not waiting for either.
    fn finish(self, read: Result<(), Stop>) {
        let _ = match read {
            Ok(()) if self.chunk.is_empty() => Ok(()),
            Ok(()) => self.tx.send(Ok(self.chunk)),
            Err(Stop::Failed(e)) => self.tx.send(Err(e)),
            Err(Stop::Gone) => Ok(()),
        };
    }
}

fn read_heads(tree: &sled::Tree, ops: &OpCounts, mut out: Chunked<'_, Head>) {
    let mut read = || -> Result<(), Stop> {
        let mut counters: HashMap<u64, ItemCounters> = HashMap::new();
        for kv in tree.scan_prefix([keys::COUNTERS]) {
            ops.read(1);
            let (k, v) = kv?;
            counters.insert(keys::decode_counters(&k)?, codec::decode_head(&v)?.counters);
        }
        for kv in tree.scan_prefix([keys::NODE]) {
            ops.read(1);
            let (k, v) = kv?;
            let rec = codec::decode_node(keys::decode_node(&k)?.to_owned(), &v)?;
            let c = counters.get(&rec.uid).copied().unwrap_or_default();
            out.push(Head::Node(rec, c))?;
        }
        for kv in tree.scan_prefix([keys::AFFS]) {
            ops.read(1);
            let (k, v) = kv?;
            let (node, _) = keys::decode_node_bucket(keys::AFFS, &k)?;
            out.push(Head::Affiliations(node.to_owned(), v))?;
        }
        if let Some(v) = tree.get(keys::last_uid())? {
            out.push(Head::LastUid(keys::decode_u64_value("last_uid", &v)?))?;
        }
        Ok(())
    };
    let read = read();
    out.finish(read);
}

/// Reads the subscription buckets node by node.
fn read_subscriptions(tree: &sled::Tree, ops: &OpCounts, mut out: Chunked<'_, Group>) {
    let mut read = || -> Result<(), Stop> {
        let mut node = String::new();
        let mut buckets = Vec::new();
        for kv in tree.scan_prefix([keys::SUBS]) {
            ops.read(1);
            let (k, v) = kv?;
            let (this, _) = keys::decode_node_bucket(keys::SUBS, &k)?;
            if this != node {
                let done = std::mem::replace(&mut node, this.to_owned());
                if !buckets.is_empty() {
                    out.push((done, std::mem::take(&mut buckets)))?;
                }
            }
            buckets.push(v);
        }
        if !buckets.is_empty() {
            out.push((node, buckets))?;
        }
        Ok(())
    };
    let read = read();
    out.finish(read);
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
