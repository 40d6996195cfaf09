//! The XEP-0060 engine driven through `Service<MemStore>`; tests are named after the
//! sections and examples of XEP-0060 they check.

mod common;

use common::*;
use roost_nodes::policy::CreatePolicy;
use roost_nodes::*;

fn err(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Error {
    run(svc, actor, req.clone()).expect_err(&format!("{req:?} by {actor} should fail"))
}

// ------------------------------------------------------------------ §8.1 create

#[test]
fn s8_1_2_create_named_node_makes_creator_owner() {
    let mut svc = service();
    let out = ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some(NODE.into()),
            config: None,
        },
    );
    assert_eq!(out.reply, Reply::Created { node: NODE.into() });
    assert_eq!(all_affs(&mut svc), vec![(b(OWNER), Affiliation::Owner)]);
}

#[test]
fn s8_1_3_1_node_exists_conflict() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let e = err(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some(NODE.into()),
            config: None,
        },
    );
    assert_eq!(e, Error::NodeExists);
}

#[test]
fn s8_1_3_2_create_forbidden_by_policy() {
    let mut svc = service_with(Policy {
        create: CreatePolicy::AdminsOnly,
        ..policy()
    });
    let e = err(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some(NODE.into()),
            config: None,
        },
    );
    assert_eq!(e, Error::CreateForbidden);
    ok(
        &mut svc,
        ADMIN,
        Request::Create {
            node: Some(NODE.into()),
            config: None,
        },
    );
}

#[test]
fn s8_1_3_2_create_forbidden_for_foreign_domain() {
    let mut svc = service_with(Policy {
        create: CreatePolicy::Domains(vec!["denmark.lit".into()]),
        ..policy()
    });
    let e = err(
        &mut svc,
        "x@elsewhere.lit",
        Request::Create {
            node: None,
            config: None,
        },
    );
    assert_eq!(e, Error::CreateForbidden);
    ok(
        &mut svc,
        ALICE,
        Request::Create {
            node: None,
            config: None,
        },
    );
}

#[test]
fn s8_1_3_nodeid_required_for_empty_name() {
    let mut svc = service();
    let e = err(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some(String::new()),
            config: None,
        },
    );
    assert_eq!(e, Error::NodeIdRequired);
}

#[test]
fn s8_1_2_instant_nodes_get_unique_names() {
    let mut svc = service();
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..50 {
        match ok(
            &mut svc,
            OWNER,
            Request::Create {
                node: None,
                config: None,
            },
        )
        .reply
        {
            Reply::Created { node } => assert!(!node.is_empty() && names.insert(node)),
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(svc.node_names().count(), 50);
}

#[test]
fn s8_1_create_limit_max_nodes_per_jid() {
    let mut svc = service_with(Policy {
        max_nodes_per_jid: 2,
        ..policy()
    });
    ok(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some("a".into()),
            config: None,
        },
    );
    ok(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some("b".into()),
            config: None,
        },
    );
    let e = err(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some("c".into()),
            config: None,
        },
    );
    assert!(matches!(e, Error::LimitReached(_)));
    // Someone else is not affected, nor are admins.
    ok(
        &mut svc,
        BOB,
        Request::Create {
            node: Some("c".into()),
            config: None,
        },
    );
    for n in ["d", "e", "f"] {
        ok(
            &mut svc,
            ADMIN,
            Request::Create {
                node: Some(n.into()),
                config: None,
            },
        );
    }
}

