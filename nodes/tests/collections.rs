//! XEP-0248 collection nodes, following its numbered examples (`xep-0248.xml`, 0.5.0),
//! then what the XEP leaves to the service: access through collections, the leaf's
//! delivery options, one notification per recipient, topic hierarchies from names.

mod common;

use common::*;
use roost_nodes::*;

const CAROL: &str = "carol@denmark.lit/tablet";

fn full(s: &str) -> FullJid {
    FullJid::new(s).expect("valid full JID")
}

fn cfg(f: impl FnOnce(&mut NodeConfigPatch)) -> NodeConfigPatch {
    let mut p = NodeConfigPatch::default();
    f(&mut p);
    p
}

fn collection() -> NodeConfigPatch {
    cfg(|p| p.node_type = Some(NodeType::Collection))
}

fn in_collections(parents: &[&str]) -> NodeConfigPatch {
    cfg(|p| p.collection = Some(parents.iter().map(|s| s.to_string()).collect()))
}

fn make(svc: &mut Service<MemStore>, actor: &str, node: &str, patch: NodeConfigPatch) -> Outcome {
    ok(
        svc,
        actor,
        Request::Create {
            node: Some(node.into()),
            config: Some(patch),
        },
    )
}

/// blogs (collection) ⊃ princely_musings, kingly_ravings (leaves); news (collection) ⊃
/// politics (collection) ⊃ elections (leaf). All the owner's, open.
fn tree(svc: &mut Service<MemStore>) {
    make(svc, OWNER, "blogs", collection());
    make(svc, OWNER, "princely_musings", in_collections(&["blogs"]));
    make(svc, OWNER, "kingly_ravings", in_collections(&["blogs"]));
    make(svc, OWNER, "news", collection());
    let mut politics = in_collections(&["news"]);
    politics.node_type = Some(NodeType::Collection);
    make(svc, OWNER, "politics", politics);
    make(svc, OWNER, "elections", in_collections(&["politics"]));
}

fn sub_to(
    svc: &mut Service<MemStore>,
    jid: &str,
    node: &str,
    kind: Option<SubscriptionType>,
    depth: Option<SubscriptionDepth>,
) -> Result<Subscription, Error> {
    let options = (kind.is_some() || depth.is_some()).then(|| SubOptionsPatch {
        subscription_type: kind,
        subscription_depth: depth,
        ..Default::default()
    });
    match run(
        svc,
        jid,
        Request::Subscribe {
            node: node.into(),
            jid: j(jid),
            options,
        },
    )? {
        Outcome {
            reply: Reply::Subscription { sub, .. },
            ..
        } => Ok(sub),
        o => panic!("unexpected {o:?}"),
    }
}

fn items_sub(svc: &mut Service<MemStore>, jid: &str, node: &str, depth: SubscriptionDepth) {
    sub_to(svc, jid, node, Some(SubscriptionType::Items), Some(depth)).expect("subscribe");
}

fn publish_to(svc: &mut Service<MemStore>, node: &str, id: &str) -> Outcome {
    ok(
        svc,
        OWNER,
        Request::Publish {
            node: node.into(),
            item: Some(NewItem {
                id: Some(id.into()),
                payload: Some("<entry xmlns='urn:t'/>".into()),
            }),
            options: None,
        },
    )
}

/// A node's configuration, as a service admin reads it.
fn config_of(svc: &mut Service<MemStore>, node: &str) -> NodeConfig {
    match ok(svc, ADMIN, Request::GetConfig { node: node.into() }).reply {
        Reply::Config { config, .. } => config,
        r => panic!("unexpected {r:?}"),
    }
}

fn set_config(
    svc: &mut Service<MemStore>,
    actor: &str,
    node: &str,
    patch: NodeConfigPatch,
) -> Result<Outcome, Error> {
    run(
        svc,
        actor,
        Request::SetConfig {
            node: node.into(),
            config: patch,
        },
    )
}

/// (recipient, node, collections) of every notification, sorted.
fn seen(out: &Outcome) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = out
        .notifications
        .iter()
        .map(|n| (n.to.to_string(), n.node.clone(), n.collections.clone()))
        .collect();
    v.sort();
    v
}

fn to(jid: &str, node: &str, collections: &[&str]) -> (String, String, Vec<String>) {
    (
        jid.to_owned(),
        node.to_owned(),
        collections.iter().map(|s| s.to_string()).collect(),
    )
}

fn names(nodes: &[NodeSummary]) -> Vec<&str> {
    nodes.iter().map(|n| n.node.as_str()).collect()
}

fn children_seen(svc: &mut Service<MemStore>, actor: &str, node: &str) -> Vec<String> {
    match ok(svc, actor, Request::DiscoItems { node: node.into() }).reply {
        Reply::Children { nodes, .. } => names(&nodes).iter().map(|s| s.to_string()).collect(),
        r => panic!("unexpected {r:?}"),
    }
}

// ---------------------------------------------------------------- §disco-nodes, ex. 3–6

#[test]
fn ex3_4_the_service_lists_first_level_nodes_ex5_6_a_collection_its_children() {
    let mut svc = service();
    tree(&mut svc);
    let Reply::Nodes { nodes, .. } = ok(&mut svc, ALICE, Request::DiscoNodes).reply else {
        panic!("nodes");
    };
    assert_eq!(names(&nodes), ["blogs", "news"]);
    assert_eq!(
        children_seen(&mut svc, ALICE, "blogs"),
        ["kingly_ravings", "princely_musings"]
    );
    assert_eq!(children_seen(&mut svc, ALICE, "news"), ["politics"]);
    // Paged the same way (XEP-0059), the RSM UID being the NodeID.
    let paged = ok(
        &mut svc,
        ALICE,
        Request::Page {
            list: PagedList::ItemIds {
                node: "blogs".into(),
            },
            rsm: RsmQuery {
                max: Some(1),
                ..Default::default()
            },
        },
    );
    let Reply::Children { nodes, page, .. } = paged.reply else {
        panic!("children");
    };
    assert_eq!(names(&nodes), ["kingly_ravings"]);
    assert_eq!(page.unwrap().count, 2);
    // The configuration reflects the graph both ways (§impl-config).
    assert_eq!(
        config_of(&mut svc, "blogs").children,
        ["kingly_ravings", "princely_musings"]
    );
    assert_eq!(config_of(&mut svc, "elections").collection, ["politics"]);
}

