//! The matching tree of a [`FilterIndex`](super::FilterIndex): conjunctions filed under
//! their indexable predicates, most selective first (Gryphon's matching tree). An equality,
//! or a set of equalities on one path, is an edge keyed by path and value; `^=` an edge keyed
//! by path and prefix, probed with each prefix length in use; a range or `exists` (only as
//! a conjunction's first edge, when it has nothing more selective) an edge found through a
//! sorted map of literals. What is left of a conjunction after its edges (`!=`, `*=`,
//! further ranges) is checked at the node it reaches. Matching follows only the edges an
//! item's values satisfy.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::compile::{num_key, ATest, Atom, Interner, Key, Sym};
use super::extract::{PathId, Value};
use super::small::{IdSet, SmallMap};
use super::syntax::Op;

/// Index of a distinct filter in a [`FilterIndex`](super::FilterIndex).
pub(crate) type FilterId = u32;

/// Most edges one conjunction takes in the tree; what is left is checked at the node.
const MAX_EDGES: usize = 4;

/// The range operators, in the order of [`RangeProbe`]'s arrays.
const RANGE_OPS: [Op; 4] = [Op::Lt, Op::Le, Op::Gt, Op::Ge];

/// Filters with conjunctions checked at a node, by filter.
type Checked = FxHashMap<FilterId, Vec<Box<[Atom]>>>;

// Nodes are many and mostly hold one or two entries: what a node does not use costs one
// word (the `Option<Box<…>>`s), and small sets and maps are exact-size vectors.
#[derive(Debug, Default)]
pub(crate) struct Node {
    /// Filters whose conjunction is satisfied on reaching this node.
    here: IdSet<FilterId>,
    /// Filters with a conjunction to check here: the atoms left after the edges.
    checked: Option<Box<Checked>>,
    edges: Option<Box<Edges>>,
}

#[derive(Debug, Default)]
struct Edges {
    eq: SmallMap<(PathId, Key), Node>,
    /// The paths `eq` has edges on, with how many.
    eq_paths: Vec<(PathId, u32)>,
    /// The rarer kinds of edges.
    more: Option<Box<MoreEdges>>,
}

#[derive(Debug, Default)]
struct MoreEdges {
    prefix: SmallMap<(PathId, Sym), Node>,
    /// For each path with prefix edges, the byte lengths of those prefixes (with counts).
    prefix_lens: Vec<(PathId, BTreeMap<usize, u32>)>,
    exists: Vec<(PathId, Node)>,
    /// By path, operator, literal text and whether the literal is a number: `'1'` and `1`
    /// have one text but compare differently, so they are different edges.
    ranges: SmallMap<(PathId, Op, Sym, bool), Node>,
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

/// Whether an atom is filed as an edge at this depth (else it is checked at the node).
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

/// Adds `delta` to the count kept for `k` in `v`, dropping the entry at zero.
fn counted<T: PartialEq + Copy>(v: &mut Vec<(T, u32)>, k: T, delta: i32) {
    match v.iter().position(|(x, _)| *x == k) {
        Some(i) => {
            v[i].1 = v[i].1.saturating_add_signed(delta);
            if v[i].1 == 0 {
                v.swap_remove(i);
            }
        }
        None if delta > 0 => {
            v.reserve_exact(1);
            v.push((k, delta as u32));
        }
        None => {}
    }
}

impl Node {
    pub(crate) fn is_empty(&self) -> bool {
        self.here.is_empty() && self.checked.is_none() && self.edges.is_none()
    }

    fn more(&mut self) -> &mut MoreEdges {
        self.edges
            .get_or_insert_with(Box::default)
            .more
            .get_or_insert_with(Box::default)
    }

