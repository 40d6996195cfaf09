//! §6 subscriber use cases, §5 discovery, §8.8/§8.9 subscription and affiliation management.

mod common;

use common::*;
use roost_nodes::*;

fn err(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Error {
    run(svc, actor, req.clone()).expect_err(&format!("{req:?} by {actor} should fail"))
}

fn unsub(jid: &str, subid: Option<&str>) -> Request {
    Request::Unsubscribe {
        node: NODE.into(),
        jid: j(jid),
        subid: subid.map(str::to_owned),
    }
}

#[test]
fn s6_1_2_subscribe_open_node() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let sub = subscribe(&mut svc, ALICE);
    assert_eq!(sub.jid, j(ALICE));
    assert_eq!(sub.state, SubscriptionState::Subscribed);
    assert!(!sub.subid.is_empty());
    assert_eq!(all_subs(&mut svc), vec![sub]);
}

#[test]
fn s6_1_3_1_invalid_jid() {
    let mut svc = service();
    create(&mut svc, Default::default());
    assert_eq!(err(&mut svc, BOB, subscribe_req(ALICE)), Error::InvalidJid);
    // Another resource of the same bare JID is fine; so are admins acting for others.
    ok(&mut svc, "alice@denmark.lit/laptop", subscribe_req(ALICE));
    ok(&mut svc, ADMIN, subscribe_req(BOB));
}

#[test]
fn s6_1_3_4_whitelist_closed_node() {
    let mut svc = service();
    create(&mut svc, whitelist());
    assert_eq!(
        err(&mut svc, ALICE, subscribe_req(ALICE)),
        Error::ClosedNode
    );
    set_aff(&mut svc, ALICE, Affiliation::Member);
    subscribe(&mut svc, ALICE);
}

#[test]
fn s6_1_3_8_outcast_blocked() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, ALICE, Affiliation::Outcast);
    assert_eq!(err(&mut svc, ALICE, subscribe_req(ALICE)), Error::Outcast);
}

#[test]
fn s6_1_3_12_node_not_found() {
    let mut svc = service();
    assert_eq!(
        err(&mut svc, ALICE, subscribe_req(ALICE)),
        Error::NodeNotFound
    );
}

#[test]
fn s6_1_subscribe_is_idempotent() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let a = subscribe(&mut svc, ALICE);
    let b2 = subscribe(&mut svc, ALICE);
    assert_eq!(a, b2);
    assert_eq!(all_subs(&mut svc).len(), 1);
    // A full and a bare JID are distinct subscribers.
    subscribe(&mut svc, "alice@denmark.lit");
    assert_eq!(all_subs(&mut svc).len(), 2);
}

#[test]
fn s6_1_subscription_limits() {
    let mut svc = service_with(Policy {
        max_subscriptions_per_node: 2,
        max_subscriptions_per_jid: 1,
        ..policy()
    });
    create(&mut svc, Default::default());
    ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("other".into()),
            config: None,
        },
    );
    subscribe(&mut svc, ALICE);
    let e = err(
        &mut svc,
        ALICE,
        Request::Subscribe {
            node: "other".into(),
            jid: j(ALICE),
            options: None,
        },
    );
    assert!(matches!(e, Error::LimitReached(_)));
    subscribe(&mut svc, BOB);
    assert!(matches!(
        err(&mut svc, OWNER, subscribe_req(OWNER)),
        Error::LimitReached(_)
    ));
    // Unsubscribing frees a place.
    ok(&mut svc, BOB, unsub(BOB, None));
    subscribe(&mut svc, OWNER);
}

