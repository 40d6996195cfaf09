//! Building the state from a store's rows ([`Loader`]), for [`State::load`].
//!
//! Loading used to be applying the snapshot as one big change set. It gives the same state
//! as applying every row (`tests` below check it against [`State::apply_one`]), but:
//! - a JID is looked up by its stored text and parsed only the first time it is met
//!   (100 000 distinct JIDs for 1 000 000 subscriptions in the scale run);
//! - a node's subscriptions are sorted once and its tables built from the sorted run
//!   ([`SubTable::from_sorted`]), full, instead of inserted one by one and packed after;
//! - nothing is kept for presence: the component probes all of `presence_wanted` on
//!   connect.
//!
//! A node whose subids are not all of the engine's form, or that repeats one (only a
//! damaged or foreign store), takes the row-by-row path instead.

use super::subs::{numeric, SubKey, SubTable, SubVal};
use super::{Digest, State};
use crate::model::*;
use crate::store::{Loader, Store, StoreError, SubRow, SubRows};
use std::sync::Arc;

impl State {
    /// The state as `store` holds it.
    pub(crate) fn load(store: &mut impl Store) -> Result<State, StoreError> {
        let mut b = Building {
            state: State::default(),
            row_by_row: Vec::new(),
        };
        store.load_into(&mut b)?;
        Ok(b.finish())
    }
}

/// The [`Loader`] the engine gives a store.
struct Building {
    state: State,
    /// Nodes whose subscriptions were applied row by row: their tables are packed last.
    row_by_row: Vec<String>,
}

impl Building {
    fn finish(mut self) -> State {
        for name in &self.row_by_row {
            if let Some(n) = super::pick(&mut self.state.root, &mut self.state.nodes, name) {
                n.subs.compact();
            }
        }
        self.state.jids.shrink();
        // The node map is not rebuilt with full leaves: on the scale run's 100 000 nodes
        // that took ~200 ms of start-up and left the RSS when ready unchanged (396 MB).
        self.state.presence_requests.clear();
        self.state
    }

    /// `node`'s subscriptions one at a time, as committed changes are applied.
    fn row_by_row(&mut self, node: &str, rows: &[SubRow<'_>]) -> Result<(), StoreError> {
        for row in rows {
            self.state.put_subscription(node, &row.to_subscription()?);
        }
        self.row_by_row.push(node.to_owned());
        Ok(())
    }
}

impl Loader for Building {
    fn last_uid(&mut self, uid: u64) {
        self.state.last_uid = self.state.last_uid.max(uid);
    }

    fn node(&mut self, rec: NodeRecord, counters: ItemCounters) -> Result<(), StoreError> {
        let uid = rec.uid;
        self.state.put_node(rec, Some(counters));
        self.state.last_uid = self.state.last_uid.max(uid);
        Ok(())
    }

    fn affiliation(&mut self, node: &str, jid: &str, aff: Affiliation) -> Result<(), StoreError> {
        // Parsed (once per JID) even when unused, so that a damaged row is reported.
        let r = self.state.jids.intern_stored(jid)?;
        if aff == Affiliation::None || !self.state.nodes.contains_key(node) {
            self.state.jids.release(r.bare());
            return Ok(());
        }
        self.state.put_affiliation(node, r.bare(), aff);
        Ok(())
    }

