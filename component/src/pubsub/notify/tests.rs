use super::*;
use crate::xml::shim::NS_SHIM;
use roost_nodes::{Item, NodeConfig};
use xmpp_parsers::pubsub::event::Item as EventItem;

fn service() -> Jid {
    "pubsub.shakespeare.lit".parse().unwrap()
}

fn notif(event: Event) -> Notification {
    Notification {
        to: "francisco@denmark.lit".parse().unwrap(),
        node: "princely_musings".into(),
        subids: vec![],
        name_subids: false,
        kind: NotificationType::Headline,
        include_body: false,
        collections: Vec::new(),
        event: std::sync::Arc::new(event),
    }
}

fn item() -> Item {
    Item {
        id: "ae890ac52d0df67ed7cfdf51b644e901".into(),
        seq: 1,
        first_seq: None,
        publisher: "hamlet@denmark.lit/blogbot".parse().unwrap(),
        published: 0,
        payload: "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>"
            .into(),
    }
}

fn event_of(m: &Message) -> Element {
    m.payloads
        .iter()
        .find(|p| p.is("event", ns::PUBSUB_EVENT))
        .expect("event payload")
        .clone()
}

/// The items event read back as xmpp-parsers' typed event (it is built by hand).
fn typed_items(e: Element) -> (NodeName, Vec<EventItem>) {
    match PsEvent::try_from(e).expect("a valid pubsub event").payload {
        Payload::Items {
            node,
            published,
            retracted,
        } => {
            assert!(retracted.is_empty());
            (node, published)
        }
        other => panic!("not an items event: {other:?}"),
    }
}

#[test]
fn example_100_items_with_payload() {
    let m = notification_message(
        &notif(Event::Items {
            items: vec![item()],
            with_payload: true,
            with_publisher: false,
        }),
        &service(),
        "foo".into(),
    );
    assert_eq!(m.type_, MessageType::Headline);
    assert_eq!(m.id, Some(Id("foo".into())));
    assert_eq!(m.from, Some(service()));
    assert_eq!(m.to, Some("francisco@denmark.lit".parse().unwrap()));
    assert!(m.bodies.is_empty());
    let e = event_of(&m);
    let items = e.get_child("items", ns::PUBSUB_EVENT).unwrap();
    assert_eq!(items.attr("node"), Some("princely_musings"));
    let i = items.get_child("item", ns::PUBSUB_EVENT).unwrap();
    assert_eq!(i.attr("id"), Some("ae890ac52d0df67ed7cfdf51b644e901"));
    assert_eq!(i.attr("publisher"), None);
    assert!(i.has_child("entry", "http://www.w3.org/2005/Atom"));
    let (node, published) = typed_items(e);
    assert_eq!(node.0, "princely_musings");
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].id, Some(ItemId(item().id)));
    assert_eq!(published[0].publisher, None);
    assert_eq!(published[0].payload, payload_element(&item().payload));
    // And it is a valid message stanza.
    let stanza: Element = m.into();
    assert!(Message::try_from(stanza).is_ok());
}

#[test]
fn example_101_226_no_payload_and_publisher() {
    let mut n = notif(Event::Items {
        items: vec![item()],
        with_payload: false,
        // The item's publisher is hamlet@denmark.lit/blogbot: named by its bare JID.
        with_publisher: true,
    });
    n.kind = NotificationType::Normal;
    let m = notification_message(&n, &service(), "x".into());
    assert_eq!(m.type_, MessageType::Normal);
    let e = event_of(&m);
    let i = e
        .get_child("items", ns::PUBSUB_EVENT)
        .unwrap()
        .get_child("item", ns::PUBSUB_EVENT)
        .unwrap();
    assert_eq!(i.attr("publisher"), Some("hamlet@denmark.lit"));
    assert_eq!(i.children().count(), 0);
    let (_, published) = typed_items(e);
    assert_eq!(
        published[0].publisher,
        Some("hamlet@denmark.lit".parse().unwrap())
    );
    assert_eq!(published[0].payload, None);
}

