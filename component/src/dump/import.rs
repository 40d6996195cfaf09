//! `roost import`: a dump into an empty data directory, streamed: one node's records or
//! one item parsed at a time, written in large batches ([`roost_storage::bulk::Loader`]).

use std::io::BufRead;
use std::path::Path;

use minidom::rxml::{self, Event, XmlLangTracker};
use roost_nodes::{Affiliation, BareJid, Item, NodeRecord, Subscription};
use roost_storage::bulk::Loader;
use roost_storage::progress::Progress;
use xmpp_parsers::ns;
use xso::{FromEventsBuilder, FromXml};

use super::{affiliation, bad, bare, record, subscription, DumpError, Totals, NS_DUMP};
use crate::pubsub::codec::{parse_datetime, serialize_payload};
use crate::xml::dump::{DumpConfigure, DumpExpire, DumpItem, DumpSubscriptions};
use crate::xml::pubsub::OwnerAffiliations;

type Reader<R> = XmlLangTracker<rxml::Reader<R>>;

/// The dump's events, with what the format allows between elements (whitespace) skipped.
struct Events<R: BufRead> {
    r: Reader<R>,
}

/// An element start: its name and attributes.
type Start = (rxml::QName, rxml::AttrMap);

impl<R: BufRead> Events<R> {
    fn next(&mut self) -> Result<Option<Event>, DumpError> {
        loop {
            match self.r.next() {
                None => return Ok(None),
                Some(Err(e)) => return Err(xml_error(e)),
                Some(Ok(Event::Text(_, t))) if xso::is_xml_whitespace(t.as_bytes()) => {}
                Some(Ok(Event::XmlDeclaration(..))) => {}
                Some(Ok(ev)) => return Ok(Some(ev)),
            }
        }
    }

    /// The next child's start, or `None` at the end of the current element.
    fn child(&mut self, inside: &str) -> Result<Option<Start>, DumpError> {
        match self.next()? {
            Some(Event::StartElement(_, name, attrs)) => Ok(Some((name, attrs))),
            Some(Event::EndElement(_)) => Ok(None),
            Some(_) => Err(bad(format!(
                "text in <{inside}/>, where only elements belong"
            ))),
            None => Err(bad(format!(
                "the dump ends inside <{inside}/> (truncated?)"
            ))),
        }
    }

    /// The element whose start was just read, as a `T`.
    fn parse<T: FromXml>(&mut self, (name, attrs): Start) -> Result<T, DumpError> {
        let what = format!("<{}/>", name.1);
        let ctx = xso::Context::empty();
        let mut builder =
            T::from_events(name, attrs, &ctx).map_err(|e| bad(format!("{what}: {e:?}")))?;
        loop {
            let ev = match self.r.next() {
                None => return Err(bad(format!("the dump ends inside {what} (truncated?)"))),
                Some(Err(e)) => return Err(xml_error(e)),
                Some(Ok(ev)) => ev,
            };
            let ctx = xso::Context::empty().with_language(self.r.language());
            if let Some(v) = builder
                .feed(ev, &ctx)
                .map_err(|e| bad(format!("{what}: {e}")))?
            {
                return Ok(v);
            }
        }
    }
}

fn xml_error(e: std::io::Error) -> DumpError {
    let s = e.to_string();
    if s.contains("eof") {
        bad(format!("the dump ends early (truncated?): {s}"))
    } else {
        bad(format!("not well-formed XML: {s}"))
    }
}

fn attr<'a>(attrs: &'a rxml::AttrMap, name: &str) -> Option<&'a str> {
    attrs.get("", name).map(|v| v.as_str())
}

fn is(start: &Start, ns: &str, name: &str) -> bool {
    start.0 .0 == ns && start.0 .1 == name
}

fn number(attrs: &rxml::AttrMap, name: &str) -> Result<u64, DumpError> {
    let v = attr(attrs, name).ok_or_else(|| bad(format!("<dump/> has no {name}")))?;
    v.parse()
        .map_err(|_| bad(format!("<dump/> {name}={v:?} is not a number")))
}

/// A node read from the owner section, written once its affiliations and subscriptions
/// (which follow its `<configure/>`) are complete.
struct PendingNode {
    rec: NodeRecord,
    last_seq: u64,
    affs: Vec<(BareJid, Affiliation)>,
    subs: Vec<Subscription>,
}

fn flush(loader: &mut Loader, node: Option<PendingNode>, t: &mut Totals) -> Result<(), DumpError> {
    if let Some(n) = node {
        t.nodes += 1;
        t.affiliations += n.affs.len() as u64;
        t.subscriptions += n.subs.len() as u64;
        loader.put_node(&n.rec, n.last_seq, &n.affs, &n.subs)?;
    }
    Ok(())
}

