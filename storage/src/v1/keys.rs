//! The version-1 key layout (Roost up to the layout change of issue 13), frozen: what
//! [`crate::migrate`] reads. The current layout is [`crate::keys`].
//!
//! Everything lives in ONE sled tree ([`TREE`]) so that a whole
//! [`ChangeSet`](roost_nodes::ChangeSet) becomes one `sled::Batch`, which sled applies
//! atomically. Each key starts with a one-byte tag naming its table. Integers are
//! big-endian so that byte order equals numeric order (items scan in `seq` order).
//! Strings are written as a big-endian `u32` length followed by their UTF-8 bytes, so no
//! string is a prefix of another's encoding and `tag + str(node)` is a safe scan prefix.
//!
//! | tag    | key after the tag                  | value                                  |
//! |--------|------------------------------------|----------------------------------------|
//! | `0x00` | `b"schema"`                        | schema version, `u32` BE               |
//! | `0x00` | `b"last_uid"`                      | highest node uid handed out, `u64` BE  |
//! | `0x01` | `str(node)`                        | node record (`codec::node`)            |
//! | `0x02` | `uid u64`                          | item counters (`codec::counters`)      |
//! | `0x03` | `str(node) str(bare jid)`          | affiliation (`codec::affiliation`)     |
//! | `0x04` | `str(bare jid) str(node)`          | affiliation (mirror of `0x03`)         |
//! | `0x05` | `str(node) str(subid)`             | subscription (`codec::subscription`)   |
//! | `0x06` | `str(bare jid) str(node) str(subid)` | empty (index of `0x05` by JID)       |
//! | `0x07` | `uid u64` `seq u64`                | item (`codec::item`)                   |
//! | `0x08` | `uid u64` `str(item id)`           | the item's `seq`, `u64` BE             |
//! | `0x09` | `at u64` `uid u64` `seq u64`       | empty (item expiry, by time)           |
//!
//! Rows `0x09` are ordered by expiry time so that finding the due ones reads only those.
//! They are not removed with their item or node (that would need a scan): a stale row is
//! recognised when read (no item at that seq) and removed then. Older Roosts never read
//! tag `0x09`, so adding it needed no schema bump.
//!
//! Rows `0x04` and `0x06` are indexes: every write of `0x03`/`0x05` writes or removes
//! them in the same batch. A change to this layout (or to a value encoding) that an older
//! Roost could misread must bump [`SCHEMA_VERSION`].

use roost_nodes::StoreError;

/// The name of the sled tree holding every key below.
pub const TREE: &[u8] = b"roost";

/// The layout version this code reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Tag of the meta table.
pub const META: u8 = 0x00;
/// Tag of node records by name.
pub const NODE: u8 = 0x01;
/// Tag of item counters by node uid.
pub const COUNTERS: u8 = 0x02;
/// Tag of affiliations by (node, jid).
pub const AFF: u8 = 0x03;
/// Tag of affiliations by (jid, node).
pub const AFF_BY_JID: u8 = 0x04;
/// Tag of subscriptions by (node, subid).
pub const SUB: u8 = 0x05;
/// Tag of the subscription index by (bare jid, node, subid).
pub const SUB_BY_JID: u8 = 0x06;
/// Tag of items by (uid, seq).
pub const ITEM: u8 = 0x07;
/// Tag of the item id index by (uid, id).
pub const ITEM_ID: u8 = 0x08;

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

fn tagged(tag: u8) -> Vec<u8> {
    vec![tag]
}

/// Node record key.
pub fn node(name: &str) -> Vec<u8> {
    let mut k = tagged(NODE);
    put_str(&mut k, name);
    k
}

