//! Content filters on subscriptions (XEP-0060 §12 "Content-Based Pubsub Systems", Roost
//! feature `urn:roost:filter:0`): the filter language, its evaluation against an item's
//! payload, and a per-node index that finds the matching subscriptions of an item without
//! testing every filter. Pure: no I/O.
//!
//! # The language
//!
//! ```text
//! filter    := or_expr
//! or_expr   := and_expr ( 'or' and_expr )*
//! and_expr  := primary ( 'and' primary )*            -- 'and' binds tighter than 'or'
//! primary   := '(' or_expr ')'
//!            | 'exists' '(' path ')'
//!            | path op literal
//! path      := '@' NAME                              -- attribute of the payload element
//!            | NAME ( '/' NAME )* ( '/' '@' NAME )?  -- child elements, maybe an attribute
//! op        := '=' | '!=' | '<' | '<=' | '>' | '>=' | '^=' | '*='
//! literal   := "'" any characters but "'" "'"
//!            | '"' any characters but '"' '"'
//!            | NUMBER
//! NUMBER    := '-'? DIGIT+ ( '.' DIGIT+ )? ( ( 'e' | 'E' ) ( '+' | '-' )? DIGIT+ )?
//! NAME      := ( LETTER | '_' | non-ASCII ) ( LETTER | DIGIT | '-' | '.' | '_' | non-ASCII )*
//! ```
//!
//! White space (space, tab, CR, LF) may stand between tokens, not inside a path. `and`,
//! `or` and `exists` are keywords only where the grammar expects them: `exists = 'x'`
//! compares a child element called `exists`. Strings have no escapes (as in XPath): a
//! string holding `'` is written in double quotes and vice versa.
//! Example: `@level = 'error' and (host ^= 'web-' or host = 'db-1')`.
//!
//! # Meaning
//!
//! The payload element is the item's single child element, the root of the stored payload
//! XML. `@a` is its attribute `a`; `x` the text of its first child element with local name
//! `x` (all the text inside, as XPath's string value); `x/y` the first `y` child of that
//! first `x`; `x/@a` the attribute `a` of that first `x`. Names are local names: prefixes
//! and namespaces are ignored, and namespace declarations are not attributes.
//!
//! A comparison is false when its path selects nothing (so `host != 'a'` needs a `host`);
//! `exists(PATH)` is true when it selects something, be it empty. `=`, `!=`, `<`, `<=`,
//! `>`, `>=` compare numerically when the literal is an (unquoted) number and the value,
//! without surrounding white space, is a number too; otherwise they compare the value's
//! text with the literal's text (as written, for a number), by Unicode code points.
//! `^=` (starts with) and `*=` (contains) always compare text. Quoting a number (`'10'`)
//! forces a string comparison.
//!
//! # Use by the engine
//!
//! `Filter::parse_option` reads the subscription option `x-roost#filter` (empty means no
//! filter); a [`ParseError`]'s text ("at 14: expected …") is the `<text/>` of the
//! `not-acceptable` error. What to store is the filter's canonical text (`to_string()`).
//! Each node keeps one [`FilterIndex`] keyed by the engine's subscription number:
//! `insert(key, &filter)` on subscribe or options change (it replaces), `remove(&key)` on
//! unsubscribe; for an item, `matching(&item.payload)` yields the filtered subscriptions it
//! matches (or `extract` the payload once, then `matches`), to join the node's unfiltered
//! ones. A node without filters pays one emptiness check.
//!
//! What the index can follow: `=` (and an `or` of `=` on one path), `^=`, and, where a
//! conjunction has nothing better, a range or `exists`. `!=`, `*=` and what is left of a
//! conjunction are checked only on the subscriptions those lead to; a filter with nothing
//! indexable (say `msg *= 'disk'` alone) is checked on every item.
//!
//! # Limits
//!
//! [`Limits`] bounds a filter's length, predicates and parenthesis nesting, so hostile
//! input is refused with a [`ParseError`], never a stack overflow. The [`FilterIndex`]
//! bounds how far it expands a filter (see [`FilterIndex::with_max_conjunctions`]).

mod compile;
mod extract;
mod index;
mod parse;
mod small;
mod syntax;
mod tree;
mod value;

use std::fmt;
use std::str::FromStr;

pub use extract::Extracted;
pub use index::{FilterIndex, Matches};
pub use parse::ParseError;
pub use syntax::Path;

use syntax::{Expr, Test};

