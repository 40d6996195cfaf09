//! Random request sequences against the engine, checked against invariants.
//!
//! Shared, as source, by the `invariants` integration test (driven by proptest, which
//! shrinks failures) and by the `engine` fuzz target (driven by libFuzzer's bytes through
//! `arbitrary::Unstructured`): both implement [`Source`], and [`Gen`] turns choices into
//! ops. No dependency beyond `roost-nodes` here, so the fuzz target needs nothing new.
//!
//! An [`Op`] is a small, index-based description of one request (or of a store failure,
//! or of time passing) over a tiny universe: six JIDs (bare and full, one service admin),
//! three fixed node names plus instant nodes, four item ids and four payloads. [`run`]
//! maps each op to a [`Request`], hands it to a `Service<MemStore>` and checks, after
//! every step:
//!
//! - (a) nothing panics;
//! - (b) every item notification goes to a JID that, at that moment, held a subscription
//!   in state subscribed with `deliver=true` to that node (the subscriptions are read
//!   through an admin's `GetSubscriptions`), for the subids the notification names;
//!   every publish reaches each such JID (no subscriber is skipped);
//! - (c) every delivered or retrievable item was published to that node (this node
//!   instance: a re-created node is a new one) by a successful publish of this run, with
//!   the same id, publisher and payload (an empty payload when `with_payload` is off);
//! - (d) a publish is delivered at most once to one JID (the last-published item sent on
//!   subscribe is a replay and is exempt);
//! - (e) to one recipient, items of one publisher arrive in publish order;
//! - (f) a refused request, including one whose commit failed (`Error::Storage`), sends
//!   nothing and leaves the observable state (nodes, metadata, subscriptions,
//!   affiliations, items) as it was; a read changes nothing either; a storage error
//!   happens exactly when an armed failure is consumed;
//! - (g) a service reopened over the same store observes the same state (after every
//!   storage failure and at the end of the run);
//! - and structural ones: the stored items equal a shadow list the harness keeps itself
//!   (publish replaces the id, trims the oldest beyond `max_items`; retract, purge and
//!   delete remove), `num_subscribers` counts the subscribed subscriptions, an outcast
//!   holds no subscription, every node keeps an owner, a non-admin cannot subscribe,
//!   unsubscribe or configure someone else's JID;
//! - paging (XEP-0059): a page is a contiguous slice of the unpaged list, its `count` is
//!   that list's length, `first` gives the slice's position, `max` and `after` hold.
//!
//! `docs/fuzzing.md` lists the ops and invariants in prose.
//!
//! A violation panics with a message naming the step; proptest shrinks the sequence.

#![allow(dead_code)]

use roost_nodes::request::SubscriptionChange;
use roost_nodes::store::{ChangeSet, Loader, StoreError};
use roost_nodes::*;
use std::collections::{BTreeMap, BTreeSet};

// ------------------------------------------------------------------------- universe

/// Requesters and subscription targets. The last one is the service admin.
pub const JIDS: &[&str] = &[
    "alice@example.org",
    "alice@example.org/phone",
    "bob@example.org",
    "bob@example.org/laptop",
    "carol@example.net/home",
    "admin@example.org",
];
const ADMIN: &str = "admin@example.org";
const NODES: &[&str] = &["n1", "n2", "n3"];
const ITEM_IDS: &[&str] = &["", "i1", "i2", "i3"];
const PAYLOADS: &[&str] = &[
    "<entry xmlns='urn:x:a'>one</entry>",
    "<entry xmlns='urn:x:a'>two</entry>",
    "<geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>1</lat></geoloc>",
    "<big xmlns='urn:x:b'>0123456789012345678901234567890123456789</big>",
];
/// Content filters (`x-roost#filter`) subscriptions may carry: none (empty), some that
/// match some payloads, one that matches none, and one that does not parse (refused).
const FILTERS: &[&str] = &[
    "",
    "exists(lat)",
    "lat = 1",
    "lat != 1 or @a = 'b'",
    "@a = 'b'",
    "lat = ",
];
/// `max_items_per_node` of the policy: small, so trimming happens.
const CAP: u64 = 4;

// ------------------------------------------------------------------------------ ops

/// A partial node configuration, each field an index into a few values.
#[derive(Debug, Clone, Default)]
pub struct Cfg {
    pub access: Option<u8>,
    pub publish_model: Option<u8>,
    pub persist: Option<bool>,
    pub deliver_payloads: Option<bool>,
    pub deliver_notifications: Option<bool>,
    pub max_items: Option<u8>,
    pub notify_retract: Option<bool>,
    pub notify_config: Option<bool>,
    pub notify_delete: Option<bool>,
    pub notify_sub: Option<bool>,
    pub send_last: Option<u8>,
    pub itemreply_publisher: Option<bool>,
    pub max_payload_size: Option<u8>,
}

/// One step of a sequence. `u8` fields index the universe (modulo its size).
#[derive(Debug, Clone)]
pub enum Op {
    /// `node` 3 asks for an instant node, 4 for an empty NodeID.
    Create {
        actor: u8,
        node: u8,
        cfg: Option<Cfg>,
    },
    Configure {
        actor: u8,
        node: u8,
        cfg: Cfg,
    },
    /// `item` 0: no `<item/>` at all; `id` 0: no id; `payload` 0: none.
    Publish {
        actor: u8,
        node: u8,
        item: bool,
        id: u8,
        payload: u8,
        precondition: Option<Cfg>,
    },
    Retract {
        actor: u8,
        node: u8,
        ids: Vec<u8>,
        notify: bool,
    },
    Purge {
        actor: u8,
        node: u8,
    },
    Delete {
        actor: u8,
        node: u8,
        redirect: bool,
    },
    Subscribe {
        actor: u8,
        node: u8,
        jid: u8,
        deliver: Option<bool>,
        expire: Option<u8>,
        /// An index into [`FILTERS`].
        filter: Option<u8>,
    },
    /// `subid` 0: none; 1: a bogus one; n: the n-2th subid of the JID (from observation).
    Unsubscribe {
        actor: u8,
        node: u8,
        jid: u8,
        subid: u8,
    },
    SetOptions {
        actor: u8,
        node: u8,
        jid: u8,
        subid: u8,
        deliver: Option<bool>,
        include_body: Option<bool>,
        /// An index into [`FILTERS`].
        filter: Option<u8>,
    },
    SetAffiliations {
        actor: u8,
        node: u8,
        rows: Vec<(u8, u8)>,
    },
    SetSubscriptions {
        actor: u8,
        node: u8,
        rows: Vec<(u8, u8, u8)>,
    },
    Items {
        actor: u8,
        node: u8,
        max: Option<u8>,
        ids: Vec<u8>,
        subid: u8,
    },
    /// The read-only requests, `which` picking one.
    Read {
        actor: u8,
        node: u8,
        which: u8,
    },
    /// An XEP-0059 page of disco#items on the service (`list` 0), ItemIDs (1) or items (2);
    /// `after`/`before` index ITEM_IDS or, for nodes, NODES (0: absent).
    Page {
        actor: u8,
        node: u8,
        list: u8,
        max: Option<u8>,
        after: Option<u8>,
        before: Option<u8>,
        index: Option<u8>,
    },
    /// The next commit fails.
    FailNext,
    /// Time passes.
    Tick {
        ms: u16,
    },
}

