//! How a store hands over what the engine keeps in memory: row by row, into a [`Loader`].
//!
//! At a million subscriptions, loading is start-up: a snapshot of owned values (a `String`
//! and a `Jid` per subscription, in maps the engine then copies into its own) costs two
//! allocations per row and memory the engine frees again. So [`Store::load_into`] feeds
//! the engine's own builder instead, with rows borrowed from the store's bytes
//! ([`SubRow`]): the JID as stored text, which the builder parses once per distinct JID,
//! and options only when they are not the defaults. A whole [`Snapshot`] is still
//! available ([`Store::load`]) for tests and tools: it is one more [`Loader`].
//!
//! [`Store::load_into`]: super::Store::load_into
//! [`Store::load`]: super::Store::load

use super::StoreError;
use crate::model::*;
use crate::{BareJid, Jid};
use std::collections::BTreeMap;

/// One subscription as a store reads it, borrowed from the store's own bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRow<'a> {
    /// The subscribed JID (bare or full) as stored: the loader parses it, and may skip
    /// parsing a JID it has already met in the same spelling.
    pub jid: &'a str,
    /// The subid.
    pub subid: &'a str,
    /// Subscribed, pending or unconfigured.
    pub state: SubscriptionState,
    /// The delivery options, `None` when they are the defaults (most subscriptions), so
    /// that handing them over allocates nothing. `Some` of the defaults means the same.
    pub options: Option<SubOptions>,
}

impl SubRow<'_> {
    /// The row as an owned [`Subscription`], parsing its JID.
    pub fn to_subscription(&self) -> Result<Subscription, StoreError> {
        Ok(Subscription {
            jid: parse_jid(self.jid)?,
            subid: self.subid.to_owned(),
            state: self.state,
            options: self.options.clone().unwrap_or_default(),
        })
    }

    /// The row of `sub`, borrowing from it.
    pub fn of(sub: &Subscription) -> SubRow<'_> {
        SubRow {
            jid: sub.jid.as_str(),
            subid: &sub.subid,
            state: sub.state,
            options: (sub.options != SubOptions::default()).then(|| sub.options.clone()),
        }
    }
}

/// The subscriptions of one node, as [`Loader::subscriptions`] receives them.
pub type SubRows<'r, 'a> = &'r mut dyn Iterator<Item = Result<SubRow<'a>, StoreError>>;

/// What [`Store::load_into`](super::Store::load_into) feeds. The engine implements it to
/// build its state directly; [`Snapshot`] implements it to collect everything.
///
/// A store calls [`Loader::node`] for every node before any [`Loader::affiliation`] or
/// [`Loader::subscriptions`] of that node, and gives each node's subscriptions in one call
/// (so that the engine can build the node's sorted tables in one go). Rows for a node
/// never given are ignored. An `Err` from the loader ends the load with that error.
pub trait Loader {
    /// The highest node uid ever handed out (uids are never reused). May come at any point.
    fn last_uid(&mut self, uid: u64);

    /// A node record with its item counters.
    fn node(&mut self, rec: NodeRecord, counters: ItemCounters) -> Result<(), StoreError>;

    /// An affiliation other than `none` of the bare JID `jid` (as stored) with `node`.
    fn affiliation(&mut self, node: &str, jid: &str, aff: Affiliation) -> Result<(), StoreError>;

    /// Every subscription of `node`, in any order.
    fn subscriptions(&mut self, node: &str, rows: SubRows<'_, '_>) -> Result<(), StoreError>;
}

/// Parses a stored JID: one that does not parse means a damaged database.
pub fn parse_jid(s: &str) -> Result<Jid, StoreError> {
    Jid::new(s).map_err(|e| StoreError(format!("corrupt record: bad JID {s:?}: {e}")))
}

/// Parses a stored bare JID.
pub fn parse_bare_jid(s: &str) -> Result<BareJid, StoreError> {
    BareJid::new(s).map_err(|e| StoreError(format!("corrupt record: bad bare JID {s:?}: {e}")))
}

/// Everything the engine keeps in memory, as stored, in owned values: what
/// [`Store::load`](super::Store::load) returns (tests, tools). The engine itself loads
/// through [`Loader`] without building one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Node records with their item counters, by NodeID.
    pub nodes: BTreeMap<String, (NodeRecord, ItemCounters)>,
    /// Affiliations other than `none`, by NodeID.
    pub affiliations: BTreeMap<String, BTreeMap<BareJid, Affiliation>>,
    /// Subscriptions, by NodeID then subid.
    pub subscriptions: BTreeMap<String, BTreeMap<String, Subscription>>,
    /// The highest node uid ever handed out (uids are never reused).
    pub last_uid: u64,
}

impl Snapshot {
    /// Feed everything to `loader`, in the order [`Loader`] asks for.
    pub fn feed(&self, loader: &mut dyn Loader) -> Result<(), StoreError> {
        loader.last_uid(self.last_uid);
        for (rec, counters) in self.nodes.values() {
            loader.node(rec.clone(), *counters)?;
        }
        for (node, affs) in &self.affiliations {
            for (jid, aff) in affs {
                loader.affiliation(node, jid.as_str(), *aff)?;
            }
        }
        for (node, subs) in &self.subscriptions {
            let mut rows = subs.values().map(|s| Ok(SubRow::of(s)));
            loader.subscriptions(node, &mut rows)?;
        }
        Ok(())
    }
}

impl Loader for Snapshot {
    fn last_uid(&mut self, uid: u64) {
        self.last_uid = self.last_uid.max(uid);
    }

    fn node(&mut self, rec: NodeRecord, counters: ItemCounters) -> Result<(), StoreError> {
        self.last_uid = self.last_uid.max(rec.uid);
        self.nodes.insert(rec.name.clone(), (rec, counters));
        Ok(())
    }

    fn affiliation(&mut self, node: &str, jid: &str, aff: Affiliation) -> Result<(), StoreError> {
        let jid = parse_bare_jid(jid)?;
        // `none` is never stored; should one appear it means exactly "no row".
        if aff != Affiliation::None {
            self.affiliations
                .entry(node.to_owned())
                .or_default()
                .insert(jid, aff);
        }
        Ok(())
    }

    fn subscriptions(&mut self, node: &str, rows: SubRows<'_, '_>) -> Result<(), StoreError> {
        for row in rows {
            let sub = row?.to_subscription()?;
            self.subscriptions
                .entry(node.to_owned())
                .or_default()
                .insert(sub.subid.clone(), sub);
        }
        Ok(())
    }
}
