//! Packed maps: many small entries of one map under few sled keys (buckets).
//!
//! A map is named by a key prefix (e.g. one node's subscriptions). Its entries, sorted by
//! entry key (bytes), are cut into buckets; each bucket is one sled key, `prefix + lower
//! bound`, whose value is [`FORMAT`] followed by its entries, each a varint key length,
//! the key, a varint value length and the value. An entry lives in the bucket with the
//! greatest lower bound not above its key, found with one reverse range step.
//!
//! A bucket grows to `cap` bytes, then splits: when the new entry is the greatest of the
//! bucket (appending, as items do by seq) it starts a bucket of its own, so that buckets
//! written in order stay full; otherwise at the middle. A bucket that falls under a quarter
//! of `cap` after a delete takes in its successor when both fit. An entry larger than
//! `cap` has a bucket to itself.
//!
//! All reads and writes go through [`Pending`], the change set being built: reads see its
//! earlier writes, and nothing reaches sled until the whole change set is one batch.

mod tails;
pub use tails::Tails;

use crate::ops::OpCounts;
use roost_nodes::StoreError;
use std::collections::BTreeMap;

/// The format byte of a bucket value.
pub const FORMAT: u8 = 1;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

fn corrupt(why: &str) -> StoreError {
    StoreError(format!("corrupt bucket: {why}"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn get_varint(b: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, &b[i + 1..]));
        }
    }
    None
}

/// Appends one entry in bucket encoding.
pub fn put_entry(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    put_varint(out, k.len() as u64);
    out.extend_from_slice(k);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// Encoded size of one entry.
pub fn entry_len(k: &[u8], v: &[u8]) -> usize {
    varint_len(k.len() as u64) + k.len() + varint_len(v.len() as u64) + v.len()
}

/// A new, empty bucket value.
pub fn new_bucket() -> Vec<u8> {
    vec![FORMAT]
}

/// The entries of a bucket value, in key order, borrowed from it. Corrupt input gives an
/// error item (and ends the iteration), never a panic.
pub fn entries(bucket: &[u8]) -> Entries<'_> {
    match bucket.split_first() {
        Some((&FORMAT, rest)) => Entries {
            rest,
            failed: false,
        },
        _ => Entries {
            rest: &[],
            failed: true,
        },
    }
}

/// Iterator over a bucket's entries; see [`entries`].
pub struct Entries<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            self.failed = false;
            self.rest = &[];
            return Some(Err(corrupt("unknown format or empty")));
        }
        if self.rest.is_empty() {
            return None;
        }
        let parsed = (|| {
            let (klen, r) = get_varint(self.rest)?;
            let klen = usize::try_from(klen).ok()?;
            let k = r.get(..klen)?;
            let r = &r[klen..];
            let (vlen, r) = get_varint(r)?;
            let vlen = usize::try_from(vlen).ok()?;
            let v = r.get(..vlen)?;
            Some((k, v, &r[vlen..]))
        })();
        match parsed {
            Some((k, v, rest)) => {
                self.rest = rest;
                Some(Ok((k, v)))
            }
            None => {
                self.rest = &[];
                Some(Err(corrupt("truncated entry")))
            }
        }
    }
}

/// One entry, borrowed from its bucket: (key, value).
pub type Entry<'a> = (&'a [u8], &'a [u8]);

/// All entries of a bucket, checked.
pub fn all_entries(bucket: &[u8]) -> Result<Vec<Entry<'_>>, StoreError> {
    entries(bucket).collect()
}

/// A value read through [`Pending`]: from the tree or from the change set itself.
#[derive(Clone)]
pub enum Val {
    /// As stored.
    Tree(sled::IVec),
    /// Written earlier in this change set or the batch (shared, not copied, by each read).
    Own(sled::IVec),
}

impl std::ops::Deref for Val {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Tree(v) => v,
            Val::Own(v) => v,
        }
    }
}

/// Writes by key, `None` for a removal. Values are sled's shared buffers: a bucket written
/// earlier in a batch is read again by the next publish to its node, and a read must not
/// copy it.
pub type Writes = BTreeMap<Vec<u8>, Option<sled::IVec>>;

