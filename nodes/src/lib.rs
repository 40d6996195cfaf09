//! The XEP-0060 engine of Roost: pure, synchronous, no I/O.
//!
//! Typed requests go in, a [`Outcome`] (reply plus notifications) comes out.
//! The crate owns its storage contract ([`Store`]) and an in-memory store for tests;
//! `roost-storage` implements the contract on sled, `roost-component` speaks XMPP.
//!
//! Modules, one job each:
//! - [`model`]: nodes, items, subscriptions, affiliations and their configuration;
//! - [`request`]: what a requester asks ([`Request`]) and what comes back ([`Outcome`]);
//! - [`error`]: the one error enum, in XEP-0060 vocabulary;
//! - [`store`]: the storage contract, change sets and the in-memory store;
//! - [`access`]: the affiliation × action capability table and the `may()` check;
//! - [`policy`]: service-wide settings (who may create nodes, admins, caps);
//! - [`presence`]: who is online, with which `show`, as plain data;
//! - [`roster`]: node owners' rosters (XEP-0356), as plain data, for the presence and
//!   roster access models;
//! - [`filter`]: content filters on subscriptions (issue 15): the language, evaluation on
//!   payloads, and the per-node matching index;
//! - [`service`]: the engine that ties them together.

pub mod access;
pub mod error;
pub mod filter;
pub mod model;
pub mod policy;
pub mod presence;
pub mod request;
pub mod roster;
pub mod service;
pub mod store;

pub use error::Error;
pub use model::*;
pub use policy::Policy;
pub use request::{
    Event, HistoryFilter, NodeMeta, NodeSummary, Notification, Outcome, PagedList, Reply, Request,
    RsmPage, RsmQuery, SubscriptionChange,
};
pub use service::Service;
pub use store::{Change, ChangeSet, Expiry, ItemRange, MemStore, Snapshot, Store, StoreError};

pub use jid::{BareJid, FullJid, Jid};

/// Milliseconds since the Unix epoch. The engine never reads a clock: callers pass `now`.
pub type Millis = u64;
