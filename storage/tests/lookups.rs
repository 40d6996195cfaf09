//! Reads and commits interleaved as the engine does them (is this item id taken? then
//! store the item), on sled and on the in-memory store: every answer the same. The sled
//! store keeps the last bucket lookup from one to the next while nothing changed in
//! between (`packed::SharedMemo`), and the last bucket of each node's items
//! (`packed::Tails`) and where its floor was; this checks that it never answers from a
//! stale one, across bucket splits, deletions, trims, purges and syncs, on two nodes side
//! by side.

use proptest::prelude::*;
use roost_nodes::{
    BareJid, Change, ChangeSet, ItemCounters, MemStore, NodeConfig, NodeRecord, Store,
};
use roost_storage::SledStore;

mod common;
use common::item;

#[derive(Debug, Clone)]
enum Op {
    /// Publish under this id (on node 0 or 1): replaces the item holding it, if any.
    Publish(usize, u16),
    /// Publish and keep the newest 30 in the same change set, as a node full at its
    /// `max_items` does: the floor moves up one item at a time, across buckets.
    PublishTrimmed(usize, u16),
    /// [`Op::PublishTrimmed`] under an id greater than any before, as generated ids are:
    /// the id index grows at its end.
    PublishFresh(usize),
    Get(usize, u16),
    Retract(usize, u16),
    /// Retract the newest item: empties the last bucket when it held only that one.
    RetractNewest(usize),
    Trim(usize, u16),
    Purge(usize),
    Sync,
}

/// Enough ids for several buckets of the id index (and items for several of theirs), and
/// a few ids often, so that one id is published, read and retracted in a row.
fn id() -> impl Strategy<Value = u16> {
    prop_oneof![3 => 0u16..400, 2 => 0u16..3]
}

fn op() -> impl Strategy<Value = Op> {
    let node = || prop_oneof![3 => Just(0usize), 1 => Just(1usize)];
    prop_oneof![
        8 => (node(), id()).prop_map(|(n, i)| Op::Publish(n, i)),
        8 => (node(), id()).prop_map(|(n, i)| Op::PublishTrimmed(n, i)),
        6 => node().prop_map(Op::PublishFresh),
        6 => (node(), id()).prop_map(|(n, i)| Op::Get(n, i)),
        4 => (node(), id()).prop_map(|(n, i)| Op::Retract(n, i)),
        2 => node().prop_map(Op::RetractNewest),
        2 => (node(), 1u16..300).prop_map(|(n, k)| Op::Trim(n, k)),
        1 => node().prop_map(Op::Purge),
        2 => Just(Op::Sync),
    ]
}

/// Two nodes whose keys are next to each other.
const UIDS: [u64; 2] = [7, 8];

fn retract(mem: &mut MemStore, sled: &mut SledStore, uid: u64, id: &str) {
    if let Some(o) = mem.item(uid, id).unwrap() {
        commit(
            (mem, sled),
            vec![Change::DeleteItem {
                uid,
                id: o.id,
                seq: o.seq,
            }],
        );
    }
}

fn commit(stores: (&mut MemStore, &mut SledStore), changes: Vec<Change>) {
    let cs = ChangeSet(changes);
    stores.0.commit(&cs).expect("memory commit");
    stores.1.commit(&cs).expect("sled commit");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn sled_answers_as_the_memory_store_does(ops in proptest::collection::vec(op(), 1..600)) {
        let mut mem = MemStore::new();
        let mut sled = SledStore::open_with(sled::Config::new().temporary(true)).unwrap();
        for (i, uid) in UIDS.into_iter().enumerate() {
            let rec = NodeRecord {
                name: format!("n{i}"),
                uid,
                creator: BareJid::new("o@example.org").unwrap(),
                created: 1,
                config: NodeConfig::default(),
            };
            commit((&mut mem, &mut sled), vec![
                Change::PutNode(rec),
                Change::PutCounters { uid, counters: ItemCounters::default() },
            ]);
        }
        let mut seq = 0;
        let mut newest: [Option<String>; 2] = [None, None];
        for op in ops {
            match op {
                Op::Publish(n, _) | Op::PublishTrimmed(n, _) | Op::PublishFresh(n) => {
                    let id = match op {
                        Op::Publish(_, i) | Op::PublishTrimmed(_, i) => format!("i{i}"),
                        _ => format!("z{:08}", seq + 1),
                    };
                    let uid = UIDS[n];
                    let old = mem.item(uid, &id).unwrap();
                    prop_assert_eq!(&sled.item(uid, &id).unwrap(), &old);
                    seq += 1;
                    let mut changes = Vec::new();
                    if let Some(o) = old {
                        changes.push(Change::DeleteItem { uid, id: o.id, seq: o.seq });
                    }
                    changes.push(Change::PutItem { uid, item: item(&id, seq) });
                    if matches!(op, Op::PublishTrimmed(..) | Op::PublishFresh(_)) {
                        changes.push(Change::TrimItems { uid, keep: 30 });
                    }
                    commit((&mut mem, &mut sled), changes);
                    newest[n] = Some(id);
                }
                Op::Get(n, i) => {
                    let (uid, id) = (UIDS[n], format!("i{i}"));
                    prop_assert_eq!(sled.item(uid, &id).unwrap(), mem.item(uid, &id).unwrap());
                }
                Op::Retract(n, i) => retract(&mut mem, &mut sled, UIDS[n], &format!("i{i}")),
                Op::RetractNewest(n) => {
                    if let Some(id) = newest[n].take() {
                        retract(&mut mem, &mut sled, UIDS[n], &id);
                    }
                }
                Op::Trim(n, keep) => {
                    commit((&mut mem, &mut sled), vec![
                        Change::TrimItems { uid: UIDS[n], keep: u64::from(keep) },
                    ]);
                }
                Op::Purge(n) => {
                    commit((&mut mem, &mut sled), vec![Change::PurgeItems { uid: UIDS[n] }]);
                    newest[n] = None;
                }
                Op::Sync => sled.sync().unwrap(),
            }
        }
        for uid in UIDS {
            prop_assert_eq!(
                sled.latest_items(uid, None).unwrap(),
                mem.latest_items(uid, None).unwrap()
            );
        }
    }
}
