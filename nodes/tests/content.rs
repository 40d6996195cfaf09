//! Content-based subscriptions (XEP-0060 §12 "Content-Based Pubsub Systems", Roost feature
//! `urn:roost:filter:0`): the subscription option `x-roost#filter` in the engine.

mod common;

use common::*;
use roost_nodes::filter::Filter;
use roost_nodes::*;

const CAROL: &str = "carol@denmark.lit";
const CAROL_PHONE: &str = "carol@denmark.lit/phone";

fn log(level: &str, host: &str) -> String {
    format!("<log xmlns='urn:t' level='{level}'><host>{host}</host><msg>m</msg></log>")
}

fn with_filter(f: &str) -> SubOptionsPatch {
    SubOptionsPatch {
        filter: Some(f.to_owned()),
        ..Default::default()
    }
}

/// Subscribe-and-configure (§6.3.7) `jid` with `options`, at time `now`.
fn subscribe_at(
    svc: &mut Service<MemStore>,
    jid: &str,
    options: SubOptionsPatch,
    now: Millis,
) -> Result<Subscription, Error> {
    let req = Request::Subscribe {
        node: NODE.into(),
        jid: j(jid),
        options: Some(options),
    };
    match svc.handle(&j(jid), req, now)?.reply {
        Reply::Subscription { sub, .. } => Ok(sub),
        r => panic!("unexpected reply {r:?}"),
    }
}

fn subscribe_filtered(svc: &mut Service<MemStore>, jid: &str, f: &str) -> Subscription {
    subscribe_at(svc, jid, with_filter(f), 1_000).expect("subscribe with a filter")
}

fn set_filter(svc: &mut Service<MemStore>, jid: &str, subid: &str, f: &str) -> Result<(), Error> {
    let req = Request::SetOptions {
        node: NODE.into(),
        jid: j(jid),
        subid: Some(subid.to_owned()),
        options: with_filter(f),
    };
    svc.handle(&j(jid), req, 1_000).map(|_| ())
}

/// (recipient, subids, names them in SHIM headers) of every notification, in order.
fn deliveries(out: &[Notification]) -> Vec<(String, Vec<String>, bool)> {
    out.iter()
        .map(|n| (n.to.to_string(), n.subids.clone(), n.name_subids))
        .collect()
}

fn to(out: &[Notification], jid: &str) -> Vec<Notification> {
    out.iter().filter(|n| n.to == j(jid)).cloned().collect()
}

fn item_ids(n: &Notification) -> Vec<String> {
    match &*n.event {
        Event::Items { items, .. } => items.iter().map(|i| i.id.clone()).collect(),
        Event::Retract { ids } => ids.clone(),
        e => panic!("not about items: {e:?}"),
    }
}

fn options_of(svc: &mut Service<MemStore>, jid: &str, subid: &str) -> SubOptions {
    let req = Request::GetOptions {
        node: NODE.into(),
        jid: j(jid),
        subid: Some(subid.to_owned()),
    };
    match ok(svc, jid, req).reply {
        Reply::Options { options, .. } => options,
        r => panic!("unexpected reply {r:?}"),
    }
}

#[test]
fn an_item_reaches_a_filtered_subscription_only_when_it_matches() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let a = subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    subscribe(&mut svc, BOB);

    let out = publish(&mut svc, OWNER, "1", &log("error", "web-1")).notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    // The filtered subscription is named, so its subscriber knows which filter matched.
    assert_eq!(
        deliveries(&to(&out, ALICE)),
        [(ALICE.into(), vec![a.subid], true)]
    );
    assert!(!to(&out, BOB)[0].name_subids);

    let out = publish(&mut svc, OWNER, "2", &log("info", "web-1")).notifications;
    assert_eq!(recipients_of(&out), [BOB]);
    // A payload without the attribute: a comparison on nothing is false.
    let out = publish(&mut svc, OWNER, "3", "<log xmlns='urn:t'/>").notifications;
    assert_eq!(recipients_of(&out), [BOB]);
}

fn recipients_of(out: &[Notification]) -> Vec<String> {
    let mut v: Vec<String> = out.iter().map(|n| n.to.to_string()).collect();
    v.sort();
    v
}

