//! Behaviour of the sled store beyond the shared contract: schema versions, corruption,
//! and whole change sets.

use roost_nodes::{
    BareJid, Change, ChangeSet, Item, ItemCounters, Jid, NodeConfig, NodeRecord, Store,
};
use roost_storage::{keys, SledStore};

fn node(name: &str, uid: u64) -> NodeRecord {
    NodeRecord {
        name: name.into(),
        uid,
        creator: BareJid::new("o@example.org").unwrap(),
        created: 1,
        config: NodeConfig::default(),
    }
}

fn item(id: &str, seq: u64) -> Item {
    Item {
        id: id.into(),
        seq,
        publisher: Jid::new("p@example.org/r").unwrap(),
        published: seq,
        payload: "<x/>".into(),
    }
}

#[test]
fn fresh_database_is_stamped_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    let v = s.raw_tree().get(keys::schema()).unwrap().unwrap();
    assert_eq!(keys::decode_schema(&v).unwrap(), keys::SCHEMA_VERSION);
    drop(s);
    SledStore::open(dir.path()).unwrap();
}

#[test]
fn newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.raw_tree()
        .insert(keys::schema(), &(keys::SCHEMA_VERSION + 1).to_be_bytes())
        .unwrap();
    s.flush().unwrap();
    drop(s);
    let err = SledStore::open(dir.path()).unwrap_err().0;
    assert!(
        err.contains(&format!("version {}", keys::SCHEMA_VERSION + 1)),
        "{err}"
    );
    assert!(err.contains("newer"), "{err}");
}

#[test]
fn unknown_old_schema_version_and_unversioned_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.raw_tree()
        .insert(keys::schema(), &0u32.to_be_bytes())
        .unwrap();
    s.flush().unwrap();
    drop(s);
    let err = SledStore::open(dir.path()).unwrap_err().0;
    assert!(err.contains("version 0"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.raw_tree().remove(keys::schema()).unwrap();
    s.raw_tree()
        .insert(keys::node("x"), b"junk".to_vec())
        .unwrap();
    s.flush().unwrap();
    drop(s);
    let err = SledStore::open(dir.path()).unwrap_err().0;
    assert!(err.contains("no schema version"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    s.raw_tree()
        .insert(keys::schema(), b"\x01".to_vec())
        .unwrap();
    s.flush().unwrap();
    drop(s);
    assert!(SledStore::open(dir.path()).is_err());
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let mut s = SledStore::open_with(sled::Config::new().temporary(true)).unwrap();
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("n", 1)));
    cs.push(Change::PutItem {
        uid: 1,
        item: item("a", 1),
    });
    s.commit(&cs).unwrap();
    assert!(s.load().is_ok());

    let tree = s.raw_tree().clone();
    // A node record cut short.
    let good = tree.get(keys::node("n")).unwrap().unwrap();
    tree.insert(keys::node("n"), &good[..good.len() - 3])
        .unwrap();
    assert!(s.load().is_err());
    // A node record from an unknown future format.
    let mut future = good.to_vec();
    future[0] = 200;
    tree.insert(keys::node("n"), future).unwrap();
    let err = s.load().unwrap_err().0;
    assert!(err.contains("format 200"), "{err}");
    tree.insert(keys::node("n"), good).unwrap();
    assert!(s.load().is_ok());

    // Corrupt counters, affiliation, subscription rows.
    for key in [
        keys::counters(1),
        keys::aff("n", "x@example.org"),
        keys::sub("n", "s"),
    ] {
        tree.insert(&key, b"\x01\xff".to_vec()).unwrap();
        assert!(s.load().is_err(), "{key:02x?}");
        tree.remove(&key).unwrap();
    }
    // A JID that does not parse, in a key.
    let bad_jid = keys::aff("n", "@@@");
    tree.insert(
        &bad_jid,
        roost_storage::codec::affiliation(roost_nodes::Affiliation::Owner),
    )
    .unwrap();
    assert!(s.load().is_err());
    tree.remove(&bad_jid).unwrap();
    // A malformed key under a known tag.
    tree.insert([keys::NODE, 0xff], b"x".to_vec()).unwrap();
    assert!(s.load().is_err());
    tree.remove([keys::NODE, 0xff]).unwrap();
    assert!(s.load().is_ok());

    // Items: corrupt value, dangling id index, short last_uid.
    tree.insert(keys::item(1, 1), b"\x01".to_vec()).unwrap();
    assert!(s.item(1, "a").is_err());
    assert!(s.latest_items(1, None).is_err());
    assert!(s.oldest_items(1, 1).is_err());
    tree.remove(keys::item(1, 1)).unwrap();
    assert!(s.item(1, "a").is_err(), "index points at nothing");
    tree.insert(keys::item_id(1, "a"), b"\x00".to_vec())
        .unwrap();
    assert!(s.item(1, "a").is_err());
    tree.insert(keys::last_uid(), b"\x00".to_vec()).unwrap();
    assert!(s.load().is_err());
    // A commit that must read a corrupt row fails and applies nothing.
    tree.insert(keys::item(1, 2), b"\x07garbage".to_vec())
        .unwrap();
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("other", 9)));
    cs.push(Change::DeleteItem {
        uid: 1,
        id: "b".into(),
        seq: 2,
    });
    assert!(s.commit(&cs).is_err());
    assert!(tree.get(keys::node("other")).unwrap().is_none());
}

