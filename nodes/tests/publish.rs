//! §7 publisher use cases, item retrieval (§6.5) and the notifications they cause.

mod common;

use common::*;
use roost_nodes::*;

fn err(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Error {
    run(svc, actor, req.clone()).expect_err(&format!("{req:?} by {actor} should fail"))
}

fn publish_opts(patch: NodeConfigPatch) -> Request {
    Request::Publish {
        node: NODE.into(),
        item: Some(NewItem {
            id: Some("i".into()),
            payload: Some("<x/>".into()),
        }),
        options: Some(patch),
    }
}

#[test]
fn s7_1_2_publish_with_id_and_retrieve() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let out = publish(
        &mut svc,
        OWNER,
        "ae890ac52d0df67ed7cfdf51b644e901",
        "<entry/>",
    );
    assert_eq!(
        out.reply,
        Reply::Published {
            node: NODE.into(),
            id: "ae890ac52d0df67ed7cfdf51b644e901".into()
        }
    );
    let got = items(&mut svc, BOB);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, "<entry/>");
    assert_eq!(got[0].publisher, j(OWNER));
    assert_eq!(got[0].published, 1_000);
}

#[test]
fn s7_1_2_publish_without_id_generates_unique_ids() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            max_items: Some(MaxItems::Max),
            ..Default::default()
        },
    );
    let mut ids = Vec::new();
    for _ in 0..30 {
        match publish(&mut svc, OWNER, "", "<x/>").reply {
            Reply::Published { id, .. } => ids.push(id),
            r => panic!("{r:?}"),
        }
    }
    // Each greater than the one before: unique, and a node's id index (sorted by id) takes
    // every generated id at its end, where the store finds its place without a search.
    assert!(!ids[0].is_empty());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(item_ids(&mut svc).len(), 30);
}

#[test]
fn s7_1_2_same_id_overwrites() {
    let mut svc = service();
    create(&mut svc, Default::default());
    publish(&mut svc, OWNER, "a", "<one/>");
    publish(&mut svc, OWNER, "b", "<x/>");
    publish(&mut svc, OWNER, "a", "<two/>");
    let got = items(&mut svc, OWNER);
    assert_eq!(
        got.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec!["b", "a"]
    );
    assert_eq!(got[1].payload, "<two/>");
    match ok(&mut svc, OWNER, Request::NodeMetadata { node: NODE.into() }).reply {
        Reply::Metadata(m) => assert_eq!(m.node, NODE),
        r => panic!("{r:?}"),
    }
}

#[test]
fn s7_1_publish_trims_oldest_beyond_max_items() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            max_items: Some(MaxItems::Count(2)),
            ..Default::default()
        },
    );
    for id in ["a", "b", "c", "d"] {
        publish(&mut svc, OWNER, id, "<x/>");
    }
    assert_eq!(item_ids(&mut svc), vec!["c", "d"]);
    // Overwriting the oldest keeps the count right and does not drop the newer one.
    publish(&mut svc, OWNER, "c", "<y/>");
    assert_eq!(item_ids(&mut svc), vec!["d", "c"]);
    // Lowering max_items trims at the next publish.
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                max_items: Some(MaxItems::Count(1)),
                ..Default::default()
            },
        },
    );
    publish(&mut svc, OWNER, "e", "<x/>");
    assert_eq!(item_ids(&mut svc), vec!["e"]);
}

#[test]
fn s7_1_max_items_max_means_policy_cap() {
    let mut svc = service_with(Policy {
        max_items_per_node: 3,
        ..policy()
    });
    create(
        &mut svc,
        NodeConfigPatch {
            max_items: Some(MaxItems::Max),
            ..Default::default()
        },
    );
    for id in ["a", "b", "c", "d", "e"] {
        publish(&mut svc, OWNER, id, "<x/>");
    }
    assert_eq!(item_ids(&mut svc), vec!["c", "d", "e"]);
}

#[test]
fn s7_1_transient_node_stores_nothing() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            persist_items: Some(false),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    assert_eq!(out.notifications.len(), 1);
    assert!(item_ids(&mut svc).is_empty());
}

