//! XEP-0060 beyond the core: Result Set Management (XEP-0059) on item retrieval and
//! disco#items.

mod common;

use common::*;
use roost_nodes::*;

fn rsm(
    max: Option<u64>,
    after: Option<&str>,
    before: Option<&str>,
    index: Option<u64>,
) -> RsmQuery {
    RsmQuery {
        max,
        after: after.map(str::to_owned),
        before: before.map(str::to_owned),
        index,
    }
}

fn items_page(svc: &mut Service<MemStore>, q: RsmQuery) -> (Vec<String>, RsmPage) {
    let req = Request::Page {
        list: PagedList::Items {
            node: NODE.into(),
            subid: None,
        },
        rsm: q,
    };
    match ok(svc, ALICE, req).reply {
        Reply::Items {
            items,
            page: Some(page),
            ..
        } => (items.into_iter().map(|i| i.id).collect(), page),
        r => panic!("unexpected reply {r:?}"),
    }
}

fn ids_page(svc: &mut Service<MemStore>, q: RsmQuery) -> (Vec<String>, RsmPage) {
    let req = Request::Page {
        list: PagedList::ItemIds { node: NODE.into() },
        rsm: q,
    };
    match ok(svc, ALICE, req).reply {
        Reply::ItemIds {
            ids,
            page: Some(page),
            ..
        } => (ids, page),
        r => panic!("unexpected reply {r:?}"),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn page(first: Option<(&str, u64)>, last: Option<&str>, count: u64) -> RsmPage {
    RsmPage {
        first: first.map(|(id, i)| (id.to_owned(), i)),
        last: last.map(str::to_owned),
        count,
    }
}

/// A node with items i0..i9, published in that order (ids sort differently from publish
/// order on purpose: "i10" would sort before "i2").
fn ten() -> Service<MemStore> {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    for i in 0..10 {
        publish(&mut svc, OWNER, &format!("i{i}"), "<x/>");
    }
    svc
}

#[test]
fn xep0059_first_page_next_and_previous() {
    let mut svc = ten();
    let (ids, p) = items_page(&mut svc, rsm(Some(3), None, None, None));
    assert_eq!(ids, strs(&["i0", "i1", "i2"]));
    assert_eq!(p, page(Some(("i0", 0)), Some("i2"), 10));

    let (ids, p) = items_page(&mut svc, rsm(Some(3), Some("i2"), None, None));
    assert_eq!(ids, strs(&["i3", "i4", "i5"]));
    assert_eq!(p, page(Some(("i3", 3)), Some("i5"), 10));

    let (ids, p) = items_page(&mut svc, rsm(Some(3), None, Some("i3"), None));
    assert_eq!(ids, strs(&["i0", "i1", "i2"]));
    assert_eq!(p, page(Some(("i0", 0)), Some("i2"), 10));

    // Past the end: an empty page still reports the count.
    let (ids, p) = items_page(&mut svc, rsm(Some(3), Some("i9"), None, None));
    assert!(ids.is_empty());
    assert_eq!(p, page(None, None, 10));
}

#[test]
fn xep0059_empty_before_is_the_last_page() {
    let mut svc = ten();
    let (ids, p) = items_page(&mut svc, rsm(Some(4), None, Some(""), None));
    assert_eq!(ids, strs(&["i6", "i7", "i8", "i9"]));
    assert_eq!(p, page(Some(("i6", 6)), Some("i9"), 10));
    // And paging backwards from there reaches the start with a short page.
    let (ids, p) = items_page(&mut svc, rsm(Some(4), None, Some("i2"), None));
    assert_eq!(ids, strs(&["i0", "i1"]));
    assert_eq!(p, page(Some(("i0", 0)), Some("i1"), 10));
}

#[test]
fn xep0059_index_and_count_only() {
    let mut svc = ten();
    let (ids, p) = items_page(&mut svc, rsm(Some(2), None, None, Some(7)));
    assert_eq!(ids, strs(&["i7", "i8"]));
    assert_eq!(p, page(Some(("i7", 7)), Some("i8"), 10));
    // §2.6: max 0 asks for the count alone.
    let (ids, p) = items_page(&mut svc, rsm(Some(0), None, None, None));
    assert!(ids.is_empty());
    assert_eq!(p, page(None, None, 10));
    // No max: the rest of the list.
    let (ids, _) = items_page(&mut svc, rsm(None, Some("i6"), None, None));
    assert_eq!(ids, strs(&["i7", "i8", "i9"]));
}

#[test]
fn xep0059_unknown_uid_is_item_not_found() {
    let mut svc = ten();
    for q in [
        rsm(Some(2), Some("nope"), None, None),
        rsm(Some(2), None, Some("nope"), None),
    ] {
        let req = Request::Page {
            list: PagedList::Items {
                node: NODE.into(),
                subid: None,
            },
            rsm: q,
        };
        assert_eq!(run(&mut svc, ALICE, req).unwrap_err(), Error::ItemNotFound);
    }
}

#[test]
fn xep0059_paging_while_items_arrive_skips_and_repeats_nothing() {
    let mut svc = ten();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut next = 10;
    loop {
        let (ids, p) = items_page(&mut svc, rsm(Some(3), after.as_deref(), None, None));
        if ids.is_empty() {
            break;
        }
        seen.extend(ids);
        after = p.last;
        // Between pages a new item is published: it may only appear at the end.
        if next < 16 {
            publish(&mut svc, OWNER, &format!("i{next}"), "<x/>");
            next += 1;
        }
    }
    let expected: Vec<String> = (0..16).map(|i| format!("i{i}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn xep0059_retracted_items_leave_no_gap_in_index() {
    let mut svc = ten();
    ok(
        &mut svc,
        OWNER,
        Request::Retract {
            node: NODE.into(),
            ids: vec!["i1".into(), "i2".into()],
            notify: false,
        },
    );
    let (ids, p) = items_page(&mut svc, rsm(Some(2), Some("i3"), None, None));
    assert_eq!(ids, strs(&["i4", "i5"]));
    assert_eq!(p, page(Some(("i4", 2)), Some("i5"), 8));
}

#[test]
fn xep0059_disco_items_of_a_node() {
    let mut svc = ten();
    let (ids, p) = ids_page(&mut svc, rsm(Some(2), Some("i4"), None, None));
    assert_eq!(ids, strs(&["i5", "i6"]));
    assert_eq!(p, page(Some(("i5", 5)), Some("i6"), 10));
    let (ids, p) = ids_page(&mut svc, rsm(Some(2), None, Some(""), None));
    assert_eq!(ids, strs(&["i8", "i9"]));
    assert_eq!(p, page(Some(("i8", 8)), Some("i9"), 10));
}

#[test]
fn xep0059_disco_nodes() {
    let mut svc = service();
    for name in ["a", "b", "c", "d", "e"] {
        ok(
            &mut svc,
            OWNER,
            Request::Create {
                node: Some(name.into()),
                config: None,
            },
        );
    }
    // A node ALICE may not see is neither listed nor counted.
    ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("closed".into()),
            config: Some(whitelist()),
        },
    );
    let list = |svc: &mut Service<MemStore>, q| match ok(
        svc,
        ALICE,
        Request::Page {
            list: PagedList::Nodes,
            rsm: q,
        },
    )
    .reply
    {
        Reply::Nodes {
            nodes,
            page: Some(p),
        } => (nodes.into_iter().map(|n| n.node).collect::<Vec<_>>(), p),
        r => panic!("unexpected reply {r:?}"),
    };
    let (names, p) = list(&mut svc, rsm(Some(2), None, None, None));
    assert_eq!(names, strs(&["a", "b"]));
    assert_eq!(p, page(Some(("a", 0)), Some("b"), 5));
    let (names, p) = list(&mut svc, rsm(Some(2), Some("b"), None, None));
    assert_eq!(names, strs(&["c", "d"]));
    assert_eq!(p, page(Some(("c", 2)), Some("d"), 5));
    let (names, p) = list(&mut svc, rsm(Some(2), None, Some(""), None));
    assert_eq!(names, strs(&["d", "e"]));
    assert_eq!(p, page(Some(("d", 3)), Some("e"), 5));
    let (names, p) = list(&mut svc, rsm(Some(2), None, Some("b"), None));
    assert_eq!(names, strs(&["a"]));
    assert_eq!(p, page(Some(("a", 0)), Some("a"), 5));
    let (names, p) = list(&mut svc, rsm(Some(2), None, None, Some(4)));
    assert_eq!(names, strs(&["e"]));
    assert_eq!(p, page(Some(("e", 4)), Some("e"), 5));
    let err = run(
        &mut svc,
        ALICE,
        Request::Page {
            list: PagedList::Nodes,
            rsm: rsm(Some(2), Some("closed"), None, None),
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::ItemNotFound);
}

#[test]
fn xep0059_unpaged_requests_get_no_page() {
    let mut svc = ten();
    let r = ok(
        &mut svc,
        ALICE,
        Request::Items {
            node: NODE.into(),
            max_items: None,
            ids: vec![],
            subid: None,
        },
    )
    .reply;
    let Reply::Items { items, page, .. } = r else {
        panic!("items reply");
    };
    assert_eq!(items.len(), 10);
    assert_eq!(page, None);
    let r = ok(&mut svc, ALICE, Request::DiscoNodes).reply;
    assert!(matches!(r, Reply::Nodes { page: None, .. }));
}

#[test]
fn xep0059_paged_items_keep_access_rules() {
    let mut svc = service();
    create(&mut svc, whitelist());
    publish(&mut svc, OWNER, "a", "<x/>");
    let req = Request::Page {
        list: PagedList::Items {
            node: NODE.into(),
            subid: None,
        },
        rsm: rsm(Some(1), None, None, None),
    };
    assert_eq!(run(&mut svc, ALICE, req).unwrap_err(), Error::ClosedNode);
}

// ------------------------------------------------- §6.1.6 multiple subscriptions per JID

fn subscribe_with(svc: &mut Service<MemStore>, jid: &str, patch: SubOptionsPatch) -> Subscription {
    let req = Request::Subscribe {
        node: NODE.into(),
        jid: j(jid),
        options: Some(patch),
    };
    match ok(svc, jid, req).reply {
        Reply::Subscription { sub, .. } => sub,
        r => panic!("unexpected reply {r:?}"),
    }
}

fn with_body() -> SubOptionsPatch {
    SubOptionsPatch {
        include_body: Some(true),
        ..Default::default()
    }
}

#[test]
fn s6_1_6_subscribe_with_options_adds_a_subscription() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let first = subscribe(&mut svc, ALICE);
    let second = subscribe_with(&mut svc, ALICE, with_body());
    assert_ne!(first.subid, second.subid);
    assert!(second.options.include_body);
    assert_eq!(all_subs(&mut svc).len(), 2);
    // A plain repeat stays idempotent: one of the existing subscriptions, unchanged.
    let again = subscribe(&mut svc, ALICE);
    assert!(again == first || again == second, "{again:?}");
    assert_eq!(all_subs(&mut svc).len(), 2);

    // One notification per JID, naming every subid (§12.5 SHIM headers).
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    let to_alice: Vec<_> = out
        .notifications
        .iter()
        .filter(|n| n.to == j(ALICE))
        .collect();
    assert_eq!(to_alice.len(), 1);
    let mut subids = to_alice[0].subids.clone();
    subids.sort();
    let mut want = vec![first.subid.clone(), second.subid.clone()];
    want.sort();
    assert_eq!(subids, want);
}

#[test]
fn s6_2_3_and_s6_3_4_subid_rules_with_several_subscriptions() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let first = subscribe(&mut svc, ALICE);
    let second = subscribe_with(&mut svc, ALICE, with_body());
    let unsub = |subid: Option<&str>| Request::Unsubscribe {
        node: NODE.into(),
        jid: j(ALICE),
        subid: subid.map(str::to_owned),
    };
    let get = |subid: Option<&str>| Request::GetOptions {
        node: NODE.into(),
        jid: j(ALICE),
        subid: subid.map(str::to_owned),
    };
    let set = |subid: Option<&str>| Request::SetOptions {
        node: NODE.into(),
        jid: j(ALICE),
        subid: subid.map(str::to_owned),
        options: SubOptionsPatch {
            deliver: Some(false),
            ..Default::default()
        },
    };
    // §6.2.3.1 / §6.3.4.1: several subscriptions and no subid.
    for req in [unsub(None), get(None), set(None)] {
        assert_eq!(run(&mut svc, ALICE, req).unwrap_err(), Error::SubIdRequired);
    }
    // §6.2.3.5 / §6.3.4.5: a subid that is not one of ALICE's.
    for req in [unsub(Some("bogus")), get(Some("bogus")), set(Some("bogus"))] {
        assert_eq!(run(&mut svc, ALICE, req).unwrap_err(), Error::InvalidSubId);
    }
    // Per subid, each subscription answers for itself.
    let Reply::Options { options, subid, .. } = ok(&mut svc, ALICE, get(Some(&second.subid))).reply
    else {
        panic!("options reply");
    };
    assert_eq!(subid.as_deref(), Some(second.subid.as_str()));
    assert!(options.include_body);
    ok(&mut svc, ALICE, set(Some(&first.subid)));
    // With the first paused, notifications name the second only.
    let out = publish(&mut svc, OWNER, "a", "<x/>");
    let n: Vec<_> = out
        .notifications
        .iter()
        .filter(|n| n.to == j(ALICE))
        .collect();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].subids, vec![second.subid.clone()]);
    // Items retrieval per subid (§6.5.3).
    let items_req = |subid: &str| Request::Items {
        node: NODE.into(),
        max_items: None,
        ids: vec![],
        subid: Some(subid.to_owned()),
    };
    ok(&mut svc, ALICE, items_req(&first.subid));
    assert_eq!(
        run(&mut svc, ALICE, items_req("bogus")).unwrap_err(),
        Error::InvalidSubId
    );
    // Unsubscribe one; the other stays, and then no subid is needed any more.
    ok(&mut svc, ALICE, unsub(Some(&first.subid)));
    let left = all_subs(&mut svc);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].subid, second.subid);
    ok(&mut svc, ALICE, get(None));
    ok(&mut svc, ALICE, unsub(None));
    assert_eq!(
        run(&mut svc, ALICE, unsub(None)).unwrap_err(),
        Error::NotSubscribed
    );
}