// ------------------------------------------------- §notify-items, §notify-nodes, ex. 7–8

#[test]
fn ex7_an_item_reaches_collection_subscribers_under_the_leaf_name_with_the_collection() {
    let mut svc = service();
    tree(&mut svc);
    items_sub(&mut svc, ALICE, "blogs", SubscriptionDepth::Depth(1));
    let out = publish_to(
        &mut svc,
        "princely_musings",
        "ae890ac52d0df67ed7cfdf51b644e901",
    );
    assert_eq!(
        seen(&out),
        [to(
            "alice@denmark.lit/phone",
            "princely_musings",
            &["blogs"]
        )]
    );
    let Event::Items { items, .. } = &*out.notifications[0].event else {
        panic!("items");
    };
    assert_eq!(items[0].id, "ae890ac52d0df67ed7cfdf51b644e901");
}

#[test]
fn ex8_a_node_created_in_a_collection_is_news_to_its_nodes_subscribers() {
    let mut svc = service();
    tree(&mut svc);
    // Example 12: no options, so "nodes" and depth 1, the defaults the XEP recommends.
    let sub = sub_to(&mut svc, ALICE, "blogs", None, None).unwrap();
    assert_eq!(sub.options.subscription_type, SubscriptionType::Nodes);
    assert_eq!(sub.options.subscription_depth, SubscriptionDepth::Depth(1));
    let out = make(
        &mut svc,
        OWNER,
        "moorish_meanderings",
        in_collections(&["blogs"]),
    );
    assert_eq!(
        seen(&out),
        [to(
            "alice@denmark.lit/phone",
            "moorish_meanderings",
            &["blogs"]
        )]
    );
    assert_eq!(*out.notifications[0].event, Event::Create);
    // Items are not node news: a "nodes" subscriber hears nothing of them.
    assert!(publish_to(&mut svc, "moorish_meanderings", "1")
        .notifications
        .is_empty());
}

// ---------------------------------------------------- §notify-associate-dissociate, 9–10

#[test]
fn ex9_10_association_and_dissociation_are_news_from_the_collection() {
    let mut svc = service();
    tree(&mut svc);
    make(&mut svc, OWNER, "loose", NodeConfigPatch::default());
    sub_to(&mut svc, ALICE, "blogs", None, None).unwrap();
    // By configuring the child (pubsub#collection)...
    let out = set_config(&mut svc, OWNER, "loose", in_collections(&["blogs"])).unwrap();
    let assoc: Vec<_> = out
        .notifications
        .iter()
        .filter(|n| matches!(*n.event, Event::Collection { .. }))
        .collect();
    assert_eq!(assoc.len(), 1);
    assert_eq!(assoc[0].to, j(ALICE));
    assert_eq!(assoc[0].node, "blogs");
    assert!(
        assoc[0].collections.is_empty(),
        "from the collection itself"
    );
    assert_eq!(
        *assoc[0].event,
        Event::Collection {
            child: "loose".into(),
            associate: true
        }
    );
    assert!(config_of(&mut svc, "blogs")
        .children
        .contains(&"loose".to_owned()));
    // ... and by configuring the collection (pubsub#children).
    let kids = config_of(&mut svc, "blogs")
        .children
        .into_iter()
        .filter(|c| c != "loose")
        .collect();
    let out = set_config(&mut svc, OWNER, "blogs", cfg(|p| p.children = Some(kids))).unwrap();
    let dissoc: Vec<_> = out
        .notifications
        .iter()
        .filter(|n| matches!(*n.event, Event::Collection { .. }))
        .collect();
    assert_eq!(dissoc.len(), 1);
    assert_eq!(
        *dissoc[0].event,
        Event::Collection {
            child: "loose".into(),
            associate: false
        }
    );
    assert!(config_of(&mut svc, "loose").collection.is_empty());
    // An "items" subscriber hears of neither.
    items_sub(&mut svc, BOB, "blogs", SubscriptionDepth::All);
    let out = set_config(&mut svc, OWNER, "loose", in_collections(&["blogs"])).unwrap();
    assert!(out.notifications.iter().all(|n| n.to != j(BOB)));
}

// --------------------------------------------------------------- §subscribe, ex. 12–16

#[test]
fn ex13_items_with_depth_all_reach_every_leaf_below_depth_1_only_children() {
    let mut svc = service();
    tree(&mut svc);
    items_sub(&mut svc, ALICE, "news", SubscriptionDepth::All);
    items_sub(&mut svc, BOB, "news", SubscriptionDepth::Depth(1));
    items_sub(&mut svc, CAROL, "news", SubscriptionDepth::Depth(2));
    let out = publish_to(&mut svc, "elections", "1");
    assert_eq!(
        seen(&out),
        [
            to("alice@denmark.lit/phone", "elections", &["news"]),
            to(CAROL, "elections", &["news"]),
        ]
    );
}

