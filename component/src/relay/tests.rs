//! Relays against a scripted upstream: catch-up order, paging, fallbacks, timeouts.

use super::*;
use roost_nodes::{MemStore, Policy};

fn me() -> Jid {
    "relay.localhost".parse().unwrap()
}

fn service() -> Service<MemStore> {
    let mut policy = Policy::default();
    policy.admins.push("relay.localhost".parse().unwrap());
    Service::open(MemStore::default(), policy).unwrap()
}

fn spec() -> RelaySpec {
    "mirror=pubsub.a.example/logs".parse().unwrap()
}

fn event(node: &str, items: &[(&str, &str)]) -> Message {
    let mut xml = format!(
        "<message xmlns='jabber:component:accept' from='pubsub.a.example' to='relay.localhost'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='{node}'>"
    );
    for (id, text) in items {
        xml.push_str(&format!(
            "<item id='{id}'><line xmlns='urn:example'>{text}</line></item>"
        ));
    }
    xml.push_str("</items></event></message>");
    Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
}

fn history_result(queryid: &str, items: &[(&str, &str)]) -> Vec<Message> {
    items.iter().map(|(id, text)| {
        let xml = format!("<message xmlns='jabber:component:accept' from='pubsub.a.example' to='relay.localhost'><result xmlns='urn:xmpp:mam:2' queryid='{queryid}' id='{id}'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='logs'><item id='{id}'><line xmlns='urn:example'>{text}</line></item></items></event></message></forwarded></result></message>");
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }).collect()
}

fn fin(id: &str, complete: bool) -> Iq {
    let xml = format!("<iq xmlns='jabber:component:accept' type='result' id='{id}' from='pubsub.a.example' to='relay.localhost'><fin xmlns='urn:xmpp:mam:2' complete='{complete}'/></iq>");
    Iq::try_from(xml.parse::<Element>().unwrap()).unwrap()
}

fn ids_asked(out: &Effects) -> Vec<(String, Element)> {
    out.stanzas
        .iter()
        .filter_map(|s| match s {
            Stanza::Iq(Iq::Set { id, payload, .. }) | Stanza::Iq(Iq::Get { id, payload, .. }) => {
                Some((id.clone(), payload.clone()))
            }
            _ => None,
        })
        .collect()
}

fn local_ids(svc: &mut Service<MemStore>) -> Vec<String> {
    match svc
        .handle(
            &me(),
            Request::Items {
                node: "mirror".into(),
                max_items: None,
                ids: vec![],
                subid: None,
            },
            0,
        )
        .unwrap()
        .reply
    {
        Reply::Items { items, .. } => items.into_iter().map(|i| i.id).collect(),
        _ => unreachable!(),
    }
}

#[test]
fn spec_parses_and_refuses() {
    let s = spec();
    assert_eq!(s.local, "mirror");
    assert_eq!(s.upstream.to_string(), "pubsub.a.example");
    assert_eq!(s.node, "logs");
    let deep: RelaySpec = "a=pubsub.x/b/c".parse().unwrap();
    assert_eq!(deep.node, "b/c");
    for bad in ["", "x", "x=y", "=pubsub.x/n", "x=pubsub.x/"] {
        assert!(bad.parse::<RelaySpec>().is_err(), "{bad}");
    }
}

#[test]
fn catches_up_in_order_holding_live_items_then_goes_live() {
    let mut svc = service();
    let mut relays = Relays::new(&[spec()], "t");
    let out = relays.on_connect(&mut svc, &me(), 1);
    let asked = ids_asked(&out);
    assert_eq!(asked.len(), 2, "subscribe + history");
    assert!(asked[0].1.get_child("subscribe", ns::PUBSUB).is_some());
    let (hid, query) = &asked[1];
    assert!(query.is("query", ns::MAM));
    assert_eq!(query.attr("node"), Some("logs"));
    // A live item arrives before the history: held, not applied.
    let o = relays
        .handle_message(&mut svc, &me(), &event("logs", &[("3", "c")]), 2)
        .unwrap();
    assert!(o.notifications.is_empty());
    assert!(local_ids(&mut svc).is_empty());
    // History: 1, 2, 3 (3 overlaps the held live item).
    for m in history_result(hid, &[("1", "a"), ("2", "b"), ("3", "c")]) {
        let _ = relays.handle_message(&mut svc, &me(), &m, 3).unwrap();
    }
    let _ = relays
        .handle_iq_response(&mut svc, &me(), &fin(hid, true), 4)
        .unwrap();
    assert_eq!(
        local_ids(&mut svc),
        vec!["1", "2", "3"],
        "no duplicate of 3"
    );
    // Live now: applied at once; a repeat of the same item is skipped.
    let _ = relays
        .handle_message(&mut svc, &me(), &event("logs", &[("4", "d")]), 5)
        .unwrap();
    let _ = relays
        .handle_message(&mut svc, &me(), &event("logs", &[("4", "d")]), 6)
        .unwrap();
    assert_eq!(local_ids(&mut svc), vec!["1", "2", "3", "4"]);
    // Events of other nodes or services are not the relay's.
    assert!(relays
        .handle_message(&mut svc, &me(), &event("other", &[("9", "x")]), 7)
        .is_none());
}

