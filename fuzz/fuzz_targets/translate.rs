//! Hostile stanzas through the component's translation layer.
//!
//! The input is XML text. It is parsed with minidom as is, and also wrapped in
//! `<pubsub/>` (both namespaces) and in disco#info / disco#items queries on a node, so
//! that fragments reach the deep paths; unparsable input is skipped. Each element goes
//! through `parse_request` as a get and as a set. A request it accepts is handled by a
//! `Service<MemStore>` holding one node (with an item and a subscriber); the reply must
//! turn into a payload, the error into a stanza error and the notifications into
//! messages, all without panicking, and what is built must serialize to XML that parses
//! again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use minidom::Element;
use roost_component::pubsub::{
    notification_message, owner_namespace, parse_request, reply_payload, stanza_error, IqKind,
};
use roost_nodes::{MemStore, NewItem, Policy, Request, Service};
use xmpp_parsers::jid::Jid;

const NODE: &str = "princely_musings";
const OWNER: &str = "hamlet@denmark.lit/elsinore";
const SUBSCRIBER: &str = "francisco@denmark.lit/barracks";
const SERVICE: &str = "pubsub.shakespeare.lit";

const WRAPPERS: &[(&str, &str)] = &[
    (
        "<pubsub xmlns='http://jabber.org/protocol/pubsub'>",
        "</pubsub>",
    ),
    (
        "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>",
        "</pubsub>",
    ),
    (
        "<query xmlns='http://jabber.org/protocol/disco#info' node='princely_musings'>",
        "</query>",
    ),
    (
        "<query xmlns='http://jabber.org/protocol/disco#items' node='princely_musings'>",
        "</query>",
    ),
];

fn jid(s: &str) -> Jid {
    Jid::new(s).expect("valid JID")
}

/// A service with one node, one item and one subscriber, owned by the requester.
fn service() -> Service<MemStore> {
    let mut svc = Service::open(MemStore::new(), Policy::default()).expect("open");
    let setup = [
        (
            OWNER,
            Request::Create {
                node: Some(NODE.to_owned()),
                config: None,
            },
        ),
        (
            OWNER,
            Request::Publish {
                node: NODE.to_owned(),
                item: Some(NewItem {
                    id: Some("ae890ac52d0df67ed7cfdf51b644e901".to_owned()),
                    payload: Some("<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>".to_owned()),
                }),
                options: None,
            },
        ),
        (
            SUBSCRIBER,
            Request::Subscribe {
                node: NODE.to_owned(),
                jid: jid(SUBSCRIBER),
                options: None,
            },
        ),
    ];
    for (actor, req) in setup {
        svc.handle(&jid(actor), req, 1_000).expect("setup");
    }
    svc
}

/// Serialize an element built by the component and parse it back.
fn round_trip(what: &str, el: &Element) {
    let mut out = Vec::new();
    el.write_to(&mut out)
        .unwrap_or_else(|e| panic!("{what} does not serialize: {e:?}\n{el:?}"));
    let text = String::from_utf8(out).expect("minidom writes UTF-8");
    if let Err(e) = text.parse::<Element>() {
        panic!("{what} serializes to XML that does not parse ({e:?}): {text}");
    }
}

fn translate(el: &Element) {
    let from = jid(OWNER);
    let service_jid = jid(SERVICE);
    for kind in [IqKind::Get, IqKind::Set] {
        let Some(parsed) = parse_request(kind, el, &from) else {
            continue;
        };
        let req = match parsed {
            Ok(req) => req,
            Err(err) => {
                round_trip("stanza error", &Element::from(err));
                continue;
            }
        };
        let owner_ns = owner_namespace(&req);
        let mut svc = service();
        match svc.handle(&from, req, 2_000) {
            Ok(outcome) => {
                if let Some(payload) = reply_payload(&outcome.reply, &service_jid, owner_ns) {
                    round_trip("reply payload", &payload);
                }
                for n in &outcome.notifications {
                    let msg = notification_message(n, &service_jid, "fuzz".to_owned());
                    round_trip("notification", &Element::from(msg));
                }
            }
            Err(e) => round_trip("engine error", &Element::from(stanza_error(&e))),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(el) = text.parse::<Element>() {
        translate(&el);
    }
    for (open, close) in WRAPPERS {
        if let Ok(el) = format!("{open}{text}{close}").parse::<Element>() {
            translate(&el);
        }
    }
});
