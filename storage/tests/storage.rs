//! Behaviour of the sled store beyond the shared contract: schema versions, corruption,
//! whole change sets, and what the packed layout keeps on disk.

use roost_nodes::{BareJid, Change, ChangeSet, ItemCounters, Jid, NodeRecord, Store};
use roost_storage::{apply, codec, keys, packed, SledStore};

mod common;
use common::{item, node};

fn temp() -> SledStore {
    SledStore::open_with(sled::Config::new().temporary(true)).unwrap()
}

/// The first bucket key of a map.
fn first_bucket(s: &SledStore, prefix: &[u8]) -> Vec<u8> {
    s.raw_tree()
        .scan_prefix(prefix)
        .keys()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

#[test]
fn fresh_database_is_stamped_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    let v = s.raw_tree().get(keys::schema()).unwrap().unwrap();
    assert_eq!(keys::decode_schema(&v).unwrap(), keys::SCHEMA_VERSION);
    let log = dir
        .path()
        .join(roost_storage::layout::V2)
        .join(roost_storage::wal::FILE);
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        roost_storage::wal::CAPACITY
    );
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
fn older_schema_in_place_and_unversioned_data_are_refused() {
    let s = temp();
    s.raw_tree()
        .insert(keys::schema(), &1u32.to_be_bytes())
        .unwrap();
    let tree = s.raw_tree().clone();
    drop(s);
    drop(tree);

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
        .insert(keys::schema(), &1u32.to_be_bytes())
        .unwrap();
    s.flush().unwrap();
    drop(s);
    let err = SledStore::open(dir.path()).unwrap_err().0;
    assert!(err.contains("version 1 found"), "{err}");

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
    let mut s = temp();
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
    for seq in 1..=40 {
        cs.push(Change::PutItem {
            uid: 1,
            item: item(&format!("i{seq}"), seq),
        });
    }
    s.commit(&cs).unwrap();
    assert!(s.load().is_ok());
    let tree = s.raw_tree().clone();

    // A node record cut short; from an unknown future format.
    let good = tree.get(keys::node("n")).unwrap().unwrap();
    tree.insert(keys::node("n"), &good[..good.len() - 3])
        .unwrap();
    assert!(s.load().is_err());
    let mut future = good.to_vec();
    future[0] = 200;
    tree.insert(keys::node("n"), future).unwrap();
    assert!(s.load().unwrap_err().0.contains("format 200"));
    tree.insert(keys::node("n"), good).unwrap();
    assert!(s.load().is_ok());

    // Corrupt head, affiliation and subscription buckets: whole and inside an entry.
    for prefix in [keys::counters(1), keys::affs("n"), keys::subs("n")] {
        let key = first_bucket(&s, &prefix);
        let good = tree.get(&key).unwrap().unwrap();
        for bad in [&b"\x01\xff"[..], &good[..good.len() - 1], &b"\x07"[..]] {
            tree.insert(&key, bad).unwrap();
            assert!(s.load().is_err(), "{key:02x?} {bad:02x?}");
        }
        tree.insert(&key, good).unwrap();
    }
    // A JID that does not parse, in an affiliation bucket.
    let key = first_bucket(&s, &keys::affs("n"));
    let mut bad = packed::new_bucket();
    packed::put_entry(
        &mut bad,
        b"@@@",
        &codec::affiliation(roost_nodes::Affiliation::Owner),
    );
    let good = tree.get(&key).unwrap().unwrap();
    tree.insert(&key, bad).unwrap();
    assert!(s.load().is_err());
    tree.insert(&key, good).unwrap();
    assert!(s.load().is_ok());

    // Items: a corrupt bucket in the middle of a node's items fails every read that
    // crosses it, rather than returning what came before it.
    let buckets: Vec<_> = tree
        .scan_prefix(keys::items(1))
        .keys()
        .map(|k| k.unwrap())
        .collect();
    assert!(buckets.len() >= 3, "{} buckets", buckets.len());
    let mid = buckets[1].clone();
    let good = tree.get(&mid).unwrap().unwrap();
    tree.insert(&mid, &good[..good.len() - 2]).unwrap();
    assert!(s.latest_items(1, None).is_err());
    assert!(s.oldest_items(1, 100).is_err());
    assert!(s.count_before(1, None).is_err());
    // A commit that must read the corrupt bucket fails and applies nothing.
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("other", 9)));
    cs.push(Change::TrimItems { uid: 1, keep: 2 });
    assert!(s.commit(&cs).is_err());
    assert!(tree.get(keys::node("other")).unwrap().is_none());
    tree.insert(&mid, good).unwrap();
    assert_eq!(s.latest_items(1, None).unwrap().len(), 40);

    // An index entry that points at a missing item is an error, not a miss.
    let mut cs = ChangeSet::default();
    cs.push(Change::PutItem {
        uid: 1,
        item: item("i41", 41),
    });
    s.commit(&cs).unwrap();
    let idx = first_bucket(&s, &keys::ids(1));
    let ghost = std::str::from_utf8(&idx[keys::ids(1).len()..])
        .unwrap()
        .to_owned();
    let mut b = packed::new_bucket();
    packed::put_entry(&mut b, ghost.as_bytes(), &keys::u64_value(39_999));
    tree.insert(&idx, b).unwrap();
    assert!(s.item(1, &ghost).is_err());
    tree.insert(keys::last_uid(), b"\x00".to_vec()).unwrap();
    assert!(s.load().is_err());
}

