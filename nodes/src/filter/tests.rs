//! Parser, semantics and index tests of the filter module.

use super::syntax::{Expr, Literal, Op, Test};
use super::*;

fn parse(s: &str) -> Filter {
    Filter::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn err(s: &str) -> String {
    match Filter::parse(s) {
        Ok(f) => panic!("{s:?} parsed as {f}"),
        Err(e) => e.to_string(),
    }
}

/// Parses, checks the canonical form, and that it parses back to the same filter.
fn canon(s: &str) -> String {
    let f = parse(s);
    let text = f.to_string();
    assert_eq!(parse(&text), f, "{s:?} -> {text:?}");
    assert_eq!(parse(&text).to_string(), text);
    text
}

#[test]
fn every_operator() {
    for (op, o) in [
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("^=", Op::StartsWith),
        ("*=", Op::Contains),
    ] {
        let f = parse(&format!("@a{op}'x'"));
        match f.expr() {
            Expr::Pred(p) => assert_eq!(p.test, Test::Cmp(o, Literal::Str("x".into()))),
            e => panic!("{e:?}"),
        }
        assert_eq!(canon(&format!("@a  {op}  'x'")), format!("@a {op} 'x'"));
    }
    assert_eq!(canon("exists( a/@b )"), "exists(a/@b)");
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(
        canon("a = 1 or b = 2 and c = 3"),
        "a = 1 or b = 2 and c = 3"
    );
    match parse("a = 1 or b = 2 and c = 3").expr() {
        Expr::Or(xs) => {
            assert!(matches!(xs[0], Expr::Pred(_)));
            assert!(matches!(&xs[1], Expr::And(ys) if ys.len() == 2));
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(
        canon("(a = 1 or b = 2) and c = 3"),
        "(a = 1 or b = 2) and c = 3"
    );
    assert_eq!(
        canon("a = 1 and (b = 2 or c = 3)"),
        "a = 1 and (b = 2 or c = 3)"
    );
    // Redundant parentheses and nesting of one kind flatten away.
    assert_eq!(canon("((a = 1))"), "a = 1");
    assert_eq!(
        canon("(a = 1 and b = 2) and c = 3"),
        "a = 1 and b = 2 and c = 3"
    );
    assert_eq!(
        canon("a = 1 or (b = 2 or (c = 3))"),
        "a = 1 or b = 2 or c = 3"
    );
    assert_eq!(
        canon("(a = 1 and b = 2) or c = 3"),
        "a = 1 and b = 2 or c = 3"
    );
    assert_eq!(
        canon("@level = 'error' and (host ^= 'web-' or host = 'db-1')"),
        "@level = 'error' and (host ^= 'web-' or host = 'db-1')"
    );
    assert_eq!(
        canon("(a=1 or b=2) and (c=3 or (d=4 and (e=5 or f=6)))"),
        "(a = 1 or b = 2) and (c = 3 or d = 4 and (e = 5 or f = 6))"
    );
}

#[test]
fn quoting_and_numbers() {
    assert_eq!(canon("a = \"x\""), "a = 'x'");
    assert_eq!(canon("a = \"it's\""), "a = \"it's\"");
    assert_eq!(canon("a = 'say \"hi\"'"), "a = 'say \"hi\"'");
    assert_eq!(canon("a = ''"), "a = ''");
    assert_eq!(
        canon("a = 'and or ( ) exists('"),
        "a = 'and or ( ) exists('"
    );
    assert_eq!(canon("a = 'é ✓'"), "a = 'é ✓'");
    // Numbers keep their text: it is what a value that is not a number is compared with.
    assert_eq!(canon("a >= -3.50e+2"), "a >= -3.50e+2");
    assert_eq!(canon("a = 007"), "a = 007");
    assert!(matches!(
        parse("a = 10").expr(),
        Expr::Pred(p) if p.test == Test::Cmp(Op::Eq, Literal::Num(syntax::Number { text: "10".into(), value: 10.0 }))
    ));
    assert!(matches!(
        parse("a = '10'").expr(),
        Expr::Pred(p) if p.test == Test::Cmp(Op::Eq, Literal::Str("10".into()))
    ));
}

#[test]
fn paths_and_names() {
    for p in [
        "@a",
        "a",
        "a/b/c",
        "a/b/@c",
        "x-y.z_1",
        "_a/@b-c",
        "événement/@hôte",
    ] {
        assert_eq!(canon(&format!("{p} = 1")), format!("{p} = 1"));
    }
    // Keywords are names where a path is expected.
    assert_eq!(canon("exists = 'x'"), "exists = 'x'");
    assert_eq!(
        canon("and = 1 and or = 2 or exists(exists)"),
        "and = 1 and or = 2 or exists(exists)"
    );
    assert_eq!(canon("exists/and = 1"), "exists/and = 1");
    assert_eq!(
        canon("@a='x'and(b='y'or@c=1)"),
        "@a = 'x' and (b = 'y' or @c = 1)"
    );
    assert_eq!(canon("\t@a\n=\r'x' "), "@a = 'x'");
    let f = parse("a/b/@c = 1 and @d = 2 or a/b/@c = 3");
    let paths: Vec<String> = f.paths().iter().map(|p| p.to_string()).collect();
    assert_eq!(paths, ["a/b/@c", "@d"]);
}

#[test]
fn errors_say_where_and_why() {
    for (input, msg) in [
        ("", "at 0: expected a predicate, '(' or exists(…)"),
        ("   ", "at 3: expected a predicate, '(' or exists(…)"),
        ("host =", "at 6: expected a quoted string or a number after '='"),
        (
            "@level = 'x' and host ^=",
            "at 24: expected a quoted string or a number after '^='",
        ),
        ("host == 'x'", "at 6: expected a quoted string or a number after '='"),
        ("host = 'x", "at 7: string without its closing '"),
        ("host = \"x'", "at 7: string without its closing \""),
        (
            "host",
            "at 4: expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path",
        ),
        (
            "host ~= 'x'",
            "at 5: expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path",
        ),
        (
            "ns:host = 'x'",
            "at 2: expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path",
        ),
        ("a = 1 b = 2", "at 6: expected 'and', 'or' or the end of the filter"),
        ("a = 1 AND b = 2", "at 6: expected 'and', 'or' or the end of the filter"),
        ("a = 1 andb = 2", "at 6: expected 'and', 'or' or the end of the filter"),
        ("(a = 1", "at 6: expected 'and', 'or' or ')'"),
        ("(a = 1 b", "at 7: expected 'and', 'or' or ')'"),
        ("a = 1)", "at 5: ')' without a matching '('"),
        ("@ = 1", "at 1: expected a name after '@'"),
        ("a/ = 1", "at 2: expected a name after '/'"),
        ("a/@ = 1", "at 3: expected a name after '@'"),
        ("a/@b/c = 1", "at 4: expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path"),
        ("a = 5x", "at 4: malformed number"),
        ("a = 5.", "at 4: malformed number"),
        ("a = 1e", "at 4: malformed number"),
        ("a = -", "at 4: expected a quoted string or a number after '='"),
        ("a = .5", "at 4: expected a quoted string or a number after '='"),
        ("a = 1 and", "at 9: expected a predicate, '(' or exists(…)"),
        ("a = 1 or or b = 1", "at 12: expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path"),
        ("exists(a", "at 8: expected ')' after the path of exists("),
        ("exists(@)", "at 8: expected a name after '@'"),
        ("1 = a", "at 0: expected a predicate (a path such as @attr, name or name/@attr), '(' or exists(…)"),
        ("été = 'x' and", "at 13: expected a predicate, '(' or exists(…)"),
        ("'x' = a", "at 0: expected a predicate (a path such as @attr, name or name/@attr), '(' or exists(…)"),
    ] {
        assert_eq!(err(input), msg, "{input:?}");
    }
    let e = Filter::parse("a = 1 and (b").unwrap_err();
    assert_eq!(
        (e.offset, e.reason.as_str()),
        (
            12,
            "expected an operator (=, !=, <, <=, >, >=, ^=, *=) after the path"
        )
    );
}

#[test]
fn limits_refuse_hostile_input() {
    let limits = Limits {
        max_len: 40,
        max_predicates: 3,
        max_depth: 2,
    };
    let p = |s: &str| Filter::parse_with(s, &limits).map_err(|e| e.to_string());
    assert!(p("a = 1 and b = 2 and c = 3").is_ok());
    assert_eq!(
        p("a = 1 and b = 2 and c = 3 or d = 4").unwrap_err(),
        "at 29: more than 3 predicates"
    );
    assert_eq!(
        p(&"a".repeat(41)).unwrap_err(),
        "at 40: the filter is longer than 40 bytes"
    );
    // The limit falls inside a two-byte character: the offset is in characters.
    assert_eq!(
        p(&"é".repeat(30)).unwrap_err(),
        "at 20: the filter is longer than 40 bytes"
    );
    assert!(p("((a = 1))").is_ok());
    assert_eq!(
        p("(((a = 1)))").unwrap_err(),
        "at 2: parentheses nested deeper than 2"
    );
    // No stack overflow, whatever the limits say.
    let deep = format!("{}a = 1{}", "(".repeat(100_000), ")".repeat(100_000));
    let huge = Limits {
        max_len: usize::MAX,
        max_predicates: usize::MAX,
        max_depth: usize::MAX,
    };
    let e = Filter::parse_with(&deep, &huge).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "at {}: parentheses nested deeper than {}",
            Limits::DEPTH_CAP,
            Limits::DEPTH_CAP
        )
    );
    let long = vec!["a = 1"; 20_000].join(" or ");
    assert!(Filter::parse(&long)
        .unwrap_err()
        .reason
        .contains("longer than 1024"));
    assert!(Filter::parse_with(&long, &huge).is_ok());
    let defaults = Limits::default();
    assert_eq!(
        (
            defaults.max_len,
            defaults.max_predicates,
            defaults.max_depth
        ),
        (1024, 32, 8)
    );
}

#[test]
fn the_option_value() {
    assert_eq!(Filter::parse_option("", &Limits::default()), Ok(None));
    assert_eq!(Filter::parse_option(" \n", &Limits::default()), Ok(None));
    assert_eq!(
        Filter::parse_option("@a = 1", &Limits::default()),
        Ok(Some(parse("@a = 1")))
    );
    assert!(Filter::parse_option("@a =", &Limits::default()).is_err());
    assert_eq!("@a=1".parse::<Filter>(), Ok(parse("@a = 1")));
}

const LOG: &str = "<log xmlns='urn:example:log' xmlns:x='urn:x' level='error' x:prio='5' \
     count=' 12 '><host>web-1</host><host>db-1</host><msg lang='en'>disk <b>full</b> &amp; \
     <![CDATA[<raw>]]> &#x263A;</msg><meta><tag k='a'/><tag k='b'/><empty/></meta>\
     <x:ns-child>prefixed</x:ns-child></log>";

fn holds(filter: &str, payload: &str) -> bool {
    let f = parse(filter);
    let mut index = FilterIndex::new();
    index.insert(0u8, &f);
    let indexed = index.matching(payload).next().is_some();
    let direct = f.matches_payload(payload);
    assert_eq!(indexed, direct, "index and eval disagree on {filter:?}");
    direct
}

#[test]
fn what_paths_select() {
    for (filter, expect) in [
        ("@level = 'error'", true),
        ("@level = 'warn'", false),
        // The first `host` only.
        ("host = 'web-1'", true),
        ("host = 'db-1'", false),
        // All the text inside, entities and CDATA resolved.
        ("msg = 'disk full & <raw> ☺'", true),
        ("msg/@lang = 'en'", true),
        ("msg/b = 'full'", true),
        ("meta/tag/@k = 'a'", true),
        ("meta/tag/@k = 'b'", false),
        ("exists(meta/empty)", true),
        ("meta/empty = ''", true),
        ("exists(meta/missing)", false),
        ("exists(@missing)", false),
        // Local names: prefixes are ignored, namespace declarations are not attributes.
        ("@prio = 5", true),
        ("ns-child = 'prefixed'", true),
        ("exists(@xmlns)", false),
        ("exists(@x)", false),
        // A comparison on nothing is false, even `!=`.
        ("@missing != 'x'", false),
        ("missing < 1 or missing >= 1", false),
    ] {
        assert_eq!(holds(filter, LOG), expect, "{filter}");
    }
}

#[test]
fn how_values_compare() {
    for (filter, expect) in [
        // Numbers when both sides are numbers (white space around the value is fine)...
        ("@count = 12", true),
        ("@count > 9", true),
        ("@count = 12.0", true),
        ("@prio >= 5e0", true),
        // ...strings otherwise: "12" with its spaces, or a quoted literal.
        ("@count = '12'", false),
        ("@count = ' 12 '", true),
        ("@prio > '10'", true),
        ("@prio > 10", false),
        ("@level > 5", true),
        ("@level < 'f'", true),
        ("@level <= 'error'", true),
        ("@level >= 'error'", true),
        ("@level != 'error'", false),
        ("@level != 'warn'", true),
        ("@level ^= 'err'", true),
        ("@level ^= 'rr'", false),
        ("@level *= 'rr'", true),
        ("@level *= ''", true),
        ("host ^= 'web-' and @level = 'error'", true),
        (
            "@level = 'error' and (host ^= 'web-' or host = 'db-1')",
            true,
        ),
        ("@level = 'warn' or host = 'db-1' or exists(meta)", true),
        ("@level = 'warn' or host = 'db-1'", false),
    ] {
        assert_eq!(holds(filter, LOG), expect, "{filter}");
    }
}

#[test]
fn odd_payloads() {
    // A notification-only item has no payload: only nothing matches... nothing.
    assert!(!holds("exists(@a)", ""));
    assert!(!holds("@a != 'x'", ""));
    // Not well-formed: what was read before the fault counts, unfinished text does not.
    assert!(holds("@a = '1'", "<p a='1'><x>abc</y></p>"));
    assert!(!holds("x = 'abc'", "<p a='1'><x>abc</y></p>"));
    assert!(!holds("x = 'abc'", "<p a='1'><x>abc"));
    assert!(holds(
        "@a = '1'",
        "<?xml version='1.0'?><!-- c --><p a='1'/>"
    ));
    assert!(holds("@a = '1 2'", "<p a='1\n2'/>"));
    assert!(holds(
        "@a = 'x&y\"' and @b = 'z'",
        "<p a='x&amp;y&quot;' b=\"z\"/>"
    ));
    assert!(holds("x = 'a\nb'", "<p><x>a\r\nb</x></p>"));
    // Only the first top-level element is the payload.
    assert!(!holds("@a = '2'", "<p a='1'/><p a='2'/>"));
    // The text of an element ends with it, not with the first child.
    assert!(holds("x = 'abcd'", "<p><x>a<y>b</y>c<z/>d</x></p>"));
    assert!(holds("x/y = 'b'", "<p><x>a<y>b</y>c</x></p>"));
    // Deep payloads are walked without recursion.
    let deep = format!("<p>{}</p>", "<d>".repeat(10_000) + &"</d>".repeat(10_000));
    assert!(holds("exists(d/d/d)", &deep));
}

#[test]
fn the_index_finds_what_eval_finds() {
    let filters = [
        "@level = 'error'",
        "@level = 'error' or @level = 'warn'",
        "host ^= 'web-'",
        "host ^= 'web-1'",
        "host ^= 'w'",
        "host ^= 'db'",
        "@count > 10",
        "@count <= 12",
        "@count < 12",
        "@count >= '13'",
        "@level > 'a' and host = 'web-1'",
        "exists(meta)",
        "exists(meta) and @level != 'warn'",
        "msg *= 'full'",
        "(@level = 'error' or host = 'x') and (@count = 12 or @prio = 4)",
        "@prio = '5' or @prio = 5",
        "@level = 'error' and host = 'web-1' and @prio = 5 and @count = 12 and msg/@lang = 'en'",
    ];
    let mut index = FilterIndex::new();
    for (i, f) in filters.iter().enumerate() {
        index.insert(i, &parse(f));
    }
    let mut got: Vec<usize> = index.matching(LOG).collect();
    got.sort();
    let want: Vec<usize> = (0..filters.len())
        .filter(|&i| parse(filters[i]).matches_payload(LOG))
        .collect();
    assert_eq!(got, want);
    assert_eq!(got, [0, 1, 2, 3, 4, 6, 7, 10, 11, 12, 13, 14, 15, 16]);
    // The values another extractor read are taken by path.
    let f = parse("@level = 'error' and @count > 1");
    let mut got: Vec<usize> = index.matches(&f.extract(LOG)).collect();
    got.sort();
    assert_eq!(got, [0, 1, 6, 7, 14]);
}

#[test]
fn insert_replace_remove_and_shared_filters() {
    let mut index = FilterIndex::new();
    let a = parse("@level = 'error'");
    let b = parse("@level = 'warn'");
    index.insert(1u32, &a);
    index.insert(2, &a);
    index.insert(3, &b);
    assert_eq!((index.len(), index.filter_counts()), (3, (2, 0)));
    let sorted = |index: &FilterIndex<u32>, p: &str| {
        let mut v: Vec<u32> = index.matching(p).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&index, "<l level='error'/>"), [1, 2]);
    index.insert(2, &b);
    assert_eq!(sorted(&index, "<l level='error'/>"), [1]);
    assert_eq!(sorted(&index, "<l level='warn'/>"), [2, 3]);
    assert!(index.remove(&3));
    assert!(!index.remove(&3));
    assert!(index.contains(&2) && !index.contains(&3));
    assert_eq!(sorted(&index, "<l level='warn'/>"), [2]);
    index.remove(&1);
    index.remove(&2);
    assert!(index.is_empty());
    // Everything a filter brought is gone with its last holder.
    assert!(index.is_pristine());
    assert_eq!(index.paths().count(), 0);
    assert_eq!(sorted(&index, "<l level='warn'/>"), [] as [u32; 0]);
}