// ------------------------------------------------------------------- generating ops

/// Where the choices come from: proptest's tapes in the test, libFuzzer's bytes
/// (through `arbitrary::Unstructured`) in the fuzz target.
pub trait Source {
    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64;
    /// True when the source has nothing more to give (the fuzz input ran out).
    fn exhausted(&self) -> bool {
        false
    }
}

/// Turns a [`Source`] into ops.
pub struct Gen<'a, S: Source>(pub &'a mut S);

impl<S: Source> Gen<'_, S> {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn u8(&mut self) -> u8 {
        self.below(256) as u8
    }
    fn bool(&mut self) -> bool {
        self.below(2) == 1
    }
    /// `Some` with probability 1/3.
    /// A content filter for a subscription's options: mostly none.
    fn filter(&mut self) -> Option<u8> {
        if self.below(4) == 0 {
            Some(self.u8())
        } else {
            None
        }
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
        if self.below(3) == 0 {
            Some(f(self))
        } else {
            None
        }
    }
    fn small_vec<T>(&mut self, f: impl Fn(&mut Self) -> T) -> Vec<T> {
        let n = self.below(4) as usize;
        (0..n).map(|_| f(self)).collect()
    }

    pub fn cfg(&mut self) -> Cfg {
        Cfg {
            access: self.opt(|r| r.u8()),
            publish_model: self.opt(|r| r.u8()),
            persist: self.opt(|r| r.bool()),
            deliver_payloads: self.opt(|r| r.bool()),
            deliver_notifications: self.opt(|r| r.below(4) != 0),
            max_items: self.opt(|r| r.u8()),
            notify_retract: self.opt(|r| r.bool()),
            notify_config: self.opt(|r| r.bool()),
            notify_delete: self.opt(|r| r.bool()),
            notify_sub: self.opt(|r| r.bool()),
            send_last: self.opt(|r| r.u8()),
            itemreply_publisher: self.opt(|r| r.bool()),
            max_payload_size: self.opt(|r| r.u8()),
        }
    }

    /// A node index: mostly the fixed names, sometimes instant nodes or an empty NodeID.
    fn node(&mut self) -> u8 {
        match self.below(20) {
            0 => 3,
            1 => 4,
            2 => 5,
            _ => self.below(3) as u8,
        }
    }

    pub fn op(&mut self) -> Op {
        let actor = self.u8();
        let node = self.node();
        match self.below(32) {
            0..=2 => Op::Create {
                actor,
                node,
                cfg: self.opt(|r| r.cfg()),
            },
            3..=4 => Op::Configure {
                actor,
                node,
                cfg: self.cfg(),
            },
            5..=11 => Op::Publish {
                actor,
                node,
                item: self.below(8) != 0,
                id: self.u8(),
                payload: if self.below(6) == 0 {
                    0
                } else {
                    1 + self.below(4) as u8
                },
                precondition: if self.below(8) == 0 {
                    Some(self.cfg())
                } else {
                    None
                },
            },
            12..=13 => Op::Retract {
                actor,
                node,
                ids: self.small_vec(|r| r.u8()),
                notify: self.bool(),
            },
            14 => Op::Purge { actor, node },
            15 => Op::Delete {
                actor,
                node,
                redirect: self.bool(),
            },
            16..=19 => Op::Subscribe {
                actor,
                // Mostly one's own JID, sometimes someone else's.
                jid: if self.below(4) == 0 { self.u8() } else { actor },
                node,
                deliver: self.opt(|r| r.below(3) != 0),
                expire: if self.below(10) == 0 {
                    Some(self.u8())
                } else {
                    None
                },
                filter: self.filter(),
            },
            20..=21 => Op::Unsubscribe {
                actor,
                node,
                jid: if self.below(5) == 0 { self.u8() } else { actor },
                subid: self.u8() % 4,
            },
            22..=23 => Op::SetOptions {
                actor,
                node,
                jid: if self.below(5) == 0 { self.u8() } else { actor },
                subid: self.u8() % 4,
                deliver: self.opt(|r| r.bool()),
                include_body: self.opt(|r| r.bool()),
                filter: self.filter(),
            },
            24..=25 => Op::SetAffiliations {
                actor,
                node,
                rows: self.small_vec(|r| (r.u8(), r.u8())),
            },
            26 => Op::SetSubscriptions {
                actor,
                node,
                rows: self.small_vec(|r| (r.u8(), r.u8(), r.u8() % 4)),
            },
            27..=28 => Op::Items {
                actor,
                node,
                max: self.opt(|r| r.u8() % 6),
                ids: if self.bool() {
                    Vec::new()
                } else {
                    self.small_vec(|r| r.u8())
                },
                subid: self.u8() % 4,
            },
            29 if self.bool() => Op::Page {
                actor,
                node,
                list: self.u8(),
                max: self.opt(|r| r.below(4) as u8),
                after: self.opt(|r| r.u8()),
                before: self.opt(|r| r.u8()),
                index: self.opt(|r| r.below(5) as u8),
            },
            29 => Op::Read {
                actor,
                node,
                which: self.u8(),
            },
            30 => Op::FailNext,
            _ => Op::Tick {
                ms: self.below(1 << 16) as u16,
            },
        }
    }

    /// Up to `max_len` ops (fewer when the source runs out).
    pub fn ops(&mut self, max_len: u64) -> Vec<Op> {
        let n = 1 + self.below(max_len);
        let mut ops = Vec::new();
        while (ops.len() as u64) < n && !self.0.exhausted() {
            ops.push(self.op());
        }
        ops
    }
}

