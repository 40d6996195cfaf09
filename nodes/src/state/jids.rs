//! Interned bare JIDs, and what each JID holds across the service.
//!
//! A million subscriptions come from far fewer JIDs (the scale run: 100 000), so each bare
//! JID is stored once, behind a pointer that every subscription and affiliation naming it
//! shares. Beside it, per JID, the nodes it subscribes to and its affiliations: a JID's
//! subscriptions are found without scanning nodes.

use super::subs::SubNum;
use crate::model::Affiliation;
use crate::store::load::parse_bare_jid;
use crate::store::StoreError;
use crate::BareJid;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// An interned bare JID. Compared, ordered and hashed as the JID itself (its string), so
/// maps keyed by it are in JID order and can be searched with a plain `&BareJid`. `Arc`
/// rather than `Rc` so that the engine stays `Send`.
#[derive(Clone)]
pub(crate) struct JidRef(Arc<BareJid>);

impl JidRef {
    /// A reference that is not (yet) in the interner: for a subscription being planned.
    pub(crate) fn detached(jid: BareJid) -> Self {
        JidRef(Arc::new(jid))
    }

    /// The JID.
    pub(crate) fn bare(&self) -> &BareJid {
        &self.0
    }
}

impl std::ops::Deref for JidRef {
    type Target = BareJid;
    fn deref(&self) -> &BareJid {
        &self.0
    }
}

impl std::fmt::Debug for JidRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.as_str().fmt(f)
    }
}

impl PartialEq for JidRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for JidRef {}

impl PartialOrd for JidRef {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JidRef {
    fn cmp(&self, other: &Self) -> Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

// Consistent with `Eq`, `Ord` and `Hash`: all three are the `BareJid`'s.
impl Hash for JidRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl Borrow<BareJid> for JidRef {
    fn borrow(&self) -> &BareJid {
        &self.0
    }
}

// `BareJid` compares, orders and hashes as its string, so its text is an equivalent key:
// loading finds a stored JID by its text without parsing it.
impl Borrow<str> for JidRef {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

/// What one JID holds across the service.
#[derive(Debug, Default)]
pub(crate) struct PerJid {
    /// How many subscriptions it holds (itself and its full JIDs), on every node.
    pub(crate) subs: u32,
    /// The uids of the nodes it holds a subscription to, ascending.
    pub(crate) nodes: Vec<u64>,
    /// The subid numbers of those subscriptions, ascending (a damaged or imported store
    /// may repeat one): a fresh subid is checked against them in one search, not one
    /// lookup per node (`State::subid_near`).
    pub(crate) nums: Vec<SubNum>,
    /// Its affiliations other than `none`, by node uid, ascending.
    pub(crate) affs: Vec<(u64, Affiliation)>,
}

impl PerJid {
    fn is_empty(&self) -> bool {
        self.subs == 0 && self.affs.is_empty()
    }
}

/// The interner: every bare JID that holds a subscription or an affiliation.
#[derive(Debug, Default)]
pub(crate) struct Jids(HashMap<JidRef, PerJid>);

impl Jids {
    /// The interned reference for `jid`, interning it if needed.
    pub(crate) fn intern(&mut self, jid: &BareJid) -> JidRef {
        if let Some((r, _)) = self.0.get_key_value(jid) {
            return r.clone();
        }
        let r = JidRef(Arc::new(jid.clone()));
        self.0.insert(r.clone(), PerJid::default());
        r
    }

    /// The interned reference for the bare JID stored as `text`, parsing it only when no
    /// interned JID is spelled exactly so (stored JIDs are normalized: most are found).
    pub(crate) fn intern_stored(&mut self, text: &str) -> Result<JidRef, StoreError> {
        if let Some((r, _)) = self.0.get_key_value(text) {
            return Ok(r.clone());
        }
        Ok(self.intern(&parse_bare_jid(text)?))
    }

    /// `jid`'s reference and holdings, if it holds anything.
    pub(crate) fn get(&self, jid: &BareJid) -> Option<(&JidRef, &PerJid)> {
        self.0.get_key_value(jid)
    }

    /// `jid`'s holdings, to change, if it is interned.
    pub(crate) fn holdings_mut(&mut self, jid: &BareJid) -> Option<&mut PerJid> {
        self.0.get_mut(jid)
    }

    /// Forget `jid` if it holds nothing any more.
    pub(crate) fn release(&mut self, jid: &BareJid) {
        if self.0.get(jid).is_some_and(PerJid::is_empty) {
            self.0.remove(jid);
        }
    }

    /// Every interned JID with its holdings, in no particular order.
    #[cfg(test)]
    pub(crate) fn all(&self) -> impl Iterator<Item = (&JidRef, &PerJid)> {
        self.0.iter()
    }

    /// Give back the spare capacity of every JID's lists (after loading).
    pub(crate) fn shrink(&mut self) {
        for h in self.0.values_mut() {
            h.nodes.shrink_to_fit();
            // Loading appends them in node order.
            h.nums.sort_unstable();
            h.nums.shrink_to_fit();
            h.affs.shrink_to_fit();
        }
        self.0.shrink_to_fit();
    }
}

/// Insert `uid` into an ascending list, once.
pub(crate) fn insert_sorted(list: &mut Vec<u64>, uid: u64) {
    if let Err(i) = list.binary_search(&uid) {
        list.insert(i, uid);
    }
}

/// Add `num` to an ascending list that may repeat numbers.
pub(crate) fn insert_num(list: &mut Vec<SubNum>, num: SubNum) {
    let i = list.partition_point(|n| *n < num);
    list.insert(i, num);
}

/// Remove one `num` from an ascending list that may repeat numbers.
pub(crate) fn remove_num(list: &mut Vec<SubNum>, num: SubNum) {
    if let Ok(i) = list.binary_search(&num) {
        list.remove(i);
    }
}

/// Remove `uid` from an ascending list.
pub(crate) fn remove_sorted(list: &mut Vec<u64>, uid: u64) {
    if let Ok(i) = list.binary_search(&uid) {
        list.remove(i);
    }
}
