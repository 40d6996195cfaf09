//! XEP-0313 Message Archive Management on a node: history paging, filters, access.

mod common;
use common::*;
use roost_nodes::service::MAX_HISTORY_PAGE;
use roost_nodes::*;

/// A node keeping plenty of items, with `n` items "i00".."i{n-1}" published at times
/// given by `at(k)`.
fn node_with(n: usize, access: AccessModel, at: impl Fn(usize) -> Millis) -> Service<MemStore> {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            max_items: Some(MaxItems::Count(1000)),
            access_model: Some(access),
            ..Default::default()
        },
    );
    for k in 0..n {
        svc.handle(
            &j(OWNER),
            publish_req(&format!("i{k:02}"), "<p xmlns='x'/>"),
            at(k),
        )
        .expect("publish");
    }
    svc
}

fn history(
    svc: &mut Service<MemStore>,
    actor: &str,
    filter: HistoryFilter,
    rsm: RsmQuery,
) -> Result<(Vec<String>, bool, RsmPage), Error> {
    let req = Request::History {
        node: NODE.into(),
        filter,
        rsm,
    };
    match run(svc, actor, req)?.reply {
        Reply::History {
            items,
            complete,
            page,
            ..
        } => Ok((items.into_iter().map(|i| i.id).collect(), complete, page)),
        r => panic!("unexpected reply {r:?}"),
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|k| format!("i{k:02}")).collect()
}

fn max(m: u64) -> RsmQuery {
    RsmQuery {
        max: Some(m),
        ..Default::default()
    }
}

#[test]
fn pages_forward_with_after_until_complete() {
    let mut svc = node_with(25, AccessModel::Open, |k| 1_000 + k as u64);
    let (p1, c1, s1) = history(&mut svc, ALICE, HistoryFilter::default(), max(10)).unwrap();
    assert_eq!(p1, ids(0..10));
    assert!(!c1);
    assert_eq!(s1.first, Some(("i00".into(), 0)));
    assert_eq!(s1.last.as_deref(), Some("i09"));
    assert_eq!(s1.count, 25);
    let after = |id: &str| RsmQuery {
        max: Some(10),
        after: Some(id.into()),
        ..Default::default()
    };
    let (p2, c2, s2) = history(&mut svc, ALICE, HistoryFilter::default(), after("i09")).unwrap();
    assert_eq!(p2, ids(10..20));
    assert!(!c2);
    assert_eq!(s2.first, Some(("i10".into(), 10)));
    let (p3, c3, _) = history(&mut svc, ALICE, HistoryFilter::default(), after("i19")).unwrap();
    assert_eq!(p3, ids(20..25));
    assert!(c3);
    // Exactly at the end: an empty, complete page.
    let (p4, c4, s4) = history(&mut svc, ALICE, HistoryFilter::default(), after("i24")).unwrap();
    assert!(p4.is_empty() && c4);
    assert_eq!((s4.first, s4.last, s4.count), (None, None, 25));
}

#[test]
fn last_page_with_empty_before_pages_backward() {
    let mut svc = node_with(25, AccessModel::Open, |k| 1_000 + k as u64);
    let last = RsmQuery {
        max: Some(10),
        before: Some(String::new()),
        ..Default::default()
    };
    let (p, complete, page) = history(&mut svc, ALICE, HistoryFilter::default(), last).unwrap();
    assert_eq!(p, ids(15..25));
    assert!(!complete, "older items remain");
    assert_eq!(page.first, Some(("i15".into(), 15)));
    let before = RsmQuery {
        max: Some(10),
        before: Some("i05".into()),
        ..Default::default()
    };
    let (p, complete, _) = history(&mut svc, ALICE, HistoryFilter::default(), before).unwrap();
    assert_eq!(p, ids(0..5));
    assert!(complete, "reached the oldest item");
}

