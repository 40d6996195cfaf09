//! Presence-bound delivery: `pubsub#presence_based_delivery`, `pubsub#show-values` and
//! `send_last_published_item=on_sub_and_presence`, fed by [`Service::presence_changed`].

mod common;

use common::*;
use roost_nodes::*;

const CAROL: &str = "carol@denmark.lit";
const CAROL_PHONE: &str = "carol@denmark.lit/phone";
const CAROL_DESK: &str = "carol@denmark.lit/desk";

fn full(s: &str) -> FullJid {
    FullJid::new(s).expect("valid full JID")
}

fn presence_node() -> NodeConfigPatch {
    NodeConfigPatch {
        presence_based_delivery: Some(true),
        ..Default::default()
    }
}

fn subscribe_with(svc: &mut Service<MemStore>, actor: &str, jid: &str, shows: Option<Vec<Show>>) {
    ok(
        svc,
        actor,
        Request::Subscribe {
            node: NODE.into(),
            jid: j(jid),
            options: shows.map(|s| SubOptionsPatch {
                show_values: Some(s),
                ..Default::default()
            }),
        },
    );
}

fn set_presence(svc: &mut Service<MemStore>, jid: &str, show: Option<Show>) -> Vec<Notification> {
    svc.presence_changed(&full(jid), show).expect("presence")
}

#[test]
fn presence_based_delivery_goes_to_available_full_jids_only() {
    let mut svc = service();
    create(&mut svc, presence_node());
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    assert!(svc.presence_wanted().contains(&b(CAROL)));
    assert!(svc.take_presence_requests().contains(&b(CAROL)));

    // Nobody online: nothing, not even to the bare JID (which the server would store).
    assert!(recipients(&publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>")).is_empty());

    set_presence(&mut svc, CAROL_PHONE, Some(Show::Online));
    set_presence(&mut svc, CAROL_DESK, Some(Show::Away));
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "2", "<x xmlns='urn:t'/>")),
        vec![CAROL_DESK.to_string(), CAROL_PHONE.to_string()]
    );

    // Offline at once: the phone gets nothing more, now or later.
    set_presence(&mut svc, CAROL_PHONE, None);
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "3", "<x xmlns='urn:t'/>")),
        vec![CAROL_DESK.to_string()]
    );
    set_presence(&mut svc, CAROL_DESK, None);
    assert!(recipients(&publish(&mut svc, OWNER, "4", "<x xmlns='urn:t'/>")).is_empty());
    // Coming back does not replay what was missed (the node is not on_sub_and_presence).
    assert!(set_presence(&mut svc, CAROL_PHONE, Some(Show::Online)).is_empty());
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "5", "<x xmlns='urn:t'/>")),
        vec![CAROL_PHONE.to_string()]
    );
}

#[test]
fn a_full_jid_subscription_follows_that_resource_only() {
    let mut svc = service();
    create(&mut svc, presence_node());
    subscribe_with(&mut svc, CAROL_PHONE, CAROL_PHONE, None);
    set_presence(&mut svc, CAROL_DESK, Some(Show::Online));
    assert!(recipients(&publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>")).is_empty());
    set_presence(&mut svc, CAROL_PHONE, Some(Show::Chat));
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "2", "<x xmlns='urn:t'/>")),
        vec![CAROL_PHONE.to_string()]
    );
}

#[test]
fn show_values_filter_by_the_resources_show() {
    let mut svc = service();
    // Not a presence node: the narrowed show-values alone bind delivery to presence.
    create(&mut svc, Default::default());
    subscribe_with(
        &mut svc,
        CAROL_PHONE,
        CAROL,
        Some(vec![Show::Online, Show::Chat]),
    );
    assert!(svc.presence_wanted().contains(&b(CAROL)));
    set_presence(&mut svc, CAROL_PHONE, Some(Show::Online));
    set_presence(&mut svc, CAROL_DESK, Some(Show::Dnd));
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>")),
        vec![CAROL_PHONE.to_string()]
    );
    set_presence(&mut svc, CAROL_PHONE, Some(Show::Away));
    assert!(recipients(&publish(&mut svc, OWNER, "2", "<x xmlns='urn:t'/>")).is_empty());
    set_presence(&mut svc, CAROL_DESK, Some(Show::Chat));
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "3", "<x xmlns='urn:t'/>")),
        vec![CAROL_DESK.to_string()]
    );
}

