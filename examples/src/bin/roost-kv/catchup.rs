//! Catching up: one read of the node's whole history (XEP-0313, paged with RSM), merged
//! with the live notifications that arrive while it runs.
//!
//! # Why the whole history, every time
//!
//! Republishing an item moves it to the end of the node's history (Roost gives it a new
//! sequence number), so "the history after the newest item I hold" misses changes: a clone
//! holds `a, b, k`; while it is away `b` and then `k` are written again; the history is now
//! `a, b', k'` and "after `k`" is empty, though `b` changed. Item ids say nothing about
//! versions, and the publish times of the history come from the service's clock, which
//! may step back. Deleted keys leave nothing in the history either, so noticing them
//! needs the whole key set anyway. A pass therefore reads everything the node holds: its
//! cost is the size of the store (at most `pubsub#max_items` items, 250 per page), once per
//! (re)connection, whatever the length of the absence.
//!
//! # Why it is right while writes go on
//!
//! Roost handles stanzas one at a time and sends what each produces in that order, and
//! the server keeps that order on the way to one client. So the notification of every
//! change the service made before it read a page arrives before that page's results, and
//! the notifications of later changes after them. A pass applies history results and
//! notifications to one map in the order they arrive: each result is the key's value at
//! the moment its page was read, with the changes before and after it on either side.
//!
//! Pages continue after the last item read (RSM `after`). If that item was rewritten or
//! retracted before the next page was read, "after it" would mean after its new place at
//! the end (or an `item-not-found`), skipping what lies between. Its notification then
//! arrives before the next page's results, so the pass notices, keeps the values it got
//! (each is right as of its arrival), but not their places: it reads again after the
//! newest item of the pages read in order from the start (each continuing from an item
//! untouched at the time) that nothing has touched since. Untouched items never move, and
//! everything rewritten meanwhile lies after them.

use std::collections::{BTreeMap, HashMap};

use crate::kv::Change;

/// One read of the history in progress.
#[derive(Debug, Default)]
pub struct Pass {
    /// The store as of the last stanza received.
    map: BTreeMap<String, String>,
    /// Counts the stanzas applied: the order in which they arrived.
    now: u64,
    /// History results of the pages read in order from the start, in arrival order:
    /// where the next page may continue from.
    read: Vec<(u64, String)>,
    /// When each key was last read in those pages.
    read_at: HashMap<String, u64>,
    /// History results of the page in flight: moved to `read` when it turns out to have
    /// continued where the previous one ended.
    pending: Vec<(u64, String)>,
    /// When each key was last named by a notification.
    event_at: HashMap<String, u64>,
    /// When the node was last purged (every item gone at once).
    purged_at: u64,
    /// The item the page in flight reads after, and when it was read.
    anchor: Option<(String, u64)>,
    /// Pages asked for so far.
    pub pages: u64,
    /// Pages read again because the item they continued from had changed.
    pub rereads: u64,
}

/// What to do after a page.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Ask for the page after this item (from the start when `None`).
    Page(Option<String>),
    /// The pass is complete: the store as it stands.
    Done(BTreeMap<String, String>),
}

impl Pass {
    /// A pass that starts from the first item: ask for the page [`Pass::first`] says.
    pub fn new() -> Pass {
        Pass {
            pages: 1,
            ..Pass::default()
        }
    }

    /// The first page to ask for.
    pub fn first(&self) -> Option<String> {
        None
    }

    /// A notification: a key written or deleted.
    pub fn on_change(&mut self, change: &Change) {
        self.now += 1;
        self.event_at.insert(change.key().to_owned(), self.now);
        apply(&mut self.map, change);
    }

    /// A notification: every item is gone.
    pub fn on_purge(&mut self) {
        self.now += 1;
        self.purged_at = self.now;
        self.map.clear();
    }

    /// A history result: `key` holds `value` (`None`: an item that is not a value).
    pub fn on_result(&mut self, key: &str, value: Option<String>) {
        self.now += 1;
        self.pending.push((self.now, key.to_owned()));
        match value {
            Some(v) => self.map.insert(key.to_owned(), v),
            None => self.map.remove(key),
        };
    }

    /// The end of a page (the IQ result): `complete` when the service said it was the last.
    pub fn on_fin(&mut self, complete: bool) -> Next {
        let continued = match &self.anchor {
            None => true,
            Some((id, t)) => self.untouched_since(id, *t),
        };
        let pending = std::mem::take(&mut self.pending);
        if !continued {
            // Its results lie after the changed item's new place, not after the pages
            // read so far: their values count, their places do not.
            self.rereads += 1;
            return self.next_page();
        }
        for (t, id) in pending {
            self.read_at.insert(id.clone(), t);
            self.read.push((t, id));
        }
        if complete {
            return Next::Done(std::mem::take(&mut self.map));
        }
        self.next_page()
    }

    /// The page failed with `item-not-found`: the item it continued from was retracted.
    pub fn on_anchor_gone(&mut self) -> Next {
        if let Some((id, _)) = &self.anchor {
            // Normally its retraction was notified already; count it touched regardless,
            // so that it is not picked again.
            self.now += 1;
            self.event_at.insert(id.clone(), self.now);
        }
        self.pending.clear();
        self.rereads += 1;
        self.next_page()
    }

    fn next_page(&mut self) -> Next {
        self.anchor = self
            .read
            .iter()
            .rev()
            .find(|(t, id)| self.read_at.get(id) == Some(t) && self.untouched_since(id, *t))
            .cloned()
            .map(|(t, id)| (id, t));
        self.pages += 1;
        Next::Page(self.anchor.as_ref().map(|(id, _)| id.clone()))
    }

