//! The engine: one `Service` per pubsub service, driven by one task.
//!
//! Every request goes through the same three steps:
//! 1. `plan` reads the in-memory state (and items from the store) and computes the reply,
//!    the [`ChangeSet`] and the notifications, changing nothing;
//! 2. the change set is committed to the store;
//! 3. only if the commit succeeded, the same change set is applied to memory by `apply`.
//!
//! [`Service::open`] builds memory from the store's rows into the state that applying
//! them would give (`state/load.rs`).
//!
//! So a failed commit leaves memory as it was and notifies no one, and memory cannot
//! drift from what the store holds.
//!
//! Who hears of what is decided in one place, the matching stage (`crate::matching`); who
//! may do what in another, the access gate (`crate::access`).
//!
//! Choices where XEP-0060 leaves room (documented once, here; those about delivery are in
//! `crate::matching::deliver`):
//! - Removing the last owner of a node (§8.9.2.4) is refused with
//!   [`Error::InvalidConfig`], which maps to `not-acceptable` as the XEP asks.
//! - Giving the same entity twice in one affiliations request is [`Error::BadRequest`].
//! - Multiple subscriptions per JID (§6.1.6): a plain subscribe (no options) by a JID that
//!   already holds a subscription without a content filter returns one of those (the
//!   lowest subid) unchanged, so a repeated subscribe is idempotent; a JID holding only
//!   filtered subscriptions asked for every item, so it gets a new one. A subscribe that
//!   carries options (subscribe-and-configure, §6.3.7) always creates a new subscription
//!   with its own subid: this is how one JID holds several filtered subscriptions
//!   (XEP-0060 §12 "Content-Based Pubsub Systems"). Requests about one subscription then
//!   need the subid when the JID holds several (§6.2.3, §6.3.4).
//! - When a node becomes whitelist, or an affiliation change leaves an entity unable to
//!   subscribe, its subscriptions are removed and it is told so (state `none`).
//! - With `pubsub#itemreply=publisher`, items name their publisher by its bare JID, in
//!   notifications and every retrieval alike ([`Item::shown_publisher`] says why).

use crate::access::{self, Action, Decision, Question};
use crate::model::*;
use crate::policy::Policy;
use crate::presence::PresenceTable;
use crate::request::{
    Event, NodeMeta, NodeSummary, Notification, Outcome, PagedList, Reply, Request, RsmPage,
    RsmQuery, SubscriptionChange,
};
use crate::roster::RosterTable;
use crate::state::{format_subid, NodeState, Planned, State, Sub, SubKey};
use crate::store::{Change, ChangeSet, ItemRange, Store};
use crate::typed::{OrderBy, TypeFilter};
use crate::{BareJid, Error, FullJid, Jid, Millis};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

mod collections;
mod fanout;
mod gate;
mod history;
mod items;
mod notify;
mod operator;
mod owner;
mod presence;
mod publisher;
mod rosters;
mod state;
mod subscriber;
mod timers;
use crate::matching::{Context, Matchers, Occasion, Occurrence, Recipient, Scope, Subject};
use collections::{Fresh, Relate};
use fanout::Broadcast;
pub use fanout::{Dispatch, Fanout, Streamed};
use gate::Ask;
pub use history::MAX_HISTORY_PAGE;
pub use operator::{NodeStats, ServiceStats};
pub use owner::{patch_config, precondition_mismatch};
use publisher::items_event;
pub use subscriber::patch_options;

/// What `plan` computed for one request; nothing of it has happened yet.
struct Plan {
    reply: Reply,
    changes: ChangeSet,
    notifications: Vec<Dispatch>,
}

impl Plan {
    fn with(
        reply: Reply,
        changes: ChangeSet,
        notifications: impl IntoIterator<Item = impl Into<Dispatch>>,
    ) -> Self {
        Plan {
            reply,
            changes,
            notifications: notifications.into_iter().map(Into::into).collect(),
        }
    }

