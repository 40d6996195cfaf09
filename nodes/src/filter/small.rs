//! Sets and maps that are small in most index nodes and large in a few: a vector (sized
//! exactly) while small, a hash table beyond. A node of a distinct filter typically holds
//! one or two entries, where a hash table would allocate room for four and more.

use std::hash::Hash;

use rustc_hash::{FxHashMap, FxHashSet};

/// Entries kept in a vector before switching to a hash table: a linear scan of this many
/// is as fast as hashing.
const SMALL: usize = 8;

/// A set of small `Copy` values.
#[derive(Debug)]
pub(crate) enum IdSet<T> {
    Small(Vec<T>),
    Large(Box<FxHashSet<T>>),
}

impl<T> Default for IdSet<T> {
    fn default() -> Self {
        IdSet::Small(Vec::new())
    }
}

impl<T: Copy + Eq + Hash> IdSet<T> {
    pub(crate) fn insert(&mut self, t: T) -> bool {
        match self {
            IdSet::Small(v) if v.contains(&t) => false,
            IdSet::Small(v) if v.len() < SMALL => {
                v.reserve_exact(1);
                v.push(t);
                true
            }
            IdSet::Small(v) => {
                let mut set: FxHashSet<T> = v.drain(..).collect();
                set.insert(t);
                *self = IdSet::Large(Box::new(set));
                true
            }
            IdSet::Large(s) => s.insert(t),
        }
    }

    pub(crate) fn remove(&mut self, t: &T) -> bool {
        match self {
            IdSet::Small(v) => match v.iter().position(|x| x == t) {
                Some(i) => {
                    v.swap_remove(i);
                    v.shrink_to_fit();
                    true
                }
                None => false,
            },
            IdSet::Large(s) => {
                let removed = s.remove(t);
                if s.len() < SMALL / 2 {
                    *self = IdSet::Small(s.drain().collect());
                }
                removed
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            IdSet::Small(v) => v.is_empty(),
            IdSet::Large(s) => s.is_empty(),
        }
    }

    /// The first member for which `f` holds.
    pub(crate) fn find(&self, mut f: impl FnMut(&T) -> bool) -> Option<T> {
        match self {
            IdSet::Small(v) => v.iter().find(|t| f(t)).copied(),
            IdSet::Large(s) => s.iter().find(|t| f(t)).copied(),
        }
    }

    pub(crate) fn extend_into(&self, out: &mut Vec<T>) {
        match self {
            IdSet::Small(v) => out.extend_from_slice(v),
            IdSet::Large(s) => out.extend(s.iter().copied()),
        }
    }
}

/// A map with `Copy` keys.
#[derive(Debug)]
pub(crate) enum SmallMap<K, V> {
    Small(Vec<(K, V)>),
    Large(Box<FxHashMap<K, V>>),
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        SmallMap::Small(Vec::new())
    }
}

impl<K: Copy + Eq + Hash, V> SmallMap<K, V> {
    pub(crate) fn get(&self, k: &K) -> Option<&V> {
        match self {
            SmallMap::Small(v) => v.iter().find(|(x, _)| x == k).map(|(_, v)| v),
            SmallMap::Large(m) => m.get(k),
        }
    }

    pub(crate) fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        match self {
            SmallMap::Small(v) => v.iter_mut().find(|(x, _)| x == k).map(|(_, v)| v),
            SmallMap::Large(m) => m.get_mut(k),
        }
    }

    pub(crate) fn contains_key(&self, k: &K) -> bool {
        self.get(k).is_some()
    }

    /// The value at `k`, inserted by `f` when missing.
    pub(crate) fn get_or_insert_with(&mut self, k: K, f: impl FnOnce() -> V) -> &mut V {
        if let SmallMap::Small(v) = self {
            if v.len() >= SMALL && !v.iter().any(|(x, _)| *x == k) {
                let m: FxHashMap<K, V> = v.drain(..).collect();
                *self = SmallMap::Large(Box::new(m));
            }
        }
        match self {
            SmallMap::Small(v) => {
                let i = match v.iter().position(|(x, _)| *x == k) {
                    Some(i) => i,
                    None => {
                        v.reserve_exact(1);
                        v.push((k, f()));
                        v.len() - 1
                    }
                };
                &mut v[i].1
            }
            SmallMap::Large(m) => m.entry(k).or_insert_with(f),
        }
    }

    pub(crate) fn remove(&mut self, k: &K) -> Option<V> {
        match self {
            SmallMap::Small(v) => {
                let i = v.iter().position(|(x, _)| x == k)?;
                let out = v.swap_remove(i).1;
                v.shrink_to_fit();
                Some(out)
            }
            SmallMap::Large(m) => {
                let out = m.remove(k);
                if m.len() < SMALL / 2 {
                    *self = SmallMap::Small(m.drain().collect());
                }
                out
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        match self {
            SmallMap::Small(v) => v.is_empty(),
            SmallMap::Large(m) => m.is_empty(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_maps_cross_the_threshold_both_ways() {
        let mut s = IdSet::default();
        let mut m = SmallMap::default();
        for i in 0..40u32 {
            assert!(s.insert(i));
            assert!(!s.insert(i));
            *m.get_or_insert_with(i, || 0) += i;
            *m.get_or_insert_with(i, || 0) += 1;
        }
        assert!(matches!(s, IdSet::Large(_)) && matches!(m, SmallMap::Large(_)));
        for i in 0..38u32 {
            assert!(s.remove(&i));
            assert!(!s.remove(&i));
            assert_eq!(m.remove(&i), Some(i + 1));
            assert_eq!(m.remove(&i), None);
        }
        assert!(matches!(s, IdSet::Small(_)) && matches!(m, SmallMap::Small(_)));
        let mut left = Vec::new();
        s.extend_into(&mut left);
        left.sort();
        assert_eq!(left, [38, 39]);
        assert_eq!(s.find(|&x| x > 38), Some(39));
        assert_eq!(m.get(&39), Some(&40));
        assert!(m.contains_key(&38) && !m.contains_key(&0));
        s.remove(&38);
        s.remove(&39);
        m.remove(&38);
        m.remove(&39);
        assert!(s.is_empty() && m.is_empty());
    }
}