#[test]
fn ex15_a_second_subscription_for_the_same_kind_of_news_is_a_conflict() {
    let mut svc = service();
    tree(&mut svc);
    items_sub(&mut svc, ALICE, "blogs", SubscriptionDepth::Depth(1));
    let again = sub_to(
        &mut svc,
        ALICE,
        "blogs",
        Some(SubscriptionType::Items),
        Some(SubscriptionDepth::All),
    );
    assert_eq!(again, Err(Error::SubscriptionExists("items")));
    let all = sub_to(&mut svc, ALICE, "blogs", Some(SubscriptionType::All), None);
    assert_eq!(all, Err(Error::SubscriptionExists("all")));
    // Once for nodes, once for items: allowed (§subscribe-errors).
    let nodes = sub_to(
        &mut svc,
        ALICE,
        "blogs",
        Some(SubscriptionType::Nodes),
        None,
    );
    assert!(nodes.is_ok());
    // A plain subscribe returns one held (idempotent, as on a leaf).
    assert!(sub_to(&mut svc, ALICE, "blogs", None, None).is_ok());
}

// ------------------------------------------------------------ §retrieve-items, ex. 17–19

#[test]
fn ex19_collections_hold_no_items() {
    let mut svc = service();
    tree(&mut svc);
    let items = run(
        &mut svc,
        OWNER,
        Request::Items {
            node: "blogs".into(),
            max_items: None,
            ids: vec![],
            subid: None,
        },
    );
    assert_eq!(items, Err(Error::Unsupported("retrieve-items")));
    let publish = run(
        &mut svc,
        OWNER,
        Request::Publish {
            node: "blogs".into(),
            item: Some(NewItem {
                id: None,
                payload: Some("<x xmlns='urn:t'/>".into()),
            }),
            options: None,
        },
    );
    assert_eq!(publish, Err(Error::Unsupported("publish")));
    let purge = run(
        &mut svc,
        OWNER,
        Request::Purge {
            node: "blogs".into(),
        },
    );
    assert_eq!(purge, Err(Error::NotPersistent));
    let retract = run(
        &mut svc,
        OWNER,
        Request::Retract {
            node: "blogs".into(),
            ids: vec!["x".into()],
            notify: false,
        },
    );
    assert_eq!(retract, Err(Error::NotPersistent));
    let history = run(
        &mut svc,
        OWNER,
        Request::History {
            node: "blogs".into(),
            filter: HistoryFilter::default(),
            rsm: RsmQuery::default(),
        },
    );
    assert_eq!(history, Err(Error::Unsupported("retrieve-items")));
}

// -------------------------------------------------------------- §createnode, ex. 20–21

#[test]
fn ex20_21_create_a_collection() {
    let mut svc = service();
    let out = make(&mut svc, OWNER, "announcements", collection());
    assert_eq!(
        out.reply,
        Reply::Created {
            node: "announcements".into()
        }
    );
    assert_eq!(
        config_of(&mut svc, "announcements").node_type,
        NodeType::Collection
    );
}

// ----------------------------------------------------- §configure-collection, ex. 25–31

#[test]
fn ex25_26_configure_a_collection_with_children_and_the_root_as_parent() {
    let mut svc = service();
    make(&mut svc, OWNER, "Romeoance", NodeConfigPatch::default());
    make(&mut svc, OWNER, "Julliennui", NodeConfigPatch::default());
    make(&mut svc, OWNER, "blogs", NodeConfigPatch::default());
    let out = set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| {
            p.node_type = Some(NodeType::Collection);
            p.children = Some(vec!["Romeoance".into(), "Julliennui".into()]);
            // "To associate the root node to the collection the <value/> element MUST be
            // empty": no parent but the root.
            p.collection = Some(vec![String::new()]);
        }),
    )
    .unwrap();
    assert_eq!(out.reply, Reply::Done);
    let blogs = config_of(&mut svc, "blogs");
    assert_eq!(blogs.children, ["Julliennui", "Romeoance"]);
    assert!(blogs.collection.is_empty());
    assert_eq!(config_of(&mut svc, "Romeoance").collection, ["blogs"]);
    let Reply::Nodes { nodes, .. } = ok(&mut svc, ALICE, Request::DiscoNodes).reply else {
        panic!("nodes");
    };
    assert_eq!(names(&nodes), ["blogs"]);
}

#[test]
fn ex27_a_leaf_cannot_be_a_parent_nor_have_children() {
    let mut svc = service();
    tree(&mut svc);
    let r = run(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("x".into()),
            config: Some(in_collections(&["princely_musings"])),
        },
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    let r = set_config(
        &mut svc,
        OWNER,
        "princely_musings",
        cfg(|p| p.children = Some(vec!["kingly_ravings".into()])),
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // A parent that does not exist is refused the same way.
    let r = set_config(
        &mut svc,
        OWNER,
        "princely_musings",
        in_collections(&["nope"]),
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // Nothing changed.
    assert_eq!(
        config_of(&mut svc, "princely_musings").collection,
        ["blogs"]
    );
}

#[test]
fn ex28_associating_needs_the_child_and_the_collection_s_association_policy() {
    let mut svc = service();
    tree(&mut svc);
    make(&mut svc, BOB, "bobs", NodeConfigPatch::default());
    // Bob may not put his node in the owner's collection (policy: owners).
    let r = set_config(&mut svc, BOB, "bobs", in_collections(&["blogs"]));
    assert_eq!(r.map(|_| ()), Err(Error::Forbidden));
    // Nor may the owner pull Bob's node into it.
    let r = set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| {
            p.children = Some(vec![
                "princely_musings".into(),
                "kingly_ravings".into(),
                "bobs".into(),
            ])
        }),
    );
    assert_eq!(r.map(|_| ()), Err(Error::Forbidden));
    // Whitelisted, Bob may; with policy all, anyone may.
    set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| {
            p.children_association_policy = Some(AssociationPolicy::Whitelist);
            p.children_association_whitelist = Some(vec![b(BOB)]);
        }),
    )
    .unwrap();
    set_config(&mut svc, BOB, "bobs", in_collections(&["blogs"])).unwrap();
    make(&mut svc, ALICE, "alices", NodeConfigPatch::default());
    let r = set_config(&mut svc, ALICE, "alices", in_collections(&["blogs"]));
    assert_eq!(r.map(|_| ()), Err(Error::Forbidden));
    set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| p.children_association_policy = Some(AssociationPolicy::All)),
    )
    .unwrap();
    set_config(&mut svc, ALICE, "alices", in_collections(&["blogs"])).unwrap();
    assert_eq!(
        config_of(&mut svc, "blogs").children,
        ["alices", "bobs", "kingly_ravings", "princely_musings"]
    );
}