    fn subscriptions(&mut self, node: &str, rows: SubRows<'_, '_>) -> Result<(), StoreError> {
        let rows = rows.collect::<Result<Vec<SubRow<'_>>, StoreError>>()?;
        if node.is_empty() {
            // The root collection (XEP-0248 §root) is not in `nodes`; its subscriptions are
            // few, so they take the general path.
            return self.row_by_row(node, &rows);
        }
        let Some(n) = self.state.nodes.get(node) else {
            return Ok(());
        };
        let mut nums = Vec::with_capacity(rows.len());
        for row in &rows {
            match numeric(row.subid) {
                Some(num) => nums.push(num),
                None => return self.row_by_row(node, &rows),
            }
        }
        nums.sort_unstable();
        // A collection's digest subscriptions need the leaves under it (`leaf_seqs`):
        // the general path computes them.
        if n.sub_count() > 0
            || n.rec.config.is_collection()
            || nums.windows(2).any(|w| w[0] == w[1])
        {
            return self.row_by_row(node, &rows);
        }

        let st = &mut self.state;
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            let (jid, full) = match row.jid.find('/') {
                None => (st.jids.intern_stored(row.jid)?, None),
                Some(_) => {
                    let parsed = crate::store::load::parse_jid(row.jid)?;
                    let jid = st.jids.intern(&parsed.to_bare());
                    (jid, parsed.try_into_full().ok().map(Arc::new))
                }
            };
            let Some(num) = numeric(row.subid) else {
                // Checked above; unreachable, but not worth a panic.
                continue;
            };
            let val = SubVal::new(row.state, row.options);
            entries.push((SubKey { jid, full, num }, val));
        }
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));

        let Some(n) = st.nodes.get_mut(node) else {
            return Ok(());
        };
        let uid = n.rec.uid;
        let mut last: Option<&SubKey> = None;
        for (key, val) in &entries {
            if val.state == SubscriptionState::Subscribed {
                n.subscribed += 1;
            }
            let options = val.options();
            if let Some(end) = options.expire {
                st.leases.insert((end, uid, key.clone()));
            }
            if options.digest {
                st.digests.insert(
                    (uid, key.clone()),
                    Digest {
                        after_seq: n.counters.last_seq,
                        due: None,
                        // A leaf: the digest reads the node's own items.
                        leaves: Default::default(),
                    },
                );
            }
            // A subscriber's keys are adjacent: its holdings are looked up once per node.
            if let Some(h) = st.jids.holdings_mut(&key.jid) {
                h.subs += 1;
                // Sorted once every node is in (`Jids::shrink`).
                h.nums.push(key.num);
                let first_of_jid = match last {
                    Some(l) => l.jid != key.jid,
                    None => true,
                };
                if first_of_jid {
                    super::jids::insert_sorted(&mut h.nodes, uid);
                }
            }
            last = Some(key);
        }
        n.subs = SubTable::from_sorted(entries, nums);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Change, ChangeSet, MemStore, Snapshot};
    use crate::{BareJid, Jid};
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::fmt::Write;

    /// Everything observable of a state, in a deterministic order.
    fn fingerprint(s: &State) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "last_uid {}", s.last_uid);
        for n in s.nodes() {
            let _ = writeln!(
                out,
                "node {:?} counters {:?} subscribed {}",
                n.rec, n.counters, n.subscribed
            );
            for (j, a) in n.affs() {
                let _ = writeln!(out, "  aff {j} {a}");
            }
            for sub in n.subs() {
                let _ = writeln!(out, "  sub {:?} key {:?}", sub.to_subscription(), sub.key);
                assert!(n.has_subid_num(sub.key.num));
            }
            assert_eq!(n.subs().count(), n.sub_count());
            // Filtered subscriptions apart, in the node's filter index (content filters).
            let plain: Vec<_> = n.plain_subs_after(None).map(|s| s.key.clone()).collect();
            let _ = writeln!(out, "  plain {plain:?} filters {}", n.has_filters());
            for payload in PAYLOADS {
                let _ = writeln!(out, "  matching {payload} {:?}", n.matching(payload));
            }
            let by_uid = s.node_by_uid(n.rec.uid).map(|m| m.rec.name.clone());
            assert_eq!(by_uid.as_deref(), Some(n.rec.name.as_str()));
        }
        assert_jid_index(s);
        let mut jids: Vec<_> = s.jids.all().collect();
        jids.sort_by(|a, b| a.0.cmp(b.0));
        for (j, h) in jids {
            let _ = writeln!(out, "jid {j:?} {h:?}");
        }
        let _ = writeln!(out, "leases {:?}", s.leases);
        let digests: Vec<_> = s.digests.iter().map(|(k, d)| (k, d.after_seq)).collect();
        let _ = writeln!(out, "digests {digests:?}");
        out
    }

    /// Each JID's subid numbers are those of its subscriptions, over every node.
    fn assert_jid_index(s: &State) {
        let mut want: BTreeMap<BareJid, Vec<u64>> = BTreeMap::new();
        for n in s.nodes().chain(std::iter::once(&s.root)) {
            for sub in n.subs.iter() {
                want.entry(sub.bare().clone())
                    .or_default()
                    .push(sub.key.num);
            }
        }
        for (j, h) in s.jids.all() {
            let mut w = want.remove(&**j).unwrap_or_default();
            w.sort_unstable();
            assert_eq!(h.nums, w, "{j:?}");
        }
        assert!(want.is_empty(), "not interned: {want:?}");
    }

    /// What applying the snapshot's rows one by one gives (how loading used to work).
    fn applied(snap: &Snapshot) -> State {
        let mut st = State {
            last_uid: snap.last_uid,
            ..State::default()
        };
        for (rec, counters) in snap.nodes.values() {
            st.apply_one(&Change::PutNode(rec.clone()));
            st.apply_one(&Change::PutCounters {
                uid: rec.uid,
                counters: *counters,
            });
        }
        for (node, affs) in &snap.affiliations {
            for (jid, a) in affs {
                st.apply_one(&Change::PutAffiliation {
                    node: node.clone(),
                    jid: jid.clone(),
                    affiliation: *a,
                });
            }
        }
        for (node, subs) in &snap.subscriptions {
            for sub in subs.values() {
                st.put_subscription(node, sub);
            }
        }
        st
    }

    fn loaded(snap: &Snapshot) -> State {
        let mut store = MemStore::new();
        let mut cs = ChangeSet::default();
        for (rec, counters) in snap.nodes.values() {
            cs.push(Change::PutNode(rec.clone()));
            cs.push(Change::PutCounters {
                uid: rec.uid,
                counters: *counters,
            });
        }
        for (node, affs) in &snap.affiliations {
            for (jid, a) in affs {
                cs.push(Change::PutAffiliation {
                    node: node.clone(),
                    jid: jid.clone(),
                    affiliation: *a,
                });
            }
        }
        for (node, subs) in &snap.subscriptions {
            for sub in subs.values() {
                cs.push(Change::PutSubscription {
                    node: node.clone(),
                    sub: sub.clone(),
                });
            }
        }
        store.commit(&cs).expect("commit");
        State::load(&mut store).expect("load")
    }

    const JIDS: &[&str] = &["a@x", "b@x", "b@x/r1", "b@x/r2", "c@y", "x", "x/r"];

    fn subid() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u64..6).prop_map(super::super::subs::format),
            1 => "[a-z]{1,3}",
        ]
    }

    /// Canonical filters (as the engine stores them) and payloads some of them match.
    const FILTERS: [&str; 3] = ["@a = '1'", "exists(b)", "b/@c ^= 'x'"];
    const PAYLOADS: [&str; 3] = [
        "<p xmlns='urn:t' a='1'/>",
        "<p xmlns='urn:t'><b c='xy'/></p>",
        "<p xmlns='urn:t'/>",
    ];

    fn options() -> impl Strategy<Value = SubOptions> {
        prop_oneof![
            3 => Just(SubOptions::default()),
            1 => (any::<bool>(), proptest::option::of(0u64..50), any::<bool>()).prop_map(
                |(digest, expire, include_body)| SubOptions {
                    digest,
                    expire,
                    include_body,
                    ..SubOptions::default()
                }
            ),
            1 => (0..FILTERS.len()).prop_map(|f| SubOptions {
                filter: Some(FILTERS[f].to_owned()),
                ..SubOptions::default()
            }),
        ]
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let sub = (0..JIDS.len(), subid(), 0usize..4, options());
        let subs = proptest::collection::vec((0usize..4, sub), 0..24);
        let affs = proptest::collection::vec((0usize..4, 0..JIDS.len(), 0usize..6), 0..8);
        (1usize..4, subs, affs).prop_map(|(nodes, subs, affs)| {
            let mut snap = Snapshot::default();
            for k in 0..nodes {
                let rec = NodeRecord {
                    name: format!("n{k}"),
                    // Uids against name order, as a store may hand nodes over.
                    uid: 20 - k as u64,
                    creator: BareJid::new("a@x").expect("jid"),
                    created: 0,
                    config: NodeConfig::default(),
                };
                let counters = ItemCounters {
                    count: k as u64,
                    last_seq: 7 * k as u64,
                };
                snap.last_uid = snap.last_uid.max(rec.uid);
                snap.nodes.insert(rec.name.clone(), (rec, counters));
            }
            // Node n3 may be missing: its rows are ignored.
            for (node, (j, subid, state, options)) in subs {
                let sub = Subscription {
                    jid: Jid::new(JIDS[j]).expect("jid"),
                    subid,
                    state: SubscriptionState::ALL[state],
                    options,
                };
                snap.subscriptions
                    .entry(format!("n{node}"))
                    .or_insert_with(BTreeMap::new)
                    .insert(sub.subid.clone(), sub);
            }
            for (node, j, a) in affs {
                let jid = Jid::new(JIDS[j]).expect("jid").to_bare();
                snap.affiliations
                    .entry(format!("n{node}"))
                    .or_default()
                    .insert(jid, Affiliation::ALL[a]);
            }
            snap
        })
    }

    proptest! {
        #[test]
        fn loading_gives_the_state_applying_the_rows_gives(snap in snapshot()) {
            prop_assert_eq!(fingerprint(&loaded(&snap)), fingerprint(&applied(&snap)));
        }

        #[test]
        fn the_jid_index_follows_removals(
            snap in snapshot(),
            gone in proptest::collection::vec(any::<bool>(), 24),
            delete in 0usize..5,
        ) {
            let mut st = loaded(&snap);
            let mut i = 0;
            for (node, subs) in &snap.subscriptions {
                for sub in subs.values() {
                    i += 1;
                    if gone[i % gone.len()] {
                        st.apply_one(&Change::DeleteSubscription {
                            node: node.clone(),
                            jid: sub.jid.clone(),
                            subid: sub.subid.clone(),
                        });
                    }
                }
            }
            assert_jid_index(&st);
            if let Some((rec, _)) = snap.nodes.get(&format!("n{delete}")) {
                st.apply_one(&Change::DeleteNode { name: rec.name.clone(), uid: rec.uid });
            }
            assert_jid_index(&st);
        }
    }

    #[test]
    fn a_stored_jid_that_does_not_parse_fails_the_load() {
        struct Bad;
        impl Store for Bad {
            fn load_into(&mut self, l: &mut dyn Loader) -> Result<(), StoreError> {
                l.node(
                    NodeRecord {
                        name: "n".into(),
                        uid: 1,
                        creator: BareJid::new("a@x").expect("jid"),
                        created: 0,
                        config: NodeConfig::default(),
                    },
                    ItemCounters::default(),
                )?;
                let row = SubRow {
                    jid: "@@",
                    subid: "0000000000000001",
                    state: SubscriptionState::Subscribed,
                    options: None,
                };
                l.subscriptions("n", &mut std::iter::once(Ok(row)))
            }
            fn commit(&mut self, _: &ChangeSet) -> Result<(), StoreError> {
                Ok(())
            }
            fn item(&self, _: u64, _: &str) -> Result<Option<Item>, StoreError> {
                Ok(None)
            }
            fn latest_items(&self, _: u64, _: Option<u64>) -> Result<Vec<Item>, StoreError> {
                Ok(Vec::new())
            }
            fn oldest_items(&self, _: u64, _: u64) -> Result<Vec<Item>, StoreError> {
                Ok(Vec::new())
            }
        }
        let Err(err) = State::load(&mut Bad) else {
            panic!("a damaged row fails the load");
        };
        assert!(err.0.contains("bad bare JID \"@@\""), "{err}");
    }
}