// ----------------------------------------------------------------------- mapping

fn jid(i: u8) -> Jid {
    Jid::new(JIDS[i as usize % JIDS.len()]).expect("valid JID")
}

fn cfg_patch(c: &Cfg) -> NodeConfigPatch {
    NodeConfigPatch {
        access_model: c.access.map(|a| match a % 8 {
            0..=3 => AccessModel::Open,
            4..=6 => AccessModel::Whitelist,
            _ => AccessModel::Authorize,
        }),
        publish_model: c
            .publish_model
            .map(|p| PublishModel::ALL[p as usize % PublishModel::ALL.len()]),
        persist_items: c.persist,
        deliver_payloads: c.deliver_payloads,
        deliver_notifications: c.deliver_notifications,
        max_items: c.max_items.map(|m| match m % 8 {
            6 => MaxItems::Max,
            7 => MaxItems::Count(CAP + 1),
            n => MaxItems::Count(u64::from(n)),
        }),
        notify_retract: c.notify_retract,
        notify_config: c.notify_config,
        notify_delete: c.notify_delete,
        notify_sub: c.notify_sub,
        send_last_published_item: c
            .send_last
            .map(|s| SendLastPublished::ALL[s as usize % SendLastPublished::ALL.len()]),
        itemreply: c.itemreply_publisher.map(|p| {
            if p {
                ItemReply::Publisher
            } else {
                ItemReply::Owner
            }
        }),
        max_payload_size: c.max_payload_size.map(|m| match m % 4 {
            0 => 0,
            1 => 40,
            2 => 1 << 30,
            _ => 4096,
        }),
        ..NodeConfigPatch::default()
    }
}

// -------------------------------------------------------------------- observation

/// One node as an admin sees it through requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeObs {
    pub meta: request::NodeMeta,
    pub subs: Vec<Subscription>,
    pub affs: Vec<(BareJid, Affiliation)>,
    pub items: Vec<Item>,
}

/// Everything observable, by NodeID.
pub type Obs = BTreeMap<String, NodeObs>;

fn admin() -> Jid {
    Jid::new(ADMIN).expect("valid JID")
}

/// Observe the whole service through admin requests (reads only).
pub fn observe<S: Store>(svc: &mut Service<S>) -> Obs {
    let admin = admin();
    let names: Vec<String> = svc.node_names().map(str::to_owned).collect();
    let mut out = Obs::new();
    for node in names {
        let mut ask = |req: Request| -> Reply {
            match svc.handle(&admin, req.clone(), 0) {
                Ok(o) => {
                    assert!(o.notifications.is_empty(), "read {req:?} notified");
                    o.reply
                }
                Err(e) => panic!("admin read {req:?} failed: {e:?}"),
            }
        };
        let Reply::Metadata(meta) = ask(Request::NodeMetadata { node: node.clone() }) else {
            panic!("metadata reply");
        };
        let Reply::Subscriptions { subs, .. } =
            ask(Request::GetSubscriptions { node: node.clone() })
        else {
            panic!("subscriptions reply");
        };
        let Reply::Affiliations { affs, .. } = ask(Request::GetAffiliations { node: node.clone() })
        else {
            panic!("affiliations reply");
        };
        let Reply::Items { items, .. } = ask(Request::Items {
            node: node.clone(),
            max_items: None,
            ids: Vec::new(),
            subid: None,
        }) else {
            panic!("items reply");
        };
        out.insert(
            node,
            NodeObs {
                meta,
                subs: subs.into_iter().map(|(_, s)| s).collect(),
                affs: affs.into_iter().map(|(_, j, a)| (j, a)).collect(),
                items,
            },
        );
    }
    out
}

/// A [`Store`] over a borrowed `MemStore`, to reopen a second service over the same data.
struct Borrowed<'a>(&'a mut MemStore);

impl Store for Borrowed<'_> {
    fn load_into(&mut self, l: &mut dyn Loader) -> Result<(), StoreError> {
        self.0.load_into(l)
    }
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        self.0.commit(changes)
    }
    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
        self.0.item(uid, id)
    }
    fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError> {
        self.0.latest_items(uid, max)
    }
    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
        self.0.oldest_items(uid, n)
    }
    fn items_range(&self, uid: u64, range: &ItemRange) -> Result<Vec<Item>, StoreError> {
        self.0.items_range(uid, range)
    }
    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        self.0.count_before(uid, before)
    }
}

// -------------------------------------------------------------------------- harness

/// What the harness remembers of one successful publish.
#[derive(Debug, Clone)]
struct Published {
    id: String,
    payload: String,
    publisher: Jid,
    /// Position among all successful publishes of the run.
    order: u64,
}

fn is_subscribed_deliver(s: &Subscription) -> bool {
    s.state == SubscriptionState::Subscribed && s.options.deliver
}

/// The filter text `FILTERS[i]`.
fn filter_text(i: Option<u8>) -> Option<String> {
    i.map(|i| FILTERS[usize::from(i) % FILTERS.len()].to_owned())
}

/// Whether `s` hears of an item with `payload`: no filter, or a filter that matches it.
fn selects(s: &Subscription, payload: &str) -> bool {
    match s.options.filter.as_deref() {
        Some(f) => roost_nodes::filter::Filter::parse(f).is_ok_and(|f| f.matches_payload(payload)),
        None => true,
    }
}

pub fn policy() -> Policy {
    Policy {
        admins: vec![BareJid::new(ADMIN).expect("valid JID")],
        max_items_per_node: CAP,
        max_payload_size: 64 * 1024,
        default_config: NodeConfig {
            max_items: MaxItems::Count(3),
            ..NodeConfig::default()
        },
        ..Policy::default()
    }
}

struct Harness {
    svc: Service<MemStore>,
    now: Millis,
    /// Node name → instance number (a new one on every successful create).
    generation: BTreeMap<String, u64>,
    next_generation: u64,
    /// (instance, seq) → the publish.
    published: BTreeMap<(u64, u64), Published>,
    publishes: u64,
    /// Items each node should hold, oldest first, as (id, seq).
    shadow_items: BTreeMap<String, Vec<(String, u64)>>,
    /// (instance, seq, recipient) of every live delivery.
    delivered: BTreeSet<(u64, u64, Jid)>,
    /// (recipient, publisher) → order of the last delivered publish.
    last_order: BTreeMap<(Jid, Jid), u64>,
    armed: bool,
    /// The state observed after the last step (nothing changes it until the next one).
    last: Option<Obs>,
}

