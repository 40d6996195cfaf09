//! [`Tails`]: the last bucket of maps that grow at their end, kept between change sets.

use super::{sled_err, Pending, Val};
use roost_nodes::StoreError;
use std::collections::BTreeMap;

/// The greatest bucket key of maps that grow at their end (a node's items: seqs only grow;
/// its id index: generated ids grow), over the tree and the base of writes staged on it, so
/// that finding the bucket of an appended entry is one point read instead of a reverse
/// range over sled (which clones a leaf at its first step). Learnt on a map's first append,
/// then kept up to date by its owner, who must report every write it adds to the base
/// ([`Tails::wrote`]) and [`Tails::clear`] it whenever the tree changes otherwise. The
/// prefixes of the maps it knows must never be prefixes of one another (a map kind's
/// prefixes are of one length).
///
/// It also remembers where such a map's floor was ([`Pending::floor_key_hinted`]): a hint
/// that is checked on every use, so it needs no reports.
#[derive(Default)]
pub struct Tails {
    /// Map prefix → its greatest bucket key (`None`: the map is empty).
    ends: std::cell::RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Map prefix → the bucket that held its floor at the last trim.
    floors: std::cell::RefCell<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// How many maps [`Tails`] knows before it starts again: one entry per node published to.
const TAILS_MAX: usize = 1 << 16;

/// Remembers `value` for the map under `prefix`, forgetting every map first when
/// [`TAILS_MAX`] are known.
fn remember<V>(map: &mut BTreeMap<Vec<u8>, V>, prefix: &[u8], value: V) {
    if map.len() >= TAILS_MAX {
        map.clear();
    }
    map.insert(prefix.to_vec(), value);
}

impl Tails {
    /// Forget every tail: the tree changed under them.
    pub fn clear(&mut self) {
        self.ends.get_mut().clear();
        self.floors.get_mut().clear();
    }

    /// `key` was written (`live`) or removed in the base.
    pub fn wrote(&mut self, key: &[u8], live: bool) {
        let map = self.ends.get_mut();
        let Some((prefix, tail)) = map
            .range_mut::<[u8], _>((std::ops::Bound::Unbounded, std::ops::Bound::Included(key)))
            .next_back()
        else {
            return;
        };
        if !key.starts_with(prefix) {
            return;
        }
        match tail {
            Some(t) if live && key > t.as_slice() => *t = key.to_vec(),
            None if live => *tail = Some(key.to_vec()),
            Some(t) if !live && key == t.as_slice() => {
                // The next tail down is not known without a scan: learn it again.
                let prefix = prefix.clone();
                map.remove(&prefix);
            }
            _ => {}
        }
    }
}

impl<'a> Pending<'a> {
    /// This change set, finding the buckets of appended entries through `tails`, which
    /// must describe its base and tree.
    pub fn with_tails(self, tails: &'a Tails) -> Self {
        Pending {
            tails: Some(tails),
            ..self
        }
    }

    /// [`Pending::floor_key`] for a map that grows at its end: when `target` is above every
    /// bucket of the base and the tree, their greatest bucket is read directly.
    pub fn floor_key_at_end(
        &self,
        prefix: &[u8],
        target: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        let Some(tails) = self.tails else {
            return self.floor_key(prefix, target);
        };
        let known = tails.ends.borrow().get(prefix).cloned();
        let tail = match known {
            Some(tail) => tail,
            None => {
                let tail = self.last_under(prefix)?;
                remember(&mut tails.ends.borrow_mut(), prefix, tail.clone());
                tail
            }
        };
        let below = match tail {
            Some(t) if t.as_slice() > target => return self.floor_key(prefix, target),
            // This change set rewrote or removed the tail: its own writes decide.
            Some(t) if self.writes.contains_key(&t) => {
                if self.writes.get(&t).is_some_and(Option::is_none) {
                    return self.floor_key(prefix, target);
                }
                None
            }
            Some(t) => match self.get(&t)? {
                Some(v) => Some((t, v)),
                // Not reached while the owner reports its writes; the scan answers right.
                None => {
                    tails.ends.borrow_mut().remove(prefix);
                    return self.floor_key(prefix, target);
                }
            },
            None => None,
        };
        Ok(self.floor_over(prefix, target, below))
    }

