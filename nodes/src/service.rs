//! The engine: one `Service` per pubsub service, driven by one task.
//!
//! Every request goes through the same three steps:
//! 1. `plan` reads the in-memory state (and items from the store) and computes the reply,
//!    the [`ChangeSet`] and the notifications, changing nothing;
//! 2. the change set is committed to the store;
//! 3. only if the commit succeeded, the same change set is applied to memory by `apply`,
//!    which is also how the snapshot is loaded in [`Service::open`].
//!
//! So a failed commit leaves memory as it was and notifies no one, and memory cannot
//! drift from what the store holds.
//!
//! Choices where XEP-0060 leaves room (documented once, here):
//! - `pubsub#deliver=false` on a subscription pauses every broadcast to it (items,
//!   retractions, purge, configuration, delete); only notifications about the
//!   subscription itself (§8.8.4) still reach it.
//! - `pubsub#deliver_notifications=false` silences item and retraction events; purge,
//!   configuration and delete events have their own `notify_*` switches.
//! - Removing the last owner of a node (§8.9.2.4) is refused with
//!   [`Error::InvalidConfig`], which maps to `not-acceptable` as the XEP asks.
//! - Giving the same entity twice in one affiliations request is [`Error::BadRequest`].
//! - Multiple subscriptions per JID (§6.1.6): a plain subscribe (no options) by a JID that
//!   already holds a subscription returns one of them (the lowest subid) unchanged, so a
//!   repeated subscribe is idempotent; a subscribe that carries options (subscribe-and-configure,
//!   §6.3.7) always creates a new subscription with its own subid. Requests about one
//!   subscription then need the subid when the JID holds several (§6.2.3, §6.3.4).
//! - When a node becomes whitelist, or an affiliation change leaves an entity unable to
//!   subscribe, its subscriptions are removed and it is told so (state `none`).
//! - With `pubsub#itemreply=publisher`, items name their publisher by its bare JID, in
//!   notifications and every retrieval alike ([`Item::shown_publisher`] says why).

use crate::access::{self, Action};
use crate::model::*;
use crate::policy::Policy;
use crate::presence::PresenceTable;
use crate::request::{
    Event, NodeMeta, NodeSummary, Notification, Outcome, PagedList, Reply, Request, RsmPage,
    RsmQuery, SubscriptionChange,
};
use crate::roster::RosterTable;
use crate::store::{Change, ChangeSet, ItemRange, Store};
use crate::{BareJid, Error, FullJid, Jid, Millis};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod history;
mod subs;
pub use history::MAX_HISTORY_PAGE;
use subs::SubMap;

/// One node as the engine keeps it in memory (its items stay in the store).
#[derive(Debug, Clone)]
struct NodeState {
    rec: NodeRecord,
    counters: ItemCounters,
    affs: BTreeMap<BareJid, Affiliation>,
    /// By subid.
    subs: SubMap,
    /// How many of `subs` are in state subscribed, kept so metadata needs no scan.
    subscribed: u64,
}

/// What `plan` computed for one request; nothing of it has happened yet.
struct Plan {
    reply: Reply,
    changes: ChangeSet,
    notifications: Vec<Notification>,
}

impl Plan {
    fn read(reply: Reply) -> Self {
        Plan {
            reply,
            changes: ChangeSet::default(),
            notifications: Vec::new(),
        }
    }
}

/// The pubsub service: in-memory state over a [`Store`].
pub struct Service<S: Store> {
    store: S,
    policy: Policy,
    /// Available resources, as the component learns them.
    pub presence: PresenceTable,
    /// Node owners' rosters, as the component learns them (XEP-0356): the presence and
    /// roster access models decide on them.
    pub rosters: RosterTable,
    /// Bare JIDs whose presence became needed by an applied change (a subscription to a
    /// node that delivers by presence, or such a configuration): the component asks them
    /// for a presence subscription. Not durable: [`Service::presence_wanted`] recomputes
    /// the whole set from the subscriptions.
    presence_requests: BTreeSet<BareJid>,
    nodes: BTreeMap<String, NodeState>,
    /// Node uid → NodeID, for changes keyed by uid.
    uids: HashMap<u64, String>,
    /// Every subscription of a bare JID (of it or any of its full JIDs), as (node uid,
    /// subid): a JID's subscriptions are found without scanning nodes, and a node's
    /// subscriptions of one JID with a range query. By uid rather than NodeID so that a
    /// million entries do not hold a million copies of node names ([`Service::uids`] maps
    /// back).
    subs_by_jid: HashMap<BareJid, BTreeSet<(u64, String)>>,
    /// Every affiliation of a bare JID, by node.
    affs_by_jid: HashMap<BareJid, BTreeMap<String, Affiliation>>,
    last_uid: u64,
    /// Feeds generated names and ids. Not durable: uniqueness is checked on use.
    counter: Cell<u64>,
    /// Subscription leases (`pubsub#expire`) by end time, as (end, node, subid): [`tick`]
    /// reads only the ended ones. Rebuilt from the subscriptions on load.
    ///
    /// [`tick`]: Service::tick
    leases: BTreeSet<(Millis, String, String)>,
    /// Digest subscriptions (`pubsub#digest`), by (node, subid). Not durable: after a
    /// restart a digest period starts afresh with the items published from then on.
    digests: BTreeMap<(String, String), Digest>,
    /// Set by the first [`Service::tick`]. Until something runs the clock no digest can go
    /// out, so digest subscribers get items one by one rather than never.
    clock_running: bool,
}

/// Where a digest subscription stands.
#[derive(Debug, Clone, Copy)]
struct Digest {
    /// Items with a higher seq go into the next digest. Set when the subscription is
    /// applied, and by the first tick (items before it went out one by one).
    after_seq: u64,
    /// When the next digest is due; `None` until the first tick schedules it.
    due: Option<Millis>,
}

/// How many expired items one [`Service::tick`] removes at most; the rest wait for the
/// next tick, so a burst of expiries cannot stall the service.
const EXPIRE_BATCH: usize = 512;

impl<S: Store> Service<S> {
    /// Load the service's state from `store`.
    pub fn open(mut store: S, policy: Policy) -> Result<Self, Error> {
        let snapshot = store.load()?;
        let mut svc = Service {
            store,
            policy,
            presence: PresenceTable::new(),
            rosters: RosterTable::new(),
            presence_requests: BTreeSet::new(),
            nodes: BTreeMap::new(),
            uids: HashMap::new(),
            subs_by_jid: HashMap::new(),
            affs_by_jid: HashMap::new(),
            last_uid: snapshot.last_uid,
            counter: Cell::new(0),
            leases: BTreeSet::new(),
            digests: BTreeMap::new(),
            clock_running: false,
        };
        // Loading is applying the snapshot as if it were one big change set, so there is
        // a single code path that builds the in-memory maps and indexes. The snapshot is
        // consumed as it goes (nothing is copied), so that at a million subscriptions the
        // memory freed by the snapshot is reused by the maps built from it.
        for (_, (rec, counters)) in snapshot.nodes {
            let uid = rec.uid;
            svc.apply_one(&Change::PutNode(rec));
            svc.apply_one(&Change::PutCounters { uid, counters });
        }
        for (node, affs) in snapshot.affiliations {
            for (jid, affiliation) in affs {
                svc.apply_one(&Change::PutAffiliation {
                    node: node.clone(),
                    jid,
                    affiliation,
                });
            }
        }
        for (node, subs) in snapshot.subscriptions {
            for (_, sub) in subs {
                svc.put_subscription(&node, sub);
            }
        }
        // Loading asks nobody: the component probes all of `presence_wanted` on connect.
        svc.presence_requests.clear();
        Ok(svc)
    }

    /// Handle one request from `actor` at time `now`.
    ///
    /// On `Ok`, every change is durable and the notifications are ready to send. On
    /// `Err`, nothing changed.
    ///
    /// `now` is when the request arrived (also when it is decided again after waiting for
    /// rosters): the presence and roster access models refuse it only on rosters fetched
    /// since ([`RosterTable::deciding_at`]).
    pub fn handle(&mut self, actor: &Jid, req: Request, now: Millis) -> Result<Outcome, Error> {
        self.rosters.deciding_at(now);
        let plan = self.plan(actor, req, now)?;
        if !plan.changes.is_empty() {
            self.store.commit(&plan.changes)?;
            self.apply(&plan.changes);
        }
        Ok(Outcome {
            reply: plan.reply,
            notifications: plan.notifications,
        })
    }