#[test]
fn trimming_keeps_the_disk_bounded() {
    let mut s = temp();
    s.commit(&ChangeSet(vec![Change::PutNode(node("n", 1))]))
        .unwrap();
    let keys_of = |s: &SledStore, prefix: Vec<u8>| s.raw_tree().scan_prefix(prefix).count();
    let mut most = 0;
    for seq in 1..=3000u64 {
        let cs = ChangeSet(vec![
            Change::PutItem {
                uid: 1,
                item: item(&format!("id-{seq}"), seq),
            },
            Change::TrimItems { uid: 1, keep: 50 },
        ]);
        s.commit(&cs).unwrap();
        if seq > 100 {
            most = most.max(keys_of(&s, keys::items(1)) + keys_of(&s, keys::ids(1)));
        }
    }
    // 50 items of ~200 bytes are 3 buckets of 4 KiB; allow the one being filled and the
    // one about to go, and the index.
    let items = keys_of(&s, keys::items(1));
    assert!(items <= 5, "{items} item buckets for 50 items");
    assert!(most <= 10, "at most {most} keys for 50 items");
    let stored: usize = s
        .raw_tree()
        .scan_prefix(keys::items(1))
        .map(|kv| packed::all_entries(&kv.unwrap().1).unwrap().len())
        .sum();
    assert!(stored < 50 + 40, "{stored} items stored for 50 served");
    assert_eq!(s.latest_items(1, None).unwrap().len(), 50);
    let h = codec::decode_head(&s.raw_tree().get(keys::counters(1)).unwrap().unwrap()).unwrap();
    assert_eq!((h.floor, h.live), (2951, 50));
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

    // A failing change set (it must read a corrupt bucket midway) leaves no trace.
    let key = first_bucket(&s, &keys::items(3));
    let good = s.raw_tree().get(&key).unwrap().unwrap();
    s.raw_tree().insert(&key, b"\x01\x05".to_vec()).unwrap();
    let mut cs = ChangeSet::default();
    cs.push(Change::PurgeItems { uid: 2 });
    cs.push(Change::PutNode(node("new", 99)));
    cs.push(Change::TrimItems { uid: 3, keep: 1 });
    assert!(s.commit(&cs).is_err());
    s.raw_tree().insert(&key, good).unwrap();
    let snap = s.load().unwrap();
    assert_eq!(snap.nodes.len(), 20);
    assert_eq!(snap.last_uid, 20);
    assert_eq!(s.latest_items(2, None).unwrap().len(), 200);
}

