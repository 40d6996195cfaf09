//! The storage contract the engine needs, and an in-memory store for tests.
//!
//! The engine keeps node records, affiliations and subscriptions in memory (loaded once
//! through [`Store::load_into`], row by row: see [`load`]) and reads items on demand, since
//! a node's history can be large.
//! Every request's changes reach the store as one [`ChangeSet`] through [`Store::commit`],
//! which must apply all of it or none of it. A change is durable once the [`Store::sync`]
//! that follows its commit returns `Ok`; its reply and its notifications are sent only after
//! that, and a failed sync sends neither (the engine is rebuilt from what is on disk).

use crate::model::*;
use crate::{BareJid, Jid, Millis};
use std::collections::{BTreeMap, BTreeSet};

pub mod load;
pub use load::{Loader, Snapshot, SubRow, SubRows};

/// A storage failure. The message is for operators; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// One durable change. Keys are by node `uid`, so that a node created again under a
/// deleted node's name never sees the old node's items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert or replace a node record.
    PutNode(NodeRecord),
    /// Delete a node with everything it owns: items, counters, affiliations, subscriptions.
    DeleteNode { name: String, uid: u64 },
    /// Set a node's item counters.
    PutCounters { uid: u64, counters: ItemCounters },
    /// Set an affiliation; `Affiliation::None` removes the row.
    PutAffiliation {
        node: String,
        jid: BareJid,
        affiliation: Affiliation,
    },
    /// Insert or replace a subscription (keyed by node and subid).
    PutSubscription { node: String, sub: Subscription },
    /// Remove a subscription.
    DeleteSubscription {
        node: String,
        jid: Jid,
        subid: String,
    },
    /// Insert an item at `item.seq`. Replacing an id is a `DeleteItem` of the old seq first;
    /// should the id still be stored at another seq, that item is replaced all the same.
    PutItem { uid: u64, item: Item },
    /// Remove one item.
    DeleteItem { uid: u64, id: String, seq: u64 },
    /// Remove all items of a node.
    PurgeItems { uid: u64 },
    /// Keep only the node's `keep` newest items (`pubsub#max_items`): the older ones are
    /// gone for every read from this change on, though a store may take them off the disk
    /// later and in bulk. One change however many items fall out, so that trimming costs
    /// the planner no read of the oldest items and the store no write per item.
    TrimItems { uid: u64, keep: u64 },
    /// Remember that the item at (`uid`, `seq`) expires at `at` (`pubsub#item_expire`).
    /// Entries are not removed with their item: whoever reads them checks that the item
    /// is still there, so deleting items and nodes stays as cheap as before.
    ScheduleExpiry { at: Millis, uid: u64, seq: u64 },
    /// Forget one expiry entry (once handled).
    UnscheduleExpiry { at: Millis, uid: u64, seq: u64 },
}

/// One expiry entry: (expires at, node uid, item seq).
pub type Expiry = (Millis, u64, u64);

/// Every change of one request (or, with group commit, of several), applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeSet(pub Vec<Change>);

impl ChangeSet {
    /// Append one change.
    pub fn push(&mut self, c: Change) {
        self.0.push(c);
    }

    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A slice of a node's items in publish (`seq`) order, for paging (XEP-0059): the items
/// with `after < seq < before` (each bound exclusive, `None` unbounded), then `skip` of
/// them dropped and at most `limit` kept, both counted from the oldest end, or from the
/// newest end when `from_end`. Paging by `seq` means items published between two pages
/// only ever appear after the last one: none is skipped or repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRange {
    /// Exclusive lower `seq` bound.
    pub after: Option<u64>,
    /// Exclusive upper `seq` bound.
    pub before: Option<u64>,
    /// How many to drop first.
    pub skip: u64,
    /// How many to return at most.
    pub limit: u64,
    /// Count `skip` and `limit` from the newest end.
    pub from_end: bool,
}

impl ItemRange {
    /// True when `seq` lies within the bounds (ignoring `skip` and `limit`).
    pub fn admits(&self, seq: u64) -> bool {
        // Written out: `Option::is_none_or` is newer than the workspace's rust-version.
        let above = match self.after {
            Some(a) => seq > a,
            None => true,
        };
        let below = match self.before {
            Some(b) => seq < b,
            None => true,
        };
        above && below
    }

    /// Apply `skip` and `limit` to the in-range items, given oldest first; keeps them
    /// oldest first. For stores that can iterate both ways, [`Store::items_range`]
    /// implementations do the same without collecting everything.
    pub fn take<T>(&self, in_range: impl DoubleEndedIterator<Item = T>) -> Vec<T> {
        let skip = usize::try_from(self.skip).unwrap_or(usize::MAX);
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        if self.from_end {
            let mut v: Vec<T> = in_range.rev().skip(skip).take(limit).collect();
            v.reverse();
            v
        } else {
            in_range.skip(skip).take(limit).collect()
        }
    }
}

