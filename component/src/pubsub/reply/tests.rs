use super::super::codec::NS_META_DATA;
use super::*;
use roost_nodes::request::{NodeMeta, NodeSummary};
use roost_nodes::RsmPage;
use roost_nodes::{Affiliation, Item, NodeConfig, SubOptions};

fn service() -> Jid {
    "pubsub.shakespeare.lit".parse().unwrap()
}

fn xml(e: &Element) -> String {
    String::from(e)
}

fn sub(state: SubscriptionState) -> Subscription {
    Subscription {
        jid: "francisco@denmark.lit".parse().unwrap(),
        subid: "ba49252aaa4f5d320c24d3766f0bdcade78c78d3".into(),
        state,
        options: SubOptions::default(),
    }
}

#[test]
fn each_subscription_reply_states_its_own_options() {
    // The options form is remembered per distinct options: a reply never shows another
    // subscription's, whatever came before it.
    let deliver = |reply: &Reply| {
        let e = reply_payload(reply, &service(), false).unwrap();
        let form = e
            .get_child("options", ns::PUBSUB)
            .unwrap()
            .children()
            .next()
            .unwrap();
        let field = form
            .children()
            .find(|f| f.attr("var") == Some("pubsub#deliver"))
            .unwrap();
        field.children().next().unwrap().text()
    };
    let mut quiet = sub(SubscriptionState::Subscribed);
    quiet.options.deliver = false;
    let reply = |sub: Subscription| Reply::Subscription {
        node: "princely_musings".into(),
        sub,
        collection: false,
    };
    for _ in 0..2 {
        assert_eq!(deliver(&reply(sub(SubscriptionState::Subscribed))), "1");
        assert_eq!(deliver(&reply(quiet.clone())), "0");
    }
    for n in 0..40u64 {
        let mut s = sub(SubscriptionState::Subscribed);
        s.options.digest_frequency = n;
        s.options.deliver = n % 2 == 0;
        assert_eq!(deliver(&reply(s)), if n % 2 == 0 { "1" } else { "0" });
    }
    assert_eq!(deliver(&reply(quiet)), "0");
}

#[test]
fn done_is_empty() {
    assert_eq!(reply_payload(&Reply::Done, &service(), false), None);
}

#[test]
fn example_132_created() {
    let e = reply_payload(
        &Reply::Created {
            node: "25e3d37dabbab9541f7523321421edc5bfeb2dae".into(),
        },
        &service(),
        false,
    )
    .unwrap();
    let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <create node='25e3d37dabbab9541f7523321421edc5bfeb2dae'/>
  </pubsub>"
        .parse()
        .unwrap();
    assert_eq!(xml(&e), xml(&strip(expected)));
}

/// Drops whitespace-only text nodes so literal examples compare with built elements.
fn strip(e: Element) -> Element {
    let mut b = Element::builder(e.name(), e.ns());
    for (k, v) in e.attrs() {
        b = b.attr(k.1.clone(), v.clone());
    }
    for n in e.nodes() {
        match n {
            minidom::Node::Element(c) => b = b.append(strip(c.clone())),
            minidom::Node::Text(t) if !t.trim().is_empty() => b = b.append(t.clone()),
            _ => {}
        }
    }
    b.build()
}

#[test]
fn example_99_published() {
    let e = reply_payload(
        &Reply::Published {
            node: "princely_musings".into(),
            id: "ae890ac52d0df67ed7cfdf51b644e901".into(),
        },
        &service(),
        false,
    )
    .unwrap();
    let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='princely_musings'>
      <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
    </publish>
  </pubsub>"
        .parse()
        .unwrap();
    assert_eq!(e, strip(expected));
    // Built by hand: clients that read it with the typed schema get the item id.
    let Ok(PubSub::Publish { publish, .. }) = PubSub::try_from(e) else {
        panic!("not a typed publish result");
    };
    assert_eq!(publish.node.0, "princely_musings");
    assert_eq!(
        publish.items[0].id.as_ref().map(|i| i.0.as_str()),
        Some("ae890ac52d0df67ed7cfdf51b644e901")
    );
}