#[test]
fn ex29_children_max_and_the_service_cap() {
    let mut svc = service();
    tree(&mut svc);
    // blogs has 2 children: a max of 1 is refused, 2 accepted.
    let r = set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| p.children_max = Some(Some(1))),
    );
    assert_eq!(r.map(|_| ()), Err(Error::MaxNodesExceeded("blogs".into())));
    set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| p.children_max = Some(Some(2))),
    )
    .unwrap();
    // A third child, whichever way it comes.
    let r = run(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("third".into()),
            config: Some(in_collections(&["blogs"])),
        },
    );
    assert_eq!(r.map(|_| ()), Err(Error::MaxNodesExceeded("blogs".into())));
    make(&mut svc, OWNER, "third", NodeConfigPatch::default());
    let r = run(
        &mut svc,
        OWNER,
        Request::Associate {
            collection: "blogs".into(),
            node: "third".into(),
        },
    );
    assert_eq!(r.map(|_| ()), Err(Error::MaxNodesExceeded("blogs".into())));
    // The service's cap holds whatever the node says.
    let mut svc = service_with(Policy {
        max_children: 1,
        ..policy()
    });
    make(&mut svc, OWNER, "c", collection());
    make(&mut svc, OWNER, "one", in_collections(&["c"]));
    let r = run(
        &mut svc,
        OWNER,
        Request::Create {
            node: Some("two".into()),
            config: Some(in_collections(&["c"])),
        },
    );
    assert_eq!(r.map(|_| ()), Err(Error::MaxNodesExceeded("c".into())));
}

#[test]
fn ex30_a_collection_never_becomes_a_leaf_a_leaf_becomes_a_collection_empty() {
    let mut svc = service();
    tree(&mut svc);
    make(&mut svc, OWNER, "empty", collection());
    for node in ["blogs", "empty"] {
        let r = set_config(
            &mut svc,
            OWNER,
            node,
            cfg(|p| p.node_type = Some(NodeType::Leaf)),
        );
        assert!(
            matches!(r, Err(Error::InvalidCollection(_))),
            "{node}: {r:?}"
        );
    }
    // §change-to-collection: the leaf's items are purged.
    publish_to(&mut svc, "kingly_ravings", "1");
    set_config(
        &mut svc,
        OWNER,
        "kingly_ravings",
        cfg(|p| p.node_type = Some(NodeType::Collection)),
    )
    .unwrap();
    let Reply::Metadata(meta) = ok(
        &mut svc,
        OWNER,
        Request::NodeMetadata {
            node: "kingly_ravings".into(),
        },
    )
    .reply
    else {
        panic!("metadata");
    };
    assert!(meta.config.is_collection());
    let uid = svc_uid(&mut svc, "kingly_ravings");
    assert_eq!(svc.store().latest_items(uid, None).unwrap(), vec![]);
}

/// A node's uid, through a store snapshot (the API does not show uids).
fn svc_uid(svc: &mut Service<MemStore>, node: &str) -> u64 {
    let snap = svc.store_mut().load().unwrap();
    snap.nodes[node].0.uid
}