#[test]
fn time_filter_is_exact_even_when_the_clock_stepped_back() {
    // Items 10..15 were stamped by a clock that stepped back an hour.
    let at = |k: usize| {
        let t = 10_000_000 + 1_000 * k as u64;
        if (10..15).contains(&k) {
            t - 3_600_000
        } else {
            t
        }
    };
    let mut svc = node_with(25, AccessModel::Open, at);
    let filter = HistoryFilter {
        start: Some(at(5)),
        end: Some(at(20)),
        ..Default::default()
    };
    let (p, complete, page) = history(&mut svc, ALICE, filter.clone(), max(100)).unwrap();
    let mut want = ids(5..10);
    want.extend(ids(15..21));
    assert_eq!(p, want);
    assert!(complete);
    assert_eq!(page.count, 11);
    // Paged, the second page's index counts only matching items.
    let (p, complete, _) = history(&mut svc, ALICE, filter.clone(), max(4)).unwrap();
    assert_eq!(p, ids(5..9));
    assert!(!complete);
    let next = RsmQuery {
        max: Some(4),
        after: Some("i08".into()),
        ..Default::default()
    };
    let (p, _, page) = history(&mut svc, ALICE, filter, next).unwrap();
    assert_eq!(p, vec!["i09", "i15", "i16", "i17"]);
    assert_eq!(page.first, Some(("i09".into(), 4)));
}

#[test]
fn after_id_and_before_id_bound_the_history() {
    let mut svc = node_with(25, AccessModel::Open, |k| 1_000 + k as u64);
    let filter = HistoryFilter {
        after_id: Some("i03".into()),
        before_id: Some("i08".into()),
        ..Default::default()
    };
    let (p, complete, page) = history(&mut svc, ALICE, filter, RsmQuery::default()).unwrap();
    assert_eq!(p, ids(4..8));
    assert!(complete);
    assert_eq!(page.count, 4);
    assert_eq!(page.first, Some(("i04".into(), 0)));
    let unknown = HistoryFilter {
        after_id: Some("nope".into()),
        ..Default::default()
    };
    assert_eq!(
        history(&mut svc, ALICE, unknown, RsmQuery::default()).unwrap_err(),
        Error::ItemNotFound
    );
}

#[test]
fn page_size_is_capped() {
    let n = MAX_HISTORY_PAGE as usize + 10;
    let mut svc = node_with(n, AccessModel::Open, |k| 1_000 + k as u64);
    let (p, complete, page) =
        history(&mut svc, ALICE, HistoryFilter::default(), max(u64::MAX)).unwrap();
    assert_eq!(p.len() as u64, MAX_HISTORY_PAGE);
    assert!(!complete);
    assert_eq!(page.count, n as u64);
}

#[test]
fn access_is_that_of_item_retrieval() {
    let mut svc = node_with(3, AccessModel::Whitelist, |k| 1_000 + k as u64);
    let err = history(
        &mut svc,
        ALICE,
        HistoryFilter::default(),
        RsmQuery::default(),
    );
    assert!(matches!(err, Err(Error::ClosedNode)), "unexpected {err:?}");
    set_aff(&mut svc, ALICE, Affiliation::Member);
    let (p, complete, _) = history(
        &mut svc,
        ALICE,
        HistoryFilter::default(),
        RsmQuery::default(),
    )
    .unwrap();
    assert_eq!(p, ids(0..3));
    assert!(complete);
    let missing = Request::History {
        node: "nope".into(),
        filter: HistoryFilter::default(),
        rsm: RsmQuery::default(),
    };
    assert_eq!(
        run(&mut svc, ALICE, missing).unwrap_err(),
        Error::NodeNotFound
    );
}

#[test]
fn republished_item_keeps_its_id_once() {
    let mut svc = node_with(3, AccessModel::Open, |k| 1_000 + k as u64);
    publish(&mut svc, OWNER, "i01", "<p xmlns='x'>again</p>");
    let (p, _, page) = history(
        &mut svc,
        ALICE,
        HistoryFilter::default(),
        RsmQuery::default(),
    )
    .unwrap();
    assert_eq!(p.iter().filter(|i| *i == "i01").count(), 1);
    assert_eq!(page.count, 3);
}
