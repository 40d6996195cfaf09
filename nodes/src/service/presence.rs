//! Presence-bound delivery: who is online, whose presence the service needs, and the last
//! item for resources coming online (`on_sub_and_presence`).

use super::*;

impl<S: Store> Service<S> {
    /// Who is online, as the engine holds it.
    pub fn presence(&self) -> &PresenceTable {
        &self.presence
    }

    /// The service has just asked for `jid`'s presence: see
    /// [`PresenceTable::expect_answers`]. Changes nothing a fan-out reads.
    pub fn expect_presence_answers(&mut self, jid: BareJid, until: Millis) {
        self.presence.expect_answers(jid, until);
    }

    /// See [`PresenceTable::forget_answers`]. Changes nothing a fan-out reads.
    pub fn forget_presence_answers(&mut self, now: Millis) {
        self.presence.forget_answers(now);
    }

    /// `jid` went offline (e.g. a notification to it bounced): see
    /// [`PresenceTable::unavailable`].
    pub fn resource_unavailable(&mut self, jid: &FullJid) -> bool {
        self.settle();
        self.presence.unavailable(jid)
    }

    /// Every resource of `jid` went offline: see [`PresenceTable::all_unavailable`].
    pub fn all_unavailable(&mut self, jid: &BareJid) {
        self.settle();
        self.presence.all_unavailable(jid);
    }

    /// The link to the server was (re)established: nobody is known to be online until they
    /// say so again, and every user in [`Service::presence_wanted`] is to be probed (the
    /// returned set). Requests queued for the old link are dropped: the probes cover them.
    /// When the engine knew nobody (it just started, or was rebuilt from the store), who
    /// answers the probes may have been online all along and does not count as coming
    /// online ([`PresenceTable::assume_online`]) until [`Service::forget_stale_presence`].
    pub fn presence_reconnected(&mut self) -> BTreeSet<BareJid> {
        self.settle();
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
        self.settle();
        self.presence.forget_stale();
    }

    /// Forget everyone's presence (after the link was lost): see [`PresenceTable::clear`].
    pub fn clear_presence(&mut self) {
        self.settle();
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
        // Fan-outs being walked read who is online: settle them first.
        self.settle();
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
        let bare = jid.to_bare();
        // Each node the JID subscribes to, once, in NodeID order.
        let names: BTreeSet<&str> = self
            .state
            .nodes_subscribed_by(&bare)
            .map(|n| n.rec.name.as_str())
            .collect();
        let occasion = Occasion::Online {
            resource: jid,
            show,
        };
        let mut out = Vec::new();
        for name in names {
            let Some(n) = self.state.node(name) else {
                continue;
            };
            out.extend(self.last_item(n, occasion, Scope::Subscriber(&bare))?);
        }
        Ok(out)
    }

    /// The bare JIDs that became part of [`Service::presence_wanted`] since the last call
    /// (possibly again): each should be asked for a presence subscription.
    pub fn take_presence_requests(&mut self) -> BTreeSet<BareJid> {
        std::mem::take(&mut self.state.presence_requests)
    }
}
