//! `roost-log-sink --filter`: a content filter (Roost's `x-roost#filter` subscription
//! option, feature `urn:roost:filter:0`) and the one filtered subscription a sink holds.
//!
//! The filter language is the engine's own (`roost_nodes::filter`): the sink parses its
//! `--filter` with it and applies it to what it reads from the node's history, which the
//! service does not filter, so that catching up selects exactly what the subscription
//! delivers live.
//!
//! A filtered subscribe always makes a new subscription (XEP-0060 §12: one JID may hold
//! several, each with its own subid), so a sink that subscribed on every start would pile
//! them up and get every item once per subscription. Instead [`ensure`] finds the sink's
//! subscription again: the subid remembered in the sink's state, checked against the
//! service's list of the account's subscriptions (§5.6) and the filter its options form
//! shows (§6.3.2). Only when there is none that fits does it subscribe and configure
//! (§6.3.7), and it drops (§6.2) the full JID's other subscriptions to the node: the
//! remembered one when its filter was changed, or one made just before a crash that kept
//! its subid from being saved.

use std::time::Duration;

use anyhow::bail;
use minidom::Element;
use roost_nodes::filter::Filter;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use crate::{describe_error, is_transient, Session};

const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";
const DATA_NS: &str = "jabber:x:data";
const SUBSCRIBE_OPTIONS: &str = "http://jabber.org/protocol/pubsub#subscribe_options";
/// The subscription option that carries a content filter (Roost, issue 15).
pub const FILTER_FIELD: &str = "x-roost#filter";

/// A sink's content filter, parsed by the engine's parser.
#[derive(Debug, Clone)]
pub struct SinkFilter {
    filter: Filter,
}

impl SinkFilter {
    /// Parses `--filter`; the error says where and why, as the service's `not-acceptable`
    /// would.
    pub fn parse(text: &str) -> anyhow::Result<SinkFilter> {
        match Filter::parse(text) {
            Ok(filter) => Ok(SinkFilter { filter }),
            Err(e) => bail!("--filter {text:?} does not parse: {e}"),
        }
    }

    /// The filter's canonical text, as the service stores it.
    pub fn text(&self) -> String {
        self.filter.to_string()
    }

    /// Whether the filter selects an item with this payload.
    pub fn selects(&self, payload: &Element) -> bool {
        // The engine reads payloads as serialized XML, as the service stores them.
        self.filter.matches_payload(&String::from(payload))
    }

    /// Whether `shown`, the value of a subscription's filter field, is this filter.
    fn is(&self, shown: &str) -> bool {
        Filter::parse_stored(shown).is_ok_and(|f| f == self.filter)
    }
}

/// The subscription the sink wants.
pub struct Wanted<'a> {
    /// The pubsub service.
    pub service: &'a Jid,
    /// The node: a leaf, or a collection (then for items at any depth, XEP-0248).
    pub node: &'a str,
    /// The subscribed JID: the sink's full JID.
    pub jid: &'a Jid,
    /// Its content filter.
    pub filter: &'a SinkFilter,
    /// Whether the node is a collection.
    pub collection: bool,
    /// How long to wait for each reply.
    pub timeout: Duration,
}

/// What [`ensure`] found or made.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// The sink's subscription: found again (`reused`) or just made.
    Subscribed {
        /// Its subid.
        subid: String,
        /// Whether it existed already.
        reused: bool,
    },
    /// The node does not exist (yet).
    Missing,
    /// The service did not answer, or answered with a transient error: try again later.
    Away(String),
}

/// One subscription of the account to the node, as the service lists it.
struct Listed {
    jid: Option<Jid>,
    subid: String,
}