#[test]
fn s8_1_3_create_and_configure() {
    let mut svc = service();
    let patch = NodeConfigPatch {
        title: Some("Princely Musings".into()),
        max_items: Some(MaxItems::Count(3)),
        ..whitelist()
    };
    create(&mut svc, patch);
    match ok(&mut svc, OWNER, Request::GetConfig { node: NODE.into() }).reply {
        Reply::Config { config, .. } => {
            assert_eq!(config.title, "Princely Musings");
            assert_eq!(config.access_model, AccessModel::Whitelist);
            assert_eq!(config.max_items, MaxItems::Count(3));
            assert!(config.persist_items, "unpatched fields keep the defaults");
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn s8_1_3_create_with_invalid_config_is_refused_and_leaves_nothing() {
    let mut svc = service();
    for (patch, want) in [
        (
            NodeConfigPatch {
                access_model: Some(AccessModel::Roster),
                ..Default::default()
            },
            Error::UnsupportedAccessModel,
        ),
        (
            NodeConfigPatch {
                max_items: Some(MaxItems::Count(10_001)),
                ..Default::default()
            },
            Error::MaxItemsExceeded,
        ),
    ] {
        let e = err(
            &mut svc,
            OWNER,
            Request::Create {
                node: Some(NODE.into()),
                config: Some(patch),
            },
        );
        assert_eq!(e, want);
    }
    let e = err(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some(NODE.into()),
            config: Some(NodeConfigPatch {
                max_payload_size: Some(u64::MAX),
                ..Default::default()
            }),
        },
    );
    assert!(matches!(e, Error::InvalidConfig(_)));
    assert_eq!(svc.node_names().count(), 0);
}

// ------------------------------------------------------------------ §8.2 configure

#[test]
fn s8_2_3_get_config_owner_only() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, ALICE, Affiliation::Publisher);
    assert_eq!(
        err(&mut svc, ALICE, Request::GetConfig { node: NODE.into() }),
        Error::Forbidden
    );
    assert_eq!(
        err(&mut svc, BOB, Request::GetConfig { node: NODE.into() }),
        Error::Forbidden
    );
    assert_eq!(
        err(
            &mut svc,
            OWNER,
            Request::GetConfig {
                node: "nope".into()
            }
        ),
        Error::NodeNotFound
    );
    // Service admins own every node.
    ok(&mut svc, ADMIN, Request::GetConfig { node: NODE.into() });
}

#[test]
fn s8_2_5_set_config_validates() {
    let mut svc = service();
    create(&mut svc, Default::default());
    for model in [AccessModel::Presence, AccessModel::Roster] {
        let e = err(
            &mut svc,
            OWNER,
            Request::SetConfig {
                node: NODE.into(),
                config: NodeConfigPatch {
                    access_model: Some(model),
                    ..Default::default()
                },
            },
        );
        assert_eq!(e, Error::UnsupportedAccessModel);
    }
    let e = err(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                max_items: Some(MaxItems::Count(1_000_000)),
                ..Default::default()
            },
        },
    );
    assert_eq!(e, Error::MaxItemsExceeded);
    let e = err(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                max_payload_size: Some(1 << 30),
                ..Default::default()
            },
        },
    );
    assert!(matches!(e, Error::InvalidConfig(_)));
    let e = err(
        &mut svc,
        ALICE,
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
    );
    assert_eq!(e, Error::Forbidden);
}

#[test]
fn s8_2_5_5_notify_config_sends_configuration_to_subscribers() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_config: Some(true),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    let out = ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                title: Some("New".into()),
                ..Default::default()
            },
        },
    );
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    match &*out.notifications[0].event {
        Event::Configuration { config: Some(c) } => assert_eq!(c.title, "New"),
        e => panic!("{e:?}"),
    }
    // Without payload delivery the notification carries no configuration.
    let out = ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                deliver_payloads: Some(false),
                ..Default::default()
            },
        },
    );
    assert_eq!(
        *out.notifications[0].event,
        Event::Configuration { config: None }
    );
    // notify_config off: nobody hears.
    let out = ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                notify_config: Some(false),
                ..Default::default()
            },
        },
    );
    assert!(out.notifications.is_empty());
}

#[test]
fn s8_2_5_switch_to_whitelist_drops_unlisted_subscribers() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, ALICE, Affiliation::Member);
    subscribe(&mut svc, ALICE);
    subscribe(&mut svc, BOB);
    let out = ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
    );
    assert_eq!(recipients(&out), vec![BOB.to_string()]);
    assert!(matches!(
        *out.notifications[0].event,
        Event::Subscription {
            state: SubscriptionState::None,
            ..
        }
    ));
    let subs = all_subs(&mut svc);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].jid, j(ALICE));
}