#[test]
fn deleting_a_node_leaves_no_rows_behind() {
    let mut s = temp();
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
    for i in 0..300 {
        cs.push(Change::PutSubscription {
            node: "n".into(),
            sub: roost_nodes::Subscription {
                jid: Jid::new(&format!("b{i}@example.org/r")).unwrap(),
                subid: format!("s{i}"),
                state: roost_nodes::SubscriptionState::Subscribed,
                options: Default::default(),
            },
        });
    }
    for seq in 1..=100 {
        cs.push(Change::PutItem {
            uid: 1,
            item: item(&format!("i{seq}"), seq),
        });
    }
    s.commit(&cs).unwrap();
    assert!(s.raw_tree().scan_prefix(keys::subs("n")).count() > 1);
    s.commit(&ChangeSet(vec![Change::DeleteNode {
        name: "n".into(),
        uid: 1,
    }]))
    .unwrap();
    let left: Vec<_> = s
        .raw_tree()
        .iter()
        .keys()
        .map(|k| k.unwrap())
        .filter(|k| k[0] != keys::META)
        .collect();
    assert!(left.is_empty(), "rows left: {left:02x?}");
}

#[test]
fn the_publish_path_makes_few_sled_writes() {
    // One publish with a trim, as the engine plans it on a full node: the item's bucket,
    // the id index bucket and the head; a bucket deleted now and then.
    let mut s = temp();
    s.commit(&ChangeSet(vec![Change::PutNode(node("n", 1))]))
        .unwrap();
    let publish = |s: &mut SledStore, seq: u64| {
        s.commit(&ChangeSet(vec![
            Change::PutItem {
                uid: 1,
                item: item(&format!("{seq:016x}"), seq),
            },
            Change::TrimItems { uid: 1, keep: 100 },
            Change::PutCounters {
                uid: 1,
                counters: ItemCounters {
                    count: seq.min(100),
                    last_seq: seq,
                },
            },
        ]))
        .unwrap();
    };
    for seq in 1..=500 {
        publish(&mut s, seq);
    }
    let (_, w0) = s.ops().get();
    for seq in 501..=1500 {
        publish(&mut s, seq);
    }
    let (_, w1) = s.ops().get();
    let per_publish = (w1 - w0) as f64 / 1000.0;
    assert!(per_publish < 3.5, "{per_publish} writes per publish");
    let _ = apply::ITEM_BUCKET;
}

