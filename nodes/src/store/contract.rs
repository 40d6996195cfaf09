//! The storage contract suite: one list of checks that every [`Store`] must pass.
//!
//! `roost-nodes` runs it on [`MemStore`](super::MemStore); `roost-storage` runs it on
//! sled, with a reopen between steps so that what was read back from memory is also what
//! survives a restart. A failing check panics (these are tests) naming the check.

use super::{Change, ChangeSet, ItemRange, Snapshot, Store};
use crate::model::*;
use crate::{BareJid, Jid};
use std::collections::BTreeMap;

/// Turns a store into the same store reopened from its durable state (drop, then open
/// the same path). `None` for stores without durable state.
pub type Reopen<'a, S> = Option<&'a dyn Fn(S) -> S>;

type Check<S> = fn(S, Reopen<'_, S>) -> S;

/// Runs every check, each on a fresh store from `make`.
pub fn run_all<S: Store>(mut make: impl FnMut() -> S, reopen: Reopen<'_, S>) {
    let checks: &[(&str, Check<S>)] = &[
        ("empty", empty::<S>),
        ("empty_commit", empty_commit::<S>),
        ("node_records", node_records::<S>),
        ("counters", counters::<S>),
        ("affiliations", affiliations::<S>),
        ("subscriptions", subscriptions::<S>),
        ("subscription_filters", subscription_filters::<S>),
        ("items", items::<S>),
        ("replace_item", replace_item::<S>),
        ("purge_items", purge_items::<S>),
        ("delete_node", delete_node::<S>),
        ("last_uid", last_uid::<S>),
        ("in_order_within_a_change_set", in_order::<S>),
        ("names_that_share_prefixes", shared_prefixes::<S>),
        ("many_items", many_items::<S>),
        ("item_ranges", item_ranges::<S>),
        ("expiry_index", expiry_index::<S>),
        ("bulk_trim", bulk_trim::<S>),
        ("trim_across_many_commits", trim_across_many_commits::<S>),
    ];
    for (name, check) in checks {
        eprintln!("store contract: {name}");
        let s = check(make(), reopen);
        // Every check ends with the store reopened once more and unchanged.
        drop(cycle(s, reopen));
    }
}

// ---- helpers -----------------------------------------------------------------------

fn commit<S: Store>(s: &mut S, changes: Vec<Change>) {
    if let Err(e) = s.commit(&ChangeSet(changes)) {
        panic!("commit failed: {e}");
    }
}

fn load<S: Store>(s: &mut S) -> Snapshot {
    s.load().unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn latest<S: Store>(s: &S, uid: u64, max: Option<u64>) -> Vec<Item> {
    s.latest_items(uid, max)
        .unwrap_or_else(|e| panic!("latest_items failed: {e}"))
}

fn oldest<S: Store>(s: &S, uid: u64, n: u64) -> Vec<Item> {
    s.oldest_items(uid, n)
        .unwrap_or_else(|e| panic!("oldest_items failed: {e}"))
}

fn get<S: Store>(s: &S, uid: u64, id: &str) -> Option<Item> {
    s.item(uid, id)
        .unwrap_or_else(|e| panic!("item failed: {e}"))
}

fn seqs(items: &[Item]) -> Vec<u64> {
    items.iter().map(|i| i.seq).collect()
}

/// Everything a store exposes: the snapshot plus every item of every loaded node, and of
/// the extra uids given (e.g. deleted nodes, which must stay empty).
fn state<S: Store>(s: &mut S, extra_uids: &[u64]) -> (Snapshot, BTreeMap<u64, Vec<Item>>) {
    let snap = load(s);
    let mut items = BTreeMap::new();
    let uids = snap.nodes.values().map(|(n, _)| n.uid);
    for uid in uids.chain(extra_uids.iter().copied()) {
        items.insert(uid, latest(s, uid, None));
    }
    (snap, items)
}

/// Reopens the store when it can be, asserting that nothing changed.
fn cycle<S: Store>(mut s: S, reopen: Reopen<'_, S>) -> S {
    let Some(reopen) = reopen else { return s };
    let before = state(&mut s, &[1, 2, 3, 4, 5]);
    let mut s = reopen(s);
    let after = state(&mut s, &[1, 2, 3, 4, 5]);
    assert_eq!(before, after, "state differs after reopen");
    s
}

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("test JID")
}

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("test JID")
}

/// A configuration with every field away from its default. No `..default()`, so a new
/// field must be added here, and so to what the suite proves a store keeps.
fn odd_config() -> NodeConfig {
    let d = NodeConfig::default();
    NodeConfig {
        title: "Tïtle with ünïcode".into(),
        description: "a\nmulti-line\0description".into(),
        payload_type: "urn:example:payload".into(),
        access_model: AccessModel::Whitelist,
        roster_groups_allowed: vec!["Friends".into(), "Ünïcode group".into()],
        publish_model: PublishModel::Open,
        max_items: MaxItems::Max,
        persist_items: !d.persist_items,
        deliver_payloads: !d.deliver_payloads,
        deliver_notifications: !d.deliver_notifications,
        notify_config: !d.notify_config,
        notify_delete: !d.notify_delete,
        notify_retract: !d.notify_retract,
        notify_sub: !d.notify_sub,
        presence_based_delivery: !d.presence_based_delivery,
        send_last_published_item: SendLastPublished::OnSubAndPresence,
        item_expire: Some(3600),
        notification_type: NotificationType::Normal,
        itemreply: ItemReply::Publisher,
        max_payload_size: 1 << 40,
        node_type: NodeType::Collection,
        collection: vec!["parent".into(), "other/parent".into()],
        // Derived by the engine, not a store's to keep: a store may drop it.
        children: Vec::new(),
        children_max: Some(12),
        children_association_policy: AssociationPolicy::Whitelist,
        children_association_whitelist: vec![bare("w@example.org")],
    }
}

