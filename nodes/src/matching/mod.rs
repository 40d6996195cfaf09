//! The matching stage: where an event meets the subscriptions it reaches.
//!
//! Every notification to subscribers goes through here, whatever caused it (a publish, a
//! retraction, an expiry, a purge, a deletion, a reconfiguration, a new subscription, a
//! resource coming online, a digest falling due):
//!
//! 1. the use case says what happened as an [`Occurrence`]: the node, the [`Occasion`] and
//!    whose subscriptions are asked about ([`Scope`]);
//! 2. the [`Matcher`]s find the candidate subscriptions. The node's own subscriptions
//!    ([`OwnSubscriptions`]) are the first matcher; content filters
//!    ([`content::ContentFilters`]: the node's filtered subscriptions whose filter matches
//!    the item, found through the node's index) the second; the subscriptions of the
//!    collections above the node (XEP-0248, [`collections::Ancestors`], their filters
//!    evaluated on the item) the third; a new matcher plugs in beside them, without any
//!    use case changing;
//! 3. the one predicate, [`deliver::deliver`], decides for each candidate whether it is
//!    delivered and at which JIDs;
//! 4. [`recipients`] groups what is delivered into one [`Recipient`] per JID, with the
//!    subids of exactly the subscriptions that matched (§12.5: SHIM headers when several),
//!    so a subscriber reached through several matchers (a leaf and its ancestors, several
//!    filters) still gets one notification.

pub(crate) mod collections;
pub(crate) mod content;
pub(crate) mod deliver;

use crate::presence::PresenceTable;
use crate::state::{JidRef, NodeState, State, Sub};
use crate::store::Change;
use crate::{BareJid, FullJid, Jid};

pub(crate) use content::Subject;

pub(crate) use deliver::{needs_presence, presence_bound};

/// Why subscribers may hear of something: it decides which node switches and which
/// subscription options apply (see [`deliver::deliver`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Occasion<'a> {
    /// Items were published (§7.1.2). Digest subscriptions get them batched instead, once
    /// the clock runs.
    Publish,
    /// Items were retracted (§7.2.2), or expired. `requested`: the retract request asked
    /// for notification (its `notify` attribute).
    Retract { requested: bool },
    /// The node was purged (§8.5.2).
    Purge,
    /// The node was deleted (§8.4.2).
    Delete,
    /// The node was reconfigured (§8.2.5.5).
    Configure,
    /// The last published item, to a new subscription (§6.1.7,
    /// `pubsub#send_last_published_item`).
    Subscribed,
    /// The last published item, to a resource that came online with `show`
    /// (`send_last_published_item=on_sub_and_presence`).
    Online {
        resource: &'a FullJid,
        show: crate::model::Show,
    },
    /// A digest falling due: the items of a period, to one digest subscription
    /// (`pubsub#digest`).
    Digest,
    /// The node was created (XEP-0248 §notify-nodes: to the collections above it).
    Create,
    /// `child` was associated with the node, a collection, or dissociated from it
    /// (XEP-0248 §notify-associate-dissociate; the event says which).
    Collection { child: &'a NodeState },
}

impl Occasion<'_> {
    /// Whether it is news of items (published, retracted, purged; XEP-0248
    /// `subscription_type` `items`) rather than of nodes (`nodes`).
    pub(crate) fn about_items(&self) -> bool {
        match self {
            Occasion::Publish
            | Occasion::Retract { .. }
            | Occasion::Purge
            | Occasion::Subscribed
            | Occasion::Online { .. }
            | Occasion::Digest => true,
            Occasion::Delete
            | Occasion::Configure
            | Occasion::Create
            | Occasion::Collection { .. } => false,
        }
    }

    /// How far below the occurrence's node the node the news is about lies: 1 for an
    /// association (it is about a child), else 0.
    pub(crate) fn offset(&self) -> u64 {
        u64::from(matches!(self, Occasion::Collection { .. }))
    }

    /// Whether the subscriptions of the collections above the node hear of it: not of a
    /// new subscription's or a resource's last item, nor of a digest (which asks about
    /// one subscription, [`Scope::Via`]).
    pub(crate) fn reaches_collections(&self) -> bool {
        !matches!(
            self,
            Occasion::Subscribed | Occasion::Online { .. } | Occasion::Digest
        )
    }

    /// Whether it is about particular items (published, retracted, a last item, a
    /// digest's), which content filters select; purge, deletion and configuration are
    /// news of the node and reach every subscription whatever its filter.
    pub(crate) fn concerns_items(&self) -> bool {
        match self {
            Occasion::Publish
            | Occasion::Retract { .. }
            | Occasion::Subscribed
            | Occasion::Online { .. }
            | Occasion::Digest => true,
            Occasion::Purge
            | Occasion::Delete
            | Occasion::Configure
            | Occasion::Create
            | Occasion::Collection { .. } => false,
        }
    }
}

