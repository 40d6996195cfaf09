//! What a comparison means: the one home of the language's value semantics, used by
//! [`Filter::eval`](super::Filter::eval) and by the index alike.

use std::cmp::Ordering;

use super::syntax::Op;

/// Length of the number at the start of `s` (`-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`),
/// 0 when there is none. The language's numbers and the values taken as numbers share it.
pub(crate) fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i > start)
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    let (j, any) = digits(i);
    if !any {
        return 0;
    }
    i = j;
    if b.get(i) == Some(&b'.') {
        let (j, any) = digits(i + 1);
        if any {
            i = j;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let (j, any) = digits(i + 1 + sign);
        if any {
            i = j;
        }
    }
    i
}

/// `s` as a number when all of it is one, in the language's grammar. Never NaN; huge
/// exponents give ±infinity, which still orders correctly.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    if s.is_empty() || number_len(s) != s.len() {
        return None;
    }
    // The grammar is a subset of what `f64::from_str` accepts.
    s.parse::<f64>()
        .ok()
        .map(|v| if v == 0.0 { 0.0 } else { v })
}

/// A payload value as a number: its text without surrounding XML white space, when that
/// is a number.
pub(crate) fn value_number(text: &str) -> Option<f64> {
    parse_number(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')))
}

/// Whether `value OP literal` holds. `num` is the value as a number (see
/// [`value_number`]), `lit_num` the literal's when it is an unquoted number: the ordering
/// is numeric when both are numbers, otherwise by string (Unicode code points).
pub(crate) fn compare(
    op: Op,
    text: &str,
    num: Option<f64>,
    lit_text: &str,
    lit_num: Option<f64>,
) -> bool {
    let ord = || match (num, lit_num) {
        // Neither side is ever NaN (see `parse_number`).
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        _ => text.cmp(lit_text),
    };
    match op {
        Op::StartsWith => text.starts_with(lit_text),
        Op::Contains => text.contains(lit_text),
        Op::Eq => ord() == Ordering::Equal,
        Op::Ne => ord() != Ordering::Equal,
        Op::Lt => ord() == Ordering::Less,
        Op::Le => ord() != Ordering::Greater,
        Op::Gt => ord() == Ordering::Greater,
        Op::Ge => ord() != Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_the_grammar() {
        for (s, v) in [
            ("0", 0.0),
            ("-0", 0.0),
            ("42", 42.0),
            ("-3.5", -3.5),
            ("1e3", 1000.0),
            ("2.5E-1", 0.25),
            ("007", 7.0),
        ] {
            assert_eq!(parse_number(s), Some(v), "{s}");
        }
        for s in [
            "", "-", "+1", ".5", "5.", "1e", "1e+", "inf", "NaN", "1_000", "0x10", " 1", "1 ",
        ] {
            assert_eq!(parse_number(s), None, "{s:?}");
        }
        assert_eq!(parse_number("1e999"), Some(f64::INFINITY));
        assert_eq!(value_number(" 12\n"), Some(12.0));
        assert_eq!(number_len("12.5abc"), 4);
        assert_eq!(number_len("12.x"), 2);
        assert_eq!(number_len("3ex"), 1);
    }

    #[test]
    fn numeric_only_when_both_sides_are_numbers() {
        // 10 > 9 as numbers, "10" < "9" as strings.
        assert!(compare(Op::Gt, "10", Some(10.0), "9", Some(9.0)));
        assert!(!compare(Op::Gt, "10", Some(10.0), "9", None));
        assert!(compare(Op::Eq, "5.0", Some(5.0), "5", Some(5.0)));
        assert!(!compare(Op::Eq, "5.0", Some(5.0), "5", None));
        assert!(compare(Op::Lt, "abc", None, "b", None));
        assert!(compare(Op::Ne, "abc", None, "5", Some(5.0)));
        assert!(compare(Op::Le, "b", None, "b", None));
        assert!(compare(Op::Ge, "-0", Some(0.0), "0", Some(0.0)));
        assert!(compare(Op::StartsWith, "web-1", None, "web-", None));
        assert!(!compare(Op::StartsWith, "10", Some(10.0), "1.0", Some(1.0)));
        assert!(compare(Op::Contains, "a-10-b", None, "10", Some(10.0)));
    }
}
