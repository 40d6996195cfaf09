//! The per-node matching index.
//!
//! Identical filters are stored once, with the set of subscriptions holding them. Each
//! distinct filter is expanded into conjunctions (see [`CExpr::dnf`]) and each conjunction is
//! filed in a tree whose edges are its indexable predicates, most selective first, as in
//! Gryphon's matching tree: an equality (or a set of equalities on one path) is a hash edge
//! keyed by path and value, `^=` a hash edge keyed by path and prefix, and a range or
//! `exists` (only as a conjunction's first edge) an edge found through a sorted map. What
//! is left of a conjunction after its edges (`!=`, `*=`, further ranges) is checked at the
//! node it reaches. Matching an item follows only the edges its values satisfy, so its cost
//! grows with the number of matches, not with the number of filters. A filter whose
//! expansion would exceed the conjunction bound is evaluated as a whole on every item.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hash;
use std::ops::Bound;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};

use super::compile::{num_key, ATest, Atom, CExpr, Interner, Key, Sym};
use super::extract::{DictRef, Extracted, PathDict, PathId, Value};
use super::syntax::{Op, Path};
use super::Filter;

/// Index of a distinct filter in a [`FilterIndex`].
type FilterId = u32;

/// Most edges one conjunction takes in the tree; what is left is checked at the node.
const MAX_EDGES: usize = 4;

/// The range operators, in the order of [`RangeProbe`]'s arrays.
const RANGE_OPS: [Op; 4] = [Op::Lt, Op::Le, Op::Gt, Op::Ge];

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
    by_key: FxHashMap<K, FilterId>,
    by_text: FxHashMap<Box<str>, FilterId>,
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
    text: Box<str>,
    expr: CExpr,
    keys: FxHashSet<K>,
    whole: bool,
}

#[derive(Debug, Default)]
struct Node {
    /// Filters whose conjunction is satisfied on reaching this node.
    here: FxHashSet<FilterId>,
    /// Filters with a conjunction to check here: the atoms left after the edges.
    checked: FxHashMap<FilterId, Vec<Box<[Atom]>>>,
    edges: Option<Box<Edges>>,
}

#[derive(Debug, Default)]
struct Edges {
    eq: FxHashMap<(PathId, Key), Node>,
    /// The paths `eq` has edges on, with how many.
    eq_paths: Vec<(PathId, u32)>,
    prefix: FxHashMap<(PathId, Sym), Node>,
    /// For each path with prefix edges, the byte lengths of those prefixes (with counts).
    prefix_lens: Vec<(PathId, BTreeMap<usize, u32>)>,
    exists: Vec<(PathId, Node)>,
    ranges: FxHashMap<(PathId, Op, Sym), Node>,
    range_probe: Vec<(PathId, RangeProbe)>,
}

/// The range edges on one path, sorted by literal, one set per operator (`RANGE_OPS`).
#[derive(Debug, Default)]
struct RangeProbe {
    /// Number literals by value, for values that are numbers.
    num: [BTreeSet<(OrdF64, Sym)>; 4],
    /// Number literals by text, for values that are not numbers.
    num_text: [BTreeMap<Arc<str>, Sym>; 4],
    /// String literals by text.
    text: [BTreeMap<Arc<str>, Sym>; 4],
}

impl RangeProbe {
    fn is_empty(&self) -> bool {
        self.num.iter().all(BTreeSet::is_empty) && self.text.iter().all(BTreeMap::is_empty)
    }
}

