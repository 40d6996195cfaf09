//! The round trip on a data set with every feature in use: export, import into an empty
//! directory, and the same state comes back (and exports to the same bytes).

use super::*;
use roost_nodes::{
    AccessModel, AssociationPolicy, Change, ChangeSet, ItemCounters, ItemReply, Jid, MaxItems,
    NodeConfig, NodeType, NotificationType, PublishModel, SendLastPublished, Show, Store,
    SubscriptionDepth, SubscriptionType,
};
use roost_storage::SledStore;

fn jid(s: &str) -> Jid {
    s.parse().unwrap()
}

fn bare(s: &str) -> BareJid {
    s.parse().unwrap()
}

/// Every configuration field away from its default.
fn full_config() -> NodeConfig {
    NodeConfig {
        title: "Ünïcode & <title>".into(),
        description: "a \"description\"\nover two lines".into(),
        payload_type: "urn:example:payload".into(),
        access_model: AccessModel::Roster,
        roster_groups_allowed: vec!["Friends".into(), "Work mates".into()],
        publish_model: PublishModel::Subscribers,
        max_items: MaxItems::Count(3),
        persist_items: false,
        deliver_payloads: false,
        deliver_notifications: false,
        notify_config: true,
        notify_delete: true,
        notify_retract: true,
        notify_sub: true,
        presence_based_delivery: true,
        send_last_published_item: SendLastPublished::OnSubAndPresence,
        item_expire: Some(3600),
        notification_type: NotificationType::Normal,
        itemreply: ItemReply::Publisher,
        max_payload_size: 1234,
        node_type: NodeType::Leaf,
        // In a collection (XEP-0248): stored on the child; `children` is derived.
        collection: vec!["topics".into()],
        ..NodeConfig::default()
    }
}

/// A collection with every collection field away from its default.
fn collection_config() -> NodeConfig {
    NodeConfig {
        node_type: NodeType::Collection,
        children_max: Some(10),
        children_association_policy: AssociationPolicy::Whitelist,
        children_association_whitelist: vec![bare("assoc@example.org")],
        ..NodeConfig::default()
    }
}

fn item(id: &str, seq: u64, publisher: &str, payload: &str) -> roost_nodes::Item {
    roost_nodes::Item {
        id: id.into(),
        seq,
        first_seq: None,
        publisher: jid(publisher),
        published: 1_764_892_800_000 + seq * 1001,
        payload: payload.into(),
    }
}

fn sub(j: &str, subid: &str, state: SubscriptionState, options: SubOptions) -> Subscription {
    Subscription {
        jid: jid(j),
        subid: subid.into(),
        state,
        options,
    }
}