#[test]
fn s7_1_3_1_publish_forbidden_for_non_publishers() {
    let mut svc = service();
    create(&mut svc, Default::default());
    for aff in [Affiliation::Member, Affiliation::None] {
        set_aff(&mut svc, ALICE, aff);
        assert_eq!(
            err(&mut svc, ALICE, publish_req("a", "<x/>")),
            Error::PublishForbidden
        );
    }
    set_aff(&mut svc, ALICE, Affiliation::Outcast);
    assert_eq!(
        err(&mut svc, ALICE, publish_req("a", "<x/>")),
        Error::Outcast
    );
    for aff in [Affiliation::Publisher, Affiliation::PublishOnly] {
        set_aff(&mut svc, ALICE, aff);
        publish(&mut svc, ALICE, "a", "<x/>");
    }
    publish(&mut svc, ADMIN, "b", "<x/>");
}

#[test]
fn s7_1_publish_model_subscribers_and_open() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            publish_model: Some(PublishModel::Subscribers),
            ..Default::default()
        },
    );
    assert_eq!(
        err(&mut svc, ALICE, publish_req("a", "<x/>")),
        Error::PublishForbidden
    );
    subscribe(&mut svc, ALICE);
    publish(&mut svc, ALICE, "a", "<x/>");
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                publish_model: Some(PublishModel::Open),
                ..Default::default()
            },
        },
    );
    publish(&mut svc, BOB, "b", "<x/>");
    set_aff(&mut svc, BOB, Affiliation::Outcast);
    assert_eq!(err(&mut svc, BOB, publish_req("c", "<x/>")), Error::Outcast);
}

#[test]
fn s7_1_3_3_node_not_found() {
    let mut svc = service();
    assert_eq!(
        err(&mut svc, OWNER, publish_req("a", "<x/>")),
        Error::NodeNotFound
    );
}

#[test]
fn s7_1_3_4_item_required_on_persistent_node() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let e = err(
        &mut svc,
        OWNER,
        Request::Publish {
            node: NODE.into(),
            item: None,
            options: None,
        },
    );
    assert_eq!(e, Error::ItemRequired);
}

#[test]
fn s7_1_3_5_payload_required() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let req = Request::Publish {
        node: NODE.into(),
        item: Some(NewItem {
            id: Some("a".into()),
            payload: None,
        }),
        options: None,
    };
    assert_eq!(err(&mut svc, OWNER, req), Error::PayloadRequired);
}

#[test]
fn s7_1_3_6_item_forbidden_on_transient_notification_node() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            persist_items: Some(false),
            deliver_payloads: Some(false),
            ..Default::default()
        },
    );
    assert_eq!(
        err(&mut svc, OWNER, publish_req("a", "<x/>")),
        Error::ItemForbidden
    );
    // Notification-only publish is fine there.
    ok(
        &mut svc,
        OWNER,
        Request::Publish {
            node: NODE.into(),
            item: None,
            options: None,
        },
    );
}

#[test]
fn s7_1_3_payload_too_big() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            max_payload_size: Some(10),
            ..Default::default()
        },
    );
    assert_eq!(
        err(&mut svc, OWNER, publish_req("a", "<xxxxxxxxxxx/>")),
        Error::PayloadTooBig { limit: 10 }
    );
    publish(&mut svc, OWNER, "a", "<x/>");
}

#[test]
fn s7_1_5_precondition_not_met() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let e = err(&mut svc, OWNER, publish_opts(whitelist()));
    assert_eq!(
        e,
        Error::PreconditionNotMet {
            field: "pubsub#access_model".into()
        }
    );
    // Matching preconditions publish.
    ok(
        &mut svc,
        OWNER,
        publish_opts(NodeConfigPatch {
            access_model: Some(AccessModel::Open),
            persist_items: Some(true),
            ..Default::default()
        }),
    );
    assert_eq!(item_ids(&mut svc), vec!["i"]);
}

// ------------------------------------------------------------------ notifications §7.1.2

#[test]
fn s7_1_2_notifications_go_to_subscribed_jids_only() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe(&mut svc, ALICE);
    subscribe(&mut svc, BOB);
    let out = publish(&mut svc, OWNER, "a", "<entry/>");
    assert_eq!(recipients(&out), vec![ALICE.to_string(), BOB.to_string()]);
    for n in &out.notifications {
        assert_eq!(n.node, NODE);
        assert_eq!(n.subids.len(), 1);
        assert_eq!(n.kind, NotificationType::Headline);
        match &*n.event {
            Event::Items {
                items,
                with_payload: true,
                with_publisher: false,
            } => {
                assert_eq!(items.len(), 1);
                assert_eq!(items[0].payload, "<entry/>");
            }
            e => panic!("{e:?}"),
        }
    }
}

