//! Collections (XEP-0248) in the matching stage: the subscriptions of every collection
//! above the node, the root collection included, each with its distance, so that the
//! predicate applies `pubsub#subscription_type` and `pubsub#subscription_depth`.

use super::{Candidate, Matcher, Occurrence, Scope};
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
        match occ.scope {
            Scope::Via {
                sub,
                collection,
                depth,
            } => Box::new(std::iter::once(Candidate {
                node: collection,
                sub,
                depth,
            })),
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
                            Box::new(subs.map(move |sub| Candidate { node, sub, depth }));
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
