//! What one subscribe costs the component on the in-memory store: the stanza parsed, the
//! engine's decision, and the reply built (its `<pubsub/>` with the subscription and the
//! options form). Each iteration is a new subscriber to one node.
//!
//!     cargo bench -p roost-component --bench subscribe

use std::hint::black_box;

use clap::Parser;
use criterion::{criterion_group, criterion_main, Criterion};
use minidom::Element;
use roost_component::roost::Roost;
use roost_nodes::{MemStore, Service};

fn subscribe(id: u64) -> Element {
    format!(
        "<iq xmlns='jabber:component:accept' type='set' id='s{id}' from='u{id}@localhost/r' \
         to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <subscribe node='n' jid='u{id}@localhost/r'/></pubsub></iq>"
    )
    .parse()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let cfg = roost_component::Config::resolve(
        roost_component::config::Cli::try_parse_from([
            "roost",
            "--jid",
            "pubsub.localhost",
            "--secret",
            "s",
            "--rate-limit",
            "0",
        ])
        .unwrap(),
    )
    .unwrap();
    let mut roost = Roost::new(
        Service::open(MemStore::default(), cfg.policy.clone()).unwrap(),
        &cfg,
    );
    let create: Element = "<iq xmlns='jabber:component:accept' type='set' id='c' \
        from='alice@localhost/r' to='pubsub.localhost'><pubsub \
        xmlns='http://jabber.org/protocol/pubsub'><create node='n'/></pubsub></iq>"
        .parse()
        .unwrap();
    let _ = roost.handle_element(create);
    let mut id = 0u64;
    c.bench_function("subscribe handled (MemStore)", |b| {
        b.iter_batched(
            || {
                id += 1;
                subscribe(id)
            },
            |el| black_box(roost.handle_element(el)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