    fn read(reply: Reply) -> Self {
        Plan {
            reply,
            changes: ChangeSet::default(),
            notifications: Vec::new(),
        }
    }
}

/// The pubsub service: in-memory state over a [`Store`].
pub struct Service<S: Store> {
    store: S,
    policy: Policy,
    /// Available resources, as the component learns them.
    presence: PresenceTable,
    /// Node owners' rosters, as the component learns them (XEP-0356): the presence and
    /// roster access models decide on them.
    rosters: RosterTable,
    /// Nodes, subscriptions, affiliations and their indexes.
    state: State,
    /// The matching stage's matchers: who an event reaches.
    matchers: Matchers,
    /// This engine's identity, which its fan-outs carry.
    id: u64,
    /// Fan-outs handed back and maybe still being walked: settled before the state changes.
    walking: Vec<std::sync::Weak<std::sync::Mutex<fanout::Walk>>>,
    /// Feeds generated names and ids. Not durable: uniqueness is checked on use.
    counter: Cell<u64>,
    /// Set by the first [`Service::tick`]. Until something runs the clock no digest can go
    /// out, so digest subscribers get items one by one rather than never.
    clock_running: bool,
}

/// How many expired items one [`Service::tick`] removes at most; the rest wait for the
/// next tick, so a burst of expiries cannot stall the service.
const EXPIRE_BATCH: usize = 512;

impl<S: Store> Service<S> {
    /// Load the service's state from `store`.
    pub fn open(mut store: S, policy: Policy) -> Result<Self, Error> {
        // The store feeds the engine's builder row by row (`state/load.rs`): no snapshot
        // of owned values is built and thrown away. Loading asks nobody for presence: the
        // component probes all of `presence_wanted` on connect.
        let state = State::load(&mut store)?;
        let mut svc = Service {
            store,
            policy,
            presence: PresenceTable::new(),
            rosters: RosterTable::new(),
            state,
            matchers: Matchers::default(),
            id: fanout::engine_id(),
            walking: Vec::new(),
            counter: Cell::new(0),
            clock_running: false,
        };
        svc.matchers.loaded(&svc.state);
        Ok(svc)
    }

    /// Handle one request from `actor` at time `now`.
    ///
    /// On `Ok`, every change is committed and applied, and the notifications are ready to
    /// send once durable: a change is durable once the `Store::sync` that follows its commit
    /// returns `Ok`; its reply and its notifications are sent only after that, and a failed
    /// sync sends neither (the engine is rebuilt from what is on disk). On `Err`, nothing
    /// changed.
    pub fn handle(&mut self, actor: &Jid, req: Request, now: Millis) -> Result<Outcome, Error> {
        let out = self.handle_streamed(actor, req, now)?;
        Ok(Outcome {
            reply: out.reply,
            notifications: self.walk_all(out.dispatches),
        })
    }

    /// [`Service::handle`], with broadcasts handed back as [`Fanout`]s to walk (with
    /// [`Service::walk`]) once the change is durable, rather than walked already.
    ///
    /// `now` is when the request arrived (also when it is decided again after waiting for
    /// rosters): the presence and roster access models refuse it only on rosters fetched
    /// since ([`crate::roster::RosterTable::deciding_at`]).
    pub fn handle_streamed(
        &mut self,
        actor: &Jid,
        req: Request,
        now: Millis,
    ) -> Result<Streamed, Error> {
        self.rosters.deciding_at(now);
        let plan = self.plan(actor, req, now)?;
        if !plan.changes.is_empty() {
            self.store.commit(&plan.changes)?;
            self.apply(&plan.changes);
        }
        self.track(&plan.notifications);
        Ok(Streamed {
            reply: plan.reply,
            dispatches: plan.notifications,
        })
    }