#[test]
fn s6_3_deliver_false_stops_delivery() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let sub = subscribe(&mut svc, ALICE);
    subscribe(&mut svc, BOB);
    ok(
        &mut svc,
        ALICE,
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: Some(sub.subid),
            options: SubOptionsPatch {
                deliver: Some(false),
                ..Default::default()
            },
        },
    );
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    assert_eq!(recipients(&out), vec![BOB.to_string()]);
}

/// `pubsub#deliver=false` pauses every broadcast to the subscription, not only items: the
/// retract, purge, configuration and delete events go to the other subscribers only. The
/// notice about the subscription itself (§8.8.4) still reaches it.
#[test]
fn s6_3_deliver_false_pauses_retract_purge_config_and_delete_events() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_retract: Some(true),
            notify_config: Some(true),
            notify_delete: Some(true),
            ..Default::default()
        },
    );
    let paused = subscribe(&mut svc, ALICE);
    subscribe(&mut svc, BOB);
    ok(
        &mut svc,
        ALICE,
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: Some(paused.subid.clone()),
            options: SubOptionsPatch {
                deliver: Some(false),
                ..Default::default()
            },
        },
    );
    publish(&mut svc, OWNER, "a", "<x/>");
    let bob_only = vec![BOB.to_string()];
    let retract = Request::Retract {
        node: NODE.into(),
        ids: vec!["a".into()],
        notify: true,
    };
    let out = ok(&mut svc, OWNER, retract);
    assert!(matches!(
        &*out.notifications[0].event,
        Event::Retract { .. }
    ));
    assert_eq!(recipients(&out), bob_only, "retract");
    let out = ok(&mut svc, OWNER, Request::Purge { node: NODE.into() });
    assert!(matches!(&*out.notifications[0].event, Event::Purge));
    assert_eq!(recipients(&out), bob_only, "purge");
    let config = Request::SetConfig {
        node: NODE.into(),
        config: NodeConfigPatch {
            title: Some("renamed".into()),
            ..Default::default()
        },
    };
    let out = ok(&mut svc, OWNER, config);
    assert!(matches!(
        &*out.notifications[0].event,
        Event::Configuration { .. }
    ));
    assert_eq!(recipients(&out), bob_only, "configuration");
    // About the subscription itself: told, delivery paused or not.
    let expire = Request::SetSubscriptions {
        node: NODE.into(),
        changes: vec![sub_change(
            ALICE,
            Some(&paused.subid),
            SubscriptionState::None,
        )],
    };
    let out = ok(&mut svc, OWNER, expire);
    assert_eq!(recipients(&out), vec![ALICE.to_string()], "§8.8.4");
    let paused = subscribe(&mut svc, ALICE);
    ok(
        &mut svc,
        ALICE,
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: Some(paused.subid),
            options: SubOptionsPatch {
                deliver: Some(false),
                ..Default::default()
            },
        },
    );
    let delete = Request::Delete {
        node: NODE.into(),
        redirect: None,
    };
    let out = ok(&mut svc, OWNER, delete);
    assert!(matches!(&*out.notifications[0].event, Event::Delete { .. }));
    assert_eq!(recipients(&out), bob_only, "delete");
}

#[test]
fn s7_1_2_deliver_payloads_false_strips_payloads() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            deliver_payloads: Some(false),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    let out = publish(&mut svc, OWNER, "a", "<secret/>");
    match &*out.notifications[0].event {
        Event::Items {
            items,
            with_payload: false,
            ..
        } => {
            assert_eq!(items[0].id, "a");
            assert!(items[0].payload.is_empty());
        }
        e => panic!("{e:?}"),
    }
    // The stored item keeps its payload.
    assert_eq!(items(&mut svc, OWNER)[0].payload, "<secret/>");
}

#[test]
fn s7_1_deliver_notifications_false_sends_nothing() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            deliver_notifications: Some(false),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    assert!(publish(&mut svc, OWNER, "a", "<x/>")
        .notifications
        .is_empty());
}

