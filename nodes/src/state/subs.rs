//! A node's subscriptions, compact.
//!
//! At a million subscriptions every byte of a subscription costs a megabyte, so inside the
//! engine a subscription is not a [`Subscription`] (own JID string, subid `String`, options
//! with a `Vec`) but:
//! - a key: the interned bare JID ([`JidRef`]), the full JID when it subscribed with one,
//!   and the subid as a number ([`SubNum`]);
//! - a value: its state, and its options only when they differ from the defaults (every
//!   subscription with default options shares one [`default_options`]).
//!
//! Keys sort by subscriber, bare JID first and then its full JIDs, then by subid: all the
//! subscriptions of one subscriber are adjacent, and a node's subscriptions can be walked
//! in JID order, one recipient at a time, without sorting.
//!
//! Subscriptions with a content filter (`x-roost#filter`) are kept apart from the others,
//! with the node's [`FilterIndex`] over their filters ([`SubTable`]'s `filtered`): an item
//! reaches the unfiltered ones by walking them, and the filtered ones through the index,
//! so a publish never walks past filtered subscriptions its item does not match. A node
//! without filters holds no index (one empty pointer).
//!
//! Subids the engine generates are 16 lowercase hex digits: the number they spell is the
//! subid. Data written otherwise (another subid form) keeps working: such a subid is kept
//! as text beside the table, under a number of its own that no subid of the engine's form
//! uses on that node ([`SubTable`]'s `legacy` map).

use super::jids::JidRef;
use crate::filter::{Filter, FilterIndex};
use crate::model::{SubOptions, Subscription, SubscriptionState};
use crate::{BareJid, FullJid, Jid};
use rustc_hash::FxHashMap;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::sync::{Arc, OnceLock};

/// A subid inside the engine.
pub(crate) type SubNum = u64;

/// The number a subid of the engine's form spells: exactly 16 lowercase hex digits.
pub(crate) fn numeric(subid: &str) -> Option<SubNum> {
    let b = subid.as_bytes();
    if b.len() == 16 && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        SubNum::from_str_radix(subid, 16).ok()
    } else {
        None
    }
}

/// A number as a subid of the engine's form.
pub(crate) fn format(num: SubNum) -> String {
    format!("{num:016x}")
}

/// The options of every subscription that has not changed them.
pub(crate) fn default_options() -> &'static SubOptions {
    static DEFAULT: OnceLock<SubOptions> = OnceLock::new();
    DEFAULT.get_or_init(SubOptions::default)
}

/// Where a subscription sorts in its node: see the module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SubKey {
    /// The subscriber's bare JID.
    pub(crate) jid: JidRef,
    /// The full JID, when it subscribed with one (`None` sorts first: bare before full).
    pub(crate) full: Option<Arc<FullJid>>,
    /// The subid.
    pub(crate) num: SubNum,
}

impl SubKey {
    /// The smallest key of `jid`'s subscriptions.
    fn first_of(jid: &JidRef) -> Self {
        SubKey {
            jid: jid.clone(),
            full: None,
            num: 0,
        }
    }

    /// The JID as it subscribed.
    pub(crate) fn subscriber(&self) -> Jid {
        match &self.full {
            Some(full) => Jid::from((**full).clone()),
            None => Jid::from(self.jid.bare().clone()),
        }
    }

    /// Whether the JID as it subscribed is exactly `jid`.
    pub(crate) fn is(&self, jid: &Jid) -> bool {
        match (&self.full, jid.try_as_full()) {
            (Some(full), Ok(j)) => **full == *j,
            (None, Err(b)) => *self.jid.bare() == *b,
            _ => false,
        }
    }
}

/// A subscription's state and options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubVal {
    pub(crate) state: SubscriptionState,
    /// `None`: the defaults.
    options: Option<Box<SubOptions>>,
}

impl SubVal {
    /// The value of `sub`, its options shared when they are the defaults.
    pub(crate) fn of(sub: &Subscription) -> Self {
        SubVal {
            state: sub.state,
            options: (sub.options != *default_options()).then(|| Box::new(sub.options.clone())),
        }
    }