/// The storage contract. `roost-storage` implements it on sled; [`MemStore`] in memory.
pub trait Store {
    /// Hand everything the engine keeps in memory to `loader`, in the order [`Loader`]
    /// asks for, borrowing from the store's own bytes where it can.
    fn load_into(&mut self, loader: &mut dyn Loader) -> Result<(), StoreError>;

    /// Everything the engine keeps in memory, as one owned value (for tests and tools:
    /// the engine loads through [`Store::load_into`]).
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let mut snap = Snapshot::default();
        self.load_into(&mut snap)?;
        Ok(snap)
    }

    /// Apply `changes` atomically: after `Err` none of them is visible. A change is durable
    /// once the [`Store::sync`] that follows its commit returns `Ok`; its reply and its
    /// notifications are sent only after that, and a failed sync sends neither. Splitting
    /// the two lets many requests share one flush (group commit).
    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError>;

    /// Make every change committed so far durable. Stores that are durable at commit
    /// already need not override this.
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// True when [`Store::sync`] would now wait for the disk: something was committed since
    /// the last one, and the store flushes. The service loop may gather more requests into
    /// such a sync (group commit); a store that never waits says false.
    fn sync_pending(&self) -> bool {
        false
    }

    /// One item by id.
    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError>;

    /// The `max` most recent items (all when `None`), oldest first.
    fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError>;

    /// The `n` oldest items, oldest first (for trimming to `max_items`).
    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError>;

    /// One page of items as `range` says, oldest first.
    ///
    /// The default reads every item of the node; it exists only so that wrappers and test
    /// doubles need not repeat it. Real stores override it with a key-range read (both
    /// [`MemStore`] and the sled store do, and the contract suite checks them).
    fn items_range(&self, uid: u64, range: &ItemRange) -> Result<Vec<Item>, StoreError> {
        let all = self.latest_items(uid, None)?;
        Ok(range.take(all.into_iter().filter(|i| range.admits(i.seq))))
    }

    /// Up to `limit` expiry entries due at or before `now`, earliest first. Read from an
    /// index ordered by time, so the cost follows the number due, not the number of items.
    ///
    /// The default is an error: a store without the index cannot expire items, and should
    /// say so rather than never expire them.
    fn due_expiries(&self, now: Millis, limit: usize) -> Result<Vec<Expiry>, StoreError> {
        let _ = (now, limit);
        Err(StoreError(
            "this store keeps no expiry index (pubsub#item_expire)".to_owned(),
        ))
    }

    /// How many items have `seq < before` (all items when `None`): the RSM index of the
    /// item at `before`. The default reads every item, like [`Store::items_range`]'s.
    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        let all = self.latest_items(uid, None)?;
        Ok(all
            .iter()
            .filter(|i| before.is_none() || Some(i.seq) < before)
            .count() as u64)
    }
}