/// Several items in one event keep their order; one without a payload (a notification-only
/// item) has an empty `<item/>`.
#[test]
fn items_event_with_several_items() {
    let second = Item {
        id: "2".into(),
        payload: String::new(),
        ..item()
    };
    let m = notification_message(
        &notif(Event::Items {
            items: vec![item(), second],
            with_payload: true,
            with_publisher: true,
        }),
        &service(),
        "x".into(),
    );
    let (_, published) = typed_items(event_of(&m));
    let ids: Vec<_> = published.iter().map(|i| i.id.clone().unwrap().0).collect();
    assert_eq!(ids, [item().id.as_str(), "2"]);
    assert!(published[0].payload.is_some());
    assert_eq!(published[1].payload, None);
    assert!(published.iter().all(|i| i.publisher.is_some()));
}

#[test]
fn example_117_retract_165_purge_160_delete() {
    let m = notification_message(
        &notif(Event::Retract {
            ids: vec!["ae890ac52d0df67ed7cfdf51b644e901".into()],
        }),
        &service(),
        "r".into(),
    );
    let e = event_of(&m);
    let r = e
        .get_child("items", ns::PUBSUB_EVENT)
        .unwrap()
        .get_child("retract", ns::PUBSUB_EVENT)
        .unwrap();
    assert_eq!(r.attr("id"), Some("ae890ac52d0df67ed7cfdf51b644e901"));

    let e = event_of(&notification_message(
        &notif(Event::Purge),
        &service(),
        "p".into(),
    ));
    assert_eq!(
        e.get_child("purge", ns::PUBSUB_EVENT).unwrap().attr("node"),
        Some("princely_musings")
    );

    let e = event_of(&notification_message(
        &notif(Event::Delete {
            redirect: Some("xmpp:hamlet@denmark.lit?;node=blog".into()),
        }),
        &service(),
        "d".into(),
    ));
    let d = e.get_child("delete", ns::PUBSUB_EVENT).unwrap();
    assert_eq!(
        d.get_child("redirect", ns::PUBSUB_EVENT)
            .unwrap()
            .attr("uri"),
        Some("xmpp:hamlet@denmark.lit?;node=blog")
    );
    let e = event_of(&notification_message(
        &notif(Event::Delete { redirect: None }),
        &service(),
        "d".into(),
    ));
    assert!(!e
        .get_child("delete", ns::PUBSUB_EVENT)
        .unwrap()
        .has_child("redirect", ns::PUBSUB_EVENT));
}

#[test]
fn examples_150_151_configuration() {
    let e = event_of(&notification_message(
        &notif(Event::Configuration { config: None }),
        &service(),
        "c".into(),
    ));
    assert_eq!(
        e.get_child("configuration", ns::PUBSUB_EVENT)
            .unwrap()
            .children()
            .count(),
        0
    );
    let e = event_of(&notification_message(
        &notif(Event::Configuration {
            config: Some(NodeConfig::default()),
        }),
        &service(),
        "c".into(),
    ));
    let x = e
        .get_child("configuration", ns::PUBSUB_EVENT)
        .unwrap()
        .get_child("x", ns::DATA_FORMS)
        .unwrap();
    assert_eq!(x.attr("type"), Some("result"));
}

#[test]
fn example_172_subscription() {
    let e = event_of(&notification_message(
        &notif(Event::Subscription {
            jid: "horatio@denmark.lit".parse().unwrap(),
            state: SubscriptionState::Subscribed,
            subid: Some("123-abc".into()),
            expiry: Some(1_154_304_000_000),
        }),
        &service(),
        "approvalnotify1".into(),
    ));
    let s = e.get_child("subscription", ns::PUBSUB_EVENT).unwrap();
    assert_eq!(s.attr("jid"), Some("horatio@denmark.lit"));
    assert_eq!(s.attr("subscription"), Some("subscribed"));
    assert_eq!(s.attr("subid"), Some("123-abc"));
    let expiry = s.attr("expiry").unwrap();
    assert_eq!(
        super::super::codec::parse_datetime(expiry),
        Some(1_154_304_000_000)
    );
}