#[test]
fn the_filter_is_kept_as_its_canonical_text_and_an_empty_one_is_none() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let a = subscribe_filtered(&mut svc, ALICE, "  @level='error'and(host^=\"web-\")");
    let canonical = Filter::parse("@level='error' and host ^= 'web-'")
        .unwrap()
        .to_string();
    assert_eq!(a.options.filter.as_deref(), Some(canonical.as_str()));
    assert_eq!(
        options_of(&mut svc, ALICE, &a.subid).filter.as_deref(),
        Some(canonical.as_str())
    );
    // Empty (or blank) means no filter.
    let b = subscribe_filtered(&mut svc, BOB, "  ");
    assert_eq!(b.options.filter, None);
    set_filter(&mut svc, ALICE, &a.subid, "").unwrap();
    assert_eq!(options_of(&mut svc, ALICE, &a.subid).filter, None);
    let out = publish(&mut svc, OWNER, "1", &log("info", "db")).notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    assert!(out.iter().all(|n| !n.name_subids));
}

#[test]
fn an_unparsable_filter_is_refused_with_where_and_why_and_changes_nothing() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let err = subscribe_at(&mut svc, ALICE, with_filter("@level = "), 1_000).unwrap_err();
    let Error::InvalidFilter(e) = &err else {
        panic!("expected InvalidFilter, got {err:?}");
    };
    assert_eq!(e.offset, 9);
    assert!(err.to_string().starts_with("at 9: "), "{err}");
    assert!(all_subs(&mut svc).is_empty());

    let a = subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    let err = set_filter(&mut svc, ALICE, &a.subid, "(host = 'a'").unwrap_err();
    assert!(matches!(err, Error::InvalidFilter(_)), "{err:?}");
    assert_eq!(options_of(&mut svc, ALICE, &a.subid), a.options);
    // Still the old filter in force.
    let out = publish(&mut svc, OWNER, "1", &log("error", "b")).notifications;
    assert_eq!(recipients_of(&out), [ALICE]);

    // The policy's limits bound filters.
    let mut svc = service_with(Policy {
        filter_limits: filter::Limits {
            max_predicates: 1,
            ..Default::default()
        },
        ..policy()
    });
    create(&mut svc, NodeConfigPatch::default());
    let err = subscribe_at(&mut svc, ALICE, with_filter("a = 1 and b = 2"), 1_000).unwrap_err();
    assert!(matches!(err, Error::InvalidFilter(_)), "{err:?}");
}

#[test]
fn one_jid_with_two_filters_gets_one_notification_naming_what_matched() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let errors = subscribe_filtered(&mut svc, BOB, "@level = 'error'");
    let web = subscribe_filtered(&mut svc, BOB, "host ^= 'web-'");
    assert_ne!(
        errors.subid, web.subid,
        "each filtered subscription has its own subid"
    );
    let mut both = vec![errors.subid.clone(), web.subid.clone()];
    both.sort();

    let out = publish(&mut svc, OWNER, "1", &log("error", "web-1")).notifications;
    assert_eq!(deliveries(&out), [(BOB.into(), both, true)]);
    let out = publish(&mut svc, OWNER, "2", &log("info", "web-2")).notifications;
    assert_eq!(
        deliveries(&out),
        [(BOB.into(), vec![web.subid.clone()], true)]
    );
    let out = publish(&mut svc, OWNER, "3", &log("error", "db-1")).notifications;
    assert_eq!(
        deliveries(&out),
        [(BOB.into(), vec![errors.subid.clone()], true)]
    );
    assert!(publish(&mut svc, OWNER, "4", &log("info", "db-1"))
        .notifications
        .is_empty());

    // Requests about one of them need its subid (§6.2.3); unsubscribing one leaves the other.
    let err = run(
        &mut svc,
        BOB,
        Request::Unsubscribe {
            node: NODE.into(),
            jid: j(BOB),
            subid: None,
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::SubIdRequired);
    ok(
        &mut svc,
        BOB,
        Request::Unsubscribe {
            node: NODE.into(),
            jid: j(BOB),
            subid: Some(web.subid.clone()),
        },
    );
    let out = publish(&mut svc, OWNER, "5", &log("error", "web-1")).notifications;
    assert_eq!(
        deliveries(&out),
        [(BOB.into(), vec![errors.subid.clone()], true)]
    );
    assert!(publish(&mut svc, OWNER, "6", &log("info", "web-1"))
        .notifications
        .is_empty());
}