fn node(name: &str, uid: u64) -> NodeRecord {
    NodeRecord {
        name: name.into(),
        uid,
        creator: bare("owner@example.org"),
        created: 1_700_000_000_000 + uid,
        config: NodeConfig::default(),
    }
}

fn item(id: &str, seq: u64) -> Item {
    Item {
        id: id.into(),
        seq,
        first_seq: None,
        publisher: jid("pub@example.org/res"),
        published: 1_700_000_000_000 + seq,
        payload: format!("<entry xmlns='urn:x'>{id}#{seq}</entry>"),
    }
}

fn sub(j: &str, subid: &str) -> Subscription {
    Subscription {
        jid: jid(j),
        subid: subid.into(),
        state: SubscriptionState::Subscribed,
        options: SubOptions {
            deliver: false,
            digest: true,
            digest_frequency: 1234,
            expire: Some(1_800_000_000_000),
            include_body: true,
            show_values: vec![Show::Dnd, Show::Chat],
            filter: None,
            subscription_type: SubscriptionType::All,
            subscription_depth: SubscriptionDepth::All,
        },
    }
}

fn put_items(uid: u64, items: impl IntoIterator<Item = Item>) -> Vec<Change> {
    items
        .into_iter()
        .map(|item| Change::PutItem { uid, item })
        .collect()
}

// ---- checks ------------------------------------------------------------------------

fn empty<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    assert_eq!(load(&mut s), Snapshot::default());
    assert!(latest(&s, 1, None).is_empty());
    assert!(latest(&s, 1, Some(5)).is_empty());
    assert!(oldest(&s, 1, 5).is_empty());
    assert_eq!(get(&s, 1, "x"), None);
    let mut s = cycle(s, r);
    assert_eq!(load(&mut s), Snapshot::default());
    s
}

fn empty_commit<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    commit(&mut s, vec![]);
    assert_eq!(load(&mut s), Snapshot::default());
    cycle(s, r)
}

fn node_records<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let a = NodeRecord {
        config: odd_config(),
        creator: bare("créator@example.org"),
        ..node("a", 1)
    };
    let mut b = node("b/with/slashes", 2);
    b.config.max_items = MaxItems::Count(0);
    b.config.item_expire = Some(0);
    let c = node("c", 3);
    commit(
        &mut s,
        vec![
            Change::PutNode(a.clone()),
            Change::PutNode(b.clone()),
            Change::PutNode(c.clone()),
        ],
    );
    let check = |s: &mut S, a: &NodeRecord| {
        let snap = load(s);
        assert_eq!(snap.nodes.len(), 3);
        assert_eq!(snap.nodes["a"], (a.clone(), ItemCounters::default()));
        assert_eq!(snap.nodes["b/with/slashes"].0, b);
        assert_eq!(snap.nodes["c"].0, c);
        assert_eq!(snap.last_uid, 3);
        assert!(snap.affiliations.is_empty() && snap.subscriptions.is_empty());
    };
    check(&mut s, &a);
    let mut s = cycle(s, r);
    check(&mut s, &a);

    // Replacing a record (same name, same uid) keeps its counters.
    let counters = ItemCounters {
        count: 4,
        last_seq: 9,
    };
    commit(&mut s, vec![Change::PutCounters { uid: 1, counters }]);
    let mut a2 = a.clone();
    a2.config = NodeConfig::default();
    a2.config.title = "renamed".into();
    commit(&mut s, vec![Change::PutNode(a2.clone())]);
    let snap = load(&mut s);
    assert_eq!(snap.nodes["a"], (a2.clone(), counters));
    let mut s = cycle(s, r);
    assert_eq!(load(&mut s).nodes["a"], (a2, counters));
    s
}

fn counters<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let c1 = ItemCounters {
        count: 3,
        last_seq: u64::MAX - 1,
    };
    // Counters written together with the node, in either order.
    commit(
        &mut s,
        vec![
            Change::PutCounters {
                uid: 1,
                counters: c1,
            },
            Change::PutNode(node("n1", 1)),
            Change::PutNode(node("n2", 2)),
            Change::PutCounters {
                uid: 2,
                counters: ItemCounters {
                    count: 1,
                    last_seq: 1,
                },
            },
        ],
    );
    let snap = load(&mut s);
    assert_eq!(snap.nodes["n1"].1, c1);
    assert_eq!(snap.nodes["n2"].1.last_seq, 1);
    let c2 = ItemCounters {
        count: 0,
        last_seq: 7,
    };
    commit(
        &mut s,
        vec![Change::PutCounters {
            uid: 2,
            counters: c2,
        }],
    );
    let mut s = cycle(s, r);
    let snap = load(&mut s);
    assert_eq!(snap.nodes["n1"].1, c1);
    assert_eq!(snap.nodes["n2"].1, c2);

    // A record under the same name with a new uid is a new node: fresh counters.
    commit(
        &mut s,
        vec![
            Change::DeleteNode {
                name: "n2".into(),
                uid: 2,
            },
            Change::PutNode(node("n2", 3)),
        ],
    );
    assert_eq!(load(&mut s).nodes["n2"].1, ItemCounters::default());
    s
}

