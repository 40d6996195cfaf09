//! `roost check`: reads the whole database and reports every broken invariant of the key
//! layout ([`crate::keys`]) and its indexes, each with what to do about it.
//!
//! Checked: the meta rows; every node record decodes and has a unique uid not above
//! `last_uid`; every bucket decodes, holds its entries in order and within its bounds
//! (at or above its own lower bound, below the next bucket's); affiliation and
//! subscription buckets belong to a node, affiliations are never `none`; each node's live
//! items (at or above the trim floor) number what its head and counters say, have unique
//! ids and seqs not above its last seq, and the id index maps each of them to its seq and
//! nothing live to anything else; items, id index entries and heads belong to a node;
//! expiry rows decode (stale ones, whose item is gone, are normal: they are counted). Only
//! reads: nothing is repaired.

use crate::codec;
use crate::keys;
use crate::packed;
use crate::progress::Progress;
use crate::SledStore;
use roost_nodes::{Affiliation, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What `roost check` found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// Nodes.
    pub nodes: u64,
    /// Affiliations.
    pub affiliations: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// Live items.
    pub items: u64,
    /// Expiry rows.
    pub expiries: u64,
    /// Expiry rows whose item is gone (normal; removed when due).
    pub stale_expiries: u64,
    /// Broken invariants, one sentence each.
    pub problems: Vec<String>,
}

/// What to do when anything is wrong: every check reads only what an export reads too
/// (node records, affiliations, subscriptions, item buckets) or rebuilds it (heads, the id
/// index, expiry rows), so a dump and an import rebuild a sound database.
pub const REPAIR: &str = "rebuild the database: stop Roost, `roost export --data-dir DIR --out \
     roost.xml`, `roost import --data-dir NEW roost.xml`, check NEW and start Roost on it; or \
     restore a backup";

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// The buckets of the maps under `tag`, map by map: calls `each(map key prefix, lower
/// bound, entries)` after checking order and bounds.
fn buckets(
    tree: &sled::Tree,
    tag: u8,
    split: impl Fn(&[u8]) -> Result<(Vec<u8>, Vec<u8>), StoreError>,
    problems: &mut Vec<String>,
    mut each: impl FnMut(&[u8], Vec<(Vec<u8>, Vec<u8>)>, &mut Vec<String>),
) -> Result<(), StoreError> {
    let mut prev: Option<(Vec<u8>, Vec<u8>)> = None; // (map prefix, greatest key so far)
    for kv in tree.scan_prefix([tag]) {
        let (k, v) = kv.map_err(sled_err)?;
        let (prefix, lower) = match split(&k) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{e}"));
                continue;
            }
        };
        let entries = match packed::all_entries(&v) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("bucket {:02x?}: {e}", &k[..]));
                continue;
            }
        };
        if entries.is_empty() {
            problems.push(format!("bucket {:02x?} is empty", &k[..]));
        }
        let after = match &prev {
            Some((p, last)) if *p == prefix => Some(last.clone()),
            _ => None,
        };
        let mut last = after.clone();
        for (ek, _) in &entries {
            if *ek < lower.as_slice() {
                problems.push(format!(
                    "bucket {:02x?} holds an entry below its bound",
                    &k[..]
                ));
            }
            if last.as_deref().is_some_and(|l| *ek <= l) {
                problems.push(format!(
                    "bucket {:02x?} holds entries out of order or overlapping the bucket before",
                    &k[..]
                ));
            }
            last = Some(ek.to_vec());
        }
        if let Some(l) = last {
            prev = Some((prefix.clone(), l));
        }
        each(
            &prefix,
            entries
                .into_iter()
                .map(|(a, b)| (a.to_vec(), b.to_vec()))
                .collect(),
            problems,
        );
    }
    Ok(())
}