    /// Everything that happens because time passed, as of `now`: items past
    /// `pubsub#item_expire` are removed (subscribers get a retraction when the node has
    /// `notify_retract`), subscription leases (`pubsub#expire`) that ended are removed
    /// (the subscriber is told: state `none`), and due digests (`pubsub#digest`) go out,
    /// one message per subscription with every item published in the period.
    ///
    /// Meant to be called about once a second; until it is first called, digest
    /// subscriptions receive items one by one. Like [`Service::handle`], it commits its
    /// changes before returning; the caller syncs the store before sending. On `Err`,
    /// nothing changed (the same work is found again on the next tick).
    pub fn tick(&mut self, now: Millis) -> Result<Vec<Notification>, Error> {
        if !self.clock_running {
            self.clock_running = true;
            // Until now digest subscribers got items one by one: start their digests here.
            for ((node, _), d) in self.digests.iter_mut() {
                if let Some(n) = self.nodes.get(node) {
                    d.after_seq = n.counters.last_seq;
                }
            }
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();

        // Expired items, grouped by node so that each node's counters and retraction
        // notification are computed once.
        let mut expired: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
        for (at, uid, seq) in self.store.due_expiries(now, EXPIRE_BATCH)? {
            changes.push(Change::UnscheduleExpiry { at, uid, seq });
            if !self.uids.contains_key(&uid) {
                continue; // the node is gone: a stale entry
            }
            let range = ItemRange {
                after: seq.checked_sub(1),
                before: seq.checked_add(1),
                skip: 0,
                limit: 1,
                from_end: false,
            };
            // A stale entry when the item was retracted or replaced meanwhile.
            if let Some(item) = self.store.items_range(uid, &range)?.pop() {
                expired.entry(uid).or_default().push(item);
            }
        }
        for (uid, items) in expired {
            let Some(n) = self.uids.get(&uid).and_then(|name| self.nodes.get(name)) else {
                continue;
            };
            for i in &items {
                changes.push(Change::DeleteItem {
                    uid,
                    id: i.id.clone(),
                    seq: i.seq,
                });
            }
            changes.push(Change::PutCounters {
                uid,
                counters: ItemCounters {
                    count: n.counters.count.saturating_sub(items.len() as u64),
                    last_seq: n.counters.last_seq,
                },
            });
            if n.rec.config.notify_retract && n.rec.config.deliver_notifications {
                let ids = items.into_iter().map(|i| i.id).collect();
                notifications.extend(self.broadcast(n, Event::Retract { ids }));
            }
        }

        // Ended leases: the index is ordered by end time, so only those are read.
        let ended: Vec<(String, String)> = self
            .leases
            .iter()
            .take_while(|(end, _, _)| *end <= now)
            .map(|(_, node, subid)| (node.clone(), subid.clone()))
            .collect();
        for (node, subid) in ended {
            let Some(n) = self.nodes.get(&node) else {
                continue;
            };
            let Some(sub) = n.subs.get(&subid) else {
                continue;
            };
            changes.push(Change::DeleteSubscription {
                node: node.clone(),
                jid: sub.jid.clone(),
                subid: subid.clone(),
            });
            notifications.push(self.to_subscriber(n, sub, SubscriptionState::None));
        }

        if !changes.is_empty() {
            self.store.commit(&changes)?;
            self.apply(&changes);
        }

        notifications.extend(self.release_digests(now)?);
        Ok(notifications)
    }

    /// Sends the digests that are due and schedules the next ones. Only memory changes.
    fn release_digests(&mut self, now: Millis) -> Result<Vec<Notification>, Error> {
        let mut out = Vec::new();
        let keys: Vec<(String, String)> = self.digests.keys().cloned().collect();
        for key in keys {
            let (Some(n), Some(d)) = (self.nodes.get(&key.0), self.digests.get(&key).copied())
            else {
                continue;
            };
            let Some(sub) = n.subs.get(&key.1) else {
                continue;
            };
            let period = sub.options.digest_frequency.max(1);
            let Some(due) = d.due else {
                if let Some(d) = self.digests.get_mut(&key) {
                    d.due = Some(now.saturating_add(period));
                }
                continue;
            };
            if due > now {
                continue;
            }
            let range = ItemRange {
                after: Some(d.after_seq),
                before: None,
                skip: 0,
                limit: u64::MAX,
                from_end: false,
            };
            let items = self.store.items_range(n.rec.uid, &range)?;
            let cfg = &n.rec.config;
            let deliver = sub.state == SubscriptionState::Subscribed
                && sub.options.deliver
                && cfg.deliver_notifications
                && self.still_admitted(n, sub);
            let last_seq = n.counters.last_seq;
            if deliver && !items.is_empty() {
                let event = items_event(cfg, items);
                for to in self.targets(cfg, sub) {
                    out.push(Notification {
                        to,
                        node: n.rec.name.clone(),
                        subids: vec![sub.subid.clone()],
                        kind: cfg.notification_type,
                        include_body: sub.options.include_body,
                        event: std::sync::Arc::new(event.clone()),
                    });
                }
            }
            if let Some(d) = self.digests.get_mut(&key) {
                d.after_seq = last_seq;
                d.due = Some(now.saturating_add(period));
            }
        }
        Ok(out)
    }

    /// The store, e.g. to flush it on shutdown.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The store, read-only.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The service policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The NodeIDs of all nodes, whoever may see them (for operators and tests).
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.nodes.keys().map(String::as_str)
    }

    // ----------------------------------------------------------------- applying changes

    /// Apply a committed change set to memory. Changes for nodes memory does not know
    /// (possible only in a corrupt snapshot) are skipped rather than trusted.
    fn apply(&mut self, changes: &ChangeSet) {
        for c in &changes.0 {
            self.apply_one(c);
        }
    }