#[test]
fn s6_1_6_several_subscriptions_survive_a_reload() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    subscribe(&mut svc, ALICE);
    subscribe_with(&mut svc, ALICE, with_body());
    let before = all_subs(&mut svc);
    let store = std::mem::take(svc.store_mut());
    let mut svc = Service::open(store, policy()).expect("reopen");
    assert_eq!(all_subs(&mut svc), before);
}

// ------------------------------------------- §4.5 / §6.1 / §8.6 / §8.7 authorize access

fn authorize_node() -> Service<MemStore> {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            access_model: Some(AccessModel::Authorize),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "first", "<x/>");
    svc
}

fn answer(jid: &str, subid: Option<&str>, allow: bool) -> Request {
    Request::AuthorizeSubscription {
        node: NODE.into(),
        jid: j(jid),
        subid: subid.map(str::to_owned),
        allow,
    }
}

fn is_auth_request(n: &Notification, subscriber: &str) -> bool {
    matches!(&*n.event, Event::Subscription { jid, state: SubscriptionState::Pending, .. } if *jid == j(subscriber))
}

#[test]
fn s6_1_authorize_subscribe_is_pending_and_owners_are_asked() {
    let mut svc = authorize_node();
    // A second owner, to see that every owner is asked.
    set_aff(&mut svc, BOB, Affiliation::Owner);
    let out = ok(&mut svc, ALICE, subscribe_req(ALICE));
    let Reply::Subscription { sub, .. } = &out.reply else {
        panic!("subscription reply");
    };
    assert_eq!(sub.state, SubscriptionState::Pending);
    let mut asked: Vec<String> = out
        .notifications
        .iter()
        .filter(|n| is_auth_request(n, ALICE))
        .map(|n| n.to.to_string())
        .collect();
    asked.sort();
    assert_eq!(asked, vec![b(BOB).to_string(), b(OWNER).to_string()]);
    // No last-published item before approval, and nothing but the requests.
    assert_eq!(out.notifications.len(), 2);
    // Pending: no items, and no notifications.
    let err = run(
        &mut svc,
        ALICE,
        Request::Items {
            node: NODE.into(),
            max_items: None,
            ids: vec![],
            subid: None,
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::NotAuthorizedSubscriber);
    let out = publish(&mut svc, OWNER, "second", "<x/>");
    assert!(out.notifications.iter().all(|n| n.to != j(ALICE)));
    // A plain repeat returns the same pending subscription; no second request goes out.
    let again = ok(&mut svc, ALICE, subscribe_req(ALICE));
    assert!(again.notifications.is_empty());
    // The node is listed: anyone may ask to subscribe.
    let Reply::Nodes { nodes, .. } = ok(&mut svc, ALICE, Request::DiscoNodes).reply else {
        panic!("nodes reply");
    };
    assert!(nodes.iter().any(|n| n.node == NODE));
}

#[test]
fn s6_1_authorize_members_subscribe_at_once() {
    let mut svc = authorize_node();
    set_aff(&mut svc, ALICE, Affiliation::Member);
    let sub = subscribe(&mut svc, ALICE);
    assert_eq!(sub.state, SubscriptionState::Subscribed);
    items(&mut svc, ALICE);
    // Outcasts may not even ask.
    set_aff(&mut svc, BOB, Affiliation::Outcast);
    assert_eq!(
        run(&mut svc, BOB, subscribe_req(BOB)).unwrap_err(),
        Error::Outcast
    );
}

#[test]
fn s8_6_owner_approves() {
    let mut svc = authorize_node();
    ok(&mut svc, ALICE, subscribe_req(ALICE));
    // Only an owner decides.
    assert_eq!(
        run(&mut svc, BOB, answer(ALICE, None, true)).unwrap_err(),
        Error::Forbidden
    );
    let out = ok(&mut svc, OWNER, answer(ALICE, None, true));
    assert_eq!(out.reply, Reply::Done);
    assert_eq!(out.notifications.len(), 1);
    let n = &out.notifications[0];
    assert_eq!(n.to, j(ALICE));
    assert!(matches!(
        *n.event,
        Event::Subscription {
            state: SubscriptionState::Subscribed,
            ..
        }
    ));
    assert_eq!(all_subs(&mut svc)[0].state, SubscriptionState::Subscribed);
    assert_eq!(items(&mut svc, ALICE).len(), 1);
    let out = publish(&mut svc, OWNER, "second", "<x/>");
    assert!(out.notifications.iter().any(|n| n.to == j(ALICE)));
    // Deciding again: nothing is pending any more.
    assert_eq!(
        run(&mut svc, OWNER, answer(ALICE, None, false)).unwrap_err(),
        Error::NotSubscribed
    );
}

#[test]
fn s8_6_owner_denies_by_subid() {
    let mut svc = authorize_node();
    let Reply::Subscription { sub, .. } = ok(&mut svc, ALICE, subscribe_req(ALICE)).reply else {
        panic!("subscription reply");
    };
    assert_eq!(
        run(&mut svc, OWNER, answer(ALICE, Some("other"), false)).unwrap_err(),
        Error::NotSubscribed
    );
    let out = ok(&mut svc, OWNER, answer(ALICE, Some(&sub.subid), false));
    assert!(matches!(
        *out.notifications[0].event,
        Event::Subscription {
            state: SubscriptionState::None,
            ..
        }
    ));
    assert!(all_subs(&mut svc).is_empty());
}

#[test]
fn s8_7_get_pending() {
    let mut svc = authorize_node();
    ok(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("quiet".into()),
            config: Some(NodeConfigPatch {
                access_model: Some(AccessModel::Authorize),
                ..Default::default()
            }),
        },
    );
    ok(&mut svc, ALICE, subscribe_req(ALICE));
    ok(&mut svc, BOB, subscribe_req(BOB));
    // Only nodes with pending requests the actor may decide.
    assert_eq!(
        ok(&mut svc, OWNER, Request::PendingNodes).reply,
        Reply::PendingNodes {
            nodes: vec![NODE.to_owned()]
        }
    );
    assert_eq!(
        ok(&mut svc, BOB, Request::PendingNodes).reply,
        Reply::PendingNodes { nodes: vec![] }
    );
    let out = ok(&mut svc, OWNER, Request::GetPending { node: NODE.into() });
    assert_eq!(out.reply, Reply::PendingSent { node: NODE.into() });
    // One request per pending subscription, to the asking owner's full JID.
    assert_eq!(out.notifications.len(), 2);
    assert!(out.notifications.iter().all(|n| n.to == j(OWNER)));
    assert!(out.notifications.iter().any(|n| is_auth_request(n, ALICE)));
    assert!(out.notifications.iter().any(|n| is_auth_request(n, BOB)));
    assert_eq!(
        run(&mut svc, BOB, Request::GetPending { node: NODE.into() }).unwrap_err(),
        Error::Forbidden
    );
    assert_eq!(
        run(
            &mut svc,
            OWNER,
            Request::GetPending {
                node: "nope".into()
            }
        )
        .unwrap_err(),
        Error::NodeNotFound
    );
}

