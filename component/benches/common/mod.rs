//! Shared by the component's benchmarks: a `Roost` on the in-memory store, with no rate
//! limit, holding one node `n` created by alice@localhost.

use clap::Parser;
use minidom::Element;
use roost_component::roost::Roost;
use roost_nodes::{MemStore, Service};

/// The component with node `n` created.
pub fn roost_with_node() -> Roost<MemStore> {
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
    roost
}
