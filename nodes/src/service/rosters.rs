//! Node owners' rosters (XEP-0356), kept for the `presence` and `roster` access models: the
//! component feeds them through these methods, so the engine sees every change (and settles
//! the fan-outs being walked, which read the rosters, first).

use super::*;
use crate::roster::RosterItem;

impl<S: Store> Service<S> {
    /// The owners' rosters as the engine holds them.
    pub fn rosters(&self) -> &RosterTable {
        &self.rosters
    }

    /// The server granted (or withdrew) roster access: see [`RosterTable::set_granted`].
    pub fn set_roster_access(&mut self, granted: bool) {
        self.settle();
        self.rosters.set_granted(granted);
    }

    /// `owner`'s roster, freshly fetched: see [`RosterTable::replace`].
    pub fn roster_fetched(
        &mut self,
        owner: &BareJid,
        items: impl IntoIterator<Item = (BareJid, RosterItem)>,
        now: Millis,
    ) {
        self.settle();
        self.rosters.replace(owner, items, now);
    }

    /// A roster push: see [`RosterTable::push`].
    pub fn roster_pushed(&mut self, owner: &BareJid, contact: &BareJid, item: Option<RosterItem>) {
        self.settle();
        self.rosters.push(owner, contact, item);
    }

    /// Forget `owner`'s roster: see [`RosterTable::forget`].
    pub fn forget_roster(&mut self, owner: &BareJid) {
        self.settle();
        self.rosters.forget(owner);
    }
}
