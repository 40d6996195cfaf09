//! The commit group's record: a settle's writes made atomic without a `sled::Batch`.
//!
//! sled 0.34 makes a `Batch` atomic by writing a manifest into a log buffer of its own: every
//! `apply_batch` seals and writes out a buffer (a `pwrite` plus a `sync_file_range` waited
//! for, handed to sled's I/O thread pool, whose idle threads all wake) before the batch's
//! writes, and the flush that follows writes a second one. For the small groups a moderate
//! load produces (one or two requests per sync) that manifest cost more CPU than the writes
//! themselves (docs/benchmarks.md, "The commit group's record").
//!
//! Instead, a group of up to [`MAX_BYTES`] is settled as: the whole group encoded as one
//! value, the *record*, inserted under [`keys::JOURNAL`] in sled's default tree (one log
//! message: sled recovers it whole or not at all); then each write on its own; then the
//! record removed. sled recovers a prefix of its log, in order, so after a crash the durable
//! state is one of:
//!
//! * no record: every group before is whole and the next had not begun;
//! * the record, and some or all of its writes: [`replay`], on opening, applies the record's
//!   writes again (each puts or removes a key outright, so applying one twice is harmless)
//!   and then removes the record.
//!
//! A larger group goes to sled as one `Batch`, as before (its manifest is a small part of
//! its cost, and a record beyond a quarter of a log segment would be written to a file of
//! its own). A group of one write needs no record: one insert is atomic already.
//!
//! A Roost older than this module does not replay a record: after a crash, open the data
//! directory once with this release or a later one before going back to an older one.

use crate::keys;
use crate::packed::{batch_of, Writes};
use roost_nodes::StoreError;

/// Groups whose keys and values take more bytes than this are applied as one `sled::Batch`.
/// Well under a quarter of a log segment ([`crate::SEGMENT_SIZE`]), where sled would write
/// the record to a blob file of its own.
pub const MAX_BYTES: usize = 64 * 1024;

/// The record's format version, its first byte.
const FORMAT: u8 = 1;
const REMOVE: u8 = 0;
const PUT: u8 = 1;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// Applies `writes` to `tree` atomically as far as a crash is concerned (see the module
/// documentation); durable after the next flush of `db`.
pub fn apply(db: &sled::Db, tree: &sled::Tree, writes: Writes) -> Result<(), StoreError> {
    if writes.len() > 1 && size(&writes) <= MAX_BYTES {
        let mut record = Vec::new();
        encode_into(&mut record, &writes);
        db.insert(keys::JOURNAL, record).map_err(sled_err)?;
        apply_each(tree, writes)?;
        db.remove(keys::JOURNAL).map_err(sled_err)?;
        Ok(())
    } else {
        tree.apply_batch(batch_of(writes)).map_err(sled_err)
    }
}

/// Applies `writes` to `tree` one by one, in key order: atomic only as far as whoever calls
/// it has a record of the group (here, or the commit log's, [`crate::wal`]).
pub(crate) fn apply_each(tree: &sled::Tree, writes: Writes) -> Result<(), StoreError> {
    for (k, v) in writes {
        match v {
            Some(v) => tree.insert(k, v),
            None => tree.remove(k),
        }
        .map_err(sled_err)?;
    }
    Ok(())
}

/// Finishes the group a crash interrupted, if any: applies its record's writes and removes
/// the record, durably. Returns how many writes it applied.
pub fn replay(db: &sled::Db, tree: &sled::Tree) -> Result<Option<usize>, StoreError> {
    let Some(record) = db.get(keys::JOURNAL).map_err(sled_err)? else {
        return Ok(None);
    };
    let writes = decode(&record).map_err(|what| {
        StoreError(format!(
            "the record of the last commit group (key {:?} of sled's default tree) is \
             damaged ({what}): the store cannot tell which of its writes reached the disk; \
             restore a backup",
            String::from_utf8_lossy(keys::JOURNAL)
        ))
    })?;
    let n = writes.len();
    tree.apply_batch(batch_of(writes)).map_err(sled_err)?;
    db.remove(keys::JOURNAL).map_err(sled_err)?;
    db.flush().map_err(sled_err)?;
    Ok(Some(n))
}

pub(crate) fn size(writes: &Writes) -> usize {
    writes
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()))
        .sum()
}