#[test]
fn s8_8_4_removed_subscription_says_none() {
    let e = event_of(&notification_message(
        &notif(Event::Subscription {
            jid: "polonius@denmark.lit".parse().unwrap(),
            state: SubscriptionState::None,
            subid: None,
            expiry: None,
        }),
        &service(),
        "n1".into(),
    ));
    let s = e.get_child("subscription", ns::PUBSUB_EVENT).unwrap();
    assert_eq!(s.attr("subscription"), Some("none"));
}

#[test]
fn example_104_shim_and_body() {
    let mut n = notif(Event::Items {
        items: vec![item()],
        with_payload: true,
        with_publisher: false,
    });
    n.subids = vec!["123-abc".into(), "004-yyy".into()];
    n.include_body = true;
    let m = notification_message(&n, &service(), "foo".into());
    let headers = m
        .payloads
        .iter()
        .find(|p| p.is("headers", NS_SHIM))
        .unwrap();
    let hs: Vec<_> = headers.children().collect();
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0].attr("name"), Some("SubID"));
    assert_eq!(hs[0].text(), "123-abc");
    assert_eq!(hs[1].text(), "004-yyy");
    let body = m.bodies.values().next().unwrap();
    assert!(body.contains("princely_musings"));

    // One subid: no headers.
    n.subids = vec!["123-abc".into()];
    let m = notification_message(&n, &service(), "foo".into());
    assert!(!m.payloads.iter().any(|p| p.is("headers", NS_SHIM)));
}

#[test]
fn s8_6_example_189_authorization_request() {
    let service: Jid = "pubsub.shakespeare.lit".parse().unwrap();
    let subscriber: Jid = "horatio@denmark.lit".parse().unwrap();
    let n = Notification {
        to: "hamlet@denmark.lit".parse().unwrap(),
        node: "princely_musings".into(),
        subids: Vec::new(),
        name_subids: false,
        kind: NotificationType::Headline,
        include_body: false,
        collections: Vec::new(),
        event: std::sync::Arc::new(Event::Subscription {
            jid: subscriber.clone(),
            state: SubscriptionState::Pending,
            subid: Some("123-abc".into()),
            expiry: None,
        }),
    };
    let m = notification_message(&n, &service, "approve1".into());
    assert_eq!(m.type_, MessageType::Normal);
    assert!(!m.bodies.is_empty());
    let x = m
        .payloads
        .iter()
        .find(|p| p.is("x", ns::DATA_FORMS))
        .unwrap();
    assert_eq!(x.attr("type"), Some("form"));
    let value = |var: &str| {
        x.children()
            .find(|f| f.attr("var") == Some(var))
            .and_then(|f| f.get_child("value", ns::DATA_FORMS))
            .map(|v| v.text())
    };
    assert_eq!(
        value("FORM_TYPE").as_deref(),
        Some("http://jabber.org/protocol/pubsub#subscribe_authorization")
    );
    assert_eq!(value("pubsub#subid").as_deref(), Some("123-abc"));
    assert_eq!(value("pubsub#node").as_deref(), Some("princely_musings"));
    assert_eq!(
        value("pubsub#subscriber_jid").as_deref(),
        Some("horatio@denmark.lit")
    );
    assert_eq!(value("pubsub#allow").as_deref(), Some("false"));
    assert!(!m.payloads.iter().any(|p| p.is("event", ns::PUBSUB_EVENT)));

    // The same event to the subscriber itself stays a subscription event.
    let to_self = Notification {
        to: subscriber,
        ..n
    };
    let m = notification_message(&to_self, &service, "s".into());
    assert!(m.payloads.iter().any(|p| p.is("event", ns::PUBSUB_EVENT)));
}

// ------------------------------------------------------------ NotificationRenderer

