//! Content filters (`x-roost#filter`, Roost feature `urn:roost:filter:0`) on subscriptions
//! to collections (XEP-0248): a filtered subscription to a collection hears of the items
//! of the leaves below it that its filter matches, through the leaf's delivery options and
//! access, one notification per recipient naming the collection and the matched subids.

mod common;

use common::*;
use roost_nodes::*;

const CAROL: &str = "carol@denmark.lit/tablet";

fn log(level: &str) -> String {
    format!("<log xmlns='urn:t' level='{level}'/>")
}

fn make(svc: &mut Service<MemStore>, node: &str, patch: NodeConfigPatch) {
    ok(
        svc,
        OWNER,
        Request::Create {
            node: Some(node.into()),
            config: Some(patch),
        },
    );
}

/// logs (collection) ⊃ web, db (leaves), all the owner's, open.
fn tree(svc: &mut Service<MemStore>) {
    make(
        svc,
        "logs",
        NodeConfigPatch {
            node_type: Some(NodeType::Collection),
            ..Default::default()
        },
    );
    for leaf in ["web", "db"] {
        make(
            svc,
            leaf,
            NodeConfigPatch {
                collection: Some(vec!["logs".into()]),
                ..Default::default()
            },
        );
    }
}

/// `jid` subscribes to the items below `node` with `filter` (none: every item).
fn subscribe_items(
    svc: &mut Service<MemStore>,
    jid: &str,
    node: &str,
    filter: Option<&str>,
) -> Result<Subscription, Error> {
    let options = SubOptionsPatch {
        subscription_type: Some(SubscriptionType::Items),
        filter: filter.map(str::to_owned),
        ..Default::default()
    };
    let req = Request::Subscribe {
        node: node.into(),
        jid: j(jid),
        options: Some(options),
    };
    match run(svc, jid, req)?.reply {
        Reply::Subscription { sub, .. } => Ok(sub),
        r => panic!("unexpected {r:?}"),
    }
}

fn publish_to(svc: &mut Service<MemStore>, node: &str, id: &str, payload: &str) -> Outcome {
    ok(
        svc,
        OWNER,
        Request::Publish {
            node: node.into(),
            item: Some(NewItem {
                id: Some(id.into()),
                payload: Some(payload.into()),
            }),
            options: None,
        },
    )
}

/// (recipient, node, collections, subids, names the subids) of a notification.
type Seen = (String, String, Vec<String>, Vec<String>, bool);