/// Appends the record of `writes` to `out`: the format byte, then per write the key's
/// length (u32, little-endian), the key, [`PUT`] with the value's length and the value, or
/// [`REMOVE`]. The commit log ([`crate::wal`]) stores groups in the same encoding.
pub(crate) fn encode_into(out: &mut Vec<u8>, writes: &Writes) {
    out.reserve(1 + size(writes) + writes.len() * 9);
    out.push(FORMAT);
    for (k, v) in writes {
        out.extend_from_slice(&len32(k.len()).to_le_bytes());
        out.extend_from_slice(k);
        match v {
            Some(v) => {
                out.push(PUT);
                out.extend_from_slice(&len32(v.len()).to_le_bytes());
                out.extend_from_slice(v);
            }
            None => out.push(REMOVE),
        }
    }
}

fn len32(n: usize) -> u32 {
    // Keys and values are bounded far below this by the service's limits (item size,
    // bucket size); a larger one would be a bug, not input.
    u32::try_from(n).expect("a stored key or value is smaller than 4 GiB")
}

/// The writes of a record, or what is wrong with it.
pub(crate) fn decode(record: &[u8]) -> Result<Writes, &'static str> {
    let mut r = Reader(record);
    if r.take(1) != Some(&[FORMAT][..]) {
        return Err("unknown format");
    }
    let mut writes = Writes::new();
    while !r.0.is_empty() {
        let write = (|| {
            let key = r.sized()?.to_vec();
            let value = match r.take(1)?[0] {
                PUT => Some(Some(sled::IVec::from(r.sized()?))),
                REMOVE => Some(None),
                _ => None,
            };
            Some((key, value))
        })();
        match write {
            Some((key, Some(value))) => writes.insert(key, value),
            Some((_, None)) => return Err("unknown write kind"),
            None => return Err("truncated"),
        };
    }
    Ok(writes)
}

