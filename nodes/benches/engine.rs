//! Engine decisions per second, in memory: no I/O, no XML, no store latency.
//!
//! `publish_fanout_100`: one publish to a node with 100 subscribers on `MemStore`; the
//! throughput counts notifications computed (100 per publish), so it is comparable with
//! the notifications/s of `roost-load fanout` and shows how much of that the engine uses.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use roost_nodes::{Jid, MemStore, NewItem, Policy, Request, Service};

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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = publish_fanout
}
criterion_main!(benches);
