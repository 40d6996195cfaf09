//! Durable throughput of the sled store, through the engine as Roost uses it.
//!
//! - `group_commit/N`: N publishes committed, then one sync (flush to disk), as the component
//!   does for a batch of buffered stanzas. Throughput is publishes/s; N = 1 is the worst
//!   case (one flush per publish), larger N shows what group commit buys.
//! - `subscribe_unsubscribe/S`: subscribe then unsubscribe one JID on a node that already
//!   holds S subscriptions (S up to 1 000 000), committed without sync, so the number shows
//!   whether the cost depends on S (the flush cost is `group_commit`'s). The S subscriptions
//!   are written in large batches of the same `PutSubscription` changes a subscribe plans
//!   (as `examples/populate.rs` does), then the service is opened on them: subscribing a
//!   million JIDs one request at a time would take minutes of set-up.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roost_nodes::{
    Change, ChangeSet, Jid, NewItem, Policy, Request, Service, Store, SubOptions, Subscription,
    SubscriptionState,
};
use roost_storage::SledStore;

fn open(dir: &tempfile::TempDir) -> (Service<SledStore>, Jid) {
    let store = SledStore::open(dir.path()).expect("open sled");
    let mut svc = Service::open(store, Policy::default()).expect("open service");
    let owner = Jid::new("owner@localhost/bench").expect("jid");
    svc.handle(
        &owner,
        Request::Create {
            node: Some("bench".into()),
            config: None,
        },
        0,
    )
    .expect("create");
    svc.store_mut().sync().expect("sync");
    (svc, owner)
}

fn group_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut svc, owner) = open(&dir);
    let payload = format!("<entry xmlns='urn:roost:bench'>{}</entry>", "x".repeat(200));
    let mut g = c.benchmark_group("group_commit");
    let mut now = 1;
    for n in [1u64, 16, 256] {
        g.throughput(Throughput::Elements(n));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| {
                for _ in 0..n {
                    now += 1;
                    svc.handle(
                        &owner,
                        Request::Publish {
                            node: "bench".into(),
                            item: Some(NewItem {
                                id: None,
                                payload: Some(payload.clone()),
                            }),
                            options: None,
                        },
                        now,
                    )
                    .expect("publish");
                }
                svc.store_mut().sync().expect("sync");
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
        drop(open(&dir));
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
        // The default policy caps a node at 1 000 000 subscriptions; the probe is one more.
        let policy = Policy {
            max_subscriptions_per_node: u64::MAX,
            ..Policy::default()
        };
        let mut svc = Service::open(store, policy).expect("open service");
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
    targets = group_commit, subscribe_unsubscribe
}
criterion_main!(benches);
