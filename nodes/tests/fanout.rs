//! Streamed fan-out: a broadcast handed back as a `Fanout`, walked a chunk at a time, is
//! the same notifications in the same order as the whole list, and sees the state as of
//! its own commit whatever happens before it is walked.

mod common;

use common::*;
use roost_nodes::*;

fn subscriber(i: usize) -> String {
    format!("reader{i:03}@denmark.lit")
}

/// A node with `n` subscribers, and the streamed publish of one item to it.
fn streamed_publish(n: usize) -> (Service<MemStore>, Fanout) {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    for i in 0..n {
        subscribe(&mut svc, &subscriber(i));
    }
    let out = svc
        .handle_streamed(&j(OWNER), publish_req("a", "<x xmlns='urn:t'/>"), 10)
        .unwrap();
    assert_eq!(
        out.reply,
        Reply::Published {
            node: NODE.into(),
            id: "a".into()
        }
    );
    let mut dispatches = out.dispatches.into_iter();
    let Some(Dispatch::Fanout(f)) = dispatches.next() else {
        panic!("a publish is one fan-out");
    };
    assert!(dispatches.next().is_none());
    (svc, f)
}

fn walk_all(svc: &Service<MemStore>, f: &Fanout, chunk: usize) -> Vec<Notification> {
    let mut out = Vec::new();
    let mut rounds = 0;
    while !svc.walk(f, chunk, &mut out) {
        rounds += 1;
        assert!(rounds < 10_000, "the walk ends");
    }
    out
}

fn tos(ns: &[Notification]) -> Vec<String> {
    ns.iter().map(|n| n.to.to_string()).collect()
}

#[test]
fn a_fanout_walked_in_chunks_is_the_whole_list_in_jid_order() {
    let (svc, f) = streamed_publish(25);
    let mut first = Vec::new();
    assert!(!svc.walk(&f, 10, &mut first), "25 recipients: more to come");
    assert_eq!(tos(&first), (0..10).map(subscriber).collect::<Vec<_>>());
    let rest = walk_all(&svc, &f, 7);
    let all: Vec<String> = tos(&first).into_iter().chain(tos(&rest)).collect();
    assert_eq!(all, (0..25).map(subscriber).collect::<Vec<_>>());
    // Every notification shares the one event.
    assert!(first
        .iter()
        .chain(&rest)
        .all(|n| std::sync::Arc::ptr_eq(&n.event, f.event())));
    let mut more = Vec::new();
    assert!(svc.walk(&f, 10, &mut more) && more.is_empty(), "finished");
}

#[test]
fn a_fanout_sees_the_subscribers_of_its_commit() {
    let (mut svc, f) = streamed_publish(3);
    // Before the walk: one subscriber leaves, another arrives.
    ok(
        &mut svc,
        &subscriber(1),
        Request::Unsubscribe {
            node: NODE.into(),
            jid: j(&subscriber(1)),
            subid: None,
        },
    );
    subscribe(&mut svc, &subscriber(7));
    let got = walk_all(&svc, &f, 1);
    assert_eq!(tos(&got), [subscriber(0), subscriber(1), subscriber(2)]);
}

#[test]
fn a_fanout_sees_the_presence_of_its_commit() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            presence_based_delivery: Some(true),
            ..NodeConfigPatch::default()
        },
    );
    subscribe(&mut svc, "bob@denmark.lit");
    let desk: FullJid = "bob@denmark.lit/desk".parse().unwrap();
    svc.presence_changed(&desk, Some(Show::Online)).unwrap();
    let out = svc
        .handle_streamed(&j(OWNER), publish_req("a", "<x xmlns='urn:t'/>"), 10)
        .unwrap();
    let Some(Dispatch::Fanout(f)) = out.dispatches.into_iter().next() else {
        panic!("a fan-out");
    };
    // The resource goes offline after the commit, before the walk.
    svc.presence_changed(&desk, None).unwrap();
    assert_eq!(tos(&walk_all(&svc, &f, 1)), ["bob@denmark.lit/desk"]);
}

#[test]
fn handle_returns_what_the_walk_would() {
    let (mut svc, f) = streamed_publish(12);
    let streamed = walk_all(&svc, &f, 5);
    let whole = publish(&mut svc, OWNER, "b", "<x xmlns='urn:t'/>").notifications;
    assert_eq!(tos(&streamed), tos(&whole));
    assert_eq!(
        streamed.iter().map(|n| &n.subids).collect::<Vec<_>>(),
        whole.iter().map(|n| &n.subids).collect::<Vec<_>>()
    );
}

#[test]
fn a_fanout_of_another_engine_yields_nothing() {
    let (_svc, f) = streamed_publish(3);
    let other = service();
    let mut out = Vec::new();
    assert!(other.walk(&f, 10, &mut out));
    assert!(out.is_empty());
}
