//! `roost export`: the store as a dump, streamed: node records from the snapshot the
//! engine loads anyway, items one bucket at a time.

use std::collections::HashMap;
use std::io::Write;

use minidom::rxml::writer::{Encoder, SimpleNamespaces, TrackNamespace};
use minidom::rxml::{self, NcName};
use roost_nodes::Store;
use roost_storage::progress::Progress;
use roost_storage::SledStore;
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::NodeName;

use super::{affiliation_attr, configure, dump_subscription, DumpError, Totals, NS_DUMP};
use crate::pubsub::codec::format_datetime;
use crate::xml::dump::{DumpExpire, DumpItem, DumpSubscriptions};
use crate::xml::pubsub::{OwnerAffiliation, OwnerAffiliations};

/// Bytes encoded before they are handed to the output.
const CHUNK: usize = 256 * 1024;

/// One XML document written element by element: the dump's root and sections are opened
/// and closed here, every element inside them is an `xso` type encoded by the same
/// encoder (so namespaces are declared once, at the root).
struct DocWriter<W: Write> {
    enc: Encoder<SimpleNamespaces>,
    buf: Vec<u8>,
    out: W,
}

fn name(s: &str) -> NcName {
    NcName::try_from(s).expect("a valid XML name")
}

impl<W: Write> DocWriter<W> {
    fn enc_err(e: impl std::fmt::Display) -> DumpError {
        DumpError::Format(format!("cannot encode: {e}"))
    }

    fn item(&mut self, item: rxml::Item<'_>) -> Result<(), DumpError> {
        self.enc.encode(item, &mut self.buf).map_err(Self::enc_err)
    }

    /// Opens `<name xmlns='ns' attrs…>`.
    fn open(&mut self, ns: &str, el: &str, attrs: &[(&str, String)]) -> Result<(), DumpError> {
        let el = name(el);
        self.item(rxml::Item::ElementHeadStart(ns.into(), &el))?;
        for (k, v) in attrs {
            let k = name(k);
            self.item(rxml::Item::Attribute(
                rxml::Namespace::none().clone(),
                &k,
                v,
            ))?;
        }
        self.item(rxml::Item::ElementHeadEnd)
    }

    fn close(&mut self) -> Result<(), DumpError> {
        self.item(rxml::Item::ElementFoot)?;
        self.newline()
    }

    /// A line break between elements, so that the dump reads (and diffs) line by line.
    fn newline(&mut self) -> Result<(), DumpError> {
        self.item(rxml::Item::Text("\n"))?;
        self.spill()
    }

    fn element<T: xso::AsXml>(&mut self, x: &T) -> Result<(), DumpError> {
        for item in x.as_xml_iter().map_err(Self::enc_err)? {
            let item = item.map_err(Self::enc_err)?;
            self.enc
                .encode(item.as_rxml_item(), &mut self.buf)
                .map_err(Self::enc_err)?;
        }
        self.newline()
    }

    fn spill(&mut self) -> Result<(), DumpError> {
        if self.buf.len() >= CHUNK {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> Result<W, DumpError> {
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes the whole store to `out` as a dump (docs/dump-format.md), with progress on a
/// terminal. Reads only.
pub fn export<W: Write>(store: &mut SledStore, out: W) -> Result<(W, Totals), DumpError> {
    let snap = store.load()?;
    let mut t = Totals {
        nodes: snap.nodes.len() as u64,
        ..Totals::default()
    };
    let items_total: u64 = snap.nodes.values().map(|(_, c)| c.count).sum();
    let mut w = DocWriter {
        enc: Encoder::new(),
        buf: Vec::with_capacity(CHUNK * 2),
        out,
    };
    // The XML declaration and the root's header are written item by item: the root's
    // children are streamed, so it is never one value.
    w.item(rxml::Item::XmlDeclaration(rxml::XmlVersion::V1_0))?;
    // Declared on the root: NS_DUMP as its default namespace, and as prefix `r` for the
    // attributes Roost adds to XEP-0060's elements, so that it is declared once.
    let r = name("r");
    let nst = w.enc.ns_tracker_mut();
    nst.declare_fixed(None, NS_DUMP.into());
    nst.declare_fixed(Some(&r), NS_DUMP.into());
    w.open(
        NS_DUMP,
        "dump",
        &[
            ("last-uid", snap.last_uid.to_string()),
            ("nodes", t.nodes.to_string()),
            ("items", items_total.to_string()),
        ],
    )?;
    w.newline()?;

    w.open(ns::PUBSUB_OWNER, "pubsub", &[])?;
    w.newline()?;
    for (name, (rec, counters)) in &snap.nodes {
        w.element(&configure(rec, counters.last_seq))?;
        if let Some(affs) = snap.affiliations.get(name) {
            t.affiliations += affs.len() as u64;
            w.element(&OwnerAffiliations {
                node: NodeName(name.clone()),
                affiliations: affs
                    .iter()
                    .map(|(jid, a)| OwnerAffiliation {
                        jid: jid.clone().into(),
                        affiliation: affiliation_attr(*a),
                    })
                    .collect(),
            })?;
        }
        if let Some(subs) = snap.subscriptions.get(name) {
            t.subscriptions += subs.len() as u64;
            w.element(&DumpSubscriptions {
                node: name.clone(),
                subscriptions: subs.values().map(dump_subscription).collect(),
            })?;
        }
    }
    w.close()?;

    let mut progress = Progress::new("exporting", "items", items_total);
    w.open(ns::PUBSUB, "pubsub", &[])?;
    w.newline()?;
    let mut names: HashMap<u64, &str> = HashMap::with_capacity(snap.nodes.len());
    for (name, (rec, _)) in &snap.nodes {
        names.insert(rec.uid, name);
        let mut opened = false;
        for item in store.items_of(rec.uid)? {
            let item = item?;
            if !opened {
                w.open(ns::PUBSUB, "items", &[("node", name.clone())])?;
                w.newline()?;
                opened = true;
            }
            w.element(&DumpItem {
                id: item.id,
                publisher: item.publisher,
                seq: item.seq,
                published: format_datetime(item.published),
                created: item.first_seq,
                payload: match item.payload.as_str() {
                    "" => None,
                    p => Some(p.parse().map_err(|e| {
                        DumpError::Format(format!(
                            "node {name:?}: stored payload of item seq {} is not XML: {e}",
                            item.seq
                        ))
                    })?),
                },
            })?;
            t.items += 1;
            if t.items.is_multiple_of(1024) {
                progress.at(t.items);
            }
        }
        if opened {
            w.close()?;
        }
    }
    w.close()?;
    progress.done();

    w.open(NS_DUMP, "expiries", &[])?;
    w.newline()?;
    for e in store.expiries() {
        let (at, uid, seq) = e?;
        // Stale rows (the item or node is gone) are not state: left out.
        let Some(node) = names.get(&uid) else {
            continue;
        };
        let Some(item) = store.item_at(uid, seq)? else {
            continue;
        };
        w.element(&DumpExpire {
            node: (*node).to_owned(),
            item: item.id,
            at: format_datetime(at),
        })?;
        t.expiries += 1;
    }
    w.close()?;
    // The root's end: nothing may follow it, not even a line break.
    w.item(rxml::Item::ElementFoot)?;
    let out = w.finish()?;
    Ok((out, t))
}