    fn apply_one(&mut self, c: &Change) {
        match c {
            Change::PutNode(rec) => {
                self.last_uid = self.last_uid.max(rec.uid);
                if let Some(n) = self.nodes.get_mut(&rec.name) {
                    if n.rec.uid == rec.uid {
                        n.rec = rec.clone();
                        for sub in n.subs.values() {
                            if needs_presence(&n.rec.config, sub) {
                                self.presence_requests.insert(sub.jid.to_bare());
                            }
                        }
                        return;
                    }
                    // A different node under the same name replaces the old one whole.
                    self.remove_node(&rec.name.clone());
                }
                self.uids.insert(rec.uid, rec.name.clone());
                self.nodes.insert(
                    rec.name.clone(),
                    NodeState {
                        rec: rec.clone(),
                        counters: ItemCounters::default(),
                        affs: BTreeMap::new(),
                        subs: SubMap::default(),
                        subscribed: 0,
                    },
                );
            }
            Change::DeleteNode { name, .. } => self.remove_node(name),
            Change::PutCounters { uid, counters } => {
                if let Some(n) = self.uids.get(uid).and_then(|name| self.nodes.get_mut(name)) {
                    n.counters = *counters;
                }
            }
            Change::PutAffiliation {
                node,
                jid,
                affiliation,
            } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                if *affiliation == Affiliation::None {
                    n.affs.remove(jid);
                    unindex_aff(&mut self.affs_by_jid, jid, node);
                } else {
                    n.affs.insert(jid.clone(), *affiliation);
                    self.affs_by_jid
                        .entry(jid.clone())
                        .or_default()
                        .insert(node.clone(), *affiliation);
                }
            }
            Change::PutSubscription { node, sub } => self.put_subscription(node, sub.clone()),
            Change::DeleteSubscription { node, subid, .. } => {
                let Some(n) = self.nodes.get_mut(node) else {
                    return;
                };
                if let Some(old) = n.subs.remove(subid) {
                    if old.state == SubscriptionState::Subscribed {
                        n.subscribed = n.subscribed.saturating_sub(1);
                    }
                    unindex_sub(&mut self.subs_by_jid, &old.jid.to_bare(), n.rec.uid, subid);
                    if let Some(end) = old.options.expire {
                        self.leases.remove(&(end, node.clone(), subid.clone()));
                    }
                    self.digests.remove(&(node.clone(), subid.clone()));
                }
            }
            // Items (and their expiry index) live in the store only; their bookkeeping
            // arrives as PutCounters.
            Change::PutItem { .. }
            | Change::DeleteItem { .. }
            | Change::PurgeItems { .. }
            | Change::ScheduleExpiry { .. }
            | Change::UnscheduleExpiry { .. } => {}
        }
    }

    /// `Change::PutSubscription`, taking the subscription by value (loading moves it in).
    fn put_subscription(&mut self, node: &str, sub: Subscription) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let uid = n.rec.uid;
        let bare = sub.jid.to_bare();
        let subid = sub.subid.clone();
        let (subscribed, expire, digest) = (
            sub.state == SubscriptionState::Subscribed,
            sub.options.expire,
            sub.options.digest,
        );
        if needs_presence(&n.rec.config, &sub) {
            self.presence_requests.insert(bare.clone());
        }
        if let Some(old) = n.subs.insert(sub) {
            if old.state == SubscriptionState::Subscribed {
                n.subscribed = n.subscribed.saturating_sub(1);
            }
            unindex_sub(&mut self.subs_by_jid, &old.jid.to_bare(), uid, &old.subid);
            if let Some(end) = old.options.expire {
                self.leases.remove(&(end, node.to_owned(), old.subid));
            }
        }
        if subscribed {
            n.subscribed += 1;
        }
        if let Some(end) = expire {
            self.leases.insert((end, node.to_owned(), subid.clone()));
        }
        if digest {
            let last_seq = n.counters.last_seq;
            self.digests
                .entry((node.to_owned(), subid.clone()))
                .or_insert(Digest {
                    after_seq: last_seq,
                    due: None,
                });
        } else if !self.digests.is_empty() {
            self.digests.remove(&(node.to_owned(), subid.clone()));
        }
        self.subs_by_jid
            .entry(bare)
            .or_default()
            .insert((uid, subid));
    }

    fn remove_node(&mut self, name: &str) {
        let Some(n) = self.nodes.remove(name) else {
            return;
        };
        self.uids.remove(&n.rec.uid);
        for jid in n.affs.keys() {
            unindex_aff(&mut self.affs_by_jid, jid, name);
        }
        for sub in n.subs.values() {
            unindex_sub(
                &mut self.subs_by_jid,
                &sub.jid.to_bare(),
                n.rec.uid,
                &sub.subid,
            );
            if let Some(end) = sub.options.expire {
                self.leases
                    .remove(&(end, name.to_owned(), sub.subid.clone()));
            }
            self.digests.remove(&(name.to_owned(), sub.subid.clone()));
        }
    }

    // ------------------------------------------------------------------------- lookups

    fn node(&self, name: &str) -> Result<&NodeState, Error> {
        self.nodes.get(name).ok_or(Error::NodeNotFound)
    }

    fn node_by_uid(&self, uid: u64) -> Option<&NodeState> {
        self.nodes.get(self.uids.get(&uid)?)
    }

    fn is_admin(&self, jid: &BareJid) -> bool {
        self.policy.is_admin(jid)
    }

    /// The affiliation that counts for access: admins own every node.
    fn aff(&self, n: &NodeState, jid: &BareJid) -> Affiliation {
        if self.is_admin(jid) {
            Affiliation::Owner
        } else {
            n.affs.get(jid).copied().unwrap_or(Affiliation::None)
        }
    }

    /// [`access::may_in_roster`] with what `who` is to the node's owners, from their rosters
    /// (only looked up for the presence and roster access models). The outer error is
    /// [`Error::RosterNeeded`]: the decision waits for rosters the engine lacks.
    fn may_access(
        &self,
        n: &NodeState,
        who: &BareJid,
        aff: Affiliation,
        action: Action,
        cfg: &NodeConfig,
        subscribed: bool,
    ) -> Result<Result<(), Error>, Error> {
        let standing = matches!(
            cfg.access_model,
            AccessModel::Presence | AccessModel::Roster
        )
        .then(|| self.rosters.granted())
        .filter(|granted| *granted)
        .map(|_| {
            let owners = n
                .affs
                .iter()
                .filter(|(_, a)| **a == Affiliation::Owner)
                .map(|(j, _)| j);
            self.rosters.standing(owners, who)
        });
        match access::may_in_roster(aff, action, cfg, subscribed, standing.as_ref()) {
            Err(e @ Error::RosterNeeded(_)) => Err(e),
            other => Ok(other),
        }
    }

    /// Every owner of a presence or roster node: whose rosters the service keeps.
    pub fn roster_owners(&self) -> BTreeSet<BareJid> {
        self.nodes
            .values()
            .filter(|n| {
                matches!(
                    n.rec.config.access_model,
                    AccessModel::Presence | AccessModel::Roster
                )
            })
            .flat_map(|n| {
                n.affs
                    .iter()
                    .filter(|(_, a)| **a == Affiliation::Owner)
                    .map(|(j, _)| j.clone())
            })
            .collect()
    }

    /// Subscriptions on `node` held by `bare` or any of its full JIDs.
    fn jid_subs<'a>(
        &'a self,
        n: &'a NodeState,
        bare: &BareJid,
    ) -> impl Iterator<Item = &'a Subscription> + 'a {
        let uid = n.rec.uid;
        self.subs_by_jid
            .get(bare)
            .into_iter()
            .flat_map(move |set| {
                set.range((uid, String::new())..)
                    .take_while(move |(u, _)| *u == uid)
            })
            .filter_map(move |(_, subid)| n.subs.get(subid))
    }

    fn is_subscribed(&self, n: &NodeState, bare: &BareJid) -> bool {
        self.jid_subs(n, bare)
            .any(|s| s.state == SubscriptionState::Subscribed)
    }

    /// A JID in a subscriber request must be the actor's own (§6.1.3.1); admins may act
    /// for anyone.
    fn check_jid(&self, actor: &BareJid, jid: &Jid) -> Result<(), Error> {
        if jid.to_bare() == *actor || self.is_admin(actor) {
            Ok(())
        } else {
            Err(Error::InvalidJid)
        }
    }

    /// The one subscription a subscriber request is about (§6.2.3, §6.3.4).
    fn resolve_sub<'a>(
        &'a self,
        n: &'a NodeState,
        jid: &Jid,
        subid: Option<&str>,
    ) -> Result<&'a Subscription, Error> {
        let mine: Vec<&Subscription> = self
            .jid_subs(n, &jid.to_bare())
            .filter(|s| &s.jid == jid)
            .collect();
        if mine.is_empty() {
            return Err(Error::NotSubscribed);
        }
        match subid.filter(|s| !s.is_empty()) {
            Some(id) => mine
                .into_iter()
                .find(|s| s.subid == id)
                .ok_or(Error::InvalidSubId),
            None if mine.len() > 1 => Err(Error::SubIdRequired),
            None => Ok(mine[0]),
        }
    }

    /// A fresh pseudo-random token for node names, subids and item ids. Uniqueness is
    /// checked by the caller; this only makes collisions unlikely and ids unguessable
    /// enough not to leak publish order.
    fn fresh(&self, now: Millis) -> String {
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        let mut z = now
            .rotate_left(17)
            .wrapping_add(c.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ self.last_uid.rotate_left(41);
        // splitmix64 finaliser
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        format!("{z:016x}")
    }

    fn fresh_subid(
        &self,
        n: &NodeState,
        taken: &BTreeMap<String, (Jid, Option<Subscription>)>,
        now: Millis,
    ) -> String {
        loop {
            let id = self.fresh(now);
            if !n.subs.contains_key(&id) && !taken.contains_key(&id) {
                return id;
            }
        }
    }

    // --------------------------------------------------------------------- presence

    /// A resource's presence changed: `show` is its new show, `None` when it became
    /// unavailable. Returns the last item of every `on_sub_and_presence` node the JID
    /// subscribes to when the resource has just become available (not when an available
    /// resource only changes its show), addressed to that full JID.
    pub fn presence_changed(
        &mut self,
        jid: &FullJid,
        show: Option<Show>,
    ) -> Result<Vec<Notification>, Error> {
        let Some(show) = show else {
            self.presence.unavailable(jid);
            return Ok(Vec::new());
        };
        // Anyone can send the service directed presence: only those whose presence some
        // subscription needs take memory.
        if !self.wants_presence(&jid.to_bare()) {
            return Ok(Vec::new());
        }
        if !self.presence.available(jid, show) {
            return Ok(Vec::new());
        }
        let full = Jid::from(jid.clone());
        let bare = jid.to_bare();
        let mut by_node: BTreeMap<&str, (Vec<String>, bool)> = BTreeMap::new();
        for (uid, subid) in self.subs_by_jid.get(&bare).into_iter().flatten() {
            let Some(n) = self.node_by_uid(*uid) else {
                continue;
            };
            let Some(sub) = n.subs.get(subid) else {
                continue;
            };
            let cfg = &n.rec.config;
            if cfg.send_last_published_item == SendLastPublished::OnSubAndPresence
                && cfg.deliver_notifications
                && sub.state == SubscriptionState::Subscribed
                && sub.options.deliver
                && sub.options.show_values.contains(&show)
                && (sub.jid.try_as_full().is_err() || sub.jid == full)
                && self.still_admitted(n, sub)
            {
                let e = by_node.entry(n.rec.name.as_str()).or_default();
                e.0.push(sub.subid.clone());
                e.1 |= sub.options.include_body;
            }
        }
        let mut out = Vec::new();
        for (node, (subids, include_body)) in by_node {
            let Some(n) = self.nodes.get(node) else {
                continue;
            };
            if let Some(last) = self.store.latest_items(n.rec.uid, Some(1))?.pop() {
                out.push(Notification {
                    to: full.clone(),
                    node: node.to_owned(),
                    subids,
                    kind: n.rec.config.notification_type,
                    include_body,
                    event: std::sync::Arc::new(items_event(&n.rec.config, vec![last])),
                });
            }
        }
        Ok(out)
    }

    /// Every bare JID whose presence the service needs: subscribers of nodes with
    /// `presence_based_delivery` or `send_last_published_item=on_sub_and_presence`, and
    /// subscriptions narrowed by `pubsub#show-values`. Derived from the subscriptions, so
    /// it is as durable as they are and needs no storage of its own.
    pub fn presence_wanted(&self) -> BTreeSet<BareJid> {
        let mut out = BTreeSet::new();
        for n in self.nodes.values() {
            for sub in n.subs.values() {
                if needs_presence(&n.rec.config, sub) {
                    out.insert(sub.jid.to_bare());
                }
            }
        }
        out
    }

    /// Whether some subscription of `bare` (or of one of its full JIDs) needs its presence.
    fn wants_presence(&self, bare: &BareJid) -> bool {
        self.subs_by_jid
            .get(bare)
            .into_iter()
            .flatten()
            .any(|(uid, subid)| {
                self.node_by_uid(*uid).is_some_and(|n| {
                    n.subs
                        .get(subid)
                        .is_some_and(|sub| needs_presence(&n.rec.config, sub))
                })
            })
    }

    /// The bare JIDs that became part of [`Service::presence_wanted`] since the last call
    /// (possibly again): each should be asked for a presence subscription.
    pub fn take_presence_requests(&mut self) -> BTreeSet<BareJid> {
        std::mem::take(&mut self.presence_requests)
    }

    /// Where a notification for `sub` goes: the JID as subscribed or, when its delivery
    /// depends on presence, each available resource (of a bare JID; only the resource
    /// itself for a full JID) whose show the subscription accepts. Full JIDs, so that
    /// the server never stores one offline.
    fn targets(&self, cfg: &NodeConfig, sub: &Subscription) -> Vec<Jid> {
        if !presence_bound(cfg, sub) {
            return vec![sub.jid.clone()];
        }
        let accepts = |show: Show| sub.options.show_values.contains(&show);
        match sub.jid.try_as_full() {
            Ok(full) => match self.presence.show(full) {
                Some(show) if accepts(show) => vec![sub.jid.clone()],
                _ => Vec::new(),
            },
            Err(bare) => self
                .presence
                .resources(bare)
                .filter(|(_, show)| accepts(*show))
                .filter_map(|(res, _)| bare.with_resource_str(res).ok().map(Jid::from))
                .collect(),
        }
    }

    // ---------------------------------------------------------------- notifications

    /// One notification per subscribed JID (with all its subids, §12.5) whose delivery is
    /// not paused (and, for published items, that does not take digests).
    fn broadcast(&self, n: &NodeState, event: Event) -> Vec<Notification> {
        // Digest subscriptions get published items batched by `tick` instead (once it runs).
        let items = matches!(event, Event::Items { .. }) && self.clock_running;
        let event = std::sync::Arc::new(event);
        let mut by_jid: BTreeMap<Jid, (Vec<String>, bool)> = BTreeMap::new();
        for s in n.subs.values() {
            if s.state == SubscriptionState::Subscribed
                && s.options.deliver
                && !(items && s.options.digest)
                && self.still_admitted(n, s)
            {
                for to in self.targets(&n.rec.config, s) {
                    let e = by_jid.entry(to).or_default();
                    e.0.push(s.subid.clone());
                    e.1 |= s.options.include_body;
                }
            }
        }
        by_jid
            .into_iter()
            .map(|(to, (subids, include_body))| Notification {
                to,
                node: n.rec.name.clone(),
                subids,
                kind: n.rec.config.notification_type,
                include_body,
                event: event.clone(),
            })
            .collect()
    }

    /// Whether the owners' rosters still admit `sub`'s subscriber to a presence or roster
    /// node (always true for other models). Rosters change after subscribing; one not
    /// known, or lost with the privilege, admits nobody who is not affiliated.
    fn still_admitted(&self, n: &NodeState, sub: &Subscription) -> bool {
        if !matches!(
            n.rec.config.access_model,
            AccessModel::Presence | AccessModel::Roster
        ) {
            return true;
        }
        let who = sub.jid.to_bare();
        matches!(
            self.may_access(
                n,
                &who,
                self.aff(n, &who),
                Action::RetrieveItems,
                &n.rec.config,
                true
            ),
            Ok(Ok(()))
        )
    }

    /// Notifications to the node's owners (explicit owners; admins are not told).
    fn to_owners(&self, n: &NodeState, event: Event) -> Vec<Notification> {
        let event = std::sync::Arc::new(event);
        n.affs
            .iter()
            .filter(|(_, a)| **a == Affiliation::Owner)
            .map(|(jid, _)| Notification {
                to: Jid::from(jid.clone()),
                node: n.rec.name.clone(),
                subids: Vec::new(),
                kind: n.rec.config.notification_type,
                include_body: false,
                event: event.clone(),
            })
            .collect()
    }

    /// The §8.6 authorization request for a pending subscription: to `only` when given
    /// (get-pending, §8.7), else to every owner.
    fn authorization_requests(
        &self,
        n: &NodeState,
        sub: &Subscription,
        only: Option<&Jid>,
    ) -> Vec<Notification> {
        let event = Event::Subscription {
            jid: sub.jid.clone(),
            state: SubscriptionState::Pending,
            subid: Some(sub.subid.clone()),
            expiry: sub.options.expire,
        };
        let mut out = match only {
            Some(to) => vec![Notification {
                to: to.clone(),
                node: n.rec.name.clone(),
                subids: Vec::new(),
                kind: NotificationType::Normal,
                include_body: false,
                event: std::sync::Arc::new(event),
            }],
            None => self.to_owners(n, event),
        };
        // A form to fill in is not a headline: it must be stored for offline owners.
        for m in &mut out {
            m.kind = NotificationType::Normal;
        }
        out
    }

    /// Tell a subscriber its subscription changed (§8.8.4).
    fn to_subscriber(
        &self,
        n: &NodeState,
        sub: &Subscription,
        state: SubscriptionState,
    ) -> Notification {
        Notification {
            to: sub.jid.clone(),
            node: n.rec.name.clone(),
            subids: vec![sub.subid.clone()],
            kind: n.rec.config.notification_type,
            include_body: false,
            event: std::sync::Arc::new(Event::Subscription {
                jid: sub.jid.clone(),
                state,
                subid: Some(sub.subid.clone()),
                expiry: sub.options.expire,
            }),
        }
    }

    // ------------------------------------------------------------------------ planning

    fn plan(&self, actor: &Jid, req: Request, now: Millis) -> Result<Plan, Error> {
        let me = actor.to_bare();
        match req {
            Request::DiscoNodes => Ok(Plan::read(Reply::Nodes {
                nodes: self.visible_nodes(&me),
                page: None,
            })),
            Request::NodeMetadata { node } => self.node_metadata(&me, &node),
            Request::DiscoItems { node } => {
                let n = self.retrievable(&me, &node, None)?;
                let ids = self
                    .store
                    .latest_items(n.rec.uid, None)?
                    .into_iter()
                    .map(|i| i.id)
                    .collect();
                Ok(Plan::read(Reply::ItemIds {
                    node,
                    ids,
                    page: None,
                }))
            }
            Request::Page { list, rsm } => self.page(&me, list, &rsm),
            Request::History { node, filter, rsm } => self.history(&me, node, &filter, &rsm),
            Request::AuthorizeSubscription {
                node,
                jid,
                subid,
                allow,
            } => self.authorize(&me, node, &jid, subid.as_deref(), allow),
            Request::PendingNodes => {
                let nodes = self
                    .nodes
                    .values()
                    .filter(|n| {
                        access::may(
                            self.aff(n, &me),
                            Action::ManageSubscriptions,
                            &n.rec.config,
                            false,
                        )
                        .is_ok()
                    })
                    .filter(|n| {
                        n.subs
                            .values()
                            .any(|s| s.state == SubscriptionState::Pending)
                    })
                    .map(|n| n.rec.name.clone())
                    .collect();
                Ok(Plan::read(Reply::PendingNodes { nodes }))
            }
            Request::GetPending { node } => {
                let n = self.node(&node)?;
                let aff = self.aff(n, &me);
                access::may(aff, Action::ManageSubscriptions, &n.rec.config, false)?;
                let notifications = n
                    .subs
                    .values()
                    .filter(|s| s.state == SubscriptionState::Pending)
                    .flat_map(|s| self.authorization_requests(n, s, Some(actor)))
                    .collect();
                Ok(Plan {
                    reply: Reply::PendingSent { node },
                    changes: ChangeSet::default(),
                    notifications,
                })
            }
            Request::Subscriptions { node } => {
                if let Some(name) = &node {
                    self.node(name)?;
                }
                let mut subs: Vec<(String, Subscription)> = self
                    .subs_by_jid
                    .get(&me)
                    .into_iter()
                    .flatten()
                    .filter_map(|(uid, subid)| {
                        let n = self.node_by_uid(*uid)?;
                        if !wanted(node.as_deref(), &n.rec.name) {
                            return None;
                        }
                        Some((n.rec.name.clone(), n.subs.get(subid)?.clone()))
                    })
                    .collect();
                // The index is in uid order; the reply lists nodes by name (then subid),
                // as it always has. The sort is stable, so subids stay in order.
                subs.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(Plan::read(Reply::Subscriptions { node, subs }))
            }
            Request::Affiliations { node } => {
                if let Some(name) = &node {
                    self.node(name)?;
                }
                let affs = self
                    .affs_by_jid
                    .get(&me)
                    .into_iter()
                    .flatten()
                    .filter(|(nn, _)| wanted(node.as_deref(), nn))
                    .map(|(nn, a)| (nn.clone(), me.clone(), *a))
                    .collect();
                Ok(Plan::read(Reply::Affiliations { node, affs }))
            }
            Request::Subscribe { node, jid, options } => {
                self.subscribe(&me, node, jid, options, now)
            }
            Request::Unsubscribe { node, jid, subid } => {
                let n = self.node(&node)?;
                self.check_jid(&me, &jid)?;
                let sub = self.resolve_sub(n, &jid, subid.as_deref())?;
                let mut changes = ChangeSet::default();
                changes.push(Change::DeleteSubscription {
                    node: node.clone(),
                    jid: sub.jid.clone(),
                    subid: sub.subid.clone(),
                });
                let notifications = if n.rec.config.notify_sub {
                    self.to_owners(
                        n,
                        Event::Subscription {
                            jid: sub.jid.clone(),
                            state: SubscriptionState::None,
                            subid: Some(sub.subid.clone()),
                            expiry: None,
                        },
                    )
                } else {
                    Vec::new()
                };
                Ok(Plan {
                    reply: Reply::Done,
                    changes,
                    notifications,
                })
            }
            Request::GetOptions { node, jid, subid } => {
                let n = self.node(&node)?;
                self.check_jid(&me, &jid)?;
                let sub = self.resolve_sub(n, &jid, subid.as_deref())?;
                Ok(Plan::read(Reply::Options {
                    node: Some(node),
                    jid: Some(sub.jid.clone()),
                    subid: Some(sub.subid.clone()),
                    options: sub.options.clone(),
                }))
            }
            Request::SetOptions {
                node,
                jid,
                subid,
                options,
            } => {
                let n = self.node(&node)?;
                self.check_jid(&me, &jid)?;
                let sub = self.resolve_sub(n, &jid, subid.as_deref())?;
                let new_opts = patch_options(&sub.options, &options);
                validate_options(&new_opts, now)?;
                let mut new_sub = sub.clone();
                new_sub.options = new_opts;
                let mut changes = ChangeSet::default();
                changes.push(Change::PutSubscription { node, sub: new_sub });
                Ok(Plan {
                    reply: Reply::Done,
                    changes,
                    notifications: Vec::new(),
                })
            }
            Request::DefaultOptions { node } => {
                if let Some(name) = &node {
                    self.node(name)?;
                }
                Ok(Plan::read(Reply::Options {
                    node,
                    jid: None,
                    subid: None,
                    options: SubOptions::default(),
                }))
            }
            Request::Items {
                node,
                max_items,
                ids,
                subid,
            } => self.items(&me, node, max_items, ids, subid),
            Request::Publish {
                node,
                item,
                options,
            } => self.publish(actor, &me, node, item, options, now),
            Request::Retract { node, ids, notify } => self.retract(&me, node, ids, notify),
            Request::Create { node, config } => self.create(&me, node, config, now),
            Request::GetConfig { node } => {
                let n = self.node(&node)?;
                access::may(
                    self.aff(n, &me),
                    Action::ConfigureNode,
                    &n.rec.config,
                    false,
                )?;
                Ok(Plan::read(Reply::Config {
                    node: Some(node),
                    config: n.rec.config.clone(),
                }))
            }
            Request::SetConfig { node, config } => self.set_config(&me, node, config),
            Request::DefaultConfig => Ok(Plan::read(Reply::Config {
                node: None,
                config: self.policy.default_config.clone(),
            })),
            Request::Delete { node, redirect } => {
                let n = self.node(&node)?;
                access::may(self.aff(n, &me), Action::DeleteNode, &n.rec.config, false)?;
                let mut changes = ChangeSet::default();
                changes.push(Change::DeleteNode {
                    name: node,
                    uid: n.rec.uid,
                });
                let notifications = if n.rec.config.notify_delete {
                    self.broadcast(n, Event::Delete { redirect })
                } else {
                    Vec::new()
                };
                Ok(Plan {
                    reply: Reply::Done,
                    changes,
                    notifications,
                })
            }
            Request::Purge { node } => {
                let n = self.node(&node)?;
                access::may(self.aff(n, &me), Action::PurgeNode, &n.rec.config, false)?;
                if !n.rec.config.persist_items {
                    return Err(Error::NotPersistent);
                }
                let mut changes = ChangeSet::default();
                changes.push(Change::PurgeItems { uid: n.rec.uid });
                changes.push(Change::PutCounters {
                    uid: n.rec.uid,
                    counters: ItemCounters {
                        count: 0,
                        last_seq: n.counters.last_seq,
                    },
                });
                // §8.5: the purge event goes out when the node notifies on retraction.
                let notifications = if n.rec.config.notify_retract {
                    self.broadcast(n, Event::Purge)
                } else {
                    Vec::new()
                };
                Ok(Plan {
                    reply: Reply::Done,
                    changes,
                    notifications,
                })
            }
            Request::GetSubscriptions { node } => {
                let n = self.node(&node)?;
                let aff = self.aff(n, &me);
                access::may(aff, Action::ManageSubscriptions, &n.rec.config, false)?;
                let subs = n.subs.values().map(|s| (node.clone(), s.clone())).collect();
                Ok(Plan::read(Reply::Subscriptions {
                    node: Some(node),
                    subs,
                }))
            }
            Request::SetSubscriptions { node, changes } => {
                self.set_subscriptions(&me, node, changes, now)
            }
            Request::GetAffiliations { node } => {
                let n = self.node(&node)?;
                let aff = self.aff(n, &me);
                access::may(aff, Action::ManageAffiliations, &n.rec.config, false)?;
                let affs = n
                    .affs
                    .iter()
                    .map(|(j, a)| (node.clone(), j.clone(), *a))
                    .collect();
                Ok(Plan::read(Reply::Affiliations {
                    node: Some(node),
                    affs,
                }))
            }
            Request::SetAffiliations { node, changes } => self.set_affiliations(&me, node, changes),
        }
    }

    fn node_metadata(&self, me: &BareJid, node: &str) -> Result<Plan, Error> {
        let n = self.node(node)?;
        let aff = self.aff(n, me);
        if !access::visible(aff, &n.rec.config) {
            return Err(if aff == Affiliation::Outcast {
                Error::Outcast
            } else {
                Error::ClosedNode
            });
        }
        let with = |want: Affiliation| {
            n.affs
                .iter()
                .filter(|(_, a)| **a == want)
                .map(|(j, _)| j.clone())
                .collect()
        };
        Ok(Plan::read(Reply::Metadata(NodeMeta {
            node: node.to_owned(),
            config: n.rec.config.clone(),
            creator: n.rec.creator.clone(),
            created: n.rec.created,
            owners: with(Affiliation::Owner),
            publishers: with(Affiliation::Publisher),
            num_subscribers: n.subscribed,
        })))
    }

    /// Check a configuration against what the engine supports and the policy caps.
    fn validate_config(&self, cfg: &NodeConfig) -> Result<(), Error> {
        if !access::access_model_supported(cfg.access_model, self.rosters.granted()) {
            return Err(Error::UnsupportedAccessModel);
        }
        if let MaxItems::Count(n) = cfg.max_items {
            if n > self.policy.max_items_per_node {
                return Err(Error::MaxItemsExceeded);
            }
        }
        if cfg.max_payload_size == 0 || cfg.max_payload_size > self.policy.max_payload_size {
            return Err(Error::InvalidConfig(format!(
                "pubsub#max_payload_size must be between 1 and {}",
                self.policy.max_payload_size
            )));
        }
        Ok(())
    }

    fn create(
        &self,
        me: &BareJid,
        node: Option<String>,
        patch: Option<NodeConfigPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        if !self.policy.may_create(me) {
            return Err(Error::CreateForbidden);
        }
        let name = match node {
            Some(name) if name.is_empty() => return Err(Error::NodeIdRequired),
            Some(name) if self.nodes.contains_key(&name) => return Err(Error::NodeExists),
            Some(name) => name,
            None => loop {
                let name = self.fresh(now);
                if !self.nodes.contains_key(&name) {
                    break name;
                }
            },
        };
        if !self.is_admin(me) {
            let owned = self
                .affs_by_jid
                .get(me)
                .map(|m| m.values().filter(|a| **a == Affiliation::Owner).count() as u64)
                .unwrap_or(0);
            if owned >= self.policy.max_nodes_per_jid {
                return Err(Error::LimitReached("nodes per JID"));
            }
        }
        let config = match &patch {
            Some(p) => patch_config(&self.policy.default_config, p),
            None => self.policy.default_config.clone(),
        };
        self.validate_config(&config)?;
        let uid = self.last_uid + 1;
        let mut changes = ChangeSet::default();
        changes.push(Change::PutNode(NodeRecord {
            name: name.clone(),
            uid,
            creator: me.clone(),
            created: now,
            config,
        }));
        changes.push(Change::PutCounters {
            uid,
            counters: ItemCounters::default(),
        });
        changes.push(Change::PutAffiliation {
            node: name.clone(),
            jid: me.clone(),
            affiliation: Affiliation::Owner,
        });
        Ok(Plan {
            reply: Reply::Created { node: name },
            changes,
            notifications: Vec::new(),
        })
    }

    fn set_config(
        &self,
        me: &BareJid,
        node: String,
        patch: NodeConfigPatch,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        access::may(self.aff(n, me), Action::ConfigureNode, &n.rec.config, false)?;
        let config = patch_config(&n.rec.config, &patch);
        self.validate_config(&config)?;
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        // Subscribers that the new access model shuts out lose their subscriptions.
        let mut removed = BTreeSet::new();
        if config.access_model != n.rec.config.access_model {
            for sub in n.subs.values() {
                let who = sub.jid.to_bare();
                let aff = self.aff(n, &who);
                // Undecided for want of a roster: the request fails with RosterNeeded and is
                // asked again once the component has the rosters, rather than dropping
                // subscriptions a roster would have kept.
                if self
                    .may_access(n, &who, aff, Action::Subscribe, &config, false)?
                    .is_err()
                {
                    removed.insert(sub.subid.clone());
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid: sub.jid.clone(),
                        subid: sub.subid.clone(),
                    });
                    notifications.push(self.to_subscriber(n, sub, SubscriptionState::None));
                }
            }
        }
        changes.push(Change::PutNode(NodeRecord {
            config: config.clone(),
            ..n.rec.clone()
        }));
        if config.notify_config {
            let event = Event::Configuration {
                config: config.deliver_payloads.then(|| config.clone()),
            };
            let mut after = n.clone();
            after.subs.retain(|subid| !removed.contains(subid));
            after.rec.config = config;
            notifications.extend(self.broadcast(&after, event));
        }
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications,
        })
    }

    fn subscribe(
        &self,
        me: &BareJid,
        node: String,
        jid: Jid,
        options: Option<SubOptionsPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check_jid(me, &jid)?;
        let bare = jid.to_bare();
        self.may_access(
            n,
            &bare,
            self.aff(n, &bare),
            Action::Subscribe,
            &n.rec.config,
            false,
        )??;
        if options.is_none() {
            if let Some(existing) = self.jid_subs(n, &bare).find(|s| s.jid == jid) {
                return Ok(Plan::read(Reply::Subscription {
                    node,
                    sub: existing.clone(),
                }));
            }
        }
        if n.subs.len() as u64 >= self.policy.max_subscriptions_per_node {
            return Err(Error::LimitReached("subscriptions per node"));
        }
        let held = self.subs_by_jid.get(&bare).map_or(0, |s| s.len() as u64);
        if held >= self.policy.max_subscriptions_per_jid {
            return Err(Error::LimitReached("subscriptions per JID"));
        }
        let opts = match &options {
            Some(p) => patch_options(&SubOptions::default(), p),
            None => SubOptions::default(),
        };
        validate_options(&opts, now)?;
        // §6.1.2 / §4.5: on an authorize node only affiliates that may subscribe anyway
        // (members, publishers, owners) are subscribed at once; everyone else waits for an
        // owner (§8.6).
        let needs_approval = n.rec.config.access_model == AccessModel::Authorize
            && !matches!(
                self.aff(n, &bare),
                Affiliation::Owner | Affiliation::Publisher | Affiliation::Member
            );
        let sub = Subscription {
            jid: jid.clone(),
            subid: self.fresh_subid(n, &BTreeMap::new(), now),
            state: if needs_approval {
                SubscriptionState::Pending
            } else {
                SubscriptionState::Subscribed
            },
            options: opts,
        };
        let mut changes = ChangeSet::default();
        changes.push(Change::PutSubscription {
            node: node.clone(),
            sub: sub.clone(),
        });
        if needs_approval {
            // The authorization request is the owners' notice; no item is sent yet.
            let notifications = self.authorization_requests(n, &sub, None);
            return Ok(Plan {
                reply: Reply::Subscription { node, sub },
                changes,
                notifications,
            });
        }
        let cfg = &n.rec.config;
        let mut notifications = Vec::new();
        if cfg.notify_sub {
            notifications.extend(self.to_owners(
                n,
                Event::Subscription {
                    jid: jid.clone(),
                    state: sub.state,
                    subid: Some(sub.subid.clone()),
                    expiry: sub.options.expire,
                },
            ));
        }
        if cfg.send_last_published_item != SendLastPublished::Never
            && cfg.deliver_notifications
            && sub.options.deliver
        {
            if let Some(last) = self.store.latest_items(n.rec.uid, Some(1))?.pop() {
                let event = std::sync::Arc::new(items_event(cfg, vec![last]));
                for to in self.targets(cfg, &sub) {
                    notifications.push(Notification {
                        to,
                        node: node.clone(),
                        subids: vec![sub.subid.clone()],
                        kind: cfg.notification_type,
                        include_body: sub.options.include_body,
                        event: event.clone(),
                    });
                }
            }
        }
        Ok(Plan {
            reply: Reply::Subscription { node, sub },
            changes,
            notifications,
        })
    }

    /// An owner's decision on pending subscriptions (§8.6).
    fn authorize(
        &self,
        me: &BareJid,
        node: String,
        jid: &Jid,
        subid: Option<&str>,
        allow: bool,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        access::may(
            self.aff(n, me),
            Action::ManageSubscriptions,
            &n.rec.config,
            false,
        )?;
        let pending: Vec<&Subscription> = self
            .jid_subs(n, &jid.to_bare())
            .filter(|s| &s.jid == jid && s.state == SubscriptionState::Pending)
            .filter(|s| match subid {
                Some(id) if !id.is_empty() => s.subid == id,
                _ => true,
            })
            .collect();
        // Already decided (e.g. by another owner) or never asked: nothing to do.
        if pending.is_empty() {
            return Err(Error::NotSubscribed);
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for sub in pending {
            let state = if allow {
                let mut approved = sub.clone();
                approved.state = SubscriptionState::Subscribed;
                changes.push(Change::PutSubscription {
                    node: node.clone(),
                    sub: approved,
                });
                SubscriptionState::Subscribed
            } else {
                changes.push(Change::DeleteSubscription {
                    node: node.clone(),
                    jid: sub.jid.clone(),
                    subid: sub.subid.clone(),
                });
                SubscriptionState::None
            };
            notifications.push(self.to_subscriber(n, sub, state));
        }
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications,
        })
    }

    /// The nodes `me` may see, in NodeID order.
    fn visible_nodes(&self, me: &BareJid) -> Vec<NodeSummary> {
        self.nodes
            .values()
            .filter(|n| access::visible(self.aff(n, me), &n.rec.config))
            .map(|n| NodeSummary {
                node: n.rec.name.clone(),
                title: n.rec.config.title.clone(),
            })
            .collect()
    }

    /// The node, if `me` may retrieve its items (§6.5.9–§6.5.12), with the subid check
    /// of §6.5.3.
    fn retrievable(
        &self,
        me: &BareJid,
        node: &str,
        subid: Option<&str>,
    ) -> Result<&NodeState, Error> {
        let n = self.node(node)?;
        let aff = self.aff(n, me);
        let subscribed = self.is_subscribed(n, me);
        self.may_access(n, me, aff, Action::RetrieveItems, &n.rec.config, subscribed)??;
        if let Some(subid) = subid.filter(|s| !s.is_empty()) {
            let sub = self
                .jid_subs(n, me)
                .find(|s| s.subid == subid)
                .ok_or(Error::InvalidSubId)?;
            if sub.state == SubscriptionState::Pending {
                return Err(Error::PendingSubscription);
            }
        }
        Ok(n)
    }

    /// One XEP-0059 page of a list.
    fn page(&self, me: &BareJid, list: PagedList, rsm: &RsmQuery) -> Result<Plan, Error> {
        match list {
            PagedList::Nodes => {
                let all = self.visible_nodes(me);
                let (start, end) = page_bounds(&all, rsm, |n| n.node.as_str())?;
                let nodes = all[start..end].to_vec();
                let page = RsmPage {
                    first: nodes.first().map(|n| (n.node.clone(), start as u64)),
                    last: nodes.last().map(|n| n.node.clone()),
                    count: all.len() as u64,
                };
                Ok(Plan::read(Reply::Nodes {
                    nodes,
                    page: Some(page),
                }))
            }
            PagedList::ItemIds { node } => {
                let n = self.retrievable(me, &node, None)?;
                let (items, page) = self.item_page(n, rsm)?;
                Ok(Plan::read(Reply::ItemIds {
                    node,
                    ids: items.into_iter().map(|i| i.id).collect(),
                    page: Some(page),
                }))
            }
            PagedList::Items { node, subid } => {
                let n = self.retrievable(me, &node, subid.as_deref())?;
                let (items, page) = self.item_page(n, rsm)?;
                Ok(Plan::read(Reply::Items {
                    node,
                    items,
                    page: Some(page),
                    with_publisher: n.rec.config.shows_publisher(),
                }))
            }
        }
    }

    /// A page of a node's items, by `seq` so that items published meanwhile only ever
    /// appear after the last page. An `after`/`before` ItemID that does not exist (any
    /// more) is `item-not-found`, as XEP-0059 §2.1 asks.
    fn item_page(&self, n: &NodeState, rsm: &RsmQuery) -> Result<(Vec<Item>, RsmPage), Error> {
        let uid = n.rec.uid;
        let seq_of = |id: &str| -> Result<u64, Error> {
            Ok(self.store.item(uid, id)?.ok_or(Error::ItemNotFound)?.seq)
        };
        let after = rsm.after.as_deref().map(seq_of).transpose()?;
        let before = match rsm.before.as_deref() {
            None | Some("") => None,
            Some(id) => Some(seq_of(id)?),
        };
        let from_end = rsm.before.is_some();
        let skip = match (from_end, after) {
            (false, None) => rsm.index.unwrap_or(0),
            _ => 0,
        };
        let range = ItemRange {
            after,
            before,
            skip,
            limit: rsm.max.unwrap_or(u64::MAX),
            from_end,
        };
        let items = self.store.items_range(uid, &range)?;
        let first = match items.first() {
            None => None,
            Some(i) => {
                let index = if !from_end && after.is_none() {
                    skip
                } else {
                    self.store.count_before(uid, Some(i.seq))?
                };
                Some((i.id.clone(), index))
            }
        };
        let page = RsmPage {
            first,
            last: items.last().map(|i| i.id.clone()),
            count: n.counters.count,
        };
        Ok((items, page))
    }

    fn items(
        &self,
        me: &BareJid,
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        subid: Option<String>,
    ) -> Result<Plan, Error> {
        let n = self.retrievable(me, &node, subid.as_deref())?;
        let items = if ids.is_empty() {
            self.store.latest_items(n.rec.uid, max_items)?
        } else {
            let mut found = Vec::new();
            let mut seen = BTreeSet::new();
            for id in &ids {
                if seen.insert(id.as_str()) {
                    if let Some(item) = self.store.item(n.rec.uid, id)? {
                        found.push(item);
                    }
                }
            }
            found.sort_by_key(|i| i.seq);
            found
        };
        Ok(Plan::read(Reply::Items {
            node,
            items,
            page: None,
            with_publisher: n.rec.config.shows_publisher(),
        }))
    }

    fn publish(
        &self,
        actor: &Jid,
        me: &BareJid,
        node: String,
        item: Option<NewItem>,
        preconditions: Option<NodeConfigPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        let cfg = &n.rec.config;
        let aff = self.aff(n, me);
        access::may(aff, Action::PublishItems, cfg, self.is_subscribed(n, me))?;
        if let Some(p) = &preconditions {
            if let Some(field) = precondition_mismatch(cfg, p) {
                return Err(Error::PreconditionNotMet {
                    field: field.to_owned(),
                });
            }
        }
        let given = item.is_some();
        let (id, payload) = match item {
            Some(NewItem { id, payload }) => (id.filter(|i| !i.is_empty()), payload),
            None => (None, None),
        };
        if cfg.persist_items && !given {
            return Err(Error::ItemRequired);
        }
        if (cfg.deliver_payloads || cfg.persist_items) && payload.is_none() {
            return Err(Error::PayloadRequired);
        }
        if !cfg.persist_items && !cfg.deliver_payloads && payload.is_some() {
            return Err(Error::ItemForbidden);
        }
        let limit = cfg.max_payload_size.min(self.policy.max_payload_size);
        if payload.as_ref().is_some_and(|p| p.len() as u64 > limit) {
            return Err(Error::PayloadTooBig { limit });
        }
        let uid = n.rec.uid;
        let id = match id {
            Some(id) => id,
            None => loop {
                let id = self.fresh(now);
                if self.store.item(uid, &id)?.is_none() {
                    break id;
                }
            },
        };
        let seq = n.counters.last_seq + 1;
        let item = Item {
            id: id.clone(),
            seq,
            publisher: actor.clone(),
            published: now,
            payload: payload.unwrap_or_default(),
        };
        let mut changes = ChangeSet::default();
        let mut count = n.counters.count;
        if cfg.persist_items {
            let old = self.store.item(uid, &id)?;
            if let Some(o) = &old {
                changes.push(Change::DeleteItem {
                    uid,
                    id: o.id.clone(),
                    seq: o.seq,
                });
                count = count.saturating_sub(1);
            }
            let keep = cfg.max_items.limit(self.policy.max_items_per_node);
            if keep > 0 {
                changes.push(Change::PutItem {
                    uid,
                    item: item.clone(),
                });
                count += 1;
                // Expiry is fixed at publish time: reconfiguring item_expire later
                // applies to items published from then on.
                if let Some(secs) = cfg.item_expire {
                    changes.push(Change::ScheduleExpiry {
                        at: now.saturating_add(secs.saturating_mul(1000)),
                        uid,
                        seq,
                    });
                }
            }
            if count > keep {
                // The new item is not in the store yet and is the newest anyway; the
                // replaced one is already going, so skip it when picking the oldest.
                let excess = count - keep;
                let old_seq = old.as_ref().map(|o| o.seq);
                let fetch = excess + u64::from(old_seq.is_some());
                for o in self
                    .store
                    .oldest_items(uid, fetch)?
                    .into_iter()
                    .filter(|o| Some(o.seq) != old_seq)
                    .take(excess as usize)
                {
                    changes.push(Change::DeleteItem {
                        uid,
                        id: o.id,
                        seq: o.seq,
                    });
                    count -= 1;
                }
            }
        }
        // last_seq advances even for transient nodes: it keeps seqs strictly increasing
        // should the node later become persistent.
        changes.push(Change::PutCounters {
            uid,
            counters: ItemCounters {
                count,
                last_seq: seq,
            },
        });
        let notifications = if cfg.deliver_notifications {
            self.broadcast(n, items_event(cfg, vec![item]))
        } else {
            Vec::new()
        };
        Ok(Plan {
            reply: Reply::Published { node, id },
            changes,
            notifications,
        })
    }

    fn retract(
        &self,
        me: &BareJid,
        node: String,
        ids: Vec<String>,
        notify: bool,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        let cfg = &n.rec.config;
        let aff = self.aff(n, me);
        access::may(aff, Action::DeleteOwnItem, cfg, false)?;
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|i| !i.is_empty())
            .filter(|i| seen.insert(i.clone()))
            .collect();
        if ids.is_empty() {
            return Err(Error::ItemIdRequired);
        }
        let mut changes = ChangeSet::default();
        for id in &ids {
            let item = self.store.item(n.rec.uid, id)?.ok_or(Error::ItemNotFound)?;
            if item.publisher.to_bare() != *me {
                access::may(aff, Action::DeleteAnyItem, cfg, false)?;
            }
            changes.push(Change::DeleteItem {
                uid: n.rec.uid,
                id: item.id,
                seq: item.seq,
            });
        }
        changes.push(Change::PutCounters {
            uid: n.rec.uid,
            counters: ItemCounters {
                count: n.counters.count.saturating_sub(ids.len() as u64),
                last_seq: n.counters.last_seq,
            },
        });
        let notifications = if cfg.deliver_notifications && (notify || cfg.notify_retract) {
            self.broadcast(n, Event::Retract { ids })
        } else {
            Vec::new()
        };
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications,
        })
    }

    fn set_subscriptions(
        &self,
        me: &BareJid,
        node: String,
        rows: Vec<SubscriptionChange>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        access::may(
            self.aff(n, me),
            Action::ManageSubscriptions,
            &n.rec.config,
            false,
        )?;
        // subid → (jid, new subscription or None when removed): an overlay over the
        // node's subscriptions, so that later rows see earlier rows' effects.
        let mut work: BTreeMap<String, (Jid, Option<Subscription>)> = BTreeMap::new();
        for row in rows {
            let mut current: Vec<Subscription> = self
                .jid_subs(n, &row.jid.to_bare())
                .filter(|s| s.jid == row.jid && !work.contains_key(&s.subid))
                .cloned()
                .collect();
            current.extend(
                work.values()
                    .filter_map(|(_, s)| s.as_ref())
                    .filter(|s| s.jid == row.jid)
                    .cloned(),
            );
            let targets: Vec<Subscription> = match row.subid.as_deref().filter(|s| !s.is_empty()) {
                Some(id) => {
                    let t: Vec<_> = current.into_iter().filter(|s| s.subid == id).collect();
                    if t.is_empty() {
                        return Err(Error::InvalidSubId);
                    }
                    t
                }
                None => current,
            };
            if row.state == SubscriptionState::None {
                for t in targets {
                    work.insert(t.subid.clone(), (t.jid, None));
                }
            } else if targets.is_empty() {
                // The owner subscribes someone new; a banned entity stays out.
                let aff = self.aff(n, &row.jid.to_bare());
                if aff == Affiliation::Outcast {
                    return Err(Error::Outcast);
                }
                let subid = self.fresh_subid(n, &work, now);
                let sub = Subscription {
                    jid: row.jid.clone(),
                    subid: subid.clone(),
                    state: row.state,
                    options: SubOptions::default(),
                };
                work.insert(subid, (row.jid, Some(sub)));
            } else {
                for mut t in targets {
                    t.state = row.state;
                    work.insert(t.subid.clone(), (t.jid.clone(), Some(t)));
                }
            }
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for (subid, (jid, sub)) in work {
            match sub {
                Some(sub) => {
                    if n.subs.get(&subid) == Some(&sub) {
                        continue;
                    }
                    notifications.push(self.to_subscriber(n, &sub, sub.state));
                    changes.push(Change::PutSubscription {
                        node: node.clone(),
                        sub,
                    });
                }
                None => {
                    // Created and removed within this request: nothing to store.
                    let Some(old) = n.subs.get(&subid) else {
                        continue;
                    };
                    notifications.push(self.to_subscriber(n, old, SubscriptionState::None));
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid,
                        subid,
                    });
                }
            }
        }
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications,
        })
    }

    fn set_affiliations(
        &self,
        me: &BareJid,
        node: String,
        rows: Vec<(BareJid, Affiliation)>,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        let cfg = &n.rec.config;
        access::may(self.aff(n, me), Action::ManageAffiliations, cfg, false)?;
        let mut work: BTreeMap<BareJid, Affiliation> = BTreeMap::new();
        for (jid, aff) in rows {
            // §8.9.2.4: the same entity twice in one request is a bad request.
            if work.insert(jid.clone(), aff).is_some() {
                return Err(Error::BadRequest(format!(
                    "affiliation for {jid} given twice"
                )));
            }
        }
        let owners_left = n
            .affs
            .iter()
            .filter(|(j, a)| **a == Affiliation::Owner && !work.contains_key(*j))
            .count()
            + work.values().filter(|a| **a == Affiliation::Owner).count();
        if owners_left == 0 {
            return Err(Error::InvalidConfig(
                "a node must keep at least one owner".to_owned(),
            ));
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for (jid, aff) in work {
            let old = n.affs.get(&jid).copied().unwrap_or(Affiliation::None);
            if old == aff {
                continue;
            }
            changes.push(Change::PutAffiliation {
                node: node.clone(),
                jid: jid.clone(),
                affiliation: aff,
            });
            // Whoever may no longer subscribe (banned, or dropped from a whitelist)
            // loses its subscriptions and is told so.
            let eff = if self.is_admin(&jid) {
                Affiliation::Owner
            } else {
                aff
            };
            if self
                .may_access(n, &jid, eff, Action::Subscribe, cfg, false)?
                .is_err()
            {
                for sub in self.jid_subs(n, &jid) {
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid: sub.jid.clone(),
                        subid: sub.subid.clone(),
                    });
                    notifications.push(self.to_subscriber(n, sub, SubscriptionState::None));
                }
            }
        }
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications,
        })
    }
}

