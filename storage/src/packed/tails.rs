//! [`Tails`]: the last bucket of maps that grow at their end, kept between change sets.

use super::{sled_err, Pending, Val};
use roost_nodes::StoreError;
use std::collections::BTreeMap;

/// The greatest bucket key of maps that grow at their end (a node's items: seqs only grow),
/// over the tree and the base of writes staged on it, so that finding the bucket of an
/// appended entry is one point read instead of a reverse range over sled (which clones a
/// leaf at its first step). Learnt on a map's first append, then kept up to date by its
/// owner, who must report every write it adds to the base ([`Tails::wrote`]) and
/// [`Tails::clear`] it whenever the tree changes otherwise. The prefixes of the maps it
/// knows must never be prefixes of one another (a map kind's prefixes are of one length).
#[derive(Default)]
pub struct Tails(std::cell::RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>);

/// How many maps [`Tails`] knows before it starts again: one entry per node published to.
const TAILS_MAX: usize = 1 << 16;

impl Tails {
    /// Forget every tail: the tree changed under them.
    pub fn clear(&mut self) {
        self.0.get_mut().clear();
    }

    /// `key` was written (`live`) or removed in the base.
    pub fn wrote(&mut self, key: &[u8], live: bool) {
        let map = self.0.get_mut();
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
        let known = tails.0.borrow().get(prefix).cloned();
        let tail = match known {
            Some(tail) => tail,
            None => {
                let tail = self.last_under(prefix)?;
                let mut map = tails.0.borrow_mut();
                if map.len() >= TAILS_MAX {
                    map.clear();
                }
                map.insert(prefix.to_vec(), tail.clone());
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
                    tails.0.borrow_mut().remove(prefix);
                    return self.floor_key(prefix, target);
                }
            },
            None => None,
        };
        Ok(self.floor_over(prefix, target, below))
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