/// Checks the store; `Err` only when reading fails.
pub fn check(store: &SledStore) -> Result<CheckReport, StoreError> {
    store.settle()?;
    let tree = store.raw_tree();
    let mut r = CheckReport::default();
    let p = &mut r.problems;

    // Meta.
    let mut last_uid = 0;
    if let Some(v) = tree.get(keys::last_uid()).map_err(sled_err)? {
        match keys::decode_u64_value("last_uid", &v) {
            Ok(n) => last_uid = n,
            Err(e) => p.push(e.0),
        }
    }

    // Nodes.
    let mut nodes: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_uid: HashMap<u64, String> = HashMap::new();
    for kv in tree.scan_prefix([keys::NODE]) {
        let (k, v) = kv.map_err(sled_err)?;
        let name = match keys::decode_node(&k) {
            Ok(n) => n.to_owned(),
            Err(e) => {
                p.push(e.0);
                continue;
            }
        };
        match codec::decode_node(name.clone(), &v) {
            Ok(rec) => {
                if rec.uid > last_uid {
                    p.push(format!(
                        "node {name:?} has uid {} above last_uid {last_uid}",
                        rec.uid
                    ));
                }
                if let Some(other) = by_uid.insert(rec.uid, name.clone()) {
                    p.push(format!(
                        "nodes {other:?} and {name:?} share uid {}",
                        rec.uid
                    ));
                }
                nodes.insert(name, rec.uid);
            }
            Err(e) => p.push(format!("node {name:?}: {e}")),
        }
    }
    r.nodes = nodes.len() as u64;

    // Affiliations and subscriptions.
    let split_node = |tag: u8| {
        move |k: &[u8]| -> Result<(Vec<u8>, Vec<u8>), StoreError> {
            let (node, lower) = keys::decode_node_bucket(tag, k)?;
            Ok((node.as_bytes().to_vec(), lower.to_vec()))
        }
    };
    let (mut affs, mut subs) = (0u64, 0u64);
    buckets(
        tree,
        keys::AFFS,
        split_node(keys::AFFS),
        p,
        |node, entries, p| {
            let node = String::from_utf8_lossy(node);
            if !nodes.contains_key(node.as_ref()) {
                p.push(format!(
                    "affiliations of node {node:?}, which does not exist"
                ));
            }
            for (jid, a) in entries {
                affs += 1;
                let jid = String::from_utf8_lossy(&jid);
                if let Err(e) = codec::parse_bare_jid(&jid) {
                    p.push(format!("node {node:?}: {e}"));
                }
                match codec::decode_affiliation(&a) {
                    Ok(Affiliation::None) => p.push(format!(
                        "node {node:?}: affiliation `none` stored for {jid}"
                    )),
                    Ok(_) => {}
                    Err(e) => p.push(format!("node {node:?}, {jid}: {e}")),
                }
            }
        },
    )?;
    buckets(
        tree,
        keys::SUBS,
        split_node(keys::SUBS),
        p,
        |node, entries, p| {
            let node = String::from_utf8_lossy(node);
            if !nodes.contains_key(node.as_ref()) {
                p.push(format!(
                    "subscriptions of node {node:?}, which does not exist"
                ));
            }
            for (subid, v) in entries {
                subs += 1;
                let subid = String::from_utf8_lossy(&subid).into_owned();
                if let Err(e) = codec::decode_subscription(subid.clone(), &v) {
                    p.push(format!("node {node:?}, subscription {subid:?}: {e}"));
                }
            }
        },
    )?;
    r.affiliations = affs;
    r.subscriptions = subs;

    // Heads.
    let mut heads: HashMap<u64, codec::Head> = HashMap::new();
    for kv in tree.scan_prefix([keys::COUNTERS]) {
        let (k, v) = kv.map_err(sled_err)?;
        match keys::decode_counters(&k).and_then(|uid| Ok((uid, codec::decode_head(&v)?))) {
            Ok((uid, h)) => {
                if !by_uid.contains_key(&uid) {
                    p.push(format!("item head of node uid {uid}, which does not exist"));
                }
                heads.insert(uid, h);
            }
            Err(e) => p.push(e.0),
        }
    }

    // Items and the id index, node by node.
    let mut progress = Progress::new("checking", "nodes", nodes.len() as u64);
    let mut items_seen: HashSet<u64> = HashSet::new();
    for (i, (name, &uid)) in nodes.iter().enumerate() {
        items_seen.insert(uid);
        let head = heads.get(&uid).copied().unwrap_or_default();
        let mut live: HashMap<String, u64> = HashMap::new();
        let mut last = None;
        for row in store.raw_walk(uid) {
            let (seq, bucket, at) = match row {
                Ok(x) => x,
                Err(e) => {
                    p.push(format!("node {name:?}: {e}"));
                    break;
                }
            };
            if last.is_some_and(|l| seq <= l) {
                p.push(format!("node {name:?}: items out of order at seq {seq}"));
            }
            last = Some(seq);
            if seq < head.floor {
                continue;
            }
            match codec::decode_item(seq, &bucket[at]) {
                Ok(item) => {
                    if seq > head.counters.last_seq {
                        p.push(format!(
                            "node {name:?}: item {:?} has seq {seq} above the node's last seq {}",
                            item.id, head.counters.last_seq
                        ));
                    }
                    if live.insert(item.id.clone(), seq).is_some() {
                        p.push(format!(
                            "node {name:?}: item id {:?} is stored twice",
                            item.id
                        ));
                    }
                }
                Err(e) => p.push(format!("node {name:?}, seq {seq}: {e}")),
            }
        }
        let n = live.len() as u64;
        r.items += n;
        if n != head.live || n != head.counters.count {
            p.push(format!(
                "node {name:?}: {n} live items, but its head says {} and its counters {}",
                head.live, head.counters.count
            ));
        }
        // The id index: one live entry per live item, pointing at it.
        let mut indexed = 0u64;
        for kv in tree.scan_prefix(keys::ids(uid)) {
            let (_, v) = kv.map_err(sled_err)?;
            let entries = match packed::all_entries(&v) {
                Ok(e) => e,
                Err(e) => {
                    p.push(format!("node {name:?}: id index: {e}"));
                    continue;
                }
            };
            for (id, seq) in entries {
                let id = String::from_utf8_lossy(id);
                let seq = match keys::decode_u64_value("item id index", seq) {
                    Ok(s) => s,
                    Err(e) => {
                        p.push(format!("node {name:?}: {e}"));
                        continue;
                    }
                };
                if seq < head.floor {
                    continue; // stale below the floor: normal
                }
                indexed += 1;
                if live.get(id.as_ref()) != Some(&seq) {
                    p.push(format!(
                        "node {name:?}: the id index maps {id:?} to seq {seq}, which does not hold it"
                    ));
                }
            }
        }
        if indexed != n {
            p.push(format!(
                "node {name:?}: the id index has {indexed} live entries for {n} items"
            ));
        }
        if (i as u64).is_multiple_of(256) {
            progress.at(i as u64);
        }
    }
    progress.done();

    // Items and id index entries of uids without a node: one step per uid.
    for tag in [keys::ITEMS, keys::IDS] {
        let mut from = vec![tag];
        while let Some(kv) = tree.range(from.clone()..).next() {
            let (k, _) = kv.map_err(sled_err)?;
            if k.first() != Some(&tag) {
                break;
            }
            let Ok((uid, _)) = keys::decode_uid_bucket(tag, &k) else {
                p.push(format!("corrupt bucket key {:02x?}", &k[..]));
                break;
            };
            if !by_uid.contains_key(&uid) {
                let what = if tag == keys::ITEMS {
                    "items"
                } else {
                    "id index"
                };
                p.push(format!("{what} of node uid {uid}, which does not exist"));
            }
            match uid.checked_add(1) {
                Some(next) => {
                    from = vec![tag];
                    from.extend_from_slice(&next.to_be_bytes());
                }
                None => break,
            }
        }
    }

    // Expiry rows.
    for e in store.expiries() {
        match e {
            Ok((_, uid, seq)) => {
                r.expiries += 1;
                if !by_uid.contains_key(&uid) || store.item_at(uid, seq)?.is_none() {
                    r.stale_expiries += 1;
                }
            }
            Err(e) => r.problems.push(e.0),
        }
    }

    // Anything under a tag the layout does not have.
    let known = [
        keys::META,
        keys::NODE,
        keys::COUNTERS,
        keys::AFFS,
        keys::SUBS,
        keys::ITEMS,
        keys::IDS,
        keys::EXPIRY,
    ];
    for tag in (0..=u8::MAX).filter(|t| !known.contains(t)) {
        if let Some(kv) = tree.scan_prefix([tag]).next() {
            let (k, _) = kv.map_err(sled_err)?;
            r.problems
                .push(format!("key {:02x?} has an unknown table tag", &k[..]));
        }
    }
    Ok(r)
}
