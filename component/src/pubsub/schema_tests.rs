//! XEP-0060 §15: every reply and notification Roost builds, checked against what the schemas
//! require.

use minidom::Element;

use super::{notification_message, owner_namespace, reply_payload};

/// The attributes the XEP-0060 schemas (§15) require, by namespace and element.
const REQUIRED: &[(&str, &str, &[&str])] = &[
    (
        xmpp_parsers::ns::PUBSUB,
        "affiliation",
        &["affiliation", "node"],
    ),
    (xmpp_parsers::ns::PUBSUB, "items", &["node"]),
    (xmpp_parsers::ns::PUBSUB, "options", &["jid"]),
    (xmpp_parsers::ns::PUBSUB, "publish", &["node"]),
    (xmpp_parsers::ns::PUBSUB, "retract", &["node"]),
    (xmpp_parsers::ns::PUBSUB, "subscribe", &["jid"]),
    (xmpp_parsers::ns::PUBSUB, "subscription", &["jid"]),
    (xmpp_parsers::ns::PUBSUB, "unsubscribe", &["jid"]),
    (xmpp_parsers::ns::PUBSUB_OWNER, "affiliations", &["node"]),
    (
        xmpp_parsers::ns::PUBSUB_OWNER,
        "affiliation",
        &["affiliation", "jid"],
    ),
    (xmpp_parsers::ns::PUBSUB_OWNER, "delete", &["node"]),
    (xmpp_parsers::ns::PUBSUB_OWNER, "purge", &["node"]),
    (xmpp_parsers::ns::PUBSUB_OWNER, "redirect", &["uri"]),
    (xmpp_parsers::ns::PUBSUB_OWNER, "subscriptions", &["node"]),
    (
        xmpp_parsers::ns::PUBSUB_OWNER,
        "subscription",
        &["subscription", "jid"],
    ),
    (xmpp_parsers::ns::PUBSUB_EVENT, "associate", &["node"]),
    // XEP-0060's schema spells it `disassociate`; XEP-0248 (examples 10, 52), the
    // collections spec, `dissociate`, which Roost follows.
    (xmpp_parsers::ns::PUBSUB_EVENT, "dissociate", &["node"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "delete", &["node"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "items", &["node"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "purge", &["node"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "redirect", &["uri"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "retract", &["id"]),
    (xmpp_parsers::ns::PUBSUB_EVENT, "subscription", &["jid"]),
    (xmpp_parsers::ns::PUBSUB_ERRORS, "unsupported", &["feature"]),
];

/// Every element of `e` (itself included) the schemas name, checked for its required
/// attributes; returns how many were checked.
fn check_required(e: &Element, what: &str) -> usize {
    let mut n = 0;
    for (ns, name, attrs) in REQUIRED {
        if e.is(*name, *ns) {
            n += 1;
            for a in *attrs {
                assert!(
                    e.attr(*a).is_some(),
                    "{what}: <{name} xmlns='{ns}'/> without its required '{a}': {}",
                    String::from(e)
                );
            }
        }
    }
    n + e.children().map(|c| check_required(c, what)).sum::<usize>()
}

/// §15: every reply and notification Roost builds carries the attributes the schemas
/// require, and elements come in the order the schemas (or, where they are looser than
/// the examples, the examples) give.
#[test]
fn replies_and_notifications_carry_what_the_schemas_require() {
    use roost_nodes::request::{NodeMeta, NodeSummary};
    use roost_nodes::{
        Affiliation, Event, Item, NodeConfig, Notification, NotificationType, Reply, Request,
        RsmPage, SubOptions, Subscription, SubscriptionState,
    };
    let service: xmpp_parsers::jid::Jid = "pubsub.shakespeare.lit".parse().unwrap();
    let jid: xmpp_parsers::jid::Jid = "francisco@denmark.lit/barracks".parse().unwrap();
    let sub = |state| Subscription {
        jid: jid.clone(),
        subid: "123-abc".into(),
        state,
        options: SubOptions::default(),
    };
    let item = Item {
        id: "i1".into(),
        seq: 1,
        first_seq: None,
        publisher: jid.clone(),
        published: 0,
        payload: "<entry xmlns='http://www.w3.org/2005/Atom'/>".into(),
    };
    let page = Some(RsmPage {
        first: Some(("i1".into(), 0)),
        last: Some("i1".into()),
        count: 1,
    });
    let n = || "princely_musings".to_owned();
    let owner_req = Request::GetSubscriptions { node: n() };
    let replies = [
        (Reply::Created { node: n() }, false),
        (
            Reply::Published {
                node: n(),
                id: "i1".into(),
            },
            false,
        ),
        (
            Reply::Subscription {
                collection: false,
                node: n(),
                sub: sub(SubscriptionState::Subscribed),
            },
            false,
        ),
        (
            Reply::Subscription {
                collection: false,
                node: n(),
                sub: sub(SubscriptionState::Unconfigured),
            },
            false,
        ),
        (
            Reply::Subscription {
                collection: false,
                node: n(),
                sub: sub(SubscriptionState::Pending),
            },
            false,
        ),
        (
            Reply::Options {
                collection: false,
                node: Some(n()),
                jid: Some(jid.clone()),
                subid: Some("123-abc".into()),
                options: SubOptions::default(),
            },
            false,
        ),
        (
            Reply::Items {
                node: n(),
                items: vec![item.clone()],
                page: page.clone(),
                with_publisher: true,
            },
            false,
        ),
        (
            Reply::Nodes {
                nodes: vec![NodeSummary {
                    node: n(),
                    title: "t".into(),
                }],
                page: None,
            },
            false,
        ),
        (
            Reply::Metadata(NodeMeta {
                node: n(),
                config: NodeConfig::default(),
                creator: "hamlet@denmark.lit".parse().unwrap(),
                created: 0,
                owners: vec!["hamlet@denmark.lit".parse().unwrap()],
                publishers: vec![],
                num_subscribers: 1,
            }),
            false,
        ),
        (
            Reply::Subscriptions {
                node: None,
                subs: vec![(n(), sub(SubscriptionState::Subscribed))],
            },
            false,
        ),
        (
            Reply::Subscriptions {
                node: Some(n()),
                subs: vec![(n(), sub(SubscriptionState::Pending))],
            },
            owner_namespace(&owner_req),
        ),
        (
            Reply::Affiliations {
                node: None,
                affs: vec![(n(), jid.to_bare(), Affiliation::Owner)],
            },
            false,
        ),
        (
            Reply::Affiliations {
                node: Some(n()),
                affs: vec![(n(), jid.to_bare(), Affiliation::Publisher)],
            },
            true,
        ),
        (
            Reply::Config {
                node: Some(n()),
                config: NodeConfig::default(),
            },
            false,
        ),
    ];
    let mut checked = 0;
    for (reply, owner) in &replies {
        let e = reply_payload(reply, &service, *owner).unwrap();
        checked += check_required(&e, &format!("{reply:?}"));
        // Example 68: the subscription first, then its options.
        if let Reply::Subscription { .. } = reply {
            let names: Vec<&str> = e.children().map(|c| c.name()).collect();
            assert!(matches!(
                names[..],
                ["subscription"] | ["subscription", "options"]
            ));
        }
        // §6.5.4: the RSM <set/> after the <items/>.
        if let Reply::Items { .. } = reply {
            let names: Vec<&str> = e.children().map(|c| c.name()).collect();
            assert_eq!(names, ["items", "set"]);
        }
    }
    let events = [
        Event::Items {
            items: vec![item],
            with_payload: true,
            with_publisher: true,
        },
        Event::Retract {
            ids: vec!["i1".into()],
        },
        Event::Purge,
        Event::Delete { redirect: None },
        Event::Delete {
            redirect: Some("xmpp:pubsub.shakespeare.lit?;node=other".into()),
        },
        Event::Configuration {
            config: Some(NodeConfig::default()),
        },
        Event::Create,
        Event::Collection {
            child: "c".into(),
            associate: true,
        },
        Event::Collection {
            child: "c".into(),
            associate: false,
        },
        Event::Subscription {
            jid: jid.clone(),
            state: SubscriptionState::None,
            subid: Some("123-abc".into()),
            expiry: Some(1_000),
        },
    ];
    for event in events {
        let m = notification_message(
            &Notification {
                to: jid.clone(),
                node: n(),
                subids: vec!["a".into(), "b".into()],
                name_subids: false,
                kind: NotificationType::Headline,
                include_body: true,
                collections: Vec::new(),
                event: std::sync::Arc::new(event.clone()),
            },
            &service,
            "m1".into(),
        );
        let ev = m
            .payloads
            .iter()
            .find(|p| p.is("event", xmpp_parsers::ns::PUBSUB_EVENT))
            .unwrap();
        // The <event/> holds exactly one child (the schema's choice).
        assert_eq!(ev.children().count(), 1, "{event:?}");
        checked += check_required(ev, &format!("{event:?}"));
    }
    checked += check_required(
        &crate::errors::unsupported("persistent-items")
            .other
            .unwrap(),
        "unsupported",
    );
    assert!(checked >= 20, "only {checked} elements checked");
}
