//! Streamed fan-out: a broadcast is handed back as its event once plus a cursor over the
//! node's subscribers ([`Fanout`]), walked a chunk at a time ([`Service::walk`]) while
//! the component writes, instead of a `Vec` with a notification per subscriber built before
//! anything can be sent.
//!
//! Durability is unchanged: a fan-out is handed back only once its change is committed
//! (the caller syncs before walking it), and it must see the state as of that commit. The
//! walk reads the live state, so before anything changes the state a walk reads
//! (a request's changes, presence, rosters, the clock) every fan-out still being walked is
//! *settled*: walked to the end at once, its recipients kept in it. A batch of one publish
//! thus streams; a publish followed by more requests in the same batch costs what it cost
//! before (the whole walk), no more.

use super::*;
use crate::state::JidRef;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Tells engines apart, so that a fan-out is never walked over another engine's state
/// (the component rebuilds its engine after a storage failure).
static ENGINES: AtomicU64 = AtomicU64::new(0);

/// A fresh engine identity.
pub(super) fn engine_id() -> u64 {
    ENGINES.fetch_add(1, Ordering::Relaxed) + 1
}

/// A notification to send, or many: what a request or a tick hands back, in order.
#[derive(Debug)]
pub enum Dispatch {
    /// One notification to one recipient.
    One(Notification),
    /// One event to every subscriber it reaches, walked with [`Service::walk`].
    Fanout(Fanout),
}

impl From<Notification> for Dispatch {
    fn from(n: Notification) -> Self {
        Dispatch::One(n)
    }
}

/// What [`Service::handle_streamed`] returns: the reply, and what to send once the change
/// is durable.
#[derive(Debug)]
pub struct Streamed {
    /// The IQ result payload.
    pub reply: Reply,
    /// Notifications to send, in order.
    pub dispatches: Vec<Dispatch>,
}

/// The broadcasts a fan-out can be (a deletion is not one: the node is gone once applied,
/// so its few notifications are built at once).
#[derive(Debug, Clone, Copy)]
pub(super) enum Broadcast {
    Publish,
    Retract {
        requested: bool,
    },
    Purge,
    Configure,
    /// The node was created (XEP-0248: news for the collections above it).
    Create,
    /// The node with uid `child` was associated with the node, or dissociated from it
    /// (the event says which).
    Collection {
        child: u64,
    },
}

impl Broadcast {
    /// The occasion, as of `state`; `None` when it no longer has one (the child of an
    /// association was deleted by a later request before the walk: nobody hears of it).
    fn occasion(self, state: &State) -> Option<Occasion<'_>> {
        Some(match self {
            Broadcast::Publish => Occasion::Publish,
            Broadcast::Retract { requested } => Occasion::Retract { requested },
            Broadcast::Purge => Occasion::Purge,
            Broadcast::Configure => Occasion::Configure,
            Broadcast::Create => Occasion::Create,
            Broadcast::Collection { child, .. } => Occasion::Collection {
                child: state.node_by_uid(child)?,
            },
        })
    }
}

/// Where a walk stands.
#[derive(Debug)]
pub(super) struct Walk {
    uid: u64,
    broadcast: Broadcast,
    /// The last subscriber walked.
    cursor: Option<JidRef>,
    done: bool,
    /// Recipients found by settling, not yet taken.
    settled: VecDeque<Recipient>,
    /// The item, for content filters (on nodes with filtered subscriptions).
    subject: Option<Subject>,
}

/// One event to every subscriber it reaches: the event once, and a cursor over the
/// recipients, walked with [`Service::walk`] on the engine that handed it back.
#[derive(Debug)]
pub struct Fanout {
    engine: u64,
    node: String,
    kind: NotificationType,
    event: Arc<Event>,
    walk: Arc<Mutex<Walk>>,
}

impl Fanout {
    /// The node the event happened on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The event, shared by every recipient.
    pub fn event(&self) -> &Arc<Event> {
        &self.event
    }

