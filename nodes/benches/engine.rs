//! Engine decisions per second, in memory: no I/O, no XML, no store latency.
//!
//! `publish_fanout_100`: one publish to a node with 100 subscribers on `MemStore`; the
//! throughput counts notifications computed (100 per publish), so it is comparable with
//! the notifications/s of `roost-load fanout` and shows how much of that the engine uses.
//!
//! `publish_fanout_100k`: the same on a node with 100 000 subscribers (the scale run's node),
//! every notification built (`Service::handle`): the whole walk.
//!
//! `publish_first_notification_100k`: the same publish streamed (`Service::handle_streamed`)
//! and the first notification walked: what the component waits for before it can render
//! and write the first chunk. `publish_walk_100k`: the streamed publish walked to the end in
//! chunks of 64, as the component walks it (`WALK_CHUNK`).
//!
//! `publish_walk_100k_filtered`: a streamed publish walked in chunks of 64 on a node with
//! 100 000 subscriptions that all have a content filter (`filter.rs`'s: a host out of
//! 1 000 and a set of levels), each item a log line of a random host and level (about 54
//! subscriptions match it): the item reaches them through the node's filter index.
//! `publish_walk_100k_plus_1_filtered`: `publish_walk_100k`'s node with one filtered
//! subscription more, which the item does not match: what one filter costs a big node.
//! Where `publish_walk_100k_filtered`'s time goes, split in one run:
//! `publish_walk_unmatched_100k_filtered` is the same node with items of hosts no filter
//! names (the index finds nothing: publish and lookup, no notification), and
//! `publish_walk_no_subscribers` the same items on a node without subscriptions (the
//! publish alone: the item stored, the fan-out made and walked empty).
//!
//! `subscribe_unsubscribe/S`: subscribe then unsubscribe one JID on a node that already holds
//! S subscriptions (up to 1 000 000), in memory: whether the engine's cost depends on S. The
//! S subscriptions are committed to the store as the same `PutSubscription` changes a
//! subscribe plans, in one change set, and the service opened on them (a million requests
//! one by one would make the set-up the slow part).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use roost_nodes::filter::Filter;
use roost_nodes::{
    Change, ChangeSet, Dispatch, Fanout, Jid, MemStore, NewItem, Policy, Request, Service, Store,
    SubOptions, Subscription, SubscriptionState,
};

const SUBSCRIBERS: usize = 100;

fn service_with_subscribers(n: usize) -> (Service<MemStore>, Jid) {
    let mut svc = Service::open(MemStore::new(), Policy::default()).expect("open");
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
    for i in 0..n {
        let jid = Jid::new(&format!("user{i}@localhost")).expect("jid");
        svc.handle(
            &jid,
            Request::Subscribe {
                node: "bench".into(),
                jid: jid.clone(),
                options: None,
            },
            0,
        )
        .expect("subscribe");
    }
    (svc, owner)
}

fn publish_fanout(c: &mut Criterion) {
    let (mut svc, owner) = service_with_subscribers(SUBSCRIBERS);
    let payload = format!("<entry xmlns='urn:roost:bench'>{}</entry>", "x".repeat(200));
    let publish = |svc: &mut Service<MemStore>, now: u64| {
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
        .expect("publish")
    };
    // A bench that measures nothing would be worse than none: check the fan-out happens.
    assert_eq!(publish(&mut svc, 1).notifications.len(), SUBSCRIBERS);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(SUBSCRIBERS as u64));
    let mut now = 2;
    g.bench_function("publish_fanout_100", |b| {
        b.iter(|| {
            now += 1;
            publish(&mut svc, now)
        })
    });
    g.finish();
}