    /// [`Pending::floor_key`] for a target that moves up, as the floor of a map trimmed from
    /// its start does: the bucket noted for `prefix` ([`Pending::note_floor`]) is read first,
    /// and taken when it is at or below `target` and holds an entry at or above it (then no
    /// bucket can start between the two). Otherwise, the reverse scan.
    pub fn floor_key_hinted(
        &self,
        prefix: &[u8],
        target: &[u8],
    ) -> Result<Option<(Vec<u8>, Val)>, StoreError> {
        let hint = self
            .tails
            .and_then(|t| t.floors.borrow().get(prefix).cloned())
            .filter(|k| k.as_slice() <= target);
        if let (Some(key), Some(lower)) = (hint, target.strip_prefix(prefix)) {
            if let Some(bucket) = self.get(&key)? {
                for e in super::entries(&bucket) {
                    if e?.0 >= lower {
                        return Ok(Some((key, bucket)));
                    }
                }
            }
        }
        self.floor_key(prefix, target)
    }

    /// Notes `bucket` as where the floor of the map under `prefix` is now (a hint for the
    /// next [`Pending::floor_key_hinted`]).
    pub fn note_floor(&self, prefix: &[u8], bucket: &[u8]) {
        let Some(tails) = self.tails else { return };
        let mut map = tails.floors.borrow_mut();
        // Most trims leave the floor in the bucket it was in: nothing to copy then.
        if map.get(prefix).is_some_and(|b| b.as_slice() == bucket) {
            return;
        }
        remember(&mut map, prefix, bucket.to_vec());
    }

    /// The greatest live key under `prefix` in the base and the tree (not this change set).
    fn last_under(&self, prefix: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let base = |k: &[u8]| self.base.and_then(|b| b.get(k));
        let mut from_tree = None;
        for kv in self.tree.scan_prefix(prefix).rev() {
            self.ops.read(1);
            let (k, _) = kv.map_err(sled_err)?;
            if !matches!(base(&k), Some(None)) {
                from_tree = Some(k.to_vec());
                break;
            }
        }
        let from_base = self.base.and_then(|b| {
            b.range::<[u8], _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(_, v)| v.is_some())
            .last()
            .map(|(k, _)| k.clone())
        });
        Ok(from_tree.max(from_base))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{new_bucket, put_entry, OpCounts, Pending, Tails};

    fn bucket(keys: &[&[u8]]) -> Vec<u8> {
        let mut b = new_bucket();
        for k in keys {
            put_entry(&mut b, k, b"v");
        }
        b
    }

    /// The floor hint is taken only when no bucket can start between it and the target:
    /// otherwise the answer is the reverse scan's, whatever was noted.
    #[test]
    fn a_floor_hint_answers_as_the_scan_does() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let t = db.open_tree("t").unwrap();
        let ops = OpCounts::default();
        t.insert(b"m/b", bucket(&[b"b", b"c"])).unwrap();
        t.insert(b"m/f", bucket(&[b"f", b"h"])).unwrap();
        let tails = Tails::default();
        let p = Pending::new(&t, &ops).with_tails(&tails);
        let floor = |target: &[u8]| p.floor_key_hinted(b"m/", target).unwrap().map(|(k, _)| k);
        // Nothing noted: the scan.
        assert_eq!(floor(b"m/c"), Some(b"m/b".to_vec()));
        p.note_floor(b"m/", b"m/b");
        let reads = ops.get().0;
        assert_eq!(floor(b"m/c"), Some(b"m/b".to_vec()));
        assert_eq!(
            ops.get().0,
            reads + 1,
            "the noted bucket holds the target: one point read"
        );
        // The noted bucket ends below the target, and "m/f" starts between: not the hint.
        assert_eq!(floor(b"m/g"), Some(b"m/f".to_vec()));
        // Between the noted bucket's last entry and the next bucket: still the noted one.
        assert_eq!(floor(b"m/d"), Some(b"m/b".to_vec()));
        // A hint above the target, or one that is gone, is not taken.
        p.note_floor(b"m/", b"m/f");
        assert_eq!(floor(b"m/c"), Some(b"m/b".to_vec()));
        p.note_floor(b"m/", b"m/e");
        assert_eq!(floor(b"m/g"), Some(b"m/f".to_vec()));
    }
}