/// The `[start, end)` positions of an RSM page over an in-memory list sorted by `uid`.
/// An `after`/`before` UID not in the list is `item-not-found` (XEP-0059 §2.1).
fn page_bounds<T>(
    all: &[T],
    rsm: &RsmQuery,
    uid: impl Fn(&T) -> &str,
) -> Result<(usize, usize), Error> {
    let pos = |id: &str| {
        all.iter()
            .position(|t| uid(t) == id)
            .ok_or(Error::ItemNotFound)
    };
    let limit = rsm
        .max
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let lo = match rsm.after.as_deref() {
        Some(id) => pos(id)? + 1,
        None => 0,
    };
    Ok(match rsm.before.as_deref() {
        Some(b) => {
            let hi = if b.is_empty() { all.len() } else { pos(b)? };
            let hi = hi.max(lo);
            (hi.saturating_sub(limit).max(lo), hi)
        }
        None => {
            let skip = match (rsm.after.is_some(), rsm.index) {
                (false, Some(i)) => usize::try_from(i).unwrap_or(usize::MAX),
                _ => 0,
            };
            let start = lo.saturating_add(skip).min(all.len());
            (start, start.saturating_add(limit).min(all.len()))
        }
    })
}

/// The event for published items: payloads stripped unless the node delivers them, each
/// item's publisher named when replies go to it (`pubsub#itemreply`).
fn items_event(cfg: &NodeConfig, mut items: Vec<Item>) -> Event {
    if !cfg.deliver_payloads {
        for i in &mut items {
            i.payload.clear();
        }
    }
    Event::Items {
        items,
        with_payload: cfg.deliver_payloads,
        with_publisher: cfg.shows_publisher(),
    }
}