#[test]
fn s8_3_default_config_is_the_policy_default() {
    let mut svc = service();
    let out = ok(
        &mut svc,
        ALICE,
        Request::DefaultConfig {
            node_type: NodeType::Leaf,
        },
    );
    assert_eq!(
        out.reply,
        Reply::Config {
            node: None,
            config: policy().default_config
        }
    );
}

// ------------------------------------------------------------------ §8.4 delete

#[test]
fn s8_4_2_delete_notifies_subscribers_with_redirect() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_delete: Some(true),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    let out = ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: NODE.into(),
            redirect: Some("xmpp:other?;node=x".into()),
        },
    );
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    assert_eq!(
        *out.notifications[0].event,
        Event::Delete {
            redirect: Some("xmpp:other?;node=x".into())
        }
    );
}

#[test]
fn s8_4_delete_removes_everything() {
    let mut svc = service();
    create(&mut svc, Default::default());
    publish(&mut svc, OWNER, "i1", "<x/>");
    subscribe(&mut svc, ALICE);
    set_aff(&mut svc, BOB, Affiliation::Publisher);
    let out = ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: NODE.into(),
            redirect: None,
        },
    );
    assert!(
        out.notifications.is_empty(),
        "notify_delete is off by default"
    );
    assert_eq!(svc.node_names().count(), 0);
    assert_eq!(
        err(&mut svc, OWNER, Request::GetConfig { node: NODE.into() }),
        Error::NodeNotFound
    );
    match ok(&mut svc, ALICE, Request::Subscriptions { node: None }).reply {
        Reply::Subscriptions { subs, .. } => assert!(subs.is_empty()),
        r => panic!("{r:?}"),
    }
    match ok(&mut svc, BOB, Request::Affiliations { node: None }).reply {
        Reply::Affiliations { affs, .. } => assert!(affs.is_empty()),
        r => panic!("{r:?}"),
    }
    // The same name again is a new node that never sees the old items.
    create(&mut svc, Default::default());
    assert!(item_ids(&mut svc).is_empty());
    assert!(all_subs(&mut svc).is_empty());
}

#[test]
fn s8_4_delete_forbidden_for_publisher() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, ALICE, Affiliation::Publisher);
    let e = err(
        &mut svc,
        ALICE,
        Request::Delete {
            node: NODE.into(),
            redirect: None,
        },
    );
    assert_eq!(e, Error::Forbidden);
}

// ------------------------------------------------------------------ §8.5 purge

#[test]
fn s8_5_purge_removes_items_and_notifies_when_notify_retract() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_retract: Some(true),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "a", "<x/>");
    publish(&mut svc, OWNER, "b", "<x/>");
    subscribe(&mut svc, ALICE);
    set_aff(&mut svc, BOB, Affiliation::Publisher);
    let out = ok(&mut svc, BOB, Request::Purge { node: NODE.into() });
    assert!(item_ids(&mut svc).is_empty());
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    assert_eq!(*out.notifications[0].event, Event::Purge);
    // Publishing after a purge still works and counts from scratch.
    publish(&mut svc, OWNER, "c", "<x/>");
    assert_eq!(item_ids(&mut svc), vec!["c"]);
}

#[test]
fn s8_5_purge_silent_without_notify_retract() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "a", "<x/>");
    let out = ok(&mut svc, OWNER, Request::Purge { node: NODE.into() });
    assert!(out.notifications.is_empty());
}

#[test]
fn s8_5_3_purge_errors() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            persist_items: Some(false),
            ..Default::default()
        },
    );
    assert_eq!(
        err(&mut svc, OWNER, Request::Purge { node: NODE.into() }),
        Error::NotPersistent
    );
    set_aff(&mut svc, ALICE, Affiliation::PublishOnly);
    assert_eq!(
        err(&mut svc, ALICE, Request::Purge { node: NODE.into() }),
        Error::Forbidden
    );
    assert_eq!(
        err(&mut svc, BOB, Request::Purge { node: NODE.into() }),
        Error::Forbidden
    );
    assert_eq!(
        err(&mut svc, OWNER, Request::Purge { node: "x".into() }),
        Error::NodeNotFound
    );
}
