//! Property tests of content filters: the index returns exactly what a linear scan of
//! `Filter::eval` returns, on random filters, payloads and insert/remove sequences; and the
//! canonical text of any parsed filter parses back to the same filter.

use std::collections::BTreeMap;

use proptest::prelude::*;
use roost_nodes::filter::{Filter, FilterIndex};

/// A small universe, so that filters and payloads meet often.
const PATHS: &[&str] = &["@a", "@b", "x", "y", "x/@a", "x/z", "x/z/@b", "w/@a"];
const TEXTS: &[&str] = &[
    "", "a", "ab", "abc", "b", "web-1", "web-2", "1", "2", "10", "-1", "1.5", "01", " 2 ", "it's",
    "<&>",
];
const NUMBERS: &[&str] = &["0", "1", "2", "10", "-1", "1.5", "01", "1e1", "2.0", "-0"];
const OPS: &[&str] = &["=", "!=", "<", "<=", ">", ">=", "^=", "*="];

fn quote(s: &str) -> String {
    if s.contains('\'') {
        format!("\"{s}\"")
    } else {
        format!("'{s}'")
    }
}

fn predicate() -> impl Strategy<Value = String> {
    let path = prop::sample::select(PATHS);
    let literal = prop_oneof![
        prop::sample::select(TEXTS).prop_map(quote),
        prop::sample::select(NUMBERS).prop_map(str::to_string),
    ];
    prop_oneof![
        1 => path.clone().prop_map(|p| format!("exists({p})")),
        8 => (path, prop::sample::select(OPS), literal)
            .prop_map(|(p, op, l)| format!("{p} {op} {l}")),
    ]
}

/// Filter source text: predicates joined by `and`/`or`, sometimes in parentheses.
fn filter_text() -> impl Strategy<Value = String> {
    predicate().prop_recursive(3, 12, 4, |inner| {
        (
            prop::collection::vec(inner, 2..4),
            prop::bool::ANY,
            prop::bool::ANY,
        )
            .prop_map(|(xs, and, paren)| {
                let joined = xs.join(if and { " and " } else { " or " });
                if paren {
                    format!("({joined})")
                } else {
                    joined
                }
            })
    })
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('\'', "&apos;")
}

/// An element: name, attributes `a`/`b`, text, children.
#[derive(Debug, Clone)]
struct El {
    name: &'static str,
    a: Option<&'static str>,
    b: Option<&'static str>,
    text: Option<&'static str>,
    children: Vec<El>,
}

impl El {
    fn xml(&self, out: &mut String, root: bool) {
        out.push('<');
        out.push_str(self.name);
        if root {
            out.push_str(" xmlns='urn:test'");
        }
        for (k, v) in [("a", self.a), ("b", self.b)] {
            if let Some(v) = v {
                out.push_str(&format!(" {k}='{}'", escape(v)));
            }
        }
        out.push('>');
        if let Some(t) = self.text {
            out.push_str(&escape(t));
        }
        for c in &self.children {
            c.xml(out, false);
        }
        out.push_str("</");
        out.push_str(self.name);
        out.push('>');
    }
}

fn element(depth: u32) -> BoxedStrategy<El> {
    let name = prop::sample::select(&["x", "y", "z", "w"][..]);
    let value = || prop::option::of(prop::sample::select(TEXTS));
    let children = if depth == 0 {
        Just(Vec::new()).boxed()
    } else {
        prop::collection::vec(element(depth - 1), 0..3).boxed()
    };
    (name, value(), value(), value(), children)
        .prop_map(|(name, a, b, text, children)| El {
            name,
            a,
            b,
            text,
            children,
        })
        .boxed()
}

fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        12 => element(2).prop_map(|mut e| {
            e.name = "p";
            let mut s = String::new();
            e.xml(&mut s, true);
            s
        }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Insert(u8, String),
    Remove(u8),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            4 => (0u8..24, filter_text()).prop_map(|(k, f)| Step::Insert(k, f)),
            1 => (0u8..24).prop_map(Step::Remove),
        ],
        1..48,
    )
}

// 256 cases per run by default; `PROPTEST_CASES=20000` for a longer hunt.
proptest! {
    #[test]
    fn index_matches_a_linear_scan(
        steps in steps(),
        payloads in prop::collection::vec(payload(), 1..8),
        max_conj in prop::sample::select(&[1usize, 3, 64][..]),
    ) {
        let mut index = FilterIndex::with_max_conjunctions(max_conj);
        let mut held: BTreeMap<u8, Filter> = BTreeMap::new();
        for step in &steps {
            match step {
                Step::Insert(k, text) => {
                    let f = Filter::parse(text).expect("generated filters parse");
                    index.insert(*k, &f);
                    held.insert(*k, f);
                }
                Step::Remove(k) => {
                    prop_assert_eq!(index.remove(k), held.remove(k).is_some());
                }
            }
        }
        prop_assert_eq!(index.len(), held.len());
        for p in &payloads {
            let mut got: Vec<u8> = index.matching(p).collect();
            got.sort();
            let values = index.extract(p);
            let linear: Vec<u8> = held
                .iter()
                .filter(|(_, f)| f.eval(&values))
                .map(|(k, _)| *k)
                .collect();
            // Each filter on its own, with its own extraction, agrees too.
            let alone: Vec<u8> = held
                .iter()
                .filter(|(_, f)| f.matches_payload(p))
                .map(|(k, _)| *k)
                .collect();
            prop_assert_eq!(&got, &linear, "payload {}", p);
            prop_assert_eq!(&got, &alone, "payload {}", p);
        }
        // Removing everything leaves an index that matches nothing and reads nothing.
        for k in held.keys() {
            index.remove(k);
        }
        prop_assert!(index.is_empty());
        prop_assert_eq!(index.paths().count(), 0);
    }

    #[test]
    fn canonical_text_round_trips(text in filter_text()) {
        let f = Filter::parse(&text).expect("generated filters parse");
        let canon = f.to_string();
        let g = Filter::parse(&canon).expect("canonical text parses");
        prop_assert_eq!(&g, &f);
        prop_assert_eq!(g.to_string(), canon);
    }
}
