//! Migration of version-1 data dirs: fixtures written by the version-1 store through the
//! engine come out of the migration with exactly the content they went in with.

mod common;

use roost_nodes::Store;
use roost_storage::{layout, v1::V1Store, SledStore};

fn v1_fixture(dir: &std::path::Path, scale: u64) -> common::State {
    common::write(V1Store::open(dir).expect("open v1"), scale);
    let mut s = V1Store::open(dir).expect("reopen v1");
    common::state(&mut s)
}

#[test]
fn a_version_1_dir_migrates_to_the_same_content() {
    let dir = tempfile::tempdir().unwrap();
    let before = v1_fixture(dir.path(), 3);
    assert!(layout::holds_v1(dir.path()));
    // Enough content that the fixture means something.
    assert_eq!(before.snapshot.nodes.len(), 6);
    assert_eq!(
        before.items[&before.snapshot.nodes["trimmed"].0.uid].len(),
        5
    );
    assert!(before.items[&before.snapshot.nodes["all"].0.uid].len() > 100);
    assert!(before.snapshot.subscriptions["all"].len() == 90);
    assert!(!before.expiries.is_empty());

    let mut s = SledStore::open(dir.path()).expect("open migrates");
    assert_eq!(common::state(&mut s), before);
    drop(s);
    // The version-1 files are gone, the new database is where it belongs.
    assert!(!layout::holds_v1(dir.path()));
    assert!(dir.path().join(layout::V2).is_dir());
    assert!(!dir.path().join(layout::V2_TMP).exists());
    assert!(!dir.path().join(layout::V2).join(layout::FROM_V1).exists());
    // Opened again: no migration, same content; and the engine works on it.
    let mut s = SledStore::open(dir.path()).expect("reopen");
    assert_eq!(common::state(&mut s), before);
    let mut svc = roost_nodes::Service::open(s, roost_nodes::Policy::default()).unwrap();
    svc.handle(
        &common::jid("owner@example.org/r"),
        roost_nodes::Request::Publish {
            node: "trimmed".into(),
            item: Some(roost_nodes::NewItem {
                id: Some("after".into()),
                payload: Some("<x/>".into()),
            }),
            options: None,
        },
        1_800_000_000_000,
    )
    .unwrap();
    let uid = before.snapshot.nodes["trimmed"].0.uid;
    let items = svc.store().latest_items(uid, None).unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(items.last().unwrap().id, "after");
}

#[test]
fn an_interrupted_migration_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let before = v1_fixture(dir.path(), 1);
    // A migration that died half way left a partial database behind.
    let tmp = dir.path().join(layout::V2_TMP);
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(tmp.join("conf"), b"half written").unwrap();
    let mut s = SledStore::open(dir.path()).expect("open");
    assert_eq!(common::state(&mut s), before);
    assert!(!tmp.exists());
}

#[test]
fn a_migration_that_died_after_its_commit_point_finishes_its_clean_up() {
    let dir = tempfile::tempdir().unwrap();
    let before = v1_fixture(dir.path(), 1);
    let tmp = dir.path().join(layout::V2_TMP);
    roost_storage::migrate::v1_to_v2(dir.path(), &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join(layout::V2)).unwrap();
    // Died here: the version-1 files are still there, next to the committed v2.
    assert!(layout::holds_v1(dir.path()));
    let mut s = SledStore::open(dir.path()).expect("open");
    assert_eq!(common::state(&mut s), before);
    assert!(!layout::holds_v1(dir.path()));
}

#[test]
fn version_1_files_next_to_an_unmarked_v2_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    drop(SledStore::open(dir.path()).unwrap());
    // Someone copied a version-1 database into a data dir already at version 2.
    std::fs::write(dir.path().join("conf"), b"x").unwrap();
    std::fs::write(dir.path().join("db"), b"x").unwrap();
    drop(SledStore::open(dir.path()).unwrap());
    assert!(layout::holds_v1(dir.path()));
}

#[test]
fn the_version_1_store_still_passes_the_contract() {
    // It writes the fixtures, so it must still mean what it always meant (TrimItems
    // included, applied one delete per item as the engine used to plan it).
    let root = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let make = || {
        n += 1;
        V1Store::open(&root.path().join(format!("db{n}"))).unwrap()
    };
    let reopen = |s: V1Store| {
        let path = s.path().unwrap().to_owned();
        drop(s);
        V1Store::open(&path).unwrap()
    };
    roost_nodes::store::contract::run_all(make, Some(&reopen));
}

#[test]
fn the_engine_writes_the_same_content_through_either_store() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let v1 = v1_fixture(a.path(), 2);
    common::write(SledStore::open(b.path()).unwrap(), 2);
    let mut s = SledStore::open(b.path()).unwrap();
    assert_eq!(common::state(&mut s), v1);
}
