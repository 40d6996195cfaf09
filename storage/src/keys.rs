//! The key layout of Roost's sled database (schema version 2), all of it, in one place.
//!
//! Everything lives in ONE sled tree ([`TREE`]), so that a sync's worth of
//! [`ChangeSet`](roost_nodes::ChangeSet)s is one group of writes to one tree, applied
//! atomically ([`crate::journal`]; its record is the one key outside that tree,
//! [`JOURNAL`]). Each key starts with a one-byte tag naming its table. Integers are
//! big-endian so that byte order equals numeric order. Strings in keys are a big-endian
//! `u32` length followed by their UTF-8 bytes, so no string is a prefix of another's
//! encoding and `tag + str(node)` is a safe scan prefix.
//!
//! | tag    | key after the tag               | value                                          |
//! |--------|---------------------------------|------------------------------------------------|
//! | `0x00` | `b"schema"`                     | schema version, `u32` BE                       |
//! | `0x00` | `b"last_uid"`                   | highest node uid handed out, `u64` BE          |
//! | `0x01` | `str(node)`                     | node record (`codec::node`)                    |
//! | `0x02` | `uid u64`                       | item counters and trim floor (`codec::head`)   |
//! | `0x03` | `str(node)` + bare JID bytes    | bucket: bare JID → affiliation                 |
//! | `0x05` | `str(node)` + subid bytes       | bucket: subid → subscription                   |
//! | `0x07` | `uid u64` + `seq u64`           | bucket: seq → item                             |
//! | `0x08` | `uid u64` + item id bytes       | bucket: item id → seq                          |
//! | `0x09` | `at u64` `uid u64` `seq u64`    | empty (item expiry, by time)                   |
//!
//! **Buckets** (`0x03`, `0x05`, `0x07`, `0x08`; [`crate::packed`]) hold many entries of one
//! map under one sled key: `prefix + lower bound`, where the prefix names the map (a node's
//! subscriptions, a node's items…) and the lower bound is an entry key no greater than any
//! entry in the bucket. An entry lives in the bucket with the greatest lower bound not above
//! its key. Why: sled 0.34 keeps an in-memory page-table entry (about 300 bytes) for every
//! tree node, and a leaf holds at most 16 keys, so its resident memory grows with the number
//! of keys. Version 1 had one key per item, per item id, per subscription and per
//! affiliation, plus a by-JID index row for the last two (never read: the engine indexes
//! by JID in memory): 22.4 M keys and 834 MB resident after opening the scale data set.
//!
//! **Trimming** (`pubsub#max_items`) is lazy and in bulk: `0x02` holds a *floor* seq below
//! which every item is gone for every read, and the number of live items (at or above the
//! floor). A trim moves the floor; a bucket of items is deleted once all of it is below the
//! floor, and entries below it are dropped whenever their bucket is rewritten anyway. Id
//! index entries pointing below the floor are stale, ignored on read and dropped in the same
//! way; every other index entry is exact.
//!
//! Rows `0x09` are ordered by expiry time so that finding the due ones reads only those.
//! They are not removed with their item or node (that would need a scan): a stale row is
//! recognised when read (no item at that seq) and removed then.
//!
//! A change to this layout (or to a value encoding) that an older Roost could misread must
//! bump [`SCHEMA_VERSION`] and add a migration ([`crate::migrate`]). Version 1 is described
//! in [`crate::v1::keys`].
//!
//! Values may gain optional fields at their end without a new version: a node's
//! `pubsub#roster_groups_allowed`, a subscription's content filter (`x-roost#filter`), an
//! overwritten item's creation seq (XEP-0413, `Item::first_seq`). Each
//! is written only when set, so records without it keep their bytes and every record
//! written before it existed decodes unchanged; an older Roost meeting a record with it
//! refuses it as corrupt (trailing bytes) rather than misreading it.

use roost_nodes::StoreError;

/// The name of the sled tree holding every key below.
pub const TREE: &[u8] = b"roost";

/// The key, in sled's *default* tree, of the record of a commit group being applied
/// ([`crate::journal`]): present on disk only when a crash cut a group short.
pub const JOURNAL: &[u8] = b"roost-journal";

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 2;