#[test]
fn examples_29_43_subscription() {
    let e = reply_payload(
        &Reply::Subscription {
            collection: false,
            node: "princely_musings".into(),
            sub: sub(SubscriptionState::Subscribed),
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(e.is("pubsub", ns::PUBSUB));
    assert_eq!(e.attrs().into_iter().count(), 0, "{}", xml(&e));
    let s = e.get_child("subscription", ns::PUBSUB).unwrap();
    assert_eq!(s.attr("node"), Some("princely_musings"));
    assert_eq!(s.attr("jid"), Some("francisco@denmark.lit"));
    assert_eq!(
        s.attr("subid"),
        Some("ba49252aaa4f5d320c24d3766f0bdcade78c78d3")
    );
    assert_eq!(s.attr("subscription"), Some("subscribed"));
    // Example 68: the options in force come along, after the <subscription/>, with the
    // attributes the schema requires (`jid`) and the node and subid they are about.
    let names: Vec<_> = e.children().map(|c| c.name()).collect();
    assert_eq!(names, ["subscription", "options"]);
    let o = e.get_child("options", ns::PUBSUB).unwrap();
    assert_eq!(o.attr("jid"), Some("francisco@denmark.lit"));
    assert_eq!(o.attr("node"), Some("princely_musings"));
    assert_eq!(
        o.attr("subid"),
        Some("ba49252aaa4f5d320c24d3766f0bdcade78c78d3")
    );
    assert!(o.get_child("x", ns::DATA_FORMS).is_some());
    // What a client library reads it with (xmpp-parsers, like aioxmpp, requires `jid`).
    assert!(Options::try_from(o.clone()).is_ok());

    let e = reply_payload(
        &Reply::Subscription {
            collection: false,
            node: "princely_musings".into(),
            sub: sub(SubscriptionState::Unconfigured),
        },
        &service(),
        false,
    )
    .unwrap();
    let s = e.get_child("subscription", ns::PUBSUB).unwrap();
    assert_eq!(s.attr("subscription"), Some("unconfigured"));
    assert!(s
        .get_child("subscribe-options", ns::PUBSUB)
        .unwrap()
        .has_child("required", ns::PUBSUB));
    assert!(e.get_child("options", ns::PUBSUB).is_none());
    // The typed parser agrees it is a valid pubsub payload.
    assert!(PubSub::try_from(e).is_ok());
}

#[test]
fn examples_56_71_options() {
    let e = reply_payload(
        &Reply::Options {
            collection: false,
            node: Some("princely_musings".into()),
            jid: Some("francisco@denmark.lit".parse().unwrap()),
            subid: None,
            options: SubOptions::default(),
        },
        &service(),
        false,
    )
    .unwrap();
    let o = e.get_child("options", ns::PUBSUB).unwrap();
    assert_eq!(o.attr("jid"), Some("francisco@denmark.lit"));
    assert_eq!(o.attr("node"), Some("princely_musings"));
    let x = o.get_child("x", ns::DATA_FORMS).unwrap();
    assert_eq!(x.attr("type"), Some("form"));

    let e = reply_payload(
        &Reply::Options {
            collection: false,
            node: None,
            jid: None,
            subid: None,
            options: SubOptions::default(),
        },
        &service(),
        false,
    )
    .unwrap();
    let d = e.get_child("default", ns::PUBSUB).unwrap();
    assert_eq!(d.attr("node"), None);
    assert!(d.has_child("x", ns::DATA_FORMS));
}

#[test]
fn example_75_items() {
    let item = |id: &str, payload: &str| Item {
        id: id.into(),
        seq: 1,
        first_seq: None,
        publisher: "hamlet@denmark.lit/blogbot".parse().unwrap(),
        published: 0,
        payload: payload.into(),
    };
    let e = reply_payload(
            &Reply::Items {
                node: "princely_musings".into(),
                items: vec![
                    item("368866411b877c30064a5f62b917cffe", "<entry xmlns='http://www.w3.org/2005/Atom'><title>The Uses of This World</title></entry>"),
                    item("corrupt", "<entry"),
                    item("empty", ""),
                ],
                page: None,
                with_publisher: false,
            },
            &service(), false
        )
        .unwrap();
    let items = e.get_child("items", ns::PUBSUB).unwrap();
    assert_eq!(items.attr("node"), Some("princely_musings"));
    let list: Vec<_> = items.children().collect();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0].attr("id"), Some("368866411b877c30064a5f62b917cffe"));
    assert_eq!(list[0].attr("publisher"), None);
    // §7.1.2.3: with pubsub#itemreply = publisher, as in the notifications (bare JID).
    let e = reply_payload(
        &Reply::Items {
            node: "princely_musings".into(),
            items: vec![item("a", "")],
            page: None,
            with_publisher: true,
        },
        &service(),
        false,
    )
    .unwrap();
    let i = e
        .get_child("items", ns::PUBSUB)
        .unwrap()
        .children()
        .next()
        .unwrap();
    assert_eq!(i.attr("publisher"), Some("hamlet@denmark.lit"));
    // Unpaged requests get no <set/>.
    assert_eq!(e.children().count(), 1);
    let e = reply_payload(
        &Reply::Items {
            node: "princely_musings".into(),
            items: vec![item("368866411b877c30064a5f62b917cffe", "")],
            page: None,
            with_publisher: false,
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(list[0].has_child("entry", "http://www.w3.org/2005/Atom"));
    assert_eq!(list[1].children().count(), 0);
    assert_eq!(list[2].children().count(), 0);
    // Unpaged requests get no <set/>.
    assert_eq!(e.children().count(), 1);
}

#[test]
fn command_sessions_are_new_or_the_requesters() {
    let reply = |r: &Reply| reply_payload(r, &service(), false).unwrap();
    let first = Reply::PendingNodes { nodes: vec![] };
    let ask: Element = format!("<command xmlns='{NS_COMMANDS}' node='{GET_PENDING_NODE}'/>")
        .parse()
        .unwrap();
    let mut n = 0;
    let mut fresh = || {
        n += 1;
        format!("id-{n}")
    };
    let mut a = reply(&first);
    command_session(&mut a, &ask, &mut fresh);
    let mut b = reply(&first);
    command_session(&mut b, &ask, &mut fresh);
    assert_eq!(a.attr("sessionid"), Some("get-pending:id-1"));
    assert_eq!(b.attr("sessionid"), Some("get-pending:id-2"));
    // A later stage keeps the requester's session id.
    let next: Element =
        format!("<command xmlns='{NS_COMMANDS}' node='{GET_PENDING_NODE}' sessionid='s-7'/>")
            .parse()
            .unwrap();
    let mut c = reply(&Reply::PendingSent { node: "a".into() });
    command_session(&mut c, &next, || {
        unreachable!("no new session on a later stage")
    });
    assert_eq!(c.attr("sessionid"), Some("s-7"));
    // Anything else is left alone.
    let mut d = reply(&Reply::Created { node: "n".into() });
    command_session(&mut d, &next, || unreachable!());
    assert_eq!(d.attr("sessionid"), None);
}

#[test]
fn s8_7_examples_196_200_get_pending_replies() {
    let e = reply_payload(
        &Reply::PendingNodes {
            nodes: vec!["princely_musings".into(), "news_from_elsinore".into()],
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(e.is("command", NS_COMMANDS));
    assert_eq!(e.attr("node"), Some(GET_PENDING_NODE));
    assert_eq!(e.attr("status"), Some("executing"));
    let x = e.get_child("x", ns::DATA_FORMS).unwrap();
    let field = x
        .children()
        .find(|f| f.attr("var") == Some("pubsub#node"))
        .unwrap();
    assert_eq!(field.attr("type"), Some("list-single"));
    assert_eq!(field.children().filter(|c| c.name() == "option").count(), 2);
    let e = reply_payload(
        &Reply::PendingSent {
            node: "princely_musings".into(),
        },
        &service(),
        false,
    )
    .unwrap();
    assert_eq!(e.attr("status"), Some("completed"));
}

#[test]
fn xep0059_paged_replies() {
    let page = RsmPage {
        first: Some(("a".into(), 3)),
        last: Some("b".into()),
        count: 10,
    };
    let expected_set: Element = "<set xmlns='http://jabber.org/protocol/rsm'>\
            <first index='3'>a</first><last>b</last><count>10</count></set>"
        .parse()
        .unwrap();
    let e = reply_payload(
        &Reply::Items {
            node: "n".into(),
            items: vec![],
            page: Some(page.clone()),
            with_publisher: false,
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(e.has_child("items", ns::PUBSUB));
    assert_eq!(e.get_child("set", ns::RSM), Some(&expected_set));
    let e = reply_payload(
        &Reply::ItemIds {
            node: "n".into(),
            ids: vec!["a".into(), "b".into()],
            page: Some(page.clone()),
        },
        &service(),
        false,
    )
    .unwrap();
    assert_eq!(e.get_child("set", ns::RSM), Some(&expected_set));
    // An empty page: the count alone (XEP-0059 §2.6).
    let e = reply_payload(
        &Reply::Nodes {
            nodes: vec![],
            page: Some(RsmPage {
                first: None,
                last: None,
                count: 7,
            }),
        },
        &service(),
        false,
    )
    .unwrap();
    let set = e.get_child("set", ns::RSM).unwrap();
    assert_eq!(set.children().count(), 1);
    assert_eq!(set.get_child("count", ns::RSM).unwrap().text(), "7");
}

#[test]
fn examples_10_15_disco() {
    let e = reply_payload(
        &Reply::Nodes {
            nodes: vec![
                NodeSummary {
                    node: "Romeoance".into(),
                    title: "Letters to my Beloved".into(),
                },
                NodeSummary {
                    node: "untitled".into(),
                    title: String::new(),
                },
            ],
            page: None,
        },
        &service(),
        false,
    )
    .unwrap();
    let items: Vec<_> = e.children().collect();
    assert_eq!(items[0].attr("node"), Some("Romeoance"));
    assert_eq!(items[0].attr("name"), Some("Letters to my Beloved"));
    assert_eq!(items[0].attr("jid"), Some("pubsub.shakespeare.lit"));
    assert_eq!(items[1].attr("name"), None);

    let e = reply_payload(
        &Reply::ItemIds {
            node: "princely_musings".into(),
            ids: vec!["368866411b877c30064a5f62b917cffe".into()],
            page: None,
        },
        &service(),
        false,
    )
    .unwrap();
    let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#items'
         node='princely_musings'>
    <item jid='pubsub.shakespeare.lit' name='368866411b877c30064a5f62b917cffe'/>
  </query>"
        .parse()
        .unwrap();
    assert_eq!(e, strip(expected));
}

#[test]
fn example_14_metadata() {
    let meta = NodeMeta {
        node: "princely_musings".into(),
        config: NodeConfig::default(),
        creator: "hamlet@denmark.lit".parse().unwrap(),
        created: 1_059_519_370_000,
        owners: vec!["hamlet@denmark.lit".parse().unwrap()],
        publishers: vec![],
        num_subscribers: 1066,
    };
    let e = reply_payload(&Reply::Metadata(meta), &service(), false).unwrap();
    assert!(e.is("query", ns::DISCO_INFO));
    assert_eq!(e.attr("node"), Some("princely_musings"));
    let id = e.get_child("identity", ns::DISCO_INFO).unwrap();
    assert_eq!(
        (id.attr("category"), id.attr("type")),
        (Some("pubsub"), Some("leaf"))
    );
    let features: Vec<_> = e
        .children()
        .filter(|c| c.is("feature", ns::DISCO_INFO))
        .filter_map(|c| c.attr("var"))
        .collect();
    assert!(features.contains(&"urn:roost:filter:0"), "{features:?}");
    let x = e.get_child("x", ns::DATA_FORMS).unwrap();
    assert_eq!(x.attr("type"), Some("result"));
    assert!(String::from(x).contains(NS_META_DATA));
}

#[test]
fn examples_17_185_subscriptions() {
    let subs = vec![("node6".to_owned(), sub(SubscriptionState::Subscribed))];
    let reply = Reply::Subscriptions {
        node: None,
        subs: subs.clone(),
    };
    let e = reply_payload(&reply, &service(), false).unwrap();
    let list = e.get_child("subscriptions", ns::PUBSUB).unwrap();
    assert_eq!(list.attr("node"), None);
    let s = list.children().next().unwrap();
    assert_eq!(s.attr("node"), Some("node6"));
    assert!(s.children().next().is_none());
    assert!(PubSub::try_from(e).is_ok());

    let req = Request::GetSubscriptions {
        node: "node6".into(),
    };
    let reply = Reply::Subscriptions {
        node: Some("node6".into()),
        subs,
    };
    let e = reply_payload(&reply, &service(), owner_namespace(&req)).unwrap();
    let list = e.get_child("subscriptions", ns::PUBSUB_OWNER).unwrap();
    assert_eq!(list.attr("node"), Some("node6"));
    let s = list.children().next().unwrap();
    assert_eq!(s.attr("node"), None);
    assert_eq!(s.attr("subscription"), Some("subscribed"));
    assert!(Owner::try_from(e).is_ok());
}

#[test]
fn examples_23_198_affiliations() {
    let affs = vec![
        (
            "node1".to_owned(),
            "hamlet@denmark.lit".parse().unwrap(),
            Affiliation::Owner,
        ),
        (
            "node1".to_owned(),
            "polonius@denmark.lit".parse().unwrap(),
            Affiliation::PublishOnly,
        ),
    ];
    let e = reply_payload(
        &Reply::Affiliations {
            node: None,
            affs: affs.clone(),
        },
        &service(),
        false,
    )
    .unwrap();
    let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <affiliations>
      <affiliation node='node1' affiliation='owner'/>
      <affiliation node='node1' affiliation='publish-only'/>
    </affiliations>
  </pubsub>"
        .parse()
        .unwrap();
    assert_eq!(e, strip(expected));

    let req = Request::GetAffiliations {
        node: "node1".into(),
    };
    let e = reply_payload(
        &Reply::Affiliations {
            node: Some("node1".into()),
            affs,
        },
        &service(),
        owner_namespace(&req),
    )
    .unwrap();
    let expected: Element = "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='node1'>
      <affiliation jid='hamlet@denmark.lit' affiliation='owner'/>
      <affiliation jid='polonius@denmark.lit' affiliation='publish-only'/>
    </affiliations>
  </pubsub>"
        .parse()
        .unwrap();
    assert_eq!(e, strip(expected));
}

#[test]
fn examples_140_154_config() {
    let e = reply_payload(
        &Reply::Config {
            node: Some("princely_musings".into()),
            config: NodeConfig::default(),
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(e.is("pubsub", ns::PUBSUB_OWNER));
    let c = e.get_child("configure", ns::PUBSUB_OWNER).unwrap();
    assert_eq!(c.attr("node"), Some("princely_musings"));
    assert_eq!(
        c.get_child("x", ns::DATA_FORMS).unwrap().attr("type"),
        Some("form")
    );
    let e = reply_payload(
        &Reply::Config {
            node: None,
            config: NodeConfig::default(),
        },
        &service(),
        false,
    )
    .unwrap();
    assert!(e
        .get_child("default", ns::PUBSUB_OWNER)
        .unwrap()
        .has_child("x", ns::DATA_FORMS));
}

/// The replies built from declared elements are the XML Roost sent when they were built
/// by hand (element for element, attribute for attribute).
#[test]
fn declared_replies_exact_xml() {
    let sub = |state, subid: &str| Subscription {
        jid: "francisco@denmark.lit/r".parse().unwrap(),
        subid: subid.into(),
        state,
        options: SubOptions::default(),
    };
    let subs = vec![
        ("node6".to_owned(), sub(SubscriptionState::Subscribed, "a1")),
        ("node5".to_owned(), sub(SubscriptionState::Unconfigured, "")),
        ("node4".to_owned(), sub(SubscriptionState::Pending, "p")),
        ("node3".to_owned(), sub(SubscriptionState::None, "")),
    ];
    let affs = vec![
        (
            "n".to_owned(),
            "hamlet@denmark.lit".parse().unwrap(),
            Affiliation::Owner,
        ),
        (
            "n".to_owned(),
            "polonius@denmark.lit".parse().unwrap(),
            Affiliation::Outcast,
        ),
    ];
    let default = |node: Option<&str>| Reply::Options {
        collection: true,
        node: node.map(Into::into),
        jid: None,
        subid: None,
        options: SubOptions::default(),
    };
    let cases: Vec<(Reply, bool, &str)> = vec![
            (
                Reply::Subscriptions {
                    node: None,
                    subs: subs.clone(),
                },
                false,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions><subscription jid='francisco@denmark.lit/r' node='node6' subid='a1' subscription='subscribed'/><subscription jid='francisco@denmark.lit/r' node='node5' subscription='unconfigured'><subscribe-options><required/></subscribe-options></subscription><subscription jid='francisco@denmark.lit/r' node='node4' subid='p' subscription='pending'/><subscription jid='francisco@denmark.lit/r' node='node3' subscription='none'/></subscriptions></pubsub>",
            ),
            (
                Reply::Subscriptions {
                    node: Some("node6".into()),
                    subs: subs.clone(),
                },
                false,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions node='node6'><subscription jid='francisco@denmark.lit/r' node='node6' subid='a1' subscription='subscribed'/><subscription jid='francisco@denmark.lit/r' node='node5' subscription='unconfigured'><subscribe-options><required/></subscribe-options></subscription><subscription jid='francisco@denmark.lit/r' node='node4' subid='p' subscription='pending'/><subscription jid='francisco@denmark.lit/r' node='node3' subscription='none'/></subscriptions></pubsub>",
            ),
            (
                Reply::Subscriptions {
                    node: Some("n".into()),
                    subs,
                },
                true,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'><subscription jid='francisco@denmark.lit/r' subid='a1' subscription='subscribed'/><subscription jid='francisco@denmark.lit/r' subscription='unconfigured'><subscribe-options><required/></subscribe-options></subscription><subscription jid='francisco@denmark.lit/r' subid='p' subscription='pending'/><subscription jid='francisco@denmark.lit/r' subscription='none'/></subscriptions></pubsub>",
            ),
            (
                Reply::Affiliations {
                    node: Some("n".into()),
                    affs,
                },
                true,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'><affiliation affiliation='owner' jid='hamlet@denmark.lit'/><affiliation affiliation='outcast' jid='polonius@denmark.lit'/></affiliations></pubsub>",
            ),
            (default(Some("n")), false, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><default node='n'><x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field><field label='Enable delivery?' type='boolean' var='pubsub#deliver'><value>1</value></field><field label='Receive digest notifications (approx. one per day)?' type='boolean' var='pubsub#digest'><value>0</value></field><field label='Minimum number of milliseconds between sending any two notification digests' var='pubsub#digest_frequency'><value>86400000</value></field><field label='Requested lease expiration (XEP-0082 DateTime; empty: none)' var='pubsub#expire'/><field label='Receive message body in addition to payload?' type='boolean' var='pubsub#include_body'><value>0</value></field><field label='Select the presence types which are allowed to receive event notifications' type='list-multi' var='pubsub#show-values'><option label='Want to Chat'><value>chat</value></option><option label='Available'><value>online</value></option><option label='Away'><value>away</value></option><option label='Extended Away'><value>xa</value></option><option label='Do Not Disturb'><value>dnd</value></option><value>online</value><value>chat</value><value>away</value><value>xa</value><value>dnd</value></field><field label='What kind of notifications to receive from a collection' type='list-single' var='pubsub#subscription_type'><option label='Receive notification of items only'><value>items</value></option><option label='Receive notification of nodes only'><value>nodes</value></option><option label='Receive notification of both items and nodes'><value>all</value></option><value>nodes</value></field><field label='How far to traverse the node graph for notifications (a number, or `all`)' var='pubsub#subscription_depth'><value>1</value></field><field label='Content filter: notify only of items that match it (empty: every item)' var='x-roost#filter'/></x></default></pubsub>"),
            (default(None), false, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><default><x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field><field label='Enable delivery?' type='boolean' var='pubsub#deliver'><value>1</value></field><field label='Receive digest notifications (approx. one per day)?' type='boolean' var='pubsub#digest'><value>0</value></field><field label='Minimum number of milliseconds between sending any two notification digests' var='pubsub#digest_frequency'><value>86400000</value></field><field label='Requested lease expiration (XEP-0082 DateTime; empty: none)' var='pubsub#expire'/><field label='Receive message body in addition to payload?' type='boolean' var='pubsub#include_body'><value>0</value></field><field label='Select the presence types which are allowed to receive event notifications' type='list-multi' var='pubsub#show-values'><option label='Want to Chat'><value>chat</value></option><option label='Available'><value>online</value></option><option label='Away'><value>away</value></option><option label='Extended Away'><value>xa</value></option><option label='Do Not Disturb'><value>dnd</value></option><value>online</value><value>chat</value><value>away</value><value>xa</value><value>dnd</value></field><field label='What kind of notifications to receive from a collection' type='list-single' var='pubsub#subscription_type'><option label='Receive notification of items only'><value>items</value></option><option label='Receive notification of nodes only'><value>nodes</value></option><option label='Receive notification of both items and nodes'><value>all</value></option><value>nodes</value></field><field label='How far to traverse the node graph for notifications (a number, or `all`)' var='pubsub#subscription_depth'><value>1</value></field><field label='Content filter: notify only of items that match it (empty: every item)' var='x-roost#filter'/></x></default></pubsub>"),
            (
                Reply::PendingNodes {
                    nodes: vec!["a".into(), "b".into()],
                },
                false,
                "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/pubsub#get-pending' status='executing'><x xmlns='jabber:x:data' type='form'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field><field type='list-single' var='pubsub#node'><option><value>a</value></option><option><value>b</value></option></field></x></command>",
            ),
            (
                Reply::PendingSent { node: "a".into() },
                false,
                "<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/pubsub#get-pending' status='completed'><note type='info'>Pending subscription requests of node a sent.</note></command>",
            ),
            (
                Reply::Subscription {
                    collection: true,
                    node: "n".into(),
                    sub: sub(SubscriptionState::Subscribed, "a1"),
                },
                false,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription jid='francisco@denmark.lit/r' node='n' subid='a1' subscription='subscribed'><subscribe-options/></subscription><options jid='francisco@denmark.lit/r' node='n' subid='a1'><x xmlns='jabber:x:data' type='result'><field type='hidden' var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field><field type='boolean' var='pubsub#deliver'><value>1</value></field><field type='boolean' var='pubsub#digest'><value>0</value></field><field var='pubsub#digest_frequency'><value>86400000</value></field><field var='pubsub#expire'/><field type='boolean' var='pubsub#include_body'><value>0</value></field><field type='list-multi' var='pubsub#show-values'><value>online</value><value>chat</value><value>away</value><value>xa</value><value>dnd</value></field><field type='list-single' var='pubsub#subscription_type'><value>nodes</value></field><field var='pubsub#subscription_depth'><value>1</value></field><field var='x-roost#filter'/></x></options></pubsub>",
            ),
            (
                Reply::Subscription {
                    collection: false,
                    node: "n".into(),
                    sub: sub(SubscriptionState::Unconfigured, ""),
                },
                false,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription jid='francisco@denmark.lit/r' node='n' subscription='unconfigured'><subscribe-options><required/></subscribe-options></subscription></pubsub>",
            ),
            (
                Reply::Subscription {
                    collection: false,
                    node: "n".into(),
                    sub: sub(SubscriptionState::Pending, "p"),
                },
                false,
                "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription jid='francisco@denmark.lit/r' node='n' subid='p' subscription='pending'/></pubsub>",
            ),
        ];
    for (reply, owner, expected) in cases {
        let e = reply_payload(&reply, &service(), owner).unwrap();
        assert_eq!(xml(&e), expected, "{reply:?}");
    }
}