fn affiliations<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let aff = |node: &str, j: &str, a: Affiliation| Change::PutAffiliation {
        node: node.into(),
        jid: bare(j),
        affiliation: a,
    };
    commit(
        &mut s,
        vec![
            Change::PutNode(node("a", 1)),
            Change::PutNode(node("b", 2)),
            aff("a", "owner@example.org", Affiliation::Owner),
            aff("a", "pub@example.org", Affiliation::Publisher),
            aff("a", "po@example.org", Affiliation::PublishOnly),
            aff("a", "bad@example.org", Affiliation::Outcast),
            aff("a", "example.net", Affiliation::Member),
            aff("b", "owner@example.org", Affiliation::Member),
        ],
    );
    let expect_a: BTreeMap<BareJid, Affiliation> = [
        (bare("owner@example.org"), Affiliation::Owner),
        (bare("pub@example.org"), Affiliation::Publisher),
        (bare("po@example.org"), Affiliation::PublishOnly),
        (bare("bad@example.org"), Affiliation::Outcast),
        (bare("example.net"), Affiliation::Member),
    ]
    .into_iter()
    .collect();
    let snap = load(&mut s);
    assert_eq!(snap.affiliations["a"], expect_a);
    assert_eq!(snap.affiliations["b"].len(), 1);
    let mut s = cycle(s, r);
    assert_eq!(load(&mut s).affiliations["a"], expect_a);

    // Change one, remove one; `none` on a node's last row removes the node's entry.
    commit(
        &mut s,
        vec![
            aff("a", "pub@example.org", Affiliation::Member),
            aff("a", "bad@example.org", Affiliation::None),
            aff("b", "owner@example.org", Affiliation::None),
            aff("b", "never@example.org", Affiliation::None),
        ],
    );
    let mut expect_a = expect_a;
    expect_a.insert(bare("pub@example.org"), Affiliation::Member);
    expect_a.remove(&bare("bad@example.org"));
    let snap = load(&mut s);
    assert_eq!(snap.affiliations["a"], expect_a);
    assert!(
        !snap.affiliations.contains_key("b"),
        "{:?}",
        snap.affiliations
    );
    let mut s = cycle(s, r);
    assert_eq!(load(&mut s).affiliations.len(), 1);
    s
}

fn subscriptions<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let s1 = sub("alice@example.org/phone", "sub-1");
    let mut s2 = sub("alice@example.org", "sub-2");
    s2.state = SubscriptionState::Pending;
    s2.options = SubOptions::default();
    let s3 = sub("bob@example.org", "sub-1");
    commit(
        &mut s,
        vec![
            Change::PutNode(node("a", 1)),
            Change::PutNode(node("b", 2)),
            Change::PutSubscription {
                node: "a".into(),
                sub: s1.clone(),
            },
            Change::PutSubscription {
                node: "a".into(),
                sub: s2.clone(),
            },
            Change::PutSubscription {
                node: "b".into(),
                sub: s3.clone(),
            },
        ],
    );
    let snap = load(&mut s);
    assert_eq!(snap.subscriptions["a"]["sub-1"], s1);
    assert_eq!(snap.subscriptions["a"]["sub-2"], s2);
    assert_eq!(snap.subscriptions["b"]["sub-1"], s3);
    let mut s = cycle(s, r);

    // Replace (same subid: new state, options and even JID), then delete another.
    let mut s1b = sub("carol@example.org/x", "sub-1");
    s1b.state = SubscriptionState::Unconfigured;
    s1b.options.show_values = vec![];
    s1b.options.expire = None;
    commit(
        &mut s,
        vec![
            Change::PutSubscription {
                node: "a".into(),
                sub: s1b.clone(),
            },
            Change::DeleteSubscription {
                node: "a".into(),
                jid: s2.jid.clone(),
                subid: "sub-2".into(),
            },
        ],
    );
    let snap = load(&mut s);
    assert_eq!(snap.subscriptions["a"].len(), 1);
    assert_eq!(snap.subscriptions["a"]["sub-1"], s1b);
    assert_eq!(snap.subscriptions["b"]["sub-1"], s3);
    let mut s = cycle(s, r);

    // Deleting the last one removes the node's entry.
    commit(
        &mut s,
        vec![Change::DeleteSubscription {
            node: "b".into(),
            jid: s3.jid.clone(),
            subid: "sub-1".into(),
        }],
    );
    let snap = load(&mut s);
    assert!(!snap.subscriptions.contains_key("b"));
    assert_eq!(snap.subscriptions.len(), 1);
    s
}

/// A subscription's content filter (`x-roost#filter`, canonical text) is stored with it,
/// replaced and removed with its options, and survives a reopen; subscriptions without one
/// read back without one.
fn subscription_filters<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut f1 = sub("alice@example.org", "f-1");
    f1.options.filter = Some(r#"@level = 'error' and (host ^= "web-" or msg *= 'ü ''x')"#.into());
    let mut f2 = sub("alice@example.org", "f-2");
    f2.options = SubOptions {
        filter: Some("exists(a/b/@c)".into()),
        ..SubOptions::default()
    };
    let plain = sub("bob@example.org", "p-1");
    let put = |sub: &Subscription| Change::PutSubscription {
        node: "a".into(),
        sub: sub.clone(),
    };
    commit(
        &mut s,
        vec![
            Change::PutNode(node("a", 1)),
            put(&f1),
            put(&f2),
            put(&plain),
        ],
    );
    let check = |s: &mut S, subs: &[&Subscription]| {
        let snap = load(s);
        assert_eq!(snap.subscriptions["a"].len(), subs.len());
        for sub in subs {
            assert_eq!(&snap.subscriptions["a"][&sub.subid], *sub);
        }
    };
    check(&mut s, &[&f1, &f2, &plain]);
    let mut s = cycle(s, r);
    check(&mut s, &[&f1, &f2, &plain]);

    // A filter replaced, a filter removed, a filter given to an unfiltered subscription.
    f1.options.filter = Some("n >= 10".into());
    f2.options.filter = None;
    let mut plain2 = plain.clone();
    plain2.options.filter = Some("@x = 'y'".into());
    commit(&mut s, vec![put(&f1), put(&f2), put(&plain2)]);
    check(&mut s, &[&f1, &f2, &plain2]);
    let mut s = cycle(s, r);
    check(&mut s, &[&f1, &f2, &plain2]);
    s
}

