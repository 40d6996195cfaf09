//! Shared by the storage tests: a fixture generator that writes a realistic data dir
//! through the engine (any store: the version-1 store writes version-1 fixtures, the
//! code path that wrote them in production), and a reader of everything a store exposes.

#![allow(dead_code)]

use roost_nodes::{
    Affiliation, BareJid, Expiry, Item, Jid, MaxItems, NewItem, NodeConfigPatch, Policy, Request,
    Service, Show, Snapshot, Store, SubOptionsPatch,
};
use std::collections::BTreeMap;

/// A node record named `name` with `uid`, the same owner for all.
pub fn node(name: &str, uid: u64) -> roost_nodes::NodeRecord {
    roost_nodes::NodeRecord {
        name: name.into(),
        uid,
        creator: BareJid::new("o@example.org").unwrap(),
        created: 1,
        config: roost_nodes::NodeConfig::default(),
    }
}

pub fn jid(s: &str) -> Jid {
    Jid::new(s).expect("test JID")
}

/// An item of `seq` with a 157-byte payload, as the engine would store it.
pub fn item(id: &str, seq: u64) -> Item {
    Item {
        id: id.into(),
        seq,
        first_seq: None,
        publisher: jid("p@example.org/r"),
        published: seq,
        payload: format!("<x>{}</x>", "y".repeat(150)),
    }
}

/// Everything a store exposes: the snapshot, every item of every node (also looked up by
/// id, counted, and paged from both ends), and the expiry index.
#[derive(Debug, PartialEq)]
pub struct State {
    pub snapshot: Snapshot,
    pub items: BTreeMap<u64, Vec<Item>>,
    pub expiries: Vec<Expiry>,
}

pub fn state<S: Store>(s: &mut S) -> State {
    let snapshot = s.load().expect("load");
    let mut items = BTreeMap::new();
    for (rec, _) in snapshot.nodes.values() {
        let all = s.latest_items(rec.uid, None).expect("latest_items");
        for i in &all {
            assert_eq!(s.item(rec.uid, &i.id).expect("item").as_ref(), Some(i));
        }
        assert_eq!(
            s.count_before(rec.uid, None).expect("count"),
            all.len() as u64
        );
        assert_eq!(
            s.oldest_items(rec.uid, 3).expect("oldest")[..],
            all[..all.len().min(3)]
        );
        items.insert(rec.uid, all);
    }
    let expiries = s.due_expiries(u64::MAX, 1_000_000).expect("expiries");
    State {
        snapshot,
        items,
        expiries,
    }
}

fn ok<S: Store>(svc: &mut Service<S>, who: &str, req: Request, now: u64) {
    if let Err(e) = svc.handle(&jid(who), req, now) {
        panic!("fixture request failed: {e:?}");
    }
}

fn publish<S: Store>(
    svc: &mut Service<S>,
    who: &str,
    node: &str,
    id: Option<String>,
    n: u64,
    now: u64,
) {
    let payload = format!(
        "<entry xmlns='urn:fixture'>{n} {}</entry>",
        "x".repeat((n % 50) as usize)
    );
    ok(
        svc,
        who,
        Request::Publish {
            node: node.into(),
            item: Some(NewItem {
                id,
                payload: Some(payload),
            }),
            options: None,
        },
        now,
    );
}

fn create<S: Store>(svc: &mut Service<S>, node: &str, config: NodeConfigPatch) {
    ok(
        svc,
        "owner@example.org/r",
        Request::Create {
            node: Some(node.into()),
            config: Some(config),
        },
        1,
    );
}