#[test]
fn paths_follow_the_filters() {
    let mut index = FilterIndex::new();
    index.insert(1u8, &parse("@a = 1 and b/@c = 2"));
    index.insert(2u8, &parse("@a = 3 or d = 'x'"));
    let mut paths: Vec<String> = index.paths().map(|p| p.to_string()).collect();
    paths.sort();
    assert_eq!(paths, ["@a", "b/@c", "d"]);
    index.remove(&1);
    let mut paths: Vec<String> = index.paths().map(|p| p.to_string()).collect();
    paths.sort();
    assert_eq!(paths, ["@a", "d"]);
}

#[test]
fn a_filter_too_large_to_expand_is_evaluated_whole() {
    let f = parse("(@a = 1 or b = 1) and (@c = 1 or d = 1) and (@e = 1 or f = 1)");
    let payload = "<p a='1' c='0'><d>1</d><f>1</f></p>";
    for max in [1, 4, 8] {
        let mut index = FilterIndex::with_max_conjunctions(max);
        index.insert(7u8, &f);
        assert_eq!(
            index.filter_counts(),
            (1, usize::from(max < 8)),
            "max {max}"
        );
        assert_eq!(index.matching(payload).collect::<Vec<_>>(), [7]);
        assert_eq!(index.matching("<p a='1'/>").count(), 0);
        index.remove(&7);
        assert!(index.is_pristine());
    }
}