/// A [`Store`] that keeps everything in memory, for tests. `fail_next` makes the next
/// commit fail, to test that a failed commit leaves no trace.
#[derive(Debug, Default)]
pub struct MemStore {
    /// Nodes here carry default counters; the real ones live in `counters`, keyed by uid
    /// as a durable store keeps them, so that a node record replaced under the same name
    /// with a new uid does not inherit the old node's counters.
    snapshot: Snapshot,
    counters: BTreeMap<u64, ItemCounters>,
    items: BTreeMap<(u64, u64), Item>,
    expiries: BTreeSet<Expiry>,
    /// When set, the next `commit` fails with this message and changes nothing.
    pub fail_next: Option<String>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemStore {
    fn load_into(&mut self, loader: &mut dyn Loader) -> Result<(), StoreError> {
        /// The snapshot's nodes carry default counters: the real ones are by uid.
        struct WithCounters<'a> {
            inner: &'a mut dyn Loader,
            counters: &'a BTreeMap<u64, ItemCounters>,
        }
        impl Loader for WithCounters<'_> {
            fn last_uid(&mut self, uid: u64) {
                self.inner.last_uid(uid)
            }
            fn node(&mut self, rec: NodeRecord, _: ItemCounters) -> Result<(), StoreError> {
                let c = self.counters.get(&rec.uid).copied().unwrap_or_default();
                self.inner.node(rec, c)
            }
            fn affiliation(&mut self, n: &str, j: &str, a: Affiliation) -> Result<(), StoreError> {
                self.inner.affiliation(n, j, a)
            }
            fn subscriptions(&mut self, n: &str, rows: SubRows<'_, '_>) -> Result<(), StoreError> {
                self.inner.subscriptions(n, rows)
            }
        }
        self.snapshot.feed(&mut WithCounters {
            inner: loader,
            counters: &self.counters,
        })
    }

    fn commit(&mut self, changes: &ChangeSet) -> Result<(), StoreError> {
        if let Some(msg) = self.fail_next.take() {
            return Err(StoreError(msg));
        }
        let s = &mut self.snapshot;
        for c in &changes.0 {
            match c {
                Change::PutNode(rec) => {
                    s.last_uid = s.last_uid.max(rec.uid);
                    s.nodes
                        .insert(rec.name.clone(), (rec.clone(), ItemCounters::default()));
                }
                Change::DeleteNode { name, uid } => {
                    s.nodes.remove(name);
                    s.affiliations.remove(name);
                    s.subscriptions.remove(name);
                    self.counters.remove(uid);
                    self.items.retain(|(u, _), _| u != uid);
                }
                Change::PutCounters { uid, counters } => {
                    self.counters.insert(*uid, *counters);
                }
                Change::PutAffiliation {
                    node,
                    jid,
                    affiliation,
                } => {
                    let affs = s.affiliations.entry(node.clone()).or_default();
                    if *affiliation == Affiliation::None {
                        affs.remove(jid);
                        if affs.is_empty() {
                            s.affiliations.remove(node);
                        }
                    } else {
                        affs.insert(jid.clone(), *affiliation);
                    }
                }
                Change::PutSubscription { node, sub } => {
                    s.subscriptions
                        .entry(node.clone())
                        .or_default()
                        .insert(sub.subid.clone(), sub.clone());
                }
                Change::DeleteSubscription { node, subid, .. } => {
                    if let Some(subs) = s.subscriptions.get_mut(node) {
                        subs.remove(subid);
                        if subs.is_empty() {
                            s.subscriptions.remove(node);
                        }
                    }
                }
                Change::PutItem { uid, item } => {
                    // Ids are unique within a node: the same id at another seq is replaced.
                    self.items
                        .retain(|(u, seq), i| !(u == uid && *seq != item.seq && i.id == item.id));
                    self.items.insert((*uid, item.seq), item.clone());
                }
                Change::DeleteItem { uid, seq, .. } => {
                    self.items.remove(&(*uid, *seq));
                }
                Change::PurgeItems { uid } => {
                    self.items.retain(|(u, _), _| u != uid);
                }
                Change::TrimItems { uid, keep } => {
                    let held: Vec<u64> = self
                        .items
                        .range((*uid, 0)..=(*uid, u64::MAX))
                        .map(|((_, seq), _)| *seq)
                        .collect();
                    let excess = held
                        .len()
                        .saturating_sub(usize::try_from(*keep).unwrap_or(usize::MAX));
                    for seq in &held[..excess] {
                        self.items.remove(&(*uid, *seq));
                    }
                }
                Change::ScheduleExpiry { at, uid, seq } => {
                    self.expiries.insert((*at, *uid, *seq));
                }
                Change::UnscheduleExpiry { at, uid, seq } => {
                    self.expiries.remove(&(*at, *uid, *seq));
                }
            }
        }
        Ok(())
    }

    fn item(&self, uid: u64, id: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .items
            .range((uid, 0)..=(uid, u64::MAX))
            .map(|(_, i)| i)
            .find(|i| i.id == id)
            .cloned())
    }

    fn latest_items(&self, uid: u64, max: Option<u64>) -> Result<Vec<Item>, StoreError> {
        let all = self.items.range((uid, 0)..=(uid, u64::MAX)).map(|(_, i)| i);
        let mut v: Vec<Item> = match max {
            Some(m) => all.rev().take(m as usize).cloned().collect(),
            None => all.rev().cloned().collect(),
        };
        v.reverse();
        Ok(v)
    }

    fn oldest_items(&self, uid: u64, n: u64) -> Result<Vec<Item>, StoreError> {
        Ok(self
            .items
            .range((uid, 0)..=(uid, u64::MAX))
            .take(n as usize)
            .map(|(_, i)| i.clone())
            .collect())
    }

    fn items_range(&self, uid: u64, range: &ItemRange) -> Result<Vec<Item>, StoreError> {
        let Some(lo) = range.after.map_or(Some(0), |a| a.checked_add(1)) else {
            return Ok(Vec::new());
        };
        let Some(hi) = range.before.map_or(Some(u64::MAX), |b| b.checked_sub(1)) else {
            return Ok(Vec::new());
        };
        if lo > hi {
            return Ok(Vec::new());
        }
        let in_range = self
            .items
            .range((uid, lo)..=(uid, hi))
            .map(|(_, i)| i.clone());
        Ok(range.take(in_range))
    }

    fn due_expiries(&self, now: Millis, limit: usize) -> Result<Vec<Expiry>, StoreError> {
        Ok(self
            .expiries
            .range(..=(now, u64::MAX, u64::MAX))
            .take(limit)
            .copied()
            .collect())
    }

    fn count_before(&self, uid: u64, before: Option<u64>) -> Result<u64, StoreError> {
        let end = before.unwrap_or(u64::MAX);
        let n = self.items.range((uid, 0)..(uid, end)).count() as u64;
        // `..(uid, u64::MAX)` leaves out seq u64::MAX itself when counting everything.
        let at_max = before.is_none() && self.items.contains_key(&(uid, u64::MAX));
        Ok(n + u64::from(at_max))
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod contract;
