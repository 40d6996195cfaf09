//! Heap bytes the engine holds per subscription, counted exactly by a counting global
//! allocator (no RSS, no sampling: the same data gives the same count on any machine).
//!
//! The data set is the scale run's (`storage/examples/populate.rs`, `scripts/scale`):
//! `--nodes` nodes (default 100 000), each with its creator as owner; `--subs`
//! subscriptions (default 1 000 000), `--big` of them (default 100 000) on one node by
//! distinct JIDs and the rest spread round-robin over the other nodes by `--users` JIDs
//! (default 100 000), all bare, default options, 16-hex-digit subids.
//!
//! It opens a `Service` twice on a store that generates the rows as it hands them over (it
//! keeps nothing): once with the nodes and affiliations only, once with the subscriptions
//! too.
//! The difference, divided by the number of subscriptions, is what one subscription costs
//! (its entries in every map and index, and its share of the interned JIDs); the first
//! figure is what the nodes cost without any. Prints one JSON line.
//!
//! ```sh
//! cargo run --release -p roost-nodes --example memory
//! cargo run --release -p roost-nodes --example memory -- --nodes 1000 --subs 20000 --big 5000
//! ```

use roost_nodes::store::{Loader, StoreError, SubRow};
use roost_nodes::{
    Affiliation, BareJid, ChangeSet, Item, ItemCounters, NodeConfig, NodeRecord, Policy, Service,
    Store, SubscriptionState,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes currently allocated and the peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A store that generates the data set's rows as it hands them over and keeps nothing,
/// as a real store hands over rows borrowed from its own bytes: what remains allocated
/// after `Service::open` is the engine's, and the peak while opening is the engine's own.
struct Synthetic {
    args: Args,
    with_subs: bool,
}

impl Store for Synthetic {
    fn load_into(&mut self, l: &mut dyn Loader) -> Result<(), StoreError> {
        let a = &self.args;
        l.last_uid(a.nodes);
        for k in 0..a.nodes {
            let creator = BareJid::new(&format!("u{}@localhost", k % a.users)).expect("jid");
            let rec = NodeRecord {
                name: node_name(k),
                uid: k + 1,
                creator,
                created: 0,
                config: NodeConfig::default(),
            };
            l.node(rec, ItemCounters::default())?;
        }
        for k in 0..a.nodes {
            l.affiliation(
                &node_name(k),
                &format!("u{}@localhost", k % a.users),
                Affiliation::Owner,
            )?;
        }
        if !self.with_subs {
            return Ok(());
        }
        // The big node's subscribers, then the rest round-robin over the other nodes: by
        // node, as a store hands them over.
        let rows = |node: u64| -> Vec<(String, String)> {
            if node == 0 {
                (0..a.big)
                    .map(|i| (format!("u{i}@localhost"), subid(i)))
                    .collect()
            } else {
                let others = a.nodes - 1;
                (0..)
                    .map(|r| node - 1 + r * others)
                    .take_while(|j| *j < a.subs - a.big)
                    .map(|j| (format!("u{}@localhost", j % a.users), subid(a.big + j)))
                    .collect()
            }
        };
        for k in 0..a.nodes {
            let owned = rows(k);
            let mut it = owned.iter().map(|(jid, subid)| {
                Ok(SubRow {
                    jid,
                    subid,
                    state: SubscriptionState::Subscribed,
                    options: None,
                })
            });
            l.subscriptions(&node_name(k), &mut it)?;
        }
        Ok(())
    }
    fn commit(&mut self, _: &ChangeSet) -> Result<(), StoreError> {
        Ok(())
    }
    fn item(&self, _: u64, _: &str) -> Result<Option<Item>, StoreError> {
        Ok(None)
    }
    fn latest_items(&self, _: u64, _: Option<u64>) -> Result<Vec<Item>, StoreError> {
        Ok(Vec::new())
    }
    fn oldest_items(&self, _: u64, _: u64) -> Result<Vec<Item>, StoreError> {
        Ok(Vec::new())
    }
}

#[derive(Clone)]
struct Args {
    nodes: u64,
    subs: u64,
    big: u64,
    users: u64,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 100_000,
        subs: 1_000_000,
        big: 100_000,
        users: 100_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let v: u64 = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage());
        match flag.as_str() {
            "--nodes" => a.nodes = v.max(2),
            "--subs" => a.subs = v,
            "--big" => a.big = v,
            "--users" => a.users = v.max(1),
            _ => usage(),
        }
    }
    a.big = a.big.min(a.subs);
    a
}

fn usage() -> ! {
    eprintln!("usage: memory [--nodes N] [--subs N] [--big N] [--users N]");
    std::process::exit(2)
}

/// The subid populate.rs gives subscription `n`: 16 hex digits of a mixed counter.
fn subid(n: u64) -> String {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}

fn node_name(k: u64) -> String {
    if k == 0 {
        "scale-big".to_owned()
    } else {
        format!("scale-{k}")
    }
}

/// Bytes allocated once a service is opened on the data set (with or without the
/// subscriptions), the peak while opening, and the seconds opening took.
fn open(args: &Args, with_subs: bool) -> (usize, usize, f64) {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let t = Instant::now();
    let store = Synthetic {
        args: args.clone(),
        with_subs,
    };
    let svc = Service::open(store, Policy::default()).expect("open");
    let secs = t.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    drop(svc);
    (held, peak, secs)
}

fn main() {
    let a = args();
    let base = LIVE.load(Ordering::Relaxed);
    let (nodes_only, _, _) = open(&a, false);
    let (all, peak, secs) = open(&a, true);
    let nodes_only = nodes_only - base;
    let all = all - base;
    let per_sub = (all - nodes_only) as f64 / a.subs.max(1) as f64;
    println!(
        "{{\"nodes\":{},\"subs\":{},\"big\":{},\"users\":{},\"engine_bytes\":{},\
         \"engine_bytes_without_subs\":{},\"bytes_per_subscription\":{:.1},\
         \"engine_bytes_per_subscription\":{:.1},\"peak_bytes_while_opening\":{},\"open_s\":{:.2}}}",
        a.nodes,
        a.subs,
        a.big,
        a.users,
        all,
        nodes_only,
        per_sub,
        all as f64 / a.subs.max(1) as f64,
        peak - base,
        secs
    );
}