/// Reads a dump from `input` into the empty (or absent) data directory `dir`.
pub fn import<R: BufRead>(input: R, dir: &Path) -> Result<Totals, DumpError> {
    let mut ev = Events {
        r: XmlLangTracker::wrap(rxml::Reader::new(input)),
    };
    let root = match ev.next()? {
        Some(Event::StartElement(_, name, attrs)) => (name, attrs),
        _ => return Err(bad("not a Roost dump: no root element")),
    };
    if root.0 .1 != "dump" || !root.0 .0.starts_with("urn:roost:dump:") {
        return Err(bad(format!(
            "not a Roost dump: the root is <{}/> in {:?}, not <dump/> in {NS_DUMP}",
            root.0 .1, root.0 .0
        )));
    }
    if root.0 .0 != NS_DUMP {
        return Err(bad(format!(
            "this dump is format {:?}; this Roost reads {NS_DUMP}: import it with the Roost \
             release that wrote it",
            root.0 .0.as_str()
        )));
    }
    let last_uid = number(&root.1, "last-uid")?;
    let nodes_total = number(&root.1, "nodes")?;
    let items_total = number(&root.1, "items")?;
    // Checked before anything is written.
    let mut loader = Loader::create(dir)?;
    loader.set_last_uid(last_uid);
    let mut t = Totals::default();

    // The owner section: per node, <configure/> then its <affiliations/> and
    // <subscriptions/>, written once the next node (or the end) comes.
    let owner = ev
        .child("dump")?
        .filter(|s| is(s, ns::PUBSUB_OWNER, "pubsub"))
        .ok_or_else(|| bad("the dump's first section must be <pubsub xmlns='…#owner'/>"))?;
    drop(owner);
    let mut progress = Progress::new("importing", "nodes", nodes_total);
    let mut node: Option<PendingNode> = None;
    while let Some(start) = ev.child("pubsub")? {
        if is(&start, ns::PUBSUB_OWNER, "configure") {
            flush(&mut loader, node.take(), &mut t)?;
            progress.at(t.nodes);
            let (rec, last_seq) = record(ev.parse::<DumpConfigure>(start)?)?;
            node = Some(PendingNode {
                rec,
                last_seq,
                affs: Vec::new(),
                subs: Vec::new(),
            });
        } else if is(&start, ns::PUBSUB_OWNER, "affiliations") {
            let a: OwnerAffiliations = ev.parse(start)?;
            let Some(n) = node.as_mut().filter(|n| n.rec.name == a.node.0) else {
                return Err(bad(format!(
                    "<affiliations node={:?}/> does not follow that node's <configure/>",
                    a.node.0
                )));
            };
            for x in &a.affiliations {
                n.affs
                    .push((bare(&n.rec.name, &x.jid)?, affiliation(&x.affiliation)));
            }
        } else if is(&start, ns::PUBSUB_OWNER, "subscriptions") {
            let s: DumpSubscriptions = ev.parse(start)?;
            let Some(n) = node.as_mut().filter(|n| n.rec.name == s.node) else {
                return Err(bad(format!(
                    "<subscriptions node={:?}/> does not follow that node's <configure/>",
                    s.node
                )));
            };
            for x in s.subscriptions {
                n.subs.push(subscription(&n.rec.name, x)?);
            }
        } else {
            return Err(bad(format!(
                "unexpected <{}/> in the owner section",
                start.0 .1
            )));
        }
    }
    flush(&mut loader, node.take(), &mut t)?;
    progress.done();

    // The items section: per node, its <items/> in publish order.
    let mut progress = Progress::new("importing", "items", items_total);
    match ev.child("dump")? {
        Some(s) if is(&s, ns::PUBSUB, "pubsub") => {}
        _ => {
            return Err(bad(
                "the dump's second section must be <pubsub xmlns='…pubsub'/>",
            ))
        }
    }
    while let Some(start) = ev.child("pubsub")? {
        if !is(&start, ns::PUBSUB, "items") {
            return Err(bad(format!(
                "unexpected <{}/> in the items section",
                start.0 .1
            )));
        }
        let node = attr(&start.1, "node")
            .ok_or_else(|| bad("<items/> without a node"))?
            .to_owned();
        loader.begin_items(&node)?;
        while let Some(start) = ev.child("items")? {
            if !is(&start, ns::PUBSUB, "item") {
                return Err(bad(format!("unexpected <{}/> in <items/>", start.0 .1)));
            }
            let i: DumpItem = ev.parse(start)?;
            let published = parse_datetime(&i.published).ok_or_else(|| {
                bad(format!(
                    "node {node:?}, item {:?}: published {:?} is not a DateTime",
                    i.id, i.published
                ))
            })?;
            loader.push_item(&Item {
                id: i.id,
                seq: i.seq,
                first_seq: i.created,
                publisher: i.publisher,
                published,
                payload: i
                    .payload
                    .as_ref()
                    .map(serialize_payload)
                    .unwrap_or_default(),
            })?;
            t.items += 1;
            if t.items.is_multiple_of(1024) {
                progress.at(t.items);
            }
        }
    }
    progress.done();

    // Expiries.
    match ev.child("dump")? {
        Some(s) if is(&s, NS_DUMP, "expiries") => {}
        _ => return Err(bad("the dump's third section must be <expiries/>")),
    }
    while let Some(start) = ev.child("expiries")? {
        let e: DumpExpire = ev.parse(start)?;
        let at = parse_datetime(&e.at)
            .ok_or_else(|| bad(format!("expiry {:?} is not a DateTime", e.at)))?;
        loader.put_expiry(at, &e.node, &e.item)?;
        t.expiries += 1;
    }
    if ev.child("dump")?.is_some() {
        return Err(bad("unexpected element after <expiries/>"));
    }
    if t.nodes != nodes_total {
        return Err(bad(format!(
            "the dump says {nodes_total} nodes but holds {}",
            t.nodes
        )));
    }
    loader.finish()?;
    Ok(t)
}