#[test]
fn a_plain_subscribe_beside_filtered_ones_is_a_subscription_to_everything() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let filtered = subscribe_filtered(&mut svc, BOB, "@level = 'error'");
    let plain = subscribe(&mut svc, BOB);
    assert_ne!(plain.subid, filtered.subid);
    assert_eq!(plain.options.filter, None);
    // Idempotent from then on.
    assert_eq!(subscribe(&mut svc, BOB).subid, plain.subid);
    assert_eq!(all_subs(&mut svc).len(), 2);
    let out = publish(&mut svc, OWNER, "1", &log("info", "a")).notifications;
    assert_eq!(
        deliveries(&out),
        [(BOB.into(), vec![plain.subid.clone()], false)]
    );
    let out = publish(&mut svc, OWNER, "2", &log("error", "a")).notifications;
    let mut both = vec![plain.subid, filtered.subid];
    both.sort();
    assert_eq!(deliveries(&out), [(BOB.into(), both, true)]);
}

#[test]
fn a_retraction_reaches_a_filtered_subscription_only_if_the_item_matched() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_retract: Some(true),
            max_items: Some(MaxItems::Count(100)),
            ..Default::default()
        },
    );
    subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    subscribe(&mut svc, BOB);
    publish(&mut svc, OWNER, "e1", &log("error", "a"));
    publish(&mut svc, OWNER, "i1", &log("info", "a"));
    publish(&mut svc, OWNER, "e2", &log("error", "b"));
    let retract = |ids: &[&str]| Request::Retract {
        node: NODE.into(),
        ids: ids.iter().map(|s| s.to_string()).collect(),
        notify: false,
    };
    let out = ok(&mut svc, OWNER, retract(&["i1"])).notifications;
    assert_eq!(recipients_of(&out), [BOB]);
    let out = ok(&mut svc, OWNER, retract(&["e1"])).notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    assert_eq!(item_ids(&to(&out, ALICE)[0]), ["e1"]);

    // Several at once: on a node with filters, one notification per item, so that each
    // filtered subscription hears of exactly the items it matched.
    publish(&mut svc, OWNER, "i2", &log("info", "a"));
    let out = ok(&mut svc, OWNER, retract(&["e2", "i2"])).notifications;
    let alice: Vec<Vec<String>> = to(&out, ALICE).iter().map(item_ids).collect();
    let bob: Vec<Vec<String>> = to(&out, BOB).iter().map(item_ids).collect();
    assert_eq!(alice, [["e2"]]);
    assert_eq!(bob, [["e2"], ["i2"]]);
}

#[test]
fn expired_items_are_retracted_to_filtered_subscriptions_that_matched_them() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_retract: Some(true),
            item_expire: Some(Some(1)),
            ..Default::default()
        },
    );
    subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    let req = |id: &str, p: &str| publish_req(id, p);
    svc.handle(&j(OWNER), req("e", &log("error", "a")), 1_000)
        .unwrap();
    svc.handle(&j(OWNER), req("i", &log("info", "a")), 1_000)
        .unwrap();
    let out = svc.tick(5_000).unwrap();
    let ids: Vec<Vec<String>> = to(&out, ALICE).iter().map(item_ids).collect();
    assert_eq!(ids, [["e"]]);
}

#[test]
fn news_of_the_node_reaches_filtered_subscriptions() {
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
    subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    subscribe(&mut svc, BOB);
    let out = ok(&mut svc, OWNER, Request::Purge { node: NODE.into() }).notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    assert!(out.iter().all(|n| *n.event == Event::Purge));
    let out = ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: NodeConfigPatch {
                title: Some("t".into()),
                ..Default::default()
            },
        },
    )
    .notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    let out = ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: NODE.into(),
            redirect: None,
        },
    )
    .notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
}

#[test]
fn changing_the_filter_with_the_options_form_takes_effect_at_once() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let a = subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    set_filter(&mut svc, ALICE, &a.subid, "host = 'db-1'").unwrap();
    assert!(publish(&mut svc, OWNER, "1", &log("error", "web-1"))
        .notifications
        .is_empty());
    let out = publish(&mut svc, OWNER, "2", &log("info", "db-1")).notifications;
    assert_eq!(recipients_of(&out), [ALICE]);
    // Other options leave the filter alone.
    ok(
        &mut svc,
        ALICE,
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: Some(a.subid.clone()),
            options: SubOptionsPatch {
                include_body: Some(true),
                ..Default::default()
            },
        },
    );
    let out = publish(&mut svc, OWNER, "3", &log("info", "db-1")).notifications;
    assert_eq!(recipients_of(&out), [ALICE]);
    assert!(out[0].include_body);
    assert!(publish(&mut svc, OWNER, "4", &log("info", "db-2"))
        .notifications
        .is_empty());
}