    /// Files conjunction `atoms` (sorted by rank) of filter `id` below this node.
    pub(crate) fn insert(&mut self, id: FilterId, atoms: &[Atom], depth: usize, strs: &Interner) {
        let Some((first, rest)) = atoms.split_first().filter(|(a, _)| is_edge(a, depth)) else {
            if atoms.is_empty() {
                self.here.insert(id);
            } else {
                let checked = self.checked.get_or_insert_with(Box::default);
                checked.entry(id).or_default().push(atoms.into());
            }
            return;
        };
        let path = first.path;
        let depth = depth + 1;
        match &first.test {
            ATest::Eq(k) => self.eq_child(path, *k).insert(id, rest, depth, strs),
            ATest::In(ks) => {
                for k in ks.iter() {
                    self.eq_child(path, *k).insert(id, rest, depth, strs);
                }
            }
            ATest::Cmp(Op::StartsWith, lit) => {
                let m = self.more();
                let key = (path, lit.sym);
                if !m.prefix.contains_key(&key) {
                    let len = strs.text(lit.sym).len();
                    match m.prefix_lens.iter_mut().find(|(p, _)| *p == path) {
                        Some((_, lens)) => *lens.entry(len).or_default() += 1,
                        None => m.prefix_lens.push((path, BTreeMap::from([(len, 1)]))),
                    }
                }
                m.prefix
                    .get_or_insert_with(key, Node::default)
                    .insert(id, rest, depth, strs);
            }
            ATest::Exists => {
                let m = self.more();
                let i = match m.exists.iter().position(|(p, _)| *p == path) {
                    Some(i) => i,
                    None => {
                        m.exists.push((path, Node::default()));
                        m.exists.len() - 1
                    }
                };
                m.exists[i].1.insert(id, rest, depth, strs);
            }
            ATest::Cmp(op, lit) => {
                let m = self.more();
                let key = (path, *op, lit.sym, lit.num.is_some());
                if !m.ranges.contains_key(&key) {
                    let i = match m.range_probe.iter().position(|(p, _)| *p == path) {
                        Some(i) => i,
                        None => {
                            m.range_probe.push((path, RangeProbe::default()));
                            m.range_probe.len() - 1
                        }
                    };
                    m.range_probe[i].1.add(*op, lit.sym, lit.num, strs);
                }
                m.ranges
                    .get_or_insert_with(key, Node::default)
                    .insert(id, rest, depth, strs);
            }
        }
    }

    fn eq_child(&mut self, path: PathId, k: Key) -> &mut Node {
        let e = self.edges.get_or_insert_with(Box::default);
        let key = (path, k);
        if !e.eq.contains_key(&key) {
            counted(&mut e.eq_paths, path, 1);
        }
        e.eq.get_or_insert_with(key, Node::default)
    }

    /// Undoes [`Node::insert`] of the same conjunction; prunes what it empties.
    pub(crate) fn remove(&mut self, id: FilterId, atoms: &[Atom], depth: usize, strs: &Interner) {
        let Some((first, rest)) = atoms.split_first().filter(|(a, _)| is_edge(a, depth)) else {
            if atoms.is_empty() {
                self.here.remove(&id);
            } else if let Some(checked) = &mut self.checked {
                if let Some(list) = checked.get_mut(&id) {
                    if let Some(i) = list.iter().position(|c| **c == *atoms) {
                        list.swap_remove(i);
                    }
                    if list.is_empty() {
                        checked.remove(&id);
                    }
                }
                if checked.is_empty() {
                    self.checked = None;
                }
            }
            return;
        };
        let Some(e) = self.edges.as_deref_mut() else {
            return;
        };
        let path = first.path;
        let depth = depth + 1;
        match &first.test {
            ATest::Eq(k) => e.eq_remove(path, *k, id, rest, depth, strs),
            ATest::In(ks) => {
                for k in ks.iter() {
                    e.eq_remove(path, *k, id, rest, depth, strs);
                }
            }
            test => {
                if let Some(m) = e.more.as_deref_mut() {
                    m.remove(path, test, id, rest, depth, strs);
                    if m.is_empty() {
                        e.more = None;
                    }
                }
            }
        }
        if e.eq.is_empty() && e.more.is_none() {
            self.edges = None;
        }
    }

    /// Collects the filters this node and the edges the values satisfy lead to.
    pub(crate) fn walk(
        &self,
        values: &[Option<Value<'_>>],
        strs: &Interner,
        out: &mut Vec<FilterId>,
    ) {
        self.here.extend_into(out);
        if let Some(checked) = &self.checked {
            for (&id, conjs) in checked.iter() {
                if conjs
                    .iter()
                    .any(|c| c.iter().all(|a| a.holds(values, strs)))
                {
                    out.push(id);
                }
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
        let Some(m) = &e.more else { return };
        for (path, lens) in &m.prefix_lens {
            let Some(v) = value(*path) else { continue };
            for &len in lens.keys() {
                let Some(prefix) = v.text.get(..len) else {
                    if len > v.text.len() {
                        break;
                    }
                    continue;
                };
                if let Some(c) = strs.get(prefix).and_then(|s| m.prefix.get(&(*path, s))) {
                    c.walk(values, strs, out);
                }
            }
        }
        for (path, c) in &m.exists {
            if value(*path).is_some() {
                c.walk(values, strs, out);
            }
        }
        for (path, probe) in &m.range_probe {
            if let Some(v) = value(*path) {
                probe.matching(v, |op, sym, num| {
                    if let Some(c) = m.ranges.get(&(*path, op, sym, num)) {
                        c.walk(values, strs, out);
                    }
                });
            }
        }
    }
}

impl Edges {
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
            child.remove(id, rest, depth, strs);
            if child.is_empty() {
                self.eq.remove(&key);
                counted(&mut self.eq_paths, path, -1);
            }
        }
    }
}

impl MoreEdges {
    fn is_empty(&self) -> bool {
        self.prefix.is_empty() && self.exists.is_empty() && self.ranges.is_empty()
    }

