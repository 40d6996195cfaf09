//! The shared store contract, run on sled with a reopen (drop, open the same path).

use roost_storage::SledStore;
use std::path::Path;

fn reopen(s: SledStore) -> SledStore {
    let path = s.path().expect("opened by path").to_owned();
    drop(s);
    open(&path)
}

fn open(path: &Path) -> SledStore {
    SledStore::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

#[test]
fn sled_store_passes_the_contract() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut n = 0;
    let make = || {
        n += 1;
        open(&root.path().join(format!("db{n}")))
    };
    roost_nodes::store::contract::run_all(make, Some(&reopen));
}

#[test]
fn sled_store_passes_the_contract_without_reopen() {
    let make = || SledStore::open_with(sled::Config::new().temporary(true)).expect("open");
    roost_nodes::store::contract::run_all(make, None);
}
