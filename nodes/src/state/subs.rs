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
//! Subids the engine generates are 16 lowercase hex digits: the number they spell is the
//! subid. Data written otherwise (another subid form) keeps working: such a subid is kept
//! as text beside the table, under a number of its own that no subid of the engine's form
//! uses on that node ([`SubTable`]'s `legacy` map).

use super::jids::JidRef;
use crate::model::{SubOptions, Subscription, SubscriptionState};
use crate::{BareJid, FullJid, Jid};
use std::collections::{BTreeMap, BTreeSet};
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
#[derive(Debug, Clone, Default)]
pub(crate) struct SubTable {
    by_key: BTreeMap<SubKey, SubVal>,
    /// Every subid number in use, for uniqueness (subids are unique per node).
    nums: BTreeSet<SubNum>,
    /// Subids of another form, by the number standing for them. Almost always absent.
    legacy: Option<Box<Legacy>>,
}

impl SubTable {
    /// A table of subscriptions whose subids are all of the engine's form: `entries` sorted
    /// by key, `nums` their subid numbers, sorted, without repeats. Built from sorted runs,
    /// the maps' nodes are full, as [`SubTable::compact`] leaves them.
    pub(crate) fn from_sorted(entries: Vec<(SubKey, SubVal)>, nums: Vec<SubNum>) -> Self {
        SubTable {
            by_key: entries.into_iter().collect(),
            nums: nums.into_iter().collect(),
            legacy: None,
        }
    }

    /// How many subscriptions there are.
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
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

    /// Every subscription, in key order (by subscriber).
    pub(crate) fn iter(&self) -> impl Iterator<Item = Sub<'_>> {
        self.by_key.iter().map(|(k, v)| self.view(k, v))
    }

    /// The subscriptions of `jid` (bare, and its full JIDs), in key order.
    pub(crate) fn of<'a>(&'a self, jid: &JidRef) -> impl Iterator<Item = Sub<'a>> + 'a {
        let jid = jid.clone();
        self.by_key
            .range(SubKey::first_of(&jid)..)
            .take_while(move |(k, _)| k.jid == jid)
            .map(|(k, v)| self.view(k, v))
    }

    /// The subscriptions of subscribers after `jid` (all when `None`), in key order.
    pub(crate) fn after<'a>(&'a self, jid: Option<&JidRef>) -> impl Iterator<Item = Sub<'a>> + 'a {
        use std::ops::Bound;
        // Start at `jid`'s first key and skip its keys: no key bounds them from above.
        let start = match jid {
            Some(j) => Bound::Included(SubKey::first_of(j)),
            None => Bound::Unbounded,
        };
        let skip = jid.cloned();
        self.by_key
            .range((start, Bound::Unbounded))
            .skip_while(move |(k, _)| skip.as_ref().is_some_and(|j| k.jid == *j))
            .map(|(k, v)| self.view(k, v))
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
        let (k, v) = self.by_key.get_key_value(&key)?;
        Some(self.view(k, v))
    }

    /// The subscription whose key is `key`.
    pub(crate) fn get<'a>(&'a self, key: &SubKey) -> Option<Sub<'a>> {
        let (k, v) = self.by_key.get_key_value(key)?;
        Some(self.view(k, v))
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
        let displaced = if !fresh && !self.by_key.contains_key(&key) {
            self.by_key
                .iter()
                .find(|(k, _)| k.num == num)
                .map(|(k, _)| k.clone())
                .and_then(|k| self.by_key.remove_entry(&k))
        } else {
            None
        };
        if numeric(&sub.subid).is_none() {
            self.legacy
                .get_or_insert_with(Default::default)
                .insert(num, (sub.subid.as_str().into(), key.clone()));
        }
        let old = self.by_key.insert(key.clone(), SubVal::of(sub));
        (key, old, displaced)
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
        let Some(legacy) = self.legacy.as_deref_mut() else {
            return;
        };
        let Some((text, key)) = legacy.remove(&n) else {
            return;
        };
        let Some(val) = self.by_key.remove(&key) else {
            return;
        };
        self.nums.remove(&n);
        let mut m = n.wrapping_add(1);
        while self.nums.contains(&m) || m == n {
            m = m.wrapping_add(1);
        }
        let moved = SubKey { num: m, ..key };
        legacy.insert(m, (text, moved.clone()));
        self.nums.insert(m);
        self.by_key.insert(moved, val);
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
        let key = match exact.filter(|k| self.by_key.contains_key(k)) {
            Some(k) => k,
            None => self.by_key.keys().find(|k| k.num == num)?.clone(),
        };
        self.remove_key(&key)
    }

    /// Remove the subscription whose key is `key`.
    pub(crate) fn remove_key(&mut self, key: &SubKey) -> Option<(SubKey, SubVal)> {
        let entry = self.by_key.remove_entry(key)?;
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
}