/// Writes the fixture through the engine over `store`, syncs and drops it; `scale`
/// multiplies the number of items and subscriptions.
pub fn write<S: Store>(store: S, scale: u64) {
    let policy = Policy {
        max_subscriptions_per_jid: 1_000_000,
        ..Policy::default()
    };
    let mut svc = Service::open(store, policy).expect("open service");
    let mut now = 1_700_000_000_000;
    // A node trimmed to 5 items, published to many times, ids replaced now and then.
    create(
        &mut svc,
        "trimmed",
        NodeConfigPatch {
            max_items: Some(MaxItems::Count(5)),
            ..Default::default()
        },
    );
    // A node keeping everything (several buckets), with retractions.
    create(
        &mut svc,
        "all",
        NodeConfigPatch {
            max_items: Some(MaxItems::Max),
            title: Some("Ünïcode title".into()),
            ..Default::default()
        },
    );
    // Items that expire.
    create(
        &mut svc,
        "expiring",
        NodeConfigPatch {
            item_expire: Some(Some(3600)),
            ..Default::default()
        },
    );
    create(
        &mut svc,
        "whitelist",
        NodeConfigPatch {
            access_model: Some(roost_nodes::AccessModel::Whitelist),
            ..Default::default()
        },
    );
    create(&mut svc, "doomed", NodeConfigPatch::default());
    create(&mut svc, "purged", NodeConfigPatch::default());
    for n in 0..(40 * scale) {
        now += 1;
        let id = matches!(n % 7, 0).then(|| format!("same-{}", n % 3));
        publish(&mut svc, "owner@example.org/r", "trimmed", id, n, now);
        publish(
            &mut svc,
            "owner@example.org/r",
            "all",
            Some(format!("item-{n:05}")),
            n,
            now,
        );
        if matches!(n % 4, 0) {
            publish(&mut svc, "owner@example.org/r", "expiring", None, n, now);
            publish(&mut svc, "owner@example.org/r", "doomed", None, n, now);
            publish(&mut svc, "owner@example.org/r", "purged", None, n, now);
        }
    }
    let retract: Vec<String> = (0..(40 * scale))
        .step_by(9)
        .map(|n| format!("item-{n:05}"))
        .collect();
    ok(
        &mut svc,
        "owner@example.org/r",
        Request::Retract {
            node: "all".into(),
            ids: retract,
            notify: false,
        },
        now,
    );
    let affs: Vec<(BareJid, Affiliation)> = (0..6)
        .map(|i| {
            let a = [
                Affiliation::Member,
                Affiliation::Publisher,
                Affiliation::Outcast,
            ][i % 3];
            (BareJid::new(&format!("a{i}@example.org")).expect("jid"), a)
        })
        .collect();
    ok(
        &mut svc,
        "owner@example.org/r",
        Request::SetAffiliations {
            node: "whitelist".into(),
            changes: affs,
        },
        now,
    );
    for i in 0..(30 * scale) {
        let who = format!("u{i}@example.org/res{}", i % 2);
        let options = matches!(i % 5, 0).then(|| SubOptionsPatch {
            show_values: Some(vec![Show::Chat, Show::Away]),
            expire: Some(Some(1_900_000_000_000 + i)),
            ..Default::default()
        });
        for node in ["all", "trimmed", "doomed"] {
            ok(
                &mut svc,
                &who,
                Request::Subscribe {
                    node: node.into(),
                    jid: jid(&who),
                    options: options.clone(),
                },
                now,
            );
        }
        if matches!(i % 3, 0) {
            ok(
                &mut svc,
                &who,
                Request::Unsubscribe {
                    node: "trimmed".into(),
                    jid: jid(&who),
                    subid: None,
                },
                now,
            );
        }
    }
    ok(
        &mut svc,
        "owner@example.org/r",
        Request::Purge {
            node: "purged".into(),
        },
        now,
    );
    ok(
        &mut svc,
        "owner@example.org/r",
        Request::Delete {
            node: "doomed".into(),
            redirect: None,
        },
        now,
    );
    // Created again under the old name: a new uid.
    create(&mut svc, "doomed", NodeConfigPatch::default());
    publish(
        &mut svc,
        "owner@example.org/r",
        "doomed",
        Some("reborn".into()),
        1,
        now,
    );
    svc.store_mut().sync().expect("sync");
}