    /// True when no notification named `id`, and no purge came, after time `t`.
    fn untouched_since(&self, id: &str, t: u64) -> bool {
        self.purged_at < t && self.event_at.get(id).is_none_or(|&e| e < t)
    }
}

/// Apply one change to a map; true when it changed something.
pub fn apply(map: &mut BTreeMap<String, String>, change: &Change) -> bool {
    match change {
        Change::Put(k, v) => {
            if map.get(k) == Some(v) {
                return false;
            }
            map.insert(k.clone(), v.clone());
            true
        }
        Change::Del(k) => map.remove(k).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> Change {
        Change::Put(k.into(), v.into())
    }

    fn del(k: &str) -> Change {
        Change::Del(k.into())
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn page(p: &mut Pass, items: &[(&str, &str)]) {
        for (k, v) in items {
            p.on_result(k, Some(v.to_string()));
        }
    }

    #[test]
    fn a_quiet_node_is_read_page_by_page() {
        let mut p = Pass::new();
        assert_eq!(p.first(), None);
        page(&mut p, &[("a", "1"), ("b", "2")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("b".into())));
        page(&mut p, &[("c", "3")]);
        assert_eq!(
            p.on_fin(true),
            Next::Done(map(&[("a", "1"), ("b", "2"), ("c", "3")]))
        );
        assert_eq!((p.pages, p.rereads), (2, 0));
    }

    #[test]
    fn notifications_and_results_apply_in_arrival_order() {
        let mut p = Pass::new();
        // Written before its page was read: the page shows the new value already.
        p.on_change(&put("a", "new"));
        page(&mut p, &[("b", "2"), ("a", "new")]);
        // Deleted and rewritten after its page was read.
        p.on_change(&del("b"));
        p.on_change(&put("c", "late"));
        p.on_result("x", None); // not a value: absent
        assert_eq!(
            p.on_fin(true),
            Next::Done(map(&[("a", "new"), ("c", "late")]))
        );
    }

    #[test]
    fn a_page_after_a_rewritten_item_is_read_again_from_an_untouched_one() {
        // History a, b, k. The first page ends at k; k is rewritten before the next page
        // is read, so "after k" is empty (k is now last) though the history goes on.
        let mut p = Pass::new();
        page(&mut p, &[("a", "1"), ("b", "2"), ("k", "3")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("k".into())));
        p.on_change(&put("b", "2'"));
        p.on_change(&put("k", "3'"));
        // The service answers "nothing after k": not the end of the history.
        assert_eq!(p.on_fin(true), Next::Page(Some("a".into())));
        page(&mut p, &[("b", "2'"), ("k", "3'")]);
        assert_eq!(
            p.on_fin(true),
            Next::Done(map(&[("a", "1"), ("b", "2'"), ("k", "3'")]))
        );
        assert_eq!(p.rereads, 1);
    }

    #[test]
    fn the_places_of_a_page_read_after_a_moved_item_are_not_trusted() {
        // History a, b, k, m, n, read three at a time. k is rewritten and z written before
        // the second page: it reads after k's new place and finds only z. Continuing after
        // z would skip m and n.
        let mut p = Pass::new();
        page(&mut p, &[("a", "1"), ("b", "2"), ("k", "3")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("k".into())));
        p.on_change(&put("k", "3'"));
        p.on_change(&put("z", "9"));
        page(&mut p, &[("z", "9")]);
        assert_eq!(p.on_fin(true), Next::Page(Some("b".into())));
        page(&mut p, &[("m", "4"), ("n", "5"), ("k", "3'")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("k".into())));
        page(&mut p, &[("z", "9")]);
        assert_eq!(
            p.on_fin(true),
            Next::Done(map(&[
                ("a", "1"),
                ("b", "2"),
                ("k", "3'"),
                ("m", "4"),
                ("n", "5"),
                ("z", "9")
            ]))
        );
    }

    #[test]
    fn a_retracted_anchor_continues_from_the_item_before() {
        let mut p = Pass::new();
        page(&mut p, &[("a", "1"), ("b", "2")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("b".into())));
        p.on_change(&del("b"));
        assert_eq!(p.on_anchor_gone(), Next::Page(Some("a".into())));
        page(&mut p, &[("c", "3")]);
        assert_eq!(p.on_fin(true), Next::Done(map(&[("a", "1"), ("c", "3")])));
    }

    #[test]
    fn an_anchor_gone_without_notification_is_not_picked_again() {
        let mut p = Pass::new();
        page(&mut p, &[("a", "1"), ("b", "2")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("b".into())));
        assert_eq!(p.on_anchor_gone(), Next::Page(Some("a".into())));
        assert_eq!(p.on_anchor_gone(), Next::Page(None));
    }

    #[test]
    fn a_purge_restarts_from_the_first_item() {
        let mut p = Pass::new();
        page(&mut p, &[("a", "1")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("a".into())));
        p.on_purge();
        p.on_change(&put("z", "9"));
        assert_eq!(p.on_fin(true), Next::Page(None));
        page(&mut p, &[("z", "9")]);
        assert_eq!(p.on_fin(true), Next::Done(map(&[("z", "9")])));
    }

    #[test]
    fn an_item_read_again_is_a_valid_anchor_at_its_new_place() {
        let mut p = Pass::new();
        page(&mut p, &[("a", "1"), ("k", "2")]);
        p.on_change(&put("k", "2'"));
        page(&mut p, &[("k", "2'")]);
        assert_eq!(p.on_fin(false), Next::Page(Some("k".into())));
    }

    #[test]
    fn apply_reports_real_changes_only() {
        let mut m = map(&[("a", "1")]);
        assert!(!apply(&mut m, &put("a", "1")));
        assert!(apply(&mut m, &put("a", "2")));
        assert!(apply(&mut m, &del("a")));
        assert!(!apply(&mut m, &del("a")));
    }
}
