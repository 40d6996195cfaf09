//! What one subscribe costs the component on the in-memory store: the stanza parsed, the
//! engine's decision, and the reply built (its `<pubsub/>` with the subscription and the
//! options form). Each iteration is a new subscriber to one node.
//!
//!     cargo bench -p roost-component --bench subscribe

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use minidom::Element;

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
    let mut roost = common::roost_with_node();
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