/// Bounds on what [`Filter::parse_with`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest filter, in bytes. Default 1024.
    pub max_len: usize,
    /// Most predicates (comparisons and `exists`) in one filter. Default 32.
    pub max_predicates: usize,
    /// Deepest nesting of parentheses. Default 8; values above [`Limits::DEPTH_CAP`] count
    /// as that cap.
    pub max_depth: usize,
}

impl Limits {
    /// The nesting no setting can exceed: the parser and evaluation recurse once per level.
    pub const DEPTH_CAP: usize = 64;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: 1024,
            max_predicates: 32,
            max_depth: 8,
        }
    }
}

/// A parsed content filter.
///
/// Its [`Display`](fmt::Display) form is canonical: parsing it gives back an equal filter,
/// and it is what should be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses `input` under the default [`Limits`].
    pub fn parse(input: &str) -> Result<Filter, ParseError> {
        Filter::parse_with(input, &Limits::default())
    }

    /// Parses `input` under `limits`.
    pub fn parse_with(input: &str, limits: &Limits) -> Result<Filter, ParseError> {
        let limits = Limits {
            max_depth: limits.max_depth.min(Limits::DEPTH_CAP),
            ..limits.clone()
        };
        parse::parse(input, &limits).map(|expr| Filter { expr })
    }

    /// The value of the subscription option `x-roost#filter`: empty (or only white space)
    /// means no filter.
    pub fn parse_option(input: &str, limits: &Limits) -> Result<Option<Filter>, ParseError> {
        if input.trim().is_empty() {
            return Ok(None);
        }
        Filter::parse_with(input, limits).map(Some)
    }

    /// A filter the engine stored (a subscription's canonical text): it passed the limits
    /// of the day it was accepted, which may have been wider than today's, so only the
    /// nesting cap (which keeps the parser's recursion bounded) applies.
    pub fn parse_stored(text: &str) -> Result<Filter, ParseError> {
        let limits = Limits {
            max_len: usize::MAX,
            max_predicates: usize::MAX,
            max_depth: Limits::DEPTH_CAP,
        };
        Filter::parse_with(text, &limits)
    }

    /// The distinct paths the filter reads, in first-use order.
    pub fn paths(&self) -> Vec<&Path> {
        let mut out: Vec<&Path> = Vec::new();
        visit_preds(&self.expr, &mut |p| {
            if !out.contains(&&p.path) {
                out.push(&p.path);
            }
        });
        out
    }

    /// Whether the filter holds for the payload whose values `values` holds (extracted by
    /// any [`FilterIndex`] or [`Filter::extract`] that knows this filter's paths; a path it
    /// does not know reads as absent).
    pub fn eval(&self, values: &Extracted<'_, '_>) -> bool {
        eval_expr(&self.expr, values)
    }

    /// Reads this filter's paths out of a payload (serialized XML, the engine's
    /// `Item::payload`), for [`Filter::eval`].
    pub fn extract<'p>(&self, payload: &'p str) -> Extracted<'static, 'p> {
        extract::Extracted::standalone(self.paths().into_iter().cloned(), payload)
    }

    /// Whether the filter holds for a payload (serialized XML). To test many filters
    /// against one item, use a [`FilterIndex`]: it reads the payload once.
    pub fn matches_payload(&self, payload: &str) -> bool {
        self.eval(&self.extract(payload))
    }

    pub(crate) fn expr(&self) -> &Expr {
        &self.expr
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl FromStr for Filter {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Filter::parse(s)
    }
}

fn visit_preds<'a>(e: &'a Expr, f: &mut impl FnMut(&'a syntax::Pred)) {
    match e {
        Expr::Pred(p) => f(p),
        Expr::And(xs) | Expr::Or(xs) => xs.iter().for_each(|x| visit_preds(x, f)),
    }
}

fn eval_expr(e: &Expr, values: &Extracted<'_, '_>) -> bool {
    match e {
        Expr::And(xs) => xs.iter().all(|x| eval_expr(x, values)),
        Expr::Or(xs) => xs.iter().any(|x| eval_expr(x, values)),
        Expr::Pred(p) => match (values.value(&p.path), &p.test) {
            (None, _) => false,
            (Some(_), Test::Exists) => true,
            (Some(v), Test::Cmp(op, lit)) => {
                value::compare(*op, &v.text, v.num, lit.text(), lit.num())
            }
        },
    }
}

#[cfg(test)]
mod tests;
