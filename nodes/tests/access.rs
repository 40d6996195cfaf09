//! §4.1 "Affiliations and their Privileges", exhaustively: every affiliation × action,
//! first against `access::allowed`, then end to end through the service.

mod common;

use common::*;
use roost_nodes::access::{self, Action};
use roost_nodes::*;

const A: [Affiliation; 6] = [
    Affiliation::Owner,
    Affiliation::Publisher,
    Affiliation::PublishOnly,
    Affiliation::Member,
    Affiliation::None,
    Affiliation::Outcast,
];

/// Columns: Subscribe, Retrieve, Publish, DeleteOwn, DeleteAny, Purge, Configure,
/// DeleteNode, ManageSubscriptions, ManageAffiliations. Rows in `A` order. Written out
/// from the XEP table (footnote: publisher deletes any item, publish-only only its own).
const TABLE: [[bool; 10]; 6] = [
    [true, true, true, true, true, true, true, true, true, true],
    [
        true, true, true, true, true, true, false, false, false, false,
    ],
    [
        false, false, true, true, false, false, false, false, false, false,
    ],
    [
        true, true, false, false, false, false, false, false, false, false,
    ],
    [
        true, false, false, false, false, false, false, false, false, false,
    ],
    [false; 10],
];

const ACTIONS: [Action; 10] = [
    Action::Subscribe,
    Action::RetrieveItems,
    Action::PublishItems,
    Action::DeleteOwnItem,
    Action::DeleteAnyItem,
    Action::PurgeNode,
    Action::ConfigureNode,
    Action::DeleteNode,
    Action::ManageSubscriptions,
    Action::ManageAffiliations,
];

#[test]
fn s4_1_capability_table_exhaustive() {
    assert_eq!(Action::ALL, &ACTIONS[..]);
    for (r, aff) in A.iter().enumerate() {
        for (c, action) in ACTIONS.iter().enumerate() {
            assert_eq!(
                access::allowed(*aff, *action),
                TABLE[r][c],
                "{aff:?} × {action:?}"
            );
        }
    }
}

const U: &str = "ursula@denmark.lit/r";

/// A node `access_model` with one item by the owner ("o1") and one by U ("u1"), U
/// affiliated as `aff`, loaded from a store (so U's item exists whatever U may do).
fn setup(aff: Affiliation, access_model: AccessModel) -> Service<MemStore> {
    let mut store = MemStore::new();
    let item = |id: &str, seq, by: &str| Change::PutItem {
        uid: 1,
        item: Item {
            id: id.into(),
            seq,
            first_seq: None,
            publisher: j(by),
            published: 0,
            payload: "<x/>".into(),
        },
    };
    let mut changes = vec![
        Change::PutNode(NodeRecord {
            name: NODE.into(),
            uid: 1,
            creator: b(OWNER),
            created: 0,
            config: NodeConfig {
                access_model,
                ..NodeConfig::default()
            },
        }),
        Change::PutCounters {
            uid: 1,
            counters: ItemCounters {
                count: 2,
                last_seq: 2,
            },
        },
        Change::PutAffiliation {
            node: NODE.into(),
            jid: b(OWNER),
            affiliation: Affiliation::Owner,
        },
        item("o1", 1, OWNER),
        item("u1", 2, U),
    ];
    if aff != Affiliation::None {
        changes.push(Change::PutAffiliation {
            node: NODE.into(),
            jid: b(U),
            affiliation: aff,
        });
    }
    store.commit(&ChangeSet(changes)).unwrap();
    Service::open(store, policy()).unwrap()
}

fn request_for(action: Action) -> Request {
    let node = NODE.to_string();
    match action {
        Action::Subscribe => Request::Subscribe {
            node,
            jid: j(U),
            options: None,
        },
        Action::RetrieveItems => Request::Items {
            node,
            max_items: None,
            ids: vec![],
            subid: None,
        },
        Action::PublishItems => publish_req("new", "<x/>"),
        Action::DeleteOwnItem => Request::Retract {
            node,
            ids: vec!["u1".into()],
            notify: false,
        },
        Action::DeleteAnyItem => Request::Retract {
            node,
            ids: vec!["o1".into()],
            notify: false,
        },
        Action::PurgeNode => Request::Purge { node },
        Action::ConfigureNode => Request::GetConfig { node },
        Action::DeleteNode => Request::Delete {
            node,
            redirect: None,
        },
        Action::ManageSubscriptions => Request::GetSubscriptions { node },
        Action::ManageAffiliations => Request::GetAffiliations { node },
    }
}

#[test]
fn s4_1_table_through_the_service_on_whitelist_node() {
    // On a whitelist node the table holds as written, except that `none` may not
    // subscribe (§4.5: only whitelisted entities).
    for (r, aff) in A.iter().enumerate() {
        for (c, action) in ACTIONS.iter().enumerate() {
            let mut svc = setup(*aff, AccessModel::Whitelist);
            let want = TABLE[r][c] && !(*aff == Affiliation::None && *action == Action::Subscribe);
            let got = run(&mut svc, U, request_for(*action));
            assert_eq!(got.is_ok(), want, "{aff:?} × {action:?}: {got:?}");
            if let Err(e) = got {
                let expected = match (aff, action) {
                    (Affiliation::Outcast, _) => Error::Outcast,
                    (_, Action::PublishItems) => Error::PublishForbidden,
                    (Affiliation::None, Action::Subscribe | Action::RetrieveItems) => {
                        Error::ClosedNode
                    }
                    _ => Error::Forbidden,
                };
                assert_eq!(e, expected, "{aff:?} × {action:?}");
            }
        }
    }
}

#[test]
fn s4_5_open_node_lets_anyone_but_outcasts_and_publish_only_subscribe_and_retrieve() {
    // The open model opens the node to `none`; it does not grant publish-only what the
    // §4.1 table denies it (subscribe, retrieve).
    for aff in A {
        for action in [Action::Subscribe, Action::RetrieveItems] {
            let mut svc = setup(aff, AccessModel::Open);
            let got = run(&mut svc, U, request_for(action));
            assert_eq!(
                got.is_ok(),
                !matches!(aff, Affiliation::Outcast | Affiliation::PublishOnly),
                "{aff:?} × {action:?}: {got:?}"
            );
        }
    }
}

#[test]
fn s4_1_admins_are_owners_of_every_node() {
    for action in ACTIONS {
        let mut svc = setup(Affiliation::None, AccessModel::Whitelist);
        let req = match action {
            Action::Subscribe => Request::Subscribe {
                node: NODE.into(),
                jid: j(ADMIN),
                options: None,
            },
            a => request_for(a),
        };
        assert!(run(&mut svc, ADMIN, req).is_ok(), "admin × {action:?}");
    }
}