/// Tag of the meta table.
pub const META: u8 = 0x00;
/// Tag of node records by name.
pub const NODE: u8 = 0x01;
/// Tag of item counters and trim floors by node uid.
pub const COUNTERS: u8 = 0x02;
/// Tag of affiliation buckets by node.
pub const AFFS: u8 = 0x03;
/// Tag of subscription buckets by node.
pub const SUBS: u8 = 0x05;
/// Tag of item buckets by node uid.
pub const ITEMS: u8 = 0x07;
/// Tag of item id index buckets by node uid.
pub const IDS: u8 = 0x08;
/// Tag of the item expiry index by (time, uid, seq).
pub const EXPIRY: u8 = 0x09;

/// The schema version key.
pub fn schema() -> Vec<u8> {
    meta(b"schema")
}

/// The last-uid key.
pub fn last_uid() -> Vec<u8> {
    meta(b"last_uid")
}

fn meta(name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(META);
    k.extend_from_slice(name);
    k
}

fn put_str(k: &mut Vec<u8>, s: &str) {
    // Lengths beyond u32 cannot come from XMPP (stanzas are far smaller); saturating keeps
    // this total rather than panicking, and such a key simply would not decode back.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    k.extend_from_slice(&len.to_be_bytes());
    k.extend_from_slice(s.as_bytes());
}

fn with_str(tag: u8, s: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + s.len() + 24);
    k.push(tag);
    put_str(&mut k, s);
    k
}

fn with_uid(tag: u8, uid: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(9 + 24);
    k.push(tag);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// Node record key.
pub fn node(name: &str) -> Vec<u8> {
    with_str(NODE, name)
}

/// Counters key.
pub fn counters(uid: u64) -> Vec<u8> {
    with_uid(COUNTERS, uid)
}

/// Prefix of the affiliation buckets of one node.
pub fn affs(node: &str) -> Vec<u8> {
    with_str(AFFS, node)
}

/// Prefix of the subscription buckets of one node.
pub fn subs(node: &str) -> Vec<u8> {
    with_str(SUBS, node)
}

/// Prefix of the item buckets of one node; entry keys are [`seq`].
pub fn items(uid: u64) -> Vec<u8> {
    with_uid(ITEMS, uid)
}

/// Prefix of the item id index buckets of one node; entry keys are the ids' bytes.
pub fn ids(uid: u64) -> Vec<u8> {
    with_uid(IDS, uid)
}

/// An item's entry key in its node's item map.
pub fn seq(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Decodes an item entry key.
pub fn decode_seq(k: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(k)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError(format!("corrupt item seq {k:02x?}")))
}

/// Item expiry key.
pub fn expiry(at: u64, uid: u64, seq: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(25);
    k.push(EXPIRY);
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(&uid.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Bounds-checked reader over a key's bytes.
struct KeyReader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> KeyReader<'a> {
    fn new(key: &'a [u8], tag: u8, what: &'static str) -> Result<Self, StoreError> {
        match key.split_first() {
            Some((&t, rest)) if t == tag => Ok(KeyReader { rest, what }),
            _ => Err(corrupt(what, key)),
        }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    fn u64(&mut self, key: &[u8]) -> Result<u64, StoreError> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| corrupt(self.what, key))
    }

    fn str(&mut self, key: &[u8]) -> Result<&'a str, StoreError> {
        let len = self
            .take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| corrupt(self.what, key))?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|n| self.take(n))
            .ok_or_else(|| corrupt(self.what, key))?;
        std::str::from_utf8(bytes).map_err(|_| corrupt(self.what, key))
    }

    fn end(self, key: &[u8]) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what, key))
        }
    }
}

fn corrupt(what: &str, key: &[u8]) -> StoreError {
    StoreError(format!("corrupt {what} key {key:02x?}"))
}

/// Decodes a node record key into the node name, borrowed from the key.
pub fn decode_node(key: &[u8]) -> Result<&str, StoreError> {
    let mut r = KeyReader::new(key, NODE, "node")?;
    let name = r.str(key)?;
    r.end(key)?;
    Ok(name)
}

