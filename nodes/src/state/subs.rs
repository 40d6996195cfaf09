//! A node's subscriptions by subid, without a second copy of the subid as the key.
//!
//! A `BTreeMap<String, Subscription>` keeps every subid twice (key and `sub.subid`): at a
//! million subscriptions that is ~56 MB of strings and their heap blocks for nothing. Here
//! the subscription is its own key: ordered and looked up by its `subid` through
//! [`Borrow<str>`], with the map's methods the engine uses.

use crate::model::Subscription;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// A subscription ordered, compared and looked up by its subid only.
#[derive(Debug, Clone)]
struct BySubid(Subscription);

impl PartialEq for BySubid {
    fn eq(&self, other: &Self) -> bool {
        self.0.subid == other.0.subid
    }
}

impl Eq for BySubid {}

impl PartialOrd for BySubid {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BySubid {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.subid.cmp(&other.0.subid)
    }
}

// Consistent with `Ord`: both compare the subid as a `str`.
impl Borrow<str> for BySubid {
    fn borrow(&self) -> &str {
        &self.0.subid
    }
}

/// Subscriptions by subid, in subid order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SubMap(BTreeSet<BySubid>);

impl SubMap {
    /// The subscription with this subid.
    pub(crate) fn get(&self, subid: &str) -> Option<&Subscription> {
        self.0.get(subid).map(|s| &s.0)
    }

    /// True if a subscription has this subid.
    pub(crate) fn contains_key(&self, subid: &str) -> bool {
        self.0.contains(subid)
    }

    /// Inserts `sub` under its subid; returns the subscription it replaced.
    pub(crate) fn insert(&mut self, sub: Subscription) -> Option<Subscription> {
        self.0.replace(BySubid(sub)).map(|s| s.0)
    }

    /// Removes and returns the subscription with this subid.
    pub(crate) fn remove(&mut self, subid: &str) -> Option<Subscription> {
        self.0.take(subid).map(|s| s.0)
    }

    /// Every subscription, in subid order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter().map(|s| &s.0)
    }

    /// How many subscriptions there are.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Keeps only the subscriptions whose subid `keep` accepts.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|s| keep(&s.0.subid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SubOptions, SubscriptionState};
    use crate::Jid;

    fn sub(subid: &str, jid: &str) -> Subscription {
        Subscription {
            jid: Jid::new(jid).unwrap(),
            subid: subid.to_owned(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        }
    }

    #[test]
    fn behaves_like_a_map_by_subid() {
        let mut m = SubMap::default();
        assert!(m.insert(sub("b", "x@h")).is_none());
        assert!(m.insert(sub("a", "y@h")).is_none());
        // Same subid, another JID: replaced, and the old one is returned.
        assert_eq!(m.insert(sub("b", "z@h")).unwrap().jid.as_str(), "x@h");
        assert_eq!(m.len(), 2);
        assert_eq!(m.get("b").unwrap().jid.as_str(), "z@h");
        assert!(m.contains_key("a") && !m.contains_key("c"));
        let order: Vec<&str> = m.values().map(|s| s.subid.as_str()).collect();
        assert_eq!(order, ["a", "b"]);
        m.retain(|id| id != "a");
        assert!(m.get("a").is_none());
        assert_eq!(m.remove("b").unwrap().jid.as_str(), "z@h");
        assert!(m.remove("b").is_none());
        assert_eq!(m.len(), 0);
    }
}
