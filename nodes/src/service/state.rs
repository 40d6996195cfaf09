//! The in-memory state: applying committed changes, the indexes, and lookups.

use super::*;

impl<S: Store> Service<S> {
    /// Apply a committed change set to memory. Changes for nodes memory does not know
    /// (possible only in a corrupt snapshot) are skipped rather than trusted.
    pub(super) fn apply(&mut self, changes: &ChangeSet) {
        for c in &changes.0 {
            self.apply_one(c);
        }
    }

    pub(super) fn apply_one(&mut self, c: &Change) {
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
    pub(super) fn put_subscription(&mut self, node: &str, sub: Subscription) {
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

    pub(super) fn remove_node(&mut self, name: &str) {
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

    pub(super) fn node(&self, name: &str) -> Result<&NodeState, Error> {
        self.nodes.get(name).ok_or(Error::NodeNotFound)
    }

    pub(super) fn node_by_uid(&self, uid: u64) -> Option<&NodeState> {
        self.nodes.get(self.uids.get(&uid)?)
    }

    pub(super) fn is_admin(&self, jid: &BareJid) -> bool {
        self.policy.is_admin(jid)
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
    pub(super) fn jid_subs<'a>(
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

    pub(super) fn is_subscribed(&self, n: &NodeState, bare: &BareJid) -> bool {
        self.jid_subs(n, bare)
            .any(|s| s.state == SubscriptionState::Subscribed)
    }

    /// The one subscription a subscriber request is about (§6.2.3, §6.3.4).
    pub(super) fn resolve_sub<'a>(
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
    pub(super) fn fresh(&self, now: Millis) -> String {
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

    pub(super) fn fresh_subid(
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
}

pub(super) fn unindex_sub(
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

pub(super) fn unindex_aff(
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
