//! Filters compiled for an index: paths and literal strings numbered, equalities on one path
//! joined by `or` folded into one set test, and the expansion into a disjunction of
//! conjunctions that the index files under its edges.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::extract::{PathDict, PathId, Value};
use super::syntax::{Expr, Literal, Op, Test};
use super::value::compare;

/// Index of a string in an [`Interner`].
pub(crate) type Sym = u32;

/// The literal strings of an index's filters, numbered and shared, so that an equality is
/// one integer comparison and a filter holds no copy of its strings.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: FxHashMap<Arc<str>, Sym>,
    strs: Vec<Option<(Arc<str>, u32)>>,
    free: Vec<Sym>,
}

impl Interner {
    pub(crate) fn acquire(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            if let Some((_, refs)) = &mut self.strs[id as usize] {
                *refs += 1;
            }
            return id;
        }
        let arc: Arc<str> = s.into();
        let id = match self.free.pop() {
            Some(id) => {
                self.strs[id as usize] = Some((arc.clone(), 1));
                id
            }
            None => {
                self.strs.push(Some((arc.clone(), 1)));
                (self.strs.len() - 1) as Sym
            }
        };
        self.ids.insert(arc, id);
        id
    }

    pub(crate) fn release(&mut self, id: Sym) {
        if let Some(slot) = self.strs.get_mut(id as usize) {
            if let Some((s, refs)) = slot {
                *refs -= 1;
                if *refs == 0 {
                    self.ids.remove(&**s);
                    *slot = None;
                    self.free.push(id);
                }
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The symbol of `s`, if some literal has this text.
    pub(crate) fn get(&self, s: &str) -> Option<Sym> {
        self.ids.get(s).copied()
    }

    pub(crate) fn text(&self, id: Sym) -> &str {
        self.arc(id).map_or("", |s| s)
    }

    pub(crate) fn arc(&self, id: Sym) -> Option<&Arc<str>> {
        self.strs.get(id as usize)?.as_ref().map(|(s, _)| s)
    }
}

/// An `f64` key for exact numeric equality: the bits, with -0 read as 0 (values and
/// literals are never NaN).
pub(crate) fn num_key(v: f64) -> u64 {
    if v == 0.0 {
        0
    } else {
        v.to_bits()
    }
}

/// A value an equality asks for: a string (by symbol) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Key {
    Str(Sym),
    Num(u64),
}

impl Key {
    fn holds(self, v: &Value<'_>) -> bool {
        match self {
            // Equal strings are one symbol; a value whose text no literal has has no symbol.
            Key::Str(s) => v.sym == Some(s),
            // A value that is not a number never equals a number literal's text either: that
            // text is a number.
            Key::Num(n) => v.num.map(num_key) == Some(n),
        }
    }
}

/// A literal for the other comparisons: its text's symbol and, for a number, its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lit {
    pub(crate) sym: Sym,
    pub(crate) num: Option<f64>,
}

impl Hash for Lit {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.sym.hash(state);
        self.num.map(num_key).hash(state);
    }
}

/// One compiled predicate.
#[derive(Debug, Clone, PartialEq, Hash)]
pub(crate) struct Atom {
    pub(crate) path: PathId,
    pub(crate) test: ATest,
}

#[derive(Debug, Clone, PartialEq, Hash)]
pub(crate) enum ATest {
    Exists,
    Eq(Key),
    /// `p = a or p = b or …`: sorted, without repeats.
    In(Box<[Key]>),
    /// Every other operator (never `Op::Eq`).
    Cmp(Op, Lit),
}