#[test]
fn filters_survive_a_reopen() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let a = subscribe_filtered(&mut svc, ALICE, "@level = 'error' and host ^= 'web-'");
    subscribe(&mut svc, BOB);
    let store = std::mem::take(svc.store_mut());
    let mut svc = Service::open(store, policy()).expect("reopen");
    assert_eq!(options_of(&mut svc, ALICE, &a.subid), a.options);
    let out = publish(&mut svc, OWNER, "1", &log("error", "web-3")).notifications;
    assert_eq!(recipients_of(&out), [ALICE, BOB]);
    let out = publish(&mut svc, OWNER, "2", &log("error", "db-3")).notifications;
    assert_eq!(recipients_of(&out), [BOB]);
}

#[test]
fn items_and_history_are_not_filtered() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    publish(&mut svc, OWNER, "1", &log("error", "a"));
    publish(&mut svc, OWNER, "2", &log("info", "a"));
    let ids: Vec<String> = items(&mut svc, ALICE).into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["1", "2"]);
}

#[test]
fn the_last_item_on_subscribe_is_filtered() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            send_last_published_item: Some(SendLastPublished::OnSub),
            ..Default::default()
        },
    );
    publish(&mut svc, OWNER, "1", &log("info", "a"));
    let req = |f: &str| Request::Subscribe {
        node: NODE.into(),
        jid: j(ALICE),
        options: Some(with_filter(f)),
    };
    let out = ok(&mut svc, ALICE, req("@level = 'error'")).notifications;
    assert!(out.is_empty(), "{out:?}");
    let out = ok(&mut svc, ALICE, req("@level = 'info'")).notifications;
    assert_eq!(out.len(), 1);
    assert_eq!(item_ids(&out[0]), ["1"]);
    assert!(out[0].name_subids);
}

#[test]
fn a_filter_combines_with_presence_based_delivery_and_a_lease() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            presence_based_delivery: Some(true),
            send_last_published_item: Some(SendLastPublished::OnSubAndPresence),
            ..Default::default()
        },
    );
    let opts = SubOptionsPatch {
        expire: Some(Some(60_000)),
        ..with_filter("@level = 'error'")
    };
    subscribe_at(&mut svc, CAROL, opts, 1_000).unwrap();
    // Offline: nothing, matching or not.
    assert!(publish(&mut svc, OWNER, "1", &log("error", "a"))
        .notifications
        .is_empty());
    // Coming online: the last item, if it matches.
    let phone = FullJid::new(CAROL_PHONE).unwrap();
    let out = svc.presence_changed(&phone, Some(Show::Online)).unwrap();
    assert_eq!(recipients_of(&out), [CAROL_PHONE]);
    svc.presence_changed(&phone, None).unwrap();
    publish(&mut svc, OWNER, "2", &log("info", "a"));
    assert!(svc
        .presence_changed(&phone, Some(Show::Online))
        .unwrap()
        .is_empty());
    // Online: the available resource, matching items only.
    assert!(publish(&mut svc, OWNER, "3", &log("info", "a"))
        .notifications
        .is_empty());
    let out = publish(&mut svc, OWNER, "4", &log("error", "a")).notifications;
    assert_eq!(recipients_of(&out), [CAROL_PHONE]);
    // The lease ends: nothing more.
    let ended = svc.tick(60_000).unwrap();
    assert_eq!(recipients_of(&ended), [CAROL]);
    assert!(publish(&mut svc, OWNER, "5", &log("error", "a"))
        .notifications
        .is_empty());
}

#[test]
fn a_filter_combines_with_show_values_and_deliver() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let opts = SubOptionsPatch {
        show_values: Some(vec![Show::Chat]),
        ..with_filter("@level = 'error'")
    };
    let sub = subscribe_at(&mut svc, CAROL, opts, 1_000).unwrap();
    let phone = FullJid::new(CAROL_PHONE).unwrap();
    svc.presence_changed(&phone, Some(Show::Away)).unwrap();
    assert!(publish(&mut svc, OWNER, "1", &log("error", "a"))
        .notifications
        .is_empty());
    svc.presence_changed(&phone, Some(Show::Chat)).unwrap();
    let out = publish(&mut svc, OWNER, "2", &log("error", "a")).notifications;
    assert_eq!(recipients_of(&out), [CAROL_PHONE]);
    assert!(publish(&mut svc, OWNER, "3", &log("info", "a"))
        .notifications
        .is_empty());
    let pause = Request::SetOptions {
        node: NODE.into(),
        jid: j(CAROL),
        subid: Some(sub.subid),
        options: SubOptionsPatch {
            deliver: Some(false),
            ..Default::default()
        },
    };
    ok(&mut svc, CAROL, pause);
    assert!(publish(&mut svc, OWNER, "4", &log("error", "a"))
        .notifications
        .is_empty());
}