fn items<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut changes = vec![Change::PutNode(node("a", 1)), Change::PutNode(node("b", 2))];
    changes.extend(put_items(
        1,
        [item("first", 1), item("second", 2), item("third", 5)],
    ));
    let mut empty_payload = item("other-node", 1);
    empty_payload.payload.clear();
    changes.extend(put_items(2, [empty_payload.clone()]));
    commit(&mut s, changes);

    let check = |s: &S| {
        assert_eq!(seqs(&latest(s, 1, None)), [1, 2, 5]);
        assert_eq!(seqs(&latest(s, 1, Some(2))), [2, 5]);
        assert_eq!(seqs(&latest(s, 1, Some(1))), [5]);
        assert!(latest(s, 1, Some(0)).is_empty());
        assert_eq!(seqs(&latest(s, 1, Some(100))), [1, 2, 5]);
        assert_eq!(seqs(&oldest(s, 1, 2)), [1, 2]);
        assert!(oldest(s, 1, 0).is_empty());
        assert_eq!(seqs(&oldest(s, 1, 100)), [1, 2, 5]);
        assert_eq!(get(s, 1, "second"), Some(item("second", 2)));
        assert_eq!(latest(s, 1, None)[2], item("third", 5));
        assert_eq!(get(s, 1, "missing"), None);
        assert_eq!(get(s, 1, "other-node"), None);
        assert_eq!(get(s, 2, "other-node"), Some(empty_payload.clone()));
        assert_eq!(get(s, 2, "first"), None);
        assert!(latest(s, 3, None).is_empty());
    };
    check(&s);
    let mut s = cycle(s, r);
    check(&s);

    commit(
        &mut s,
        vec![Change::DeleteItem {
            uid: 1,
            id: "second".into(),
            seq: 2,
        }],
    );
    assert_eq!(get(&s, 1, "second"), None);
    assert_eq!(seqs(&latest(&s, 1, None)), [1, 5]);
    assert_eq!(seqs(&oldest(&s, 1, 1)), [1]);
    // Deleting what is not there changes nothing.
    commit(
        &mut s,
        vec![Change::DeleteItem {
            uid: 1,
            id: "second".into(),
            seq: 2,
        }],
    );
    let mut s = cycle(s, r);
    assert_eq!(seqs(&latest(&s, 1, None)), [1, 5]);
    assert_eq!(get(&s, 1, "first"), Some(item("first", 1)));
    assert_eq!(seqs(&latest(&s, 2, None)), [1]);
    assert_eq!(load(&mut s).nodes.len(), 2);
    s
}

fn replace_item<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut changes = vec![Change::PutNode(node("a", 1))];
    changes.extend(put_items(1, [item("x", 1), item("y", 2)]));
    commit(&mut s, changes);
    // The engine's way: delete the old seq and put the id at a new seq, in one set; the
    // item keeps the seq it was created at (XEP-0413), which must survive a reopen.
    let mut x3 = item("x", 3);
    x3.payload = "<new/>".into();
    x3.first_seq = Some(1);
    commit(
        &mut s,
        vec![
            Change::DeleteItem {
                uid: 1,
                id: "x".into(),
                seq: 1,
            },
            Change::PutItem {
                uid: 1,
                item: x3.clone(),
            },
        ],
    );
    assert_eq!(get(&s, 1, "x"), Some(x3.clone()));
    assert_eq!(seqs(&latest(&s, 1, None)), [2, 3]);
    let s = cycle(s, r);
    assert_eq!(get(&s, 1, "x"), Some(x3));

    // Without the delete the id is still unique: the old item goes.
    let mut s = s;
    commit(&mut s, put_items(1, [item("y", 4)]));
    assert_eq!(get(&s, 1, "y"), Some(item("y", 4)));
    assert_eq!(seqs(&latest(&s, 1, None)), [3, 4]);
    let s = cycle(s, r);
    assert_eq!(seqs(&oldest(&s, 1, 10)), [3, 4]);
    s
}

fn purge_items<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut changes = vec![Change::PutNode(node("a", 1)), Change::PutNode(node("b", 2))];
    changes.extend(put_items(1, (1..=20).map(|n| item(&format!("i{n}"), n))));
    changes.extend(put_items(2, (1..=3).map(|n| item(&format!("i{n}"), n))));
    commit(&mut s, changes);
    commit(&mut s, vec![Change::PurgeItems { uid: 1 }]);
    let check = |s: &S| {
        assert!(latest(s, 1, None).is_empty());
        assert!(oldest(s, 1, 100).is_empty());
        assert_eq!(get(s, 1, "i1"), None);
        assert_eq!(get(s, 1, "i20"), None);
        assert_eq!(seqs(&latest(s, 2, None)), [1, 2, 3]);
        assert_eq!(get(s, 2, "i3"), Some(item("i3", 3)));
    };
    check(&s);
    let mut s = cycle(s, r);
    check(&s);
    assert_eq!(load(&mut s).nodes.len(), 2);
    // The node lives on and takes new items.
    commit(&mut s, put_items(1, [item("i1", 21)]));
    assert_eq!(get(&s, 1, "i1"), Some(item("i1", 21)));
    // Items put and purged in the same set are gone too.
    let mut changes = put_items(1, [item("j", 22)]);
    changes.push(Change::PurgeItems { uid: 1 });
    commit(&mut s, changes);
    assert!(latest(&s, 1, None).is_empty());
    assert_eq!(get(&s, 1, "j"), None);
    cycle(s, r)
}