#[test]
fn pages_resume_after_the_last_item_and_restart_resumes_after_the_newest_local() {
    let mut svc = service();
    let mut relays = Relays::new(&[spec()], "t");
    let out = relays.on_connect(&mut svc, &me(), 1);
    let (hid, _) = ids_asked(&out)[1].clone();
    for m in history_result(&hid, &[("1", "a"), ("2", "b")]) {
        relays.handle_message(&mut svc, &me(), &m, 2);
    }
    let out = relays
        .handle_iq_response(&mut svc, &me(), &fin(&hid, false), 3)
        .unwrap();
    let (hid2, q2) = ids_asked(&out)[0].clone();
    let after = q2
        .get_child("set", ns::RSM)
        .and_then(|s| s.get_child("after", ns::RSM))
        .map(|a| a.text());
    assert_eq!(after.as_deref(), Some("2"));
    let _ = relays
        .handle_iq_response(&mut svc, &me(), &fin(&hid2, true), 4)
        .unwrap();
    // A reconnect asks for the history after the newest local item.
    let out = relays.on_connect(&mut svc, &me(), 5);
    let q = &ids_asked(&out)[1].1;
    let after = q
        .get_child("set", ns::RSM)
        .and_then(|s| s.get_child("after", ns::RSM))
        .map(|a| a.text());
    assert_eq!(after.as_deref(), Some("2"));
}

#[test]
fn without_history_upstream_the_items_are_fetched() {
    let mut svc = service();
    let mut relays = Relays::new(&[spec()], "t");
    let out = relays.on_connect(&mut svc, &me(), 1);
    let (hid, _) = ids_asked(&out)[1].clone();
    let err = format!("<iq xmlns='jabber:component:accept' type='error' id='{hid}' from='pubsub.a.example' to='relay.localhost'><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    let out = relays
        .handle_iq_response(
            &mut svc,
            &me(),
            &Iq::try_from(err.parse::<Element>().unwrap()).unwrap(),
            2,
        )
        .unwrap();
    let (iid, p) = ids_asked(&out)[0].clone();
    assert!(p.get_child("items", ns::PUBSUB).is_some());
    let res = format!("<iq xmlns='jabber:component:accept' type='result' id='{iid}' from='pubsub.a.example' to='relay.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='logs'><item id='x'><line xmlns='urn:example'>1</line></item><item id='y'><line xmlns='urn:example'>2</line></item></items></pubsub></iq>");
    let _ = relays
        .handle_iq_response(
            &mut svc,
            &me(),
            &Iq::try_from(res.parse::<Element>().unwrap()).unwrap(),
            3,
        )
        .unwrap();
    assert_eq!(local_ids(&mut svc), vec!["x", "y"]);
}

#[test]
fn unanswered_requests_time_out_and_the_relay_starts_over() {
    let mut svc = service();
    let mut relays = Relays::new(&[spec()], "t");
    let _ = relays.on_connect(&mut svc, &me(), 1);
    assert!(ids_asked(&relays.tick(&mut svc, &me(), 2)).is_empty());
    let out = relays.tick(&mut svc, &me(), 1 + REQUEST_TIMEOUT_MS);
    assert!(ids_asked(&out).is_empty(), "waits before retrying");
    let out = relays.tick(&mut svc, &me(), 1 + REQUEST_TIMEOUT_MS + RETRY_MS);
    assert_eq!(ids_asked(&out).len(), 2, "subscribe + history again");
}
