//! Presence-bound delivery: who is online, whose presence the service needs, and the last
//! item for resources coming online (`on_sub_and_presence`).

use super::*;

impl<S: Store> Service<S> {
    /// Who is online, as the engine holds it.
    pub fn presence(&self) -> &PresenceTable {
        &self.presence
    }

    /// `jid` went offline (e.g. a notification to it bounced): see
    /// [`PresenceTable::unavailable`].
    pub fn resource_unavailable(&mut self, jid: &FullJid) -> bool {
        self.presence.unavailable(jid)
    }

    /// Every resource of `jid` went offline: see [`PresenceTable::all_unavailable`].
    pub fn all_unavailable(&mut self, jid: &BareJid) {
        self.presence.all_unavailable(jid);
    }

    /// The link to the server was (re)established: nobody is known to be online until they
    /// say so again, and every user in [`Service::presence_wanted`] is to be probed (the
    /// returned set). Requests queued for the old link are dropped: the probes cover them.
    /// When the engine knew nobody (it just started, or was rebuilt from the store), who
    /// answers the probes may have been online all along and does not count as coming
    /// online ([`PresenceTable::assume_online`]) until [`Service::forget_stale_presence`].
    pub fn presence_reconnected(&mut self) -> BTreeSet<BareJid> {
        let fresh = self.presence.knows_nothing();
        self.presence.clear();
        self.state.presence_requests.clear();
        let wanted = self.presence_wanted();
        if fresh {
            for b in &wanted {
                self.presence.assume_online(b.clone());
            }
        }
        wanted
    }

    /// Forget who was online before the last reset: see [`PresenceTable::forget_stale`].
    pub fn forget_stale_presence(&mut self) {
        self.presence.forget_stale();
    }

    /// Forget everyone's presence (after the link was lost): see [`PresenceTable::clear`].
    pub fn clear_presence(&mut self) {
        self.presence.clear();
    }

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
        if !self.state.wants_presence(&jid.to_bare()) {
            return Ok(Vec::new());
        }
        if !self.presence.available(jid, show) {
            return Ok(Vec::new());
        }
        let full = Jid::from(jid.clone());
        let bare = jid.to_bare();
        let mut by_node: BTreeMap<&str, (Vec<String>, bool)> = BTreeMap::new();
        for (uid, subid) in self.state.subs_by_jid.get(&bare).into_iter().flatten() {
            let Some(n) = self.state.node_by_uid(*uid) else {
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
            let Some(n) = self.state.nodes.get(node) else {
                continue;
            };
            if let Some(last) = self.store.latest_items(n.rec.uid, Some(1))?.pop() {
                let publisher = last.publisher.clone();
                out.push(Notification {
                    to: full.clone(),
                    node: node.to_owned(),
                    subids,
                    kind: n.rec.config.notification_type,
                    include_body,
                    event: std::sync::Arc::new(items_event(&n.rec.config, vec![last], &publisher)),
                });
            }
        }
        Ok(out)
    }

    /// The bare JIDs that became part of [`Service::presence_wanted`] since the last call
    /// (possibly again): each should be asked for a presence subscription.
    pub fn take_presence_requests(&mut self) -> BTreeSet<BareJid> {
        std::mem::take(&mut self.state.presence_requests)
    }

    /// Where a notification for `sub` goes: the JID as subscribed or, when its delivery
    /// depends on presence, each available resource (of a bare JID; only the resource
    /// itself for a full JID) whose show the subscription accepts. Full JIDs, so that
    /// the server never stores one offline.
    pub(super) fn targets(&self, cfg: &NodeConfig, sub: &Subscription) -> Vec<Jid> {
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
}
