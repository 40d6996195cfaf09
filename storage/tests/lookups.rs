//! Reads and commits interleaved as the engine does them (is this item id taken? then
//! store the item), on sled and on the in-memory store: every answer the same. The sled
//! store keeps the last bucket lookup from one to the next while nothing changed in
//! between (`packed::SharedMemo`); this checks that it never answers from a stale one,
//! across bucket splits, deletions, trims and syncs.

use proptest::prelude::*;
use roost_nodes::{
    BareJid, Change, ChangeSet, ItemCounters, MemStore, NodeConfig, NodeRecord, Store,
};
use roost_storage::SledStore;

mod common;
use common::item;

#[derive(Debug, Clone)]
enum Op {
    /// Publish under this id: replaces the item holding it, if any.
    Publish(u16),
    Get(u16),
    Retract(u16),
    Trim(u16),
    Sync,
}

/// Enough ids for several buckets of the id index (and items for several of theirs), and
/// a few ids often, so that one id is published, read and retracted in a row.
fn id() -> impl Strategy<Value = u16> {
    prop_oneof![3 => 0u16..400, 2 => 0u16..3]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => id().prop_map(Op::Publish),
        3 => id().prop_map(Op::Get),
        2 => id().prop_map(Op::Retract),
        1 => (1u16..300).prop_map(Op::Trim),
        1 => Just(Op::Sync),
    ]
}

const UID: u64 = 7;

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
        let rec = NodeRecord {
            name: "n".into(),
            uid: UID,
            creator: BareJid::new("o@example.org").unwrap(),
            created: 1,
            config: NodeConfig::default(),
        };
        commit((&mut mem, &mut sled), vec![
            Change::PutNode(rec),
            Change::PutCounters { uid: UID, counters: ItemCounters::default() },
        ]);
        let mut seq = 0;
        for op in ops {
            match op {
                Op::Publish(n) => {
                    let id = format!("i{n}");
                    let old = mem.item(UID, &id).unwrap();
                    prop_assert_eq!(&sled.item(UID, &id).unwrap(), &old);
                    seq += 1;
                    let mut changes = Vec::new();
                    if let Some(o) = old {
                        changes.push(Change::DeleteItem { uid: UID, id: o.id, seq: o.seq });
                    }
                    changes.push(Change::PutItem { uid: UID, item: item(&id, seq) });
                    commit((&mut mem, &mut sled), changes);
                }
                Op::Get(n) => {
                    let id = format!("i{n}");
                    prop_assert_eq!(sled.item(UID, &id).unwrap(), mem.item(UID, &id).unwrap());
                }
                Op::Retract(n) => {
                    let id = format!("i{n}");
                    if let Some(o) = mem.item(UID, &id).unwrap() {
                        commit((&mut mem, &mut sled), vec![
                            Change::DeleteItem { uid: UID, id: o.id, seq: o.seq },
                        ]);
                    }
                }
                Op::Trim(keep) => {
                    commit((&mut mem, &mut sled), vec![
                        Change::TrimItems { uid: UID, keep: u64::from(keep) },
                    ]);
                }
                Op::Sync => sled.sync().unwrap(),
            }
        }
        prop_assert_eq!(
            sled.latest_items(UID, None).unwrap(),
            mem.latest_items(UID, None).unwrap()
        );
    }
}
