//! Migration of a schema-1 database to schema 2 (see [`crate::layout`] for where each
//! lives and how the switch is made safe against a crash).
//!
//! The version-1 tree is read once, table by table, in key order, and the version-2
//! database written in large unflushed batches, packed full ([`packed::pack`]), then
//! flushed once. What is carried over: the meta rows, node records (same encoding), item
//! counters (with the live count taken from the items), affiliations, subscriptions and
//! items (same record encodings, now in buckets), the item id index (rebuilt from the
//! items) and expiry rows. The by-JID index rows of version 1 were never read and are
//! dropped.
//!
//! Progress: a bar when standard error is a terminal, otherwise a log line every few
//! seconds (the items, most of the work, by node uid out of the highest uid).

use crate::apply::{AFF_BUCKET, ID_BUCKET, ITEM_BUCKET, SUB_BUCKET};
use crate::bulk::Writer;
use crate::codec::{self, Head};
use crate::progress::Progress;
use crate::v1::{self, V1Store};
use crate::{keys, layout, SledStore};
use roost_nodes::{ItemCounters, StoreError};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

fn sled_err(e: sled::Error) -> StoreError {
    StoreError(format!("sled: {e}"))
}

/// What a migration carried over.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Node records.
    pub nodes: u64,
    /// Affiliations.
    pub affiliations: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// Items.
    pub items: u64,
    /// Keys written to the new database.
    pub keys: u64,
}

/// Migrates the version-1 database at the top of `dir` into a new database at `to`,
/// which ends up holding the [`layout::FROM_V1`] marker. Logs what it does.
pub fn v1_to_v2(dir: &Path, to: &Path) -> Result<Report, StoreError> {
    let started = Instant::now();
    tracing::info!(
        "{} holds a schema-1 database: migrating it to schema 2 (once; a large one takes \
         minutes; the old files are removed when it is done)",
        dir.display()
    );
    let old = V1Store::open(dir)?;
    let new = SledStore::open_with(crate::sled_config(to))?;
    let report = copy(old.raw_tree(), new.raw_tree())?;
    new.flush()?;
    drop(new);
    drop(old);
    std::fs::File::create(to.join(layout::FROM_V1))
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError(format!("cannot write the migration marker: {e}")))?;
    tracing::info!(
        "migrated {} to schema 2 in {:.1} s: {} nodes, {} affiliations, {} subscriptions, \
         {} items, {} keys (version 1 had one or two keys per item and subscription)",
        dir.display(),
        started.elapsed().as_secs_f64(),
        report.nodes,
        report.affiliations,
        report.subscriptions,
        report.items,
        report.keys,
    );
    Ok(report)
}