macro_rules! check {
    ($step:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            panic!("invariant violated at step {}: {}", $step, format!($($arg)+));
        }
    };
}

/// Run one sequence, panicking on the first violated invariant.
pub fn run(ops: &[Op]) {
    let mut h = Harness::new();
    for (step, op) in ops.iter().enumerate() {
        h.step(step, op);
    }
    h.reopen(ops.len());
}

/// Checks the checker: notifications the engine must never send are caught. Returns the
/// forged notifications that were *not* caught (empty when the checker works).
pub fn forged_notifications_missed() -> Vec<String> {
    use std::panic::{catch_unwind, AssertUnwindSafe};
    let mut h = Harness::new();
    // bob/laptop subscribes to alice's n1; alice publishes i1 (delivered to bob).
    let ops = [
        Op::Subscribe {
            actor: 3,
            node: 0,
            jid: 3,
            deliver: None,
            expire: None,
            filter: None,
        },
        Op::Publish {
            actor: 0,
            node: 0,
            item: true,
            id: 1,
            payload: 1,
            precondition: None,
        },
    ];
    for (step, op) in ops.iter().enumerate() {
        h.step(step, op);
    }
    let pre = observe(&mut h.svc);
    let n1 = &pre[NODES[0]];
    let bob_sub = n1.subs[0].clone();
    let item = n1.items[0].clone();
    let notification = |to: Jid, subids: Vec<String>, items: Vec<Item>| Notification {
        to,
        node: NODES[0].to_owned(),
        subids,
        name_subids: false,
        kind: NotificationType::Headline,
        include_body: false,
        collections: Vec::new(),
        event: std::sync::Arc::new(Event::Items {
            items,
            with_payload: true,
            with_publisher: false,
        }),
    };
    let tampered = Item {
        payload: "<evil xmlns='x'/>".to_owned(),
        ..item.clone()
    };
    let unknown = Item {
        seq: item.seq + 7,
        ..item.clone()
    };
    let forged = [
        (
            "(b) to a non-subscriber",
            notification(jid(4), vec![bob_sub.subid.clone()], vec![item.clone()]),
        ),
        (
            "(b) for a foreign subid",
            notification(
                bob_sub.jid.clone(),
                vec!["x".to_owned()],
                vec![item.clone()],
            ),
        ),
        (
            "(c) a tampered payload",
            notification(
                bob_sub.jid.clone(),
                vec![bob_sub.subid.clone()],
                vec![tampered],
            ),
        ),
        (
            "(c) an unpublished item",
            notification(
                bob_sub.jid.clone(),
                vec![bob_sub.subid.clone()],
                vec![unknown],
            ),
        ),
        (
            "(d) a second delivery",
            notification(bob_sub.jid.clone(), vec![bob_sub.subid.clone()], vec![item]),
        ),
    ];
    let req = Request::DiscoNodes;
    let mut missed = Vec::new();
    for (what, n) in forged {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            h.check_notification(0, &req, &jid(0), &pre, &pre, &n, "forged")
        }))
        .is_err();
        if !caught {
            missed.push(what.to_owned());
        }
    }
    missed
}

impl Harness {
    fn new() -> Self {
        let svc = Service::open(MemStore::new(), policy()).expect("open an empty store");
        let mut h = Harness {
            svc,
            now: 1_000_000,
            generation: BTreeMap::new(),
            next_generation: 0,
            published: BTreeMap::new(),
            publishes: 0,
            shadow_items: BTreeMap::new(),
            delivered: BTreeSet::new(),
            last_order: BTreeMap::new(),
            armed: false,
            last: None,
        };
        // Two nodes to start with (alice's n1 and bob's n2), so that few requests miss.
        let setup = [
            Op::Create {
                actor: 0,
                node: 0,
                cfg: None,
            },
            Op::Create {
                actor: 2,
                node: 1,
                cfg: None,
            },
        ];
        for op in &setup {
            h.step(usize::MAX, op);
        }
        h
    }

    fn node_name(&mut self, i: u8) -> Option<String> {
        match i % 8 {
            3 => None,
            4 => Some(String::new()),
            5 | 6 => {
                // An instant node, if any exists.
                let instant: Vec<String> = self
                    .svc
                    .node_names()
                    .filter(|n| !NODES.contains(n))
                    .map(str::to_owned)
                    .collect();
                instant
                    .get(i as usize % instant.len().max(1))
                    .cloned()
                    .or_else(|| Some(NODES[0].to_owned()))
            }
            n => Some(NODES[n as usize % NODES.len()].to_owned()),
        }
    }

    /// A node to act on. The empty NodeID, which names no node when creating, is the
    /// root collection (XEP-0248) everywhere else: this model checks XEP-0060 alone
    /// (`tests/collections.rs` checks collections), so it asks about a node that never
    /// exists instead.
    fn node(&mut self, i: u8) -> String {
        match self.node_name(i) {
            Some(n) if n.is_empty() => "absent".to_owned(),
            Some(n) => n,
            None => NODES[1].to_owned(),
        }
    }

    fn subid(pre: &Obs, node: &str, jid: &Jid, i: u8) -> Option<String> {
        match i {
            0 => None,
            1 => Some("bogus".to_owned()),
            n => {
                let mine: Vec<&Subscription> = pre
                    .get(node)
                    .map(|o| o.subs.iter().filter(|s| &s.jid == jid).collect())
                    .unwrap_or_default();
                mine.get(n as usize - 2)
                    .or(mine.first())
                    .map(|s| s.subid.clone())
            }
        }
    }