#[test]
fn s8_6_pending_requests_survive_a_reload() {
    let mut svc = authorize_node();
    ok(&mut svc, ALICE, subscribe_req(ALICE));
    let store = std::mem::take(svc.store_mut());
    let mut svc = Service::open(store, policy()).expect("reopen");
    assert_eq!(all_subs(&mut svc)[0].state, SubscriptionState::Pending);
    ok(&mut svc, OWNER, answer(ALICE, None, true));
    assert_eq!(all_subs(&mut svc)[0].state, SubscriptionState::Subscribed);
}

// ------------------------- time: item expiry, subscription leases, digests (Service::tick)

fn publish_at(svc: &mut Service<MemStore>, id: &str, now: Millis) -> Outcome {
    svc.handle(&j(OWNER), publish_req(id, "<x/>"), now)
        .expect("publish")
}

fn retracted(out: &[Notification], to: &str) -> Vec<String> {
    out.iter()
        .filter(|n| n.to == j(to))
        .flat_map(|n| match &*n.event {
            Event::Retract { ids } => ids.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn item_expire_removes_items_and_notifies_retraction() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            item_expire: Some(Some(10)),
            notify_retract: Some(true),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    publish_at(&mut svc, "early", 1_000);
    publish_at(&mut svc, "late", 5_000);
    assert!(svc.tick(10_999).unwrap().is_empty());
    let out = svc.tick(11_000).unwrap();
    assert_eq!(retracted(&out, ALICE), vec!["early".to_owned()]);
    assert_eq!(item_ids(&mut svc), vec!["late".to_owned()]);
    // The counters follow (RSM counts).
    let (_, p) = items_page(&mut svc, rsm(Some(0), None, None, None));
    assert_eq!(p.count, 1);
    // Nothing twice.
    assert!(svc.tick(11_000).unwrap().is_empty());
    // A retracted or republished item is not expired by its old entry.
    publish_at(&mut svc, "late", 14_000);
    assert!(svc.tick(15_000).unwrap().is_empty());
    assert_eq!(item_ids(&mut svc), vec!["late".to_owned()]);
    let out = svc.tick(24_000).unwrap();
    assert_eq!(retracted(&out, ALICE), vec!["late".to_owned()]);
    assert!(item_ids(&mut svc).is_empty());
}

#[test]
fn item_expire_survives_a_reload_and_respects_notify_retract() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            item_expire: Some(Some(1)),
            notify_retract: Some(false),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    publish_at(&mut svc, "a", 1_000);
    let store = std::mem::take(svc.store_mut());
    let mut svc = Service::open(store, policy()).expect("reopen");
    let out = svc.tick(2_000).unwrap();
    assert!(out.is_empty(), "notify_retract is off: {out:?}");
    assert!(item_ids(&mut svc).is_empty());
}

#[test]
fn item_expire_of_a_deleted_node_is_skipped() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            item_expire: Some(Some(1)),
            ..Default::default()
        },
    );
    publish_at(&mut svc, "a", 1_000);
    ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: NODE.into(),
            redirect: None,
        },
    );
    assert!(svc.tick(5_000).unwrap().is_empty());
}