#[test]
fn s6_3_7_subscribe_and_configure() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let req = Request::Subscribe {
        node: NODE.into(),
        jid: j(ALICE),
        options: Some(SubOptionsPatch {
            deliver: Some(false),
            show_values: Some(vec![Show::Chat]),
            ..Default::default()
        }),
    };
    match ok(&mut svc, ALICE, req).reply {
        Reply::Subscription { sub, .. } => {
            assert!(!sub.options.deliver);
            assert_eq!(sub.options.show_values, vec![Show::Chat]);
        }
        r => panic!("{r:?}"),
    }
    let bad = Request::Subscribe {
        node: NODE.into(),
        jid: j(BOB),
        options: Some(SubOptionsPatch {
            expire: Some(Some(5)),
            ..Default::default()
        }),
    };
    assert!(matches!(err(&mut svc, BOB, bad), Error::InvalidOptions(_)));
}

#[test]
fn s8_1_notify_sub_tells_owners() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_sub: Some(true),
            ..Default::default()
        },
    );
    let out = ok(&mut svc, ALICE, subscribe_req(ALICE));
    assert_eq!(recipients(&out), vec!["hamlet@denmark.lit".to_string()]);
    assert!(matches!(
        &*out.notifications[0].event,
        Event::Subscription { jid, state: SubscriptionState::Subscribed, .. } if *jid == j(ALICE)
    ));
    let out = ok(&mut svc, ALICE, unsub(ALICE, None));
    assert!(matches!(
        &*out.notifications[0].event,
        Event::Subscription {
            state: SubscriptionState::None,
            ..
        }
    ));
}

#[test]
fn s6_1_7_send_last_published_item_on_sub() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            send_last_published_item: Some(SendLastPublished::OnSub),
            ..Default::default()
        },
    );
    // Nothing published yet: nothing sent.
    assert!(ok(&mut svc, BOB, subscribe_req(BOB))
        .notifications
        .is_empty());
    publish(&mut svc, OWNER, "a", "<one/>");
    publish(&mut svc, OWNER, "b", "<two/>");
    let out = ok(&mut svc, ALICE, subscribe_req(ALICE));
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    match &*out.notifications[0].event {
        Event::Items { items, .. } => {
            assert_eq!(items.len(), 1);
            assert_eq!(items[0].id, "b");
        }
        e => panic!("{e:?}"),
    }
}

// ------------------------------------------------------------------ §6.2 unsubscribe

#[test]
fn s6_2_unsubscribe_and_errors() {
    let mut svc = service();
    create(&mut svc, Default::default());
    assert_eq!(
        err(&mut svc, ALICE, unsub(ALICE, None)),
        Error::NotSubscribed
    );
    let sub = subscribe(&mut svc, ALICE);
    assert_eq!(err(&mut svc, BOB, unsub(ALICE, None)), Error::InvalidJid);
    assert_eq!(
        err(&mut svc, ALICE, unsub(ALICE, Some("nope"))),
        Error::InvalidSubId
    );
    assert_eq!(
        err(
            &mut svc,
            OWNER,
            Request::Unsubscribe {
                node: "x".into(),
                jid: j(OWNER),
                subid: None
            }
        ),
        Error::NodeNotFound
    );
    ok(&mut svc, ALICE, unsub(ALICE, Some(&sub.subid)));
    assert!(all_subs(&mut svc).is_empty());
    assert_eq!(
        err(&mut svc, ALICE, unsub(ALICE, None)),
        Error::NotSubscribed
    );
}

// ------------------------------------------------------------------ §6.3/§6.4 options

