//! Who is online, with which `show`: plain data, fed by the component from presence stanzas.

use crate::model::Show;
use crate::{BareJid, FullJid, Millis};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Available resources of each bare JID, with their `show`.
#[derive(Debug, Clone, Default)]
pub struct PresenceTable {
    online: HashMap<BareJid, BTreeMap<String, Show>>,
    /// Resources that were available before the last [`PresenceTable::clear`] and have not
    /// been heard of since: when one reports again (typically answering a probe after a
    /// reconnect) it was online all along, so it does not count as becoming available.
    stale: HashMap<BareJid, BTreeSet<String>>,
    /// Bare JIDs any of whose resources, when first heard of, were online all along: the
    /// service probed them when it started with no memory of who was online. Until
    /// [`PresenceTable::forget_stale`].
    stale_all: HashSet<BareJid>,
    /// Bare JIDs whose presence the service has just asked for, with when it stops waiting
    /// for the answer (see [`PresenceTable::expect_answers`]).
    answering: HashMap<BareJid, Millis>,
}

impl PresenceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// `jid` became (or stays) available with `show`. Returns true if it was not available before.
    pub fn available(&mut self, jid: &FullJid, show: Show) -> bool {
        let new = self
            .online
            .entry(jid.to_bare())
            .or_default()
            .insert(jid.resource().to_string(), show)
            .is_none();
        let stale = self.unstale(jid);
        let bare = jid.to_bare();
        new && !stale && !self.stale_all.contains(&bare) && !self.answering.contains_key(&bare)
    }

    /// The service has just asked for `jid`'s presence: it probed it, or the user approved
    /// the service's presence subscription, which the user's server follows with the
    /// presence of every available resource (RFC 6121 §4.3.2, §3.1.5). Resources that
    /// report until `until` answer that request: they were online already (when the user
    /// subscribed, so the last item of an `on_sub_and_presence` node reached them then),
    /// and do not count as coming online. Ends with [`PresenceTable::forget_answers`].
    pub fn expect_answers(&mut self, jid: BareJid, until: Millis) {
        let end = self.answering.entry(jid).or_insert(until);
        *end = (*end).max(until);
    }

    /// Stop taking presences as answers where that ended by `now` (see
    /// [`PresenceTable::expect_answers`]): a resource reporting later is coming online.
    pub fn forget_answers(&mut self, now: Millis) {
        if !self.answering.is_empty() {
            self.answering.retain(|_, until| *until > now);
        }
    }

    /// The service is about to learn `jid`'s presence with no memory of it (a probe after
    /// start-up): whatever resources report until
    /// [`PresenceTable::forget_stale`] were online already, and do not count as coming online.
    pub fn assume_online(&mut self, jid: BareJid) {
        self.stale_all.insert(jid);
    }

    /// True when the table knows nothing: nobody online, nobody remembered as stale.
    pub fn knows_nothing(&self) -> bool {
        self.online.is_empty() && self.stale.is_empty()
    }

    /// Drops `jid` from the stale set; true if it was there.
    fn unstale(&mut self, jid: &FullJid) -> bool {
        let bare = jid.to_bare();
        let Some(res) = self.stale.get_mut(&bare) else {
            return false;
        };
        let was = res.remove(jid.resource().as_str());
        if res.is_empty() {
            self.stale.remove(&bare);
        }
        was
    }

    /// `jid` went offline. Returns true if it was available.
    pub fn unavailable(&mut self, jid: &FullJid) -> bool {
        self.unstale(jid);
        let bare = jid.to_bare();
        let Some(res) = self.online.get_mut(&bare) else {
            return false;
        };
        let was = res.remove(jid.resource().as_str()).is_some();
        if res.is_empty() {
            self.online.remove(&bare);
        }
        was
    }

    /// Every resource of `jid` went offline (an unavailable presence from the bare JID).
    pub fn all_unavailable(&mut self, jid: &BareJid) {
        self.online.remove(jid);
        self.stale.remove(jid);
        self.stale_all.remove(jid);
    }

    /// The available resources of `jid`, with their show.
    pub fn resources(&self, jid: &BareJid) -> impl Iterator<Item = (&str, Show)> {
        self.online
            .get(jid)
            .into_iter()
            .flat_map(|m| m.iter().map(|(r, s)| (r.as_str(), *s)))
    }

    /// The show of one full JID, if it is available.
    pub fn show(&self, jid: &FullJid) -> Option<Show> {
        self.online
            .get(&jid.to_bare())
            .and_then(|m| m.get(jid.resource().as_str()))
            .copied()
    }

    /// Forget everyone: after the link to the server was lost, unavailable presences may
    /// have been missed, so nobody is known to be online until they say so again. Who was
    /// online is remembered as stale until [`PresenceTable::forget_stale`], so that their
    /// answers to probes do not count as coming online.
    pub fn clear(&mut self) {
        for (bare, res) in self.online.drain() {
            self.stale.entry(bare).or_default().extend(res.into_keys());
        }
    }

    /// Stop remembering who was online before the last [`PresenceTable::clear`]: called once
    /// probes had time to be answered, so that a later login counts as coming online.
    pub fn forget_stale(&mut self) {
        self.stale.clear();
        self.stale_all.clear();
    }

    /// True when nobody is known to be available.
    pub fn is_empty(&self) -> bool {
        self.online.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> FullJid {
        s.parse().unwrap()
    }

    #[test]
    fn resources_of_a_jid_assumed_online_do_not_come_online_until_forgotten() {
        let mut t = PresenceTable::new();
        assert!(t.knows_nothing());
        t.assume_online("a@x".parse().unwrap());
        assert!(
            !t.available(&full("a@x/1"), Show::Online),
            "answer to the start-up probe"
        );
        assert!(!t.available(&full("a@x/2"), Show::Online));
        assert!(t.available(&full("b@x/1"), Show::Online), "not assumed");
        assert!(!t.knows_nothing());
        t.forget_stale();
        t.unavailable(&full("a@x/1"));
        assert!(
            t.available(&full("a@x/1"), Show::Online),
            "a later login counts"
        );
    }

    #[test]
    fn resources_answering_a_request_for_presence_do_not_come_online_until_it_ends() {
        let mut t = PresenceTable::new();
        t.expect_answers("a@x".parse().unwrap(), 2_000);
        t.expect_answers("a@x".parse().unwrap(), 1_500);
        assert!(!t.available(&full("a@x/1"), Show::Online), "an answer");
        assert!(t.available(&full("b@x/1"), Show::Online), "not asked");
        t.forget_answers(1_999);
        assert!(!t.available(&full("a@x/2"), Show::Away), "still an answer");
        t.forget_answers(2_000);
        assert!(
            t.available(&full("a@x/3"), Show::Online),
            "a later login counts"
        );
        assert!(
            !t.available(&full("a@x/1"), Show::Chat),
            "a show change is no login"
        );
    }
}
