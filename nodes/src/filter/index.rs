//! The per-node matching index.
//!
//! Identical filters are stored once, with the set of subscriptions holding them. Each
//! distinct filter is expanded into conjunctions (see [`CExpr::dnf`]) filed in the matching
//! tree (see [`super::tree`]), so that matching an item costs in proportion to what it
//! matches, not to the number of filters. A filter whose expansion would exceed the
//! conjunction bound is evaluated as a whole on every item.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, Hash};

use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use super::compile::{CExpr, Interner};
use super::extract::{DictRef, Extracted, PathDict, Value};
use super::small::IdSet;
use super::syntax::Path;
use super::tree::{FilterId, Node};
use super::Filter;

/// The filtered subscriptions of one node, indexed for matching items.
///
/// `K` identifies a subscription (the engine's compact subscription number). A key holds
/// one filter; inserting it again replaces that filter.
///
/// ```
/// use roost_nodes::filter::{Filter, FilterIndex};
///
/// let mut index = FilterIndex::new();
/// index.insert(1u32, &Filter::parse("@level = 'error'").unwrap());
/// index.insert(2u32, &Filter::parse("host ^= 'web-' and @level != 'debug'").unwrap());
/// let payload = "<log xmlns='urn:example' level='error'><host>web-7</host></log>";
/// let mut hits: Vec<u32> = index.matching(payload).collect();
/// hits.sort();
/// assert_eq!(hits, [1, 2]);
/// ```
#[derive(Debug)]
pub struct FilterIndex<K> {
    dict: PathDict,
    strs: Interner,
    /// Each key's filter, and its place in that filter's `keys`.
    by_key: FxHashMap<K, (FilterId, u32)>,
    /// Distinct filters by the hash of their compiled form; those whose hash was taken when
    /// they came (a 64-bit collision: never seen, but possible) are in `collided`.
    by_hash: FxHashMap<u64, FilterId>,
    collided: IdSet<FilterId>,
    filters: Vec<Option<FilterRec<K>>>,
    free: Vec<FilterId>,
    root: Node,
    /// Filters evaluated whole on every item (their expansion is too large).
    whole: FxHashSet<FilterId>,
    /// Filters the tree may reach twice for one item.
    repeating: usize,
    max_conjunctions: usize,
}

#[derive(Debug)]
struct FilterRec<K> {
    hash: u64,
    expr: CExpr,
    /// The keys holding this filter, in a vector: a match copies them out in one go (a hash
    /// set made that copy most of the time of a match at 1 000 000 subscriptions).
    keys: Vec<K>,
    whole: bool,
}

/// The subscriptions an item matched (each once), from [`FilterIndex::matches`].
#[derive(Debug)]
pub struct Matches<K>(std::vec::IntoIter<K>);

impl<K> Iterator for Matches<K> {
    type Item = K;