/// Find the sink's subscription (`remembered` first), or make one; drop the full JID's
/// other subscriptions to the node.
pub async fn ensure(
    s: &mut Session,
    w: &Wanted<'_>,
    remembered: Option<&str>,
) -> anyhow::Result<Held> {
    let list = Element::builder("pubsub", PUBSUB_NS)
        .append(Element::builder("subscriptions", PUBSUB_NS).attr(name("node"), w.node))
        .build();
    let listed = match reply(s.request(w.service, false, list, w.timeout).await, w)? {
        Ok(p) => subscriptions(p.as_ref(), w.node),
        Err(held) => return Ok(held),
    };
    let mut ours: Vec<String> = listed
        .into_iter()
        .filter(|l| l.jid.as_ref() == Some(w.jid))
        .map(|l| l.subid)
        .collect();
    // The remembered one first: of several that fit, it is the one kept.
    ours.sort_by_key(|subid| Some(subid.as_str()) != remembered);
    let mut keep = None;
    let mut stale = Vec::new();
    for subid in ours {
        if keep.is_some() {
            stale.push((subid, "another subscription of this sink".to_owned()));
            continue;
        }
        let get = Element::builder("pubsub", PUBSUB_NS)
            .append(
                Element::builder("options", PUBSUB_NS)
                    .attr(name("node"), w.node)
                    .attr(name("jid"), w.jid.to_string())
                    .attr(name("subid"), subid.as_str()),
            )
            .build();
        let form = match reply(s.request(w.service, false, get, w.timeout).await, w)? {
            Ok(p) => p,
            // Gone meanwhile.
            Err(Held::Missing) => continue,
            Err(held) => return Ok(held),
        };
        let fields = form_fields(form.as_ref());
        let field = |var: &str| {
            fields
                .iter()
                .find(|(v, _)| v == var)
                .map(|(_, x)| x.as_str())
        };
        let filter = field(FILTER_FIELD).unwrap_or("");
        let fits = w.filter.is(filter)
            && (!w.collection
                || (field("pubsub#subscription_type") == Some("items")
                    && field("pubsub#subscription_depth") == Some("all")));
        if fits {
            keep = Some(subid);
        } else {
            stale.push((subid, format!("filter {filter:?}")));
        }
    }
    for (subid, why) in stale {
        let unsubscribe = Element::builder("pubsub", PUBSUB_NS)
            .append(
                Element::builder("unsubscribe", PUBSUB_NS)
                    .attr(name("node"), w.node)
                    .attr(name("jid"), w.jid.to_string())
                    .attr(name("subid"), subid.as_str()),
            )
            .build();
        match reply(s.request(w.service, true, unsubscribe, w.timeout).await, w)? {
            Ok(_) | Err(Held::Missing) => {
                eprintln!("roost-log-sink: dropped stale subscription {subid} ({why})")
            }
            Err(held) => return Ok(held),
        }
    }
    if let Some(subid) = keep {
        return Ok(Held::Subscribed {
            subid,
            reused: true,
        });
    }
    let subscribe = Element::builder("pubsub", PUBSUB_NS)
        .append(
            Element::builder("subscribe", PUBSUB_NS)
                .attr(name("node"), w.node)
                .attr(name("jid"), w.jid.to_string()),
        )
        .append(Element::builder("options", PUBSUB_NS).append(options_form(w)))
        .build();
    let p = match reply(s.request(w.service, true, subscribe, w.timeout).await, w)? {
        Ok(p) => p,
        Err(held) => return Ok(held),
    };
    let sub = p
        .as_ref()
        .and_then(|p| p.get_child("subscription", PUBSUB_NS));
    match sub.and_then(|sub| sub.attr("subid")) {
        Some(subid) => Ok(Held::Subscribed {
            subid: subid.to_owned(),
            reused: false,
        }),
        None => bail!(
            "the service made a filtered subscription to {} without a subid: it does not \
             offer content filters (urn:roost:filter:0)",
            w.node
        ),
    }
}

/// A reply sorted out: its payload, or what the sink should do (`Missing`, `Away`); an
/// error retrying cannot fix stops the sink. `unexpected-request` (not subscribed,
/// §6.2.3.2, §6.3.4.5) is a subscription gone between the list and the request: `Missing`.
fn reply(
    r: anyhow::Result<Result<Option<Element>, StanzaError>>,
    w: &Wanted<'_>,
) -> anyhow::Result<Result<Option<Element>, Held>> {
    match r {
        Ok(Ok(p)) => Ok(Ok(p)),
        Err(e) => Ok(Err(Held::Away(e.to_string()))),
        Ok(Err(e))
            if matches!(
                e.defined_condition,
                DefinedCondition::ItemNotFound | DefinedCondition::UnexpectedRequest
            ) =>
        {
            Ok(Err(Held::Missing))
        }
        Ok(Err(e)) if is_transient(&e) => Ok(Err(Held::Away(describe_error(&e)))),
        Ok(Err(e)) => bail!(
            "subscribing to {} with a filter failed: {}",
            w.node,
            describe_error(&e)
        ),
    }
}

/// The subscriptions to `node` in a §5.6 reply.
fn subscriptions(p: Option<&Element>, node: &str) -> Vec<Listed> {
    p.and_then(|p| p.get_child("subscriptions", PUBSUB_NS))
        .into_iter()
        .flat_map(|list| list.children())
        .filter(|c| c.is("subscription", PUBSUB_NS))
        // The list may name the node on each entry, on the list, or both.
        .filter(|c| c.attr("node").is_none_or(|n| n == node))
        .filter_map(|c| {
            Some(Listed {
                jid: c.attr("jid").and_then(|j| j.parse().ok()),
                subid: c.attr("subid")?.to_owned(),
            })
        })
        .collect()
}