/// Whether `node` passes an optional node filter (spelled out rather than with
/// `Option::is_none_or`, which is newer than the workspace's rust-version).
fn wanted(filter: Option<&str>, node: &str) -> bool {
    match filter {
        Some(want) => want == node,
        None => true,
    }
}

fn unindex_sub(
    idx: &mut HashMap<BareJid, BTreeSet<(u64, String)>>,
    bare: &BareJid,
    uid: u64,
    subid: &str,
) {
    if let Some(set) = idx.get_mut(bare) {
        set.remove(&(uid, subid.to_owned()));
        if set.is_empty() {
            idx.remove(bare);
        }
    }
}

fn unindex_aff(
    idx: &mut HashMap<BareJid, BTreeMap<String, Affiliation>>,
    jid: &BareJid,
    node: &str,
) {
    if let Some(m) = idx.get_mut(jid) {
        m.remove(node);
        if m.is_empty() {
            idx.remove(jid);
        }
    }
}

/// Lists every configuration field with its form name, once, for patching and for
/// publish-options preconditions.
macro_rules! config_fields {
    ($m:ident) => {
        $m! {
            title = "pubsub#title",
            description = "pubsub#description",
            payload_type = "pubsub#type",
            access_model = "pubsub#access_model",
            roster_groups_allowed = "pubsub#roster_groups_allowed",
            publish_model = "pubsub#publish_model",
            max_items = "pubsub#max_items",
            persist_items = "pubsub#persist_items",
            deliver_payloads = "pubsub#deliver_payloads",
            deliver_notifications = "pubsub#deliver_notifications",
            notify_config = "pubsub#notify_config",
            notify_delete = "pubsub#notify_delete",
            notify_retract = "pubsub#notify_retract",
            notify_sub = "pubsub#notify_sub",
            presence_based_delivery = "pubsub#presence_based_delivery",
            send_last_published_item = "pubsub#send_last_published_item",
            item_expire = "pubsub#item_expire",
            notification_type = "pubsub#notification_type",
            itemreply = "pubsub#itemreply",
            max_payload_size = "pubsub#max_payload_size",
        }
    };
}