#[test]
fn s12_5_one_notification_per_jid_with_all_subids() {
    // Two subscriptions of one JID can only come from storage (subscribe is idempotent),
    // which also exercises loading a snapshot.
    let mut store = MemStore::new();
    let rec = NodeRecord {
        name: NODE.into(),
        uid: 1,
        creator: b(OWNER),
        created: 0,
        config: NodeConfig::default(),
    };
    let sub = |subid: &str, jid: &str| Change::PutSubscription {
        node: NODE.into(),
        sub: Subscription {
            jid: j(jid),
            subid: subid.into(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        },
    };
    store
        .commit(&ChangeSet(vec![
            Change::PutNode(rec),
            Change::PutAffiliation {
                node: NODE.into(),
                jid: b(OWNER),
                affiliation: Affiliation::Owner,
            },
            sub("s1", ALICE),
            sub("s2", ALICE),
            sub("s3", "alice@denmark.lit"),
            sub("s4", BOB),
        ]))
        .unwrap();
    let mut svc = Service::open(store, policy()).unwrap();
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    assert_eq!(
        recipients(&out),
        vec![
            "alice@denmark.lit".to_string(),
            ALICE.to_string(),
            BOB.to_string()
        ]
    );
    let alice = out.notifications.iter().find(|n| n.to == j(ALICE)).unwrap();
    assert_eq!(alice.subids, vec!["s1".to_string(), "s2".to_string()]);
    // Both subscriptions count and unsubscribing needs a subid.
    let e = err(
        &mut svc,
        ALICE,
        Request::Unsubscribe {
            node: NODE.into(),
            jid: j(ALICE),
            subid: None,
        },
    );
    assert_eq!(e, Error::SubIdRequired);
    match ok(&mut svc, OWNER, Request::NodeMetadata { node: NODE.into() }).reply {
        Reply::Metadata(m) => assert_eq!(m.num_subscribers, 4),
        r => panic!("{r:?}"),
    }
}

#[test]
fn s7_1_2_itemreply_notification_type_and_include_body() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            itemreply: Some(ItemReply::Publisher),
            notification_type: Some(NotificationType::Normal),
            ..Default::default()
        },
    );
    ok(
        &mut svc,
        ALICE,
        Request::Subscribe {
            node: NODE.into(),
            jid: j(ALICE),
            options: Some(SubOptionsPatch {
                include_body: Some(true),
                ..Default::default()
            }),
        },
    );
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    let n = &out.notifications[0];
    assert_eq!(n.kind, NotificationType::Normal);
    assert!(n.include_body);
    // §7.1.2.3: the publisher goes with the item (by its bare JID, Item::shown_publisher),
    // in notifications and in every retrieval.
    match &*n.event {
        Event::Items {
            items,
            with_publisher: true,
            ..
        } => assert_eq!(items[0].shown_publisher(), Jid::from(b(OWNER))),
        e => panic!("{e:?}"),
    }
    match ok(&mut svc, ALICE, items_req(None, &[])).reply {
        Reply::Items {
            items,
            with_publisher: true,
            ..
        } => assert_eq!(items[0].shown_publisher(), Jid::from(b(OWNER))),
        r => panic!("{r:?}"),
    }
}

// ------------------------------------------------------------------ §7.2 retract

fn retract(ids: &[&str], notify: bool) -> Request {
    Request::Retract {
        node: NODE.into(),
        ids: ids.iter().map(|s| s.to_string()).collect(),
        notify,
    }
}

#[test]
fn s7_2_1_retract_and_notify() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "a", "<x/>");
    publish(&mut svc, OWNER, "b", "<x/>");
    let out = ok(&mut svc, OWNER, retract(&["a"], true));
    assert_eq!(item_ids(&mut svc), vec!["b"]);
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    assert_eq!(
        *out.notifications[0].event,
        Event::Retract {
            ids: vec!["a".into()]
        }
    );
    // notify=false and notify_retract off: silent.
    let out = ok(&mut svc, OWNER, retract(&["b"], false));
    assert!(out.notifications.is_empty());
    assert!(item_ids(&mut svc).is_empty());
}

#[test]
fn s7_2_2_notify_retract_config_notifies_without_attribute() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_retract: Some(true),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "a", "<x/>");
    assert_eq!(
        ok(&mut svc, OWNER, retract(&["a"], false))
            .notifications
            .len(),
        1
    );
}