/// `(var, first value)` of every field of the data form in a §6.3.2 options reply.
fn form_fields(p: Option<&Element>) -> Vec<(String, String)> {
    p.and_then(|p| p.get_child("options", PUBSUB_NS))
        .and_then(|o| o.get_child("x", DATA_NS))
        .into_iter()
        .flat_map(|x| x.children())
        .filter(|f| f.is("field", DATA_NS))
        .filter_map(|f| {
            let value = f.get_child("value", DATA_NS).map(|v| v.text());
            Some((f.attr("var")?.to_owned(), value.unwrap_or_default()))
        })
        .collect()
}

/// The options of the sink's subscription (§6.3.7): the filter, and for a collection items
/// at any depth (XEP-0248).
fn options_form(w: &Wanted<'_>) -> Element {
    let field = |var: &str, value: &str| {
        Element::builder("field", DATA_NS)
            .attr(name("var"), var)
            .append(Element::builder("value", DATA_NS).append(value))
    };
    let filter = w.filter.text();
    let mut x = Element::builder("x", DATA_NS)
        .attr(name("type"), "submit")
        .append(field("FORM_TYPE", SUBSCRIBE_OPTIONS))
        .append(field(FILTER_FIELD, &filter));
    if w.collection {
        x = x
            .append(field("pubsub#subscription_type", "items"))
            .append(field("pubsub#subscription_depth", "all"));
    }
    x.build()
}

fn name(s: &'static str) -> minidom::rxml::NcName {
    // Only called with ASCII literals that are valid names.
    minidom::rxml::NcName::try_from(s).unwrap_or_else(|_| unreachable!("{s} is an NcName"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, parse_attr, Unit};

    fn lines(attrs: &[&str]) -> Element {
        let attrs: Vec<_> = attrs.iter().map(|a| parse_attr(a).unwrap()).collect();
        let unit = Unit {
            bytes: b"x".to_vec(),
            newline: true,
        };
        // Through text and back, as the payload arrives.
        String::from(&encode(1, &[unit], &attrs)).parse().unwrap()
    }

    #[test]
    fn selects_by_the_shippers_attributes_with_the_engines_language() {
        let f = SinkFilter::parse("@host = 'web-1' and (@app ^= 'ng' or @app = \"pg\")").unwrap();
        assert!(f.selects(&lines(&["host=web-1", "app=nginx"])));
        assert!(f.selects(&lines(&["host=web-1", "app=pg"])));
        assert!(!f.selects(&lines(&["host=db-1", "app=nginx"])));
        assert!(!f.selects(&lines(&["app=nginx"])));
        // The payload's own attribute and its children are there to select on too.
        assert!(SinkFilter::parse("@first = 1 and line = 'x'")
            .unwrap()
            .selects(&lines(&[])));
        let e = SinkFilter::parse("@host = ").unwrap_err().to_string();
        assert!(e.contains("at 8"), "{e}");
    }

    #[test]
    fn a_filter_is_recognized_in_its_canonical_form() {
        let f = SinkFilter::parse("@level='error'   and(@host ^= 'web-')").unwrap();
        assert!(f.is(&f.text()));
        assert!(f.is("@level = 'error' and @host ^= 'web-'"));
        assert!(!f.is("@level = 'error'"));
        assert!(!f.is(""));
    }

    #[test]
    fn reads_the_listed_subscriptions_and_the_options_form() {
        let list: Element = format!(
            "<pubsub xmlns='{PUBSUB_NS}'><subscriptions node='logs'>\
             <subscription node='logs' jid='bob@localhost/sink' subid='1' subscription='subscribed'/>\
             <subscription node='other' jid='bob@localhost/sink' subid='2' subscription='subscribed'/>\
             <subscription jid='bob@localhost' subid='3' subscription='subscribed'/>\
             </subscriptions></pubsub>"
        )
        .parse()
        .unwrap();
        let got: Vec<_> = subscriptions(Some(&list), "logs")
            .into_iter()
            .map(|l| (l.jid.map(|j| j.to_string()), l.subid))
            .collect();
        assert_eq!(
            got,
            [
                (Some("bob@localhost/sink".to_owned()), "1".to_owned()),
                (Some("bob@localhost".to_owned()), "3".to_owned())
            ]
        );
        let options: Element = format!(
            "<pubsub xmlns='{PUBSUB_NS}'><options node='logs' jid='bob@localhost/sink' subid='1'>\
             <x xmlns='{DATA_NS}' type='form'>\
             <field var='FORM_TYPE' type='hidden'><value>{SUBSCRIBE_OPTIONS}</value></field>\
             <field var='{FILTER_FIELD}' type='text-single'><value>@host = 'web-1'</value></field>\
             <field var='pubsub#deliver' type='boolean'><value>1</value></field>\
             </x></options></pubsub>"
        )
        .parse()
        .unwrap();
        let fields = form_fields(Some(&options));
        assert!(fields.contains(&(FILTER_FIELD.to_owned(), "@host = 'web-1'".to_owned())));
        assert_eq!(fields.len(), 3);
    }
}
