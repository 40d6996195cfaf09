//! The filter parser: recursive descent over the grammar in the module doc, bounded by
//! [`Limits`] so that no input can exhaust the stack or the memory.

use std::fmt;

use super::syntax::{Expr, Literal, Number, Op, Path, Pred, Test};
use super::value::number_len;
use super::Limits;

/// Why a filter was refused: where (in characters from the start, counting from 0) and why,
/// in words fit for the `<text/>` of a stanza error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Characters (not bytes) before the place the parser gave up.
    pub offset: usize,
    /// What was expected or what is wrong there.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses `input` under `limits`.
pub(crate) fn parse(input: &str, limits: &Limits) -> Result<Expr, ParseError> {
    let mut p = Parser {
        s: input,
        pos: 0,
        limits,
        preds: 0,
    };
    if input.len() > limits.max_len {
        let mut at = limits.max_len;
        while !input.is_char_boundary(at) {
            at -= 1;
        }
        p.pos = at;
        return Err(p.error(format!(
            "the filter is longer than {} bytes",
            limits.max_len
        )));
    }
    let e = p.or(0)?;
    p.ws();
    match p.peek() {
        None => Ok(e),
        Some(')') => Err(p.error("')' without a matching '('")),
        Some(_) => Err(p.error("expected 'and', 'or' or the end of the filter")),
    }
}

struct Parser<'a> {
    s: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    limits: &'a Limits,
    preds: usize,
}

/// A character that may start a name: an ASCII letter, `_` or anything beyond ASCII (XML
/// allows most of it; payload names are matched as written, so being lenient here costs
/// nothing).
fn name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn name_char(c: char) -> bool {
    name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
}

impl<'a> Parser<'a> {
    fn error(&self, reason: impl Into<String>) -> ParseError {
        self.error_at(self.pos, reason)
    }