#[test]
fn commits_are_staged_until_the_sync_and_reads_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    // A second handle on the same tree sees only what reached sled.
    let sled_view = s.raw_tree().clone();
    let items = |uid: u64, seqs: std::ops::RangeInclusive<u64>| {
        seqs.map(|seq| Change::PutItem {
            uid,
            item: item(&format!("i{seq}"), seq),
        })
        .collect::<Vec<_>>()
    };
    let mut a = vec![Change::PutNode(node("n", 1)), Change::PutNode(node("m", 2))];
    a.extend(items(1, 1..=10));
    a.extend(items(2, 1..=30));
    s.commit(&ChangeSet(a)).unwrap();
    let mut b = items(1, 11..=20);
    b.push(Change::TrimItems { uid: 1, keep: 15 });
    s.commit(&ChangeSet(b)).unwrap();
    assert!(
        sled_view.get(keys::node("n")).unwrap().is_none(),
        "staged, not in sled"
    );
    // Point reads go through the staged writes.
    assert_eq!(s.item(1, "i20").unwrap().map(|i| i.seq), Some(20));
    assert!(
        s.item(1, "i3").unwrap().is_none(),
        "trimmed by the second commit"
    );
    assert!(sled_view.get(keys::node("n")).unwrap().is_none());
    // Walks read sled, so they apply what is staged first.
    assert_eq!(s.latest_items(1, None).unwrap().len(), 15);
    assert!(sled_view.get(keys::node("n")).unwrap().is_some());

    // A change set that fails midway (it reads a corrupt bucket) leaves no trace among the
    // staged ones, and the others still reach the disk.
    let key = first_bucket(&s, &keys::items(2));
    let good = sled_view.get(&key).unwrap().unwrap();
    s.commit(&ChangeSet(items(1, 21..=25))).unwrap();
    sled_view.insert(&key, b"\x01\x05".to_vec()).unwrap();
    let mut bad = items(1, 26..=30);
    bad.push(Change::TrimItems { uid: 2, keep: 1 });
    assert!(s.commit(&ChangeSet(bad)).is_err());
    sled_view.insert(&key, good).unwrap();
    s.commit(&ChangeSet(items(1, 31..=31))).unwrap();
    s.sync().unwrap();
    assert_eq!(s.item(1, "i25").unwrap().map(|i| i.seq), Some(25));
    assert!(s.item(1, "i26").unwrap().is_none());
    assert_eq!(s.latest_items(2, None).unwrap().len(), 30);

    // Dropped without a sync: what was committed still reaches sled.
    s.commit(&ChangeSet(items(1, 32..=32))).unwrap();
    drop(s);
    drop(sled_view);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.item(1, "i32").unwrap().map(|i| i.seq), Some(32));
    assert_eq!(s.item(1, "i31").unwrap().map(|i| i.seq), Some(31));
}

/// A loader that counts rows and fails at the `fail_at`-th call of its kind.
struct Failing {
    fail_node: usize,
    fail_subs: usize,
    nodes: usize,
    affs: usize,
    subs: usize,
}

impl roost_nodes::Loader for Failing {
    fn last_uid(&mut self, _: u64) {}
    fn node(&mut self, _: NodeRecord, _: ItemCounters) -> Result<(), roost_nodes::StoreError> {
        self.nodes += 1;
        if self.nodes == self.fail_node {
            return Err(roost_nodes::StoreError("node refused".into()));
        }
        Ok(())
    }
    fn affiliation(
        &mut self,
        _: &str,
        _: &str,
        _: roost_nodes::Affiliation,
    ) -> Result<(), roost_nodes::StoreError> {
        // Every affiliation comes after every node.
        assert_eq!(self.subs, 0);
        self.affs += 1;
        Ok(())
    }
    fn subscriptions(
        &mut self,
        _: &str,
        rows: roost_nodes::store::SubRows<'_, '_>,
    ) -> Result<(), roost_nodes::StoreError> {
        assert_eq!(self.nodes, N_NODES, "subscriptions come after every node");
        for row in rows {
            row?;
        }
        self.subs += 1;
        if self.subs == self.fail_subs {
            return Err(roost_nodes::StoreError("subscriptions refused".into()));
        }
        Ok(())
    }
}

/// More nodes than the loading readers may run ahead of the loader (`load.rs`).
const N_NODES: usize = 5_000;

