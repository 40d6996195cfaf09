//! Node owners' rosters: plain data, fed by the component (XEP-0356 roster get and roster
//! pushes), read by the `presence` and `roster` access models (§4.5).
//!
//! The engine never asks the server for anything. When a decision needs the roster of an
//! owner it has not been given yet, [`crate::access::decide`] answers
//! [`crate::access::Decision::NeedRosters`] and the request fails with
//! [`crate::Error::RosterNeeded`]; the component fetches the rosters and asks again.
//!
//! Rosters exist only while the server grants the service roster access
//! ([`RosterTable::set_granted`]). Without it every roster is forgotten and the two models
//! refuse everyone who is not affiliated: losing the privilege closes nodes, it never
//! opens them.

use crate::{BareJid, Millis};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// The presence subscription between a roster's owner and one contact (RFC 6121 §2.1.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RosterSubscription {
    /// Neither sees the other's presence.
    None,
    /// The owner sees the contact's presence.
    To,
    /// The contact sees the owner's presence.
    From,
    /// Both see each other's presence.
    Both,
}

impl RosterSubscription {
    /// True when the contact is subscribed to the owner's presence (`from` or `both`):
    /// what the `presence` access model asks for (§4.5).
    pub fn contact_sees_owner(self) -> bool {
        matches!(self, RosterSubscription::From | RosterSubscription::Both)
    }
}

impl FromStr for RosterSubscription {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "none" => RosterSubscription::None,
            "to" => RosterSubscription::To,
            "from" => RosterSubscription::From,
            "both" => RosterSubscription::Both,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for RosterSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RosterSubscription::None => "none",
            RosterSubscription::To => "to",
            RosterSubscription::From => "from",
            RosterSubscription::Both => "both",
        })
    }
}

/// One contact in an owner's roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterItem {
    /// The presence subscription state.
    pub subscription: RosterSubscription,
    /// The roster groups the owner put the contact in.
    pub groups: BTreeSet<String>,
}

/// One owner's roster as last fetched, with the pushes applied since.
#[derive(Debug, Clone, Default)]
struct OwnerRoster {
    /// When the roster was last fetched in full (its answer received).
    fetched: Millis,
    contacts: HashMap<BareJid, RosterItem>,
}

/// What an entity is to a node's owners, from their rosters: what the `presence` and
/// `roster` access models decide on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RosterStanding {
    /// Some owner's roster grants the entity a subscription to the owner's presence.
    pub sees_presence: bool,
    /// Every roster group some owner put the entity in.
    pub groups: BTreeSet<String>,
    /// Owners whose roster is not known yet, or was fetched before the request being decided
    /// arrived (see [`RosterTable::deciding_at`]): until it is fetched, a refusal may be wrong.
    pub missing: Vec<BareJid>,
}

/// The rosters of node owners, by owner.
#[derive(Debug, Clone, Default)]
pub struct RosterTable {
    granted: bool,
    rosters: HashMap<BareJid, OwnerRoster>,
    /// When the request being decided arrived: only rosters fetched since may refuse it.
    deciding_at: Millis,
}

impl RosterTable {
    /// An empty table, without roster access.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the server grants the service roster access (XEP-0356 roster `get` or
    /// `both`). Without it the `presence` and `roster` access models are neither offered
    /// nor accepted, and nodes that have one refuse everyone but their affiliates.
    pub fn granted(&self) -> bool {
        self.granted
    }

    /// The server granted (or withdrew) roster access. Withdrawing forgets every roster,
    /// and so does a new grant (the rosters may have changed while nobody pushed them).
    pub fn set_granted(&mut self, granted: bool) {
        self.granted = granted;
        self.rosters.clear();
    }

    /// Replace `owner`'s roster with a freshly fetched one. Ignored without roster access.
    pub fn replace(
        &mut self,
        owner: &BareJid,
        items: impl IntoIterator<Item = (BareJid, RosterItem)>,
        now: Millis,
    ) {
        if !self.granted {
            return;
        }
        self.rosters.insert(
            owner.clone(),
            OwnerRoster {
                fetched: now,
                contacts: items.into_iter().collect(),
            },
        );
    }

    /// A roster push for `owner`: `item` is the contact's new entry, `None` when it was
    /// removed. A push for a roster never fetched is ignored: the fetch brings it whole.
    pub fn push(&mut self, owner: &BareJid, contact: &BareJid, item: Option<RosterItem>) {
        let Some(r) = self.rosters.get_mut(owner) else {
            return;
        };
        match item {
            Some(item) => {
                r.contacts.insert(contact.clone(), item);
            }
            None => {
                r.contacts.remove(contact);
            }
        }
    }

    /// True when `owner`'s roster is known.
    pub fn has(&self, owner: &BareJid) -> bool {
        self.rosters.contains_key(owner)
    }

    /// `owner`'s entry for `contact`, if the roster is known and lists it.
    pub fn item(&self, owner: &BareJid, contact: &BareJid) -> Option<&RosterItem> {
        self.rosters.get(owner)?.contacts.get(contact)
    }

    /// Owners whose roster was fetched before `before`, to refresh: servers that send no
    /// roster pushes leave a fetched roster unchanged however the user edits it.
    pub fn fetched_before(&self, before: Millis) -> Vec<BareJid> {
        self.rosters
            .iter()
            .filter(|(_, r)| r.fetched < before)
            .map(|(o, _)| o.clone())
            .collect()
    }