    fn error_at(&self, byte: usize, reason: impl Into<String>) -> ParseError {
        ParseError {
            offset: self.s[..byte].chars().count(),
            reason: reason.into(),
        }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn ws(&mut self) {
        let r = self.rest();
        self.pos += r.len() - r.trim_start_matches([' ', '\t', '\r', '\n']).len();
    }

    /// Consumes `kw` when it stands as a word here (not followed by a name character).
    fn keyword(&mut self, kw: &str) -> bool {
        let r = self.rest();
        if r.starts_with(kw) && !r[kw.len()..].starts_with(name_char) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    /// `or_expr := and_expr ('or' and_expr)*`
    fn or(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut xs = vec![self.and(depth)?];
        loop {
            self.ws();
            if !self.keyword("or") {
                break;
            }
            xs.push(self.and(depth)?);
        }
        Ok(flatten(xs, false))
    }

    /// `and_expr := primary ('and' primary)*`
    fn and(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut xs = vec![self.primary(depth)?];
        loop {
            self.ws();
            if !self.keyword("and") {
                break;
            }
            xs.push(self.primary(depth)?);
        }
        Ok(flatten(xs, true))
    }

    /// `primary := '(' or_expr ')' | 'exists' '(' path ')' | path op literal`
    fn primary(&mut self, depth: usize) -> Result<Expr, ParseError> {
        self.ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                if depth >= self.limits.max_depth {
                    return Err(self.error(format!(
                        "parentheses nested deeper than {}",
                        self.limits.max_depth
                    )));
                }
                self.pos += 1;
                let e = self.or(depth + 1)?;
                self.ws();
                if self.peek() != Some(')') {
                    return Err(self.error("expected 'and', 'or' or ')'"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(c) if c == '@' || name_start(c) => {
                self.count_predicate(start)?;
                // `exists` is a keyword only when a '(' follows: a child element may be
                // called `exists` (or `and`, `or`).
                if self.keyword("exists") {
                    self.ws();
                    if self.peek() == Some('(') {
                        self.pos += 1;
                        self.ws();
                        let path = self.path()?;
                        self.ws();
                        if self.peek() != Some(')') {
                            return Err(self.error("expected ')' after the path of exists("));
                        }
                        self.pos += 1;
                        return Ok(Expr::Pred(Pred {
                            path,
                            test: Test::Exists,
                        }));
                    }
                    self.pos = start;
                }
                let path = self.path()?;
                self.ws();
                let op = self.op()?;
                self.ws();
                let lit = self.literal(op)?;
                Ok(Expr::Pred(Pred {
                    path,
                    test: Test::Cmp(op, lit),
                }))
            }
            None => Err(self.error("expected a predicate, '(' or exists(…)")),
            Some(_) => Err(self.error(
                "expected a predicate (a path such as @attr, name or name/@attr), '(' or exists(…)",
            )),
        }
    }

    fn count_predicate(&mut self, start: usize) -> Result<(), ParseError> {
        self.preds += 1;
        if self.preds > self.limits.max_predicates {
            return Err(self.error_at(
                start,
                format!("more than {} predicates", self.limits.max_predicates),
            ));
        }
        Ok(())
    }

    fn name(&mut self, after: &str) -> Result<Box<str>, ParseError> {
        let r = self.rest();
        if !r.starts_with(name_start) {
            return Err(self.error(format!("expected a name after {after}")));
        }
        let len = r.find(|c| !name_char(c)).unwrap_or(r.len());
        self.pos += len;
        Ok(r[..len].into())
    }

    /// `path := '@' NAME | NAME ('/' NAME)* ('/' '@' NAME)?`
    fn path(&mut self) -> Result<Path, ParseError> {
        if self.peek() == Some('@') {
            self.pos += 1;
            let attr = self.name("'@'")?;
            return Ok(Path {
                steps: Box::new([]),
                attr: Some(attr),
            });
        }
        let mut steps = vec![self.name("the start of a path")?];
        while self.peek() == Some('/') {
            self.pos += 1;
            if self.peek() == Some('@') {
                self.pos += 1;
                let attr = self.name("'@'")?;
                return Ok(Path {
                    steps: steps.into(),
                    attr: Some(attr),
                });
            }
            steps.push(self.name("'/'")?);
        }
        Ok(Path {
            steps: steps.into(),
            attr: None,
        })
    }

    fn op(&mut self) -> Result<Op, ParseError> {
        let r = self.rest();
        match Op::ALL.into_iter().find(|op| r.starts_with(op.as_str())) {
            Some(op) => {
                self.pos += op.as_str().len();
                Ok(op)
            }
            None => {
                Err(self.error("expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path"))
            }
        }
    }

    fn literal(&mut self, op: Op) -> Result<Literal, ParseError> {
        let r = self.rest();
        match r.chars().next() {
            Some(q @ ('\'' | '"')) => match r[1..].find(q) {
                Some(end) => {
                    self.pos += end + 2;
                    Ok(Literal::Str(r[1..end + 1].into()))
                }
                None => Err(self.error(format!("string without its closing {q}"))),
            },
            _ => {
                let len = number_len(r);
                if len == 0 {
                    return Err(self.error(format!(
                        "expected a quoted string or a number after '{}'",
                        op.as_str()
                    )));
                }
                if r[len..].starts_with(|c: char| name_char(c) || c == '.') {
                    return Err(self.error("malformed number"));
                }
                self.pos += len;
                let text = &r[..len];
                let value = super::value::parse_number(text).unwrap_or(0.0);
                Ok(Literal::Num(Number {
                    text: text.into(),
                    value,
                }))
            }
        }
    }
}

/// One `and`/`or` list, canonical: a single member stands alone, members of the same kind
/// are spliced in.
fn flatten(xs: Vec<Expr>, and: bool) -> Expr {
    if xs.len() == 1 {
        return xs.into_iter().next().unwrap_or(Expr::And(Vec::new()));
    }
    let mut out = Vec::with_capacity(xs.len());
    for x in xs {
        match x {
            Expr::And(inner) if and => out.extend(inner),
            Expr::Or(inner) if !and => out.extend(inner),
            x => out.push(x),
        }
    }
    if and {
        Expr::And(out)
    } else {
        Expr::Or(out)
    }
}
