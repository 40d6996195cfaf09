//! The engine's in-memory state: nodes with their affiliations and subscriptions, and the
//! indexes over them. Changed only by applying committed [`Change`]s, which is also how the
//! snapshot is loaded, so memory cannot drift from what the store holds.

use crate::matching::needs_presence;
use crate::model::*;
use crate::store::Change;
use crate::{BareJid, Millis};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod subs;
use subs::SubMap;

/// One node as the engine keeps it in memory (its items stay in the store).
#[derive(Debug, Clone)]
pub(crate) struct NodeState {
    pub(crate) rec: NodeRecord,
    pub(crate) counters: ItemCounters,
    pub(crate) affs: BTreeMap<BareJid, Affiliation>,
    /// By subid.
    pub(crate) subs: SubMap,
    /// How many of `subs` are in state subscribed, kept so metadata needs no scan.
    pub(crate) subscribed: u64,
}

/// Where a digest subscription stands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Digest {
    /// Items with a higher seq go into the next digest. Set when the subscription is
    /// applied, and by the first tick (items before it went out one by one).
    pub(crate) after_seq: u64,
    /// When the next digest is due; `None` until the first tick schedules it.
    pub(crate) due: Option<Millis>,
}

/// Everything the engine keeps in memory about nodes, and the indexes over it.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Bare JIDs whose presence became needed by an applied change (a subscription to a
    /// node that delivers by presence, or such a configuration): the component asks them
    /// for a presence subscription. Not durable: `presence_wanted` recomputes the whole
    /// set from the subscriptions.
    pub(crate) presence_requests: BTreeSet<BareJid>,
    pub(crate) nodes: BTreeMap<String, NodeState>,
    /// Node uid → NodeID, for changes keyed by uid.
    pub(crate) uids: HashMap<u64, String>,
    /// Every subscription of a bare JID (of it or any of its full JIDs), as (node uid,
    /// subid): a JID's subscriptions are found without scanning nodes, and a node's
    /// subscriptions of one JID with a range query. By uid rather than NodeID so that a
    /// million entries do not hold a million copies of node names (`uids` maps back).
    pub(crate) subs_by_jid: HashMap<BareJid, BTreeSet<(u64, String)>>,
    /// Every affiliation of a bare JID, by node.
    pub(crate) affs_by_jid: HashMap<BareJid, BTreeMap<String, Affiliation>>,
    /// The highest node uid ever handed out.
    pub(crate) last_uid: u64,
    /// Subscription leases (`pubsub#expire`) by end time, as (end, node, subid): the tick
    /// reads only the ended ones. Rebuilt from the subscriptions on load.
    pub(crate) leases: BTreeSet<(Millis, String, String)>,
    /// Digest subscriptions (`pubsub#digest`), by (node, subid). Not durable: after a
    /// restart a digest period starts afresh with the items published from then on.
    pub(crate) digests: BTreeMap<(String, String), Digest>,
}

impl State {
    /// Apply one committed change to memory. Changes for nodes memory does not know
    /// (possible only in a corrupt snapshot) are skipped rather than trusted.
    pub(crate) fn apply_one(&mut self, c: &Change) {
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
    pub(crate) fn put_subscription(&mut self, node: &str, sub: Subscription) {
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

    pub(crate) fn remove_node(&mut self, name: &str) {
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

    /// The node named `name`.
    pub(crate) fn node(&self, name: &str) -> Option<&NodeState> {
        self.nodes.get(name)
    }

    /// The node whose uid is `uid`.
    pub(crate) fn node_by_uid(&self, uid: u64) -> Option<&NodeState> {
        self.nodes.get(self.uids.get(&uid)?)
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
            .flat_map(|n| {
                n.affs
                    .iter()
                    .filter(|(_, a)| **a == Affiliation::Owner)
                    .map(|(j, _)| j.clone())
            })
            .collect()
    }

    /// Subscriptions on `node` held by `bare` or any of its full JIDs.
    pub(crate) fn jid_subs<'a>(
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

    pub(crate) fn is_subscribed(&self, n: &NodeState, bare: &BareJid) -> bool {
        self.jid_subs(n, bare)
            .any(|s| s.state == SubscriptionState::Subscribed)
    }

    /// Every bare JID whose presence the service needs: subscribers of nodes with
    /// `presence_based_delivery` or `send_last_published_item=on_sub_and_presence`, and
    /// subscriptions narrowed by `pubsub#show-values`. Derived from the subscriptions, so
    /// it is as durable as they are and needs no storage of its own.
    pub(crate) fn presence_wanted(&self) -> BTreeSet<BareJid> {
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
    pub(crate) fn wants_presence(&self, bare: &BareJid) -> bool {
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