/// Reads the version-1 tree `from` and writes the version-2 tree `to`.
pub fn copy(from: &sled::Tree, to: &sled::Tree) -> Result<Report, StoreError> {
    let mut w = Writer::new(to.clone());
    let mut report = Report::default();

    let mut last_uid = 0;
    if let Some(v) = from.get(v1::keys::last_uid()).map_err(sled_err)? {
        last_uid = v1::keys::decode_u64_value("last_uid", &v)?;
        w.put(keys::last_uid(), v.to_vec())?;
    }

    // Node records: same key and record encoding.
    for kv in from.scan_prefix([v1::keys::NODE]) {
        let (k, v) = kv.map_err(sled_err)?;
        let name = v1::keys::decode_node(&k)?;
        let rec = codec::decode_node(name.clone(), &v)?;
        last_uid = last_uid.max(rec.uid);
        w.put(keys::node(&name), v.to_vec())?;
        report.nodes += 1;
    }

    let mut counters: HashMap<u64, ItemCounters> = HashMap::new();
    for kv in from.scan_prefix([v1::keys::COUNTERS]) {
        let (k, v) = kv.map_err(sled_err)?;
        counters.insert(v1::keys::decode_counters(&k)?, codec::decode_counters(&v)?);
    }

    // Affiliations and subscriptions: grouped by node (rows of one node are adjacent).
    for (tag, what) in [
        (v1::keys::AFF, "affiliations"),
        (v1::keys::SUB, "subscriptions"),
    ] {
        let mut p = Progress::new("migrating", what, report.nodes);
        let mut node: Option<String> = None;
        let mut group: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut nodes_done = 0;
        let mut rows = 0;
        let emit = |w: &mut Writer, node: &str, group: &mut Vec<(Vec<u8>, Vec<u8>)>| {
            let (prefix, cap) = if tag == v1::keys::AFF {
                (keys::affs(node), AFF_BUCKET)
            } else {
                (keys::subs(node), SUB_BUCKET)
            };
            let r = w.put_map(&prefix, group, cap);
            group.clear();
            r
        };
        for kv in from.scan_prefix([tag]) {
            let (k, v) = kv.map_err(sled_err)?;
            let (n, entry) = if tag == v1::keys::AFF {
                let (n, jid) = v1::keys::decode_aff(&k)?;
                codec::parse_bare_jid(&jid)?;
                codec::decode_affiliation(&v)?;
                (n, jid)
            } else {
                let (n, subid) = v1::keys::decode_sub(&k)?;
                codec::decode_subscription(subid.clone(), &v)?;
                (n, subid)
            };
            if node.as_deref() != Some(n.as_str()) {
                if let Some(prev) = node.take() {
                    emit(&mut w, &prev, &mut group)?;
                    nodes_done += 1;
                    p.at(nodes_done);
                }
                node = Some(n);
            }
            group.push((entry.into_bytes(), v.to_vec()));
            rows += 1;
        }
        if let Some(prev) = node {
            emit(&mut w, &prev, &mut group)?;
        }
        p.done();
        if tag == v1::keys::AFF {
            report.affiliations = rows;
        } else {
            report.subscriptions = rows;
        }
    }

    // Items: one node at a time, in seq order; its id index is rebuilt from them.
    let mut p = Progress::new("migrating", "items (by node uid)", last_uid);
    let mut uid: Option<u64> = None;
    let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut ids: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut finish = |w: &mut Writer,
                      uid: u64,
                      items: &mut Vec<(Vec<u8>, Vec<u8>)>,
                      ids: &mut Vec<(Vec<u8>, Vec<u8>)>|
     -> Result<(), StoreError> {
        w.put_map(&keys::items(uid), items, ITEM_BUCKET)?;
        w.put_map(&keys::ids(uid), ids, ID_BUCKET)?;
        let head = Head {
            counters: counters.remove(&uid).unwrap_or_default(),
            floor: 0,
            live: items.len() as u64,
        };
        w.put(keys::counters(uid), codec::head(&head))?;
        items.clear();
        ids.clear();
        Ok(())
    };
    for kv in from.scan_prefix([v1::keys::ITEM]) {
        let (k, v) = kv.map_err(sled_err)?;
        let (u, seq) = v1::keys::decode_item(&k)?;
        if uid != Some(u) {
            if let Some(prev) = uid {
                finish(&mut w, prev, &mut items, &mut ids)?;
                p.at(prev);
            }
            uid = Some(u);
        }
        let id = codec::decode_item(seq, &v)?.id;
        ids.push((id.into_bytes(), keys::u64_value(seq).to_vec()));
        items.push((keys::seq(seq).to_vec(), v.to_vec()));
        report.items += 1;
    }
    if let Some(prev) = uid {
        finish(&mut w, prev, &mut items, &mut ids)?;
    }
    p.done();
    // Counters of nodes without items.
    let mut rest: Vec<_> = counters.into_iter().collect();
    rest.sort_unstable_by_key(|(uid, _)| *uid);
    for (uid, c) in rest {
        let head = Head {
            counters: c,
            ..Head::default()
        };
        w.put(keys::counters(uid), codec::head(&head))?;
    }

    for kv in from.scan_prefix([v1::keys::EXPIRY]) {
        let (k, _) = kv.map_err(sled_err)?;
        let (at, uid, seq) = v1::keys::decode_expiry(&k)?;
        w.put(keys::expiry(at, uid, seq), Vec::new())?;
    }
    w.flush()?;
    report.keys = w.keys;
    Ok(report)
}