    /// A value from its parts, `None` options meaning the defaults.
    pub(crate) fn new(state: SubscriptionState, options: Option<SubOptions>) -> Self {
        SubVal {
            state,
            options: options.filter(|o| o != default_options()).map(Box::new),
        }
    }

    /// The options.
    pub(crate) fn options(&self) -> &SubOptions {
        self.options.as_deref().unwrap_or(default_options())
    }
}

/// How a subid is spelled: a number of the engine's form, or text kept as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SubId<'a> {
    Num(SubNum),
    Text(&'a str),
}

impl SubId<'_> {
    /// The subid as on the wire and on disk.
    pub(crate) fn text(self) -> String {
        match self {
            SubId::Num(n) => format(n),
            SubId::Text(t) => t.to_owned(),
        }
    }

    /// Whether the subid is spelled `s`.
    pub(crate) fn is(self, s: &str) -> bool {
        match self {
            SubId::Num(n) => numeric(s) == Some(n),
            SubId::Text(t) => t == s,
        }
    }
}

/// One subscription, seen through its table (or planned: see [`Planned`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sub<'a> {
    pub(crate) key: &'a SubKey,
    pub(crate) val: &'a SubVal,
    pub(crate) subid: SubId<'a>,
}

impl<'a> Sub<'a> {
    /// The subscriber's bare JID.
    pub(crate) fn bare(&self) -> &'a BareJid {
        self.key.jid.bare()
    }

    /// The JID as it subscribed (bare or full).
    pub(crate) fn jid(&self) -> Jid {
        self.key.subscriber()
    }

    /// Whether it subscribed as a full JID.
    pub(crate) fn is_full(&self) -> bool {
        self.key.full.is_some()
    }

    /// The subid as on the wire.
    pub(crate) fn subid(&self) -> String {
        self.subid.text()
    }

    /// Subscribed, pending or unconfigured.
    pub(crate) fn state(&self) -> SubscriptionState {
        self.val.state
    }

    /// Its delivery options.
    pub(crate) fn options(&self) -> &'a SubOptions {
        self.val.options()
    }

    /// Its content filter, as stored (canonical text), when it has one.
    pub(crate) fn filter(&self) -> Option<&'a str> {
        self.options().filter.as_deref()
    }

    /// The subscription as the API and the store spell it.
    pub(crate) fn to_subscription(self) -> Subscription {
        Subscription {
            jid: self.jid(),
            subid: self.subid(),
            state: self.state(),
            options: self.options().clone(),
        }
    }
}

/// A subscription not in any table (yet): the one a subscribe creates, seen as a [`Sub`].
pub(crate) struct Planned {
    key: SubKey,
    val: SubVal,
    subid: String,
}

impl Planned {
    pub(crate) fn new(sub: &Subscription) -> Self {
        Planned {
            key: SubKey {
                jid: JidRef::detached(sub.jid.to_bare()),
                full: sub.jid.try_as_full().ok().map(|f| Arc::new(f.clone())),
                num: numeric(&sub.subid).unwrap_or(0),
            },
            val: SubVal::of(sub),
            subid: sub.subid.clone(),
        }
    }

    pub(crate) fn view(&self) -> Sub<'_> {
        Sub {
            key: &self.key,
            val: &self.val,
            subid: SubId::Text(&self.subid),
        }
    }
}

/// Subids not of the engine's form: the text, and the key it is stored under.
type Legacy = BTreeMap<SubNum, (Box<str>, SubKey)>;

/// One node's subscriptions.
#[derive(Debug, Default)]
pub(crate) struct SubTable {
    /// The subscriptions without a content filter.
    by_key: BTreeMap<SubKey, SubVal>,
    /// Every subid number in use, for uniqueness (subids are unique per node).
    nums: BTreeSet<SubNum>,
    /// Subids of another form, by the number standing for them. Almost always absent.
    legacy: Option<Box<Legacy>>,
    /// The subscriptions with a content filter, and their index; absent when none has one.
    filtered: Option<Box<Filtered>>,
}

