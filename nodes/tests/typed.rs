//! Typed discovery (issue 14): XEP-0462 type filtering of disco#items, XEP-0413 order-by on
//! item retrieval (with `max_items` and XEP-0059), the configuration of an XEP-0472 social
//! feed, and the collection-only subscription options (XEP-0248) only on collections.

mod common;

use common::*;
use roost_nodes::*;

const MICROBLOG: &str = "urn:xmpp:microblog:0";
const SOCIAL: &str = "urn:xmpp:pubsub-social-feed:1";

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

fn typed(t: &str) -> NodeConfigPatch {
    NodeConfigPatch {
        payload_type: Some(t.into()),
        ..Default::default()
    }
}

fn names(out: &Outcome) -> Vec<&str> {
    match &out.reply {
        Reply::Nodes { nodes, .. } | Reply::Children { nodes, .. } => {
            nodes.iter().map(|n| n.node.as_str()).collect()
        }
        r => panic!("unexpected reply {r:?}"),
    }
}

fn disco(node: Option<&str>, types: TypeFilter, rsm: Option<RsmQuery>) -> Request {
    Request::DiscoTyped {
        node: node.map(str::to_owned),
        types,
        rsm,
    }
}

fn include(t: &[&str]) -> TypeFilter {
    TypeFilter::Include(t.iter().map(|s| s.to_string()).collect())
}

fn exclude(t: &[&str]) -> TypeFilter {
    TypeFilter::Exclude(t.iter().map(|s| s.to_string()).collect())
}

/// blog (microblog), comments (microblog comments), plain (no type), secret (microblog,
/// whitelist), feeds (a collection of social feeds) ⊃ f1 (social), f2 (no type).
fn typed_nodes(svc: &mut Service<MemStore>) {
    make(svc, "blog", typed(MICROBLOG));
    make(svc, "comments", typed("urn:xmpp:microblog:0:comments"));
    make(svc, "plain", NodeConfigPatch::default());
    let mut secret = typed(MICROBLOG);
    secret.access_model = Some(AccessModel::Whitelist);
    make(svc, "secret", secret);
    make(
        svc,
        "feeds",
        NodeConfigPatch {
            node_type: Some(NodeType::Collection),
            ..Default::default()
        },
    );
    let mut f1 = typed(SOCIAL);
    f1.collection = Some(vec!["feeds".into()]);
    make(svc, "f1", f1);
    make(
        svc,
        "f2",
        NodeConfigPatch {
            collection: Some(vec!["feeds".into()]),
            ..Default::default()
        },
    );
}

#[test]
fn xep_0462_included_types_with_the_empty_type() {
    let mut svc = service();
    typed_nodes(&mut svc);
    // Example 1: microblog nodes and those without a type ("feeds" is a collection
    // without a type, listed like any node).
    let out = ok(
        &mut svc,
        ALICE,
        disco(None, include(&[MICROBLOG, ""]), None),
    );
    assert_eq!(names(&out), ["blog", "feeds", "plain"]);
    // The owner also sees the whitelist node: the filter narrows visibility, never widens.
    let out = ok(&mut svc, OWNER, disco(None, include(&[MICROBLOG]), None));
    assert_eq!(names(&out), ["blog", "secret"]);
    let out = ok(&mut svc, ALICE, disco(None, include(&[]), None));
    assert!(names(&out).is_empty());
}

#[test]
fn xep_0462_excluded_types() {
    let mut svc = service();
    typed_nodes(&mut svc);
    // "When listing content nodes of a service, one may want to filter out comment nodes."
    let out = ok(
        &mut svc,
        ALICE,
        disco(None, exclude(&["urn:xmpp:microblog:0:comments"]), None),
    );
    assert_eq!(names(&out), ["blog", "feeds", "plain"]);
    let out = ok(&mut svc, ALICE, disco(None, exclude(&[""]), None));
    assert_eq!(names(&out), ["blog", "comments"]);
}