/// Whose subscriptions an occurrence is asked about.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// Every subscription it reaches: a broadcast.
    Everyone,
    /// The subscriptions of one bare JID (and of its full JIDs).
    Subscriber(&'a BareJid),
    /// One subscription, which need not be applied yet (the one a subscribe creates).
    One(Sub<'a>),
    /// One subscription of a collection `depth` above the node (a collection digest).
    Via {
        sub: Sub<'a>,
        collection: &'a NodeState,
        depth: u64,
    },
}

/// Something that happened on a node, as the matching stage sees it.
#[derive(Clone, Copy)]
pub(crate) struct Occurrence<'a> {
    /// Where it happened.
    pub node: &'a NodeState,
    /// What it is for subscribers.
    pub occasion: Occasion<'a>,
    /// Whose subscriptions are asked about.
    pub scope: Scope<'a>,
    /// The item it is about, for content filters: given when the occasion concerns items
    /// and a filtered subscription may be among the candidates. Without it no filtered
    /// subscription hears of the occasion.
    pub subject: Option<&'a Subject>,
}

/// A subscription an occurrence may reach, as a matcher found it.
#[derive(Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// The node the subscription is to: the occurrence's node for [`OwnSubscriptions`],
    /// an ancestor for collections.
    pub node: &'a NodeState,
    /// The subscription.
    pub sub: Sub<'a>,
    /// How far `node` is above the occurrence's node: 0 for the node's own subscriptions.
    pub depth: u64,
    /// Its content filter matched the occurrence's item: set by the matchers that
    /// evaluate filters ([`content::ContentFilters`], [`collections::Ancestors`]). The
    /// predicate refuses a filtered subscription any item not so matched, whichever
    /// matcher offers it.
    pub matched: bool,
}

impl Candidate<'_> {
    /// Whether it reaches the occurrence through a collection (XEP-0248).
    pub(crate) fn via_collection(&self) -> bool {
        self.depth > 0
    }
}

/// A source of the subscriptions an occurrence may reach.
///
/// Matchers yield candidates grouped by subscriber: all of one bare JID's candidates
/// together, bare JIDs in order. The stage merges matchers on that order and groups each
/// subscriber's candidates into one notification per recipient JID. A matcher that keeps
/// an index of its own (a content filter's predicate index) keeps it in step through
/// [`Matcher::applied`], which sees every committed change after the state applied it.
pub(crate) trait Matcher: Send {
    /// The candidates `occ` may reach through this matcher, as described above, from the
    /// subscribers after `after` on (all when `None`): a walk resumes there. The predicate
    /// decides afterwards; a matcher only finds.
    fn candidates<'s>(
        &self,
        state: &'s State,
        occ: &Occurrence<'s>,
        after: Option<&JidRef>,
    ) -> Box<dyn Iterator<Item = Candidate<'s>> + 's>;

    /// The state was loaded from the store: build any index from it.
    fn loaded(&mut self, state: &State) {
        let _ = state;
    }

    /// A committed change was applied to `state`.
    fn applied(&mut self, state: &State, change: &Change) {
        let _ = (state, change);
    }
}

/// The first matcher: the node's own subscriptions.
pub(crate) struct OwnSubscriptions;