    /// Apply a committed change set to memory: to the state, then to the matchers' own
    /// indexes. Fan-outs still being walked are settled first: they see the state as of
    /// their own commit.
    fn apply(&mut self, changes: &ChangeSet) {
        self.settle();
        for c in &changes.0 {
            self.state.apply_one(c);
            self.matchers.applied(&self.state, c);
        }
    }

    /// The store, e.g. to flush it on shutdown.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    /// The store, read-only.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The service policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The NodeIDs of all nodes, whoever may see them (for operators and tests).
    pub fn node_names(&self) -> impl Iterator<Item = &str> {
        self.state.nodes().map(|n| n.rec.name.as_str())
    }

    /// What `req` would do, changing nothing: one arm per use case, each a method of its
    /// family (owner.rs, subscriber.rs, publisher.rs, items.rs, history.rs).
    fn plan(&self, actor: &Jid, req: Request, now: Millis) -> Result<Plan, Error> {
        let me = &actor.to_bare();
        match req {
            // §5 entity use cases
            Request::DiscoNodes => self.disco_nodes(me),
            Request::NodeMetadata { node } => self.node_metadata(me, &node),
            Request::DiscoItems { node } => self.disco_items(me, node),
            Request::Subscriptions { node } => self.own_subscriptions(me, node),
            Request::Affiliations { node } => self.own_affiliations(me, node),
            // §6 subscriber use cases
            Request::Subscribe { node, jid, options } => {
                self.subscribe(me, node, jid, options, now)
            }
            Request::Unsubscribe { node, jid, subid } => self.unsubscribe(me, node, &jid, subid),
            Request::GetOptions { node, jid, subid } => self.get_options(me, node, &jid, subid),
            Request::SetOptions {
                node,
                jid,
                subid,
                options,
            } => self.set_options(me, node, &jid, subid, &options, now),
            Request::DefaultOptions { node } => self.default_options(node),
            Request::Items {
                node,
                max_items,
                ids,
                subid,
            } => self.items(me, node, max_items, ids, subid),
            // §7 publisher use cases
            Request::Publish {
                node,
                item,
                options,
            } => self.publish(actor, me, node, item, options, now),
            Request::Retract { node, ids, notify } => self.retract(me, node, ids, notify),
            // §8 owner use cases
            Request::Create { node, config } => self.create(me, node, config, now),
            Request::GetConfig { node } => self.get_config(me, node),
            Request::SetConfig { node, config } => self.set_config(me, node, config),
            Request::DefaultConfig { node_type } => self.default_config(node_type),
            Request::Delete { node, redirect } => self.delete(me, node, redirect),
            Request::Purge { node } => self.purge(me, node),
            Request::GetSubscriptions { node } => self.get_subscriptions(me, node),
            Request::SetSubscriptions { node, changes } => {
                self.set_subscriptions(me, node, changes, now)
            }
            Request::Associate { collection, node } => self.associate(me, collection, node),
            Request::Dissociate { collection, node } => self.dissociate(me, collection, node),
            Request::GetAffiliations { node } => self.get_affiliations(me, node),
            Request::SetAffiliations { node, changes } => self.set_affiliations(me, node, changes),
            Request::AuthorizeSubscription {
                node,
                jid,
                subid,
                allow,
            } => self.authorize(me, node, &jid, subid.as_deref(), allow),
            Request::PendingNodes => self.pending_nodes(me),
            Request::GetPending { node } => self.get_pending(me, actor, node),
            // XEP-0059, XEP-0313
            Request::Page { list, rsm } => self.page(me, list, &rsm),
            // Typed discovery
            Request::DiscoTyped { node, types, rsm } => {
                self.disco_typed(me, node, &types, rsm.as_ref())
            }
            Request::ItemsOrdered {
                node,
                max_items,
                ids,
                subid,
                order,
                rsm,
            } => self.items_ordered(me, node, max_items, ids, subid, &order, rsm.as_ref()),
            Request::History { node, filter, rsm } => self.history(me, node, &filter, &rsm),
        }
    }
}