#[test]
fn xep_0462_on_a_collection_and_on_a_leaf() {
    let mut svc = service();
    typed_nodes(&mut svc);
    let out = ok(
        &mut svc,
        ALICE,
        disco(Some("feeds"), include(&[SOCIAL]), None),
    );
    assert!(matches!(&out.reply, Reply::Children { node, .. } if node == "feeds"));
    assert_eq!(names(&out), ["f1"]);
    let out = ok(
        &mut svc,
        ALICE,
        disco(Some("feeds"), exclude(&[SOCIAL]), None),
    );
    assert_eq!(names(&out), ["f2"]);
    // A leaf lists its items, which have no type: unfiltered.
    ok(
        &mut svc,
        OWNER,
        Request::Publish {
            node: "blog".into(),
            item: Some(NewItem {
                id: Some("p1".into()),
                payload: Some("<entry xmlns='http://www.w3.org/2005/Atom'/>".into()),
            }),
            options: None,
        },
    );
    let out = ok(
        &mut svc,
        ALICE,
        disco(Some("blog"), include(&[SOCIAL]), None),
    );
    assert!(matches!(&out.reply, Reply::ItemIds { ids, .. } if ids == &["p1"]));
    // Errors are those of disco#items.
    assert_eq!(
        run(&mut svc, ALICE, disco(Some("nope"), include(&[]), None)).unwrap_err(),
        Error::NodeNotFound
    );
}

#[test]
fn xep_0462_with_rsm_pages_the_filtered_list() {
    let mut svc = service();
    typed_nodes(&mut svc);
    let rsm = RsmQuery {
        max: Some(1),
        ..Default::default()
    };
    let out = ok(
        &mut svc,
        ALICE,
        disco(None, include(&[MICROBLOG, ""]), Some(rsm)),
    );
    let Reply::Nodes { nodes, page } = &out.reply else {
        panic!("{:?}", out.reply)
    };
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        page,
        &Some(RsmPage {
            first: Some(("blog".into(), 0)),
            last: Some("blog".into()),
            count: 3,
        })
    );
    let rsm = RsmQuery {
        max: Some(5),
        after: Some("blog".into()),
        ..Default::default()
    };
    let out = ok(
        &mut svc,
        ALICE,
        disco(None, include(&[MICROBLOG, ""]), Some(rsm)),
    );
    assert_eq!(names(&out), ["feeds", "plain"]);
}

// ---- XEP-0413 ------------------------------------------------------------------------

fn put(svc: &mut Service<MemStore>, id: &str) {
    publish(
        svc,
        OWNER,
        id,
        &format!("<payload xmlns='urn:x'>item {id}</payload>"),
    );
}

/// §use_with_rsm's node: A, B, C, D created in that order, C overwritten after D was
/// created, A overwritten later still.
fn balcony(svc: &mut Service<MemStore>) {
    create(svc, NodeConfigPatch::default());
    for id in ["A", "B", "C", "D", "C", "A"] {
        put(svc, id);
    }
}

fn by(by: OrderField, desc: bool) -> OrderBy {
    OrderBy { by, desc }
}

fn ordered(
    svc: &mut Service<MemStore>,
    order: Vec<OrderBy>,
    max_items: Option<u64>,
    rsm: Option<RsmQuery>,
) -> (Vec<String>, Option<RsmPage>) {
    let out = ok(
        svc,
        ALICE,
        Request::ItemsOrdered {
            node: NODE.into(),
            max_items,
            ids: vec![],
            subid: None,
            order,
            rsm,
        },
    );
    match out.reply {
        Reply::Items { items, page, .. } => (items.into_iter().map(|i| i.id).collect(), page),
        r => panic!("unexpected reply {r:?}"),
    }
}

fn page(max: u64, after: Option<&str>) -> Option<RsmQuery> {
    Some(RsmQuery {
        max: Some(max),
        after: after.map(str::to_owned),
        ..Default::default()
    })
}

fn set(first: &str, index: u64, last: &str, count: u64) -> Option<RsmPage> {
    Some(RsmPage {
        first: Some((first.into(), index)),
        last: Some(last.into()),
        count,
    })
}