impl Atom {
    pub(crate) fn holds(&self, values: &[Option<Value<'_>>], strs: &Interner) -> bool {
        let Some(Some(v)) = values.get(self.path as usize) else {
            return false;
        };
        match &self.test {
            ATest::Exists => true,
            ATest::Eq(k) => k.holds(v),
            ATest::In(ks) => ks.iter().any(|k| k.holds(v)),
            ATest::Cmp(op, lit) => compare(*op, &v.text, v.num, strs.text(lit.sym), lit.num),
        }
    }

    /// The order in which a conjunction's atoms are considered as index edges: the most
    /// selective kinds first (one value, a few values, a prefix, a range, presence), those
    /// the index cannot use last.
    pub(crate) fn rank(&self) -> u8 {
        match &self.test {
            ATest::Eq(_) => 0,
            ATest::In(_) => 1,
            ATest::Cmp(Op::StartsWith, _) => 2,
            ATest::Cmp(Op::Lt | Op::Le | Op::Gt | Op::Ge, _) => 3,
            ATest::Exists => 4,
            ATest::Cmp(_, _) => 5,
        }
    }
}

/// A compiled filter. Each atom holds one reference on its path and strings, released by
/// [`CExpr::release`]. Filters that compile alike (the same canonical text, or equalities
/// of one set in another order) are one filter to the index.
#[derive(Debug, Clone, PartialEq, Hash)]
pub(crate) enum CExpr {
    Atom(Atom),
    And(Box<[CExpr]>),
    Or(Box<[CExpr]>),
}

impl CExpr {
    pub(crate) fn compile(e: &Expr, dict: &mut PathDict, strs: &mut Interner) -> CExpr {
        match e {
            Expr::Pred(p) => {
                let path = dict.acquire(&p.path);
                let test = match &p.test {
                    Test::Exists => ATest::Exists,
                    Test::Cmp(Op::Eq, lit) => ATest::Eq(key(lit, strs)),
                    Test::Cmp(op, lit) => ATest::Cmp(
                        *op,
                        Lit {
                            sym: strs.acquire(lit.text()),
                            num: lit.num(),
                        },
                    ),
                };
                CExpr::Atom(Atom { path, test })
            }
            Expr::And(xs) => CExpr::And(xs.iter().map(|x| CExpr::compile(x, dict, strs)).collect()),
            Expr::Or(xs) => {
                let mut out = Vec::new();
                // Equalities on one path become one set test: `level = 'a' or level = 'b'`
                // is then one edge per value in the index, not two conjunctions.
                let mut sets: Vec<(PathId, Vec<Key>)> = Vec::new();
                for x in xs {
                    match CExpr::compile(x, dict, strs) {
                        CExpr::Atom(Atom {
                            path,
                            test: ATest::Eq(k),
                        }) => match sets.iter_mut().find(|(p, _)| *p == path) {
                            Some((_, ks)) => {
                                // One reference per path is kept by the set.
                                dict.release(path);
                                if ks.contains(&k) {
                                    release_key(k, strs);
                                } else {
                                    ks.push(k);
                                }
                            }
                            None => sets.push((path, vec![k])),
                        },
                        c => out.push(c),
                    }
                }
                for (path, mut ks) in sets {
                    let test = if ks.len() == 1 {
                        ATest::Eq(ks[0])
                    } else {
                        ks.sort_unstable();
                        ATest::In(ks.into())
                    };
                    out.push(CExpr::Atom(Atom { path, test }));
                }
                if out.len() == 1 {
                    out.pop().unwrap_or(CExpr::Or(Box::new([])))
                } else {
                    CExpr::Or(out.into())
                }
            }
        }
    }

    /// Gives back the references the atoms hold.
    pub(crate) fn release(&self, dict: &mut PathDict, strs: &mut Interner) {
        match self {
            CExpr::Atom(a) => {
                dict.release(a.path);
                match &a.test {
                    ATest::Exists => {}
                    ATest::Eq(k) => release_key(*k, strs),
                    ATest::In(ks) => ks.iter().for_each(|k| release_key(*k, strs)),
                    ATest::Cmp(_, lit) => strs.release(lit.sym),
                }
            }
            CExpr::And(xs) | CExpr::Or(xs) => xs.iter().for_each(|x| x.release(dict, strs)),
        }
    }

    pub(crate) fn holds(&self, values: &[Option<Value<'_>>], strs: &Interner) -> bool {
        match self {
            CExpr::Atom(a) => a.holds(values, strs),
            CExpr::And(xs) => xs.iter().all(|x| x.holds(values, strs)),
            CExpr::Or(xs) => xs.iter().any(|x| x.holds(values, strs)),
        }
    }

    /// The filter as a disjunction of conjunctions, each sorted by [`Atom::rank`] (stable, so
    /// the same filter always gives the same list); `None` when that takes more than `max`
    /// conjunctions.
    pub(crate) fn dnf(&self, max: usize) -> Option<Vec<Vec<Atom>>> {
        let mut out = self.dnf_unsorted(max)?;
        for c in &mut out {
            c.sort_by_key(|a| (a.rank(), a.path));
        }
        Some(out)
    }

    fn dnf_unsorted(&self, max: usize) -> Option<Vec<Vec<Atom>>> {
        match self {
            CExpr::Atom(a) => Some(vec![vec![a.clone()]]),
            CExpr::Or(xs) => {
                let mut out = Vec::new();
                for x in xs.iter() {
                    out.extend(x.dnf_unsorted(max)?);
                    if out.len() > max {
                        return None;
                    }
                }
                Some(out)
            }
            CExpr::And(xs) => {
                let mut acc: Vec<Vec<Atom>> = vec![Vec::new()];
                for x in xs.iter() {
                    let d = x.dnf_unsorted(max)?;
                    if acc.len().saturating_mul(d.len()) > max {
                        return None;
                    }
                    acc = acc
                        .iter()
                        .flat_map(|a| {
                            d.iter().map(move |b| {
                                let mut c = a.clone();
                                c.extend(b.iter().cloned());
                                c
                            })
                        })
                        .collect();
                }
                Some(acc)
            }
        }
    }

    /// Whether one subscription may be reached twice by one item through the index: it has
    /// several conjunctions, or a set holding a string and a number (`'5'` and `5` both
    /// match the value `5`).
    pub(crate) fn may_repeat(dnf: &[Vec<Atom>]) -> bool {
        dnf.len() > 1
            || dnf.iter().flatten().any(|a| match &a.test {
                ATest::In(ks) => {
                    ks.iter().any(|k| matches!(k, Key::Str(_)))
                        && ks.iter().any(|k| matches!(k, Key::Num(_)))
                }
                _ => false,
            })
    }
}

fn key(lit: &Literal, strs: &mut Interner) -> Key {
    match lit {
        Literal::Str(s) => Key::Str(strs.acquire(s)),
        Literal::Num(n) => Key::Num(num_key(n.value)),
    }
}

fn release_key(k: Key, strs: &mut Interner) {
    if let Key::Str(s) = k {
        strs.release(s);
    }
}