#[test]
fn s6_3_options_get_set_and_errors() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let get = |subid: Option<&str>| Request::GetOptions {
        node: NODE.into(),
        jid: j(ALICE),
        subid: subid.map(str::to_owned),
    };
    assert_eq!(err(&mut svc, ALICE, get(None)), Error::NotSubscribed);
    let sub = subscribe(&mut svc, ALICE);
    assert_eq!(err(&mut svc, BOB, get(None)), Error::InvalidJid);
    assert_eq!(err(&mut svc, ALICE, get(Some("x"))), Error::InvalidSubId);
    ok(
        &mut svc,
        ALICE,
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: None,
            options: SubOptionsPatch {
                digest: Some(true),
                digest_frequency: Some(1000),
                ..Default::default()
            },
        },
    );
    match ok(&mut svc, ALICE, get(Some(&sub.subid))).reply {
        Reply::Options { options, subid, .. } => {
            assert!(options.digest);
            assert_eq!(options.digest_frequency, 1000);
            assert_eq!(subid, Some(sub.subid.clone()));
        }
        r => panic!("{r:?}"),
    }
    let bad = Request::SetOptions {
        node: NODE.into(),
        jid: j(ALICE),
        subid: None,
        options: SubOptionsPatch {
            digest_frequency: Some(0),
            ..Default::default()
        },
    };
    assert!(matches!(
        err(&mut svc, ALICE, bad),
        Error::InvalidOptions(_)
    ));
}

#[test]
fn s6_4_default_options() {
    let mut svc = service();
    let out = ok(&mut svc, ALICE, Request::DefaultOptions { node: None });
    assert_eq!(
        out.reply,
        Reply::Options {
            collection: true,
            node: None,
            jid: None,
            subid: None,
            options: SubOptions::default()
        }
    );
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::DefaultOptions {
                node: Some("x".into())
            }
        ),
        Error::NodeNotFound
    );
}

// ------------------------------------------------------------------ §5 discovery

#[test]
fn s5_2_disco_nodes_hides_whitelist_nodes_from_strangers() {
    let mut svc = service();
    create(&mut svc, whitelist());
    ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("open".into()),
            config: None,
        },
    );
    let names =
        |svc: &mut Service<MemStore>, who: &str| match ok(svc, who, Request::DiscoNodes).reply {
            Reply::Nodes { nodes: v, .. } => v.into_iter().map(|n| n.node).collect::<Vec<_>>(),
            r => panic!("{r:?}"),
        };
    assert_eq!(names(&mut svc, ALICE), vec!["open".to_string()]);
    assert_eq!(names(&mut svc, OWNER).len(), 2);
    assert_eq!(names(&mut svc, ADMIN).len(), 2);
    set_aff(&mut svc, ALICE, Affiliation::Member);
    assert_eq!(names(&mut svc, ALICE).len(), 2);
}

#[test]
fn s5_4_node_metadata() {
    let mut svc = service();
    create(&mut svc, Default::default());
    set_aff(&mut svc, BOB, Affiliation::Publisher);
    subscribe(&mut svc, ALICE);
    match ok(&mut svc, ALICE, Request::NodeMetadata { node: NODE.into() }).reply {
        Reply::Metadata(m) => {
            assert_eq!(m.owners, vec![b(OWNER)]);
            assert_eq!(m.publishers, vec![b(BOB)]);
            assert_eq!(m.num_subscribers, 1);
            assert_eq!(m.creator, b(OWNER));
        }
        r => panic!("{r:?}"),
    }
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
    );
    assert_eq!(
        err(
            &mut svc,
            "eve@x.lit",
            Request::NodeMetadata { node: NODE.into() }
        ),
        Error::ClosedNode
    );
    assert_eq!(
        err(&mut svc, ALICE, Request::NodeMetadata { node: "zz".into() }),
        Error::NodeNotFound
    );
}

#[test]
fn s5_5_disco_items_lists_item_ids() {
    let mut svc = service();
    create(&mut svc, Default::default());
    publish(&mut svc, OWNER, "a", "<x/>");
    publish(&mut svc, OWNER, "b", "<x/>");
    assert_eq!(
        ok(&mut svc, ALICE, Request::DiscoItems { node: NODE.into() }).reply,
        Reply::ItemIds {
            node: NODE.into(),
            ids: vec!["a".into(), "b".into()],
            page: None,
        }
    );
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
    );
    assert_eq!(
        err(&mut svc, ALICE, Request::DiscoItems { node: NODE.into() }),
        Error::ClosedNode
    );
}