/// A total order on the (never NaN, -0 normalized) numbers of filters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrdF64(f64);

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Node {
    fn is_empty(&self) -> bool {
        self.here.is_empty() && self.checked.is_empty() && self.edges.is_none()
    }
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
            by_text: FxHashMap::default(),
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
        let text: Box<str> = filter.to_string().into();
        if let Some(&id) = self.by_key.get(&key) {
            if self.rec(id).is_some_and(|r| r.text == text) {
                return;
            }
            self.remove(&key);
        }
        let id = match self.by_text.get(&text) {
            Some(&id) => id,
            None => self.add_filter(filter, text),
        };
        if let Some(Some(rec)) = self.filters.get_mut(id as usize) {
            rec.keys.insert(key);
        }
        self.by_key.insert(key, id);
    }

    /// Removes `key` and its filter; false when it held none.
    pub fn remove(&mut self, key: &K) -> bool {
        let Some(id) = self.by_key.remove(key) else {
            return false;
        };
        let Some(Some(rec)) = self.filters.get_mut(id as usize) else {
            return true;
        };
        rec.keys.remove(key);
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
            && self.by_text.is_empty()
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
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(rec) = self.rec(id) {
                out.extend(rec.keys.iter().copied());
            }
        }
        Matches(out.into_iter())
    }

    fn add_filter(&mut self, filter: &Filter, text: Box<str>) -> FilterId {
        let expr = CExpr::compile(filter.expr(), &mut self.dict, &mut self.strs);
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
        self.by_text.insert(text.clone(), id);
        self.filters[id as usize] = Some(FilterRec {
            text,
            expr,
            keys: FxHashSet::default(),
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
        self.by_text.remove(&rec.text);
        self.free.push(id);
    }
}

/// How an atom is filed as an edge, if it is one at this depth.
fn is_edge(a: &Atom, depth: usize) -> bool {
    match &a.test {
        ATest::Eq(_) | ATest::In(_) | ATest::Cmp(Op::StartsWith, _) => depth < MAX_EDGES,
        // Less selective: only as the first edge, when nothing better exists.
        ATest::Exists | ATest::Cmp(Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => depth == 0,
        ATest::Cmp(_, _) => false,
    }
}

fn range_slot(op: Op) -> usize {
    RANGE_OPS.iter().position(|&o| o == op).unwrap_or(0)
}

fn counted<T: PartialEq + Copy>(v: &mut Vec<(T, u32)>, k: T, delta: i32) {
    match v.iter().position(|(x, _)| *x == k) {
        Some(i) => {
            v[i].1 = v[i].1.saturating_add_signed(delta);
            if v[i].1 == 0 {
                v.swap_remove(i);
            }
        }
        None if delta > 0 => v.push((k, delta as u32)),
        None => {}
    }
}

impl Node {
    fn edges(&mut self) -> &mut Edges {
        self.edges.get_or_insert_with(Box::default)
    }

    /// Files conjunction `atoms` (sorted by rank) of filter `id` below this node.
    fn insert(&mut self, id: FilterId, atoms: &[Atom], depth: usize, strs: &Interner) {
        let Some((first, rest)) = atoms.split_first().filter(|(a, _)| is_edge(a, depth)) else {
            if atoms.is_empty() {
                self.here.insert(id);
            } else {
                self.checked.entry(id).or_default().push(atoms.into());
            }
            return;
        };
        let e = self.edges();
        let path = first.path;
        match &first.test {
            ATest::Eq(k) => e.eq_child(path, *k).insert(id, rest, depth + 1, strs),
            ATest::In(ks) => {
                for k in ks.iter() {
                    e.eq_child(path, *k).insert(id, rest, depth + 1, strs);
                }
            }
            ATest::Cmp(Op::StartsWith, lit) => {
                let key = (path, lit.sym);
                if !e.prefix.contains_key(&key) {
                    let len = strs.text(lit.sym).len();
                    match e.prefix_lens.iter_mut().find(|(p, _)| *p == path) {
                        Some((_, lens)) => *lens.entry(len).or_default() += 1,
                        None => e.prefix_lens.push((path, BTreeMap::from([(len, 1)]))),
                    }
                }
                e.prefix
                    .entry(key)
                    .or_default()
                    .insert(id, rest, depth + 1, strs);
            }
            ATest::Exists => {
                let i = match e.exists.iter().position(|(p, _)| *p == path) {
                    Some(i) => i,
                    None => {
                        e.exists.push((path, Node::default()));
                        e.exists.len() - 1
                    }
                };
                e.exists[i].1.insert(id, rest, depth + 1, strs);
            }
            ATest::Cmp(op, lit) => {
                let key = (path, *op, lit.sym);
                if !e.ranges.contains_key(&key) {
                    let probe = match e.range_probe.iter().position(|(p, _)| *p == path) {
                        Some(i) => &mut e.range_probe[i].1,
                        None => {
                            e.range_probe.push((path, RangeProbe::default()));
                            &mut e.range_probe.last_mut().expect("just pushed").1
                        }
                    };
                    let slot = range_slot(*op);
                    let text = strs.arc(lit.sym).cloned().unwrap_or_else(|| "".into());
                    match lit.num {
                        Some(n) => {
                            probe.num[slot].insert((OrdF64(n), lit.sym));
                            probe.num_text[slot].insert(text, lit.sym);
                        }
                        None => {
                            probe.text[slot].insert(text, lit.sym);
                        }
                    }
                }
                e.ranges
                    .entry(key)
                    .or_default()
                    .insert(id, rest, depth + 1, strs);
            }
        }
    }

    /// Undoes [`Node::insert`] of the same conjunction; prunes the nodes it empties.
    fn remove(&mut self, id: FilterId, atoms: &[Atom], depth: usize, strs: &Interner) {
        let Some((first, rest)) = atoms.split_first().filter(|(a, _)| is_edge(a, depth)) else {
            if atoms.is_empty() {
                self.here.remove(&id);
            } else if let Some(list) = self.checked.get_mut(&id) {
                if let Some(i) = list.iter().position(|c| **c == *atoms) {
                    list.swap_remove(i);
                }
                if list.is_empty() {
                    self.checked.remove(&id);
                }
            }
            return;
        };
        let Some(e) = self.edges.as_deref_mut() else {
            return;
        };
        let path = first.path;
        match &first.test {
            ATest::Eq(k) => e.eq_remove(path, *k, id, rest, depth, strs),
            ATest::In(ks) => {
                for k in ks.iter() {
                    e.eq_remove(path, *k, id, rest, depth, strs);
                }
            }
            ATest::Cmp(Op::StartsWith, lit) => {
                let key = (path, lit.sym);
                if let Some(child) = e.prefix.get_mut(&key) {
                    child.remove(id, rest, depth + 1, strs);
                    if child.is_empty() {
                        e.prefix.remove(&key);
                        let len = strs.text(lit.sym).len();
                        if let Some(i) = e.prefix_lens.iter().position(|(p, _)| *p == path) {
                            let lens = &mut e.prefix_lens[i].1;
                            if let Some(n) = lens.get_mut(&len) {
                                *n -= 1;
                                if *n == 0 {
                                    lens.remove(&len);
                                }
                            }
                            if lens.is_empty() {
                                e.prefix_lens.swap_remove(i);
                            }
                        }
                    }
                }
            }
            ATest::Exists => {
                if let Some(i) = e.exists.iter().position(|(p, _)| *p == path) {
                    e.exists[i].1.remove(id, rest, depth + 1, strs);
                    if e.exists[i].1.is_empty() {
                        e.exists.swap_remove(i);
                    }
                }
            }
            ATest::Cmp(op, lit) => {
                let key = (path, *op, lit.sym);
                if let Some(child) = e.ranges.get_mut(&key) {
                    child.remove(id, rest, depth + 1, strs);
                    if child.is_empty() {
                        e.ranges.remove(&key);
                        if let Some(i) = e.range_probe.iter().position(|(p, _)| *p == path) {
                            let probe = &mut e.range_probe[i].1;
                            let slot = range_slot(*op);
                            let text = strs.text(lit.sym);
                            match lit.num {
                                Some(n) => {
                                    probe.num[slot].remove(&(OrdF64(n), lit.sym));
                                    probe.num_text[slot].remove(text);
                                }
                                None => {
                                    probe.text[slot].remove(text);
                                }
                            }
                            if probe.is_empty() {
                                e.range_probe.swap_remove(i);
                            }
                        }
                    }
                }
            }
        }
        if e.is_empty() {
            self.edges = None;
        }
    }

    /// Collects the filters this node and the edges the values satisfy lead to.
    fn walk(&self, values: &[Option<Value<'_>>], strs: &Interner, out: &mut Vec<FilterId>) {
        out.extend(self.here.iter().copied());
        for (&id, conjs) in &self.checked {
            if conjs
                .iter()
                .any(|c| c.iter().all(|a| a.holds(values, strs)))
            {
                out.push(id);
            }
        }
        let Some(e) = &self.edges else { return };
        let value = |p: PathId| values.get(p as usize).and_then(Option::as_ref);
        for &(path, _) in &e.eq_paths {
            let Some(v) = value(path) else { continue };
            if let Some(s) = v.sym {
                if let Some(c) = e.eq.get(&(path, Key::Str(s))) {
                    c.walk(values, strs, out);
                }
            }
            if let Some(n) = v.num {
                if let Some(c) = e.eq.get(&(path, Key::Num(num_key(n)))) {
                    c.walk(values, strs, out);
                }
            }
        }
        for (path, lens) in &e.prefix_lens {
            let Some(v) = value(*path) else { continue };
            for &len in lens.keys() {
                let Some(prefix) = v.text.get(..len) else {
                    if len > v.text.len() {
                        break;
                    }
                    continue;
                };
                if let Some(c) = strs.get(prefix).and_then(|s| e.prefix.get(&(*path, s))) {
                    c.walk(values, strs, out);
                }
            }
        }
        for (path, c) in &e.exists {
            if value(*path).is_some() {
                c.walk(values, strs, out);
            }
        }
        for (path, probe) in &e.range_probe {
            let Some(v) = value(*path) else { continue };
            for (slot, &op) in RANGE_OPS.iter().enumerate() {
                let mut visit = |sym: Sym| {
                    if let Some(c) = e.ranges.get(&(*path, op, sym)) {
                        c.walk(values, strs, out);
                    }
                };
                // `value OP literal`: `<` wants literals above the value, `>` below.
                let text: &str = &v.text;
                let (lo, hi) = match op {
                    Op::Lt => (Bound::Excluded(text), Bound::Unbounded),
                    Op::Le => (Bound::Included(text), Bound::Unbounded),
                    Op::Gt => (Bound::Unbounded, Bound::Excluded(text)),
                    _ => (Bound::Unbounded, Bound::Included(text)),
                };
                probe.text[slot]
                    .range::<str, _>((lo, hi))
                    .for_each(|(_, &s)| visit(s));
                match v.num {
                    Some(n) => {
                        let (lo, hi) = match op {
                            Op::Lt => (Bound::Excluded((OrdF64(n), Sym::MAX)), Bound::Unbounded),
                            Op::Le => (Bound::Included((OrdF64(n), 0)), Bound::Unbounded),
                            Op::Gt => (Bound::Unbounded, Bound::Excluded((OrdF64(n), 0))),
                            _ => (Bound::Unbounded, Bound::Included((OrdF64(n), Sym::MAX))),
                        };
                        probe.num[slot].range((lo, hi)).for_each(|&(_, s)| visit(s));
                    }
                    None => probe.num_text[slot]
                        .range::<str, _>((lo, hi))
                        .for_each(|(_, &s)| visit(s)),
                }
            }
        }
    }
}

impl Edges {
    fn is_empty(&self) -> bool {
        self.eq.is_empty()
            && self.prefix.is_empty()
            && self.exists.is_empty()
            && self.ranges.is_empty()
    }

    fn eq_child(&mut self, path: PathId, k: Key) -> &mut Node {
        let key = (path, k);
        if !self.eq.contains_key(&key) {
            counted(&mut self.eq_paths, path, 1);
        }
        self.eq.entry(key).or_default()
    }

    fn eq_remove(
        &mut self,
        path: PathId,
        k: Key,
        id: FilterId,
        rest: &[Atom],
        depth: usize,
        strs: &Interner,
    ) {
        let key = (path, k);
        if let Some(child) = self.eq.get_mut(&key) {
            child.remove(id, rest, depth + 1, strs);
            if child.is_empty() {
                self.eq.remove(&key);
                counted(&mut self.eq_paths, path, -1);
            }
        }
    }
}
