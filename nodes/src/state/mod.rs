//! The engine's in-memory state: nodes with their affiliations and subscriptions, and the
//! indexes over them. Changed only by applying committed [`Change`]s, and built at start-up
//! from the store's rows ([`load`]) into the same state applying them would give, so
//! memory cannot drift from what the store holds.
//!
//! The representation is compact (`docs/benchmarks.md`, "Engine memory"): bare JIDs are
//! interned ([`jids`]), subids are numbers and default options are shared ([`subs`]); the
//! API speaks in views ([`Sub`]) and converts to [`Subscription`] at its edge.

use crate::matching::needs_presence;
use crate::model::*;
use crate::store::Change;
use crate::{BareJid, Jid, Millis};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod graph;
mod jids;
mod load;
mod subs;

pub(crate) use jids::JidRef;
use jids::{insert_num, insert_sorted, remove_num, remove_sorted, Jids};
pub(crate) use subs::{format as format_subid, Planned, Sub, SubKey, SubNum};
use subs::{SubTable, SubVal};

/// One node as the engine keeps it in memory (its items stay in the store).
#[derive(Debug)]
pub(crate) struct NodeState {
    pub(crate) rec: NodeRecord,
    pub(crate) counters: ItemCounters,
    affs: BTreeMap<JidRef, Affiliation>,
    subs: SubTable,
    /// How many of `subs` are in state subscribed, kept so metadata needs no scan.
    pub(crate) subscribed: u64,
}

impl NodeState {
    /// `jid`'s affiliation (admins not considered: the gate does that).
    pub(crate) fn aff(&self, jid: &BareJid) -> Affiliation {
        self.affs.get(jid).copied().unwrap_or(Affiliation::None)
    }

    /// Every affiliation other than `none`, in JID order.
    pub(crate) fn affs(&self) -> impl Iterator<Item = (&BareJid, Affiliation)> {
        self.affs.iter().map(|(j, a)| (j.bare(), *a))
    }

    /// The owners (explicit ones: admins are not listed).
    pub(crate) fn owners(&self) -> impl Iterator<Item = &BareJid> {
        self.affs()
            .filter(|(_, a)| *a == Affiliation::Owner)
            .map(|(j, _)| j)
    }

    /// Every subscription, by subscriber (JID order, bare before full).
    pub(crate) fn subs(&self) -> impl Iterator<Item = Sub<'_>> {
        self.subs.iter()
    }

    /// The subscriptions of subscribers after `jid` (all when `None`), in the same order:
    /// where a walk over the subscribers resumes.
    pub(crate) fn subs_after<'a>(
        &'a self,
        jid: Option<&JidRef>,
    ) -> impl Iterator<Item = Sub<'a>> + 'a {
        self.subs.after(jid)
    }

    /// [`NodeState::subs_after`] without the subscriptions that have a content filter:
    /// those an item reaches are found through [`NodeState::matching`].
    pub(crate) fn plain_subs_after<'a>(
        &'a self,
        jid: Option<&JidRef>,
    ) -> impl Iterator<Item = Sub<'a>> + 'a {
        self.subs.plain_after(jid)
    }

    /// Whether some subscription has a content filter.
    pub(crate) fn has_filters(&self) -> bool {
        self.subs.has_filters()
    }

    /// The keys of the subscriptions whose content filter matches `payload` (an item's
    /// serialized payload), in subscriber order: through the node's filter index, without
    /// testing every filter.
    pub(crate) fn matching(&self, payload: &str) -> Vec<SubKey> {
        self.subs.matching(payload)
    }

    /// How many subscriptions the node holds.
    pub(crate) fn sub_count(&self) -> usize {
        self.subs.len()
    }

    /// Whether `num` is the subid number of one of its subscriptions.
    pub(crate) fn has_subid_num(&self, num: SubNum) -> bool {
        self.subs.contains_num(num)
    }

    /// The subscription whose key is `key`.
    pub(crate) fn sub(&self, key: &SubKey) -> Option<Sub<'_>> {
        self.subs.get(key)
    }
}