#[test]
fn ex31_no_cycle_by_parents_or_by_children() {
    let mut svc = service();
    make(&mut svc, OWNER, "a", collection());
    let mut b_cfg = in_collections(&["a"]);
    b_cfg.node_type = Some(NodeType::Collection);
    make(&mut svc, OWNER, "b", b_cfg);
    let mut c_cfg = in_collections(&["b"]);
    c_cfg.node_type = Some(NodeType::Collection);
    make(&mut svc, OWNER, "c", c_cfg);
    // A under C: A → B → C → A.
    let r = set_config(&mut svc, OWNER, "a", in_collections(&["c"]));
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // C adopting A, the same cycle from the other side.
    let r = set_config(
        &mut svc,
        OWNER,
        "c",
        cfg(|p| p.children = Some(vec!["a".into()])),
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    let r = run(
        &mut svc,
        OWNER,
        Request::Associate {
            collection: "c".into(),
            node: "a".into(),
        },
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // Itself.
    let r = set_config(&mut svc, OWNER, "a", in_collections(&["a"]));
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // Both at once: B gains parent D and child D would be D → B → D.
    make(&mut svc, OWNER, "d", collection());
    let r = set_config(
        &mut svc,
        OWNER,
        "b",
        cfg(|p| {
            p.collection = Some(vec!["a".into(), "d".into()]);
            p.children = Some(vec!["c".into(), "d".into()]);
        }),
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
    // A diamond is no cycle: D under A, C under D as well.
    set_config(&mut svc, OWNER, "d", in_collections(&["a"])).unwrap();
    set_config(&mut svc, OWNER, "c", in_collections(&["b", "d"])).unwrap();
    assert_eq!(config_of(&mut svc, "c").collection, ["b", "d"]);
}

// ----------------------------------------------------------------- §owner-default, 32–33

#[test]
fn ex32_33_default_configuration_of_a_collection() {
    let mut svc = service();
    let leaf = ok(
        &mut svc,
        ALICE,
        Request::DefaultConfig {
            node_type: NodeType::Leaf,
        },
    );
    let coll = ok(
        &mut svc,
        ALICE,
        Request::DefaultConfig {
            node_type: NodeType::Collection,
        },
    );
    let (Reply::Config { config: l, .. }, Reply::Config { config: c, .. }) =
        (leaf.reply, coll.reply)
    else {
        panic!("config replies");
    };
    assert_eq!(l.node_type, NodeType::Leaf);
    assert_eq!(c.node_type, NodeType::Collection);
    assert_eq!(c.children_association_policy, AssociationPolicy::Owners);
    assert_eq!(c.access_model, AccessModel::Open);
}

// ------------------------------------------------------------------ §delete-node, 34–36

#[test]
fn ex34_35_deleting_a_collection_dissociates_its_children_ex36_not_the_root() {
    let mut svc = service();
    tree(&mut svc);
    // princely_musings is also under news: it keeps that parent.
    set_config(
        &mut svc,
        OWNER,
        "princely_musings",
        in_collections(&["blogs", "news"]),
    )
    .unwrap();
    sub_to(&mut svc, ALICE, "", None, None).unwrap(); // the root, nodes, depth 1
    let out = ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: "blogs".into(),
            redirect: None,
        },
    );
    assert_eq!(out.reply, Reply::Done);
    // Node news of a first-level node: to the root's subscriber.
    assert_eq!(seen(&out), [to("alice@denmark.lit/phone", "blogs", &[""])]);
    assert!(config_of(&mut svc, "kingly_ravings").collection.is_empty());
    assert_eq!(config_of(&mut svc, "princely_musings").collection, ["news"]);
    let Reply::Nodes { nodes, .. } = ok(&mut svc, ALICE, Request::DiscoNodes).reply else {
        panic!("nodes");
    };
    assert_eq!(names(&nodes), ["kingly_ravings", "news"]);
    let r = run(
        &mut svc,
        ADMIN,
        Request::Delete {
            node: String::new(),
            redirect: None,
        },
    );
    assert_eq!(r, Err(Error::RootNode));
    let r = set_config(&mut svc, ADMIN, "", collection());
    assert_eq!(r.map(|_| ()), Err(Error::RootNode));
}

// ----------------------------------------------------- §associate-node, ex. 37–45

#[test]
fn ex37_45_associate_and_dissociate_requests() {
    let mut svc = service();
    tree(&mut svc);
    make(
        &mut svc,
        OWNER,
        "new-child-node",
        NodeConfigPatch::default(),
    );
    sub_to(&mut svc, ALICE, "blogs", None, None).unwrap();
    let assoc = |collection: &str, node: &str| Request::Associate {
        collection: collection.into(),
        node: node.into(),
    };
    let dissoc = |collection: &str, node: &str| Request::Dissociate {
        collection: collection.into(),
        node: node.into(),
    };
    // Example 39: Bob owns neither.
    let r = run(&mut svc, BOB, assoc("blogs", "new-child-node"));
    assert_eq!(r.map(|_| ()), Err(Error::Forbidden));
    // Examples 37–38.
    let out = ok(&mut svc, OWNER, assoc("blogs", "new-child-node"));
    assert_eq!(out.reply, Reply::Done);
    assert_eq!(seen(&out), [to("alice@denmark.lit/phone", "blogs", &[])]);
    assert!(config_of(&mut svc, "blogs")
        .children
        .contains(&"new-child-node".to_owned()));
    // Example 45, then 42–43.
    let r = run(&mut svc, BOB, dissoc("blogs", "new-child-node"));
    assert_eq!(r.map(|_| ()), Err(Error::Forbidden));
    let out = ok(&mut svc, OWNER, dissoc("blogs", "new-child-node"));
    assert_eq!(
        *out.notifications[0].event,
        Event::Collection {
            child: "new-child-node".into(),
            associate: false
        }
    );
    // Example 44.
    let r = run(&mut svc, OWNER, dissoc("blogs", "new-child-node"));
    assert_eq!(
        r,
        Err(Error::NotAssociated {
            collection: "blogs".into(),
            node: "new-child-node".into()
        })
    );
    // The owner of a collection may dissociate someone else's node from it.
    set_config(
        &mut svc,
        OWNER,
        "blogs",
        cfg(|p| p.children_association_policy = Some(AssociationPolicy::All)),
    )
    .unwrap();
    make(&mut svc, BOB, "bobs", NodeConfigPatch::default());
    ok(&mut svc, BOB, assoc("blogs", "bobs"));
    ok(&mut svc, OWNER, dissoc("blogs", "bobs"));
}

// ---------------------------------------------------------------------- §root, ex. 46

#[test]
fn ex46_the_root_with_depth_all_hears_of_everything() {
    let mut svc = service();
    tree(&mut svc);
    make(&mut svc, OWNER, "flat", NodeConfigPatch::default());
    items_sub(&mut svc, ALICE, "", SubscriptionDepth::All);
    items_sub(&mut svc, BOB, "", SubscriptionDepth::Depth(1));
    for node in ["flat", "elections", "princely_musings"] {
        let out = publish_to(&mut svc, node, "x");
        let mut want = vec![to("alice@denmark.lit/phone", node, &[""])];
        if node == "flat" {
            want.push(to("bob@denmark.lit/desk", node, &[""]));
        }
        want.sort();
        assert_eq!(seen(&out), want, "{node}");
    }
    // The root's subscriptions are the subscriber's like any other (§5.6).
    let Reply::Subscriptions { subs, .. } =
        ok(&mut svc, ALICE, Request::Subscriptions { node: None }).reply
    else {
        panic!("subscriptions");
    };
    assert_eq!(subs[0].0, "");
}

// ------------------------------------------------------------------- access (§security)

#[test]
fn a_closed_leaf_under_an_open_collection_discloses_nothing() {
    let mut svc = service();
    make(&mut svc, OWNER, "open", collection());
    make(&mut svc, OWNER, "public", in_collections(&["open"]));
    for model in [AccessModel::Whitelist, AccessModel::Authorize] {
        let name = format!("closed-{model}");
        let mut c = in_collections(&["open"]);
        c.access_model = Some(model);
        let _ = ok(
            &mut svc,
            OWNER,
            Request::Create {
                node: Some(name.clone()),
                config: Some(c),
            },
        );
    }
    items_sub(&mut svc, ALICE, "open", SubscriptionDepth::All);
    sub_to(&mut svc, ALICE, "open", Some(SubscriptionType::Nodes), None).unwrap();
    // Alice sees only the public child.
    assert_eq!(
        children_seen(&mut svc, ALICE, "open"),
        ["closed-authorize", "public"]
    );
    assert!(publish_to(&mut svc, "closed-whitelist", "1")
        .notifications
        .is_empty());
    assert!(publish_to(&mut svc, "closed-authorize", "1")
        .notifications
        .is_empty());
    assert_eq!(publish_to(&mut svc, "public", "1").notifications.len(), 1);
    // No news of the closed nodes either.
    let out = set_config(
        &mut svc,
        OWNER,
        "closed-whitelist",
        cfg(|p| p.title = Some("t".into())),
    )
    .unwrap();
    assert!(out.notifications.is_empty());
    // A member of the whitelist node gets its items through the collection.
    set_aff_on(&mut svc, "closed-whitelist", ALICE, Affiliation::Member);
    let out = publish_to(&mut svc, "closed-whitelist", "2");
    assert_eq!(
        seen(&out),
        [to("alice@denmark.lit/phone", "closed-whitelist", &["open"])]
    );
    // A subscriber of the authorize node (approved) gets it through both, once.
    let sub = sub_to(&mut svc, ALICE, "closed-authorize", None, None).unwrap();
    assert_eq!(sub.state, SubscriptionState::Pending);
    ok(
        &mut svc,
        OWNER,
        Request::AuthorizeSubscription {
            node: "closed-authorize".into(),
            jid: j(ALICE),
            subid: None,
            allow: true,
        },
    );
    let out = publish_to(&mut svc, "closed-authorize", "2");
    assert_eq!(
        seen(&out),
        [to("alice@denmark.lit/phone", "closed-authorize", &["open"])]
    );
    assert_eq!(out.notifications[0].subids.len(), 2);
    // An outcast of the leaf hears nothing through the collection.
    set_aff_on(&mut svc, "public", BOB, Affiliation::Outcast);
    items_sub(&mut svc, BOB, "open", SubscriptionDepth::All);
    let out = publish_to(&mut svc, "public", "2");
    assert!(out.notifications.iter().all(|n| n.to.to_bare() != b(BOB)));
}

fn set_aff_on(svc: &mut Service<MemStore>, node: &str, jid: &str, aff: Affiliation) {
    ok(
        svc,
        OWNER,
        Request::SetAffiliations {
            node: node.into(),
            changes: vec![(b(jid), aff)],
        },
    );
}

// ------------------------------------------------- the leaf's delivery options (§notify)

#[test]
fn the_leaf_s_delivery_options_apply_not_the_collection_s() {
    let mut svc = service();
    let mut coll = collection();
    coll.notification_type = Some(NotificationType::Normal);
    coll.deliver_notifications = Some(false);
    make(&mut svc, OWNER, "c", coll);
    let mut quiet = in_collections(&["c"]);
    quiet.deliver_notifications = Some(false);
    make(&mut svc, OWNER, "quiet", quiet);
    let mut bare = in_collections(&["c"]);
    bare.deliver_payloads = Some(false);
    bare.notify_retract = Some(true);
    make(&mut svc, OWNER, "bare", bare);
    items_sub(&mut svc, ALICE, "c", SubscriptionDepth::All);
    assert!(publish_to(&mut svc, "quiet", "1").notifications.is_empty());
    let out = publish_to(&mut svc, "bare", "1");
    let n = &out.notifications[0];
    assert_eq!(n.kind, NotificationType::Headline, "the leaf's type");
    let Event::Items { with_payload, .. } = &*n.event else {
        panic!("items");
    };
    assert!(!with_payload);
    let out = ok(
        &mut svc,
        OWNER,
        Request::Retract {
            node: "bare".into(),
            ids: vec!["1".into()],
            notify: false,
        },
    );
    assert_eq!(seen(&out), [to("alice@denmark.lit/phone", "bare", &["c"])]);
}

#[test]
fn deliver_false_digests_and_presence_hold_through_collections() {
    let mut svc = service();
    make(&mut svc, OWNER, "c", collection());
    let mut by_presence = in_collections(&["c"]);
    by_presence.presence_based_delivery = Some(true);
    make(&mut svc, OWNER, "p", by_presence);
    make(&mut svc, OWNER, "plain", in_collections(&["c"]));
    // deliver=false pauses.
    ok(
        &mut svc,
        BOB,
        Request::Subscribe {
            node: "c".into(),
            jid: j(BOB),
            options: Some(SubOptionsPatch {
                deliver: Some(false),
                subscription_type: Some(SubscriptionType::Items),
                ..Default::default()
            }),
        },
    );
    assert!(publish_to(&mut svc, "plain", "0").notifications.is_empty());
    // Presence: Alice's bare JID subscribes; a presence leaf reaches her online resources.
    items_sub(
        &mut svc,
        "alice@denmark.lit",
        "c",
        SubscriptionDepth::Depth(1),
    );
    assert!(svc.take_presence_requests().contains(&b(ALICE)));
    assert!(svc.presence_wanted().contains(&b(ALICE)));
    assert!(publish_to(&mut svc, "p", "1").notifications.is_empty());
    svc.presence_changed(&full(ALICE), Some(Show::Away))
        .unwrap();
    let out = publish_to(&mut svc, "p", "2");
    assert_eq!(seen(&out), [to(ALICE, "p", &["c"])]);
    // ... whereas the plain leaf goes to the bare JID as subscribed.
    let out = publish_to(&mut svc, "plain", "1");
    assert_eq!(seen(&out), [to("alice@denmark.lit", "plain", &["c"])]);
    // show-values narrow a collection subscription too.
    ok(
        &mut svc,
        CAROL,
        Request::Subscribe {
            node: "c".into(),
            jid: j(CAROL),
            options: Some(SubOptionsPatch {
                show_values: Some(vec![Show::Chat]),
                subscription_type: Some(SubscriptionType::Items),
                ..Default::default()
            }),
        },
    );
    svc.presence_changed(&full(CAROL), Some(Show::Dnd)).unwrap();
    assert!(publish_to(&mut svc, "plain", "2")
        .notifications
        .iter()
        .all(|n| n.to.to_bare() != b(CAROL)));
    svc.presence_changed(&full(CAROL), Some(Show::Chat))
        .unwrap();
    assert!(publish_to(&mut svc, "plain", "3")
        .notifications
        .iter()
        .any(|n| n.to == j(CAROL)));
}

#[test]
fn a_digest_through_a_collection_batches_each_leaf() {
    let mut svc = service();
    make(&mut svc, OWNER, "c", collection());
    make(&mut svc, OWNER, "l1", in_collections(&["c"]));
    make(&mut svc, OWNER, "l2", in_collections(&["c"]));
    svc.tick(0).unwrap();
    ok(
        &mut svc,
        ALICE,
        Request::Subscribe {
            node: "c".into(),
            jid: j(ALICE),
            options: Some(SubOptionsPatch {
                digest: Some(true),
                digest_frequency: Some(1_000),
                subscription_type: Some(SubscriptionType::Items),
                ..Default::default()
            }),
        },
    );
    assert!(publish_to(&mut svc, "l1", "a").notifications.is_empty());
    publish_to(&mut svc, "l1", "b");
    publish_to(&mut svc, "l2", "c");
    assert!(svc.tick(500).unwrap().is_empty()); // schedules the first period
    let out = svc.tick(1_500).unwrap();
    let mut got: Vec<(String, Vec<String>, Vec<String>)> = out
        .iter()
        .map(|n| {
            let Event::Items { items, .. } = &*n.event else {
                panic!("items");
            };
            (
                n.node.clone(),
                items.iter().map(|i| i.id.clone()).collect(),
                n.collections.clone(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("l1".into(), vec!["a".into(), "b".into()], vec!["c".into()]),
            ("l2".into(), vec!["c".into()], vec!["c".into()]),
        ]
    );
    // The next period carries only what is new.
    publish_to(&mut svc, "l2", "d");
    let out = svc.tick(2_600).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].node, "l2");
}

// ------------------------------------------------------- one notification per recipient

#[test]
fn a_subscriber_of_a_leaf_and_its_ancestors_gets_one_notification_with_every_subid() {
    let mut svc = service();
    tree(&mut svc);
    let leaf = sub_to(&mut svc, ALICE, "elections", None, None).unwrap();
    items_sub(&mut svc, ALICE, "politics", SubscriptionDepth::Depth(1));
    items_sub(&mut svc, ALICE, "news", SubscriptionDepth::All);
    items_sub(&mut svc, ALICE, "", SubscriptionDepth::All);
    let out = publish_to(&mut svc, "elections", "1");
    assert_eq!(out.notifications.len(), 1);
    let n = &out.notifications[0];
    assert_eq!(n.node, "elections");
    assert_eq!(n.collections, ["", "news", "politics"]);
    assert_eq!(n.subids.len(), 4);
    assert!(n.subids.contains(&leaf.subid));
    // The subids of one subscriber differ across nodes.
    let mut ids = n.subids.clone();
    ids.dedup();
    assert_eq!(ids.len(), 4);
}

// ------------------------------------------------------------- node news, depth, delete

#[test]
fn node_news_reaches_nodes_subscribers_within_depth() {
    let mut svc = service();
    tree(&mut svc);
    sub_to(
        &mut svc,
        ALICE,
        "news",
        Some(SubscriptionType::Nodes),
        Some(SubscriptionDepth::All),
    )
    .unwrap();
    sub_to(&mut svc, BOB, "news", None, None).unwrap(); // depth 1
                                                        // A grandchild is created: Alice (all) hears of it, Bob (1) does not.
    let out = make(
        &mut svc,
        OWNER,
        "referendums",
        in_collections(&["politics"]),
    );
    assert_eq!(
        seen(&out),
        [to("alice@denmark.lit/phone", "referendums", &["news"])]
    );
    // Configured (its notify_config is off: that is for its own subscribers).
    let out = set_config(
        &mut svc,
        OWNER,
        "referendums",
        cfg(|p| p.title = Some("Referendums".into())),
    )
    .unwrap();
    assert_eq!(
        seen(&out),
        [to("alice@denmark.lit/phone", "referendums", &["news"])]
    );
    // Associated with news directly: now at depth 1, Bob hears of the association, of
    // news's children changing.
    let out = ok(
        &mut svc,
        OWNER,
        Request::Associate {
            collection: "news".into(),
            node: "referendums".into(),
        },
    );
    assert_eq!(
        seen(&out),
        [
            to("alice@denmark.lit/phone", "news", &[]),
            to("bob@denmark.lit/desk", "news", &[]),
        ]
    );
    // Deleted: both hear of it (one notification each, though two paths lead up).
    let out = ok(
        &mut svc,
        OWNER,
        Request::Delete {
            node: "referendums".into(),
            redirect: None,
        },
    );
    assert_eq!(
        seen(&out),
        [
            to("alice@denmark.lit/phone", "referendums", &["news"]),
            to("bob@denmark.lit/desk", "referendums", &["news"]),
        ]
    );
    assert_eq!(children_seen(&mut svc, ALICE, "politics"), ["elections"]);
}

// --------------------------------------------------------------- durability of the graph

#[test]
fn the_graph_and_collection_subscriptions_survive_a_reopen() {
    let mut svc = service();
    tree(&mut svc);
    items_sub(&mut svc, ALICE, "news", SubscriptionDepth::All);
    items_sub(&mut svc, BOB, "", SubscriptionDepth::All);
    let store = std::mem::replace(svc.store_mut(), MemStore::new());
    let mut svc = Service::open(store, policy()).unwrap();
    assert_eq!(
        config_of(&mut svc, "blogs").children,
        ["kingly_ravings", "princely_musings"]
    );
    let out = publish_to(&mut svc, "elections", "1");
    assert_eq!(
        seen(&out),
        [
            to("alice@denmark.lit/phone", "elections", &["news"]),
            to("bob@denmark.lit/desk", "elections", &[""]),
        ]
    );
}

// ---------------------------------------------------------- topic hierarchies from names

fn hierarchy() -> Service<MemStore> {
    service_with(Policy {
        hierarchy: Some("/".into()),
        ..policy()
    })
}

#[test]
fn a_hierarchical_name_creates_and_associates_its_collections() {
    let mut svc = hierarchy();
    items_sub(&mut svc, CAROL, "", SubscriptionDepth::All);
    sub_to(
        &mut svc,
        BOB,
        "",
        Some(SubscriptionType::Nodes),
        Some(SubscriptionDepth::All),
    )
    .unwrap();
    let out = make(
        &mut svc,
        ALICE,
        "logs/web/nginx",
        NodeConfigPatch::default(),
    );
    // Creation news, top down, to the nodes subscriber.
    let created: Vec<_> = out
        .notifications
        .iter()
        .filter(|n| n.to.to_bare() == b(BOB))
        .map(|n| n.node.as_str())
        .collect();
    assert_eq!(created, ["logs", "logs/web", "logs/web/nginx"]);
    assert_eq!(config_of(&mut svc, "logs").children, ["logs/web"]);
    assert_eq!(config_of(&mut svc, "logs/web").collection, ["logs"]);
    assert_eq!(
        config_of(&mut svc, "logs/web/nginx").collection,
        ["logs/web"]
    );
    // Owned by the creator.
    let Reply::Affiliations { affs, .. } =
        ok(&mut svc, ALICE, Request::Affiliations { node: None }).reply
    else {
        panic!("affiliations");
    };
    assert_eq!(affs.len(), 3);
    assert!(affs.iter().all(|(_, _, a)| *a == Affiliation::Owner));
    // Someone else's leaf under the same prefix joins the same collections.
    make(&mut svc, BOB, "logs/db/pg", NodeConfigPatch::default());
    assert_eq!(
        config_of(&mut svc, "logs").children,
        ["logs/db", "logs/web"]
    );
    // A prefix subscription: everything below logs.
    items_sub(&mut svc, ALICE, "logs", SubscriptionDepth::All);
    for node in ["logs/web/nginx", "logs/db/pg"] {
        let out = ok(
            &mut svc,
            if node == "logs/db/pg" { BOB } else { ALICE },
            Request::Publish {
                node: node.into(),
                item: Some(NewItem {
                    id: None,
                    payload: Some("<line xmlns='urn:t'/>".into()),
                }),
                options: None,
            },
        );
        assert_eq!(
            seen(&out),
            [
                to("alice@denmark.lit/phone", node, &["logs"]),
                to(CAROL, node, &[""]),
            ]
        );
    }
    // A leaf cannot be a prefix of another node.
    let r = run(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some("logs/web/nginx/access".into()),
            config: None,
        },
    );
    assert!(matches!(r, Err(Error::InvalidCollection(_))), "{r:?}");
}

