//! Content filters in the matching stage (XEP-0060 §12 "Content-Based Pubsub Systems",
//! Roost feature `urn:roost:filter:0`).
//!
//! A subscription with a filter (`x-roost#filter`) hears of an item (its publication, its
//! retraction, as the last item, in a digest) only when the filter matches the item's
//! payload; of the node (purge, configuration, deletion) always. [`ContentFilters`] yields
//! exactly the filtered subscriptions whose filter matches [`Occurrence::subject`]: for a
//! broadcast through the node's [`FilterIndex`](crate::filter::FilterIndex), so that an
//! item costs in proportion to what it matches, not to the number of filters; for one
//! subscriber or one subscription by evaluating their few filters. The node's own
//! unfiltered subscriptions come from [`super::OwnSubscriptions`]; the filtered
//! subscriptions of the collections above the node (XEP-0248) from
//! [`super::collections::Ancestors`], which evaluates their filters on the same subject
//! (a collection's filter selects among the items of every leaf below it).

use super::{deliver, Candidate, Matcher, Occurrence, Scope};
use crate::filter::Filter;
use crate::state::{JidRef, NodeState, State, Sub, SubKey};
use std::sync::OnceLock;

/// The item an occurrence is about, as content filters read it: its payload (the stored
/// one, also when the node does not deliver payloads).
///
/// A subject belongs to one occurrence on one node. For a broadcast it remembers which of
/// the node's filtered subscriptions the item matched, for the length of the walk: a walk
/// in chunks asks again at every chunk, and the state does not change while a walk is
/// unfinished (it is settled first).
#[derive(Debug)]
pub(crate) struct Subject {
    payload: String,
    matched: OnceLock<Vec<SubKey>>,
}

impl Subject {
    /// The subject for an item with `payload` (serialized XML).
    pub(crate) fn new(payload: String) -> Self {
        Subject {
            payload,
            matched: OnceLock::new(),
        }
    }

    /// The item's payload.
    pub(crate) fn payload(&self) -> &str {
        &self.payload
    }

    /// The payload back, once matching is done.
    pub(crate) fn into_payload(self) -> String {
        self.payload
    }

    /// The keys of `node`'s filtered subscriptions the item matches, in subscriber order.
    fn matched(&self, node: &NodeState) -> &[SubKey] {
        self.matched.get_or_init(|| node.matching(&self.payload))
    }
}

/// What a subscription's filter selects: every item (no filter), the items its filter
/// matches, or none (a stored filter that no longer parses: a corrupt record; sending
/// less than asked for is the safe side).
pub(crate) enum Selection {
    All,
    Matching(Filter),
    Nothing,
}

impl Selection {
    /// The selection of `sub`.
    pub(crate) fn of(sub: &Sub<'_>) -> Self {
        match sub.filter().map(Filter::parse_stored) {
            None => Selection::All,
            Some(Ok(f)) => Selection::Matching(f),
            Some(Err(_)) => Selection::Nothing,
        }
    }

    /// Whether an item with `payload` is selected.
    pub(crate) fn accepts(&self, payload: &str) -> bool {
        match self {
            Selection::All => true,
            Selection::Matching(f) => f.matches_payload(payload),
            Selection::Nothing => false,
        }
    }
}

/// The matcher of filtered subscriptions: those whose filter matches the subject.
pub(crate) struct ContentFilters;

impl Matcher for ContentFilters {
    fn candidates<'s>(
        &self,
        state: &'s State,
        occ: &Occurrence<'s>,
        after: Option<&JidRef>,
    ) -> Box<dyn Iterator<Item = Candidate<'s>> + 's> {
        let node = occ.node;
        let (true, Some(subject)) = (occ.occasion.concerns_items(), occ.subject) else {
            return Box::new(std::iter::empty());
        };
        if !deliver::node_notifies(&node.rec.config, &occ.occasion, false) {
            return Box::new(std::iter::empty());
        }
        let cand = move |sub: Sub<'s>| Candidate {
            node,
            sub,
            depth: 0,
            matched: true,
        };
        let accepted = move |sub: &Sub<'s>| {
            sub.filter().is_some() && Selection::of(sub).accepts(subject.payload())
        };
        match occ.scope {
            Scope::One(sub) => Box::new(std::iter::once(sub).filter(accepted).map(cand)),
            Scope::Subscriber(bare) => {
                Box::new(state.jid_subs(node, bare).filter(accepted).map(cand))
            }
            Scope::Everyone => {
                if !node.has_filters() {
                    return Box::new(std::iter::empty());
                }
                let keys = subject.matched(node);
                let start = after.map_or(0, |j| keys.partition_point(|k| k.jid <= *j));
                Box::new(keys[start..].iter().filter_map(|k| node.sub(k)).map(cand))
            }
            // A collection's subscriptions are evaluated by `super::collections::Ancestors`.
            Scope::Via { .. } => Box::new(std::iter::empty()),
        }
    }
}
