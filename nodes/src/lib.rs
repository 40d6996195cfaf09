//! The XEP-0060 engine of Roost: pure, synchronous, no I/O.
//!
//! Typed requests go in, a [`Outcome`] (reply plus notifications) comes out; or, with
//! [`Service::handle_streamed`], the reply plus [`Dispatch`]es: single notifications, and
//! broadcasts as [`Fanout`]s whose recipients are walked while they are sent.
//! The crate owns its storage contract ([`Store`]) and an in-memory store for tests;
//! `roost-storage` implements the contract on sled, `roost-component` speaks XMPP.
//!
//! Modules, one job each:
//! - [`model`]: nodes, items, subscriptions, affiliations and their configuration;
//! - [`request`]: what a requester asks ([`Request`]) and what comes back ([`Outcome`]);
//! - [`error`]: the one error enum, in XEP-0060 vocabulary;
//! - [`store`]: the storage contract, change sets and the in-memory store;
//! - [`access`]: the access gate: the §4.1 table as data and the one `decide()`;
//! - [`policy`]: service-wide settings (who may create nodes, admins, caps);
//! - [`presence`]: who is online, with which `show`, as plain data;
//! - [`roster`]: node owners' rosters (XEP-0356), as plain data, for the presence and
//!   roster access models;
//! - `state`: the in-memory state and its indexes, compact (interned JIDs, numeric subids);
//! - `matching`: where an event meets the subscriptions it reaches, and the one delivery
//!   predicate;
//! - [`filter`]: content filters on subscriptions (issue 15): the language, evaluation on
//!   payloads, and the per-node matching index;
//! - [`typed`]: typed discovery: nodes by `pubsub#type` (XEP-0462), items in creation or
//!   modification order (XEP-0413);
//! - [`service`]: the engine that ties them together, one file per use-case family.

pub mod access;
pub mod error;
pub mod filter;
mod matching;
pub mod model;
pub mod policy;
pub mod presence;
pub mod request;
pub mod roster;
pub mod service;
mod state;
pub mod store;
pub mod typed;

pub use error::Error;
pub use matching::Recipient;
pub use model::*;
pub use policy::Policy;
pub use request::{
    Event, HistoryFilter, NodeMeta, NodeSummary, Notification, Outcome, PagedList, Reply, Request,
    RsmPage, RsmQuery, SubscriptionChange,
};
pub use service::{Dispatch, Fanout, NodeStats, Service, ServiceStats, Streamed};
pub use store::{
    Change, ChangeSet, Expiry, ItemRange, Loader, MemStore, Snapshot, Store, StoreError, SubRow,
};
pub use typed::{OrderBy, OrderField, TypeFilter};

pub use jid::{BareJid, FullJid, Jid};

/// Milliseconds since the Unix epoch. The engine never reads a clock: callers pass `now`.
pub type Millis = u64;