    /// Build the request for an op; `None` for ops that are not requests.
    fn request(&mut self, op: &Op, pre: &Obs) -> Option<(Jid, Request)> {
        let req = match op {
            Op::FailNext => {
                self.svc.store_mut().fail_next = Some("injected failure".to_owned());
                self.armed = true;
                return None;
            }
            Op::Tick { ms } => {
                self.now += u64::from(*ms);
                return None;
            }
            Op::Create { actor, node, cfg } => (
                *actor,
                Request::Create {
                    node: self.node_name(*node),
                    config: cfg.as_ref().map(cfg_patch),
                },
            ),
            Op::Configure { actor, node, cfg } => (
                *actor,
                Request::SetConfig {
                    node: self.node(*node),
                    config: cfg_patch(cfg),
                },
            ),
            Op::Publish {
                actor,
                node,
                item,
                id,
                payload,
                precondition,
            } => (
                *actor,
                Request::Publish {
                    node: self.node(*node),
                    item: item.then(|| NewItem {
                        id: match ITEM_IDS[*id as usize % ITEM_IDS.len()] {
                            "" => None,
                            s => Some(s.to_owned()),
                        },
                        payload: match *payload as usize % (PAYLOADS.len() + 1) {
                            0 => None,
                            p => Some(PAYLOADS[p - 1].to_owned()),
                        },
                    }),
                    options: precondition.as_ref().map(cfg_patch),
                },
            ),
            Op::Retract {
                actor,
                node,
                ids,
                notify,
            } => (
                *actor,
                Request::Retract {
                    node: self.node(*node),
                    ids: ids
                        .iter()
                        .map(|i| ITEM_IDS[*i as usize % ITEM_IDS.len()].to_owned())
                        .collect(),
                    notify: *notify,
                },
            ),
            Op::Purge { actor, node } => (
                *actor,
                Request::Purge {
                    node: self.node(*node),
                },
            ),
            Op::Delete {
                actor,
                node,
                redirect,
            } => (
                *actor,
                Request::Delete {
                    node: self.node(*node),
                    redirect: redirect.then(|| "xmpp:pubsub.example.org?;node=n1".to_owned()),
                },
            ),
            Op::Subscribe {
                actor,
                node,
                jid: j,
                deliver,
                expire,
                filter,
            } => (
                *actor,
                Request::Subscribe {
                    node: self.node(*node),
                    jid: jid(*j),
                    options: (deliver.is_some() || expire.is_some() || filter.is_some()).then(
                        || SubOptionsPatch {
                            deliver: *deliver,
                            filter: filter_text(*filter),
                            // Half of them in the past (refused), half in the future.
                            expire: expire.map(|e| {
                                Some((self.now + u64::from(e) * 1000).saturating_sub(128_000))
                            }),
                            ..SubOptionsPatch::default()
                        },
                    ),
                },
            ),
            Op::Unsubscribe {
                actor,
                node,
                jid: j,
                subid,
            } => {
                let node = self.node(*node);
                let jid = jid(*j);
                let subid = Self::subid(pre, &node, &jid, *subid);
                (*actor, Request::Unsubscribe { node, jid, subid })
            }
            Op::SetOptions {
                actor,
                node,
                jid: j,
                subid,
                deliver,
                include_body,
                filter,
            } => {
                let node = self.node(*node);
                let jid = jid(*j);
                let subid = Self::subid(pre, &node, &jid, *subid);
                let options = SubOptionsPatch {
                    deliver: *deliver,
                    include_body: *include_body,
                    filter: filter_text(*filter),
                    ..SubOptionsPatch::default()
                };
                (
                    *actor,
                    Request::SetOptions {
                        node,
                        jid,
                        subid,
                        options,
                    },
                )
            }
            Op::SetAffiliations { actor, node, rows } => (
                *actor,
                Request::SetAffiliations {
                    node: self.node(*node),
                    changes: rows
                        .iter()
                        .map(|(j, a)| {
                            (
                                jid(*j).to_bare(),
                                Affiliation::ALL[*a as usize % Affiliation::ALL.len()],
                            )
                        })
                        .collect(),
                },
            ),
            Op::SetSubscriptions { actor, node, rows } => {
                let node = self.node(*node);
                let changes = rows
                    .iter()
                    .map(|(j, st, subid)| {
                        let jid = jid(*j);
                        SubscriptionChange {
                            subid: Self::subid(pre, &node, &jid, *subid),
                            jid,
                            state: SubscriptionState::ALL
                                [*st as usize % SubscriptionState::ALL.len()],
                        }
                    })
                    .collect();
                (*actor, Request::SetSubscriptions { node, changes })
            }
            Op::Items {
                actor,
                node,
                max,
                ids,
                subid,
            } => {
                let node = self.node(*node);
                let me = jid(*actor);
                let subid = Self::subid(pre, &node, &me, *subid);
                (
                    *actor,
                    Request::Items {
                        node,
                        max_items: max.map(u64::from),
                        ids: ids
                            .iter()
                            .map(|i| ITEM_IDS[*i as usize % ITEM_IDS.len()].to_owned())
                            .collect(),
                        subid,
                    },
                )
            }
            Op::Page {
                actor,
                node,
                list,
                max,
                after,
                before,
                index,
            } => {
                let node = self.node(*node);
                // NodeIDs for the node list, ItemIDs otherwise; "" is "absent".
                let uid = |i: &u8, list: u8| -> String {
                    match list % 3 {
                        0 => ["", NODES[0], NODES[1], NODES[2]][*i as usize % 4].to_owned(),
                        _ => ITEM_IDS[*i as usize % ITEM_IDS.len()].to_owned(),
                    }
                };
                let rsm = RsmQuery {
                    max: max.map(u64::from),
                    after: after
                        .as_ref()
                        .map(|a| uid(a, *list))
                        .filter(|a| !a.is_empty()),
                    before: before.as_ref().map(|b| uid(b, *list)),
                    index: index.map(u64::from),
                };
                let list = match list % 3 {
                    0 => PagedList::Nodes,
                    1 => PagedList::ItemIds { node },
                    _ => PagedList::Items { node, subid: None },
                };
                (*actor, Request::Page { list, rsm })
            }
            Op::Read { actor, node, which } => {
                let node = self.node(*node);
                let me = jid(*actor);
                let req = match which % 11 {
                    0 => Request::DiscoNodes,
                    1 => Request::NodeMetadata { node },
                    2 => Request::DiscoItems { node },
                    3 => Request::Subscriptions { node: Some(node) },
                    4 => Request::Subscriptions { node: None },
                    5 => Request::Affiliations { node: None },
                    6 => Request::GetSubscriptions { node },
                    7 => Request::GetAffiliations { node },
                    8 => Request::GetConfig { node },
                    9 => Request::GetOptions {
                        node,
                        jid: me,
                        subid: None,
                    },
                    _ => Request::DefaultOptions { node: Some(node) },
                };
                (*actor, req)
            }
        };
        Some((jid(req.0), req.1))
    }

    fn reopen(&mut self, step: usize) {
        let before = observe(&mut self.svc);
        let armed = self.svc.store_mut().fail_next.take();
        let after = {
            let mut again = Service::open(Borrowed(self.svc.store_mut()), policy())
                .expect("reopen the same store");
            observe(&mut again)
        };
        self.svc.store_mut().fail_next = armed;
        check!(
            step,
            before == after,
            "(g) a reopened service sees another state:\nlive {before:#?}\nreopened {after:#?}"
        );
    }