impl Matcher for OwnSubscriptions {
    fn candidates<'s>(
        &self,
        state: &'s State,
        occ: &Occurrence<'s>,
        after: Option<&JidRef>,
    ) -> Box<dyn Iterator<Item = Candidate<'s>> + 's> {
        let node = occ.node;
        if !deliver::node_notifies(&node.rec.config, &occ.occasion, false) {
            return Box::new(std::iter::empty());
        }
        let cand = move |sub: Sub<'s>| Candidate {
            node,
            sub,
            depth: 0,
            matched: false,
        };
        // Filtered subscriptions hear of items through the content matcher only.
        let items = occ.occasion.concerns_items();
        let plain = move |sub: &Sub<'s>| !items || sub.filter().is_none();
        match occ.scope {
            Scope::One(sub) => Box::new(std::iter::once(sub).filter(plain).map(cand)),
            Scope::Subscriber(bare) => Box::new(state.jid_subs(node, bare).filter(plain).map(cand)),
            // A node's subscriptions are kept by subscriber already, the filtered ones
            // apart: an item's walk never passes them.
            Scope::Everyone if items => Box::new(node.plain_subs_after(after).map(cand)),
            Scope::Everyone => Box::new(node.subs_after(after).map(cand)),
            Scope::Via { .. } => Box::new(std::iter::empty()),
        }
    }
}

/// What the predicate asks of the service around the state: presence, the access gate,
/// the clock.
pub(crate) trait Context {
    /// Who is online, with which show.
    fn presence(&self) -> &PresenceTable;
    /// Whether the access gate still lets `subscriber` receive `node`'s notifications.
    fn admitted(&self, node: &NodeState, subscriber: &BareJid) -> bool;
    /// Whether `subscriber` may hear of `node` through a collection: read its items
    /// (`items`), or see it (news of the node itself). The collection's access model
    /// decides who subscribes to the collection; what reaches them is the node's to say.
    fn reaches(&self, node: &NodeState, subscriber: &BareJid, items: bool) -> bool;
    /// Whether something runs the clock: until then digests cannot fall due.
    fn clock_running(&self) -> bool;
}

/// One recipient of a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Where it goes: as subscribed, or an available resource for presence-bound delivery.
    pub to: Jid,
    /// The subids of the recipient's subscriptions it is for.
    pub subids: Vec<String>,
    /// Add a `<body/>` summary (`pubsub#include_body` of any of them).
    pub include_body: bool,
    /// Name the subids (SHIM headers) even when there is one: a content filter matched,
    /// and its subscriber needs to know which.
    pub name_subids: bool,
    /// The collections it reaches the recipient through (XEP-0248: SHIM `Collection`
    /// headers), in NodeID order; the root collection is the empty NodeID. Empty when
    /// it reaches it only through the node's own subscriptions.
    pub collections: Vec<String>,
}

/// The matching stage: its matchers, in order.
pub(crate) struct Matchers(Vec<Box<dyn Matcher>>);

impl Default for Matchers {
    fn default() -> Self {
        Matchers(vec![
            Box::new(OwnSubscriptions),
            Box::new(content::ContentFilters),
            Box::new(collections::Ancestors),
        ])
    }
}

impl Matchers {
    /// Tell every matcher that the state was loaded.
    pub(crate) fn loaded(&mut self, state: &State) {
        for m in &mut self.0 {
            m.loaded(state);
        }
    }

    /// Tell every matcher that `change` was applied to `state`.
    pub(crate) fn applied(&mut self, state: &State, change: &Change) {
        for m in &mut self.0 {
            m.applied(state, change);
        }
    }

    /// The one way from an occurrence to its recipients: every candidate of every
    /// matcher, through the predicate, one [`Recipient`] per JID.
    pub(crate) fn recipients(
        &self,
        ctx: &impl Context,
        state: &State,
        occ: &Occurrence<'_>,
    ) -> Vec<Recipient> {
        let mut out = Vec::new();
        self.walk(ctx, state, occ, &mut None, usize::MAX, &mut |r| out.push(r));
        out
    }

