//! XEP-0313 Message Archive Management on a node: the archive is the node's stored items.
//!
//! The filter's ItemID bounds become `seq` bounds, so they cost a key-range read. The time
//! bounds cannot: `published` comes from the service's clock, which may step back, so items
//! are not guaranteed to be sorted by it. They are checked item by item while scanning in
//! publish order, in chunks, stopping as soon as the page is full. A scan is bounded by the
//! node's item count, which `pubsub#max_items` bounds.

use super::{NodeState, Plan, Service};
use crate::model::Item;
use crate::request::{HistoryFilter, Reply, RsmPage, RsmQuery};
use crate::store::{ItemRange, Store};
use crate::{BareJid, Error};

/// The largest page a history query gets, whatever it asks: the results go out as one
/// message each before the IQ result, and a client that wants more pages on with RSM.
pub const MAX_HISTORY_PAGE: u64 = 250;

/// How many items one store read fetches while scanning.
const CHUNK: u64 = 256;

impl<S: Store> Service<S> {
    /// One page of `node`'s history, for whoever may retrieve its items.
    pub(super) fn history(
        &self,
        me: &BareJid,
        node: String,
        filter: &HistoryFilter,
        rsm: &RsmQuery,
    ) -> Result<Plan, Error> {
        let n = self.retrievable(me, &node, None)?;
        let uid = n.rec.uid;
        let seq_of = |id: &str| -> Result<u64, Error> {
            Ok(self.store.item(uid, id)?.ok_or(Error::ItemNotFound)?.seq)
        };
        // The filter's own window, before RSM narrows it further.
        let lo = filter.after_id.as_deref().map(seq_of).transpose()?;
        let hi = filter.before_id.as_deref().map(seq_of).transpose()?;
        let rsm_after = rsm.after.as_deref().map(seq_of).transpose()?;
        let rsm_before = match rsm.before.as_deref() {
            None | Some("") => None,
            Some(id) => Some(seq_of(id)?),
        };
        let backward = rsm.before.is_some();
        let max = rsm.max.unwrap_or(MAX_HISTORY_PAGE).min(MAX_HISTORY_PAGE);
        let keep = |i: &Item| within(i.published, filter.start, filter.end);
        let timed = filter.start.is_some() || filter.end.is_some();

        let (after, before) = (max_opt(lo, rsm_after), min_opt(hi, rsm_before));
        // One more than the page, to learn whether the page reaches the end.
        let want = max.saturating_add(1);
        let mut items = self.scan(n, after, before, backward, want, &keep)?;
        let complete = (items.len() as u64) <= max;
        if !complete {
            if backward {
                items.remove(0);
            } else {
                items.pop();
            }
        }

        // RSM count and index are over the filtered history, not over the page's window.
        let count_in = |a: Option<u64>, b: Option<u64>| -> Result<u64, Error> {
            if timed {
                Ok(self.scan(n, a, b, false, u64::MAX, &keep)?.len() as u64)
            } else {
                let below = self.store.count_before(uid, b)?;
                let upto = match a {
                    Some(a) => self.store.count_before(uid, Some(a.saturating_add(1)))?,
                    None => 0,
                };
                Ok(below.saturating_sub(upto))
            }
        };
        let count = count_in(lo, hi)?;
        let first = match items.first() {
            None => None,
            Some(i) => Some((i.id.clone(), count_in(lo, Some(i.seq))?)),
        };
        let page = RsmPage {
            first,
            last: items.last().map(|i| i.id.clone()),
            count,
        };
        Ok(Plan::read(Reply::History {
            node,
            items,
            complete,
            page,
        }))
    }

    /// Up to `want` items with `after < seq < before` that `keep` admits, oldest first;
    /// the oldest such items, or the newest when `backward`.
    fn scan(
        &self,
        n: &NodeState,
        mut after: Option<u64>,
        mut before: Option<u64>,
        backward: bool,
        want: u64,
        keep: &dyn Fn(&Item) -> bool,
    ) -> Result<Vec<Item>, Error> {
        let mut found: Vec<Item> = Vec::new();
        loop {
            let chunk = self.store.items_range(
                n.rec.uid,
                &ItemRange {
                    after,
                    before,
                    skip: 0,
                    limit: CHUNK,
                    from_end: backward,
                },
            )?;
            let (Some(oldest), Some(newest)) = (chunk.first(), chunk.last()) else {
                break;
            };
            let short = (chunk.len() as u64) < CHUNK;
            if backward {
                before = Some(oldest.seq);
                for i in chunk.into_iter().rev() {
                    if (found.len() as u64) < want && keep(&i) {
                        found.push(i);
                    }
                }
            } else {
                after = Some(newest.seq);
                for i in chunk {
                    if (found.len() as u64) < want && keep(&i) {
                        found.push(i);
                    }
                }
            }
            if short || (found.len() as u64) >= want {
                break;
            }
        }
        if backward {
            found.reverse();
        }
        Ok(found)
    }
}

/// True when `t` lies within the inclusive bounds `start..=end` (absent bounds admit all).
fn within(t: u64, start: Option<u64>, end: Option<u64>) -> bool {
    // Written out: `Option::is_none_or` is newer than the workspace's rust-version.
    let after_start = match start {
        Some(s) => t >= s,
        None => true,
    };
    let before_end = match end {
        Some(e) => t <= e,
        None => true,
    };
    after_start && before_end
}

/// The tighter of two exclusive lower bounds.
fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The tighter of two exclusive upper bounds.
fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