/// The unread rest of a record.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// A length (u32, little-endian) and that many bytes.
    fn sized(&mut self) -> Option<&'a [u8]> {
        let n = self.take(4)?;
        self.take(u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as usize)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn open(dir: &std::path::Path) -> (sled::Db, sled::Tree) {
        // Through open_sled: a database just dropped may keep its lock a moment (sled's flusher).
        let db = crate::open_sled(&crate::sled_config(dir)).unwrap();
        let tree = db.open_tree(keys::TREE).unwrap();
        (db, tree)
    }

    fn encode(w: &Writes) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(&mut out, w);
        out
    }

    fn contents(tree: &sled::Tree) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree.iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
        list.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    /// A group of writes from (key, value or `None` for a removal) pairs.
    pub(crate) fn writes(list: &[(&str, Option<&str>)]) -> Writes {
        list.iter()
            .map(|(k, v)| {
                (
                    k.as_bytes().to_vec(),
                    v.map(|v| sled::IVec::from(v.as_bytes())),
                )
            })
            .collect()
    }

    proptest! {
        #[test]
        fn records_decode_to_their_writes(
            w in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..100)),
                0..20,
            )
        ) {
            let w: Writes = w.into_iter().map(|(k, v)| (k, v.map(sled::IVec::from))).collect();
            prop_assert_eq!(decode(&encode(&w)).unwrap(), w);
        }
    }

    #[test]
    fn damaged_records_are_refused_with_what_to_do() {
        let rec = encode(&writes(&[("a", Some("1")), ("b", None)]));
        for (bad, what) in [
            (&rec[..rec.len() - 1], "truncated"),
            (&rec[..3], "truncated"),
            (&[9u8][..], "unknown format"),
            (&[][..], "unknown format"),
        ] {
            assert_eq!(decode(bad), Err(what));
        }
        let mut kind = rec.clone();
        // The first write's kind byte: after the format byte, the key's length and the key.
        kind[6] = 7;
        assert_eq!(decode(&kind), Err("unknown write kind"));
        let dir = tempfile::tempdir().unwrap();
        let (db, tree) = open(dir.path());
        db.insert(keys::JOURNAL, &rec[..3]).unwrap();
        let e = replay(&db, &tree).unwrap_err().0;
        assert!(
            e.contains("truncated") && e.contains("restore a backup"),
            "{e}"
        );
    }

    #[test]
    fn a_group_leaves_no_record_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (db, tree) = open(dir.path());
        apply(&db, &tree, writes(&[("a", Some("1")), ("b", Some("2"))])).unwrap();
        apply(&db, &tree, writes(&[("a", None), ("c", Some("3"))])).unwrap();
        assert_eq!(db.get(keys::JOURNAL).unwrap(), None);
        assert_eq!(contents(&tree), pairs(&[("b", "2"), ("c", "3")]));
    }

    /// What a crash leaves when the record and only some of its writes reached the disk:
    /// opening again completes the group. Also when all of them did (the record's removal
    /// was lost): applying them again changes nothing.
    #[test]
    fn a_group_cut_short_is_completed_on_opening() {
        for done in 0..=3 {
            let dir = tempfile::tempdir().unwrap();
            let group = writes(&[("a", None), ("b", Some("new")), ("c", Some("3"))]);
            {
                let (db, tree) = open(dir.path());
                apply(&db, &tree, writes(&[("a", Some("1")), ("b", Some("old"))])).unwrap();
                db.insert(keys::JOURNAL, encode(&group)).unwrap();
                for (k, v) in group.clone().into_iter().take(done) {
                    match v {
                        Some(v) => tree.insert(k, v).unwrap(),
                        None => tree.remove(k).unwrap(),
                    };
                }
                db.flush().unwrap();
            }
            let (db, tree) = open(dir.path());
            assert_eq!(replay(&db, &tree).unwrap(), Some(3), "{done} writes done");
            assert_eq!(db.get(keys::JOURNAL).unwrap(), None);
            let want = pairs(&[("b", "new"), ("c", "3")]);
            assert_eq!(contents(&tree), want, "{done} writes done");
            assert_eq!(replay(&db, &tree).unwrap(), None);
        }
    }

    #[test]
    fn large_and_single_groups_are_applied_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (db, tree) = open(dir.path());
        let big = "x".repeat(MAX_BYTES);
        apply(&db, &tree, writes(&[("a", Some(&big)), ("b", Some("2"))])).unwrap();
        apply(&db, &tree, writes(&[("c", Some("3"))])).unwrap();
        assert_eq!(db.get(keys::JOURNAL).unwrap(), None);
        assert_eq!(contents(&tree).len(), 3);
    }

    /// The same through the store: a publish's group (node record, counters, item, id
    /// index) cut short after its first write is whole once the directory is opened again.
    #[test]
    fn the_store_completes_a_cut_short_group_when_opened() {
        use roost_nodes::{BareJid, Change, ChangeSet, Item, Jid, NodeConfig, NodeRecord, Store};
        let dir = tempfile::tempdir().unwrap();
        let rec = NodeRecord {
            name: "n".into(),
            uid: 1,
            creator: BareJid::new("o@example.org").unwrap(),
            created: 1,
            config: NodeConfig::default(),
        };
        let item = Item {
            id: "i".into(),
            seq: 1,
            first_seq: None,
            publisher: Jid::new("o@example.org/r").unwrap(),
            published: 5,
            payload: "<x/>".into(),
        };
        {
            let s = crate::SledStore::open(dir.path()).unwrap();
            s.stage(&ChangeSet(vec![
                Change::PutNode(rec.clone()),
                Change::PutItem {
                    uid: 1,
                    item: item.clone(),
                },
            ]))
            .unwrap();
            let group = {
                // Neither applied nor logged: as if the process died here.
                let mut staged = s.lock();
                staged.group.clear();
                std::mem::take(&mut staged.writes)
            };
            assert!(group.len() > 2, "{group:?}");
            s.db.insert(keys::JOURNAL, encode(&group)).unwrap();
            let (k, v) = group.into_iter().next().unwrap();
            s.tree.insert(k, v.unwrap()).unwrap();
            s.db.flush().unwrap();
        }
        let mut s = crate::SledStore::open(dir.path()).unwrap();
        let snap = s.load().unwrap();
        assert_eq!(snap.nodes.get("n").map(|(r, _)| r), Some(&rec));
        assert_eq!(s.item(1, "i").unwrap(), Some(item));
        assert_eq!(s.db.get(keys::JOURNAL).unwrap(), None);
    }
}