#[test]
fn a_failed_tick_changes_nothing() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            item_expire: Some(Some(1)),
            ..Default::default()
        },
    );
    publish_at(&mut svc, "a", 1_000);
    svc.store_mut().fail_next = Some("disk full".into());
    assert!(matches!(svc.tick(5_000), Err(Error::Storage(_))));
    assert_eq!(item_ids(&mut svc), vec!["a".to_owned()]);
    svc.tick(5_000).unwrap();
    assert!(item_ids(&mut svc).is_empty());
}

fn subscribe_opts_at(
    svc: &mut Service<MemStore>,
    jid: &str,
    patch: SubOptionsPatch,
    now: Millis,
) -> Subscription {
    let req = Request::Subscribe {
        node: NODE.into(),
        jid: j(jid),
        options: Some(patch),
    };
    match svc.handle(&j(jid), req, now).expect("subscribe").reply {
        Reply::Subscription { sub, .. } => sub,
        r => panic!("unexpected reply {r:?}"),
    }
}

#[test]
fn leased_subscriptions_end_and_the_subscriber_is_told() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let sub = subscribe_opts_at(
        &mut svc,
        ALICE,
        SubOptionsPatch {
            expire: Some(Some(60_000)),
            ..Default::default()
        },
        1_000,
    );
    subscribe(&mut svc, BOB);
    assert!(svc.tick(59_999).unwrap().is_empty());
    // Reloading keeps the lease.
    let store = std::mem::take(svc.store_mut());
    let mut svc = Service::open(store, policy()).expect("reopen");
    let out = svc.tick(60_000).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, j(ALICE));
    assert!(matches!(
        &*out[0].event,
        Event::Subscription { state: SubscriptionState::None, subid: Some(s), .. } if *s == sub.subid
    ));
    let left = all_subs(&mut svc);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].jid, j(BOB));
    assert!(svc.tick(70_000).unwrap().is_empty());
}

