//! The in-memory state: applying committed changes, the indexes, and lookups.

use super::*;

impl<S: Store> Service<S> {
    /// The node named `name`.
    pub(super) fn node(&self, name: &str) -> Result<&NodeState, Error> {
        self.state.node(name).ok_or(Error::NodeNotFound)
    }

    pub(super) fn is_admin(&self, jid: &BareJid) -> bool {
        self.policy.is_admin(jid)
    }

    /// Every owner of a presence or roster node: whose rosters the service keeps.
    pub fn roster_owners(&self) -> BTreeSet<BareJid> {
        self.state.roster_owners()
    }

    /// Every bare JID whose presence the service needs: subscribers of nodes with
    /// `presence_based_delivery` or `send_last_published_item=on_sub_and_presence`, and
    /// subscriptions narrowed by `pubsub#show-values`. Derived from the subscriptions, so
    /// it is as durable as they are and needs no storage of its own.
    pub fn presence_wanted(&self) -> BTreeSet<BareJid> {
        self.state.presence_wanted()
    }

    /// The one subscription a subscriber request is about (§6.2.3, §6.3.4).
    pub(super) fn resolve_sub<'a>(
        &'a self,
        n: &'a NodeState,
        jid: &Jid,
        subid: Option<&str>,
    ) -> Result<Sub<'a>, Error> {
        let mine: Vec<Sub<'a>> = self
            .state
            .jid_subs(n, &jid.to_bare())
            .filter(|s| s.key.is(jid))
            .collect();
        if mine.is_empty() {
            return Err(Error::NotSubscribed);
        }
        match subid.filter(|s| !s.is_empty()) {
            Some(id) => mine
                .into_iter()
                .find(|s| s.subid.is(id))
                .ok_or(Error::InvalidSubId),
            None if mine.len() > 1 => Err(Error::SubIdRequired),
            None => Ok(mine[0]),
        }
    }

    /// A fresh pseudo-random token for node names and subids. Uniqueness is checked by the
    /// caller; this only makes collisions unlikely and tokens hard to guess.
    pub(super) fn fresh(&self, now: Millis) -> String {
        format_subid(self.fresh_num(now))
    }

    /// An id for a new item. It grows with time (milliseconds, then a counter), so that a
    /// node's id index takes it at its end as its items take their seqs, and the store
    /// finds its place without a search (a reverse sled scan per publish otherwise, ~9 % of
    /// Roost's CPU per publish: docs/benchmarks.md). It tells the publish order and time,
    /// which whoever may see the item learns anyway (notifications arrive in order, archive
    /// results carry the time). A client may have used it already: it is still checked.
    pub(super) fn fresh_item_id(&self, now: Millis) -> String {
        format!("{:016x}", (now << 20) | (self.count() & 0xF_FFFF))
    }

    /// The next value of the counter that feeds generated names and ids.
    fn count(&self) -> u64 {
        let c = self.counter.get().wrapping_add(1);
        self.counter.set(c);
        c
    }

    /// [`Service::fresh`] as the number it spells.
    fn fresh_num(&self, now: Millis) -> u64 {
        let c = self.count();
        let mut z = now
            .rotate_left(17)
            .wrapping_add(c.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            ^ self.state.last_uid.rotate_left(41);
        // splitmix64 finaliser
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A subid for a new subscription of `who` to `n`: one that no subscription of `n`
    /// (nor one in `taken`, planned by the same request) has, nor any subscription on the
    /// other nodes `who` subscribes to (see [`crate::Subscription::subid`]).
    pub(super) fn fresh_subid(
        &self,
        n: &NodeState,
        who: &BareJid,
        taken: &BTreeMap<String, (Jid, Option<Subscription>)>,
        now: Millis,
    ) -> String {
        loop {
            let num = self.fresh_num(now);
            let id = format_subid(num);
            if !n.has_subid_num(num) && !taken.contains_key(&id) && !self.state.subid_near(who, num)
            {
                return id;
            }
        }
    }
}