#[test]
fn s5_6_s5_7_own_subscriptions_and_affiliations() {
    let mut svc = service();
    create(&mut svc, Default::default());
    ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("other".into()),
            config: None,
        },
    );
    subscribe(&mut svc, ALICE);
    ok(
        &mut svc,
        ALICE,
        Request::Subscribe {
            node: "other".into(),
            jid: j("alice@denmark.lit"),
            options: None,
        },
    );
    subscribe(&mut svc, BOB);
    match ok(&mut svc, ALICE, Request::Subscriptions { node: None }).reply {
        Reply::Subscriptions { subs, .. } => {
            let mut nodes: Vec<_> = subs.iter().map(|(n, _)| n.as_str()).collect();
            nodes.sort();
            assert_eq!(nodes, vec!["other", NODE]);
        }
        r => panic!("{r:?}"),
    }
    match ok(
        &mut svc,
        ALICE,
        Request::Subscriptions {
            node: Some("other".into()),
        },
    )
    .reply
    {
        Reply::Subscriptions { subs, .. } => assert_eq!(subs.len(), 1),
        r => panic!("{r:?}"),
    }
    match ok(&mut svc, OWNER, Request::Affiliations { node: None }).reply {
        Reply::Affiliations { affs, .. } => {
            assert_eq!(affs.len(), 2);
            assert!(affs
                .iter()
                .all(|(_, j, a)| *j == b(OWNER) && *a == Affiliation::Owner));
        }
        r => panic!("{r:?}"),
    }
    match ok(
        &mut svc,
        ALICE,
        Request::Affiliations {
            node: Some(NODE.into()),
        },
    )
    .reply
    {
        Reply::Affiliations { affs, .. } => assert!(affs.is_empty()),
        r => panic!("{r:?}"),
    }
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::Affiliations {
                node: Some("zz".into())
            }
        ),
        Error::NodeNotFound
    );
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::Subscriptions {
                node: Some("zz".into())
            }
        ),
        Error::NodeNotFound
    );
}

// ------------------------------------------------------------------ §8.8 subscriptions

fn set_subs(changes: Vec<request::SubscriptionChange>) -> Request {
    Request::SetSubscriptions {
        node: NODE.into(),
        changes,
    }
}

#[test]
fn s8_8_owner_manages_subscriptions_and_subscriber_is_told() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let sub = subscribe(&mut svc, ALICE);
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::GetSubscriptions { node: NODE.into() }
        ),
        Error::Forbidden
    );
    // §8.8.2: the owner adds Bob and removes Alice in one request.
    let out = ok(
        &mut svc,
        OWNER,
        set_subs(vec![
            sub_change(BOB, None, SubscriptionState::Subscribed),
            sub_change(ALICE, Some(&sub.subid), SubscriptionState::None),
        ]),
    );
    // §8.8.4: both hear about it.
    assert_eq!(recipients(&out), vec![ALICE.to_string(), BOB.to_string()]);
    let subs = all_subs(&mut svc);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].jid, j(BOB));
    let alice_note = out.notifications.iter().find(|n| n.to == j(ALICE)).unwrap();
    assert!(matches!(
        *alice_note.event,
        Event::Subscription {
            state: SubscriptionState::None,
            ..
        }
    ));
    // A state change on the existing subscription keeps its subid.
    ok(
        &mut svc,
        OWNER,
        set_subs(vec![sub_change(BOB, None, SubscriptionState::Unconfigured)]),
    );
    let after = all_subs(&mut svc);
    assert_eq!(after[0].subid, subs[0].subid);
    assert_eq!(after[0].state, SubscriptionState::Unconfigured);
    assert_eq!(
        err(
            &mut svc,
            OWNER,
            set_subs(vec![sub_change(BOB, Some("zz"), SubscriptionState::None)])
        ),
        Error::InvalidSubId
    );
    set_aff(&mut svc, "eve@x.lit", Affiliation::Outcast);
    assert_eq!(
        err(
            &mut svc,
            OWNER,
            set_subs(vec![sub_change(
                "eve@x.lit",
                None,
                SubscriptionState::Subscribed
            )])
        ),
        Error::Outcast
    );
}