/// What every notification says, sorted.
fn seen(out: &Outcome) -> Vec<Seen> {
    let mut v: Vec<_> = out
        .notifications
        .iter()
        .map(|n| {
            (
                n.to.to_string(),
                n.node.clone(),
                n.collections.clone(),
                n.subids.clone(),
                n.name_subids,
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_filtered_collection_subscription_hears_of_the_matching_leaf_items_only() {
    let mut svc = service();
    tree(&mut svc);
    let errors = subscribe_items(&mut svc, CAROL, "logs", Some("@level = 'error'")).unwrap();
    let all = subscribe_items(&mut svc, BOB, "logs", None).unwrap();

    // An error on either leaf reaches carol's filtered subscription, through the
    // collection: a Collection header and her subid named (the filter matched).
    for leaf in ["web", "db"] {
        let out = publish_to(&mut svc, leaf, "e", &log("error"));
        assert_eq!(
            seen(&out),
            [
                (
                    BOB.to_owned(),
                    leaf.to_owned(),
                    vec!["logs".to_owned()],
                    vec![all.subid.clone()],
                    false
                ),
                (
                    CAROL.to_owned(),
                    leaf.to_owned(),
                    vec!["logs".to_owned()],
                    vec![errors.subid.clone()],
                    true
                ),
            ]
        );
    }
    // An info item reaches only the unfiltered subscription.
    let out = publish_to(&mut svc, "web", "i", &log("info"));
    let to: Vec<_> = seen(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(to, [BOB]);

    // Its retraction too: carol never heard of it.
    let retract = |node: &str, id: &str| Request::Retract {
        node: node.into(),
        ids: vec![id.into()],
        notify: true,
    };
    let out = ok(&mut svc, OWNER, retract("web", "i"));
    let to: Vec<_> = seen(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(to, [BOB]);
    let out = ok(&mut svc, OWNER, retract("web", "e"));
    let to: Vec<_> = seen(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(to, [BOB, CAROL]);

    // Purge is news of the node: it reaches the filtered subscription whatever its filter
    // (sent when the leaf notifies retractions, XEP-0060 §8.5).
    publish_to(&mut svc, "db", "i2", &log("info"));
    let notify_retract = NodeConfigPatch {
        notify_retract: Some(true),
        ..Default::default()
    };
    let set = Request::SetConfig {
        node: "db".into(),
        config: notify_retract,
    };
    ok(&mut svc, OWNER, set);
    let out = ok(&mut svc, OWNER, Request::Purge { node: "db".into() });
    let to: Vec<_> = seen(&out).into_iter().map(|s| s.0).collect();
    assert_eq!(to, [BOB, CAROL]);
}

#[test]
fn leaf_and_collection_filters_together_give_one_notification_naming_both() {
    let mut svc = service();
    tree(&mut svc);
    let on_logs = subscribe_items(&mut svc, CAROL, "logs", Some("@level = 'error'")).unwrap();
    let req = Request::Subscribe {
        node: "web".into(),
        jid: j(CAROL),
        options: Some(SubOptionsPatch {
            filter: Some("exists(@level)".into()),
            ..Default::default()
        }),
    };
    let on_web = match ok(&mut svc, CAROL, req).reply {
        Reply::Subscription { sub, .. } => sub,
        r => panic!("unexpected {r:?}"),
    };
    let out = publish_to(&mut svc, "web", "e", &log("error"));
    assert_eq!(out.notifications.len(), 1, "{:?}", out.notifications);
    let n = &out.notifications[0];
    assert_eq!(n.collections, ["logs"]);
    let mut want = vec![on_logs.subid.clone(), on_web.subid.clone()];
    want.sort();
    assert_eq!(n.subids, want);
    assert!(n.name_subids);
    // Only the leaf's filter matches a warning: no Collection header.
    let out = publish_to(&mut svc, "web", "w", &log("warning"));
    assert_eq!(out.notifications.len(), 1);
    assert!(out.notifications[0].collections.is_empty());
    assert_eq!(out.notifications[0].subids, [on_web.subid]);
}

#[test]
fn the_leaf_s_access_and_delivery_options_still_apply() {
    let mut svc = service();
    tree(&mut svc);
    subscribe_items(&mut svc, CAROL, "logs", Some("@level = 'error'")).unwrap();
    // A whitelist leaf: carol may not retrieve its items, so its errors do not reach her.
    make(
        &mut svc,
        "secret",
        NodeConfigPatch {
            collection: Some(vec!["logs".into()]),
            access_model: Some(AccessModel::Whitelist),
            ..Default::default()
        },
    );
    assert!(publish_to(&mut svc, "secret", "e", &log("error"))
        .notifications
        .is_empty());
    // A leaf that does not deliver notifications tells nobody, filtered or not.
    let quiet = NodeConfigPatch {
        deliver_notifications: Some(false),
        ..Default::default()
    };
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: "db".into(),
            config: quiet,
        },
    );
    assert!(publish_to(&mut svc, "db", "e", &log("error"))
        .notifications
        .is_empty());
}

#[test]
fn several_filtered_subscriptions_to_one_collection_are_allowed() {
    let mut svc = service();
    tree(&mut svc);
    let a = subscribe_items(&mut svc, CAROL, "logs", Some("@level = 'error'")).unwrap();
    let b = subscribe_items(&mut svc, CAROL, "logs", Some("@level = 'warning'")).unwrap();
    assert_ne!(a.subid, b.subid);
    // Unfiltered, the kind of news can be subscribed to once (XEP-0248 §subscribe-errors).
    subscribe_items(&mut svc, CAROL, "logs", None).unwrap();
    assert!(matches!(
        subscribe_items(&mut svc, CAROL, "logs", None),
        Err(Error::SubscriptionExists(_))
    ));
    let out = publish_to(&mut svc, "web", "w", &log("warning"));
    assert_eq!(out.notifications.len(), 1);
    assert!(out.notifications[0].subids.contains(&b.subid));
    assert!(!out.notifications[0].subids.contains(&a.subid));
}
