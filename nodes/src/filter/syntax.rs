//! The filter's syntax tree and its canonical text form.
//!
//! The tree is built only by the parser, which keeps it canonical: `and` and `or` lists are
//! flat (an `and` never directly holds an `and`, nor an `or` an `or`) and hold at least two
//! members, so that parsing the [`Display`] form gives back the same tree.

use std::fmt;

/// A path into an item's payload element: child element names, then maybe an attribute.
///
/// `@a` (no steps), `x`, `x/y`, `x/@a`, `x/y/@a`. Names are local names (no prefix): a
/// payload's namespaces play no part in selecting values.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Path {
    pub(crate) steps: Box<[Box<str>]>,
    pub(crate) attr: Option<Box<str>>,
}

impl Path {
    /// The child element names walked from the payload element, outermost first.
    pub fn steps(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().map(|s| &**s)
    }

    /// The attribute the path ends in, if any.
    pub fn attr(&self) -> Option<&str> {
        self.attr.as_deref()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(s)?;
        }
        if let Some(a) = &self.attr {
            if !self.steps.is_empty() {
                f.write_str("/")?;
            }
            write!(f, "@{a}")?;
        }
        Ok(())
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    StartsWith,
    Contains,
}

impl Op {
    /// Every operator, longest spelling first so that a scanner can take the first that fits.
    pub(crate) const ALL: [Op; 8] = [
        Op::Ne,
        Op::Le,
        Op::Ge,
        Op::StartsWith,
        Op::Contains,
        Op::Eq,
        Op::Lt,
        Op::Gt,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::StartsWith => "^=",
            Op::Contains => "*=",
        }
    }
}

/// A number as written in a filter: its text (kept, because a value that is not a number is
/// compared with that text) and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    pub(crate) text: Box<str>,
    pub(crate) value: f64,
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    /// A quoted string: always compared as a string.
    Str(Box<str>),
    /// An unquoted number: compared numerically with values that are numbers.
    Num(Number),
}

impl Literal {
    /// The text compared with values that are not numbers (and by `^=`, `*=`).
    pub(crate) fn text(&self) -> &str {
        match self {
            Literal::Str(s) => s,
            Literal::Num(n) => &n.text,
        }
    }

    /// The numeric value, for a number literal.
    pub(crate) fn num(&self) -> Option<f64> {
        match self {
            Literal::Str(_) => None,
            Literal::Num(n) => Some(n.value),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The parser never yields a string holding both quote characters (the language
            // has no escapes, as in XPath), so one of the two quotes always fits.
            Literal::Str(s) if s.contains('\'') => write!(f, "\"{s}\""),
            Literal::Str(s) => write!(f, "'{s}'"),
            Literal::Num(n) => f.write_str(&n.text),
        }
    }
}

/// What a predicate tests at its path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    /// `exists(PATH)`.
    Exists,
    /// `PATH OP LITERAL`.
    Cmp(Op, Literal),
}

/// One predicate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pred {
    pub(crate) path: Path,
    pub(crate) test: Test,
}

impl fmt::Display for Pred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            Test::Exists => write!(f, "exists({})", self.path),
            Test::Cmp(op, lit) => write!(f, "{} {} {lit}", self.path, op.as_str()),
        }
    }
}

/// A filter expression (canonical: see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Pred(Pred),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Pred(p) => p.fmt(f),
            Expr::And(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" and ")?;
                    }
                    // `and` binds tighter: only an `or` inside an `and` needs parentheses.
                    if matches!(x, Expr::Or(_)) {
                        write!(f, "({x})")?;
                    } else {
                        x.fmt(f)?;
                    }
                }
                Ok(())
            }
            Expr::Or(xs) => {
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" or ")?;
                    }
                    x.fmt(f)?;
                }
                Ok(())
            }
        }
    }
}