/// Writes the data set: returns nothing, the store holds it.
fn fill(store: &mut SledStore) {
    let mut c = ChangeSet::default();
    let node = |name: &str, uid: u64, config: NodeConfig| NodeRecord {
        name: name.into(),
        uid,
        creator: bare("owner@example.org"),
        created: 1_764_892_800_123 + uid,
        config,
    };
    // A node deleted since: last_uid stays above every live uid.
    c.push(Change::PutNode(node("gone", 9, NodeConfig::default())));
    c.push(Change::PutNode(node("topics", 7, collection_config())));
    c.push(Change::PutNode(node("full", 3, full_config())));
    c.push(Change::PutNode(node("plain", 4, NodeConfig::default())));
    c.push(Change::PutNode(node(
        "max",
        5,
        NodeConfig {
            max_items: MaxItems::Max,
            access_model: AccessModel::Presence,
            ..NodeConfig::default()
        },
    )));
    c.push(Change::PutNode(node("empty", 6, NodeConfig::default())));
    for (who, a) in [
        ("owner@example.org", Affiliation::Owner),
        ("co-owner@example.org", Affiliation::Owner),
        ("pub@example.org", Affiliation::Publisher),
        ("po@example.org", Affiliation::PublishOnly),
        ("member@example.org", Affiliation::Member),
        ("banned@example.net", Affiliation::Outcast),
    ] {
        c.push(Change::PutAffiliation {
            node: "full".into(),
            jid: bare(who),
            affiliation: a,
        });
    }
    c.push(Change::PutAffiliation {
        node: "plain".into(),
        jid: bare("owner@example.org"),
        affiliation: Affiliation::Owner,
    });
    let leased = SubOptions {
        deliver: false,
        digest: true,
        digest_frequency: 3_600_000,
        expire: Some(1_893_456_000_789),
        include_body: true,
        show_values: vec![Show::Dnd, Show::Chat],
        subscription_type: SubscriptionType::Nodes,
        subscription_depth: SubscriptionDepth::All,
        // Every option at once: collection options and a content filter (both appended
        // to the record only when set; the filter as the engine stores it, canonical).
        filter: Some(canonical(
            "@level = 'error' and (host ^= \"wéb-\" or exists(x/@y))",
        )),
    };
    // A content filter alone, the collection options at their defaults.
    let filtered_only = SubOptions {
        filter: Some(canonical("severity >= 3")),
        ..SubOptions::default()
    };
    for s in [
        sub(
            "a@example.org",
            "s1",
            SubscriptionState::Subscribed,
            SubOptions::default(),
        ),
        // Several subscriptions of one JID.
        sub(
            "a@example.org/phone",
            "s2",
            SubscriptionState::Subscribed,
            leased.clone(),
        ),
        sub(
            "a@example.org/phone",
            "s3",
            SubscriptionState::Unconfigured,
            SubOptions::default(),
        ),
        sub("b@example.net", "s4", SubscriptionState::Pending, leased),
        sub(
            "c@example.net",
            "s5",
            SubscriptionState::Subscribed,
            filtered_only,
        ),
    ] {
        c.push(Change::PutSubscription {
            node: "full".into(),
            sub: s,
        });
    }
    // Items: publishers as full JIDs, payloads of every shape, a notification-only item.
    let payloads = [
        "<entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry>",
        "<x xmlns='urn:a' k='v &amp; &lt;w&gt;'><y xmlns='urn:b' xml:lang='fr'>été</y>text &amp; more</x>",
        "",
        "<deep xmlns='urn:d'><a><b><c attr='1'/></b></a></deep>",
        "<ws xmlns='urn:w'>  spaced  </ws>",
    ];
    for seq in 1..=10u64 {
        let who = if seq % 2 == 0 {
            "pub@example.org/laptop"
        } else {
            "owner@example.org/desk"
        };
        let mut i = item(&format!("i{seq}"), seq, who, payloads[(seq % 5) as usize]);
        if seq == 10 {
            // Overwritten: it keeps its creation (XEP-0413) through a dump.
            i.first_seq = Some(2);
        }
        c.push(Change::PutItem { uid: 3, item: i });
        c.push(Change::ScheduleExpiry {
            at: 1_764_900_000_000 + seq,
            uid: 3,
            seq,
        });
    }
    // At max_items: trimmed to the newest 3, a retraction leaving a gap.
    c.push(Change::TrimItems { uid: 3, keep: 4 });
    c.push(Change::DeleteItem {
        uid: 3,
        id: "i9".into(),
        seq: 9,
    });
    c.push(Change::PutCounters {
        uid: 3,
        counters: ItemCounters {
            count: 3,
            last_seq: 10,
        },
    });
    for seq in 1..=600u64 {
        c.push(Change::PutItem {
            uid: 5,
            item: item(
                &format!("m-{seq:04}"),
                seq * 2,
                "pub@example.org/r",
                payloads[0],
            ),
        });
    }
    c.push(Change::PutCounters {
        uid: 5,
        counters: ItemCounters {
            count: 600,
            last_seq: 1200,
        },
    });
    // Items purged: counters keep the last seq.
    c.push(Change::PutCounters {
        uid: 4,
        counters: ItemCounters {
            count: 0,
            last_seq: 7,
        },
    });
    c.push(Change::DeleteNode {
        name: "gone".into(),
        uid: 9,
    });
    store.commit(&c).unwrap();
    store.sync().unwrap();
}

/// Everything a store exposes.
fn state(
    s: &mut SledStore,
) -> (
    roost_nodes::Snapshot,
    Vec<Vec<roost_nodes::Item>>,
    Vec<roost_nodes::Expiry>,
) {
    let snap = s.load().unwrap();
    let items = snap
        .nodes
        .values()
        .map(|(rec, _)| s.latest_items(rec.uid, None).unwrap())
        .collect();
    let mut exp: Vec<_> = s.due_expiries(u64::MAX, 1_000_000).unwrap();
    // Stale rows (items gone) are not state: an import does not carry them.
    exp.retain(|(_, uid, seq)| s.item_at(*uid, *seq).unwrap().is_some());
    (snap, items, exp)
}

fn export_bytes(s: &mut SledStore) -> (Vec<u8>, Totals) {
    export(s, Vec::new()).unwrap()
}

