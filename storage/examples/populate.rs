//! Writes a large, synthetic Roost data set into a sled data directory, for the scale run
//! (`scripts/scale`).
//!
//! It writes through [`SledStore::commit_no_flush`] with the very [`Change`]s the engine
//! plans for `create`, `subscribe` and `publish` (node record, counters, owner affiliation;
//! subscription with default options and a 16-hex-digit subid; items with a 16-hex-digit
//! id, seq 1, 2, … and the counters), so the result is byte for byte what Roost would have
//! written for the same requests; only many requests share one (large) batch, and nothing
//! waits for the disk until the end. It lives here rather than in the `roost` binary
//! because it needs nothing but the store, and an operator tool that bypasses the engine's
//! checks has no place in the shipped binary.
//!
//! The data set (all JIDs on `localhost`):
//! - node `scale-big` (uid 1), created by `publisher@localhost`, with `--big-subs`
//!   subscribers: `afirst@localhost` and `zlast@localhost` (real accounts the scale run logs
//!   in as: they sort first and last among the node's subscribers, so they see the first and
//!   the last notification of a publish) and `u0@localhost`, `u1@localhost`, … for the rest;
//! - nodes `scale-1` … `scale-{N-1}` (uid k+1), created by `u{k}@localhost`;
//! - the remaining subscriptions spread round-robin over those nodes, subscription `j` by
//!   `u{j mod 100000}@localhost`;
//! - `--items` items spread evenly over all nodes, each with a `--payload`-byte payload,
//!   published by the node's creator; every node's `pubsub#max_items` is its item count, so
//!   nothing is over the limit.
//!
//! ```sh
//! cargo run --release -p roost-storage --example populate -- \
//!     --dir .roost/scale/data --nodes 100000 --subs 1000000 --items 10000000
//! ```
//!
//! Prints progress to stderr and one JSON line to stdout when done.

use roost_nodes::{
    Affiliation, BareJid, Change, ChangeSet, Item, ItemCounters, Jid, MaxItems, NodeConfig,
    NodeRecord, SubOptions, Subscription, SubscriptionState,
};
use roost_storage::SledStore;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many changes go into one batch: large enough that per-batch costs vanish, small
/// enough that the batch's sorted map stays a few MB.
const BATCH: usize = 20_000;

/// Users the ordinary subscriptions are spread over.
const USERS: u64 = 100_000;