#[test]
fn loading_many_rows_keeps_their_order_and_stops_at_the_first_failure() {
    let mut s = temp();
    let mut cs = ChangeSet::default();
    for uid in 1..=N_NODES as u64 {
        let name = format!("n{uid:05}");
        cs.push(Change::PutNode(node(&name, uid)));
        cs.push(Change::PutAffiliation {
            node: name.clone(),
            jid: BareJid::new("o@example.org").unwrap(),
            affiliation: roost_nodes::Affiliation::Owner,
        });
        cs.push(Change::PutSubscription {
            node: name,
            sub: roost_nodes::Subscription {
                jid: Jid::new("b@example.org/r").unwrap(),
                subid: format!("s{uid}"),
                state: roost_nodes::SubscriptionState::Subscribed,
                options: Default::default(),
            },
        });
    }
    s.commit(&cs).unwrap();
    s.sync().unwrap();
    let load = |s: &mut SledStore, fail_node, fail_subs| {
        let mut l = Failing {
            fail_node,
            fail_subs,
            nodes: 0,
            affs: 0,
            subs: 0,
        };
        let r = s.load_into(&mut l);
        (r, l.nodes, l.affs, l.subs)
    };

    let (r, nodes, affs, subs) = load(&mut s, 0, 0);
    r.unwrap();
    assert_eq!((nodes, affs, subs), (N_NODES, N_NODES, N_NODES));
    // The loader fails early and late: its error, and nothing handed over after it (the
    // readers stop rather than block on a loader that has gone).
    let (r, nodes, _, subs) = load(&mut s, 3, 0);
    assert_eq!(r.unwrap_err().0, "node refused");
    assert_eq!((nodes, subs), (3, 0));
    let (r, _, _, subs) = load(&mut s, 0, N_NODES - 1);
    assert_eq!(r.unwrap_err().0, "subscriptions refused");
    assert_eq!(subs, N_NODES - 1);

    // A damaged row at the end of each map, read long after the loader started, fails it.
    let tree = s.raw_tree().clone();
    for key in [
        keys::node(&format!("n{N_NODES:05}")),
        first_bucket(&s, &keys::affs(&format!("n{N_NODES:05}"))),
        first_bucket(&s, &keys::subs(&format!("n{N_NODES:05}"))),
    ] {
        let good = tree.get(&key).unwrap().unwrap();
        tree.insert(&key, &b"\x07"[..]).unwrap();
        let (r, ..) = load(&mut s, 0, 0);
        assert!(r.is_err(), "{key:02x?}");
        tree.insert(&key, good).unwrap();
    }
    let (r, ..) = load(&mut s, 0, 0);
    r.unwrap();
}

/// A read keeps its bucket lookup for the next one; writing through `raw_tree` (as the
/// corruption tests do) must not be hidden by it.
#[test]
fn raw_writes_are_seen_by_the_next_read() {
    let mut s = temp();
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("n", 1)));
    cs.push(Change::PutItem {
        uid: 1,
        item: item("i1", 1),
    });
    s.commit(&cs).unwrap();
    s.sync().unwrap();
    // An id that is not there: the read ends at the id index, whose bucket it remembers.
    assert_eq!(s.item(1, "i2").unwrap(), None);
    let bucket = first_bucket(&s, &keys::ids(1));
    s.raw_tree().insert(bucket, &b"\x01garbage"[..]).unwrap();
    assert!(
        s.item(1, "i2").is_err(),
        "the damaged id index is read, not remembered"
    );
}

#[test]
fn a_raw_bucket_written_after_the_last_one_is_appended_to_next() {
    let mut s = temp();
    let publish = |s: &mut SledStore, seq: u64| {
        let mut cs = ChangeSet::default();
        cs.push(Change::PutItem {
            uid: 1,
            item: item(&format!("i{seq}"), seq),
        });
        s.commit(&cs).unwrap();
        s.sync().unwrap();
    };
    let mut cs = ChangeSet::default();
    cs.push(Change::PutNode(node("n", 1)));
    s.commit(&cs).unwrap();
    // The store learns the last bucket of the node's items.
    publish(&mut s, 1);
    // A tool writes a bucket after it.
    let mut bucket = packed::new_bucket();
    packed::put_entry(&mut bucket, &keys::seq(5), &codec::item(&item("i5", 5)));
    let mut key = keys::items(1);
    key.extend_from_slice(&keys::seq(5));
    s.raw_tree().insert(key, bucket).unwrap();
    // The next item goes after it, where reads look for it.
    publish(&mut s, 6);
    assert_eq!(s.item(1, "i6").unwrap().map(|i| i.seq), Some(6));
}