#[test]
fn s7_2_3_retract_errors() {
    let mut svc = service();
    create(&mut svc, Default::default());
    publish(&mut svc, OWNER, "a", "<x/>");
    assert_eq!(
        err(&mut svc, OWNER, retract(&[], false)),
        Error::ItemIdRequired
    );
    assert_eq!(
        err(&mut svc, OWNER, retract(&["zz"], false)),
        Error::ItemNotFound
    );
    // One unknown id fails the whole request.
    assert_eq!(
        err(&mut svc, OWNER, retract(&["a", "zz"], false)),
        Error::ItemNotFound
    );
    assert_eq!(item_ids(&mut svc), vec!["a"]);
    assert_eq!(err(&mut svc, BOB, retract(&["a"], false)), Error::Forbidden);
}

#[test]
fn s4_1_publish_only_retracts_own_items_publisher_any() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, ALICE, Affiliation::PublishOnly);
    set_aff(&mut svc, BOB, Affiliation::Publisher);
    publish(&mut svc, OWNER, "owner-item", "<x/>");
    publish(&mut svc, ALICE, "alice-item", "<x/>");
    publish(&mut svc, ALICE, "alice-item2", "<x/>");
    assert_eq!(
        err(&mut svc, ALICE, retract(&["owner-item"], false)),
        Error::Forbidden
    );
    ok(&mut svc, ALICE, retract(&["alice-item"], false));
    ok(
        &mut svc,
        BOB,
        retract(&["owner-item", "alice-item2"], false),
    );
    assert!(item_ids(&mut svc).is_empty());
}

// ------------------------------------------------------------------ §6.5 items

fn items_req(max: Option<u64>, ids: &[&str]) -> Request {
    Request::Items {
        node: NODE.into(),
        max_items: max,
        ids: ids.iter().map(|s| s.to_string()).collect(),
        subid: None,
    }
}

fn ids_of(out: Outcome) -> Vec<String> {
    match out.reply {
        Reply::Items { items, .. } => items.into_iter().map(|i| i.id).collect(),
        r => panic!("{r:?}"),
    }
}

#[test]
fn s6_5_7_max_items_returns_most_recent() {
    let mut svc = service();
    create(&mut svc, Default::default());
    for id in ["a", "b", "c"] {
        publish(&mut svc, OWNER, id, "<x/>");
    }
    assert_eq!(
        ids_of(ok(&mut svc, ALICE, items_req(Some(2), &[]))),
        vec!["b", "c"]
    );
    assert_eq!(
        ids_of(ok(&mut svc, ALICE, items_req(None, &[]))),
        vec!["a", "b", "c"]
    );
}

#[test]
fn s6_5_8_specific_items_skip_unknown_ids() {
    let mut svc = service();
    create(&mut svc, Default::default());
    for id in ["a", "b", "c"] {
        publish(&mut svc, OWNER, id, "<x/>");
    }
    assert_eq!(
        ids_of(ok(&mut svc, ALICE, items_req(None, &["c", "zz", "a"]))),
        vec!["a", "c"]
    );
    assert!(ids_of(ok(&mut svc, ALICE, items_req(None, &["zz"]))).is_empty());
}

#[test]
fn s6_5_9_items_errors() {
    let mut svc = service();
    create(&mut svc, whitelist());
    assert_eq!(
        err(&mut svc, ALICE, items_req(None, &[])),
        Error::ClosedNode
    );
    set_aff(&mut svc, ALICE, Affiliation::PublishOnly);
    assert_eq!(err(&mut svc, ALICE, items_req(None, &[])), Error::Forbidden);
    set_aff(&mut svc, ALICE, Affiliation::Outcast);
    assert_eq!(err(&mut svc, ALICE, items_req(None, &[])), Error::Outcast);
    set_aff(&mut svc, ALICE, Affiliation::Member);
    ok(&mut svc, ALICE, items_req(None, &[]));
    let bad = Request::Items {
        node: NODE.into(),
        max_items: None,
        ids: vec![],
        subid: Some("x".into()),
    };
    assert_eq!(err(&mut svc, ALICE, bad), Error::InvalidSubId);
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::Items {
                node: "zz".into(),
                max_items: None,
                ids: vec![],
                subid: None
            }
        ),
        Error::NodeNotFound
    );
}