#[test]
fn renewing_a_lease_moves_its_end() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let sub = subscribe_opts_at(
        &mut svc,
        ALICE,
        SubOptionsPatch {
            expire: Some(Some(10_000)),
            ..Default::default()
        },
        1_000,
    );
    let renew = Request::SetOptions {
        node: NODE.into(),
        jid: j(ALICE),
        subid: Some(sub.subid.clone()),
        options: SubOptionsPatch {
            expire: Some(Some(20_000)),
            ..Default::default()
        },
    };
    svc.handle(&j(ALICE), renew, 5_000).expect("renew");
    assert!(svc.tick(15_000).unwrap().is_empty());
    assert_eq!(svc.tick(20_000).unwrap().len(), 1);
}

#[test]
fn digests_batch_items_per_period() {
    const CAROL: &str = "carol@denmark.lit/tablet";
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    subscribe_opts_at(
        &mut svc,
        ALICE,
        SubOptionsPatch {
            digest: Some(true),
            digest_frequency: Some(1_000),
            ..Default::default()
        },
        0,
    );
    subscribe(&mut svc, BOB);
    // Until the clock runs, no digest could ever go out: items come one by one.
    let out = publish_at(&mut svc, "early", 50);
    assert!(out.notifications.iter().any(|n| n.to == j(ALICE)));
    // The first tick starts the period.
    assert!(svc.tick(100).unwrap().is_empty());
    let out = publish_at(&mut svc, "a", 200);
    // Digest subscribers get no per-item notification; others do.
    assert!(out.notifications.iter().all(|n| n.to != j(ALICE)));
    assert!(out.notifications.iter().any(|n| n.to == j(BOB)));
    publish_at(&mut svc, "b", 300);
    assert!(svc.tick(1_099).unwrap().is_empty());
    let out = svc.tick(1_100).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, j(ALICE));
    let Event::Items { items, .. } = &*out[0].event else {
        panic!("items event");
    };
    let ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    // A digest subscription made while the clock runs misses nothing before its first
    // period starts.
    subscribe_opts_at(
        &mut svc,
        CAROL,
        SubOptionsPatch {
            digest: Some(true),
            digest_frequency: Some(1_000),
            ..Default::default()
        },
        1_150,
    );
    let out = publish_at(&mut svc, "x", 1_200);
    assert!(out.notifications.iter().all(|n| n.to != j(CAROL)));
    assert!(svc.tick(1_300).unwrap().is_empty());
    let out = svc.tick(2_300).unwrap();
    let to_carol: Vec<_> = out.iter().filter(|n| n.to == j(CAROL)).collect();
    assert_eq!(to_carol.len(), 1);
    let Event::Items { items, .. } = &*to_carol[0].event else {
        panic!("items event");
    };
    assert_eq!(items[0].id, "x");
    // ALICE's period ended at 2_100 too: "x" went to her as well.
    assert!(out.iter().any(|n| n.to == j(ALICE)));
    // An empty period sends nothing; the next one carries only new items.
    assert!(svc.tick(3_300).unwrap().is_empty());
    publish_at(&mut svc, "c", 3_500);
    let out = svc.tick(4_300).unwrap();
    assert_eq!(out.len(), 2);
    for n in &out {
        let Event::Items { items, .. } = &*n.event else {
            panic!("items event");
        };
        let ids: Vec<_> = items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["c"]);
    }
}