#[test]
fn xep_0413_rsm_examples() {
    use OrderField::*;
    let mut svc = service();
    balcony(&mut svc);
    // Examples rsm_1 / rsm_2: ascending modification, pages of 2.
    let (ids, p) = ordered(&mut svc, vec![by(Modification, false)], None, page(2, None));
    assert_eq!(
        (ids, p),
        (vec!["B".into(), "D".into()], set("B", 0, "D", 4))
    );
    let (ids, p) = ordered(
        &mut svc,
        vec![by(Modification, false)],
        None,
        page(2, Some("D")),
    );
    assert_eq!(
        (ids, p),
        (vec!["C".into(), "A".into()], set("C", 2, "A", 4))
    );
    // Examples rsm_3 / rsm_4: descending creation.
    let (ids, p) = ordered(&mut svc, vec![by(Creation, true)], None, page(2, None));
    assert_eq!(
        (ids, p),
        (vec!["D".into(), "C".into()], set("D", 0, "C", 4))
    );
    let (ids, p) = ordered(&mut svc, vec![by(Creation, true)], None, page(2, Some("C")));
    assert_eq!(
        (ids, p),
        (vec!["B".into(), "A".into()], set("B", 2, "A", 4))
    );
    // A page after an item no longer there is item-not-found (XEP-0059 §2.1).
    let r = run(
        &mut svc,
        ALICE,
        Request::ItemsOrdered {
            node: NODE.into(),
            max_items: None,
            ids: vec![],
            subid: None,
            order: vec![by(Creation, false)],
            rsm: page(2, Some("Z")),
        },
    );
    assert_eq!(r.unwrap_err(), Error::ItemNotFound);
}

#[test]
fn xep_0413_max_items_is_the_most_recent_by_the_field() {
    use OrderField::*;
    let mut svc = service();
    balcony(&mut svc);
    let (ids, page) = ordered(&mut svc, vec![by(Creation, true)], Some(3), None);
    assert_eq!(ids, ["D", "C", "B"]);
    assert_eq!(page, None);
    let (ids, _) = ordered(&mut svc, vec![by(Modification, true)], Some(3), None);
    assert_eq!(ids, ["A", "C", "D"]);
    let (ids, _) = ordered(&mut svc, vec![by(Creation, false)], None, None);
    assert_eq!(ids, ["A", "B", "C", "D"]);
    // Ascending modification is XEP-0060's own order.
    let (ids, _) = ordered(&mut svc, vec![by(Modification, false)], Some(2), None);
    let plain = items(&mut svc, ALICE);
    assert_eq!(ids, ["C", "A"]);
    assert_eq!(
        plain.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["B", "D", "C", "A"]
    );
}

#[test]
fn xep_0413_creation_survives_overwrites_not_retraction() {
    use OrderField::*;
    let mut svc = service();
    balcony(&mut svc);
    // Overwriting A again keeps its creation (first).
    put(&mut svc, "A");
    let (ids, _) = ordered(&mut svc, vec![by(Creation, false)], None, None);
    assert_eq!(ids, ["A", "B", "C", "D"]);
    // Retracted then published again, B is a new item: created last.
    ok(
        &mut svc,
        OWNER,
        Request::Retract {
            node: NODE.into(),
            ids: vec!["B".into()],
            notify: false,
        },
    );
    put(&mut svc, "B");
    let (ids, _) = ordered(&mut svc, vec![by(Creation, false)], None, None);
    assert_eq!(ids, ["A", "C", "D", "B"]);
}

#[test]
fn xep_0413_given_ids_and_access() {
    use OrderField::*;
    let mut svc = service();
    balcony(&mut svc);
    let out = ok(
        &mut svc,
        ALICE,
        Request::ItemsOrdered {
            node: NODE.into(),
            max_items: None,
            ids: vec!["D".into(), "A".into(), "nope".into(), "C".into()],
            subid: None,
            order: vec![by(Creation, true)],
            rsm: None,
        },
    );
    let Reply::Items { items, .. } = out.reply else {
        panic!()
    };
    assert_eq!(
        items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["D", "C", "A"]
    );
    // The retrieval's access rules hold as without an order.
    ok(
        &mut svc,
        OWNER,
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
    );
    let r = run(
        &mut svc,
        ALICE,
        Request::ItemsOrdered {
            node: NODE.into(),
            max_items: None,
            ids: vec![],
            subid: None,
            order: vec![by(Creation, true)],
            rsm: None,
        },
    );
    assert_eq!(r.unwrap_err(), Error::ClosedNode);
}

// ---- XEP-0472 ------------------------------------------------------------------------