    fn next(&mut self) -> Option<K> {
        self.0.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl<K> ExactSizeIterator for Matches<K> {}

impl<K: Copy + Eq + Hash> Default for FilterIndex<K> {
    fn default() -> Self {
        FilterIndex::new()
    }
}

impl<K: Copy + Eq + Hash> FilterIndex<K> {
    /// Default bound on the conjunctions one filter expands into (see
    /// [`FilterIndex::with_max_conjunctions`]).
    pub const DEFAULT_MAX_CONJUNCTIONS: usize = 64;

    /// An empty index.
    pub fn new() -> Self {
        FilterIndex::with_max_conjunctions(Self::DEFAULT_MAX_CONJUNCTIONS)
    }

    /// An empty index that expands a filter into at most `max` conjunctions (an `and` of
    /// `or`s multiplies out); a filter beyond that is evaluated whole on every item instead:
    /// correct, but not sub-linear.
    pub fn with_max_conjunctions(max: usize) -> Self {
        FilterIndex {
            dict: PathDict::default(),
            strs: Interner::default(),
            by_key: FxHashMap::default(),
            by_hash: FxHashMap::default(),
            collided: IdSet::default(),
            filters: Vec::new(),
            free: Vec::new(),
            root: Node::default(),
            whole: FxHashSet::default(),
            repeating: 0,
            max_conjunctions: max.max(1),
        }
    }

    /// How many subscriptions the index holds.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether the index holds no subscription (matching then costs nothing).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// Whether `key` holds a filter here.
    pub fn contains(&self, key: &K) -> bool {
        self.by_key.contains_key(key)
    }

    /// The paths the filters read from payloads.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.dict.iter().map(|(_, p)| p)
    }

    /// Files `key` under `filter`, replacing the filter it held.
    pub fn insert(&mut self, key: K, filter: &Filter) {
        let expr = CExpr::compile(filter.expr(), &mut self.dict, &mut self.strs);
        let hash = fingerprint(&expr);
        let id = match self.find(hash, &expr) {
            Some(id) => {
                expr.release(&mut self.dict, &mut self.strs);
                if self.by_key.get(&key).is_some_and(|&(held, _)| held == id) {
                    return;
                }
                id
            }
            None => self.add_filter(expr, hash),
        };
        // The filter the key held before, if any: never `id`, held by others or new.
        self.remove(&key);
        if let Some(Some(rec)) = self.filters.get_mut(id as usize) {
            rec.keys.push(key);
            self.by_key.insert(key, (id, (rec.keys.len() - 1) as u32));
        }
    }

    /// Removes `key` and its filter; false when it held none.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some((id, pos)) = self.by_key.remove(key) else {
            return false;
        };
        let Some(Some(rec)) = self.filters.get_mut(id as usize) else {
            return true;
        };
        let pos = pos as usize;
        rec.keys.swap_remove(pos);
        if let Some(moved) = rec.keys.get(pos) {
            if let Some(slot) = self.by_key.get_mut(moved) {
                slot.1 = pos as u32;
            }
        }
        if rec.keys.is_empty() {
            self.drop_filter(id);
        }
        true
    }

    /// Reads the values the filters refer to out of a payload (serialized XML, the
    /// engine's `Item::payload`), once for all filters. Nothing is parsed when the index
    /// is empty.
    pub fn extract<'s, 'p>(&'s self, payload: &'p str) -> Extracted<'s, 'p> {
        let mut values = self.dict.extract(payload);
        self.resolve(&mut values);
        Extracted {
            dict: DictRef::Borrowed(&self.dict),
            values,
        }
    }

    /// The subscriptions whose filter holds for the extracted values, each once, in no
    /// particular order. `values` should come from this index's [`FilterIndex::extract`];
    /// values read by another extractor are looked up by path (slower, same result for the
    /// paths it read).
    pub fn matches(&self, values: &Extracted<'_, '_>) -> Matches<K> {
        if self.is_empty() {
            return Matches(Vec::new().into_iter());
        }
        if std::ptr::eq(values.dict.get(), &self.dict) {
            return self.matches_values(&values.values);
        }
        let mut own = vec![None; self.filters_paths_len()];
        for (id, path) in self.dict.iter() {
            own[id as usize] = values.value(path).cloned();
        }
        self.resolve(&mut own);
        self.matches_values(&own)
    }

    /// [`FilterIndex::extract`] then [`FilterIndex::matches`].
    pub fn matching(&self, payload: &str) -> Matches<K> {
        if self.is_empty() {
            return Matches(Vec::new().into_iter());
        }
        self.matches(&self.extract(payload))
    }

    /// Whether nothing is left of any filter: no node, path, string or record.
    #[cfg(test)]
    pub(super) fn is_pristine(&self) -> bool {
        self.by_key.is_empty()
            && self.by_hash.is_empty()
            && self.collided.is_empty()
            && self.filters.iter().all(Option::is_none)
            && self.root.is_empty()
            && self.whole.is_empty()
            && self.repeating == 0
            && self.dict.is_empty()
            && self.strs.is_empty()
    }

    /// How many distinct filters, and how many of those are evaluated whole.
    #[cfg(test)]
    pub(super) fn filter_counts(&self) -> (usize, usize) {
        (self.filters.iter().flatten().count(), self.whole.len())
    }

    fn filters_paths_len(&self) -> usize {
        self.dict
            .iter()
            .map(|(id, _)| id as usize + 1)
            .max()
            .unwrap_or(0)
    }

    /// The distinct filter that compiled to `expr`, if there is one.
    fn find(&self, hash: u64, expr: &CExpr) -> Option<FilterId> {
        let same = |id: &FilterId| self.rec(*id).is_some_and(|r| r.expr == *expr);
        match self.by_hash.get(&hash) {
            Some(id) if same(id) => Some(*id),
            // Also when the hash's first holder is gone: a collided one may remain.
            _ => self.collided.find(same),
        }
    }

    fn rec(&self, id: FilterId) -> Option<&FilterRec<K>> {
        self.filters.get(id as usize)?.as_ref()
    }

    /// Symbols for the values equal to some literal.
    fn resolve(&self, values: &mut [Option<Value<'_>>]) {
        for v in values.iter_mut().flatten() {
            v.sym = self.strs.get(&v.text);
        }
    }

    fn matches_values(&self, values: &[Option<Value<'_>>]) -> Matches<K> {
        let mut ids = Vec::new();
        self.root.walk(values, &self.strs, &mut ids);
        for &id in &self.whole {
            if self
                .rec(id)
                .is_some_and(|r| r.expr.holds(values, &self.strs))
            {
                ids.push(id);
            }
        }
        if self.repeating > 0 {
            ids.sort_unstable();
            ids.dedup();
        }
        let recs = || ids.iter().filter_map(|&id| self.rec(id));
        let mut out = Vec::with_capacity(recs().map(|r| r.keys.len()).sum());
        for rec in recs() {
            out.extend_from_slice(&rec.keys);
        }
        Matches(out.into_iter())
    }

    fn add_filter(&mut self, expr: CExpr, hash: u64) -> FilterId {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.filters.push(None);
                (self.filters.len() - 1) as FilterId
            }
        };
        let whole = match expr.dnf(self.max_conjunctions) {
            Some(dnf) => {
                if CExpr::may_repeat(&dnf) {
                    self.repeating += 1;
                }
                for conj in &dnf {
                    self.root.insert(id, conj, 0, &self.strs);
                }
                false
            }
            None => {
                self.whole.insert(id);
                true
            }
        };
        match self.by_hash.entry(hash) {
            Entry::Occupied(_) => {
                self.collided.insert(id);
            }
            Entry::Vacant(v) => {
                v.insert(id);
            }
        }
        self.filters[id as usize] = Some(FilterRec {
            hash,
            expr,
            keys: Vec::new(),
            whole,
        });
        id
    }

    fn drop_filter(&mut self, id: FilterId) {
        let Some(rec) = self.filters.get_mut(id as usize).and_then(Option::take) else {
            return;
        };
        if rec.whole {
            self.whole.remove(&id);
        } else if let Some(dnf) = rec.expr.dnf(self.max_conjunctions) {
            if CExpr::may_repeat(&dnf) {
                self.repeating -= 1;
            }
            for conj in &dnf {
                self.root.remove(id, conj, 0, &self.strs);
            }
        }
        // Only now: the tree's edges name the strings the release may free.
        rec.expr.release(&mut self.dict, &mut self.strs);
        if self.by_hash.get(&rec.hash) == Some(&id) {
            self.by_hash.remove(&rec.hash);
        } else {
            self.collided.remove(&id);
        }
        self.free.push(id);
    }
}

#[cfg(not(test))]
fn fingerprint(expr: &CExpr) -> u64 {
    FxBuildHasher.hash_one(expr)
}

#[cfg(test)]
thread_local! {
    /// Makes every filter's hash 0, to test collisions.
    pub(super) static COLLIDE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn fingerprint(expr: &CExpr) -> u64 {
    if COLLIDE.get() {
        0
    } else {
        FxBuildHasher.hash_one(expr)
    }
}