    /// The request about to be decided arrived at `at`. Rosters fetched before then still
    /// admit whom they list, but a refusal waits for a copy fetched since
    /// ([`RosterStanding::missing`] names the older ones): so a contact the owner has just
    /// approved or filed in a group is never turned away by a copy that predates it, even
    /// by servers that push no roster changes. (Fetched means the answer was received: the
    /// server sends it after it routed every request that reached the service before it.
    /// To the millisecond: an answer received within the request's millisecond counts.)
    pub fn deciding_at(&mut self, at: Millis) {
        self.deciding_at = at;
    }

    /// Forget `owner`'s roster (it owns no node that needs it any more).
    pub fn forget(&mut self, owner: &BareJid) {
        self.rosters.remove(owner);
    }

    /// What `who` is to the owners `owners`, from their rosters.
    pub fn standing<'a>(
        &self,
        owners: impl IntoIterator<Item = &'a BareJid>,
        who: &BareJid,
    ) -> RosterStanding {
        let mut s = RosterStanding::default();
        for owner in owners {
            match self.rosters.get(owner) {
                None => s.missing.push(owner.clone()),
                Some(r) => {
                    if r.fetched < self.deciding_at {
                        s.missing.push(owner.clone());
                    }
                    if let Some(item) = r.contacts.get(who) {
                        s.sees_presence |= item.subscription.contact_sees_owner();
                        s.groups.extend(item.groups.iter().cloned());
                    }
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    fn item(sub: RosterSubscription, groups: &[&str]) -> RosterItem {
        RosterItem {
            subscription: sub,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_is_kept_without_the_grant() {
        let mut t = RosterTable::new();
        t.replace(
            &j("o@x"),
            [(j("c@x"), item(RosterSubscription::Both, &[]))],
            1,
        );
        assert!(!t.has(&j("o@x")));
        t.set_granted(true);
        t.replace(
            &j("o@x"),
            [(j("c@x"), item(RosterSubscription::Both, &[]))],
            1,
        );
        assert!(t.has(&j("o@x")));
        // Losing the grant forgets every roster.
        t.set_granted(false);
        assert!(!t.has(&j("o@x")));
        assert_eq!(t.standing([&j("o@x")], &j("c@x")).missing, vec![j("o@x")]);
    }

    #[test]
    fn standing_unions_the_owners_rosters() {
        let mut t = RosterTable::new();
        t.set_granted(true);
        t.replace(
            &j("a@x"),
            [
                (j("c@x"), item(RosterSubscription::To, &["Friends"])),
                (j("d@x"), item(RosterSubscription::From, &[])),
            ],
            1,
        );
        t.replace(
            &j("b@x"),
            [(j("c@x"), item(RosterSubscription::Both, &["Work"]))],
            1,
        );
        let s = t.standing([&j("a@x"), &j("b@x")], &j("c@x"));
        assert!(s.sees_presence);
        assert_eq!(
            s.groups.into_iter().collect::<Vec<_>>(),
            vec!["Friends".to_string(), "Work".to_string()]
        );
        assert!(s.missing.is_empty());
        // `to` alone: the owner sees the contact, not the other way round.
        let s = t.standing([&j("a@x")], &j("c@x"));
        assert!(!s.sees_presence);
        let s = t.standing([&j("a@x"), &j("z@x")], &j("d@x"));
        assert!(s.sees_presence);
        assert_eq!(s.missing, vec![j("z@x")]);
    }

    #[test]
    fn pushes_update_and_remove_entries_of_known_rosters_only() {
        let mut t = RosterTable::new();
        t.set_granted(true);
        t.push(
            &j("o@x"),
            &j("c@x"),
            Some(item(RosterSubscription::Both, &[])),
        );
        assert!(!t.has(&j("o@x")));
        t.replace(&j("o@x"), [], 5);
        t.push(
            &j("o@x"),
            &j("c@x"),
            Some(item(RosterSubscription::Both, &["G"])),
        );
        assert_eq!(t.item(&j("o@x"), &j("c@x")).unwrap().groups.len(), 1);
        t.push(&j("o@x"), &j("c@x"), None);
        assert!(t.item(&j("o@x"), &j("c@x")).is_none());
        assert_eq!(t.fetched_before(6), vec![j("o@x")]);
        assert!(t.fetched_before(5).is_empty());
        t.forget(&j("o@x"));
        assert!(!t.has(&j("o@x")));
    }

    #[test]
    fn a_roster_older_than_the_request_admits_but_does_not_refuse() {
        let mut t = RosterTable::new();
        t.set_granted(true);
        t.replace(
            &j("o@x"),
            [(j("c@x"), item(RosterSubscription::From, &[]))],
            10,
        );
        t.deciding_at(10);
        assert!(t.standing([&j("o@x")], &j("c@x")).missing.is_empty());
        // A request that arrived after the fetch, however soon after.
        t.deciding_at(11);
        let s = t.standing([&j("o@x")], &j("c@x"));
        assert!(s.sees_presence);
        assert_eq!(s.missing, vec![j("o@x")]);
        // A copy fetched after it arrived may refuse it.
        t.replace(&j("o@x"), [], 12);
        assert!(t.standing([&j("o@x")], &j("c@x")).missing.is_empty());
    }
}