/// Render `ns` with ids n1, n2, ... into one buffer; returns each message's text.
fn render_all(r: &mut NotificationRenderer, ns: &[Notification]) -> Vec<String> {
    let mut enc = StanzaEncoder::new();
    ns.iter()
        .enumerate()
        .map(|(i, n)| {
            let mut out = Vec::new();
            r.render(n, &service(), &format!("n{}", i + 1), &mut enc, &mut out)
                .unwrap();
            String::from_utf8(out).unwrap()
        })
        .collect()
}

/// A rendered message as an element (the stream's default namespace made explicit).
fn parse_rendered(s: &str) -> Element {
    let rest = s.strip_prefix("<message").expect("a message");
    format!("<message xmlns='jabber:component:accept'{rest}")
        .parse()
        .unwrap()
}

fn to(n: Notification, jid: &str) -> Notification {
    Notification {
        to: jid.parse().unwrap(),
        ..n
    }
}

#[test]
fn renderer_exact_xml_and_per_recipient_to_and_id() {
    let n = notif(Event::Items {
        items: vec![item()],
        with_payload: true,
        with_publisher: false,
    });
    let ns = vec![
        n.clone(),
        to(n.clone(), "bernardo@denmark.lit/castle"),
        // Characters an attribute value must escape.
        to(n, "horatio@denmark.lit/it's <&> \"here\""),
    ];
    let mut r = NotificationRenderer::default();
    let out = render_all(&mut r, &ns);
    let body = "><event xmlns='http://jabber.org/protocol/pubsub#event'>\
                    <items node='princely_musings'><item id='ae890ac52d0df67ed7cfdf51b644e901'>\
                    <entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>\
                    </item></items></event></message>";
    let head = "<message from='pubsub.shakespeare.lit' type='headline'";
    assert_eq!(
        out[0],
        format!("{head} to='francisco@denmark.lit' id='n1'{body}")
    );
    assert_eq!(
        out[1],
        format!("{head} to='bernardo@denmark.lit/castle' id='n2'{body}")
    );
    assert_eq!(
        out[2],
        format!(
            "{head} to='horatio@denmark.lit/it&#39;s &lt;&amp;&gt; &#34;here&#34;' \
                 id='n3'{body}"
        )
    );
    // And the escaped JID reads back as the same JID.
    assert_eq!(
        parse_rendered(&out[2]).attr("to"),
        Some("horatio@denmark.lit/it's <&> \"here\"")
    );
}

/// Every kind of notification, rendered through the template or not, is the same XML
/// as the message built for that recipient alone.
#[test]
fn renderer_equals_the_message_built_per_recipient() {
    let items = |with_payload, with_publisher| Event::Items {
        items: vec![item()],
        with_payload,
        with_publisher,
    };
    let mut cases = vec![
        notif(items(true, false)),
        notif(items(false, false)),
        notif(items(true, true)),
        notif(Event::Retract {
            ids: vec!["a".into(), "b".into()],
        }),
        notif(Event::Purge),
        notif(Event::Delete { redirect: None }),
        notif(Event::Delete {
            redirect: Some("xmpp:x@y?;node=z".into()),
        }),
        notif(Event::Configuration {
            config: Some(NodeConfig::default()),
        }),
        notif(Event::Subscription {
            jid: "francisco@denmark.lit".parse().unwrap(),
            state: SubscriptionState::None,
            subid: Some("s1".into()),
            expiry: Some(1_154_304_000_000),
        }),
        // The §8.6 form to an owner.
        notif(Event::Subscription {
            jid: "horatio@denmark.lit".parse().unwrap(),
            state: SubscriptionState::Pending,
            subid: Some("s2".into()),
            expiry: None,
        }),
    ];
    let mut body = notif(items(true, false));
    body.include_body = true;
    body.kind = NotificationType::Normal;
    cases.push(body);
    let mut one_subid = notif(items(true, false));
    one_subid.subids = vec!["123-abc".into()];
    cases.push(one_subid);
    let mut shim = notif(items(true, false));
    shim.subids = vec!["123-abc".into(), "004-yyy".into()];
    cases.push(shim);

    // Each case to two recipients in a row (the second reuses the template), and the
    // cases one after another through one renderer (each replaces the template).
    let mut ns = Vec::new();
    for c in cases {
        ns.push(c.clone());
        ns.push(to(c, "bernardo@denmark.lit/r"));
    }
    let mut r = NotificationRenderer::default();
    let out = render_all(&mut r, &ns);
    for (i, (n, s)) in ns.iter().zip(&out).enumerate() {
        let expected: Element = notification_message(n, &service(), format!("n{}", i + 1)).into();
        assert_eq!(parse_rendered(s), expected, "case {i}: {s}");
    }
}

