//! How one [`Change`] becomes writes on the schema-2 layout ([`crate::keys`]).

use crate::codec::{self, Head};
use crate::keys;
use crate::packed::{Map, Pending};
use roost_nodes::{Affiliation, Change, Item, StoreError};

/// Bucket size of a node's items. A sled leaf holds up to 16 buckets and is rewritten
/// whole every tenth change to it, so this is traded between keys (memory) and bytes
/// written per publish; chosen by measurement (docs/benchmarks.md).
pub const ITEM_BUCKET: usize = 4096;
/// Bucket size of a node's item id index.
pub const ID_BUCKET: usize = 2048;
/// Bucket size of a node's subscriptions.
pub const SUB_BUCKET: usize = 4096;
/// Bucket size of a node's affiliations.
pub const AFF_BUCKET: usize = 2048;

/// A node's items, by seq.
pub fn items(uid: u64) -> Map {
    Map::appending(keys::items(uid), ITEM_BUCKET)
}

/// A node's item id index: id → seq. Appending: the ids the engine generates grow.
pub fn ids(uid: u64) -> Map {
    Map::appending(keys::ids(uid), ID_BUCKET)
}

/// A node's subscriptions, by subid.
pub fn subs(node: &str) -> Map {
    Map::new(keys::subs(node), SUB_BUCKET)
}

/// A node's affiliations, by bare JID.
pub fn affs(node: &str) -> Map {
    Map::new(keys::affs(node), AFF_BUCKET)
}

fn seq_of(k: &[u8]) -> u64 {
    // A malformed key counts as live: it is kept, and reported by whoever decodes it.
    keys::decode_seq(k).unwrap_or(u64::MAX)
}

fn index_seq(v: &[u8]) -> u64 {
    keys::decode_u64_value("item id index", v).unwrap_or(u64::MAX)
}

/// Reads a node's item head through the change set (default when absent).
pub fn head(p: &Pending, uid: u64) -> Result<Head, StoreError> {
    match p.get(&keys::counters(uid))? {
        Some(v) => codec::decode_head(&v),
        None => Ok(Head::default()),
    }
}

fn put_head(p: &mut Pending, uid: u64, h: &Head) {
    p.put(keys::counters(uid), codec::head(h));
}

/// Applies one change to the change set.
pub fn apply(p: &mut Pending, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::PutNode(rec) => {
            p.put(keys::node(&rec.name), codec::node(rec));
            let last = match p.get(&keys::last_uid())? {
                Some(v) => keys::decode_u64_value("last_uid", &v)?,
                None => 0,
            };
            if rec.uid > last {
                p.put(keys::last_uid(), keys::u64_value(rec.uid).to_vec());
            }
        }
        Change::DeleteNode { name, uid } => {
            p.del(keys::node(name));
            p.del(keys::counters(*uid));
            items(*uid).clear(p)?;
            ids(*uid).clear(p)?;
            affs(name).clear(p)?;
            subs(name).clear(p)?;
        }
        Change::PutCounters { uid, counters } => {
            let mut h = head(p, *uid)?;
            h.counters = *counters;
            put_head(p, *uid, &h);
        }
        Change::PutAffiliation {
            node,
            jid,
            affiliation,
        } => {
            let map = affs(node);
            let k = jid.as_str().as_bytes();
            if *affiliation == Affiliation::None {
                map.del(p, k, &|_, _| true)?;
            } else {
                map.put(p, k, &codec::affiliation(*affiliation), &|_, _| true)?;
            }
        }
        Change::PutSubscription { node, sub } => {
            subs(node).put(
                p,
                sub.subid.as_bytes(),
                &codec::subscription(sub),
                &|_, _| true,
            )?;
        }
        Change::DeleteSubscription { node, subid, .. } => {
            subs(node).del(p, subid.as_bytes(), &|_, _| true)?;
        }
        Change::PutItem { uid, item } => put_item(p, *uid, item)?,
        Change::DeleteItem { uid, id, seq } => {
            let mut h = head(p, *uid)?;
            if *seq >= h.floor {
                let floor = h.floor;
                let keep = |k: &[u8], _: &[u8]| seq_of(k) >= floor;
                if let Some(old) = items(*uid).del(p, &keys::seq(*seq), &keep)? {
                    let old_id = codec::decode_item_id(&old)?;
                    del_id_if_at(p, *uid, &old_id, *seq, floor)?;
                    h.live = h.live.saturating_sub(1);
                    put_head(p, *uid, &h);
                }
            }
            del_id_if_at(p, *uid, id, *seq, h.floor)?;
        }
        Change::PurgeItems { uid } => {
            items(*uid).clear(p)?;
            ids(*uid).clear(p)?;
            let mut h = head(p, *uid)?;
            h.floor = 0;
            h.live = 0;
            put_head(p, *uid, &h);
        }
        Change::TrimItems { uid, keep } => trim(p, *uid, *keep)?,
        Change::ScheduleExpiry { at, uid, seq } => p.put(keys::expiry(*at, *uid, *seq), Vec::new()),
        Change::UnscheduleExpiry { at, uid, seq } => p.del(keys::expiry(*at, *uid, *seq)),
    }
    Ok(())
}