/// Counters key.
pub fn counters(uid: u64) -> Vec<u8> {
    let mut k = tagged(COUNTERS);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// Affiliation key by node then jid.
pub fn aff(node: &str, jid: &str) -> Vec<u8> {
    let mut k = aff_prefix(node);
    put_str(&mut k, jid);
    k
}

/// Prefix of every affiliation of one node.
pub fn aff_prefix(node: &str) -> Vec<u8> {
    let mut k = tagged(AFF);
    put_str(&mut k, node);
    k
}

/// Affiliation key by jid then node.
pub fn aff_by_jid(jid: &str, node: &str) -> Vec<u8> {
    let mut k = tagged(AFF_BY_JID);
    put_str(&mut k, jid);
    put_str(&mut k, node);
    k
}

/// Subscription key.
pub fn sub(node: &str, subid: &str) -> Vec<u8> {
    let mut k = sub_prefix(node);
    put_str(&mut k, subid);
    k
}

/// Prefix of every subscription of one node.
pub fn sub_prefix(node: &str) -> Vec<u8> {
    let mut k = tagged(SUB);
    put_str(&mut k, node);
    k
}

/// Subscription index key.
pub fn sub_by_jid(bare: &str, node: &str, subid: &str) -> Vec<u8> {
    let mut k = tagged(SUB_BY_JID);
    put_str(&mut k, bare);
    put_str(&mut k, node);
    put_str(&mut k, subid);
    k
}

/// Item key.
pub fn item(uid: u64, seq: u64) -> Vec<u8> {
    let mut k = item_prefix(uid);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Prefix of every item of one node.
pub fn item_prefix(uid: u64) -> Vec<u8> {
    let mut k = tagged(ITEM);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// Item id index key.
pub fn item_id(uid: u64, id: &str) -> Vec<u8> {
    let mut k = item_id_prefix(uid);
    put_str(&mut k, id);
    k
}

/// Prefix of every item id index row of one node.
pub fn item_id_prefix(uid: u64) -> Vec<u8> {
    let mut k = tagged(ITEM_ID);
    k.extend_from_slice(&uid.to_be_bytes());
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

    fn str(&mut self, key: &[u8]) -> Result<String, StoreError> {
        let len = self
            .take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| corrupt(self.what, key))?;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|n| self.take(n))
            .ok_or_else(|| corrupt(self.what, key))?;
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(self.what, key))
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

/// Decodes a node record key into the node name.
pub fn decode_node(key: &[u8]) -> Result<String, StoreError> {
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

/// Decodes an affiliation key into (node, jid).
pub fn decode_aff(key: &[u8]) -> Result<(String, String), StoreError> {
    let mut r = KeyReader::new(key, AFF, "affiliation")?;
    let node = r.str(key)?;
    let jid = r.str(key)?;
    r.end(key)?;
    Ok((node, jid))
}

/// Decodes an affiliation-by-jid key into (jid, node).
pub fn decode_aff_by_jid(key: &[u8]) -> Result<(String, String), StoreError> {
    let mut r = KeyReader::new(key, AFF_BY_JID, "affiliation index")?;
    let jid = r.str(key)?;
    let node = r.str(key)?;
    r.end(key)?;
    Ok((jid, node))
}

/// Decodes a subscription key into (node, subid).
pub fn decode_sub(key: &[u8]) -> Result<(String, String), StoreError> {
    let mut r = KeyReader::new(key, SUB, "subscription")?;
    let node = r.str(key)?;
    let subid = r.str(key)?;
    r.end(key)?;
    Ok((node, subid))
}

/// Decodes a subscription index key into (bare jid, node, subid).
pub fn decode_sub_by_jid(key: &[u8]) -> Result<(String, String, String), StoreError> {
    let mut r = KeyReader::new(key, SUB_BY_JID, "subscription index")?;
    let bare = r.str(key)?;
    let node = r.str(key)?;
    let subid = r.str(key)?;
    r.end(key)?;
    Ok((bare, node, subid))
}

/// Decodes an item key into (uid, seq).
pub fn decode_item(key: &[u8]) -> Result<(u64, u64), StoreError> {
    let mut r = KeyReader::new(key, ITEM, "item")?;
    let uid = r.u64(key)?;
    let seq = r.u64(key)?;
    r.end(key)?;
    Ok((uid, seq))
}

/// Item expiry key.
pub fn expiry(at: u64, uid: u64, seq: u64) -> Vec<u8> {
    let mut k = tagged(EXPIRY);
    k.extend_from_slice(&at.to_be_bytes());
    k.extend_from_slice(&uid.to_be_bytes());
    k.extend_from_slice(&seq.to_be_bytes());
    k
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

/// Decodes an item id index key into (uid, id).
pub fn decode_item_id(key: &[u8]) -> Result<(u64, String), StoreError> {
    let mut r = KeyReader::new(key, ITEM_ID, "item id")?;
    let uid = r.u64(key)?;
    let id = r.str(key)?;
    r.end(key)?;
    Ok((uid, id))
}

/// Encodes a `u64` meta or index value.
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
        assert_eq!(
            decode_aff(&aff("n", "a@b")).unwrap(),
            ("n".into(), "a@b".into())
        );
        assert_eq!(
            decode_aff_by_jid(&aff_by_jid("a@b", "n")).unwrap(),
            ("a@b".into(), "n".into())
        );
        assert_eq!(
            decode_sub(&sub("n", "s1")).unwrap(),
            ("n".into(), "s1".into())
        );
        assert_eq!(
            decode_sub_by_jid(&sub_by_jid("a@b", "n", "s")).unwrap(),
            ("a@b".into(), "n".into(), "s".into())
        );
        assert_eq!(decode_item(&item(3, 9)).unwrap(), (3, 9));
        assert_eq!(decode_item_id(&item_id(3, "x")).unwrap(), (3, "x".into()));
        assert_eq!(decode_expiry(&expiry(5, 3, 9)).unwrap(), (5, 3, 9));
        assert!(decode_expiry(&expiry(5, 3, 9)[..24]).is_err());
        assert!(decode_expiry(&item(3, 9)).is_err());
    }

    #[test]
    fn prefixes_do_not_collide() {
        // "a" must not be a prefix of "ab" once encoded.
        assert!(!node("ab").starts_with(&node("a")));
        assert!(!aff("ab", "j").starts_with(&aff_prefix("a")));
        assert!(!sub("ab", "s").starts_with(&sub_prefix("a")));
        assert!(item(1, 5).starts_with(&item_prefix(1)));
        assert!(!item(2, 5).starts_with(&item_prefix(1)));
    }

    #[test]
    fn item_keys_sort_by_seq() {
        assert!(item(1, 255) < item(1, 256));
        assert!(item(1, u64::MAX) < item(2, 0));
        // Expiry rows sort by time first, whatever the node.
        assert!(expiry(255, 9, 9) < expiry(256, 0, 0));
    }

    #[test]
    fn truncated_keys_are_errors() {
        let k = aff("node", "jid@x");
        for n in 0..k.len() {
            assert!(decode_aff(&k[..n]).is_err());
        }
        assert!(decode_item(&node("x")).is_err());
        let mut bad = node("x");
        bad.push(0);
        assert!(decode_node(&bad).is_err());
    }
}