    /// [`Matchers::recipients`], a part at a time: the recipients of the subscribers after
    /// `*cursor`, subscriber by subscriber, handed to `out` until at least `max` were (a
    /// subscriber is never split). `*cursor` moves to the last subscriber walked. True when
    /// no subscriber is left. (A sink rather than a `Vec`: a walk in small chunks must not
    /// allocate a buffer per chunk.)
    ///
    /// Subscribers come in JID order; one subscriber's recipients (itself, its full JIDs,
    /// its available resources) in JID order, each with the subids of every subscription
    /// of it that was delivered, in subid order (§12.5).
    pub(crate) fn walk(
        &self,
        ctx: &impl Context,
        state: &State,
        occ: &Occurrence<'_>,
        cursor: &mut Option<JidRef>,
        max: usize,
        out: &mut dyn FnMut(Recipient),
    ) -> bool {
        let mut streams: Vec<_> = self
            .0
            .iter()
            .map(|m| m.candidates(state, occ, cursor.as_ref()).peekable())
            .collect();
        let mut given = 0;
        let mut group: Vec<Candidate<'_>> = Vec::new();
        let mut to = Vec::new();
        let mut hits: Vec<Hit<'_>> = Vec::new();
        loop {
            if given >= max {
                return streams.iter_mut().all(|s| s.peek().is_none());
            }
            // The next subscriber: the least JID any matcher offers, with every candidate
            // of it from every matcher.
            let Some(next) = streams
                .iter_mut()
                .filter_map(|s| s.peek().map(|c| c.sub.key.jid.clone()))
                .min()
            else {
                return true;
            };
            group.clear();
            for s in &mut streams {
                while let Some(c) = s.next_if(|c| c.sub.key.jid == next) {
                    group.push(c);
                }
            }
            hits.clear();
            for cand in &group {
                to.clear();
                if deliver::deliver(ctx, occ, cand, &mut to) {
                    let include_body = cand.sub.options().include_body;
                    let collection = (cand.node.rec.uid != occ.node.rec.uid)
                        .then_some(cand.node.rec.name.as_str());
                    hits.extend(to.drain(..).map(|to| Hit {
                        to,
                        subid: cand.sub.subid(),
                        include_body,
                        collection,
                        filtered: cand.matched,
                    }));
                }
            }
            given += group_by_recipient(&mut hits, out);
            *cursor = Some(next);
        }
    }
}

/// One delivered subscription: where to, its subid, whether it wants a body, the
/// collection it is a subscription to when not to the occurrence's node, and whether a
/// content filter selected it.
struct Hit<'a> {
    to: Jid,
    subid: String,
    include_body: bool,
    collection: Option<&'a str>,
    filtered: bool,
}

/// One subscriber's deliveries as one [`Recipient`] per JID, in JID order, subids in
/// order (each once), collections in order (each once), handed to `out`. Returns how many.
fn group_by_recipient(hits: &mut Vec<Hit<'_>>, out: &mut dyn FnMut(Recipient)) -> usize {
    hits.sort_by(|a, b| (&a.to, &a.subid).cmp(&(&b.to, &b.subid)));
    let mut given = 0;
    let mut pending: Option<Recipient> = None;
    let mut emit = |r: Recipient, given: &mut usize| {
        out(finish(r));
        *given += 1;
    };
    for hit in hits.drain(..) {
        match &mut pending {
            Some(r) if r.to == hit.to => {
                if r.subids.last() != Some(&hit.subid) {
                    r.subids.push(hit.subid);
                }
                r.include_body |= hit.include_body;
                r.name_subids |= hit.filtered;
                r.collections.extend(hit.collection.map(str::to_owned));
            }
            _ => {
                if let Some(r) = pending.take() {
                    emit(r, &mut given);
                }
                pending = Some(Recipient {
                    to: hit.to,
                    subids: vec![hit.subid],
                    include_body: hit.include_body,
                    name_subids: hit.filtered,
                    collections: hit.collection.map(str::to_owned).into_iter().collect(),
                });
            }
        }
    }
    if let Some(r) = pending {
        emit(r, &mut given);
    }
    given
}

/// A recipient's collections in order, each once.
fn finish(mut r: Recipient) -> Recipient {
    if r.collections.len() > 1 {
        r.collections.sort();
        r.collections.dedup();
    }
    r
}