/// The writes of one change set over the tree, and optionally over a base of writes not
/// yet in the tree (earlier change sets of the same batch, see `SledStore`): reads see the
/// change set first, then the base, then the tree; sled sees none of it until
/// [`Pending::into_batch`] or [`Pending::into_writes`].
pub struct Pending<'a> {
    tree: &'a sled::Tree,
    ops: &'a OpCounts,
    base: Option<&'a Writes>,
    writes: Writes,
    /// The last [`Pending::floor_key`] answer, (prefix, target, answer), until a write
    /// under its prefix: a lookup followed by an update of the same entry reads once.
    memo: std::cell::RefCell<Option<Memo>>,
    /// The last answer found over the base and the tree alone, kept with the base for the
    /// next change set over the same base ([`Pending::over_shared`]).
    shared: Option<&'a SharedMemo>,
    /// The greatest bucket of maps that grow at their end ([`Pending::with_tails`]).
    tails: Option<&'a Tails>,
}

type Memo = (Vec<u8>, Vec<u8>, Option<(Vec<u8>, Val)>);

/// A [`Pending::floor_key`] answer that outlives its change set: a read (does this item
/// id exist?) and the change set that follows it (store the item) look up the same bucket.
/// Its owner must [`SharedMemo::clear`] it whenever the base or the tree changes.
#[derive(Default)]
pub struct SharedMemo(std::cell::RefCell<Option<Memo>>);

impl SharedMemo {
    /// Forget the answer: the writes it was found over have changed.
    pub fn clear(&mut self) {
        *self.0.get_mut() = None;
    }
}

impl<'a> Pending<'a> {
    /// An empty change set over `tree`.
    pub fn new(tree: &'a sled::Tree, ops: &'a OpCounts) -> Self {
        Pending {
            tree,
            ops,
            base: None,
            writes: BTreeMap::new(),
            memo: std::cell::RefCell::new(None),
            shared: None,
            tails: None,
        }
    }

    /// An empty change set over `base`, which is over `tree`.
    pub fn over(tree: &'a sled::Tree, ops: &'a OpCounts, base: &'a Writes) -> Self {
        Pending {
            base: Some(base),
            ..Pending::new(tree, ops)
        }
    }

    /// [`Pending::over`], reading and leaving in `shared` the last bucket lookup that none
    /// of the change set's own writes affect.
    pub fn over_shared(
        tree: &'a sled::Tree,
        ops: &'a OpCounts,
        base: &'a Writes,
        shared: &'a SharedMemo,
    ) -> Self {
        Pending {
            shared: Some(shared),
            ..Pending::over(tree, ops, base)
        }
    }

    /// True when the change set wrote a key starting with `prefix`.
    fn wrote_under(&self, prefix: &[u8]) -> bool {
        self.writes
            .range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .next()
            .is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// The change set's or else the base's entry for `key` (`Some(None)`: removed), `None`
    /// when only the tree knows it.
    fn overlay(&self, key: &[u8]) -> Option<&Option<sled::IVec>> {
        self.writes
            .get(key)
            .or_else(|| self.base.and_then(|b| b.get(key)))
    }

    /// The first live key of the change set and base together within `range` (the last
    /// when `rev`), stopping at the first key `past` rejects.
    fn overlay_first(
        &self,
        range: (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>),
        rev: bool,
        past: impl Fn(&[u8]) -> bool,
    ) -> Option<(Vec<u8>, Val)> {
        fn first<'m>(
            m: &'m Writes,
            range: (std::ops::Bound<&[u8]>, std::ops::Bound<&[u8]>),
            rev: bool,
            past: &dyn Fn(&[u8]) -> bool,
            shadowed: &dyn Fn(&[u8]) -> bool,
        ) -> Option<(Vec<u8>, Val)> {
            let live = |it: &mut dyn Iterator<Item = (&'m Vec<u8>, &'m Option<sled::IVec>)>| {
                it.take_while(|(k, _)| !past(k))
                    .filter(|(k, _)| !shadowed(k))
                    .find_map(|(k, v)| v.as_ref().map(|v| (k.clone(), Val::Own(v.clone()))))
            };
            let it = m.range::<[u8], _>(range);
            if rev {
                live(&mut it.rev())
            } else {
                live(&mut { it })
            }
        }
        let mine = first(&self.writes, range, rev, &past, &|_| false);
        let base = self.base.and_then(|b| {
            first(b, range, rev, &past, &|k: &[u8]| {
                self.writes.contains_key(k)
            })
        });
        match (mine, base) {
            (Some(m), Some(b)) => Some(if (m.0 > b.0) == rev { m } else { b }),
            (m, b) => m.or(b),
        }
    }

