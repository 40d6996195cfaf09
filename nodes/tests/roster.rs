//! The presence and roster access models (§4.5) over owners' rosters (XEP-0356): who may
//! subscribe and retrieve, how roster changes and the loss of roster access act.

mod common;

use common::*;
use roost_nodes::roster::{RosterItem, RosterSubscription as Rs};
use roost_nodes::*;

const CAROL: &str = "carol@denmark.lit/tab";

fn err(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Error {
    run(svc, actor, req.clone()).expect_err(&format!("{req:?} by {actor} should fail"))
}

fn item(sub: Rs, groups: &[&str]) -> RosterItem {
    RosterItem {
        subscription: sub,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn items_req() -> Request {
    Request::Items {
        node: NODE.into(),
        max_items: None,
        ids: vec![],
        subid: None,
    }
}

/// A service with roster access: alice sees the owner's presence and is in Friends, bob
/// only lets the owner see his (subscription `to`) and is in Work; carol is a stranger.
fn granted() -> Service<MemStore> {
    let mut svc = service();
    svc.set_roster_access(true);
    svc
}

fn load_owner_roster(svc: &mut Service<MemStore>) {
    svc.roster_fetched(
        &b(OWNER),
        [
            (b(ALICE), item(Rs::Both, &["Friends"])),
            (b(BOB), item(Rs::To, &["Work"])),
        ],
        1_000,
    );
}

fn model(m: AccessModel, groups: &[&str]) -> NodeConfigPatch {
    NodeConfigPatch {
        access_model: Some(m),
        roster_groups_allowed: Some(groups.iter().map(|g| g.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn without_roster_access_the_models_are_refused() {
    let mut svc = service();
    for m in [AccessModel::Presence, AccessModel::Roster] {
        let e = err(
            &mut svc,
            OWNER,
            Request::Create {
                node: Some(NODE.into()),
                config: Some(model(m, &[])),
            },
        );
        assert_eq!(e, Error::UnsupportedAccessModel);
    }
    assert!(!access::access_model_supported(
        AccessModel::Presence,
        false
    ));
    assert!(access::access_model_supported(AccessModel::Presence, true));
    assert!(access::access_model_supported(AccessModel::Open, false));
}

#[test]
fn presence_model_admits_who_sees_the_owners_presence() {
    let mut svc = granted();
    create(&mut svc, model(AccessModel::Presence, &[]));
    // The owner's roster is not known yet: the engine asks for it instead of deciding.
    assert_eq!(
        err(&mut svc, ALICE, subscribe_req(ALICE)),
        Error::RosterNeeded(vec![b(OWNER)])
    );
    load_owner_roster(&mut svc);
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>");
    assert_eq!(items(&mut svc, ALICE).len(), 1);
    // `to`: the owner sees bob, bob does not see the owner.
    for who in [BOB, CAROL] {
        assert_eq!(
            err(&mut svc, who, subscribe_req(who)),
            Error::PresenceSubscriptionRequired
        );
        assert_eq!(
            err(&mut svc, who, items_req()),
            Error::PresenceSubscriptionRequired
        );
    }
    // Affiliates are admitted whatever the roster says; outcasts never.
    set_aff(&mut svc, CAROL, Affiliation::Member);
    subscribe(&mut svc, CAROL);
    set_aff(&mut svc, BOB, Affiliation::Outcast);
    assert_eq!(err(&mut svc, BOB, subscribe_req(BOB)), Error::Outcast);
    assert_eq!(items(&mut svc, OWNER).len(), 1);
}

#[test]
fn roster_model_admits_members_of_the_allowed_groups() {
    let mut svc = granted();
    load_owner_roster(&mut svc);
    create(&mut svc, model(AccessModel::Roster, &["Friends", "Family"]));
    subscribe(&mut svc, ALICE);
    assert!(items(&mut svc, ALICE).is_empty());
    for who in [BOB, CAROL] {
        assert_eq!(
            err(&mut svc, who, subscribe_req(who)),
            Error::NotInRosterGroup
        );
        assert_eq!(err(&mut svc, who, items_req()), Error::NotInRosterGroup);
    }
    // No allowed group: nobody from the roster, whatever their groups.
    let mut svc = granted();
    load_owner_roster(&mut svc);
    create(&mut svc, model(AccessModel::Roster, &[]));
    assert_eq!(
        err(&mut svc, ALICE, subscribe_req(ALICE)),
        Error::NotInRosterGroup
    );
}

#[test]
fn roster_changes_decide_later_requests_and_deliveries() {
    let mut svc = granted();
    load_owner_roster(&mut svc);
    create(&mut svc, model(AccessModel::Roster, &["Friends"]));
    subscribe(&mut svc, ALICE);
    // The owner moves bob into Friends (a roster push).
    svc.roster_pushed(&b(OWNER), &b(BOB), Some(item(Rs::To, &["Friends"])));
    subscribe(&mut svc, BOB);
    let out = publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>");
    assert_eq!(recipients(&out), vec![ALICE.to_string(), BOB.to_string()]);
    // The owner removes alice from the roster: she keeps her subscription record but gets
    // nothing more, and may no longer retrieve.
    svc.roster_pushed(&b(OWNER), &b(ALICE), None);
    let out = publish(&mut svc, OWNER, "2", "<x xmlns='urn:t'/>");
    assert_eq!(recipients(&out), vec![BOB.to_string()]);
    assert_eq!(err(&mut svc, ALICE, items_req()), Error::NotInRosterGroup);
}

#[test]
fn a_refusal_rests_on_a_roster_fetched_after_the_request_arrived() {
    let mut svc = granted();
    // Fetched just before the request (at 1_000): however recent, it predates it.
    svc.roster_fetched(
        &b(OWNER),
        [
            (b(ALICE), item(Rs::Both, &["Friends"])),
            (b(BOB), item(Rs::To, &["Work"])),
        ],
        999,
    );
    create(&mut svc, model(AccessModel::Roster, &["Friends"]));
    subscribe(&mut svc, ALICE);
    // Alice is admitted on the older copy; bob's refusal needs a copy fetched since.
    assert!(items(&mut svc, ALICE).is_empty());
    assert_eq!(
        err(&mut svc, BOB, subscribe_req(BOB)),
        Error::RosterNeeded(vec![b(OWNER)])
    );
    // Delivery to subscribers the older copy admits goes on.
    let out = publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>");
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    // The copy fetched after the request has bob in Friends now (the owner moved him just
    // before he asked): he is admitted.
    svc.roster_fetched(
        &b(OWNER),
        [
            (b(ALICE), item(Rs::Both, &["Friends"])),
            (b(BOB), item(Rs::To, &["Friends"])),
        ],
        1_000,
    );
    subscribe(&mut svc, BOB);
    // And a copy fetched after the request may refuse it.
    svc.roster_fetched(&b(OWNER), [(b(ALICE), item(Rs::Both, &["Friends"]))], 1_000);
    assert_eq!(
        err(&mut svc, CAROL, subscribe_req(CAROL)),
        Error::NotInRosterGroup
    );
}

#[test]
fn losing_roster_access_closes_the_nodes_to_everyone_not_affiliated() {
    let mut svc = granted();
    load_owner_roster(&mut svc);
    create(&mut svc, model(AccessModel::Presence, &[]));
    subscribe(&mut svc, ALICE);
    set_aff(&mut svc, CAROL, Affiliation::Member);
    subscribe(&mut svc, CAROL);
    svc.set_roster_access(false);
    // No notifications to roster contacts, no subscribing, no retrieving; affiliates go on.
    let out = publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>");
    assert_eq!(recipients(&out), vec![CAROL.to_string()]);
    assert_eq!(
        err(&mut svc, ALICE, items_req()),
        Error::PresenceSubscriptionRequired
    );
    assert_eq!(items(&mut svc, CAROL).len(), 1);
    // The node keeps its model (it is not opened up), but it cannot be chosen anew.
    let e = err(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: model(AccessModel::Roster, &["Friends"]),
        },
    );
    assert_eq!(e, Error::UnsupportedAccessModel);
    match ok(&mut svc, OWNER, Request::GetConfig { node: NODE.into() }).reply {
        Reply::Config { config, .. } => assert_eq!(config.access_model, AccessModel::Presence),
        r => panic!("{r:?}"),
    }
}

#[test]
fn switching_to_the_roster_model_waits_for_the_roster_then_drops_who_it_shuts_out() {
    let mut svc = granted();
    create(&mut svc, Default::default());
    subscribe(&mut svc, ALICE);
    subscribe(&mut svc, BOB);
    let switch = Request::SetConfig {
        node: NODE.into(),
        config: model(AccessModel::Roster, &["Friends"]),
    };
    // Undecided without the roster: nothing changes, nobody is dropped.
    assert_eq!(
        err(&mut svc, OWNER, switch.clone()),
        Error::RosterNeeded(vec![b(OWNER)])
    );
    assert_eq!(all_subs(&mut svc).len(), 2);
    load_owner_roster(&mut svc);
    let out = ok(&mut svc, OWNER, switch);
    assert_eq!(recipients(&out), vec![j(BOB).to_string()]);
    let subs = all_subs(&mut svc);
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].jid, j(ALICE));
}

#[test]
fn last_items_on_presence_go_only_to_admitted_subscribers() {
    let mut svc = granted();
    load_owner_roster(&mut svc);
    let mut patch = model(AccessModel::Presence, &[]);
    patch.send_last_published_item = Some(SendLastPublished::OnSubAndPresence);
    create(&mut svc, patch);
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>");
    let alice = j(ALICE).try_as_full().unwrap().clone();
    let out = svc.presence_changed(&alice, Some(Show::Online)).unwrap();
    assert_eq!(out.len(), 1);
    svc.presence_changed(&alice, None).unwrap();
    // Without roster access she is no longer admitted: nothing when she comes online.
    svc.set_roster_access(false);
    let out = svc.presence_changed(&alice, Some(Show::Online)).unwrap();
    assert!(out.is_empty(), "{out:?}");
}