/// Where a digest subscription stands.
#[derive(Debug, Clone)]
pub(crate) struct Digest {
    /// Items with a higher seq go into the next digest. Set when the subscription is
    /// applied, and by the first tick (items before it went out one by one).
    pub(crate) after_seq: u64,
    /// When the next digest is due; `None` until the first tick schedules it.
    pub(crate) due: Option<Millis>,
    /// For a subscription to a collection: the leaves it reached when the period began,
    /// by uid, each with its `after_seq`. A leaf associated during a period joins at the
    /// next one. Empty for a leaf's own subscriptions.
    pub(crate) leaves: BTreeMap<u64, u64>,
}

/// The uid of the root collection (XEP-0248 §root); node uids start at 1.
pub(crate) const ROOT_UID: u64 = 0;

/// Everything the engine keeps in memory about nodes, and the indexes over it.
#[derive(Debug)]
pub(crate) struct State {
    /// Bare JIDs whose presence became needed by an applied change (a subscription to a
    /// node that delivers by presence, or such a configuration): the component asks them
    /// for a presence subscription. Not durable: `presence_wanted` recomputes the whole
    /// set from the subscriptions.
    pub(crate) presence_requests: BTreeSet<BareJid>,
    nodes: BTreeMap<String, NodeState>,
    /// The root collection (XEP-0248 §root): the service itself, NodeID empty, uid
    /// [`ROOT_UID`]. Not among `nodes`: it is never listed, created, configured or
    /// deleted; it holds only subscriptions (stored under the empty NodeID). Every node
    /// without a parent is its child.
    root: NodeState,
    /// Collection NodeID → the NodeIDs whose `pubsub#collection` names it: where each
    /// collection's derived `pubsub#children` comes from (kept also for collections not
    /// loaded yet while loading).
    children_of: HashMap<String, BTreeSet<String>>,
    /// Node uid → NodeID, for changes keyed by uid.
    uids: HashMap<u64, String>,
    /// Every JID holding a subscription or an affiliation, interned, with what it holds.
    jids: Jids,
    /// The highest node uid ever handed out.
    pub(crate) last_uid: u64,
    /// Subscription leases (`pubsub#expire`) by end time, as (end, node uid, key): the
    /// tick reads only the ended ones. Rebuilt from the subscriptions on load.
    leases: BTreeSet<(Millis, u64, SubKey)>,
    /// Digest subscriptions (`pubsub#digest`), by (node uid, key). Not durable: after a
    /// restart a digest period starts afresh with the items published from then on.
    pub(crate) digests: BTreeMap<(u64, SubKey), Digest>,
}

impl Default for State {
    fn default() -> Self {
        State::new(0)
    }
}

impl State {
    /// An empty state whose uids continue after `last_uid`.
    pub(crate) fn new(last_uid: u64) -> Self {
        State {
            presence_requests: BTreeSet::new(),
            nodes: BTreeMap::new(),
            root: NodeState {
                rec: graph::root_record(),
                counters: ItemCounters::default(),
                affs: BTreeMap::new(),
                subs: SubTable::default(),
                subscribed: 0,
            },
            children_of: HashMap::new(),
            uids: HashMap::new(),
            jids: Jids::default(),
            last_uid,
            leases: BTreeSet::new(),
            digests: BTreeMap::new(),
        }
    }