/// A node's filtered subscriptions.
#[derive(Debug, Default)]
struct Filtered {
    by_key: BTreeMap<SubKey, SubVal>,
    /// Their filters, by subid number. A stored filter that no longer parses (a corrupt
    /// record) is not in it: that subscription hears of no item, which errs on the side
    /// of sending less than the subscriber asked for, never more.
    index: FilterIndex<SubNum>,
    /// The key of each subid number in `by_key`, to turn the index's answers into
    /// subscriptions.
    keys: FxHashMap<SubNum, SubKey>,
}

impl Filtered {
    /// File `key` with value `val` (whose options carry a filter).
    fn put(&mut self, key: SubKey, val: SubVal) -> Option<SubVal> {
        match val.options().filter.as_deref().map(Filter::parse_stored) {
            Some(Ok(f)) => self.index.insert(key.num, &f),
            _ => {
                self.index.remove(&key.num);
            }
        }
        self.keys.insert(key.num, key.clone());
        self.by_key.insert(key, val)
    }

    fn remove(&mut self, key: &SubKey) -> Option<(SubKey, SubVal)> {
        let entry = self.by_key.remove_entry(key)?;
        if self.keys.get(&key.num) == Some(key) {
            self.keys.remove(&key.num);
            self.index.remove(&key.num);
        }
        Some(entry)
    }
}

/// Two iterators of subscriptions in key order, merged into one in key order.
struct Merge<'a, I: Iterator<Item = Sub<'a>>, J: Iterator<Item = Sub<'a>>>(
    Peekable<I>,
    Peekable<J>,
);

impl<'a, I: Iterator<Item = Sub<'a>>, J: Iterator<Item = Sub<'a>>> Iterator for Merge<'a, I, J> {
    type Item = Sub<'a>;

    fn next(&mut self) -> Option<Sub<'a>> {
        let first = match (self.0.peek(), self.1.peek()) {
            (Some(a), Some(b)) => a.key.cmp(b.key) != Ordering::Greater,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if first {
            self.0.next()
        } else {
            self.1.next()
        }
    }
}

