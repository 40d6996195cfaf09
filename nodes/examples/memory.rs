//! Heap bytes the engine holds per subscription, counted exactly by a counting global
//! allocator (no RSS, no sampling: the same data gives the same count on any machine).
//!
//! The data set is the scale run's (`storage/examples/populate.rs`, `scripts/scale`):
//! `--nodes` nodes (default 100 000), each with its creator as owner; `--subs`
//! subscriptions (default 1 000 000), `--big` of them (default 100 000) on one node by
//! distinct JIDs and the rest spread round-robin over the other nodes by `--users` JIDs
//! (default 100 000), all bare, default options, 16-hex-digit subids.
//!
//! It opens a `Service` twice on an in-memory snapshot handed over whole (the store keeps
//! no copy): once with the nodes and affiliations only, once with the subscriptions too.
//! The difference, divided by the number of subscriptions, is what one subscription costs
//! (its entries in every map and index, and its share of the interned JIDs); the first
//! figure is what the nodes cost without any. Prints one JSON line.
//!
//! ```sh
//! cargo run --release -p roost-nodes --example memory
//! cargo run --release -p roost-nodes --example memory -- --nodes 1000 --subs 20000 --big 5000
//! ```

use roost_nodes::store::{Snapshot, StoreError};
use roost_nodes::{
    Affiliation, BareJid, ChangeSet, Item, ItemCounters, Jid, NodeConfig, NodeRecord, Policy,
    Service, Store, SubOptions, Subscription, SubscriptionState,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
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

/// A store that hands its snapshot over once and keeps nothing: what remains allocated
/// after `Service::open` is the engine's.
struct Handover(Option<Snapshot>);

impl Store for Handover {
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        Ok(self.0.take().unwrap_or_default())
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

fn snapshot(a: &Args, with_subs: bool) -> Snapshot {
    let mut s = Snapshot {
        last_uid: a.nodes,
        ..Snapshot::default()
    };
    for k in 0..a.nodes {
        let creator = BareJid::new(&format!("u{}@localhost", k % a.users)).expect("jid");
        let rec = NodeRecord {
            name: node_name(k),
            uid: k + 1,
            creator: creator.clone(),
            created: 0,
            config: NodeConfig::default(),
        };
        s.nodes.insert(node_name(k), (rec, ItemCounters::default()));
        s.affiliations.insert(
            node_name(k),
            BTreeMap::from([(creator, Affiliation::Owner)]),
        );
    }
    if !with_subs {
        return s;
    }
    let mut put = |node: u64, jid: String, n: u64| {
        let sub = Subscription {
            jid: Jid::new(&jid).expect("jid"),
            subid: subid(n),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        };
        s.subscriptions
            .entry(node_name(node))
            .or_default()
            .insert(sub.subid.clone(), sub);
    };
    for i in 0..a.big {
        put(0, format!("u{i}@localhost"), i);
    }
    for j in 0..a.subs - a.big {
        let node = 1 + j % (a.nodes - 1);
        put(node, format!("u{}@localhost", j % a.users), a.big + j);
    }
    s
}

/// Bytes allocated once a service is opened on `snap` (which it consumes), the peak while
/// opening (snapshot included), and the seconds opening took.
fn open(snap: Snapshot) -> (usize, usize, f64) {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let t = Instant::now();
    let svc = Service::open(Handover(Some(snap)), Policy::default()).expect("open");
    let secs = t.elapsed().as_secs_f64();
    let held = LIVE.load(Ordering::Relaxed);
    let peak = PEAK.load(Ordering::Relaxed);
    drop(svc);
    (held, peak, secs)
}

fn main() {
    let a = args();
    let base = LIVE.load(Ordering::Relaxed);
    let (nodes_only, _, _) = open(snapshot(&a, false));
    let (all, peak, secs) = open(snapshot(&a, true));
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