#[test]
fn an_empty_index_reads_nothing() {
    let index: FilterIndex<u64> = FilterIndex::new();
    let e = index.extract("<p a='1'/>");
    assert!(e.values.is_empty());
    assert_eq!(index.matches(&e).count(), 0);
    assert_eq!(index.matching("not even xml <<<").count(), 0);
}

#[test]
fn filters_that_compile_alike_are_one() {
    let mut index = FilterIndex::new();
    index.insert(1u8, &parse("@a = 1 or @a = 2"));
    index.insert(2u8, &parse("(@a = 2 or @a = 1)"));
    index.insert(3u8, &parse("@a = 2 or @a = 1 or @a = 2"));
    assert_eq!(index.filter_counts(), (1, 0));
    let mut got: Vec<u8> = index.matching("<p a='2'/>").collect();
    got.sort();
    assert_eq!(got, [1, 2, 3]);
}

#[test]
fn hash_collisions_keep_filters_apart() {
    index::COLLIDE.set(true);
    let texts = ["@a = 1", "@a = 2", "@b = 1", "@a = 1 and @b = 1"];
    let mut index = FilterIndex::new();
    for (i, t) in texts.iter().enumerate() {
        index.insert(i, &parse(t));
        index.insert(i + 10, &parse(t));
    }
    assert_eq!(index.filter_counts(), (4, 0));
    let mut got: Vec<usize> = index.matching("<p a='1' b='1'/>").collect();
    got.sort();
    assert_eq!(got, [0, 2, 3, 10, 12, 13]);
    // The first filter of the hash goes; one that collided with it is still found.
    index.remove(&0);
    index.remove(&10);
    index.insert(20, &parse(texts[1]));
    assert_eq!(index.filter_counts(), (3, 0));
    for i in [12, 1, 3, 2, 11, 13, 20] {
        index.remove(&i);
    }
    index::COLLIDE.set(false);
    assert!(index.is_pristine());
}

#[test]
fn a_string_and_a_number_range_with_one_text_are_two_edges() {
    // `>= '1'` compares text, `>= 1` numbers: "01" is below the one, equal to the other.
    let mut index = FilterIndex::new();
    index.insert(1u8, &parse("@a >= '1'"));
    index.insert(2u8, &parse("@a >= 1"));
    assert_eq!(index.matching("<p a='01'/>").collect::<Vec<_>>(), [2]);
    index.remove(&2);
    assert_eq!(index.matching("<p a='01'/>").count(), 0);
    assert_eq!(index.matching("<p a='2'/>").collect::<Vec<_>>(), [1]);
    index.remove(&1);
    assert!(index.is_pristine());
}