#[test]
fn store_without_expiry_index_fails_tick_loudly() {
    struct NoIndex(MemStore);
    impl Store for NoIndex {
        fn load_into(&mut self, l: &mut dyn Loader) -> Result<(), StoreError> {
            self.0.load_into(l)
        }
        fn commit(&mut self, c: &ChangeSet) -> Result<(), StoreError> {
            self.0.commit(c)
        }
        fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
            self.0.item(uid, id)
        }
        fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError> {
            self.0.latest_items(uid, max)
        }
        fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
            self.0.oldest_items(uid, n)
        }
    }
    let mut svc = Service::open(NoIndex(MemStore::new()), policy()).expect("open");
    assert!(matches!(svc.tick(1), Err(Error::Storage(_))));
    // The default paging methods still page correctly.
    svc.handle(
        &j(OWNER),
        Request::Create {
            node: Some(NODE.into()),
            config: None,
        },
        0,
    )
    .unwrap();
    for id in ["a", "b", "c"] {
        svc.handle(&j(OWNER), publish_req(id, "<x/>"), 0).unwrap();
    }
    let r = svc
        .handle(
            &j(ALICE),
            Request::Page {
                list: PagedList::Items {
                    node: NODE.into(),
                    subid: None,
                },
                rsm: rsm(Some(1), Some("a"), None, None),
            },
            0,
        )
        .unwrap()
        .reply;
    let Reply::Items { items, page, .. } = r else {
        panic!("items");
    };
    assert_eq!(items[0].id, "b");
    assert_eq!(page.unwrap().first, Some(("b".to_owned(), 1)));
}
