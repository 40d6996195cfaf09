//! A failed commit changes nothing and notifies no one (`MemStore::fail_next`).

mod common;

use common::*;
use roost_nodes::*;

/// Snapshot, node names, Alice's subscriptions, and NODE's subscriptions, affiliations, items.
type Observed = (
    Snapshot,
    Vec<String>,
    Vec<String>,
    Vec<Subscription>,
    Vec<(BareJid, Affiliation)>,
    Vec<Item>,
);

/// Everything observable about the service and its store.
fn observe(svc: &mut Service<MemStore>) -> Observed {
    let snap = svc.store_mut().load().unwrap();
    let nodes = svc.node_names().map(str::to_owned).collect();
    let exists = svc.node_names().any(|n| n == NODE);
    let (subs, affs, its) = if exists {
        (all_subs(svc), all_affs(svc), items(svc, OWNER))
    } else {
        Default::default()
    };
    let alice_subs = match ok(svc, ALICE, Request::Subscriptions { node: None }).reply {
        Reply::Subscriptions { subs, .. } => subs
            .into_iter()
            .map(|(n, s)| format!("{n}/{}", s.subid))
            .collect(),
        r => panic!("{r:?}"),
    };
    (snap, nodes, alice_subs, subs, affs, its)
}

fn populated() -> Service<MemStore> {
    let mut svc = service();
    create(
        &mut svc,
        NodeConfigPatch {
            notify_config: Some(true),
            notify_delete: Some(true),
            notify_retract: Some(true),
            notify_sub: Some(true),
            max_items: Some(MaxItems::Count(2)),
            ..Default::default()
        },
    );
    subscribe(&mut svc, ALICE);
    publish(&mut svc, OWNER, "a", "<x/>");
    publish(&mut svc, OWNER, "b", "<x/>");
    svc
}

#[test]
fn s7_failed_commit_leaves_no_trace() {
    let requests = vec![
        Request::Create {
            node: Some("new".into()),
            config: None,
        },
        Request::Create {
            node: None,
            config: None,
        },
        publish_req("c", "<y/>"),
        publish_req("a", "<y/>"),
        Request::Retract {
            node: NODE.into(),
            ids: vec!["a".into()],
            notify: true,
        },
        Request::Purge { node: NODE.into() },
        Request::Delete {
            node: NODE.into(),
            redirect: None,
        },
        Request::SetConfig {
            node: NODE.into(),
            config: whitelist(),
        },
        subscribe_req(BOB),
        Request::Unsubscribe {
            node: NODE.into(),
            jid: j(ALICE),
            subid: None,
        },
        Request::SetOptions {
            node: NODE.into(),
            jid: j(ALICE),
            subid: None,
            options: SubOptionsPatch {
                deliver: Some(false),
                ..Default::default()
            },
        },
        Request::SetSubscriptions {
            node: NODE.into(),
            changes: vec![
                sub_change(ALICE, None, SubscriptionState::None),
                sub_change(BOB, None, SubscriptionState::Subscribed),
            ],
        },
        Request::SetAffiliations {
            node: NODE.into(),
            changes: vec![
                (b(ALICE), Affiliation::Outcast),
                (b(BOB), Affiliation::Publisher),
            ],
        },
    ];
    for req in requests {
        let mut svc = populated();
        let actor = match &req {
            Request::Subscribe { .. } => BOB,
            Request::Unsubscribe { .. } | Request::SetOptions { .. } => ALICE,
            _ => OWNER,
        };
        let before = observe(&mut svc);
        svc.store_mut().fail_next = Some("disk on fire".into());
        let got = run(&mut svc, actor, req.clone());
        assert_eq!(
            got,
            Err(Error::Storage(StoreError("disk on fire".into()))),
            "{req:?}"
        );
        assert_eq!(observe(&mut svc), before, "{req:?} left a trace");
        // The same request succeeds afterwards: memory did not half-apply it.
        let out = run(&mut svc, actor, req.clone()).unwrap_or_else(|e| panic!("{req:?}: {e}"));
        let _ = out;
        // And memory agrees with what a fresh load of the store would give.
        let snap = svc.store_mut().load().unwrap();
        let mut fresh = MemStore::new();
        fresh.commit(&snapshot_changes(&snap)).unwrap();
        let mut reopened = Service::open(fresh, policy()).unwrap();
        assert_eq!(
            svc.node_names().collect::<Vec<_>>(),
            reopened.node_names().collect::<Vec<_>>()
        );
        if svc.node_names().any(|n| n == NODE) {
            assert_eq!(all_subs(&mut svc), all_subs(&mut reopened), "{req:?}");
            assert_eq!(all_affs(&mut svc), all_affs(&mut reopened), "{req:?}");
        }
    }
}

#[test]
fn s7_1_failed_publish_notifies_no_one() {
    let mut svc = populated();
    svc.store_mut().fail_next = Some("boom".into());
    assert!(run(&mut svc, OWNER, publish_req("z", "<x/>")).is_err());
    // Had the failed publish half-applied, counters would make this trim wrongly.
    let out = publish(&mut svc, OWNER, "z", "<x/>");
    assert_eq!(recipients(&out), vec![ALICE.to_string()]);
    assert_eq!(item_ids(&mut svc), vec!["b", "z"]);
}

/// A snapshot's records as a change set (items are not in a snapshot).
fn snapshot_changes(s: &Snapshot) -> ChangeSet {
    let mut c = ChangeSet::default();
    for (rec, counters) in s.nodes.values() {
        c.push(Change::PutNode(rec.clone()));
        c.push(Change::PutCounters {
            uid: rec.uid,
            counters: *counters,
        });
    }
    for (node, affs) in &s.affiliations {
        for (jid, a) in affs {
            c.push(Change::PutAffiliation {
                node: node.clone(),
                jid: jid.clone(),
                affiliation: *a,
            });
        }
    }
    for (node, subs) in &s.subscriptions {
        for sub in subs.values() {
            c.push(Change::PutSubscription {
                node: node.clone(),
                sub: sub.clone(),
            });
        }
    }
    c
}