#[test]
fn the_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let mut src = SledStore::open(&a).unwrap();
    fill(&mut src);
    let before = state(&mut src);
    assert_eq!(before.0.last_uid, 9);
    assert_eq!(
        before.1[1].iter().map(|i| i.seq).collect::<Vec<_>>(),
        [7, 8, 10],
        "trimmed, with a gap"
    );
    let (xml, totals) = export_bytes(&mut src);
    assert_eq!(
        totals,
        Totals {
            nodes: 5,
            affiliations: 7,
            subscriptions: 5,
            items: 603,
            expiries: 3
        }
    );
    let text = String::from_utf8(xml.clone()).unwrap();
    assert!(
        text.starts_with("<?xml version='1.0' encoding='utf-8'?>\n<dump xmlns='urn:roost:dump:1'")
            || text.starts_with("<?xml"),
        "{}",
        &text[..200]
    );

    let imported = import(&xml[..], &b).unwrap();
    assert_eq!(imported, totals);
    let mut dst = SledStore::open(&b).unwrap();
    let after = state(&mut dst);
    assert_eq!(after, before);
    // New items continue after the last seq, as they would have.
    assert_eq!(dst.load().unwrap().nodes["plain"].1.last_seq, 7);
    let (again, _) = export_bytes(&mut dst);
    assert_eq!(
        String::from_utf8(again).unwrap(),
        text,
        "exports again to the same bytes"
    );
    let report = roost_storage::check::check(&dst).unwrap();
    assert_eq!(report.problems, Vec::<String>::new());
    assert_eq!(report.items, 603);
}

#[test]
fn import_refuses_a_non_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("something"), "x").unwrap();
    let xml = b"<dump xmlns='urn:roost:dump:1' last-uid='0' nodes='0' items='0'/>";
    let e = import(&xml[..], dir.path()).unwrap_err().to_string();
    assert!(e.contains("is not empty"), "{e}");
}

#[test]
fn bad_dumps_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("<other xmlns='urn:x'/>", "not a Roost dump"),
        ("<dump xmlns='urn:roost:dump:9' last-uid='0' nodes='0' items='0'/>", "import it with the Roost release"),
        ("<dump xmlns='urn:roost:dump:1' last-uid='0' nodes='0' items='0'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>", "truncated"),
        (
            "<dump xmlns='urn:roost:dump:1' last-uid='0' nodes='0' items='0'>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/>\
             <pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='nope'/></pubsub>\
             <expiries/></dump>",
            "no configuration before them",
        ),
    ];
    for (i, (xml, why)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let e = import(xml.as_bytes(), &dir.path().join(format!("d{i}")))
            .unwrap_err()
            .to_string();
        assert!(e.contains(why), "case {i}: {e}");
    }
}

#[test]
fn a_content_filter_that_does_not_parse_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = SledStore::open(&dir.path().join("a")).unwrap();
    fill(&mut src);
    let (xml, _) = export_bytes(&mut src);
    let text = String::from_utf8(xml).unwrap();
    assert_eq!(
        text.matches("severity").count(),
        1,
        "the filter-only subscription's filter"
    );
    let broken = text.replace("severity", "(severity");
    let e = import(broken.as_bytes(), &dir.path().join("b"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("x-roost#filter") && e.contains("s5"), "{e}");
}

#[test]
fn check_finds_a_broken_index() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SledStore::open(dir.path()).unwrap();
    fill(&mut s);
    assert_eq!(
        roost_storage::check::check(&s).unwrap().problems,
        Vec::<String>::new()
    );
    // Counters that disagree with the items.
    let mut c = ChangeSet::default();
    c.push(Change::PutCounters {
        uid: 5,
        counters: ItemCounters {
            count: 599,
            last_seq: 1200,
        },
    });
    s.commit(&c).unwrap();
    // An id index entry removed behind the store's back.
    let tree = s.raw_tree();
    let key = tree
        .scan_prefix(roost_storage::keys::ids(3))
        .keys()
        .next()
        .unwrap()
        .unwrap();
    tree.remove(key).unwrap();
    let problems = roost_storage::check::check(&s).unwrap().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"max\": 600 live items")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("\"full\": the id index has 0 live entries")),
        "{problems:?}"
    );
}

/// A filter's canonical text, as the engine stores it.
fn canonical(text: &str) -> String {
    roost_nodes::filter::Filter::parse(text)
        .expect("a valid filter")
        .to_string()
}