#[test]
fn default_show_values_on_an_ordinary_node_keep_bare_delivery() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    assert!(svc.presence_wanted().is_empty());
    assert!(svc.take_presence_requests().is_empty());
    assert_eq!(
        recipients(&publish(&mut svc, OWNER, "1", "<x xmlns='urn:t'/>")),
        vec![CAROL.to_string()]
    );
}

#[test]
fn on_sub_and_presence_sends_the_last_item_once_per_resource() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            send_last_published_item: Some(SendLastPublished::OnSubAndPresence),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "last", "<x xmlns='urn:t'/>");
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    assert!(svc.presence_wanted().contains(&b(CAROL)));

    let out = set_presence(&mut svc, CAROL_PHONE, Some(Show::Online));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, j(CAROL_PHONE));
    match &*out[0].event {
        Event::Items { items, .. } => assert_eq!(items[0].id, "last"),
        e => panic!("unexpected event {e:?}"),
    }
    // Already online: a show change sends nothing again.
    assert!(set_presence(&mut svc, CAROL_PHONE, Some(Show::Away)).is_empty());
    // Another resource gets its own copy.
    let out = set_presence(&mut svc, CAROL_DESK, Some(Show::Online));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to, j(CAROL_DESK));
    // Offline and back: sent again.
    set_presence(&mut svc, CAROL_PHONE, None);
    assert_eq!(set_presence(&mut svc, CAROL_PHONE, Some(Show::Xa)).len(), 1);
    // Someone who is not subscribed gets nothing.
    assert!(set_presence(&mut svc, BOB, Some(Show::Online)).is_empty());
}

#[test]
fn on_sub_and_presence_respects_show_values_and_full_jid_subscriptions() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            send_last_published_item: Some(SendLastPublished::OnSubAndPresence),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "last", "<x xmlns='urn:t'/>");
    subscribe_with(&mut svc, CAROL_PHONE, CAROL_PHONE, Some(vec![Show::Online]));
    assert!(set_presence(&mut svc, CAROL_DESK, Some(Show::Online)).is_empty());
    assert!(set_presence(&mut svc, CAROL_PHONE, Some(Show::Dnd)).is_empty());
    set_presence(&mut svc, CAROL_PHONE, None);
    assert_eq!(
        set_presence(&mut svc, CAROL_PHONE, Some(Show::Online)).len(),
        1
    );
}

#[test]
fn presence_wanted_follows_configuration_and_survives_reopen() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    svc.take_presence_requests();
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: presence_node(),
        },
    );
    assert!(svc.take_presence_requests().contains(&b(CAROL)));
    assert!(svc.presence_wanted().contains(&b(CAROL)));
    // Derived from the subscriptions: the same after reopening the store.
    let store = std::mem::take(svc.store_mut());
    let svc = Service::open(store, policy()).expect("reopen");
    assert!(svc.presence_wanted().contains(&b(CAROL)));
}

#[test]
fn presence_of_jids_no_subscription_needs_is_not_kept() {
    let mut svc = service();
    create(&mut svc, Default::default());
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    set_presence(&mut svc, CAROL_PHONE, Some(Show::Online));
    set_presence(&mut svc, BOB, Some(Show::Online));
    assert!(svc.presence().is_empty());
}

#[test]
fn resources_reported_again_after_a_reconnect_do_not_get_the_last_item_again() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            send_last_published_item: Some(SendLastPublished::OnSubAndPresence),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "last", "<x xmlns='urn:t'/>");
    subscribe_with(&mut svc, CAROL_PHONE, CAROL, None);
    assert_eq!(
        set_presence(&mut svc, CAROL_PHONE, Some(Show::Online)).len(),
        1
    );
    // The link dropped: the table is reset, and the probe answer comes back.
    svc.clear_presence();
    assert!(svc.presence().is_empty());
    assert!(set_presence(&mut svc, CAROL_PHONE, Some(Show::Online)).is_empty());
    // A resource that was not online before the reset does count as coming online.
    assert_eq!(
        set_presence(&mut svc, CAROL_DESK, Some(Show::Online)).len(),
        1
    );
    // Once the stale set is forgotten, a fresh login gets the item again.
    svc.clear_presence();
    svc.forget_stale_presence();
    assert_eq!(
        set_presence(&mut svc, CAROL_PHONE, Some(Show::Online)).len(),
        1
    );
}