    fn forget(&mut self, key: &[u8]) {
        let memo = self.memo.get_mut();
        if memo
            .as_ref()
            .is_some_and(|(prefix, _, _)| key.starts_with(prefix))
        {
            *memo = None;
        }
    }

    /// One key, as the tree plus this change set show it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Val>, StoreError> {
        if let Some(v) = self.overlay(key) {
            return Ok(v.clone().map(Val::Own));
        }
        self.ops.read(1);
        Ok(self.tree.get(key).map_err(sled_err)?.map(Val::Tree))
    }

    /// Sets a key.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.forget(&key);
        self.writes.insert(key, Some(value.into()));
    }

    /// Removes a key.
    pub fn del(&mut self, key: Vec<u8>) {
        self.forget(&key);
        self.writes.insert(key, None);
    }

    /// The live key with `prefix` that is greatest but not above `target`.
    pub fn floor_key(
        &self,
        prefix: &[u8],
        target: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        let hit = |m: &Option<Memo>| match m {
            Some((p, t, answer)) if p == prefix && t == target => Some(answer.clone()),
            _ => None,
        };
        if let Some(answer) = hit(&self.memo.borrow()) {
            return Ok(answer);
        }
        // The shared answer holds only while this change set has not written under it.
        let shared = self.shared.filter(|_| !self.wrote_under(prefix));
        let answer = match shared.and_then(|m| hit(&m.0.borrow())) {
            Some(answer) => answer,
            None => {
                let answer = self.floor_key_uncached(prefix, target)?;
                if let Some(m) = shared {
                    *m.0.borrow_mut() = Some((prefix.to_vec(), target.to_vec(), answer.clone()));
                }
                answer
            }
        };
        *self.memo.borrow_mut() = Some((prefix.to_vec(), target.to_vec(), answer.clone()));
        Ok(answer)
    }

    fn floor_key_uncached(
        &self,
        prefix: &[u8],
        target: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        let mut from_tree = None;
        for kv in self.tree.range(prefix..=target).rev() {
            self.ops.read(1);
            let (k, v) = kv.map_err(sled_err)?;
            if self.overlay(&k).is_none() {
                from_tree = Some((k.to_vec(), Val::Tree(v)));
                break;
            }
        }
        Ok(self.floor_over(prefix, target, from_tree))
    }

    /// The greater of `below` (found in the tree, or the tree and the base) and the last
    /// live key with `prefix` not above `target` in the change set and the base.
    fn floor_over(
        &self,
        prefix: &[u8],
        target: &[u8],
        below: Option<(Vec<u8>, Val)>,
    ) -> Option<(Vec<u8>, Val)> {
        let mine = self.overlay_first(
            (
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Included(target),
            ),
            true,
            |_| false,
        );
        match (below, mine) {
            (Some(b), Some(m)) => Some(if b.0 > m.0 { b } else { m }),
            (b, m) => b.or(m),
        }
    }

    /// The live key with `prefix` that is smallest at or above `from`.
    pub fn ceil_key(
        &self,
        prefix: &[u8],
        from: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        let mut from_tree = None;
        for kv in self.tree.range(from..) {
            self.ops.read(1);
            let (k, v) = kv.map_err(sled_err)?;
            if !k.starts_with(prefix) {
                break;
            }
            if self.overlay(&k).is_none() {
                from_tree = Some((k.to_vec(), Val::Tree(v)));
                break;
            }
        }
        let mine = self.overlay_first(
            (std::ops::Bound::Included(from), std::ops::Bound::Unbounded),
            false,
            |k| !k.starts_with(prefix),
        );
        Ok(match (from_tree, mine) {
            (Some(t), Some(m)) => Some(if t.0 < m.0 { t } else { m }),
            (t, m) => t.or(m),
        })
    }

    /// Every live key under `prefix` (keys only: values can be large).
    pub fn keys_under(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = std::collections::BTreeSet::new();
        for k in self.tree.scan_prefix(prefix).keys() {
            self.ops.read(1);
            out.insert(k.map_err(sled_err)?.to_vec());
        }
        // The base first: the change set's own writes shadow it.
        for layer in self.base.into_iter().chain([&self.writes]) {
            for (k, v) in layer
                .range::<[u8], _>((
                    std::ops::Bound::Included(prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(k, _)| k.starts_with(prefix))
            {
                if v.is_some() {
                    out.insert(k.clone());
                } else {
                    out.remove(k);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Deletes every key under `prefix`.
    pub fn del_under(&mut self, prefix: &[u8]) -> Result<(), StoreError> {
        for k in self.keys_under(prefix)? {
            self.del(k);
        }
        Ok(())
    }

    /// How many keys this change set writes or removes.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// True when the change set writes nothing.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The change set as one sled batch (without the base's writes).
    pub fn into_batch(self) -> sled::Batch {
        batch_of(self.writes)
    }

    /// The change set's writes (without the base's).
    pub fn into_writes(self) -> Writes {
        self.writes
    }
}

/// `writes` as one sled batch.
pub fn batch_of(writes: Writes) -> sled::Batch {
    let mut b = sled::Batch::default();
    for (k, v) in writes {
        match v {
            Some(v) => b.insert(k, v),
            None => b.remove(k),
        }
    }
    b
}

/// One packed map: its key prefix and bucket size.
#[derive(Debug, Clone)]
pub struct Map {
    /// The sled key prefix of its buckets.
    pub prefix: Vec<u8>,
    /// Bucket size in bytes beyond which a bucket splits.
    pub cap: usize,
    /// Entries are mostly added at its end ([`Pending::floor_key_at_end`]).
    pub appends: bool,
}

/// What a rewrite keeps of the entries it did not ask to change (e.g. items below the
/// trim floor are dropped whenever their bucket is rewritten).
pub type Keep<'k> = &'k dyn Fn(&[u8], &[u8]) -> bool;

impl Map {
    /// A map under `prefix` with buckets of up to `cap` bytes.
    pub fn new(prefix: Vec<u8>, cap: usize) -> Self {
        Map {
            prefix,
            cap,
            appends: false,
        }
    }

    /// A map under `prefix` whose entries are mostly added at its end: its buckets are
    /// found through the change set's [`Tails`], when it has them.
    pub fn appending(prefix: Vec<u8>, cap: usize) -> Self {
        Map {
            appends: true,
            ..Map::new(prefix, cap)
        }
    }

    fn key_of(&self, lower: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.prefix.len() + lower.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(lower);
        k
    }

    /// The bucket that holds (or would hold) entry key `k`: its sled key and value.
    pub fn bucket_of(&self, p: &Pending, k: &[u8]) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        if self.appends {
            p.floor_key_at_end(&self.prefix, &self.key_of(k))
        } else {
            p.floor_key(&self.prefix, &self.key_of(k))
        }
    }

    /// [`Map::bucket_of`] for the floor of a map trimmed from its start, which only moves
    /// up: tries the bucket noted by [`Map::note_floor`] first.
    pub fn floor_bucket(
        &self,
        p: &Pending,
        k: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        p.floor_key_hinted(&self.prefix, &self.key_of(k))
    }

    /// Notes sled key `bucket` as the bucket that holds the floor now.
    pub fn note_floor(&self, p: &Pending, bucket: &[u8]) {
        p.note_floor(&self.prefix, bucket);
    }

    /// The first bucket at or after sled key `from` (which must start with the prefix).
    pub fn bucket_from(
        &self,
        p: &Pending,
        from: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        p.ceil_key(&self.prefix, from)
    }

    /// One entry's value.
    pub fn get(&self, p: &Pending, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((_, bucket)) = self.bucket_of(p, k)? else {
            return Ok(None);
        };
        for e in entries(&bucket) {
            let (ek, ev) = e?;
            if ek == k {
                return Ok(Some(ev.to_vec()));
            }
            if ek > k {
                break;
            }
        }
        Ok(None)
    }

    /// Inserts or replaces one entry; returns the value it replaced.
    pub fn put(
        &self,
        p: &mut Pending,
        k: &[u8],
        v: &[u8],
        keep: Keep,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (bkey, bucket) = match self.bucket_of(p, k)? {
            Some(found) => found,
            // Below every bucket: the first bucket takes it and is keyed anew by it.
            None => match self.bucket_from(p, &self.prefix)? {
                Some((old_key, bucket)) => {
                    p.del(old_key);
                    (self.key_of(k), bucket)
                }
                None => (self.key_of(k), Val::Own(new_bucket().into())),
            },
        };
        let mut out = Vec::with_capacity(bucket.len() + entry_len(k, v));
        out.push(FORMAT);
        let mut old = None;
        let mut placed = false;
        let mut greatest = true;
        for e in entries(&bucket) {
            let (ek, ev) = e?;
            if ek == k {
                old = Some(ev.to_vec());
                continue;
            }
            if !placed && ek > k {
                put_entry(&mut out, k, v);
                placed = true;
            }
            if ek > k {
                greatest = false;
            }
            if keep(ek, ev) {
                put_entry(&mut out, ek, ev);
            }
        }
        if !placed {
            put_entry(&mut out, k, v);
        }
        self.store(p, bkey, out, greatest.then_some(k))?;
        Ok(old)
    }

    /// Removes one entry; returns its value.
    pub fn del(
        &self,
        p: &mut Pending,
        k: &[u8],
        keep: Keep,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((bkey, bucket)) = self.bucket_of(p, k)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(bucket.len());
        out.push(FORMAT);
        let mut old = None;
        for e in entries(&bucket) {
            let (ek, ev) = e?;
            if ek == k {
                old = Some(ev.to_vec());
            } else if keep(ek, ev) {
                put_entry(&mut out, ek, ev);
            }
        }
        if old.is_none() {
            return Ok(None);
        }
        if out.len() > 1 && out.len() < self.cap / 4 {
            // Take in the next bucket if both fit, so that deletes do not leave dust.
            let mut after = bkey.clone();
            after.push(0);
            if let Some((nkey, next)) = self.bucket_from(p, &after)? {
                if out.len() + next.len() - 1 <= self.cap {
                    for e in entries(&next) {
                        let (ek, ev) = e?;
                        if keep(ek, ev) {
                            put_entry(&mut out, ek, ev);
                        }
                    }
                    p.del(nkey);
                }
            }
        }
        self.store(p, bkey, out, None)?;
        Ok(old)
    }

    /// Rewrites bucket `bkey` with `out` (an encoded bucket), splitting it if over `cap`;
    /// `appended` is the entry key just added when it is the bucket's greatest.
    fn store(
        &self,
        p: &mut Pending,
        bkey: Vec<u8>,
        out: Vec<u8>,
        appended: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        if out.len() <= 1 {
            p.del(bkey);
            return Ok(());
        }
        if out.len() <= self.cap {
            p.put(bkey, out);
            return Ok(());
        }
        let all = all_entries(&out)?;
        if all.len() < 2 {
            p.put(bkey, out);
            return Ok(());
        }
        let cut = match appended {
            // Appending: the new entry opens the next bucket, this one stays full.
            Some(k) if all.last().map(|(ek, _)| *ek) == Some(k) => all.len() - 1,
            _ => {
                let half = out.len() / 2;
                let mut size = 1;
                let mut cut = all.len() - 1;
                for (i, (k, v)) in all.iter().enumerate() {
                    size += entry_len(k, v);
                    if size >= half {
                        cut = (i + 1).min(all.len() - 1);
                        break;
                    }
                }
                cut
            }
        };
        let mut left = new_bucket();
        for (k, v) in &all[..cut] {
            put_entry(&mut left, k, v);
        }
        let mut right = new_bucket();
        for (k, v) in &all[cut..] {
            put_entry(&mut right, k, v);
        }
        let right_key = self.key_of(all[cut].0);
        p.put(bkey, left);
        p.put(right_key, right);
        Ok(())
    }

    /// Deletes the whole map.
    pub fn clear(&self, p: &mut Pending) -> Result<(), StoreError> {
        p.del_under(&self.prefix)
    }
}

/// Cuts sorted entries into encoded buckets of about `cap` bytes, filled to the brim (for
/// bulk writes: migration). Returns (lower bound, bucket value) pairs.
pub fn pack<'e>(
    sorted: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    cap: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(Vec<u8>, Vec<u8>)> = None;
    for (k, v) in sorted {
        let full = cur
            .as_ref()
            .is_some_and(|(_, b)| b.len() > 1 && b.len() + entry_len(k, v) > cap);
        if full {
            out.extend(cur.take());
        }
        let (_, b) = cur.get_or_insert_with(|| (k.to_vec(), new_bucket()));
        put_entry(b, k, v);
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (sled::Db, sled::Tree) {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        (db, t)
    }

    fn all(map: &Map, t: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for kv in t.scan_prefix(&map.prefix) {
            let (_, v) = kv.unwrap();
            for e in entries(&v) {
                let (k, v) = e.unwrap();
                out.push((k.to_vec(), v.to_vec()));
            }
        }
        out
    }

    /// A change set never answers from the shared lookup once it has written under it, and
    /// a later change set over the same base and tree reads the shared answer.
    #[test]
    fn the_shared_lookup_yields_to_the_change_sets_own_writes() {
        let (_db, t) = tree();
        let ops = OpCounts::default();
        t.insert(b"m/a", &b"1"[..]).unwrap();
        let base = Writes::new();
        let shared = SharedMemo::default();
        let key = |p: &Pending, target: &[u8]| p.floor_key(b"m/", target).unwrap().map(|(k, _)| k);
        let reader = Pending::over_shared(&t, &ops, &base, &shared);
        assert_eq!(key(&reader, b"m/z"), Some(b"m/a".to_vec()));
        let mut p = Pending::over_shared(&t, &ops, &base, &shared);
        p.put(b"m/q".to_vec(), b"2".to_vec());
        assert_eq!(key(&p, b"m/z"), Some(b"m/q".to_vec()));
        // The shared answer is still the one over the base and the tree.
        let read_before = ops.get().0;
        let later = Pending::over_shared(&t, &ops, &base, &shared);
        assert_eq!(key(&later, b"m/z"), Some(b"m/a".to_vec()));
        assert_eq!(
            ops.get().0,
            read_before,
            "answered without reading the tree"
        );
    }

    #[test]
    fn varints_round_trip() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            assert_eq!(get_varint(&b), Some((v, &[][..])));
        }
        assert_eq!(get_varint(&[0x80, 0x80]), None);
    }

    /// Random puts and deletes, each its own change set, against a `BTreeMap`. With
    /// `staged`, change sets are layered over the earlier ones' writes (as `SledStore`
    /// stages a batch) and reach the tree only every few steps; map clears (`del_under`)
    /// are mixed in.
    fn behaves_like_a_btreemap(staged: bool) {
        let (_db, t) = tree();
        let ops = OpCounts::default();
        let map = Map::new(b"m/".to_vec(), 64);
        let other = Map::new(b"m0".to_vec(), 64);
        let mut model = BTreeMap::new();
        let mut base = Writes::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..3000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = format!("{:03}", x % 200).into_bytes();
            let v = vec![b'v'; (x % 23) as usize];
            let mut p = if staged {
                Pending::over(&t, &ops, &base)
            } else {
                Pending::new(&t, &ops)
            };
            if staged && x.is_multiple_of(401) {
                map.clear(&mut p).unwrap();
                model.clear();
            } else if matches!(x % 3, 0) {
                assert_eq!(map.del(&mut p, &k, &|_, _| true).unwrap(), model.remove(&k));
            } else {
                assert_eq!(
                    map.put(&mut p, &k, &v, &|_, _| true).unwrap(),
                    model.insert(k.clone(), v.clone())
                );
            }
            // A neighbouring map whose prefix extends this one's must stay apart.
            other.put(&mut p, b"z", b"neighbour", &|_, _| true).unwrap();
            if staged {
                base.extend(p.into_writes());
                if x.is_multiple_of(7) {
                    t.apply_batch(batch_of(std::mem::take(&mut base))).unwrap();
                }
            } else {
                t.apply_batch(p.into_batch()).unwrap();
            }
            if matches!(step % 97, 0) {
                let p = Pending::over(&t, &ops, &base);
                for (k, v) in &model {
                    assert_eq!(map.get(&p, k).unwrap().as_ref(), Some(v));
                }
                // keys_under, ceil_key and floor_key agree on the buckets.
                let keys = p.keys_under(&map.prefix).unwrap();
                let mut stepped = Vec::new();
                let mut from = map.prefix.clone();
                while let Some((k, _)) = p.ceil_key(&map.prefix, &from).unwrap() {
                    from = k.clone();
                    from.push(0);
                    stepped.push(k);
                }
                assert_eq!(keys, stepped);
                for k in &keys {
                    let floor = p.floor_key(&map.prefix, k).unwrap().map(|(f, _)| f);
                    assert_eq!(floor.as_ref(), Some(k));
                }
                t.apply_batch(batch_of(std::mem::take(&mut base))).unwrap();
                let want: Vec<_> = model.clone().into_iter().collect();
                assert_eq!(all(&map, &t), want);
            }
        }
        t.apply_batch(batch_of(base)).unwrap();
        // Buckets stay within cap (single oversize entries apart) and keys are bounds.
        for kv in t.scan_prefix(&map.prefix) {
            let (bk, v) = kv.unwrap();
            let es = all_entries(&v).unwrap();
            assert!(!es.is_empty());
            assert!(
                v.len() <= 64 || es.len() == 1,
                "bucket of {} bytes",
                v.len()
            );
            assert!(&bk[map.prefix.len()..] <= es[0].0);
        }
    }

    #[test]
    fn a_map_behaves_like_a_btreemap() {
        behaves_like_a_btreemap(false);
    }

    #[test]
    fn a_map_staged_over_earlier_change_sets_behaves_like_a_btreemap() {
        behaves_like_a_btreemap(true);
    }

    #[test]
    fn appends_fill_buckets() {
        let (_db, t) = tree();
        let ops = OpCounts::default();
        let map = Map::new(b"i".to_vec(), 100);
        for n in 0..100u64 {
            let mut p = Pending::new(&t, &ops);
            map.put(&mut p, &n.to_be_bytes(), b"0123456789", &|_, _| true)
                .unwrap();
            t.apply_batch(p.into_batch()).unwrap();
        }
        // 20 bytes an entry, 4 a bucket of at most 100 bytes: 25 buckets, none half empty.
        assert_eq!(t.len(), 25);
    }

    #[test]
    fn reads_see_the_change_set() {
        let (_db, t) = tree();
        let ops = OpCounts::default();
        let map = Map::new(b"m".to_vec(), 40);
        let mut p = Pending::new(&t, &ops);
        for k in [b"b", b"d", b"f", b"h", b"a"] {
            map.put(&mut p, k, b"0123456789", &|_, _| true).unwrap();
        }
        assert_eq!(map.get(&p, b"a").unwrap(), Some(b"0123456789".to_vec()));
        map.del(&mut p, b"d", &|_, _| true).unwrap();
        assert_eq!(map.get(&p, b"d").unwrap(), None);
        t.apply_batch(p.into_batch()).unwrap();
        let got: Vec<_> = all(&map, &t).into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, [b"a", b"b", b"f", b"h"]);
        // A rewrite drops what `keep` refuses.
        let mut p = Pending::new(&t, &ops);
        map.put(&mut p, b"c", b"x", &|k, _| k != b"b").unwrap();
        t.apply_batch(p.into_batch()).unwrap();
        assert!(all(&map, &t).iter().all(|(k, _)| k != b"b"));
    }

    #[test]
    fn pack_fills_buckets_and_corrupt_buckets_are_errors() {
        let es: Vec<(Vec<u8>, Vec<u8>)> = (0..10u8).map(|i| (vec![i], vec![i; 8])).collect();
        let packed = pack(es.iter().map(|(k, v)| (&k[..], &v[..])), 35);
        assert_eq!(packed.len(), 4);
        assert_eq!(packed[1].0, vec![3]);
        let mut back = Vec::new();
        for (_, b) in &packed {
            back.extend(all_entries(b).unwrap().into_iter().map(|(k, _)| k.to_vec()));
        }
        assert_eq!(back, es.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
        let good = &packed[0].1;
        for n in 0..good.len() {
            // Cut at an entry boundary, it is a valid bucket with fewer entries.
            if n >= 1 && matches!((n - 1) % 11, 0) {
                assert!(all_entries(&good[..n]).is_ok());
                continue;
            }
            assert!(all_entries(&good[..n]).is_err(), "len {n}");
        }
        assert!(all_entries(&[9, 1, 1, 1, 1]).is_err());
    }
}
