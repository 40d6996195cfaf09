//! Where Roost's start-up goes on a data dir: opening sled, reading and decoding the rows
//! the engine keeps in memory, building the engine's state from them. Prints the time and
//! the process's RSS after each step.
//!
//! ```sh
//! cargo run --release -p roost-storage --example load -- DIR [--sled-default-cache]
//! ```
//!
//! `--sled-default-cache` opens sled with its own default page cache (1 GiB) instead of
//! [`roost_storage::CACHE_CAPACITY`], to see what the cap saves. A version-1 data dir is
//! migrated by the open (timed as such). `LOAD_COUNT_KEYS=1` also counts the keys.

use roost_nodes::store::SubRows;
use roost_nodes::{
    Affiliation, ItemCounters, Loader, NodeRecord, Policy, Service, Store, StoreError,
};
use roost_storage::SledStore;
use std::time::Instant;

fn rss_mb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn main() {
    // Migration progress and other store messages go through tracing.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let dir = std::env::args()
        .nth(1)
        .expect("usage: load DIR [--sled-default-cache]");
    let default_cache = std::env::args().nth(2).as_deref() == Some("--sled-default-cache");
    let t = Instant::now();
    let path = std::path::Path::new(&dir);
    let mut store = if default_cache {
        SledStore::open_tuned(path, |c| c.cache_capacity(1 << 30)).expect("open")
    } else {
        SledStore::open(path).expect("open")
    };
    eprintln!(
        "sled open: {:.2} s, RSS {} MB",
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    if std::env::var_os("LOAD_COUNT_KEYS").is_some() {
        eprintln!("keys: {}", store.raw_tree().len());
    }
    // The store's share: every row read and decoded, into a loader that keeps nothing.
    let t = Instant::now();
    let mut count = Count::default();
    store.load_into(&mut count).expect("load");
    eprintln!(
        "rows read and decoded ({} nodes, {} affiliations, {} subscriptions, {} with options): {:.2} s, RSS {} MB",
        count.nodes,
        count.affs,
        count.subs,
        count.options,
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    let t = Instant::now();
    let svc = Service::open(store, Policy::default()).expect("service");
    eprintln!(
        "Service::open (rows read again + engine state built): {:.2} s, RSS {} MB",
        t.elapsed().as_secs_f64(),
        rss_mb()
    );
    drop(svc);
}

/// A loader that counts what it is handed and keeps nothing.
#[derive(Default)]
struct Count {
    nodes: u64,
    affs: u64,
    subs: u64,
    options: u64,
}

impl Loader for Count {
    fn last_uid(&mut self, _: u64) {}
    fn node(&mut self, _: NodeRecord, _: ItemCounters) -> Result<(), StoreError> {
        self.nodes += 1;
        Ok(())
    }
    fn affiliation(&mut self, _: &str, _: &str, _: Affiliation) -> Result<(), StoreError> {
        self.affs += 1;
        Ok(())
    }
    fn subscriptions(&mut self, _: &str, rows: SubRows<'_, '_>) -> Result<(), StoreError> {
        for row in rows {
            self.subs += 1;
            self.options += u64::from(row?.options.is_some());
        }
        Ok(())
    }
}