    fn remove(
        &mut self,
        path: PathId,
        test: &ATest,
        id: FilterId,
        rest: &[Atom],
        depth: usize,
        strs: &Interner,
    ) {
        match test {
            ATest::Cmp(Op::StartsWith, lit) => {
                let key = (path, lit.sym);
                let Some(child) = self.prefix.get_mut(&key) else {
                    return;
                };
                child.remove(id, rest, depth, strs);
                if !child.is_empty() {
                    return;
                }
                self.prefix.remove(&key);
                let len = strs.text(lit.sym).len();
                if let Some(i) = self.prefix_lens.iter().position(|(p, _)| *p == path) {
                    let lens = &mut self.prefix_lens[i].1;
                    if let Some(n) = lens.get_mut(&len) {
                        *n -= 1;
                        if *n == 0 {
                            lens.remove(&len);
                        }
                    }
                    if lens.is_empty() {
                        self.prefix_lens.swap_remove(i);
                    }
                }
            }
            ATest::Exists => {
                if let Some(i) = self.exists.iter().position(|(p, _)| *p == path) {
                    self.exists[i].1.remove(id, rest, depth, strs);
                    if self.exists[i].1.is_empty() {
                        self.exists.swap_remove(i);
                    }
                }
            }
            ATest::Cmp(op, lit) => {
                let key = (path, *op, lit.sym, lit.num.is_some());
                let Some(child) = self.ranges.get_mut(&key) else {
                    return;
                };
                child.remove(id, rest, depth, strs);
                if !child.is_empty() {
                    return;
                }
                self.ranges.remove(&key);
                if let Some(i) = self.range_probe.iter().position(|(p, _)| *p == path) {
                    self.range_probe[i].1.drop(*op, lit.sym, lit.num, strs);
                    if self.range_probe[i].1.is_empty() {
                        self.range_probe.swap_remove(i);
                    }
                }
            }
            ATest::Eq(_) | ATest::In(_) => {}
        }
    }
}

impl RangeProbe {
    fn add(&mut self, op: Op, sym: Sym, num: Option<f64>, strs: &Interner) {
        let slot = range_slot(op);
        let text: Arc<str> = strs.arc(sym).cloned().unwrap_or_else(|| "".into());
        match num {
            Some(n) => {
                self.num[slot].insert((OrdF64(n), sym));
                self.num_text[slot].insert(text, sym);
            }
            None => {
                self.text[slot].insert(text, sym);
            }
        }
    }

    fn drop(&mut self, op: Op, sym: Sym, num: Option<f64>, strs: &Interner) {
        let slot = range_slot(op);
        let text = strs.text(sym);
        match num {
            Some(n) => {
                self.num[slot].remove(&(OrdF64(n), sym));
                self.num_text[slot].remove(text);
            }
            None => {
                self.text[slot].remove(text);
            }
        }
    }

    /// Calls `f` with each (operator, literal, literal is a number) for which
    /// `value OP literal` holds.
    fn matching(&self, v: &Value<'_>, mut f: impl FnMut(Op, Sym, bool)) {
        for (slot, &op) in RANGE_OPS.iter().enumerate() {
            // `value < literal` wants the literals above the value, `>` those below.
            let text: &str = &v.text;
            let (lo, hi) = match op {
                Op::Lt => (Bound::Excluded(text), Bound::Unbounded),
                Op::Le => (Bound::Included(text), Bound::Unbounded),
                Op::Gt => (Bound::Unbounded, Bound::Excluded(text)),
                _ => (Bound::Unbounded, Bound::Included(text)),
            };
            for (_, &s) in self.text[slot].range::<str, _>((lo, hi)) {
                f(op, s, false);
            }
            // Number literals compare numerically with numbers, as text with the rest.
            match v.num {
                Some(n) => {
                    let (lo, hi) = match op {
                        Op::Lt => (Bound::Excluded((OrdF64(n), Sym::MAX)), Bound::Unbounded),
                        Op::Le => (Bound::Included((OrdF64(n), 0)), Bound::Unbounded),
                        Op::Gt => (Bound::Unbounded, Bound::Excluded((OrdF64(n), 0))),
                        _ => (Bound::Unbounded, Bound::Included((OrdF64(n), Sym::MAX))),
                    };
                    for &(_, s) in self.num[slot].range((lo, hi)) {
                        f(op, s, true);
                    }
                }
                None => {
                    for (_, &s) in self.num_text[slot].range::<str, _>((lo, hi)) {
                        f(op, s, true);
                    }
                }
            }
        }
    }
}