/// `cfg` with every field the patch gives replaced.
pub fn patch_config(cfg: &NodeConfig, patch: &NodeConfigPatch) -> NodeConfig {
    let mut out = cfg.clone();
    macro_rules! apply {
        ($($f:ident = $name:literal),* $(,)?) => {
            $(if let Some(v) = &patch.$f { out.$f = v.clone(); })*
        };
    }
    config_fields!(apply);
    out
}

/// The form name of the first field the publish-options give that differs from the
/// node's configuration (§7.1.5).
pub fn precondition_mismatch(cfg: &NodeConfig, patch: &NodeConfigPatch) -> Option<&'static str> {
    macro_rules! check {
        ($($f:ident = $name:literal),* $(,)?) => {
            $(if let Some(v) = &patch.$f { if *v != cfg.$f { return Some($name); } })*
        };
    }
    config_fields!(check);
    None
}

/// `opts` with every field the patch gives replaced.
pub fn patch_options(opts: &SubOptions, patch: &SubOptionsPatch) -> SubOptions {
    let mut out = opts.clone();
    if let Some(v) = patch.deliver {
        out.deliver = v;
    }
    if let Some(v) = patch.digest {
        out.digest = v;
    }
    if let Some(v) = patch.digest_frequency {
        out.digest_frequency = v;
    }
    if let Some(v) = patch.expire {
        out.expire = v;
    }
    if let Some(v) = patch.include_body {
        out.include_body = v;
    }
    if let Some(v) = &patch.show_values {
        out.show_values = v.clone();
    }
    out
}

fn validate_options(opts: &SubOptions, now: Millis) -> Result<(), Error> {
    if opts.digest && opts.digest_frequency == 0 {
        return Err(Error::InvalidOptions(
            "pubsub#digest_frequency must be positive".to_owned(),
        ));
    }
    if opts.expire.is_some_and(|t| t <= now) {
        return Err(Error::InvalidOptions(
            "pubsub#expire is in the past".to_owned(),
        ));
    }
    Ok(())
}

/// Whether delivery to `sub` depends on its subscriber's presence: the node delivers by
/// presence, or the subscription accepts only some shows (which only presence can tell).
fn presence_bound(cfg: &NodeConfig, sub: &Subscription) -> bool {
    cfg.presence_based_delivery
        || !Show::ALL
            .iter()
            .all(|s| sub.options.show_values.contains(s))
}

/// Whether the service must learn `sub`'s subscriber's presence.
fn needs_presence(cfg: &NodeConfig, sub: &Subscription) -> bool {
    sub.state == SubscriptionState::Subscribed
        && (presence_bound(cfg, sub)
            || cfg.send_last_published_item == SendLastPublished::OnSubAndPresence)
}