#[test]
fn renderer_shim_headers_per_recipient() {
    let mut a = notif(Event::Items {
        items: vec![item()],
        with_payload: false,
        with_publisher: false,
    });
    a.subids = vec!["123-abc".into(), "004-yyy".into()];
    let mut b = to(a.clone(), "bernardo@denmark.lit");
    b.subids = vec!["x1".into(), "x2".into()];
    let out = render_all(&mut NotificationRenderer::default(), &[a, b]);
    let subids = |s: &str| -> Vec<String> {
        parse_rendered(s)
            .get_child("headers", NS_SHIM)
            .unwrap()
            .children()
            .map(|h| h.text())
            .collect()
    };
    assert_eq!(subids(&out[0]), ["123-abc", "004-yyy"]);
    assert_eq!(subids(&out[1]), ["x1", "x2"]);
    // No payload: the item is empty.
    assert!(out[0].contains("<item id='ae890ac52d0df67ed7cfdf51b644e901'></item>"));
}

#[test]
fn renderer_rebuilds_when_the_event_changes() {
    let n = notif(Event::Items {
        items: vec![item()],
        with_payload: true,
        with_publisher: false,
    });
    let mut other = item();
    other.id = "second".into();
    let m = notif(Event::Items {
        items: vec![other],
        with_payload: true,
        with_publisher: false,
    });
    let out = render_all(&mut NotificationRenderer::default(), &[n, m.clone(), m]);
    assert!(out[0].contains("id='ae890ac52d0df67ed7cfdf51b644e901'"));
    assert!(out[1].contains("<item id='second'>"));
    assert!(!out[1].contains("ae890ac52d0df67ed7cfdf51b644e901"));
    assert_eq!(out[1].replace("'n2'", "'n3'"), out[2]);
}

/// A trusted event's payloads are copied into the template as serialized, which reads back
/// as the same message as parsing them again; an untrusted one's are parsed (a damaged
/// payload is left out, never copied into the stream).
#[test]
fn renderer_copies_trusted_payloads_and_parses_the_rest() {
    let payload = |xml: &str| super::super::codec::serialize_payload(&xml.parse().unwrap());
    let mut second = item();
    second.id = "second".into();
    second.payload =
        payload("<entry xmlns='urn:x' a='1 &lt; 2'>A &amp; B <b xmlns='urn:y'/></entry>");
    let mut empty = item();
    empty.id = "no-payload".into();
    empty.payload = String::new();
    let mut first = item();
    first.payload = payload(&first.payload);
    let event = Event::Items {
        items: vec![first, empty, second],
        with_payload: true,
        with_publisher: true,
    };
    let mut n = notif(event);
    n.include_body = true;
    n.collections = vec!["blogs".into()];
    let mut r = NotificationRenderer::default();
    r.trust(n.event.clone());
    let trusted = render_all(&mut r, &[n.clone(), to(n.clone(), "bernardo@denmark.lit")]);
    let plain = render_all(&mut NotificationRenderer::default(), &[n.clone()]);
    let expected: Element = notification_message(&n, &service(), "n1".into()).into();
    assert_eq!(parse_rendered(&trusted[0]), expected);
    assert_eq!(parse_rendered(&trusted[0]), parse_rendered(&plain[0]));
    let Event::Items { items, .. } = &*n.event else {
        unreachable!()
    };
    for i in items.iter().filter(|i| !i.payload.is_empty()) {
        assert!(
            trusted[0].contains(&i.payload),
            "copied as is: {}",
            i.payload
        );
        assert!(trusted[1].contains(&i.payload));
    }

    // Damaged (as only a damaged store could hold it): untrusted, it is left out.
    let mut bad = item();
    bad.payload = "<entry xmlns='urn:x'><unclosed></entry>".into();
    let n = notif(Event::Items {
        items: vec![bad],
        with_payload: true,
        with_publisher: false,
    });
    let out = render_all(&mut NotificationRenderer::default(), &[n]);
    assert!(!out[0].contains("unclosed"), "{}", out[0]);
    parse_rendered(&out[0]);
}