    /// Apply one committed change to memory. Changes for nodes memory does not know
    /// (possible only in a corrupt snapshot) are skipped rather than trusted.
    pub(crate) fn apply_one(&mut self, c: &Change) {
        match c {
            Change::PutNode(rec) => self.put_node(rec.clone(), None),
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
            } => self.put_affiliation(node, jid, *affiliation),
            Change::PutSubscription { node, sub } => self.put_subscription(node, sub),
            Change::DeleteSubscription { node, jid, subid } => {
                self.delete_subscription(node, jid, subid)
            }
            // Items (and their expiry index) live in the store only; their bookkeeping
            // arrives as PutCounters.
            Change::PutItem { .. }
            | Change::DeleteItem { .. }
            | Change::PurgeItems { .. }
            | Change::TrimItems { .. }
            | Change::ScheduleExpiry { .. }
            | Change::UnscheduleExpiry { .. } => {}
        }
    }

    /// `Change::PutNode`; loading gives the record's `counters` too (a committed change leaves
    /// them as they are).
    fn put_node(&mut self, mut rec: NodeRecord, counters: Option<ItemCounters>) {
        if rec.name.is_empty() {
            return; // the root is the service's own: never stored
        }
        self.last_uid = self.last_uid.max(rec.uid);
        // `pubsub#children` is derived from the children's records, never taken as given.
        rec.config.children = self.children_list(&rec.name);
        let old_parents = match self.nodes.get(&rec.name) {
            Some(n) if n.rec.uid == rec.uid => n.rec.config.collection.clone(),
            Some(_) => {
                // A different node under the same name replaces the old one whole.
                self.remove_node(&rec.name.clone());
                Vec::new()
            }
            None => Vec::new(),
        };
        self.relink(&rec.name, &old_parents, &rec.config.collection);
        let name = rec.name.clone();
        if let Some(n) = self.nodes.get_mut(&name) {
            n.rec = rec;
            if let Some(c) = counters {
                n.counters = c;
            }
        } else {
            self.uids.insert(rec.uid, name.clone());
            self.nodes.insert(
                name.clone(),
                NodeState {
                    rec,
                    counters: counters.unwrap_or_default(),
                    affs: BTreeMap::new(),
                    subs: SubTable::default(),
                    subscribed: 0,
                },
            );
        }
        self.ask_presence(&name);
    }

    fn put_affiliation(&mut self, node: &str, jid: &BareJid, aff: Affiliation) {
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        let uid = n.rec.uid;
        if aff == Affiliation::None {
            n.affs.remove(jid);
            if let Some(h) = self.jids.holdings_mut(jid) {
                h.affs.retain(|(u, _)| *u != uid);
            }
            self.jids.release(jid);
            return;
        }
        let r = self.jids.intern(jid);
        n.affs.insert(r, aff);
        if let Some(h) = self.jids.holdings_mut(jid) {
            match h.affs.binary_search_by_key(&uid, |(u, _)| *u) {
                Ok(i) => h.affs[i].1 = aff,
                Err(i) => h.affs.insert(i, (uid, aff)),
            }
        }
    }

    /// `Change::PutSubscription`.
    pub(crate) fn put_subscription(&mut self, node: &str, sub: &Subscription) {
        let Some(n) = pick(&mut self.root, &mut self.nodes, node) else {
            return;
        };
        let uid = n.rec.uid;
        let owner = self.jids.intern(&sub.jid.to_bare());
        let (key, old, displaced) = n.subs.put(owner, sub);
        if let Some(old) = &old {
            if old.state == SubscriptionState::Subscribed {
                n.subscribed = n.subscribed.saturating_sub(1);
            }
            if let Some(end) = old.options().expire {
                self.leases.remove(&(end, uid, key.clone()));
            }
        } else if let Some(h) = self.jids.holdings_mut(&key.jid) {
            h.subs += 1;
            insert_sorted(&mut h.nodes, uid);
            insert_num(&mut h.nums, key.num);
        }
        if let Some((k, v)) = displaced {
            Self::unindex(
                &mut self.jids,
                &mut self.leases,
                &mut self.digests,
                n,
                &k,
                &v,
            );
        }
        if sub.state == SubscriptionState::Subscribed {
            n.subscribed += 1;
        }
        if let Some(end) = sub.options.expire {
            self.leases.insert((end, uid, key.clone()));
        }
        if sub.options.digest {
            let last_seq = n.counters.last_seq;
            let fresh = !self.digests.contains_key(&(uid, key.clone()));
            if fresh {
                let leaves = self
                    .node(node)
                    .map(|n| self.leaf_seqs(n, &sub.options))
                    .unwrap_or_default();
                self.digests.insert(
                    (uid, key.clone()),
                    Digest {
                        after_seq: last_seq,
                        due: None,
                        leaves,
                    },
                );
            }
        } else if !self.digests.is_empty() {
            self.digests.remove(&(uid, key.clone()));
        }
        let bare = key.jid.bare().clone();
        if self
            .node(node)
            .is_some_and(|n| self.sub_needs_presence(n, sub.state, &sub.options))
        {
            self.presence_requests.insert(bare);
        }
    }

    fn delete_subscription(&mut self, node: &str, jid: &Jid, subid: &str) {
        let Some(n) = pick(&mut self.root, &mut self.nodes, node) else {
            return;
        };
        let owner = self.jids.get(&jid.to_bare()).map(|(r, _)| r.clone());
        if let Some((k, v)) = n.subs.remove(owner.as_ref(), jid, subid) {
            Self::unindex(
                &mut self.jids,
                &mut self.leases,
                &mut self.digests,
                n,
                &k,
                &v,
            );
        }
    }

    /// Drop what the indexes hold for a subscription just removed from `n`.
    fn unindex(
        jids: &mut Jids,
        leases: &mut BTreeSet<(Millis, u64, SubKey)>,
        digests: &mut BTreeMap<(u64, SubKey), Digest>,
        n: &mut NodeState,
        key: &SubKey,
        val: &SubVal,
    ) {
        let uid = n.rec.uid;
        if val.state == SubscriptionState::Subscribed {
            n.subscribed = n.subscribed.saturating_sub(1);
        }
        if let Some(end) = val.options().expire {
            leases.remove(&(end, uid, key.clone()));
        }
        digests.remove(&(uid, key.clone()));
        let still_here = n.subs.of(&key.jid).next().is_some();
        if let Some(h) = jids.holdings_mut(&key.jid) {
            h.subs = h.subs.saturating_sub(1);
            remove_num(&mut h.nums, key.num);
            if !still_here {
                remove_sorted(&mut h.nodes, uid);
            }
        }
        jids.release(&key.jid);
    }

    fn remove_node(&mut self, name: &str) {
        let Some(n) = self.nodes.remove(name) else {
            return;
        };
        // Its children were dissociated by the same change set (`Service::delete`); what
        // is left of the relation is its own parents' lists.
        self.relink(name, &n.rec.config.collection, &[]);
        self.children_of.remove(name);
        let uid = n.rec.uid;
        self.uids.remove(&uid);
        for jid in n.affs.keys() {
            if let Some(h) = self.jids.holdings_mut(jid) {
                h.affs.retain(|(u, _)| *u != uid);
            }
            self.jids.release(jid);
        }
        for sub in n.subs.iter() {
            if let Some(end) = sub.options().expire {
                self.leases.remove(&(end, uid, sub.key.clone()));
            }
            self.digests.remove(&(uid, sub.key.clone()));
            if let Some(h) = self.jids.holdings_mut(sub.bare()) {
                h.subs = h.subs.saturating_sub(1);
                remove_sorted(&mut h.nodes, uid);
                remove_num(&mut h.nums, sub.key.num);
            }
            self.jids.release(sub.bare());
        }
    }

    // ------------------------------------------------------------------------- lookups

    /// The node named `name`; the empty NodeID is the root collection.
    pub(crate) fn node(&self, name: &str) -> Option<&NodeState> {
        if name.is_empty() {
            return Some(&self.root);
        }
        self.nodes.get(name)
    }

    /// The node whose uid is `uid` ([`ROOT_UID`]: the root collection).
    pub(crate) fn node_by_uid(&self, uid: u64) -> Option<&NodeState> {
        if uid == ROOT_UID {
            return Some(&self.root);
        }
        self.nodes.get(self.uids.get(&uid)?)
    }

    /// Whether a node is named `name`.
    pub(crate) fn has_node(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    /// Whether a node has uid `uid`.
    pub(crate) fn has_uid(&self, uid: u64) -> bool {
        self.uids.contains_key(&uid)
    }

    /// Every node, in NodeID order (the root collection is not one).
    pub(crate) fn nodes(&self) -> impl Iterator<Item = &NodeState> {
        self.nodes.values()
    }

    /// The interned `jid`, if it holds anything.
    pub(crate) fn jid(&self, jid: &BareJid) -> Option<&JidRef> {
        self.jids.get(jid).map(|(r, _)| r)
    }

    /// Subscriptions on `n` held by `bare` or any of its full JIDs (bare first, then full
    /// JIDs in order; by subid within each).
    pub(crate) fn jid_subs<'a>(
        &'a self,
        n: &'a NodeState,
        bare: &BareJid,
    ) -> impl Iterator<Item = Sub<'a>> + 'a {
        self.jid(bare).into_iter().flat_map(move |r| n.subs.of(r))
    }

    /// The subscription of exactly `jid` on `n` whose subid is `subid`.
    pub(crate) fn find_sub<'a>(
        &'a self,
        n: &'a NodeState,
        jid: &Jid,
        subid: &str,
    ) -> Option<Sub<'a>> {
        let owner = self.jid(&jid.to_bare())?;
        n.subs.find(owner, jid, subid)
    }

    /// Whether `bare` (or one of its full JIDs) holds a subscribed subscription on `n`.
    pub(crate) fn is_subscribed(&self, n: &NodeState, bare: &BareJid) -> bool {
        self.jid_subs(n, bare)
            .any(|s| s.state() == SubscriptionState::Subscribed)
    }

    /// Every subscription of `bare` (and its full JIDs), node by node in uid order.
    pub(crate) fn subscriptions_of<'a>(
        &'a self,
        bare: &BareJid,
    ) -> impl Iterator<Item = (&'a NodeState, Sub<'a>)> + 'a {
        self.jids.get(bare).into_iter().flat_map(move |(r, h)| {
            h.nodes
                .iter()
                .filter_map(move |uid| self.node_by_uid(*uid))
                .flat_map(move |n| n.subs.of(r).map(move |s| (n, s)))
        })
    }

    /// The nodes `bare` (or one of its full JIDs) subscribes to, in uid order.
    pub(crate) fn nodes_subscribed_by<'a>(
        &'a self,
        bare: &BareJid,
    ) -> impl Iterator<Item = &'a NodeState> + 'a {
        self.jids
            .get(bare)
            .into_iter()
            .flat_map(move |(_, h)| h.nodes.iter().filter_map(move |u| self.node_by_uid(*u)))
    }

    /// Whether `bare` (or one of its full JIDs) holds a subscription with subid number
    /// `num` on any node: a new subscription of `bare` must not get it, so that the subids
    /// meeting in one notification (XEP-0248: a leaf's and its collections') differ.
    pub(crate) fn subid_near(&self, bare: &BareJid, num: SubNum) -> bool {
        self.jids
            .get(bare)
            .is_some_and(|(_, h)| h.nums.binary_search(&num).is_ok())
    }

    /// How many subscriptions `bare` (and its full JIDs) holds across the service.
    pub(crate) fn subscription_count(&self, bare: &BareJid) -> u64 {
        self.jids.get(bare).map_or(0, |(_, h)| u64::from(h.subs))
    }

    /// Every affiliation of `bare` other than `none`, by node.
    pub(crate) fn affiliations_of<'a>(
        &'a self,
        bare: &BareJid,
    ) -> impl Iterator<Item = (&'a NodeState, Affiliation)> + 'a {
        self.jids.get(bare).into_iter().flat_map(move |(_, h)| {
            h.affs
                .iter()
                .filter_map(move |(uid, a)| Some((self.node_by_uid(*uid)?, *a)))
        })
    }

    /// The leases ended by `now`, as (node uid, key), earliest first.
    pub(crate) fn ended_leases(&self, now: Millis) -> Vec<(u64, SubKey)> {
        self.leases
            .iter()
            .take_while(|(end, _, _)| *end <= now)
            .map(|(_, uid, key)| (*uid, key.clone()))
            .collect()
    }

    /// Every owner of a presence or roster node: whose rosters the service keeps.
    pub(crate) fn roster_owners(&self) -> BTreeSet<BareJid> {
        self.nodes
            .values()
            .filter(|n| {
                matches!(
                    n.rec.config.access_model,
                    AccessModel::Presence | AccessModel::Roster
                )
            })
            .flat_map(|n| n.owners().cloned())
            .collect()
    }

    /// Every bare JID whose presence some subscription needs.
    pub(crate) fn presence_wanted(&self) -> BTreeSet<BareJid> {
        let mut out = BTreeSet::new();
        for n in self.nodes.values().chain(std::iter::once(&self.root)) {
            for sub in n.subs.iter() {
                if self.sub_needs_presence(n, sub.state(), sub.options()) {
                    out.insert(sub.bare().clone());
                }
            }
        }
        out
    }

    /// Whether some subscription of `bare` (or of one of its full JIDs) needs its presence.
    pub(crate) fn wants_presence(&self, bare: &BareJid) -> bool {
        self.subscriptions_of(bare)
            .any(|(n, s)| self.sub_needs_presence(n, s.state(), s.options()))
    }
}

/// The node named `name` among `nodes`, or `root` for the empty NodeID: borrows the two
/// fields only, so the caller may update the indexes beside it.
fn pick<'a>(
    root: &'a mut NodeState,
    nodes: &'a mut BTreeMap<String, NodeState>,
    name: &str,
) -> Option<&'a mut NodeState> {
    if name.is_empty() {
        Some(root)
    } else {
        nodes.get_mut(name)
    }
}