fn delete_node<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let populate = |name: &str, uid: u64| {
        let mut c = vec![
            Change::PutNode(node(name, uid)),
            Change::PutCounters {
                uid,
                counters: ItemCounters {
                    count: 5,
                    last_seq: 5,
                },
            },
            Change::PutAffiliation {
                node: name.into(),
                jid: bare("owner@example.org"),
                affiliation: Affiliation::Owner,
            },
            Change::PutAffiliation {
                node: name.into(),
                jid: bare("out@example.org"),
                affiliation: Affiliation::Outcast,
            },
            Change::PutSubscription {
                node: name.into(),
                sub: sub("sub@example.org/r", "s1"),
            },
            Change::PutSubscription {
                node: name.into(),
                sub: sub("sub@example.org", "s2"),
            },
        ];
        c.extend(put_items(uid, (1..=5).map(|n| item(&format!("i{n}"), n))));
        c
    };
    let mut changes = populate("doomed", 1);
    changes.extend(populate("kept", 2));
    commit(&mut s, changes);
    let kept_before = {
        let snap = load(&mut s);
        (
            snap.nodes["kept"].clone(),
            snap.affiliations["kept"].clone(),
            snap.subscriptions["kept"].clone(),
        )
    };
    commit(
        &mut s,
        vec![Change::DeleteNode {
            name: "doomed".into(),
            uid: 1,
        }],
    );
    let check = |s: &mut S| {
        let snap = load(s);
        assert!(!snap.nodes.contains_key("doomed"));
        assert!(!snap.affiliations.contains_key("doomed"));
        assert!(!snap.subscriptions.contains_key("doomed"));
        assert_eq!(snap.last_uid, 2);
        assert!(latest(s, 1, None).is_empty());
        assert_eq!(get(s, 1, "i1"), None);
        let kept = (
            snap.nodes["kept"].clone(),
            snap.affiliations["kept"].clone(),
            snap.subscriptions["kept"].clone(),
        );
        assert_eq!(kept, kept_before);
        assert_eq!(latest(s, 2, None).len(), 5);
    };
    check(&mut s);
    let mut s = cycle(s, r);
    check(&mut s);

    // Created again under the same name: a new uid, and nothing of the old node.
    commit(&mut s, vec![Change::PutNode(node("doomed", 3))]);
    let snap = load(&mut s);
    assert_eq!(
        snap.nodes["doomed"],
        (node("doomed", 3), ItemCounters::default())
    );
    assert!(!snap.affiliations.contains_key("doomed"));
    assert!(!snap.subscriptions.contains_key("doomed"));
    assert!(latest(&s, 3, None).is_empty());
    assert_eq!(get(&s, 3, "i1"), None);
    assert_eq!(snap.last_uid, 3);
    cycle(s, r)
}

fn last_uid<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    commit(
        &mut s,
        vec![Change::PutNode(node("x", 5)), Change::PutNode(node("y", 2))],
    );
    assert_eq!(load(&mut s).last_uid, 5);
    commit(
        &mut s,
        vec![Change::DeleteNode {
            name: "x".into(),
            uid: 5,
        }],
    );
    // Uids are never reused: the highest stays even when its node is gone.
    assert_eq!(load(&mut s).last_uid, 5);
    let mut s = cycle(s, r);
    assert_eq!(load(&mut s).last_uid, 5);
    commit(
        &mut s,
        vec![Change::DeleteNode {
            name: "y".into(),
            uid: 2,
        }],
    );
    let mut s = cycle(s, r);
    let snap = load(&mut s);
    assert_eq!(snap.last_uid, 5);
    assert!(snap.nodes.is_empty());
    s
}

fn in_order<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut changes = vec![
        Change::PutNode(node("a", 1)),
        Change::PutAffiliation {
            node: "a".into(),
            jid: bare("x@example.org"),
            affiliation: Affiliation::Owner,
        },
        Change::PutAffiliation {
            node: "a".into(),
            jid: bare("x@example.org"),
            affiliation: Affiliation::None,
        },
        Change::PutSubscription {
            node: "a".into(),
            sub: sub("y@example.org", "s"),
        },
        Change::DeleteSubscription {
            node: "a".into(),
            jid: jid("y@example.org"),
            subid: "s".into(),
        },
    ];
    changes.extend(put_items(1, [item("gone", 1), item("kept", 2)]));
    changes.push(Change::DeleteItem {
        uid: 1,
        id: "gone".into(),
        seq: 1,
    });
    // Delete and create again within one set.
    changes.push(Change::PutNode(node("b", 2)));
    changes.extend(put_items(2, [item("old", 1)]));
    changes.push(Change::DeleteNode {
        name: "b".into(),
        uid: 2,
    });
    changes.push(Change::PutNode(node("b", 3)));
    changes.extend(put_items(3, [item("new", 1)]));
    commit(&mut s, changes);

    let check = |s: &mut S| {
        let snap = load(s);
        assert!(snap.affiliations.is_empty(), "{:?}", snap.affiliations);
        assert!(snap.subscriptions.is_empty(), "{:?}", snap.subscriptions);
        assert_eq!(seqs(&latest(s, 1, None)), [2]);
        assert_eq!(get(s, 1, "gone"), None);
        assert_eq!(snap.nodes["b"].0.uid, 3);
        assert!(latest(s, 2, None).is_empty());
        assert_eq!(get(s, 3, "new"), Some(item("new", 1)));
        assert_eq!(snap.last_uid, 3);
    };
    check(&mut s);
    let mut s = cycle(s, r);
    check(&mut s);
    s
}