#[test]
fn a_filtered_digest_holds_the_matching_items_only() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            max_items: Some(MaxItems::Count(100)),
            ..Default::default()
        },
    );
    let opts = SubOptionsPatch {
        digest: Some(true),
        digest_frequency: Some(1_000),
        ..with_filter("@level = 'error'")
    };
    subscribe_at(&mut svc, ALICE, opts, 0).unwrap();
    assert!(svc.tick(100).unwrap().is_empty());
    for (id, level) in [("a", "error"), ("b", "info"), ("c", "error")] {
        let out = svc
            .handle(&j(OWNER), publish_req(id, &log(level, "h")), 200)
            .unwrap();
        assert!(out.notifications.is_empty(), "digest: nothing one by one");
    }
    let out = svc.tick(1_100).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(item_ids(&out[0]), ["a", "c"]);
    assert!(out[0].name_subids);
    // A period with no matching item sends nothing.
    svc.handle(&j(OWNER), publish_req("d", &log("info", "h")), 1_200)
        .unwrap();
    assert!(svc.tick(2_100).unwrap().is_empty());
}

#[test]
fn a_node_that_delivers_no_payloads_still_filters_on_them() {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            deliver_payloads: Some(false),
            ..Default::default()
        },
    );
    subscribe_filtered(&mut svc, ALICE, "@level = 'error'");
    let out = publish(&mut svc, OWNER, "1", &log("error", "a")).notifications;
    assert_eq!(recipients_of(&out), [ALICE]);
    let Event::Items { items, .. } = &*out[0].event else {
        panic!("items");
    };
    assert!(items[0].payload.is_empty());
    assert!(publish(&mut svc, OWNER, "2", &log("info", "a"))
        .notifications
        .is_empty());
}

/// A fan-out over many filtered and unfiltered subscribers, walked in small chunks, gives
/// exactly what testing every subscription's filter would: the index and the merge with
/// the unfiltered subscriptions lose and repeat nothing.
#[test]
fn a_filtered_fanout_walked_in_chunks_is_what_a_linear_scan_gives() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    let hosts = ["web-1", "web-2", "db-1"];
    let mut subs = Vec::new();
    for i in 0..200 {
        let jid = format!("user{:03}@denmark.lit", (i * 37) % 200);
        let f = match i % 4 {
            0 => None,
            1 => Some(format!("host = '{}'", hosts[i % 3])),
            2 => Some("@level = 'error' or host ^= 'web-'".to_owned()),
            _ => Some(format!(
                "host = '{}' and @level != 'debug'",
                hosts[(i + 1) % 3]
            )),
        };
        let sub = match &f {
            Some(f) => subscribe_filtered(&mut svc, &jid, f),
            None => subscribe(&mut svc, &jid),
        };
        subs.push((jid, sub.subid, f.map(|f| Filter::parse(&f).unwrap())));
    }
    for (n, (level, host)) in [("error", "db-1"), ("info", "web-2"), ("debug", "db-1")]
        .into_iter()
        .enumerate()
    {
        let payload = log(level, host);
        let mut expected: Vec<(String, Vec<String>)> = Vec::new();
        for (jid, subid, f) in &subs {
            let selected = match f {
                Some(f) => f.matches_payload(&payload),
                None => true,
            };
            if selected {
                expected.push((jid.clone(), vec![subid.clone()]));
            }
        }
        expected.sort();
        let req = publish_req(&n.to_string(), &payload);
        let streamed = svc.handle_streamed(&j(OWNER), req, 1_000).unwrap();
        let mut got = Vec::new();
        for d in streamed.dispatches {
            let Dispatch::Fanout(f) = d else {
                panic!("a publish is a fan-out");
            };
            while !svc.walk(&f, 3, &mut got) {}
        }
        let got: Vec<(String, Vec<String>)> = got
            .into_iter()
            .map(|n| (n.to.to_string(), n.subids))
            .collect();
        assert_eq!(got, expected, "item {level} {host}");
    }
}
