//! Writes a large, synthetic Roost data set into a data directory, for the scale run
//! (`scripts/scale`).
//!
//! It drives the engine itself (`roost_nodes::Service` over the sled store) with the
//! requests a real deployment would have received: `create` (with `pubsub#max_items`),
//! `subscribe` and `publish`, so the result is what Roost writes for them, through the
//! same planning and the same store code; only the syncs are batched (one flush per
//! [`SYNC_EVERY`] requests instead of one per request) since nothing waits for an answer.
//! `--schema 1` writes through the frozen version-1 store instead, for measuring a
//! migration (`roost_storage::v1`).
//!
//! The data set (all JIDs on `localhost`):
//! - node `scale-big` (uid 1), created by `publisher@localhost`, with `--big-subs`
//!   subscribers: `afirst@localhost` and `zlast@localhost` (real accounts the scale run logs
//!   in as: they sort first and last among the node's subscribers, so they see the first and
//!   the last notification of a publish) and `u0@localhost`, `u1@localhost`, … for the rest;
//! - nodes `scale-1` … `scale-{N-1}` (uid k+1), created by `u{k}@localhost`;
//! - the remaining subscriptions spread round-robin over those nodes, subscription `j` by
//!   `u{j mod 100000}@localhost`;
//! - `--items` items spread evenly over all nodes, each with a `--payload`-byte payload and a
//!   16-hex-digit id, published by the node's creator; every node's `pubsub#max_items` is its
//!   item count, so nothing is over the limit.
//!
//! ```sh
//! cargo run --release -p roost-storage --example populate -- \
//!     --dir .roost/scale/data --nodes 100000 --subs 1000000 --items 10000000
//! ```
//!
//! Prints progress to stderr and one JSON line to stdout when done.

use roost_nodes::{Jid, MaxItems, NewItem, NodeConfigPatch, Policy, Request, Service, Store};
use roost_storage::{v1::V1Store, SledStore};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Requests between two syncs (flushes): large enough that flushing costs nothing.
const SYNC_EVERY: u64 = 20_000;

/// Users the ordinary subscriptions are spread over.
const USERS: u64 = 100_000;

struct Args {
    dir: PathBuf,
    nodes: u64,
    subs: u64,
    items: u64,
    payload: usize,
    big_subs: u64,
    schema: u32,
}

fn usage() -> ! {
    eprintln!(
        "usage: populate --dir DIR [--nodes N] [--subs N] [--items N] [--payload BYTES] \
         [--big-subs N] [--schema 1|2]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: PathBuf::new(),
        nodes: 100_000,
        subs: 1_000_000,
        items: 10_000_000,
        payload: 200,
        big_subs: 100_000,
        schema: roost_storage::keys::SCHEMA_VERSION,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().unwrap_or_else(|| usage());
        let num = || val.parse::<u64>().unwrap_or_else(|_| usage());
        match flag.as_str() {
            "--dir" => a.dir = PathBuf::from(&val),
            "--nodes" => a.nodes = num(),
            "--subs" => a.subs = num(),
            "--items" => a.items = num(),
            "--payload" => a.payload = num() as usize,
            "--big-subs" => a.big_subs = num(),
            "--schema" => a.schema = num() as u32,
            _ => usage(),
        }
    }
    if a.dir.as_os_str().is_empty()
        || a.nodes < 2
        || a.big_subs < 2
        || a.big_subs > a.subs
        || !(1..=roost_storage::keys::SCHEMA_VERSION).contains(&a.schema)
    {
        usage();
    }
    a
}

/// splitmix64: the same finaliser the engine uses for its generated ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hex_id(z: u64) -> String {
    format!("{:016x}", mix(z))
}

fn node_name(k: u64) -> String {
    if k == 0 {
        "scale-big".to_owned()
    } else {
        format!("scale-{k}")
    }
}

fn creator(k: u64) -> Jid {
    let s = if k == 0 {
        "publisher@localhost".to_owned()
    } else {
        format!("u{k}@localhost")
    };
    Jid::new(&s).expect("valid JID")
}

/// Items of node `k`: an even share, the remainder to the first nodes.
fn items_of(a: &Args, k: u64) -> u64 {
    a.items / a.nodes + u64::from(k < a.items % a.nodes)
}

/// Progress on stderr at most every two seconds.
struct Progress {
    what: &'static str,
    total: u64,
    done: AtomicU64,
    start: Instant,
    last: std::sync::Mutex<Instant>,
}

impl Progress {
    fn new(what: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Progress {
            what,
            total,
            done: AtomicU64::new(0),
            start: now,
            last: std::sync::Mutex::new(now),
        }
    }

    fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let mut last = self.last.lock().expect("progress lock");
        if last.elapsed() >= Duration::from_secs(2) || done == self.total {
            *last = Instant::now();
            let secs = self.start.elapsed().as_secs_f64();
            let rate = done as f64 / secs.max(1e-9);
            let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1e-9);
            eprintln!(
                "populate: {}: {done}/{} ({:.1} %), {rate:.0}/s, {secs:.0} s elapsed, ~{eta:.0} s left",
                self.what,
                self.total,
                100.0 * done as f64 / self.total.max(1) as f64,
            );
        }
    }
}

fn main() {
    // Migration progress and other store messages go through tracing.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let a = parse_args();
    std::fs::create_dir_all(&a.dir).expect("create data dir");
    let (keys, secs) = if a.schema == 1 {
        let store = V1Store::open(&a.dir).expect("open store");
        let started = Instant::now();
        run(&a, store);
        let keys = V1Store::open(&a.dir).expect("reopen").raw_tree().len();
        (keys, started.elapsed().as_secs_f64())
    } else {
        let store = SledStore::open(&a.dir).expect("open store");
        let started = Instant::now();
        run(&a, store);
        let keys = SledStore::open(&a.dir).expect("reopen").raw_tree().len();
        (keys, started.elapsed().as_secs_f64())
    };
    println!(
        "{{\"populate_s\":{secs:.1},\"nodes\":{},\"subs\":{},\"items\":{},\"payload\":{},\"big_subs\":{},\"schema\":{},\"keys\":{keys}}}",
        a.nodes, a.subs, a.items, a.payload, a.big_subs, a.schema
    );
}

/// Handles one request, syncing every [`SYNC_EVERY`].
struct Driver<S: Store> {
    svc: Service<S>,
    now: u64,
    since_sync: u64,
}

impl<S: Store> Driver<S> {
    fn handle(&mut self, actor: &Jid, req: Request) {
        self.now += 1;
        if let Err(e) = self.svc.handle(actor, req, self.now) {
            panic!("populate: request refused: {e:?}");
        }
        self.since_sync += 1;
        if self.since_sync >= SYNC_EVERY {
            self.sync();
        }
    }

    fn sync(&mut self) {
        self.svc.store_mut().sync().expect("sync");
        self.since_sync = 0;
    }
}

fn run<S: Store>(a: &Args, store: S) {
    let mut probe = store;
    if !probe.load().expect("load").nodes.is_empty() {
        eprintln!(
            "populate: {} already holds data; give an empty directory",
            a.dir.display()
        );
        std::process::exit(1);
    }
    let policy = Policy {
        max_subscriptions_per_jid: u64::MAX,
        max_nodes_per_jid: u64::MAX,
        max_items_per_node: u64::MAX,
        ..Policy::default()
    };
    let svc = Service::open(probe, policy).expect("open service");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let mut d = Driver {
        svc,
        now,
        since_sync: 0,
    };

    let p = Progress::new("nodes", a.nodes);
    for k in 0..a.nodes {
        let config = NodeConfigPatch {
            max_items: Some(MaxItems::Count(items_of(a, k).max(1))),
            ..NodeConfigPatch::default()
        };
        d.handle(
            &creator(k),
            Request::Create {
                node: Some(node_name(k)),
                config: Some(config),
            },
        );
        p.add(1);
    }

    // Subscriptions: the big node's first, then the rest round-robin over the other nodes.
    let p = Progress::new("subscriptions", a.subs);
    let subscribe = |d: &mut Driver<S>, node: u64, jid: String| {
        let jid = Jid::new(&jid).expect("valid JID");
        d.handle(
            &jid,
            Request::Subscribe {
                node: node_name(node),
                jid: jid.clone(),
                options: None,
            },
        );
        p.add(1);
    };
    for i in 0..a.big_subs {
        let jid = match i {
            0 => "afirst@localhost".to_owned(),
            1 => "zlast@localhost".to_owned(),
            _ => format!("u{}@localhost", i - 2),
        };
        subscribe(&mut d, 0, jid);
    }
    for j in 0..a.subs - a.big_subs {
        let node = 1 + j % (a.nodes - 1);
        subscribe(&mut d, node, format!("u{}@localhost", j % USERS));
    }

    // Items, node by node.
    let p = Progress::new("items", a.items);
    let payload = {
        let head = "<entry xmlns='urn:roost:scale'>";
        let tail = "</entry>";
        let body = a.payload.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "x".repeat(body))
    };
    for k in 0..a.nodes {
        let uid = k + 1;
        let publisher = Jid::new(&format!("{}/populate", creator(k))).expect("jid");
        for seq in 1..=items_of(a, k) {
            d.handle(
                &publisher,
                Request::Publish {
                    node: node_name(k),
                    item: Some(NewItem {
                        id: Some(hex_id((uid << 32) | seq)),
                        payload: Some(payload.clone()),
                    }),
                    options: None,
                },
            );
            p.add(1);
        }
    }
    eprintln!("populate: flushing");
    d.sync();
}
