//! Hostile content filters (issue 15) through the parser, and through the index.
//!
//! The input is text: a filter, optionally followed by a NUL byte and a payload. The filter
//! is parsed under the default limits and under tight ones: it must parse or be refused
//! with a position inside the input, never panic. A filter that parses must print a
//! canonical text that parses back to the same filter and prints the same again. It is then
//! filed in indexes (one that expands filters into conjunctions, one that evaluates them
//! whole) beside a few fixed filters, and the index must match the payload (the given one,
//! or a few fixed ones) exactly as the filters evaluated one by one do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost_nodes::filter::{Filter, FilterIndex, Limits};

const FIXED: &[&str] = &[
    "@level = 'error'",
    "host ^= 'web-' or @n > 5",
    "x/@a != 'b' and exists(y)",
    "(@level = 'warn' or @level = 'error') and host = 'db-1'",
];

const PAYLOADS: &[&str] = &[
    "",
    "<log xmlns='urn:x' level='error' n='10'><host>web-1</host><x a='c'/><y/></log>",
    "<log xmlns='urn:x' level='warn' n='-3.5'><host>db-1</host><x a='b'>t<y>u</y></x></log>",
    "<p a='1' b='x'><x a='1'><z b='2'>5</z></x><y>abc</y><w a=' 2 '/></p>",
];

fn check(filter: &Filter, limits: &Limits) {
    let canon = filter.to_string();
    // Canonical text has the same predicates and no deeper nesting, but may be longer.
    let relaxed = Limits {
        max_len: usize::MAX,
        ..limits.clone()
    };
    let again = Filter::parse_with(&canon, &relaxed)
        .unwrap_or_else(|e| panic!("canonical text {canon:?} does not parse: {e}"));
    assert_eq!(&again, filter, "{canon:?} parses to another filter");
    assert_eq!(again.to_string(), canon, "canonical text is not stable");
}

fn matches(filter: &Filter, payloads: &[&str]) {
    let fixed: Vec<Filter> = FIXED
        .iter()
        .map(|f| Filter::parse(f).expect("fixed"))
        .collect();
    for max in [FilterIndex::<usize>::DEFAULT_MAX_CONJUNCTIONS, 1] {
        let mut index = FilterIndex::with_max_conjunctions(max);
        index.insert(0usize, filter);
        for (i, f) in fixed.iter().enumerate() {
            index.insert(i + 1, f);
        }
        for p in payloads {
            let mut got: Vec<usize> = index.matching(p).collect();
            got.sort_unstable();
            let mut want: Vec<usize> = Vec::new();
            if filter.matches_payload(p) {
                want.push(0);
            }
            want.extend(
                (0..fixed.len())
                    .filter(|&i| fixed[i].matches_payload(p))
                    .map(|i| i + 1),
            );
            assert_eq!(got, want, "filter {filter} on {p:?}");
        }
        index.remove(&0);
        assert!(index.matching(PAYLOADS[1]).all(|k| k != 0));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (source, payload) = match text.split_once('\0') {
        Some((f, p)) => (f, Some(p)),
        None => (&*text, None),
    };
    let tight = Limits {
        max_len: 64,
        max_predicates: 4,
        max_depth: 2,
    };
    let mut parsed = None;
    for limits in [Limits::default(), tight] {
        match Filter::parse_with(source, &limits) {
            Ok(f) => {
                check(&f, &limits);
                parsed.get_or_insert(f);
            }
            Err(e) => {
                assert!(
                    e.offset <= source.chars().count(),
                    "{e} past the end of {source:?}"
                );
                assert!(!e.reason.is_empty());
            }
        }
    }
    if let Some(f) = parsed {
        match payload {
            Some(p) => matches(&f, &[p]),
            None => matches(&f, PAYLOADS),
        }
    }
});