fn shared_prefixes<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let names = ["a", "ab", "a\u{0}b", "ä", "a/b"];
    let mut changes = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let uid = i as u64 + 1;
        changes.push(Change::PutNode(node(name, uid)));
        changes.push(Change::PutAffiliation {
            node: (*name).into(),
            jid: bare("o@example.org"),
            affiliation: Affiliation::Owner,
        });
        changes.push(Change::PutSubscription {
            node: (*name).into(),
            sub: sub("s@example.org", "1"),
        });
        changes.extend(put_items(uid, [item("1", 1), item("10", 2)]));
    }
    commit(&mut s, changes);
    assert_eq!(get(&s, 1, "1"), Some(item("1", 1)));
    assert_eq!(get(&s, 1, "10"), Some(item("10", 2)));
    commit(
        &mut s,
        vec![
            Change::DeleteNode {
                name: "a".into(),
                uid: 1,
            },
            Change::DeleteItem {
                uid: 2,
                id: "1".into(),
                seq: 1,
            },
        ],
    );
    let check = |s: &mut S| {
        let snap = load(s);
        assert_eq!(snap.nodes.len(), names.len() - 1);
        assert_eq!(snap.affiliations.len(), names.len() - 1);
        assert_eq!(snap.subscriptions.len(), names.len() - 1);
        assert!(!snap.nodes.contains_key("a"));
        assert_eq!(get(s, 2, "10"), Some(item("10", 2)));
        assert_eq!(get(s, 2, "1"), None);
        for uid in 3..=names.len() as u64 {
            assert_eq!(seqs(&latest(s, uid, None)), [1, 2]);
        }
    };
    check(&mut s);
    let mut s = cycle(s, r);
    check(&mut s);
    s
}

fn many_items<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    const N: u64 = 1000;
    let mut changes = vec![
        Change::PutNode(node("big", 1)),
        Change::PutNode(node("nb", 2)),
    ];
    // Seqs straddle byte boundaries (255/256, 65535/65536) where a little-endian or
    // textual encoding would misorder them.
    let seq_of = |n: u64| if n <= 500 { n } else { 65_000 + n };
    changes.extend(put_items(
        1,
        (1..=N).map(|n| item(&format!("item-{n}"), seq_of(n))),
    ));
    changes.extend(put_items(2, [item("neighbour", 1)]));
    commit(&mut s, changes);
    // A second commit on top, as publishes arrive one by one.
    commit(&mut s, put_items(1, [item("last", 70_000)]));

    let check = |s: &S| {
        let all = latest(s, 1, None);
        assert_eq!(all.len(), N as usize + 1);
        assert!(
            all.windows(2).all(|w| w[0].seq < w[1].seq),
            "not in seq order"
        );
        let mut want: Vec<u64> = (N - 8..=N).map(seq_of).collect();
        want.push(70_000);
        assert_eq!(seqs(&latest(s, 1, Some(10))), want);
        assert_eq!(seqs(&oldest(s, 1, 5)), [1, 2, 3, 4, 5]);
        assert_eq!(
            seqs(&oldest(s, 1, 502)),
            (1..=502).map(seq_of).collect::<Vec<_>>()
        );
        assert_eq!(get(s, 1, "item-777"), Some(item("item-777", seq_of(777))));
        assert_eq!(get(s, 1, "last"), Some(item("last", 70_000)));
        assert_eq!(seqs(&latest(s, 2, None)), [1]);
    };
    check(&s);
    let s = cycle(s, r);
    check(&s);
    s
}