struct Args {
    dir: PathBuf,
    nodes: u64,
    subs: u64,
    items: u64,
    payload: usize,
    big_subs: u64,
    threads: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: populate --dir DIR [--nodes N] [--subs N] [--items N] [--payload BYTES] \
         [--big-subs N] [--threads N]"
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
        threads: 2,
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
            "--threads" => a.threads = num().max(1) as usize,
            _ => usage(),
        }
    }
    if a.dir.as_os_str().is_empty() || a.nodes < 2 || a.big_subs < 2 || a.big_subs > a.subs {
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

fn bare(s: &str) -> BareJid {
    BareJid::new(s).expect("valid JID")
}

fn node_name(k: u64) -> String {
    if k == 0 {
        "scale-big".to_owned()
    } else {
        format!("scale-{k}")
    }
}

fn creator(k: u64) -> BareJid {
    if k == 0 {
        bare("publisher@localhost")
    } else {
        bare(&format!("u{k}@localhost"))
    }
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

fn commit(store: &SledStore, cs: &mut ChangeSet) {
    store.commit_no_flush(cs).expect("commit");
    cs.0.clear();
}

fn main() {
    let a = parse_args();
    let started = Instant::now();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    std::fs::create_dir_all(&a.dir).expect("create data dir");
    let store = SledStore::open(&a.dir).expect("open store");
    if store.raw_tree().len() > 1 {
        eprintln!(
            "populate: {} already holds data; give an empty directory",
            a.dir.display()
        );
        std::process::exit(1);
    }

    // Nodes (create: record, counters, owner affiliation), single-threaded because every
    // PutNode reads and raises `last_uid`.
    let p = Progress::new("nodes", a.nodes);
    let mut cs = ChangeSet::default();
    for k in 0..a.nodes {
        let per_node = items_of(&a, k).max(1);
        let config = NodeConfig {
            max_items: MaxItems::Count(per_node),
            ..NodeConfig::default()
        };
        let uid = k + 1;
        cs.push(Change::PutNode(NodeRecord {
            name: node_name(k),
            uid,
            creator: creator(k),
            created: now,
            config,
        }));
        cs.push(Change::PutCounters {
            uid,
            counters: ItemCounters::default(),
        });
        cs.push(Change::PutAffiliation {
            node: node_name(k),
            jid: creator(k),
            affiliation: Affiliation::Owner,
        });
        if cs.0.len() >= BATCH {
            p.add(cs.0.len() as u64 / 3);
            commit(&store, &mut cs);
        }
    }
    p.add(cs.0.len() as u64 / 3);
    commit(&store, &mut cs);

    // Subscriptions: the big node's first, then the rest round-robin over the other nodes.
    let p = Progress::new("subscriptions", a.subs);
    let sub = |node: u64, jid: String, n: u64| Change::PutSubscription {
        node: node_name(node),
        sub: Subscription {
            jid: Jid::new(&jid).expect("valid JID"),
            subid: hex_id(n),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        },
    };
    for i in 0..a.big_subs {
        let jid = match i {
            0 => "afirst@localhost".to_owned(),
            1 => "zlast@localhost".to_owned(),
            _ => format!("u{}@localhost", i - 2),
        };
        cs.push(sub(0, jid, i));
        if cs.0.len() >= BATCH {
            p.add(cs.0.len() as u64);
            commit(&store, &mut cs);
        }
    }
    for j in 0..a.subs - a.big_subs {
        let node = 1 + j % (a.nodes - 1);
        cs.push(sub(
            node,
            format!("u{}@localhost", j % USERS),
            a.big_subs + j,
        ));
        if cs.0.len() >= BATCH {
            p.add(cs.0.len() as u64);
            commit(&store, &mut cs);
        }
    }
    p.add(cs.0.len() as u64);
    commit(&store, &mut cs);

    // Items (publish: the item and the counters), in parallel: nodes share no key here.
    let p = Progress::new("items", a.items);
    let filler = {
        let head = "<entry xmlns='urn:roost:scale'>";
        let tail = "</entry>";
        let body = a.payload.saturating_sub(head.len() + tail.len());
        format!("{head}{}{tail}", "x".repeat(body))
    };
    std::thread::scope(|s| {
        for t in 0..a.threads {
            let (a, store, p, filler) = (&a, &store, &p, &filler);
            s.spawn(move || {
                let mut cs = ChangeSet::default();
                let mut k = t as u64;
                let mut pending = 0u64;
                while k < a.nodes {
                    let uid = k + 1;
                    let n = items_of(a, k);
                    let publisher = Jid::new(&format!("{}/populate", creator(k))).expect("jid");
                    for seq in 1..=n {
                        cs.push(Change::PutItem {
                            uid,
                            item: Item {
                                id: hex_id((uid << 32) | seq),
                                seq,
                                publisher: publisher.clone(),
                                published: now,
                                payload: filler.clone(),
                            },
                        });
                    }
                    cs.push(Change::PutCounters {
                        uid,
                        counters: ItemCounters {
                            count: n,
                            last_seq: n,
                        },
                    });
                    pending += n;
                    if cs.0.len() >= BATCH {
                        commit(store, &mut cs);
                        p.add(pending);
                        pending = 0;
                    }
                    k += a.threads as u64;
                }
                commit(store, &mut cs);
                p.add(pending);
            });
        }
    });

    eprintln!("populate: flushing");
    store.flush().expect("flush");
    let keys = store.raw_tree().len();
    drop(store);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"populate_s\":{secs:.1},\"nodes\":{},\"subs\":{},\"items\":{},\"payload\":{},\"big_subs\":{},\"keys\":{keys}}}",
        a.nodes, a.subs, a.items, a.payload, a.big_subs
    );
}