    /// The notification of this event to `r`.
    pub fn notification(&self, r: Recipient) -> Notification {
        Notification {
            to: r.to,
            node: self.node.clone(),
            subids: r.subids,
            name_subids: r.name_subids,
            kind: self.kind,
            include_body: r.include_body,
            collections: r.collections,
            event: self.event.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Walk> {
        // A panic while walking leaves a consistent cursor (it moves after a subscriber is
        // done): carry on.
        self.walk.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: Store> Service<S> {
    /// Up to about `max` more notifications of `fanout` (a subscriber's are never split),
    /// appended to `out` in order. True when the fan-out is finished.
    ///
    /// Walk a fan-out only after its change is durable (the caller's sync). A fan-out of
    /// another engine (one replaced after a storage failure) yields nothing.
    pub fn walk(&self, fanout: &Fanout, max: usize, out: &mut Vec<Notification>) -> bool {
        if fanout.engine != self.id {
            return true;
        }
        let mut guard = fanout.lock();
        let w = &mut *guard;
        if !w.settled.is_empty() || w.done {
            let take = max.min(w.settled.len());
            out.extend(w.settled.drain(..take).map(|r| fanout.notification(r)));
        } else if let (Some(n), Some(occasion)) = (
            self.state.node_by_uid(w.uid),
            w.broadcast.occasion(&self.state),
        ) {
            let occ = Occurrence {
                node: n,
                occasion,
                scope: Scope::Everyone,
                subject: w.subject.as_ref(),
            };
            if max == usize::MAX {
                // Walked whole (`handle`): one allocation for the lot, as a collected map had.
                out.reserve(n.sub_count());
            }
            let mut cursor = w.cursor.take();
            let mut sink = |r| out.push(fanout.notification(r));
            w.done = self
                .matchers
                .walk(self, &self.state, &occ, &mut cursor, max, &mut sink);
            w.cursor = cursor;
        } else {
            // Settling makes this unreachable; an empty walk is the safe answer.
            w.done = true;
        }
        w.done && w.settled.is_empty()
    }

    /// Every notification of `dispatches`, walked at once.
    pub(super) fn walk_all(&self, dispatches: Vec<Dispatch>) -> Vec<Notification> {
        let mut out = Vec::new();
        for d in dispatches {
            match d {
                Dispatch::One(n) => out.push(n),
                Dispatch::Fanout(f) => while !self.walk(&f, usize::MAX, &mut out) {},
            }
        }
        out
    }

    /// A broadcast of `event` on node `n` (which may be one the same request creates), to
    /// be walked once the change is applied; its messages of type `kind` (the node's, or
    /// the new one of a reconfiguration); about `subject` for content filters.
    pub(super) fn fanout(
        &self,
        n: &NodeRecord,
        kind: NotificationType,
        broadcast: Broadcast,
        event: Event,
        subject: Option<Subject>,
    ) -> Dispatch {
        Dispatch::Fanout(Fanout {
            engine: self.id,
            node: n.name.clone(),
            kind,
            event: Arc::new(event),
            walk: Arc::new(Mutex::new(Walk {
                uid: n.uid,
                broadcast,
                cursor: None,
                done: false,
                settled: VecDeque::new(),
                subject,
            })),
        })
    }

    /// Keep track of the fan-outs in `dispatches`: they are settled before the state they
    /// read changes.
    pub(super) fn track(&mut self, dispatches: &[Dispatch]) {
        for d in dispatches {
            if let Dispatch::Fanout(f) = d {
                self.walking.push(Arc::downgrade(&f.walk));
            }
        }
    }

    /// Walk every fan-out still being walked to its end, keeping the recipients in it: the
    /// state it reads is about to change.
    pub(super) fn settle(&mut self) {
        for weak in std::mem::take(&mut self.walking) {
            let Some(walk) = Weak::upgrade(&weak) else {
                continue; // dropped: nobody will walk it
            };
            let mut guard = walk.lock().unwrap_or_else(|e| e.into_inner());
            let w = &mut *guard;
            if w.done {
                continue;
            }
            let (Some(n), Some(occasion)) = (
                self.state.node_by_uid(w.uid),
                w.broadcast.occasion(&self.state),
            ) else {
                w.done = true;
                continue;
            };
            let occ = Occurrence {
                node: n,
                occasion,
                scope: Scope::Everyone,
                subject: w.subject.as_ref(),
            };
            let mut rest = VecDeque::new();
            let mut cursor = w.cursor.take();
            let mut sink = |r| rest.push_back(r);
            self.matchers
                .walk(self, &self.state, &occ, &mut cursor, usize::MAX, &mut sink);
            w.settled.append(&mut rest);
            w.done = true;
        }
    }
}