/// `items_range` and `count_before` (RSM paging): bounds exclusive, skip and limit from
/// either end, oldest first always, other nodes never seen, gaps in seq (retractions) and
/// byte-boundary seqs handled.
fn item_ranges<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let seq_list: Vec<u64> = vec![1, 2, 3, 5, 8, 255, 256, 257, 65_536, u64::MAX - 1];
    let mut changes = vec![
        Change::PutNode(node("paged", 1)),
        Change::PutNode(node("other", 2)),
    ];
    changes.extend(put_items(
        1,
        // `item()` derives its timestamp from seq, which would overflow near u64::MAX.
        seq_list.iter().map(|q| Item {
            seq: *q,
            ..item(&format!("p{q}"), 0)
        }),
    ));
    changes.extend(put_items(2, (1..=20).map(|q| item(&format!("o{q}"), q))));
    commit(&mut s, changes);

    let range = |s: &S, after, before, skip, limit, from_end| -> Vec<u64> {
        let r = ItemRange {
            after,
            before,
            skip,
            limit,
            from_end,
        };
        let items = s
            .items_range(1, &r)
            .unwrap_or_else(|e| panic!("items_range failed: {e}"));
        seqs(&items)
    };
    let count = |s: &S, before| {
        s.count_before(1, before)
            .unwrap_or_else(|e| panic!("count_before failed: {e}"))
    };
    let check = |s: &S| {
        assert_eq!(range(s, None, None, 0, u64::MAX, false), seq_list);
        assert_eq!(range(s, None, None, 0, 3, false), [1, 2, 3]);
        assert_eq!(range(s, Some(3), None, 0, 3, false), [5, 8, 255]);
        assert_eq!(range(s, Some(4), None, 1, 2, false), [8, 255]);
        assert_eq!(range(s, None, Some(256), 0, 3, true), [5, 8, 255]);
        assert_eq!(range(s, None, None, 0, 2, true), [65_536, u64::MAX - 1]);
        assert_eq!(range(s, None, None, 1, 2, true), [257, 65_536]);
        assert_eq!(range(s, Some(2), Some(256), 0, 10, false), [3, 5, 8, 255]);
        assert_eq!(range(s, Some(2), Some(256), 0, 10, true), [3, 5, 8, 255]);
        assert_eq!(range(s, Some(2), Some(3), 0, 10, false), Vec::<u64>::new());
        assert_eq!(range(s, Some(9), Some(3), 0, 10, false), Vec::<u64>::new());
        assert_eq!(range(s, None, Some(0), 0, 10, true), Vec::<u64>::new());
        assert_eq!(
            range(s, Some(u64::MAX), None, 0, 10, false),
            Vec::<u64>::new()
        );
        assert_eq!(range(s, None, None, 0, 0, false), Vec::<u64>::new());
        assert_eq!(range(s, None, None, 100, 10, false), Vec::<u64>::new());
        assert_eq!(count(s, None), seq_list.len() as u64);
        assert_eq!(count(s, Some(1)), 0);
        assert_eq!(count(s, Some(256)), 6);
        assert_eq!(count(s, Some(257)), 7);
        assert_eq!(count(s, Some(u64::MAX)), seq_list.len() as u64);
        assert_eq!(s.count_before(3, None).ok(), Some(0));
        let whole = s
            .items_range(
                1,
                &ItemRange {
                    after: None,
                    before: None,
                    skip: 0,
                    limit: u64::MAX,
                    from_end: false,
                },
            )
            .unwrap_or_else(|e| panic!("items_range failed: {e}"));
        assert_eq!(whole, latest(s, 1, None), "ranges return whole items");
    };
    check(&s);
    let s = cycle(s, r);
    check(&s);
    s
}

/// The item expiry index: entries come back by time (then uid, seq), only those due,
/// at most `limit`; unscheduling removes one; they survive a reopen; deleting items or
/// nodes leaves them (readers skip stale ones), and times straddling byte boundaries
/// keep their order.
fn expiry_index<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let due = |s: &S, now, limit| {
        s.due_expiries(now, limit)
            .unwrap_or_else(|e| panic!("due_expiries failed: {e}"))
    };
    commit(
        &mut s,
        vec![
            Change::PutNode(node("exp", 1)),
            Change::ScheduleExpiry {
                at: 300,
                uid: 1,
                seq: 3,
            },
            Change::ScheduleExpiry {
                at: 255,
                uid: 1,
                seq: 2,
            },
            Change::ScheduleExpiry {
                at: 256,
                uid: 2,
                seq: 1,
            },
            Change::ScheduleExpiry {
                at: 256,
                uid: 1,
                seq: 9,
            },
            Change::ScheduleExpiry {
                at: 70_000,
                uid: 1,
                seq: 4,
            },
        ],
    );
    let check = |s: &S| {
        assert!(due(s, 254, 10).is_empty());
        assert_eq!(due(s, 255, 10), [(255, 1, 2)]);
        assert_eq!(due(s, 299, 10), [(255, 1, 2), (256, 1, 9), (256, 2, 1)]);
        assert_eq!(due(s, 300, 2), [(255, 1, 2), (256, 1, 9)]);
        assert_eq!(due(s, u64::MAX, 10).len(), 5);
    };
    check(&s);
    let mut s = cycle(s, r);
    check(&s);
    commit(
        &mut s,
        vec![
            Change::UnscheduleExpiry {
                at: 256,
                uid: 1,
                seq: 9,
            },
            // Unscheduling what is not there is a no-op.
            Change::UnscheduleExpiry {
                at: 1,
                uid: 1,
                seq: 1,
            },
            Change::DeleteNode {
                name: "exp".into(),
                uid: 1,
            },
        ],
    );
    let check = |s: &S| {
        assert_eq!(
            due(s, u64::MAX, 10),
            [(255, 1, 2), (256, 2, 1), (300, 1, 3), (70_000, 1, 4)]
        );
    };
    check(&s);
    let s = cycle(s, r);
    check(&s);
    s
}

/// Every read a store offers, of node `uid`: what `TrimItems` must bound.
fn visible<S: Store>(s: &S, uid: u64) -> Vec<u64> {
    let all = seqs(&latest(s, uid, None));
    let n = all.len() as u64;
    assert_eq!(seqs(&oldest(s, uid, u64::MAX)), all, "oldest_items");
    assert_eq!(
        seqs(&oldest(s, uid, 1)),
        all.first().copied().into_iter().collect::<Vec<_>>()
    );
    let whole = ItemRange {
        after: None,
        before: None,
        skip: 0,
        limit: u64::MAX,
        from_end: false,
    };
    let ranged = s
        .items_range(uid, &whole)
        .unwrap_or_else(|e| panic!("items_range failed: {e}"));
    assert_eq!(seqs(&ranged), all, "items_range");
    let from_end = ItemRange {
        from_end: true,
        limit: 3,
        ..whole
    };
    let tail = s
        .items_range(uid, &from_end)
        .unwrap_or_else(|e| panic!("items_range failed: {e}"));
    assert_eq!(
        seqs(&tail),
        all[all.len().saturating_sub(3)..],
        "items_range from end"
    );
    let count = |before| {
        s.count_before(uid, before)
            .unwrap_or_else(|e| panic!("count_before failed: {e}"))
    };
    assert_eq!(count(None), n, "count_before(None)");
    if let Some(last) = all.last() {
        assert_eq!(count(Some(*last)), n - 1, "count_before(last)");
    }
    all
}