impl SubTable {
    /// A table of subscriptions whose subids are all of the engine's form: `entries` sorted
    /// by key, `nums` their subid numbers, sorted, without repeats. Built from sorted runs,
    /// the maps' nodes are full, as [`SubTable::compact`] leaves them. Filtered
    /// subscriptions go apart into their map and the node's filter index, as
    /// [`SubTable::put`] files them.
    pub(crate) fn from_sorted(entries: Vec<(SubKey, SubVal)>, nums: Vec<SubNum>) -> Self {
        let filtered = |v: &SubVal| v.options().filter.is_some();
        let mut table = SubTable {
            by_key: BTreeMap::new(),
            nums: nums.into_iter().collect(),
            legacy: None,
            filtered: None,
        };
        if !entries.iter().any(|(_, v)| filtered(v)) {
            // The usual case: no second pass, no second vector.
            table.by_key = entries.into_iter().collect();
            return table;
        }
        let (with, without): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(_, v)| filtered(v));
        table.by_key = without.into_iter().collect();
        for (key, val) in with {
            table.insert(key, val);
        }
        table
    }

    /// How many subscriptions there are.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len() + self.filtered.as_ref().map_or(0, |f| f.by_key.len())
    }

    /// Whether `num` is a subid number in use.
    pub(crate) fn contains_num(&self, num: SubNum) -> bool {
        self.nums.contains(&num)
    }

    fn view<'a>(&'a self, key: &'a SubKey, val: &'a SubVal) -> Sub<'a> {
        let text = self
            .legacy
            .as_ref()
            .and_then(|l| l.get(&key.num))
            .filter(|(_, k)| k == key);
        Sub {
            key,
            val,
            subid: match text {
                Some((t, _)) => SubId::Text(t),
                None => SubId::Num(key.num),
            },
        }
    }

    /// The filtered subscriptions, as a map (empty when there are none).
    fn filtered_map(&self) -> &BTreeMap<SubKey, SubVal> {
        static EMPTY: BTreeMap<SubKey, SubVal> = BTreeMap::new();
        self.filtered.as_ref().map_or(&EMPTY, |f| &f.by_key)
    }

    /// Both maps' entries in `range`, merged in key order.
    fn merged<'a, R>(&'a self, range: R) -> impl Iterator<Item = Sub<'a>> + 'a
    where
        R: std::ops::RangeBounds<SubKey> + Clone + 'a,
    {
        let plain = self.by_key.range(range.clone());
        let filtered = self.filtered_map().range(range);
        Merge(
            plain.map(|(k, v)| self.view(k, v)).peekable(),
            filtered.map(|(k, v)| self.view(k, v)).peekable(),
        )
    }

    /// Every subscription, in key order (by subscriber).
    pub(crate) fn iter(&self) -> impl Iterator<Item = Sub<'_>> {
        self.merged::<std::ops::RangeFull>(..)
    }

    /// The subscriptions of `jid` (bare, and its full JIDs), in key order.
    pub(crate) fn of<'a>(&'a self, jid: &JidRef) -> impl Iterator<Item = Sub<'a>> + 'a {
        let jid = jid.clone();
        self.merged(SubKey::first_of(&jid)..)
            .take_while(move |s| s.key.jid == jid)
    }

    /// The subscriptions of subscribers after `jid` (all when `None`), in key order.
    pub(crate) fn after<'a>(&'a self, jid: Option<&JidRef>) -> impl Iterator<Item = Sub<'a>> + 'a {
        let skip = jid.cloned();
        self.merged(Self::from(jid))
            .skip_while(move |s| skip.as_ref().is_some_and(|j| s.key.jid == *j))
    }

    /// [`SubTable::after`] without the filtered subscriptions.
    pub(crate) fn plain_after<'a>(
        &'a self,
        jid: Option<&JidRef>,
    ) -> impl Iterator<Item = Sub<'a>> + 'a {
        let skip = jid.cloned();
        self.by_key
            .range(Self::from(jid))
            .skip_while(move |(k, _)| skip.as_ref().is_some_and(|j| k.jid == *j))
            .map(|(k, v)| self.view(k, v))
    }

    /// The keys from `jid`'s first on (all when `None`). No key bounds a JID's keys from
    /// above, so walks after `jid` start here and skip its keys.
    fn from(jid: Option<&JidRef>) -> (std::ops::Bound<SubKey>, std::ops::Bound<SubKey>) {
        use std::ops::Bound;
        let start = match jid {
            Some(j) => Bound::Included(SubKey::first_of(j)),
            None => Bound::Unbounded,
        };
        (start, Bound::Unbounded)
    }

    /// Whether some subscription has a content filter.
    pub(crate) fn has_filters(&self) -> bool {
        self.filtered.is_some()
    }

    /// The keys of the filtered subscriptions whose filter matches `payload` (an item's
    /// serialized payload), in key order.
    pub(crate) fn matching(&self, payload: &str) -> Vec<SubKey> {
        let Some(f) = &self.filtered else {
            return Vec::new();
        };
        let mut keys: Vec<SubKey> = f
            .index
            .matching(payload)
            .filter_map(|num| f.keys.get(&num).cloned())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The number that stands for `subid` on this node, if some subscription could have it.
    pub(crate) fn num_of(&self, subid: &str) -> Option<SubNum> {
        let legacy = self.legacy.as_deref();
        match numeric(subid) {
            // A number standing for a text subid is not spelled this way.
            Some(n) if legacy.is_some_and(|l| l.contains_key(&n)) => None,
            Some(n) => Some(n),
            None => legacy?
                .iter()
                .find(|(_, (t, _))| &**t == subid)
                .map(|(n, _)| *n),
        }
    }

    /// The subscription of exactly `jid` with subid `subid`.
    pub(crate) fn find<'a>(&'a self, owner: &JidRef, jid: &Jid, subid: &str) -> Option<Sub<'a>> {
        let key = SubKey {
            jid: owner.clone(),
            full: jid.try_as_full().ok().map(|f| Arc::new(f.clone())),
            num: self.num_of(subid)?,
        };
        self.get(&key)
    }

    /// The subscription whose key is `key`.
    pub(crate) fn get<'a>(&'a self, key: &SubKey) -> Option<Sub<'a>> {
        let (k, v) = self
            .by_key
            .get_key_value(key)
            .or_else(|| self.filtered_map().get_key_value(key))?;
        Some(self.view(k, v))
    }

    fn contains_key(&self, key: &SubKey) -> bool {
        self.by_key.contains_key(key) || self.filtered_map().contains_key(key)
    }

    /// Store `sub` under `jid` (its interned bare JID). Returns its key, what it replaced
    /// (its old value) and any other subscription it displaced: one with the same subid
    /// under another JID, which only a corrupt store or a foreign writer could produce.
    pub(crate) fn put(
        &mut self,
        jid: JidRef,
        sub: &Subscription,
    ) -> (SubKey, Option<SubVal>, Option<(SubKey, SubVal)>) {
        let full = sub.jid.try_as_full().ok().map(|f| Arc::new(f.clone()));
        let num = self.num_for(&sub.subid);
        let key = SubKey { jid, full, num };
        let fresh = self.nums.insert(num);
        let displaced = if !fresh && !self.contains_key(&key) {
            let other = self
                .by_key
                .keys()
                .chain(self.filtered_map().keys())
                .find(|k| k.num == num)
                .cloned();
            other.and_then(|k| self.take(&k))
        } else {
            None
        };
        if numeric(&sub.subid).is_none() {
            self.legacy
                .get_or_insert_with(Default::default)
                .insert(num, (sub.subid.as_str().into(), key.clone()));
        }
        // Its filter may have come or gone: it is in one map or the other, never both.
        let old = self.take(&key).map(|(_, v)| v);
        self.insert(key.clone(), SubVal::of(sub));
        (key, old, displaced)
    }

    /// File `val` under `key` in the map its filter says.
    fn insert(&mut self, key: SubKey, val: SubVal) {
        if val.options().filter.is_some() {
            self.filtered
                .get_or_insert_with(Default::default)
                .put(key, val);
        } else {
            self.by_key.insert(key, val);
        }
    }

    /// Take `key`'s entry out of whichever map holds it (its number stays in use).
    fn take(&mut self, key: &SubKey) -> Option<(SubKey, SubVal)> {
        if let Some(entry) = self.by_key.remove_entry(key) {
            return Some(entry);
        }
        let f = self.filtered.as_deref_mut()?;
        let entry = f.remove(key);
        if f.by_key.is_empty() {
            // No filter left: the node is back to costing nothing.
            self.filtered = None;
        }
        entry
    }

    /// The number `subid` is stored under: its own for the engine's form (moving a text
    /// subid that stood on it aside), the one it already has, or a free one.
    fn num_for(&mut self, subid: &str) -> SubNum {
        if let Some(n) = numeric(subid) {
            self.move_legacy_off(n);
            return n;
        }
        if let Some(n) = self.num_of(subid) {
            return n;
        }
        // Any free number will do; start from a hash of the text so that several text
        // subids rarely probe the same numbers.
        let mut n = subid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        while self.nums.contains(&n) {
            n = n.wrapping_add(1);
        }
        n
    }

    /// A subid of the engine's form needs number `n`, which a text subid holds: renumber it.
    fn move_legacy_off(&mut self, n: SubNum) {
        let Some((text, key)) = self.legacy.as_deref_mut().and_then(|l| l.remove(&n)) else {
            return;
        };
        let Some((_, val)) = self.take(&key) else {
            return;
        };
        self.nums.remove(&n);
        let mut m = n.wrapping_add(1);
        while self.nums.contains(&m) || m == n {
            m = m.wrapping_add(1);
        }
        let moved = SubKey { num: m, ..key };
        if let Some(l) = self.legacy.as_deref_mut() {
            l.insert(m, (text, moved.clone()));
        }
        self.nums.insert(m);
        self.insert(moved, val);
    }

    /// Remove the subscription of exactly `jid` (interned as `owner`) with subid `subid`;
    /// failing that (a corrupt store), whichever has that subid.
    pub(crate) fn remove(
        &mut self,
        owner: Option<&JidRef>,
        jid: &Jid,
        subid: &str,
    ) -> Option<(SubKey, SubVal)> {
        let num = self.num_of(subid)?;
        let exact = owner.map(|o| SubKey {
            jid: o.clone(),
            full: jid.try_as_full().ok().map(|f| Arc::new(f.clone())),
            num,
        });
        let key = match exact.filter(|k| self.contains_key(k)) {
            Some(k) => k,
            None => self
                .by_key
                .keys()
                .chain(self.filtered_map().keys())
                .find(|k| k.num == num)?
                .clone(),
        };
        self.remove_key(&key)
    }

    /// Remove the subscription whose key is `key`.
    pub(crate) fn remove_key(&mut self, key: &SubKey) -> Option<(SubKey, SubVal)> {
        let entry = self.take(key)?;
        self.nums.remove(&key.num);
        if let Some(l) = self.legacy.as_deref_mut() {
            if l.get(&key.num).is_some_and(|(_, k)| k == key) {
                l.remove(&key.num);
            }
            if l.is_empty() {
                self.legacy = None;
            }
        }
        Some(entry)
    }

    /// Rebuild the maps from their sorted contents: maps built by inserting in random order
    /// leave their nodes a third empty; built from sorted input they are full (after
    /// loading, when nothing will be inserted for a while).
    pub(crate) fn compact(&mut self) {
        self.by_key = std::mem::take(&mut self.by_key).into_iter().collect();
        self.nums = std::mem::take(&mut self.nums).into_iter().collect();
        if let Some(f) = self.filtered.as_deref_mut() {
            f.by_key = std::mem::take(&mut f.by_key).into_iter().collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SubOptions;

    fn sub(jid: &str, subid: &str) -> Subscription {
        Subscription {
            jid: Jid::new(jid).unwrap(),
            subid: subid.to_owned(),
            state: SubscriptionState::Subscribed,
            options: SubOptions::default(),
        }
    }

    fn owner(jid: &str) -> JidRef {
        JidRef::detached(Jid::new(jid).unwrap().to_bare())
    }

    #[test]
    fn subids_of_the_engine_form_are_numbers_others_are_kept_as_text() {
        assert_eq!(numeric("00000000000000ff"), Some(255));
        assert_eq!(
            numeric("00000000000000FF"),
            None,
            "upper case is another form"
        );
        assert_eq!(numeric("ff"), None);
        assert_eq!(format(255), "00000000000000ff");
        let mut t = SubTable::default();
        t.put(owner("a@x"), &sub("a@x", "legacy-1"));
        t.put(owner("b@x/r"), &sub("b@x/r", "00000000000000ff"));
        let seen: Vec<(String, String)> =
            t.iter().map(|s| (s.jid().to_string(), s.subid())).collect();
        assert_eq!(
            seen,
            [
                ("a@x".to_owned(), "legacy-1".to_owned()),
                ("b@x/r".to_owned(), "00000000000000ff".to_owned())
            ]
        );
        let a = owner("a@x");
        let a_jid = Jid::new("a@x").unwrap();
        assert!(t.find(&a, &a_jid, "legacy-1").is_some());
        // The number standing for the text is not a subid of the engine's form.
        let n = t.num_of("legacy-1").unwrap();
        assert!(t.find(&a, &a_jid, &format(n)).is_none());
        assert_eq!(t.remove(Some(&a), &a_jid, "legacy-1").unwrap().0.num, n);
        assert!(t.legacy.is_none() && t.len() == 1);
    }

    #[test]
    fn a_number_wanted_by_an_engine_subid_is_taken_from_a_text_subid() {
        let mut t = SubTable::default();
        t.put(owner("a@x"), &sub("a@x", "text"));
        let n = t.num_of("text").unwrap();
        // Loading meets a subid of the engine's form that spells the same number.
        t.put(owner("b@x"), &sub("b@x", &format(n)));
        let b = owner("b@x");
        let b_jid = Jid::new("b@x").unwrap();
        assert_eq!(t.find(&b, &b_jid, &format(n)).unwrap().subid(), format(n));
        let a = owner("a@x");
        let a_jid = Jid::new("a@x").unwrap();
        let moved = t.find(&a, &a_jid, "text").expect("still found by its text");
        assert_ne!(moved.key.num, n);
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn default_options_are_shared_and_changed_ones_kept() {
        let mut t = SubTable::default();
        t.put(owner("a@x"), &sub("a@x", &format(1)));
        let mut s = sub("b@x", &format(2));
        s.options.include_body = true;
        t.put(owner("b@x"), &s);
        let all: Vec<Sub> = t.iter().collect();
        assert!(std::ptr::eq(all[0].options(), default_options()));
        assert!(all[1].options().include_body);
        assert_eq!(all[1].to_subscription(), s);
    }

    #[test]
    fn a_subscriber_s_subscriptions_are_adjacent_bare_first() {
        let mut t = SubTable::default();
        for (jid, id) in [
            ("b@x/2", 1),
            ("a@x", 2),
            ("b@x", 3),
            ("b@x/1", 4),
            ("c@x", 5),
        ] {
            t.put(owner(jid), &sub(jid, &format(id)));
        }
        let order: Vec<String> = t.iter().map(|s| s.jid().to_string()).collect();
        assert_eq!(order, ["a@x", "b@x", "b@x/1", "b@x/2", "c@x"]);
        let of_b: Vec<String> = t.of(&owner("b@x")).map(|s| s.jid().to_string()).collect();
        assert_eq!(of_b, ["b@x", "b@x/1", "b@x/2"]);
        let after_a: Vec<String> = t
            .after(Some(&owner("a@x")))
            .map(|s| s.jid().to_string())
            .collect();
        assert_eq!(after_a, ["b@x", "b@x/1", "b@x/2", "c@x"]);
        let after_b: Vec<String> = t
            .after(Some(&owner("b@x")))
            .map(|s| s.jid().to_string())
            .collect();
        assert_eq!(after_b, ["c@x"]);
    }

    fn filtered(jid: &str, subid: &str, f: &str) -> Subscription {
        let mut s = sub(jid, subid);
        s.options.filter = Some(f.to_owned());
        s
    }

    #[test]
    fn filtered_subscriptions_are_kept_apart_but_listed_together() {
        let mut t = SubTable::default();
        t.put(owner("b@x"), &sub("b@x", &format(1)));
        t.put(owner("a@x"), &filtered("a@x", &format(2), "@l = 'e'"));
        t.put(owner("b@x"), &filtered("b@x", &format(3), "@l = 'w'"));
        t.put(owner("c@x"), &sub("c@x", &format(4)));
        assert_eq!(t.len(), 4);
        let all: Vec<String> = t.iter().map(|s| s.subid()).collect();
        assert_eq!(all, [format(2), format(1), format(3), format(4)]);
        let of_b: Vec<String> = t.of(&owner("b@x")).map(|s| s.subid()).collect();
        assert_eq!(of_b, [format(1), format(3)]);
        let after_a: Vec<String> = t.after(Some(&owner("a@x"))).map(|s| s.subid()).collect();
        assert_eq!(after_a, [format(1), format(3), format(4)]);
        let plain: Vec<String> = t.plain_after(None).map(|s| s.subid()).collect();
        assert_eq!(plain, [format(1), format(4)]);
        let hit = t.matching("<x xmlns='u' l='w'/>");
        assert_eq!(hit.len(), 1);
        assert_eq!(t.get(&hit[0]).unwrap().subid(), format(3));

        // A filter removed moves the subscription back; the last one gone, no index is left.
        t.put(owner("b@x"), &sub("b@x", &format(3)));
        assert!(t.matching("<x xmlns='u' l='w'/>").is_empty());
        assert_eq!(t.plain_after(None).count(), 3);
        let a = owner("a@x");
        t.remove(Some(&a), &Jid::new("a@x").unwrap(), &format(2));
        assert!(!t.has_filters());
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn a_filter_that_no_longer_parses_matches_nothing() {
        let mut t = SubTable::default();
        t.put(owner("a@x"), &filtered("a@x", &format(1), "@l = "));
        assert!(t.has_filters());
        assert!(t.matching("<x xmlns='u' l=''/>").is_empty());
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn a_renumbered_text_subid_keeps_its_filter() {
        let mut t = SubTable::default();
        t.put(owner("a@x"), &filtered("a@x", "text", "@l = 'e'"));
        let n = t.num_of("text").unwrap();
        t.put(owner("b@x"), &sub("b@x", &format(n)));
        let hit = t.matching("<x xmlns='u' l='e'/>");
        assert_eq!(hit.len(), 1);
        assert_eq!(t.get(&hit[0]).unwrap().subid(), "text");
        assert_ne!(hit[0].num, n);
    }
}