    fn step(&mut self, step: usize, op: &Op) {
        let pre = match self.last.take() {
            Some(obs) => obs,
            None => observe(&mut self.svc),
        };
        let Some((actor, req)) = self.request(op, &pre) else {
            self.last = Some(pre);
            return;
        };
        let armed = self.armed;
        let result = self.svc.handle(&actor, req.clone(), self.now);
        let consumed = armed && self.svc.store().fail_next.is_none();
        if consumed {
            self.armed = false;
        }
        let post = observe(&mut self.svc);
        self.last = Some(post.clone());
        let is_admin = actor.to_bare().as_str() == ADMIN;
        let ctx = format!("{actor} {req:?} -> {result:?}");
        static STATS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if *STATS.get_or_init(|| std::env::var_os("ROOST_INVARIANT_STATS").is_some()) {
            let kind = format!("{req:?}");
            let kind = kind.split([' ', '{']).next().unwrap_or("").to_owned();
            let res = match &result {
                Ok(o) => format!("Ok({} notifications)", o.notifications.len().min(3)),
                Err(e) => format!("{e:?}").chars().take(20).collect(),
            };
            eprintln!("STAT {kind} {res}");
        }

        // (f) storage failures: exactly when an armed failure is consumed.
        let storage = matches!(result, Err(Error::Storage(_)));
        check!(
            step,
            storage == consumed,
            "(f) storage error iff failed commit: {ctx}"
        );

        // Someone else's JID: refused for non-admins.
        if !is_admin {
            let other = match &req {
                Request::Subscribe { jid, .. }
                | Request::Unsubscribe { jid, .. }
                | Request::SetOptions { jid, .. }
                | Request::GetOptions { jid, .. } => jid.to_bare() != actor.to_bare(),
                _ => false,
            };
            check!(
                step,
                !(other && result.is_ok()),
                "acting for another JID accepted: {ctx}"
            );
        }

        let outcome = match result {
            Err(_) => {
                // (f) a refusal changes nothing.
                check!(
                    step,
                    pre == post,
                    "(f) refused request changed state: {ctx}"
                );
                if storage {
                    self.reopen(step);
                }
                self.structural(step, &post, &ctx);
                return;
            }
            Ok(o) => o,
        };

        let read_only = matches!(
            req,
            Request::DiscoNodes
                | Request::NodeMetadata { .. }
                | Request::DiscoItems { .. }
                | Request::Subscriptions { .. }
                | Request::Affiliations { .. }
                | Request::GetOptions { .. }
                | Request::DefaultOptions { .. }
                | Request::Items { .. }
                | Request::GetConfig { .. }
                | Request::DefaultConfig { .. }
                | Request::GetSubscriptions { .. }
                | Request::GetAffiliations { .. }
                | Request::Page { .. }
        );
        if let Request::Page { list, rsm } = &req {
            self.check_page(step, &actor, list, rsm, &outcome.reply, &ctx);
        }
        if read_only {
            check!(step, pre == post, "(f) read changed state: {ctx}");
            check!(
                step,
                outcome.notifications.is_empty(),
                "read notified: {ctx}"
            );
        }

        // Shadow bookkeeping of the effect, before checking notifications against it.
        match (&req, &outcome.reply) {
            (Request::Create { .. }, Reply::Created { node }) => {
                self.generation.insert(node.clone(), self.next_generation);
                self.next_generation += 1;
                self.shadow_items.insert(node.clone(), Vec::new());
            }
            (Request::Delete { node, .. }, _) => {
                self.shadow_items.remove(node);
            }
            (Request::Purge { node }, _) => {
                self.shadow_items.insert(node.clone(), Vec::new());
            }
            (Request::Retract { node, ids, .. }, _) => {
                let list = self.shadow_items.entry(node.clone()).or_default();
                list.retain(|(id, _)| !ids.contains(id));
            }
            (Request::Subscribe { node, jid, .. }, Reply::Subscription { node: n2, sub, .. }) => {
                check!(
                    step,
                    node == n2 && &sub.jid == jid,
                    "subscribe reply for another subscription: {ctx}"
                );
                let held = post.get(node).is_some_and(|o| o.subs.contains(sub));
                check!(step, held, "subscribe reply not what is stored: {ctx}");
            }
            (Request::Publish { node, item, .. }, Reply::Published { node: n2, id }) => {
                check!(step, node == n2, "published elsewhere: {ctx}");
                self.publishes += 1;
                let gen = self.generation[node];
                let pre_cfg = &pre[node].meta.config;
                let payload = item
                    .as_ref()
                    .and_then(|i| i.payload.clone())
                    .unwrap_or_default();
                // The seq: from the stored item, else from a notification.
                // (A transient publish stores nothing: an item stored under the same id
                // is an older one.)
                let seq = post[node]
                    .items
                    .iter()
                    .find(|i| &i.id == id && pre_cfg.persist_items)
                    .map(|i| i.seq)
                    .or_else(|| {
                        outcome.notifications.iter().find_map(|n| match &*n.event {
                            Event::Items { items, .. } => items.first().map(|i| i.seq),
                            _ => None,
                        })
                    });
                if let Some(seq) = seq {
                    let prev = self.published.insert(
                        (gen, seq),
                        Published {
                            id: id.clone(),
                            payload,
                            publisher: actor.clone(),
                            order: self.publishes,
                        },
                    );
                    check!(
                        step,
                        prev.is_none(),
                        "seq {seq} given twice on {node}: {ctx}"
                    );
                }
                if pre_cfg.persist_items {
                    let keep = pre_cfg.max_items.limit(CAP) as usize;
                    let list = self.shadow_items.entry(node.clone()).or_default();
                    list.retain(|(i, _)| i != id);
                    if keep > 0 {
                        let seq = seq.expect("a persisted item has a seq");
                        list.push((id.clone(), seq));
                    }
                    let excess = list.len().saturating_sub(keep);
                    list.drain(..excess);
                }
                // (b) completeness: every subscription in state subscribed with delivery
                // on, and a filter that matches the item if it has one, gets it, named by
                // its subid; nothing else does.
                if pre_cfg.deliver_notifications {
                    let payload = match &req {
                        Request::Publish {
                            item:
                                Some(NewItem {
                                    payload: Some(p), ..
                                }),
                            ..
                        } => p.as_str(),
                        _ => "",
                    };
                    let want: BTreeSet<(&Jid, &str)> = pre[node]
                        .subs
                        .iter()
                        .filter(|s| is_subscribed_deliver(s) && selects(s, payload))
                        .map(|s| (&s.jid, s.subid.as_str()))
                        .collect();
                    let got: BTreeSet<(&Jid, &str)> = outcome
                        .notifications
                        .iter()
                        .flat_map(|n| n.subids.iter().map(move |s| (&n.to, s.as_str())))
                        .collect();
                    check!(
                        step,
                        want == got,
                        "(b) publish reached {got:?}, subscriptions {want:?}: {ctx}"
                    );
                } else {
                    check!(
                        step,
                        outcome.notifications.is_empty(),
                        "notified with deliver_notifications off: {ctx}"
                    );
                }
            }
            _ => {}
        }

        for n in &outcome.notifications {
            self.check_notification(step, &req, &actor, &pre, &post, n, &ctx);
        }
        // An existing subscription re-subscribed: a read.
        self.structural(step, &post, &ctx);
    }