/// `TrimItems`: only the `keep` newest items are served by every read, at once and after
/// a reopen, whatever the store still holds on disk; ids of trimmed items are gone and
/// can be published again; a trim composes with deletes, replacements and puts in the
/// same change set; `keep` 0 empties the node; other nodes are untouched.
fn bulk_trim<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    let mut changes = vec![Change::PutNode(node("t", 1)), Change::PutNode(node("u", 2))];
    // Gaps in seq, as retractions and replacements leave them.
    let seq_of = |n: u64| n * 3;
    changes.extend(put_items(
        1,
        (1..=100).map(|n| item(&format!("t{n}"), seq_of(n))),
    ));
    changes.extend(put_items(2, (1..=5).map(|n| item(&format!("u{n}"), n))));
    commit(&mut s, changes);
    commit(&mut s, vec![Change::TrimItems { uid: 1, keep: 30 }]);
    let want: Vec<u64> = (71..=100).map(seq_of).collect();
    let check = |s: &S, want: &[u64]| {
        assert_eq!(visible(s, 1), want);
        assert_eq!(visible(s, 2), [1, 2, 3, 4, 5]);
    };
    check(&s, &want);
    assert_eq!(get(&s, 1, "t70"), None, "a trimmed id is gone");
    assert_eq!(get(&s, 1, "t1"), None);
    assert_eq!(get(&s, 1, "t71"), Some(item("t71", seq_of(71))));
    let mut s = cycle(s, r);
    check(&s, &want);
    assert_eq!(get(&s, 1, "t70"), None);

    // Trimming to more than the node holds changes nothing.
    commit(&mut s, vec![Change::TrimItems { uid: 1, keep: 1000 }]);
    check(&s, &want);

    // Publish as the engine plans it: a replacement (delete + put) and a new item, then
    // the trim, in one change set; a trimmed id published again is a new item.
    commit(
        &mut s,
        vec![
            Change::DeleteItem {
                uid: 1,
                id: "t80".into(),
                seq: seq_of(80),
            },
            Change::PutItem {
                uid: 1,
                item: item("t80", 301),
            },
            Change::PutItem {
                uid: 1,
                item: item("t5", 302),
            },
            Change::TrimItems { uid: 1, keep: 10 },
        ],
    );
    let mut want: Vec<u64> = (93..=100).map(seq_of).collect();
    want.extend([301, 302]);
    check(&s, &want);
    assert_eq!(get(&s, 1, "t80"), Some(item("t80", 301)));
    assert_eq!(get(&s, 1, "t5"), Some(item("t5", 302)));
    assert_eq!(get(&s, 1, "t92"), None);
    let mut s = cycle(s, r);
    check(&s, &want);

    // A retraction below the newest, then a trim: the trim counts what is left.
    commit(
        &mut s,
        vec![
            Change::DeleteItem {
                uid: 1,
                id: "t99".into(),
                seq: seq_of(99),
            },
            Change::TrimItems { uid: 1, keep: 4 },
        ],
    );
    let want = vec![seq_of(98), seq_of(100), 301, 302];
    check(&s, &want);
    let mut s = cycle(s, r);
    check(&s, &want);

    // Keep 0 empties the node; it then takes new items, which are served.
    commit(&mut s, vec![Change::TrimItems { uid: 1, keep: 0 }]);
    check(&s, &[]);
    assert_eq!(get(&s, 1, "t100"), None);
    commit(&mut s, put_items(1, [item("again", 400)]));
    check(&s, &[400]);
    let mut s = cycle(s, r);
    check(&s, &[400]);
    // Purge after a trim, then items again.
    commit(
        &mut s,
        vec![
            Change::PurgeItems { uid: 1 },
            Change::PutItem {
                uid: 1,
                item: item("p", 401),
            },
        ],
    );
    check(&s, &[401]);
    cycle(s, r)
}

/// A node published to many times with a trim each time, as `max_items` makes the engine
/// do: never more than `max_items` served after any commit, the newest ones, and the
/// store ends up holding what it serves.
fn trim_across_many_commits<S: Store>(mut s: S, r: Reopen<'_, S>) -> S {
    const KEEP: u64 = 7;
    commit(&mut s, vec![Change::PutNode(node("m", 1))]);
    for seq in 1..=300u64 {
        commit(
            &mut s,
            vec![
                Change::PutItem {
                    uid: 1,
                    item: item(&format!("m{seq}"), seq),
                },
                Change::TrimItems { uid: 1, keep: KEEP },
            ],
        );
        if matches!(seq % 37, 0) || seq == 300 {
            let want: Vec<u64> = (seq.saturating_sub(KEEP) + 1..=seq).collect();
            assert_eq!(visible(&s, 1), want, "after publish {seq}");
            assert_eq!(get(&s, 1, &format!("m{}", seq - KEEP)), None);
        }
    }
    let want: Vec<u64> = (294..=300).collect();
    let s = cycle(s, r);
    assert_eq!(visible(&s, 1), want);
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn mem_store_passes_the_contract() {
        super::run_all(crate::store::MemStore::new, None);
    }
}
