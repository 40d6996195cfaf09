//! What the metrics cost per publish: the counting a publish does (its request by kind and
//! outcome, `roost_publishes_total`, and one notification counted), next to one whole
//! publish handled by the component on the in-memory store (parse, engine, reply). With
//! sled and a sync the publish costs more, so the share measured here is an upper bound.
//!
//!     cargo bench -p roost-component --bench metrics

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use minidom::Element;
use roost_component::effects::Effects;
use roost_component::iq;
use roost_component::metrics::{Kind, Metrics};
use xmpp_parsers::iq::Iq;

fn publish(id: u64) -> Element {
    format!(
        "<iq xmlns='jabber:component:accept' type='set' id='p{id}' from='alice@localhost/r' \
         to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
         <publish node='n'><item id='i{id}'><entry xmlns='urn:x'>hello</entry></item></publish>\
         </pubsub></iq>"
    )
    .parse()
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let mut roost = common::roost_with_node();
    let mut id = 0u64;
    c.bench_function("publish handled (MemStore)", |b| {
        b.iter_batched(
            || {
                id += 1;
                publish(id)
            },
            |el| black_box(roost.handle_element(el)),
            criterion::BatchSize::SmallInput,
        )
    });

    let metrics = Metrics::new();
    let result = Effects::stanza(Iq::Result {
        from: Some("pubsub.localhost".parse().unwrap()),
        to: Some("alice@localhost/r".parse().unwrap()),
        id: "p".into(),
        payload: None,
    });
    c.bench_function("metrics of one publish", |b| {
        b.iter(|| {
            iq::count(&metrics, Kind::Publish, black_box(&result));
            metrics.notifications.inc_by(black_box(1));
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