#[test]
fn auto_created_collections_take_the_leaf_s_access_model() {
    let mut svc = hierarchy();
    let c = cfg(|p| p.access_model = Some(AccessModel::Whitelist));
    make(&mut svc, ALICE, "secret/plans", c);
    assert_eq!(
        config_of_as(&mut svc, ALICE, "secret").access_model,
        AccessModel::Whitelist
    );
    // Not listed to others, not even its name.
    let Reply::Nodes { nodes, .. } = ok(&mut svc, BOB, Request::DiscoNodes).reply else {
        panic!("nodes");
    };
    assert!(nodes.is_empty());
    // The node limit counts them.
    let mut svc = service_with(Policy {
        hierarchy: Some("/".into()),
        max_nodes_per_jid: 2,
        ..policy()
    });
    let r = run(
        &mut svc,
        ALICE,
        Request::Create {
            node: Some("a/b/c".into()),
            config: None,
        },
    );
    assert_eq!(r.map(|_| ()), Err(Error::LimitReached("nodes per JID")));
    assert_eq!(svc.node_names().count(), 0);
}

fn config_of_as(svc: &mut Service<MemStore>, actor: &str, node: &str) -> NodeConfig {
    match ok(svc, actor, Request::GetConfig { node: node.into() }).reply {
        Reply::Config { config, .. } => config,
        r => panic!("unexpected {r:?}"),
    }
}
