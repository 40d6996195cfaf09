//! Collections (XEP-0248) in the matching stage: the subscriptions of every collection
//! above the node, the root collection included, each with its distance, so that the
//! predicate applies `pubsub#subscription_type` and `pubsub#subscription_depth`.
//!
//! A filtered subscription to a collection (`x-roost#filter`, see [`super::content`])
//! hears of the leaves' items its filter matches on the occurrence's subject, and of
//! node news (purge, configuration, creation, association) whatever its filter.

use super::content::{Selection, Subject};
use super::{Candidate, Matcher, Occasion, Occurrence, Scope};
use crate::state::{JidRef, State};
use std::iter::Peekable;

/// The second matcher: the subscriptions of the collections above the node.
pub(crate) struct Ancestors;

impl Matcher for Ancestors {
    fn candidates<'s>(
        &self,
        state: &'s State,
        occ: &Occurrence<'s>,
        after: Option<&JidRef>,
    ) -> Box<dyn Iterator<Item = Candidate<'s>> + 's> {
        let (occasion, subject) = (occ.occasion, occ.subject);
        match occ.scope {
            Scope::Via {
                sub,
                collection,
                depth,
            } => Box::new(
                std::iter::once(Candidate {
                    node: collection,
                    sub,
                    depth,
                    matched: false,
                })
                .filter_map(move |c| selected(c, &occasion, subject)),
            ),
            Scope::Everyone if occ.occasion.reaches_collections() => {
                // Nothing of a node's items travels further than its own switches let it.
                if occ.occasion.about_items()
                    && !super::deliver::node_notifies(&occ.node.rec.config, &occ.occasion, true)
                {
                    return Box::new(std::iter::empty());
                }
                let streams: Vec<_> = state
                    .ancestors(occ.node)
                    .into_iter()
                    .filter(|(a, _)| a.sub_count() > 0)
                    .map(|(node, depth)| {
                        let subs = node.subs_after(after);
                        let it: Box<dyn Iterator<Item = Candidate<'s>> + 's> =
                            Box::new(subs.filter_map(move |sub| {
                                let c = Candidate {
                                    node,
                                    sub,
                                    depth,
                                    matched: false,
                                };
                                selected(c, &occasion, subject)
                            }));
                        it.peekable()
                    })
                    .collect();
                match streams.len() {
                    0 => Box::new(std::iter::empty()),
                    1 => Box::new(streams.into_iter().flatten()),
                    _ => Box::new(ByJid(streams)),
                }
            }
            _ => Box::new(std::iter::empty()),
        }
    }
}

/// `cand` as its content filter leaves it: unchanged when it has none or the news is of
/// the node; marked matched when its filter matches the item; `None` when it does not, or
/// when no subject was given (the safe side: less than asked for, never more).
fn selected<'s>(
    mut cand: Candidate<'s>,
    occasion: &Occasion<'_>,
    subject: Option<&Subject>,
) -> Option<Candidate<'s>> {
    if cand.sub.filter().is_none() || !occasion.concerns_items() {
        return Some(cand);
    }
    let subject = subject?;
    cand.matched = Selection::of(&cand.sub).accepts(subject.payload());
    cand.matched.then_some(cand)
}

type Stream<'s> = Peekable<Box<dyn Iterator<Item = Candidate<'s>> + 's>>;

/// Several collections' subscriptions merged into one stream in subscriber order, as a
/// matcher must yield them (each collection's are in that order already).
struct ByJid<'s>(Vec<Stream<'s>>);

impl<'s> Iterator for ByJid<'s> {
    type Item = Candidate<'s>;

    fn next(&mut self) -> Option<Candidate<'s>> {
        let mut best: Option<(usize, JidRef)> = None;
        for (i, s) in self.0.iter_mut().enumerate() {
            let Some(c) = s.peek() else {
                continue;
            };
            // Written out: `Option::is_none_or` is newer than the workspace's rust-version.
            let better = match &best {
                Some((_, j)) => c.sub.key.jid < *j,
                None => true,
            };
            if better {
                best = Some((i, c.sub.key.jid.clone()));
            }
        }
        self.0[best?.0].next()
    }
}
