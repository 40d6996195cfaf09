//! Shared helpers for the engine tests.
#![allow(dead_code)]

use roost_nodes::request::SubscriptionChange;
use roost_nodes::*;

pub const NODE: &str = "princely_musings";
pub const OWNER: &str = "hamlet@denmark.lit/elsinore";
pub const ALICE: &str = "alice@denmark.lit/phone";
pub const BOB: &str = "bob@denmark.lit/desk";
pub const ADMIN: &str = "admin@denmark.lit/console";

pub fn j(s: &str) -> Jid {
    Jid::new(s).expect("valid test JID")
}

pub fn b(s: &str) -> BareJid {
    j(s).to_bare()
}

pub fn policy() -> Policy {
    Policy {
        admins: vec![b(ADMIN)],
        ..Policy::default()
    }
}

pub fn service() -> Service<MemStore> {
    Service::open(MemStore::new(), policy()).expect("open")
}

pub fn service_with(policy: Policy) -> Service<MemStore> {
    Service::open(MemStore::new(), policy).expect("open")
}

pub fn run(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Result<Outcome, Error> {
    svc.handle(&j(actor), req, 1_000)
}

pub fn ok(svc: &mut Service<MemStore>, actor: &str, req: Request) -> Outcome {
    let r = run(svc, actor, req.clone());
    r.unwrap_or_else(|e| panic!("{req:?} by {actor} failed: {e}"))
}

/// The owner creates NODE with the given configuration patch.
pub fn create(svc: &mut Service<MemStore>, patch: NodeConfigPatch) {
    ok(
        svc,
        OWNER,
        Request::Create {
            node: Some(NODE.into()),
            config: Some(patch),
        },
    );
}

pub fn whitelist() -> NodeConfigPatch {
    NodeConfigPatch {
        access_model: Some(AccessModel::Whitelist),
        ..Default::default()
    }
}

pub fn publish_req(id: &str, payload: &str) -> Request {
    Request::Publish {
        node: NODE.into(),
        item: Some(NewItem {
            id: (!id.is_empty()).then(|| id.to_owned()),
            payload: Some(payload.to_owned()),
        }),
        options: None,
    }
}

pub fn publish(svc: &mut Service<MemStore>, actor: &str, id: &str, payload: &str) -> Outcome {
    ok(svc, actor, publish_req(id, payload))
}

pub fn subscribe_req(jid: &str) -> Request {
    Request::Subscribe {
        node: NODE.into(),
        jid: j(jid),
        options: None,
    }
}

pub fn subscribe(svc: &mut Service<MemStore>, jid: &str) -> Subscription {
    match ok(svc, jid, subscribe_req(jid)).reply {
        Reply::Subscription { sub, .. } => sub,
        r => panic!("unexpected reply {r:?}"),
    }
}

pub fn set_aff(svc: &mut Service<MemStore>, jid: &str, aff: Affiliation) {
    ok(
        svc,
        OWNER,
        Request::SetAffiliations {
            node: NODE.into(),
            changes: vec![(b(jid), aff)],
        },
    );
}

pub fn items(svc: &mut Service<MemStore>, actor: &str) -> Vec<Item> {
    match ok(
        svc,
        actor,
        Request::Items {
            node: NODE.into(),
            max_items: None,
            ids: vec![],
            subid: None,
        },
    )
    .reply
    {
        Reply::Items { items, .. } => items,
        r => panic!("unexpected reply {r:?}"),
    }
}

pub fn item_ids(svc: &mut Service<MemStore>) -> Vec<String> {
    items(svc, OWNER).into_iter().map(|i| i.id).collect()
}

pub fn all_subs(svc: &mut Service<MemStore>) -> Vec<Subscription> {
    match ok(svc, OWNER, Request::GetSubscriptions { node: NODE.into() }).reply {
        Reply::Subscriptions { subs, .. } => subs.into_iter().map(|(_, s)| s).collect(),
        r => panic!("unexpected reply {r:?}"),
    }
}

pub fn all_affs(svc: &mut Service<MemStore>) -> Vec<(BareJid, Affiliation)> {
    match ok(svc, OWNER, Request::GetAffiliations { node: NODE.into() }).reply {
        Reply::Affiliations { affs, .. } => affs.into_iter().map(|(_, j, a)| (j, a)).collect(),
        r => panic!("unexpected reply {r:?}"),
    }
}

pub fn sub_change(jid: &str, subid: Option<&str>, state: SubscriptionState) -> SubscriptionChange {
    SubscriptionChange {
        jid: j(jid),
        subid: subid.map(str::to_owned),
        state,
    }
}

pub fn recipients(out: &Outcome) -> Vec<String> {
    let mut v: Vec<String> = out.notifications.iter().map(|n| n.to.to_string()).collect();
    v.sort();
    v
}