/// Consecutive one-item publishes reuse their node's serialization around the item (the
/// shape) and read back as the message built for each alone: ids and publishers that
/// need escaping, payloads trusted or not sent, the publisher shown or not, collection
/// headers, nodes and message types alternating.
#[test]
fn renderer_reuses_a_node_shape_for_the_next_publish() {
    let payload = |xml: &str| super::super::codec::serialize_payload(&xml.parse().unwrap());
    let publish = |id: &str, with_payload: bool, with_publisher: bool| {
        let mut i = item();
        i.id = id.into();
        i.payload = payload(&format!("<entry xmlns='urn:x'>{}</entry>", id.len()));
        i.publisher = "hamlet@denmark.lit/it's <&> \"here\"".parse().unwrap();
        notif(Event::Items {
            items: vec![i],
            with_payload,
            with_publisher,
        })
    };
    let mut ns = vec![
        publish("one", true, false),
        publish("two", true, false),
        publish("it's <&> \"3\"\t\n\r", true, true),
        publish("four", false, true),
        publish("five", false, false),
    ];
    let mut other_node = publish("six", true, false);
    other_node.node = "elsinore".into();
    ns.push(other_node);
    let mut normal = publish("seven", true, false);
    normal.kind = NotificationType::Normal;
    ns.push(normal);
    let mut through = publish("eight", true, false);
    through.collections = vec!["blogs".into(), "news".into()];
    ns.push(through.clone());
    ns.push(to(through, "bernardo@denmark.lit/r"));
    ns.push(publish("nine", true, false));

    let mut r = NotificationRenderer::default();
    for n in &ns {
        r.trust(n.event.clone());
    }
    let out = render_all(&mut r, &ns);
    for (i, (n, s)) in ns.iter().zip(&out).enumerate() {
        let expected: Element = notification_message(n, &service(), format!("n{}", i + 1)).into();
        assert_eq!(parse_rendered(s), expected, "case {i}: {s}");
        if let Event::Items {
            items,
            with_payload: true,
            ..
        } = &*n.event
        {
            assert!(s.contains(&items[0].payload), "payload copied as is: {s}");
        }
    }
    let shape = r.shape.as_ref().expect("one-item publishes use a shape");
    assert_eq!(shape.node, "princely_musings");
    assert!(shape.collections.is_empty());

    // An id XML cannot carry is refused as the encoder refuses it.
    let bad = publish("a\u{1}b", true, false);
    r.trust(bad.event.clone());
    let mut out = Vec::new();
    let mut enc = StanzaEncoder::new();
    assert!(r
        .render(&bad, &service(), "n1", &mut enc, &mut out)
        .is_err());
    assert!(out.is_empty());

    // An untrusted payload is not copied: it goes through the parser as before.
    let untrusted = publish("ten", true, false);
    let mut fresh = NotificationRenderer::default();
    let out = render_all(&mut fresh, std::slice::from_ref(&untrusted));
    let expected: Element = notification_message(&untrusted, &service(), "n1".into()).into();
    assert_eq!(parse_rendered(&out[0]), expected);
    assert!(fresh.shape.is_none());
}