#[test]
fn a_big_change_set_is_applied_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    let mut cs = ChangeSet::default();
    for uid in 1..=20u64 {
        cs.push(Change::PutNode(node(&format!("n{uid}"), uid)));
        cs.push(Change::PutCounters {
            uid,
            counters: ItemCounters {
                count: 200,
                last_seq: 200,
            },
        });
        for seq in 1..=200 {
            cs.push(Change::PutItem {
                uid,
                item: item(&format!("i{seq}"), seq),
            });
        }
    }
    s.commit(&cs).unwrap();
    drop(s);
    let mut s = SledStore::open(dir.path()).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.nodes.len(), 20);
    assert_eq!(snap.last_uid, 20);
    for uid in 1..=20 {
        assert_eq!(snap.nodes[&format!("n{uid}")].1.count, 200);
        assert_eq!(s.latest_items(uid, None).unwrap().len(), 200);
    }

    // A failing change set (it must read a corrupt row midway) leaves no trace.
    s.raw_tree()
        .insert(keys::sub("n1", "s"), b"\x01".to_vec())
        .unwrap();
    let mut cs = ChangeSet::default();
    cs.push(Change::PurgeItems { uid: 2 });
    cs.push(Change::PutNode(node("new", 99)));
    cs.push(Change::DeleteNode {
        name: "n1".into(),
        uid: 1,
    });
    assert!(s.commit(&cs).is_err());
    s.raw_tree().remove(keys::sub("n1", "s")).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.nodes.len(), 20);
    assert_eq!(snap.last_uid, 20);
    assert_eq!(s.latest_items(2, None).unwrap().len(), 200);
}

#[test]
fn deleting_a_node_leaves_no_rows_behind() {
    let mut s = SledStore::open_with(sled::Config::new().temporary(true)).unwrap();
    let baseline: Vec<_> = s.raw_tree().iter().keys().map(|k| k.unwrap()).collect();
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("n", 1)));
    cs.push(Change::PutCounters {
        uid: 1,
        counters: ItemCounters::default(),
    });
    cs.push(Change::PutAffiliation {
        node: "n".into(),
        jid: BareJid::new("a@example.org").unwrap(),
        affiliation: roost_nodes::Affiliation::Owner,
    });
    cs.push(Change::PutSubscription {
        node: "n".into(),
        sub: roost_nodes::Subscription {
            jid: Jid::new("b@example.org/r").unwrap(),
            subid: "s".into(),
            state: roost_nodes::SubscriptionState::Subscribed,
            options: Default::default(),
        },
    });
    for seq in 1..=10 {
        cs.push(Change::PutItem {
            uid: 1,
            item: item(&format!("i{seq}"), seq),
        });
    }
    s.commit(&cs).unwrap();
    let mut cs = ChangeSet::default();
    cs.push(Change::DeleteNode {
        name: "n".into(),
        uid: 1,
    });
    s.commit(&cs).unwrap();
    let left: Vec<_> = s
        .raw_tree()
        .iter()
        .keys()
        .map(|k| k.unwrap())
        .filter(|k| k[0] != keys::META)
        .collect();
    assert!(left.is_empty(), "rows left: {left:02x?}");
    assert!(baseline.iter().all(|k| k[0] == keys::META));
}

#[test]
fn index_rows_follow_their_records() {
    let mut s = SledStore::open_with(sled::Config::new().temporary(true)).unwrap();
    let sub = |jid: &str| roost_nodes::Subscription {
        jid: Jid::new(jid).unwrap(),
        subid: "s".into(),
        state: roost_nodes::SubscriptionState::Subscribed,
        options: Default::default(),
    };
    let put = |s: &mut SledStore, c: Change| s.commit(&ChangeSet(vec![c])).unwrap();
    put(
        &mut s,
        Change::PutSubscription {
            node: "n".into(),
            sub: sub("a@example.org/x"),
        },
    );
    let tree = s.raw_tree().clone();
    assert!(tree
        .contains_key(keys::sub_by_jid("a@example.org", "n", "s"))
        .unwrap());
    // Replaced by another JID under the same subid: the old index row goes.
    put(
        &mut s,
        Change::PutSubscription {
            node: "n".into(),
            sub: sub("b@example.org"),
        },
    );
    assert!(!tree
        .contains_key(keys::sub_by_jid("a@example.org", "n", "s"))
        .unwrap());
    assert!(tree
        .contains_key(keys::sub_by_jid("b@example.org", "n", "s"))
        .unwrap());
    put(
        &mut s,
        Change::DeleteSubscription {
            node: "n".into(),
            jid: Jid::new("b@example.org").unwrap(),
            subid: "s".into(),
        },
    );
    assert!(tree.scan_prefix([keys::SUB_BY_JID]).next().is_none());
    assert!(tree.scan_prefix([keys::SUB]).next().is_none());

    let j = BareJid::new("c@example.org").unwrap();
    put(
        &mut s,
        Change::PutAffiliation {
            node: "n".into(),
            jid: j.clone(),
            affiliation: roost_nodes::Affiliation::Member,
        },
    );
    assert!(tree
        .contains_key(keys::aff_by_jid("c@example.org", "n"))
        .unwrap());
    put(
        &mut s,
        Change::PutAffiliation {
            node: "n".into(),
            jid: j,
            affiliation: roost_nodes::Affiliation::None,
        },
    );
    assert!(tree.scan_prefix([keys::AFF_BY_JID]).next().is_none());
    assert!(tree.scan_prefix([keys::AFF]).next().is_none());
}