/// §profile_base_node_config: the base profile's configuration, as a client creating a
/// social feed submits it.
fn social_feed() -> NodeConfigPatch {
    NodeConfigPatch {
        payload_type: Some(SOCIAL.into()),
        notify_retract: Some(true),
        max_items: Some(MaxItems::Max),
        persist_items: Some(true),
        send_last_published_item: Some(SendLastPublished::Never),
        deliver_payloads: Some(false),
        ..Default::default()
    }
}

#[test]
fn xep_0472_social_feed_configuration() {
    let mut svc = service();
    create(&mut svc, social_feed());
    let out = ok(&mut svc, OWNER, Request::GetConfig { node: NODE.into() });
    let Reply::Config { config, .. } = out.reply else {
        panic!()
    };
    assert_eq!(config.payload_type, SOCIAL);
    assert!(config.notify_retract && config.persist_items && !config.deliver_payloads);
    assert_eq!(config.max_items, MaxItems::Max);
    assert_eq!(config.send_last_published_item, SendLastPublished::Never);
    let out = ok(&mut svc, ALICE, Request::NodeMetadata { node: NODE.into() });
    let Reply::Metadata(meta) = out.reply else {
        panic!()
    };
    assert_eq!(meta.config.payload_type, SOCIAL);
    assert_eq!(meta.config.max_items, MaxItems::Max);

    // It works as configured: entries are kept, notifications carry no payload, a
    // retraction is notified, a new subscriber gets no last item.
    subscribe(&mut svc, ALICE);
    let out = publish(
        &mut svc,
        OWNER,
        "post-1",
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>hi</title></entry>",
    );
    assert_eq!(recipients(&out), [ALICE]);
    let Event::Items {
        items,
        with_payload,
        ..
    } = &*out.notifications[0].event
    else {
        panic!()
    };
    assert!(!with_payload && items[0].payload.is_empty());
    assert_eq!(items_of(&mut svc).len(), 1);
    let out = ok(&mut svc, BOB, subscribe_req(BOB));
    assert!(out.notifications.is_empty(), "{:?}", out.notifications);
    let out = ok(
        &mut svc,
        OWNER,
        Request::Retract {
            node: NODE.into(),
            ids: vec!["post-1".into()],
            notify: false,
        },
    );
    assert!(out
        .notifications
        .iter()
        .any(|n| matches!(&*n.event, Event::Retract { ids } if ids == &["post-1"])));
}

fn items_of(svc: &mut Service<MemStore>) -> Vec<Item> {
    items(svc, OWNER)
}

// ---- XEP-0248 options only on collections ----------------------------------------------

#[test]
fn collection_options_are_for_collections() {
    let mut svc = service();
    create(&mut svc, NodeConfigPatch::default());
    make(
        &mut svc,
        "coll",
        NodeConfigPatch {
            node_type: Some(NodeType::Collection),
            ..Default::default()
        },
    );
    let out = ok(&mut svc, ALICE, subscribe_req(ALICE));
    assert!(matches!(
        out.reply,
        Reply::Subscription {
            collection: false,
            ..
        }
    ));
    let get = |node: &str| Request::GetOptions {
        node: node.into(),
        jid: j(ALICE),
        subid: None,
    };
    assert!(matches!(
        ok(&mut svc, ALICE, get(NODE)).reply,
        Reply::Options {
            collection: false,
            ..
        }
    ));
    let out = ok(
        &mut svc,
        ALICE,
        Request::Subscribe {
            node: "coll".into(),
            jid: j(ALICE),
            options: None,
        },
    );
    assert!(matches!(
        out.reply,
        Reply::Subscription {
            collection: true,
            ..
        }
    ));
    assert!(matches!(
        ok(&mut svc, ALICE, get("coll")).reply,
        Reply::Options {
            collection: true,
            ..
        }
    ));
    let default = |node: Option<&str>| Request::DefaultOptions {
        node: node.map(str::to_owned),
    };
    assert!(matches!(
        ok(&mut svc, ALICE, default(Some(NODE))).reply,
        Reply::Options {
            collection: false,
            ..
        }
    ));
    assert!(matches!(
        ok(&mut svc, ALICE, default(Some("coll"))).reply,
        Reply::Options {
            collection: true,
            ..
        }
    ));
    assert!(matches!(
        ok(&mut svc, ALICE, default(None)).reply,
        Reply::Options {
            collection: true,
            ..
        }
    ));
}