/// Decodes a counters key into the uid.
pub fn decode_counters(key: &[u8]) -> Result<u64, StoreError> {
    let mut r = KeyReader::new(key, COUNTERS, "counters")?;
    let uid = r.u64(key)?;
    r.end(key)?;
    Ok(uid)
}

/// Splits a bucket key of a map keyed by node name (`tag` [`AFFS`] or [`SUBS`]) into the
/// node name and the bucket's lower bound.
pub fn decode_node_bucket(tag: u8, key: &[u8]) -> Result<(&str, &[u8]), StoreError> {
    let mut r = KeyReader::new(key, tag, "bucket")?;
    let node = r.str(key)?;
    Ok((node, r.rest))
}

/// Splits a bucket key of a map keyed by node uid (`tag` [`ITEMS`] or [`IDS`]) into the
/// uid and the bucket's lower bound.
pub fn decode_uid_bucket(tag: u8, key: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    let mut r = KeyReader::new(key, tag, "bucket")?;
    let uid = r.u64(key)?;
    Ok((uid, r.rest))
}

/// Decodes an item expiry key into (at, uid, seq).
pub fn decode_expiry(key: &[u8]) -> Result<(u64, u64, u64), StoreError> {
    let mut r = KeyReader::new(key, EXPIRY, "expiry")?;
    let at = r.u64(key)?;
    let uid = r.u64(key)?;
    let seq = r.u64(key)?;
    r.end(key)?;
    Ok((at, uid, seq))
}

/// Encodes a `u64` meta value.
pub fn u64_value(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Decodes a `u64` meta or index value.
pub fn decode_u64_value(what: &str, v: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError(format!("corrupt {what} value {v:02x?}")))
}

/// Decodes the schema version value.
pub fn decode_schema(v: &[u8]) -> Result<u32, StoreError> {
    <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| StoreError(format!("corrupt schema version value {v:02x?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        assert_eq!(decode_node(&node("n/1")).unwrap(), "n/1");
        assert_eq!(decode_counters(&counters(7)).unwrap(), 7);
        let mut k = subs("n");
        k.extend_from_slice(b"sub");
        assert_eq!(decode_node_bucket(SUBS, &k).unwrap(), ("n", &b"sub"[..]));
        assert!(decode_node_bucket(AFFS, &k).is_err());
        let mut k = items(3);
        k.extend_from_slice(&seq(9));
        let (uid, lo) = decode_uid_bucket(ITEMS, &k).unwrap();
        assert_eq!((uid, decode_seq(lo).unwrap()), (3, 9));
        assert_eq!(decode_expiry(&expiry(5, 3, 9)).unwrap(), (5, 3, 9));
        assert!(decode_expiry(&expiry(5, 3, 9)[..24]).is_err());
    }

    #[test]
    fn prefixes_do_not_collide() {
        // "a" must not be a prefix of "ab" once encoded.
        assert!(!node("ab").starts_with(&node("a")));
        assert!(!subs("ab").starts_with(&subs("a")));
        assert!(!affs("ab").starts_with(&affs("a")));
        assert!(!items(2).starts_with(&items(1)));
        assert!(!ids(1).starts_with(&items(1)));
    }

    #[test]
    fn item_buckets_sort_by_seq() {
        let at = |uid, s| {
            let mut k = items(uid);
            k.extend_from_slice(&seq(s));
            k
        };
        assert!(at(1, 255) < at(1, 256));
        assert!(at(1, u64::MAX) < at(2, 0));
        assert!(expiry(255, 9, 9) < expiry(256, 0, 0));
    }

    #[test]
    fn truncated_keys_are_errors() {
        let k = node("node");
        for n in 0..k.len() {
            assert!(decode_node(&k[..n]).is_err());
        }
        let mut bad = node("x");
        bad.push(0);
        assert!(decode_node(&bad).is_err());
        assert!(decode_uid_bucket(ITEMS, &items(1)[..5]).is_err());
        assert!(decode_seq(&[1, 2, 3]).is_err());
    }
}