fn subscribe_unsubscribe(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine_subscribe_unsubscribe");
    g.throughput(Throughput::Elements(2));
    for size in [1_000usize, 100_000, 1_000_000] {
        let (mut svc, _owner) = service_with_subscribers(0);
        let mut store = std::mem::take(svc.store_mut());
        let mut load = ChangeSet::default();
        for i in 0..size {
            load.push(Change::PutSubscription {
                node: "bench".into(),
                sub: Subscription {
                    jid: Jid::new(&format!("user{i}@localhost")).expect("jid"),
                    subid: format!("{i:016x}"),
                    state: SubscriptionState::Subscribed,
                    options: SubOptions::default(),
                },
            });
        }
        store.commit(&load).expect("commit");
        drop(load);
        // The default policy caps a node at 1 000 000 subscriptions; the probe is one more.
        let policy = Policy {
            max_subscriptions_per_node: u64::MAX,
            ..Policy::default()
        };
        let mut svc = Service::open(store, policy).expect("open");
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

fn publish_fanout_100k(c: &mut Criterion) {
    const N: usize = 100_000;
    let (mut svc, owner) = service_with_subscribers(0);
    let mut store = std::mem::take(svc.store_mut());
    let mut load = ChangeSet::default();
    for i in 0..N {
        load.push(Change::PutSubscription {
            node: "bench".into(),
            sub: Subscription {
                jid: Jid::new(&format!("user{i}@localhost")).expect("jid"),
                subid: format!("{i:016x}"),
                state: SubscriptionState::Subscribed,
                options: SubOptions::default(),
            },
        });
    }
    store.commit(&load).expect("commit");
    let mut svc = Service::open(store, Policy::default()).expect("open");
    let payload = format!("<entry xmlns='urn:roost:bench'>{}</entry>", "x".repeat(200));
    let request = || Request::Publish {
        node: "bench".into(),
        item: Some(NewItem {
            id: None,
            payload: Some(payload.clone()),
        }),
        options: None,
    };
    let fanout = |svc: &mut Service<MemStore>, now: u64| -> Fanout {
        let out = svc
            .handle_streamed(&owner, request(), now)
            .expect("publish");
        match out.dispatches.into_iter().next() {
            Some(Dispatch::Fanout(f)) => f,
            _ => panic!("a publish is one fan-out"),
        }
    };
    let publish = |svc: &mut Service<MemStore>, now: u64| {
        svc.handle(&owner, request(), now).expect("publish")
    };
    assert_eq!(publish(&mut svc, 1).notifications.len(), N);
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    let mut now = 2;
    g.bench_function("publish_fanout_100k", |b| {
        b.iter(|| {
            now += 1;
            publish(&mut svc, now)
        })
    });
    g.bench_function("publish_walk_100k", |b| {
        b.iter(|| {
            now += 1;
            let f = fanout(&mut svc, now);
            let mut out = Vec::with_capacity(64);
            let mut walked = 0;
            loop {
                out.clear();
                let done = svc.walk(&f, 64, &mut out);
                walked += out.len();
                if done {
                    break;
                }
            }
            assert_eq!(walked, N);
            walked
        })
    });
    g.throughput(Throughput::Elements(1));
    g.sample_size(50);
    g.bench_function("publish_first_notification_100k", |b| {
        b.iter(|| {
            now += 1;
            let f = fanout(&mut svc, now);
            let mut out = Vec::with_capacity(1);
            svc.walk(&f, 1, &mut out);
            assert_eq!(out.len(), 1);
            out
        })
    });
    g.finish();
}

/// A log item of `roost-log-ship --attr host=… --attr level=…`.
fn log_payload(host: u64, level: &str) -> String {
    let lines: String = (0..4)
        .map(|j| {
            format!("<line>2026-12-04T20:00:{j:02}Z {level} request served by worker {j}</line>")
        })
        .collect();
    format!("<lines xmlns='urn:roost:log:0' first='1' host='host-{host:03}' level='{level}'>{lines}</lines>")
}

/// A service whose node "bench" holds `plain` unfiltered subscriptions and `filtered`
/// ones with `filter.rs`'s filters (`@host = 'host-042' and (@level = …)`).
fn service_with_filters(plain: usize, filtered: usize) -> (Service<MemStore>, Jid) {
    let (mut svc, owner) = service_with_subscribers(0);
    let mut store = std::mem::take(svc.store_mut());
    let mut load = ChangeSet::default();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for i in 0..plain + filtered {
        let mut options = SubOptions::default();
        if i >= plain {
            let levels = 1 + next() % 15;
            let set: Vec<String> = (0..4)
                .filter(|b| levels & (1 << b) != 0)
                .map(|b| format!("@level = '{}'", LEVELS[b]))
                .collect();
            let text = format!(
                "@host = 'host-{:03}' and ({})",
                next() % 1_000,
                set.join(" or ")
            );
            options.filter = Some(Filter::parse(&text).expect("filter").to_string());
        }
        load.push(Change::PutSubscription {
            node: "bench".into(),
            sub: Subscription {
                jid: Jid::new(&format!("user{i}@localhost")).expect("jid"),
                subid: format!("{i:016x}"),
                state: SubscriptionState::Subscribed,
                options,
            },
        });
    }
    store.commit(&load).expect("commit");
    (
        Service::open(store, Policy::default()).expect("open"),
        owner,
    )
}

const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// Publish one log item after another and walk each fan-out in chunks of 64; returns how
/// many notifications the walks gave, over `rounds` items.
/// The items' hosts are `host-000`..`host-999` plus `hosts_from` (1 000: hosts no filter
/// names).
fn publish_walk_logs(
    svc: &mut Service<MemStore>,
    owner: &Jid,
    now: &mut u64,
    rounds: u64,
    hosts_from: u64,
) -> usize {
    let mut walked = 0;
    for _ in 0..rounds {
        *now += 1;
        let payload = log_payload(
            hosts_from + *now * 7919 % 1_000,
            LEVELS[(*now % 4) as usize],
        );
        let req = Request::Publish {
            node: "bench".into(),
            item: Some(NewItem {
                id: None,
                payload: Some(payload),
            }),
            options: None,
        };
        let out = svc.handle_streamed(owner, req, *now).expect("publish");
        let Some(Dispatch::Fanout(f)) = out.dispatches.into_iter().next() else {
            panic!("a publish is one fan-out");
        };
        let mut out = Vec::with_capacity(64);
        loop {
            out.clear();
            let done = svc.walk(&f, 64, &mut out);
            walked += out.len();
            if done {
                break;
            }
        }
    }
    walked
}

fn publish_walk_filtered(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    let mut now = 1;
    {
        let (mut svc, owner) = service_with_filters(0, 100_000);
        // Check the walk finds the matches: about 54 an item on average.
        let n = publish_walk_logs(&mut svc, &owner, &mut now, 100, 0);
        assert!(
            (2_000..10_000).contains(&n),
            "{n} notifications for 100 items"
        );
        g.throughput(Throughput::Elements(1));
        g.bench_function("publish_walk_100k_filtered", |b| {
            b.iter(|| publish_walk_logs(&mut svc, &owner, &mut now, 1, 0))
        });
        // The same node, items no filter matches.
        assert_eq!(publish_walk_logs(&mut svc, &owner, &mut now, 100, 1_000), 0);
        g.bench_function("publish_walk_unmatched_100k_filtered", |b| {
            b.iter(|| publish_walk_logs(&mut svc, &owner, &mut now, 1, 1_000))
        });
    }
    {
        let (mut svc, owner) = service_with_filters(0, 0);
        assert_eq!(publish_walk_logs(&mut svc, &owner, &mut now, 100, 0), 0);
        g.bench_function("publish_walk_no_subscribers", |b| {
            b.iter(|| publish_walk_logs(&mut svc, &owner, &mut now, 1, 0))
        });
    }
    {
        let (mut svc, owner) = service_with_filters(100_000, 1);
        g.sample_size(10);
        g.throughput(Throughput::Elements(100_000));
        g.bench_function("publish_walk_100k_plus_1_filtered", |b| {
            b.iter(|| publish_walk_logs(&mut svc, &owner, &mut now, 1, 0))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = publish_fanout, publish_fanout_100k, publish_walk_filtered, subscribe_unsubscribe
}
criterion_main!(benches);
