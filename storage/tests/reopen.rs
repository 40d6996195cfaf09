//! [`Reopenable`]: the contract through the wrapper, and close / reopen in one process.

use roost_nodes::{Change, ChangeSet, NodeRecord, Store};
use roost_storage::Reopenable;
use std::path::Path;

mod common;
use common::node;

fn open(path: &Path) -> Reopenable {
    Reopenable::open(path, true).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

#[test]
fn reopenable_passes_the_contract() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let make = || {
        n += 1;
        open(&root.path().join(format!("db{n}")))
    };
    roost_nodes::store::contract::run_all(make, None);
}

#[test]
fn closed_store_fails_until_reopened_and_keeps_what_was_synced() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let rec = node("n", 1);
    s.commit(&ChangeSet(vec![Change::PutNode(rec.clone())]))
        .unwrap();
    s.sync().unwrap();

    s.close();
    assert!(s.load().is_err(), "a closed store refuses every call");
    assert!(s.sync().is_err());
    assert!(s.flush().is_err());

    // The file lock was let go: the same process opens the directory again.
    let mut s = open(dir.path());
    let snap = s.load().unwrap();
    assert_eq!(snap.nodes.get("n").map(|(r, _)| r), Some(&rec));
    s.flush().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A crash image: the data directory's files as the disk has them right after the syncs,
/// copied while the store is open (sled has not written the groups out itself). Opening
/// the copy applies every synced group again from the commit log.
#[test]
fn a_crash_image_has_every_synced_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(&dir.path().join("a"));
    let recs: Vec<NodeRecord> = (1..=20).map(|uid| node(&format!("n{uid}"), uid)).collect();
    for rec in &recs {
        s.commit(&ChangeSet(vec![Change::PutNode(rec.clone())]))
            .unwrap();
        s.sync().unwrap();
    }
    copy_dir(&dir.path().join("a"), &dir.path().join("b"));
    drop(s);
    let mut copy = roost_storage::SledStore::open(&dir.path().join("b")).unwrap();
    assert_eq!(copy.replayed().map(|r| r.groups), Some(20));
    let snap = copy.load().unwrap();
    for rec in &recs {
        assert_eq!(snap.nodes.get(&rec.name).map(|(r, _)| r), Some(rec));
    }
    let more = NodeRecord {
        name: "more".into(),
        uid: 21,
        ..recs[0].clone()
    };
    copy.commit(&ChangeSet(vec![Change::PutNode(more)]))
        .unwrap();
    copy.sync().unwrap();
    drop(copy);
    let again = roost_storage::SledStore::open(&dir.path().join("b")).unwrap();
    assert_eq!(
        again.replayed(),
        None,
        "a clean close leaves nothing to apply again"
    );
}

/// When the log fills, what is held back is applied before the checkpoint empties the log:
/// a crash image taken then has every synced group, in sled or in the log.
#[test]
fn a_full_log_checkpoints_only_after_applying_what_it_holds() {
    use roost_nodes::{Item, Jid};
    let dir = tempfile::tempdir().unwrap();
    let mut s = roost_storage::SledStore::open(&dir.path().join("a")).unwrap();
    s.set_durable(false);
    s.commit(&ChangeSet(vec![Change::PutNode(node("n", 1))]))
        .unwrap();
    s.sync().unwrap();
    // Two groups at a time stay below APPLY_BYTES, so that only the log's filling applies
    // what a sync holds back; the rest is applied by hand.
    let each = 200 * 1024;
    assert!(2 * each < roost_storage::APPLY_BYTES);
    let n = (roost_storage::wal::CAPACITY as usize / each) as u64 + 3;
    for seq in 1..=n {
        let item = Item {
            id: format!("i{seq}"),
            seq,
            first_seq: None,
            publisher: Jid::new("o@example.org/r").unwrap(),
            published: 5,
            payload: format!("<x>{}</x>", "p".repeat(each)),
        };
        s.commit(&ChangeSet(vec![Change::PutItem { uid: 1, item }]))
            .unwrap();
        s.sync().unwrap();
        if seq % 2 == 0 {
            s.settle().unwrap();
        }
    }
    copy_dir(&dir.path().join("a"), &dir.path().join("b"));
    let copy = roost_storage::SledStore::open(&dir.path().join("b")).unwrap();
    let replayed = copy.replayed().expect("groups since the checkpoint").groups;
    assert!(replayed < n, "the log was checkpointed: {replayed} of {n}");
    for seq in 1..=n {
        assert!(
            copy.item(1, &format!("i{seq}")).unwrap().is_some(),
            "item {seq}"
        );
    }
}

#[test]
fn not_durable_opens_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Reopenable::open(dir.path(), false).unwrap();
    s.commit(&ChangeSet::default()).unwrap();
    s.sync().unwrap();
}