fn put_item(p: &mut Pending, uid: u64, item: &Item) -> Result<(), StoreError> {
    let mut h = head(p, uid)?;
    if item.seq < h.floor {
        // Only a caller other than the engine (whose seqs only grow) gets here.
        unfloor(p, uid, &mut h)?;
    }
    let floor = h.floor;
    let keep_item = |k: &[u8], _: &[u8]| seq_of(k) >= floor;
    let keep_id = |_: &[u8], v: &[u8]| index_seq(v) >= floor;
    let (items, ids) = (items(uid), ids(uid));
    // Ids are unique within a node: an id stored at another seq is replaced. The index
    // entry is written right after it is read (one read of its bucket).
    let old_seq = ids.get(p, item.id.as_bytes())?;
    ids.put(p, item.id.as_bytes(), &keys::u64_value(item.seq), &keep_id)?;
    if let Some(old_seq) = old_seq {
        let old_seq = keys::decode_u64_value("item id index", &old_seq)?;
        if old_seq != item.seq
            && old_seq >= floor
            && items.del(p, &keys::seq(old_seq), &keep_item)?.is_some()
        {
            h.live = h.live.saturating_sub(1);
        }
    }
    match items.put(p, &keys::seq(item.seq), &codec::item(item), &keep_item)? {
        // Overwriting a seq that held another id: that id no longer exists.
        Some(old) => {
            let old_id = codec::decode_item_id(&old)?;
            if old_id != item.id {
                del_id_if_at(p, uid, &old_id, item.seq, floor)?;
            }
        }
        None => h.live += 1,
    }
    put_head(p, uid, &h);
    Ok(())
}

/// Removes the index entry of `id` if it points at `seq` (and not at a newer item).
fn del_id_if_at(
    p: &mut Pending,
    uid: u64,
    id: &str,
    seq: u64,
    floor: u64,
) -> Result<(), StoreError> {
    let map = ids(uid);
    if let Some(v) = map.get(p, id.as_bytes())? {
        if keys::decode_u64_value("item id index", &v)? == seq {
            map.del(p, id.as_bytes(), &|_, v| index_seq(v) >= floor)?;
        }
    }
    Ok(())
}

/// Keeps only the `keep` newest items: moves the floor past the oldest live ones and
/// deletes the buckets that fall wholly below it. Reads the buckets it walks, usually one.
fn trim(p: &mut Pending, uid: u64, keep: u64) -> Result<(), StoreError> {
    let mut h = head(p, uid)?;
    let Some(excess) = h.live.checked_sub(keep).filter(|e| *e > 0) else {
        return Ok(());
    };
    let map = items(uid);
    let mut bucket = match map.floor_bucket(p, &keys::seq(h.floor))? {
        Some(b) => Some(b),
        None => map.bucket_from(p, &map.prefix)?,
    };
    let mut skipped = 0u64;
    let mut new_floor = None;
    let mut last_seen = h.floor;
    let mut emptied = Vec::new();
    while let Some((bkey, value)) = bucket {
        let mut last_in_bucket = None;
        for e in crate::packed::entries(&value) {
            let (k, _) = e?;
            let s = keys::decode_seq(k)?;
            last_in_bucket = Some(s);
            if s < h.floor || new_floor.is_some() {
                continue;
            }
            if skipped < excess {
                skipped += 1;
                last_seen = s;
            } else {
                new_floor = Some(s);
            }
        }
        if new_floor.is_some() {
            map.note_floor(p, &bkey);
            break;
        }
        // Every entry of this bucket is now below the floor.
        if last_in_bucket.is_some() {
            emptied.push(bkey.clone());
        }
        let mut after = bkey;
        after.push(0);
        bucket = map.bucket_from(p, &after)?;
    }
    h.floor = new_floor.unwrap_or(last_seen.saturating_add(1));
    h.live = if new_floor.is_some() {
        h.live - skipped
    } else {
        // Ran out of items: the head counted more than there were.
        0
    };
    for k in emptied {
        p.del(k);
    }
    put_head(p, uid, &h);
    Ok(())
}

/// Takes everything below the floor off the disk, items and index entries, and resets the
/// floor to 0, so that an item may be put below the old floor.
fn unfloor(p: &mut Pending, uid: u64, h: &mut Head) -> Result<(), StoreError> {
    let floor = h.floor;
    for (map, is_items) in [(items(uid), true), (ids(uid), false)] {
        for bkey in p.keys_under(&map.prefix)? {
            let Some(value) = p.get(&bkey)? else { continue };
            let mut out = crate::packed::new_bucket();
            for e in crate::packed::entries(&value) {
                let (k, v) = e?;
                let s = if is_items { seq_of(k) } else { index_seq(v) };
                if s >= floor {
                    crate::packed::put_entry(&mut out, k, v);
                }
            }
            if out.len() > 1 {
                p.put(bkey, out);
            } else {
                p.del(bkey);
            }
        }
    }
    h.floor = 0;
    Ok(())
}