    #[allow(clippy::too_many_arguments)]
    fn check_notification(
        &mut self,
        step: usize,
        req: &Request,
        actor: &Jid,
        pre: &Obs,
        post: &Obs,
        n: &Notification,
        ctx: &str,
    ) {
        let Some(before) = pre.get(&n.node) else {
            panic!("invariant violated at step {step}: notification for a node that did not exist: {n:?} {ctx}");
        };
        match &*n.event {
            Event::Items {
                items,
                with_payload,
                with_publisher,
            } => {
                let replay = matches!(req, Request::Subscribe { .. });
                // (b) the recipient held, at that moment, a delivering subscription; for
                // the last-published item sent on subscribe, the new one.
                let state = if replay {
                    post.get(&n.node).unwrap_or(before)
                } else {
                    before
                };
                let subs: BTreeSet<&str> = state
                    .subs
                    .iter()
                    .filter(|s| s.jid == n.to && is_subscribed_deliver(s))
                    .map(|s| s.subid.as_str())
                    .collect();
                check!(
                    step,
                    !subs.is_empty(),
                    "(b) items to {} who holds no delivering subscription to {}: {ctx}",
                    n.to,
                    n.node
                );
                check!(
                    step,
                    !n.subids.is_empty() && n.subids.iter().all(|s| subs.contains(s.as_str())),
                    "(b) items for subids {:?}, delivering ones {subs:?}: {ctx}",
                    n.subids
                );
                // Content filters: every subscription named selects every item, and the
                // subids are named in headers exactly when a filter took part.
                let named: Vec<&Subscription> = state
                    .subs
                    .iter()
                    .filter(|s| s.jid == n.to && n.subids.contains(&s.subid))
                    .collect();
                let gen = self.generation[&n.node];
                for item in items {
                    let payload = self
                        .published
                        .get(&(gen, item.seq))
                        .map_or("", |p| p.payload.as_str());
                    check!(
                        step,
                        named.iter().all(|s| selects(s, payload)),
                        "(b) item {} to a subscription whose filter it does not match: {ctx}",
                        item.id
                    );
                }
                let filtered = named.iter().any(|s| s.options.filter.is_some());
                check!(
                    step,
                    n.name_subids == filtered,
                    "name_subids {} for subscriptions {named:?}: {ctx}",
                    n.name_subids
                );
                check!(
                    step,
                    *with_payload == before.meta.config.deliver_payloads,
                    "with_payload differs from deliver_payloads: {ctx}"
                );
                if replay {
                    check!(
                        step,
                        &n.to
                            == match req {
                                Request::Subscribe { jid, .. } => jid,
                                _ => unreachable!(),
                            },
                        "replay to someone else: {ctx}"
                    );
                }
                let gen = self.generation[&n.node];
                for item in items {
                    // (c) published in this run, to this node instance, as delivered.
                    let Some(p) = self.published.get(&(gen, item.seq)) else {
                        panic!("invariant violated at step {step}: (c) item {item:?} never published to {}: {ctx}", n.node);
                    };
                    check!(
                        step,
                        p.id == item.id && p.publisher == item.publisher,
                        "(c) item {item:?} differs from its publish {p:?}: {ctx}"
                    );
                    let want = if *with_payload {
                        p.payload.as_str()
                    } else {
                        ""
                    };
                    check!(
                        step,
                        item.payload == want,
                        "(c) payload {:?}, published {:?}: {ctx}",
                        item.payload,
                        p.payload
                    );
                    check!(
                        step,
                        *with_publisher == before.meta.config.shows_publisher(),
                        "the publisher shown or not against pubsub#itemreply: {ctx}"
                    );
                    if let Request::Publish { .. } = req {
                        check!(
                            step,
                            &p.publisher == actor && p.order == self.publishes,
                            "publish notified another item: {ctx}"
                        );
                    }
                    if !replay {
                        // (d) at most once per recipient.
                        let fresh = self.delivered.insert((gen, item.seq, n.to.clone()));
                        check!(
                            step,
                            fresh,
                            "(d) item {} (seq {}) delivered twice to {}: {ctx}",
                            item.id,
                            item.seq,
                            n.to
                        );
                        // (e) publish order per publisher.
                        let key = (n.to.clone(), p.publisher.clone());
                        let last = self.last_order.insert(key, p.order);
                        check!(
                            step,
                            !matches!(last, Some(l) if l >= p.order),
                            "(e) out of order for {} from {}: {ctx}",
                            n.to,
                            p.publisher
                        );
                    }
                }
                check!(step, !items.is_empty(), "empty items event: {ctx}");
            }
            Event::Retract { ids } => {
                self.check_broadcast(step, before, n, ctx);
                for id in ids {
                    let item = before.items.iter().find(|i| &i.id == id);
                    check!(
                        step,
                        item.is_some(),
                        "retraction of {id} which was not stored: {ctx}"
                    );
                    // A filtered subscription hears of retractions of items it matched.
                    let payload = item.map_or("", |i| i.payload.as_str());
                    let ok = before
                        .subs
                        .iter()
                        .filter(|s| s.jid == n.to && n.subids.contains(&s.subid))
                        .all(|s| selects(s, payload));
                    check!(
                        step,
                        ok,
                        "retraction of {id} to a subscription it did not match: {ctx}"
                    );
                }
            }
            Event::Purge | Event::Delete { .. } | Event::Configuration { .. } => {
                self.check_broadcast(step, before, n, ctx);
            }
            Event::Subscription { jid, .. } => {
                let owner = |o: &NodeObs| {
                    o.affs
                        .iter()
                        .any(|(j, a)| *a == Affiliation::Owner && n.to == *j)
                };
                let ok = *jid == n.to || owner(before) || post.get(&n.node).is_some_and(owner);
                check!(step, ok, "subscription event to a stranger: {n:?} {ctx}");
            }
            // Events this checker does not know yet (the engine grows): at least they go
            // to an owner, a subscriber (in any state) or the requester.
            #[allow(unreachable_patterns)]
            _ => {
                let known = |o: &NodeObs| {
                    o.affs
                        .iter()
                        .any(|(j, a)| *a == Affiliation::Owner && n.to == *j)
                        || o.subs.iter().any(|s| s.jid == n.to)
                };
                let ok = n.to == *actor || known(before) || post.get(&n.node).is_some_and(known);
                check!(step, ok, "{:?} to a stranger {}: {ctx}", n.event, n.to);
            }
        }
    }

