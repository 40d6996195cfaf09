//! Durable throughput of the sled store, through the engine as Roost uses it, on the
//! current layout (schema 2) and on the frozen version-1 store side by side.
//!
//! - `publish/{v1,v2}`: one publish to a node already holding its `max_items` (1 000), so
//!   every publish also trims one; committed without sync: the CPU cost of the store's
//!   part of a publish. Before measuring, the sled operations of 1 000 such publishes are
//!   counted and printed (`sled ops per publish`).
//! - `group_commit/{v1,v2}/N`: N publishes committed, then one sync (flush to disk), as the
//!   component does for a batch of buffered stanzas. N = 1 is the worst case (one flush
//!   per publish), larger N shows what group commit buys.
//! - `subscribe_unsubscribe/S`: subscribe then unsubscribe one JID on a node that already
//!   holds S subscriptions (S up to 1 000 000), committed without sync, so the number shows
//!   whether the cost depends on S. The S subscriptions are written in large batches of the
//!   same `PutSubscription` changes a subscribe plans, then the service is opened on them.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roost_nodes::{
    Change, ChangeSet, Jid, MaxItems, NewItem, NodeConfigPatch, Policy, Request, Service, Store,
    SubOptions, Subscription, SubscriptionState,
};
use roost_storage::{ops::OpCounts, v1::V1Store, SledStore};

const KEEP: u64 = 1000;

trait Counted: Store {
    fn counts(&self) -> &OpCounts;
}
impl Counted for SledStore {
    fn counts(&self) -> &OpCounts {
        self.ops()
    }
}
impl Counted for V1Store {
    fn counts(&self) -> &OpCounts {
        self.ops()
    }
}

struct Node<S: Store> {
    svc: Service<S>,
    owner: Jid,
    now: u64,
    payload: String,
}

impl<S: Counted> Node<S> {
    /// A node with `max_items` = [`KEEP`], already full.
    fn new(store: S) -> Self {
        let mut svc = Service::open(store, Policy::default()).expect("open service");
        let owner = Jid::new("owner@localhost/bench").expect("jid");
        svc.handle(
            &owner,
            Request::Create {
                node: Some("bench".into()),
                config: Some(NodeConfigPatch {
                    max_items: Some(MaxItems::Count(KEEP)),
                    ..Default::default()
                }),
            },
            0,
        )
        .expect("create");
        let mut n = Node {
            svc,
            owner,
            now: 1,
            payload: format!("<entry xmlns='urn:roost:bench'>{}</entry>", "x".repeat(170)),
        };
        for _ in 0..KEEP {
            n.publish();
        }
        n.svc.store_mut().sync().expect("sync");
        n
    }

    fn publish(&mut self) {
        self.now += 1;
        self.svc
            .handle(
                &self.owner,
                Request::Publish {
                    node: "bench".into(),
                    item: Some(NewItem {
                        id: None,
                        payload: Some(self.payload.clone()),
                    }),
                    options: None,
                },
                self.now,
            )
            .expect("publish");
    }

    /// Sled reads and writes per publish, over `n` publishes (the engine's reads included).
    fn ops_per_publish(&mut self, n: u64) -> (f64, f64) {
        let (r0, w0) = self.svc.store().counts().get();
        for _ in 0..n {
            self.publish();
        }
        let (r1, w1) = self.svc.store().counts().get();
        ((r1 - r0) as f64 / n as f64, (w1 - w0) as f64 / n as f64)
    }
}

fn publish(c: &mut Criterion) {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut v1 = Node::new(V1Store::open(d1.path()).expect("open v1"));
    let mut v2 = Node::new(SledStore::open(d2.path()).expect("open v2"));
    for (name, (r, w)) in [
        ("v1", v1.ops_per_publish(1000)),
        ("v2", v2.ops_per_publish(1000)),
    ] {
        eprintln!(
            "sled ops per publish ({name}, node full at {KEEP}): {r:.2} reads, {w:.2} writes"
        );
    }
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.bench_function("v1", |b| b.iter(|| v1.publish()));
    g.bench_function("v2", |b| b.iter(|| v2.publish()));
    g.finish();

    let mut g = c.benchmark_group("group_commit");
    for n in [1u64, 16, 256] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::new("v1", n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    v1.publish();
                }
                v1.svc.store_mut().sync().expect("sync");
            })
        });
        g.bench_with_input(BenchmarkId::new("v2", n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    v2.publish();
                }
                v2.svc.store_mut().sync().expect("sync");
            })
        });
    }
    g.finish();
}

fn subscribe_unsubscribe(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscribe_unsubscribe");
    g.throughput(Throughput::Elements(2));
    for size in [1_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut svc = Service::open(
                SledStore::open(dir.path()).expect("open sled"),
                Policy::default(),
            )
            .expect("open service");
            let owner = Jid::new("owner@localhost/bench").expect("jid");
            let create = Request::Create {
                node: Some("bench".into()),
                config: None,
            };
            svc.handle(&owner, create, 0).expect("create");
            svc.store_mut().sync().expect("sync");
        }
        let store = SledStore::open(dir.path()).expect("open sled");
        let mut batch = ChangeSet::default();
        for i in 0..size {
            batch.push(Change::PutSubscription {
                node: "bench".into(),
                sub: Subscription {
                    jid: Jid::new(&format!("user{i}@localhost")).expect("jid"),
                    subid: format!("{i:016x}"),
                    state: SubscriptionState::Subscribed,
                    options: SubOptions::default(),
                },
            });
            if batch.0.len() == 20_000 || i + 1 == size {
                store.commit_no_flush(&batch).expect("commit");
                batch.0.clear();
            }
        }
        store.flush().expect("flush");
        drop(store);
        let mut svc = Service::open(
            SledStore::open(dir.path()).expect("open sled"),
            Policy {
                // The default caps a node at 1 000 000 subscriptions; the probe is one more.
                max_subscriptions_per_node: u64::MAX,
                ..Policy::default()
            },
        )
        .expect("open service");
        let probe = Jid::new("probe@localhost").expect("jid");
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let sub = Request::Subscribe {
                    node: "bench".into(),
                    jid: probe.clone(),
                    options: None,
                };
                svc.handle(&probe, sub, 0).expect("subscribe");
                let unsub = Request::Unsubscribe {
                    node: "bench".into(),
                    jid: probe.clone(),
                    subid: None,
                };
                svc.handle(&probe, unsub, 0).expect("unsubscribe");
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = publish, subscribe_unsubscribe
}
criterion_main!(benches);
