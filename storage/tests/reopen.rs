//! [`Reopenable`]: the contract through the wrapper, and close / reopen in one process.

use roost_nodes::{BareJid, Change, ChangeSet, NodeConfig, NodeRecord, Store};
use roost_storage::Reopenable;
use std::path::Path;

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
    let rec = NodeRecord {
        name: "n".into(),
        uid: 1,
        creator: BareJid::new("o@example.org").unwrap(),
        created: 1,
        config: NodeConfig::default(),
    };
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

#[test]
fn not_durable_opens_without_the_log_handle() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Reopenable::open(dir.path(), false).unwrap();
    s.commit(&ChangeSet::default()).unwrap();
    s.sync().unwrap();
}