    /// Node-wide events go to delivering subscribers only.
    fn check_broadcast(&self, step: usize, before: &NodeObs, n: &Notification, ctx: &str) {
        let ok = before
            .subs
            .iter()
            .any(|s| s.jid == n.to && is_subscribed_deliver(s));
        check!(
            step,
            ok,
            "(b) {:?} to {} who holds no delivering subscription: {ctx}",
            n.event,
            n.to
        );
    }

    /// A page is a contiguous slice of the unpaged list the same actor gets, `count` is
    /// that list's length, `first` names the slice's first entry and its position, and
    /// the page honours `max` and `after`.
    fn check_page(
        &mut self,
        step: usize,
        actor: &Jid,
        list: &PagedList,
        rsm: &RsmQuery,
        reply: &Reply,
        ctx: &str,
    ) {
        let unpaged = match list {
            PagedList::Nodes => Request::DiscoNodes,
            PagedList::ItemIds { node } => Request::DiscoItems { node: node.clone() },
            PagedList::Items { node, subid } => Request::Items {
                node: node.clone(),
                max_items: None,
                ids: Vec::new(),
                subid: subid.clone(),
            },
        };
        let whole = self.svc.handle(actor, unpaged, self.now);
        let ids = |r: &Reply| -> Option<(Vec<String>, Option<RsmPage>)> {
            match r {
                Reply::Nodes { nodes, page } => {
                    Some((nodes.iter().map(|n| n.node.clone()).collect(), page.clone()))
                }
                Reply::ItemIds { ids, page, .. } => Some((ids.clone(), page.clone())),
                Reply::Items { items, page, .. } => {
                    Some((items.iter().map(|i| i.id.clone()).collect(), page.clone()))
                }
                _ => None,
            }
        };
        let Ok(whole) = whole else {
            panic!("invariant violated at step {step}: page served, whole list refused: {whole:?} {ctx}");
        };
        let (all, _) = ids(&whole.reply).expect("a list reply");
        let Some((got, Some(page))) = ids(reply) else {
            panic!("invariant violated at step {step}: a page without RSM set: {ctx}");
        };
        check!(
            step,
            page.count == all.len() as u64,
            "page count {} but the list has {}: {ctx}",
            page.count,
            all.len()
        );
        if let Some(m) = rsm.max {
            check!(step, got.len() as u64 <= m, "page longer than max: {ctx}");
        }
        match got.first() {
            None => check!(
                step,
                page.first.is_none() && page.last.is_none(),
                "empty page with first/last: {ctx}"
            ),
            Some(first) => {
                let pos = all.iter().position(|i| i == first);
                let contiguous = pos.is_some_and(|p| all.get(p..p + got.len()) == Some(&got[..]));
                check!(
                    step,
                    contiguous,
                    "page {got:?} is not a slice of {all:?}: {ctx}"
                );
                check!(
                    step,
                    page.first == Some((first.clone(), pos.unwrap_or(0) as u64)),
                    "page first {:?}, expected ({first}, {pos:?}): {ctx}",
                    page.first
                );
                check!(
                    step,
                    page.last.as_ref() == got.last(),
                    "page last {:?}: {ctx}",
                    page.last
                );
                if let (Some(a), None) = (&rsm.after, &rsm.before) {
                    let after = all.iter().position(|i| i == a);
                    check!(
                        step,
                        after.map(|a| a + 1) == pos,
                        "page after {a} starts at {pos:?}: {ctx}"
                    );
                }
            }
        }
    }

    fn structural(&self, step: usize, post: &Obs, ctx: &str) {
        let admin = BareJid::new(ADMIN).expect("valid JID");
        for (name, o) in post {
            let subscribed = o
                .subs
                .iter()
                .filter(|s| s.state == SubscriptionState::Subscribed)
                .count() as u64;
            check!(
                step,
                o.meta.num_subscribers == subscribed,
                "num_subscribers {} but {subscribed} subscribed on {name}: {ctx}",
                o.meta.num_subscribers
            );
            check!(
                step,
                o.affs.iter().any(|(_, a)| *a == Affiliation::Owner),
                "{name} has no owner: {ctx}"
            );
            for (j, a) in &o.affs {
                if *a == Affiliation::Outcast && *j != admin {
                    let held = o.subs.iter().any(|s| s.jid.to_bare() == *j);
                    check!(step, !held, "outcast {j} still subscribed to {name}: {ctx}");
                }
            }
            let stored: Vec<(String, u64)> =
                o.items.iter().map(|i| (i.id.clone(), i.seq)).collect();
            let shadow = self.shadow_items.get(name).cloned().unwrap_or_default();
            check!(
                step,
                stored == shadow,
                "items of {name} are {stored:?}, expected {shadow:?}: {ctx}"
            );
            let gen = self.generation.get(name).copied();
            for i in &o.items {
                let p = gen.and_then(|g| self.published.get(&(g, i.seq)));
                let ok = p.is_some_and(|p| {
                    p.id == i.id && p.payload == i.payload && p.publisher == i.publisher
                });
                check!(
                    step,
                    ok,
                    "(c) stored item {i:?} of {name} is not what was published ({p:?}): {ctx}"
                );
            }
        }
        for name in self.shadow_items.keys() {
            check!(step, post.contains_key(name), "node {name} vanished: {ctx}");
        }
    }
}