// ------------------------------------------------------------------ §8.9 affiliations

fn set_affs(changes: Vec<(BareJid, Affiliation)>) -> Request {
    Request::SetAffiliations {
        node: NODE.into(),
        changes,
    }
}

#[test]
fn s8_9_owner_manages_affiliations() {
    let mut svc = service();
    create(&mut svc, Default::default());
    assert_eq!(
        err(
            &mut svc,
            ALICE,
            Request::GetAffiliations { node: NODE.into() }
        ),
        Error::Forbidden
    );
    ok(
        &mut svc,
        OWNER,
        set_affs(vec![
            (b(ALICE), Affiliation::Publisher),
            (b(BOB), Affiliation::Member),
        ]),
    );
    let mut affs = all_affs(&mut svc);
    affs.sort();
    assert_eq!(affs.len(), 3);
    ok(&mut svc, OWNER, set_affs(vec![(b(BOB), Affiliation::None)]));
    assert_eq!(all_affs(&mut svc).len(), 2);
    // A second owner may be added, after which the first may step down.
    ok(
        &mut svc,
        OWNER,
        set_affs(vec![
            (b(ALICE), Affiliation::Owner),
            (b(OWNER), Affiliation::None),
        ]),
    );
    // The old owner lost its rights; the new one sees itself alone.
    assert_eq!(
        err(
            &mut svc,
            OWNER,
            Request::GetAffiliations { node: NODE.into() }
        ),
        Error::Forbidden
    );
    match ok(
        &mut svc,
        ALICE,
        Request::GetAffiliations { node: NODE.into() },
    )
    .reply
    {
        Reply::Affiliations { affs, .. } => {
            assert_eq!(affs, vec![(NODE.to_string(), b(ALICE), Affiliation::Owner)])
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn s8_9_2_4_last_owner_cannot_be_removed() {
    let mut svc = service();
    create(&mut svc, Default::default());
    let e = err(
        &mut svc,
        OWNER,
        set_affs(vec![
            (b(OWNER), Affiliation::None),
            (b(BOB), Affiliation::Publisher),
        ]),
    );
    assert!(matches!(e, Error::InvalidConfig(_)));
    assert_eq!(
        all_affs(&mut svc),
        vec![(b(OWNER), Affiliation::Owner)],
        "nothing applied"
    );
    let e = err(
        &mut svc,
        OWNER,
        set_affs(vec![
            (b(BOB), Affiliation::Publisher),
            (b(BOB), Affiliation::Member),
        ]),
    );
    assert!(matches!(e, Error::BadRequest(_)));
}

#[test]
fn s8_9_outcast_loses_subscriptions() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe(&mut svc, ALICE);
    subscribe(&mut svc, "alice@denmark.lit");
    subscribe(&mut svc, BOB);
    let out = ok(
        &mut svc,
        OWNER,
        set_affs(vec![(b(ALICE), Affiliation::Outcast)]),
    );
    assert_eq!(
        recipients(&out),
        vec!["alice@denmark.lit".to_string(), ALICE.to_string()]
    );
    let subs = all_subs(&mut svc);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].jid, j(BOB));
}

#[test]
fn s8_9_whitelist_removal_drops_subscriptions() {
    let mut svc = service();
    create(&mut svc, whitelist());
    set_aff(&mut svc, ALICE, Affiliation::Member);
    subscribe(&mut svc, ALICE);
    // Member → publisher keeps the subscription; → none drops it.
    set_aff(&mut svc, ALICE, Affiliation::Publisher);
    assert_eq!(all_subs(&mut svc).len(), 1);
    set_aff(&mut svc, ALICE, Affiliation::None);
    assert!(all_subs(&mut svc).is_empty());
}
