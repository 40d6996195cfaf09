//! XEP-0313 Message Archive Management on pubsub nodes (§5 "Querying a PubSub node's
//! archive"): `<query xmlns='urn:xmpp:mam:2' node='…'/>` → [`Request::History`], and
//! [`Reply::History`] → one `<result/>` message per item, then the `<fin/>` IQ result.
//!
//! The query is read with xmpp-parsers' `mam::Query` and the `<fin/>` built with `mam::Fin`.
//! The `<result/>` is [`crate::xml::mam::ArchiveResult`]: `mam::Result_` wraps a typed
//! `Message`, which this crate (built with xmpp-parsers' `component` feature) serializes in
//! `jabber:component:accept`, but the forwarded copy must be a `jabber:client` stanza.

// Same reason as in `parse`: the public interface hands `StanzaError` over by value.
#![allow(clippy::result_large_err)]

use minidom::Element;
use roost_nodes::{HistoryFilter, Item, Reply, Request};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::delay::Delay;
use xmpp_parsers::jid::Jid;
use xmpp_parsers::mam::{Fin, Query};
use xmpp_parsers::message::{Id, Message};
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::event::{Event as PsEvent, Item as EventItem, Payload};
use xmpp_parsers::pubsub::{ItemId, NodeName};
use xmpp_parsers::stanza_error::StanzaError;

use super::codec::{
    form_child, format_datetime, parse_datetime, payload_element, rsm_child, set_result, IqKind,
};
use crate::errors::{bad_request, refusal, Refusal};
use crate::xml::mam::{ArchiveResult, ClientMessage, Forwarded};

/// A MAM query on a node of the service, as an engine request.
pub(crate) fn parse_query(kind: IqKind, payload: &Element) -> Result<Request, StanzaError> {
    if kind != IqKind::Set {
        // §5.1 form discovery (an iq get) is not offered: the fields are the standard ones.
        return Err(refusal(&Refusal::MamNotOffered(
            "MAM queries are iq set; form discovery is not offered",
        )));
    }
    // XEP-0413 on archives is not offered (only `@pubsub` is claimed): say so, rather than
    // a parse failure or an answer in archive order taken for an ordered one.
    if payload.has_child("order", crate::xml::typed::NS_ORDER_BY) {
        return Err(refusal(&Refusal::MamNotOffered(
            "XEP-0413 order-by is offered on item retrieval, not on archive queries",
        )));
    }
    // The typed query checks the structure; <set/> and the form are read apart below
    // (the RSM reader keeps an empty <before/> distinct from none).
    let q = Query::try_from(payload.clone())
        .map_err(|e| bad_request(format!("malformed MAM query: {e}")))?;
    if q.flip_page {
        return Err(refusal(&Refusal::MamNotOffered("flip-page is not offered")));
    }
    let Some(node) = q.node.map(|n| n.0).filter(|n| !n.is_empty()) else {
        // Only nodes have archives here: the service itself archives no messages.
        return Err(refusal(&Refusal::ServiceArchive));
    };
    let filter = match form_child(payload)? {
        None => HistoryFilter::default(),
        Some(form) => parse_filter(&form)?,
    };
    let rsm = rsm_child(payload)?.unwrap_or_default();
    Ok(Request::History { node, filter, rsm })
}

/// The §4.1 filter form: `start`, `end`, `after-id`, `before-id`. Other fields (such as
/// `with`, which has no meaning for a node) are refused rather than silently ignored, so a
/// client never takes an unfiltered answer for a filtered one.
fn parse_filter(form: &DataForm) -> Result<HistoryFilter, StanzaError> {
    let mut f = HistoryFilter::default();
    for field in &form.fields {
        let var = field.var.as_deref().unwrap_or("");
        let value = field.values.first().map(|v| v.trim()).unwrap_or("");
        let time = || {
            parse_datetime(value)
                .ok_or_else(|| bad_request(format!("field '{var}' is not an XEP-0082 DateTime")))
        };
        match var {
            "FORM_TYPE" => {
                if value != ns::MAM {
                    return Err(bad_request(format!("FORM_TYPE must be {}", ns::MAM)));
                }
            }
            _ if value.is_empty() => {}
            "start" => f.start = Some(time()?),
            "end" => f.end = Some(time()?),
            "after-id" => f.after_id = Some(value.to_owned()),
            "before-id" => f.before_id = Some(value.to_owned()),
            other => {
                return Err(bad_request(format!(
                    "unsupported MAM filter field '{other}'"
                )))
            }
        }
    }
    Ok(f)
}

/// The `queryid` of a MAM query payload, echoed in every `<result/>`.
pub(crate) fn query_id(payload: &Element) -> Option<String> {
    payload
        .is("query", ns::MAM)
        .then(|| payload.attr("queryid").map(str::to_owned))
        .flatten()
}

/// One `<result/>` message per item of a history reply, to `to`, from `service`, ids from
/// `new_id` (§4.2, example 5 of §5). Empty for every other reply.
pub(crate) fn result_messages(
    reply: &Reply,
    queryid: Option<&str>,
    service: &Jid,
    to: &Jid,
    new_id: &mut dyn FnMut() -> String,
) -> Vec<Message> {
    let Reply::History { node, items, .. } = reply else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            let mut m = Message::new(Some(to.clone()));
            m.from = Some(service.clone());
            m.id = Some(Id(new_id()));
            m.payloads.push(result_element(node, item, queryid));
            m
        })
        .collect()
}

fn result_element(node: &str, item: &Item, queryid: Option<&str>) -> Element {
    let event: Element = PsEvent {
        payload: Payload::Items {
            node: NodeName(node.to_owned()),
            published: vec![EventItem {
                id: Some(ItemId(item.id.clone())),
                // Always: the archive says which account published (not which device).
                publisher: Some(item.shown_publisher()),
                payload: payload_element(&item.payload),
            }],
            retracted: Vec::new(),
        },
    }
    .into();
    ArchiveResult {
        queryid: queryid.map(str::to_owned),
        id: item.id.clone(),
        forwarded: Forwarded {
            delay: format_datetime(item.published)
                .parse()
                .ok()
                .map(|stamp| Delay {
                    from: None,
                    stamp,
                    data: None,
                }),
            message: ClientMessage {
                from: None,
                to: None,
                id: None,
                type_: None,
                payloads: vec![event],
            },
        },
    }
    .into()
}

/// The IQ result payload of a history reply: `<fin/>` with the page's `<set/>`.
pub(crate) fn fin(reply: &Reply) -> Option<Element> {
    let Reply::History { complete, page, .. } = reply else {
        return None;
    };
    Some(
        Fin {
            complete: *complete,
            set: set_result(page),
        }
        .into(),
    )
}

/// The messages that must precede the IQ result of `reply`, answering the request in
/// `payload` from `to`: for a history reply (XEP-0313 §4.2) one `<result/>` message per
/// item, carrying the query's `queryid`; nothing for every other reply. `new_id` names
/// each message.
pub fn reply_messages(
    reply: &roost_nodes::Reply,
    payload: &Element,
    service: &xmpp_parsers::jid::Jid,
    to: &xmpp_parsers::jid::Jid,
    new_id: &mut dyn FnMut() -> String,
) -> Vec<xmpp_parsers::message::Message> {
    let queryid = query_id(payload);
    result_messages(reply, queryid.as_deref(), service, to, new_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::{RsmPage, RsmQuery};
    use xmpp_parsers::stanza_error::DefinedCondition;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn query_with_form_and_rsm() {
        let q = el("<query xmlns='urn:xmpp:mam:2' node='logs' queryid='q1'>\
              <x xmlns='jabber:x:data' type='submit'>\
                <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
                <field var='start'><value>2010-06-07T00:00:00Z</value></field>\
                <field var='after-id'><value>a1</value></field>\
              </x>\
              <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>a5</after></set>\
            </query>");
        assert_eq!(query_id(&q).as_deref(), Some("q1"));
        let r = parse_query(IqKind::Set, &q).unwrap();
        assert_eq!(
            r,
            Request::History {
                node: "logs".into(),
                filter: HistoryFilter {
                    start: Some(1_275_868_800_000),
                    after_id: Some("a1".into()),
                    ..Default::default()
                },
                rsm: RsmQuery {
                    max: Some(10),
                    after: Some("a5".into()),
                    ..Default::default()
                },
            }
        );
    }

    #[test]
    fn refusals() {
        let bare = el("<query xmlns='urn:xmpp:mam:2' node='logs'/>");
        assert!(parse_query(IqKind::Get, &bare).is_err());
        assert!(matches!(
            parse_query(IqKind::Set, &bare),
            Ok(Request::History { .. })
        ));
        let no_node = el("<query xmlns='urn:xmpp:mam:2'/>");
        let e = parse_query(IqKind::Set, &no_node).unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::ServiceUnavailable);
        let with = el("<query xmlns='urn:xmpp:mam:2' node='logs'>\
              <x xmlns='jabber:x:data' type='submit'>\
                <field var='with'><value>juliet@capulet.lit</value></field></x></query>");
        let e = parse_query(IqKind::Set, &with).unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::BadRequest);
        let bad_time = el("<query xmlns='urn:xmpp:mam:2' node='logs'>\
              <x xmlns='jabber:x:data' type='submit'>\
                <field var='end'><value>tomorrow</value></field></x></query>");
        assert!(parse_query(IqKind::Set, &bad_time).is_err());
        // XEP-0413 §MAM's example: not offered here.
        let ordered = el("<query xmlns='urn:xmpp:mam:2' queryid='123' node='plays'>\
              <order xmlns='urn:xmpp:order-by:1' by='creation'/></query>");
        let e = parse_query(IqKind::Set, &ordered).unwrap_err();
        assert_eq!(e.defined_condition, DefinedCondition::FeatureNotImplemented);
    }

    #[test]
    fn results_then_fin() {
        let reply = Reply::History {
            node: "logs".into(),
            items: vec![Item {
                id: "s-1".into(),
                seq: 1,
                first_seq: None,
                publisher: "alice@localhost/ship".parse().unwrap(),
                published: 1_059_519_370_000,
                payload: "<lines xmlns='urn:roost:log:0'><line>a &lt; b</line></lines>".into(),
            }],
            complete: true,
            page: RsmPage {
                first: Some(("s-1".into(), 0)),
                last: Some("s-1".into()),
                count: 1,
            },
        };
        let service: Jid = "pubsub.localhost".parse().unwrap();
        let to: Jid = "bob@localhost/sink".parse().unwrap();
        let mut n = 0;
        let msgs = result_messages(&reply, Some("q1"), &service, &to, &mut || {
            n += 1;
            format!("m{n}")
        });
        assert_eq!(msgs.len(), 1);
        let r = msgs[0].payloads[0].clone();
        assert!(r.is("result", ns::MAM));
        assert_eq!(r.attr("id"), Some("s-1"));
        assert_eq!(r.attr("queryid"), Some("q1"));
        let fwd = r.get_child("forwarded", ns::FORWARD).unwrap();
        let delay = fwd.get_child("delay", ns::DELAY).unwrap();
        assert_eq!(delay.attr("stamp"), Some("2003-07-29T22:56:10+00:00"));
        let m = fwd.get_child("message", ns::JABBER_CLIENT).unwrap();
        let items = m
            .get_child("event", ns::PUBSUB_EVENT)
            .and_then(|e| e.get_child("items", ns::PUBSUB_EVENT))
            .unwrap();
        assert_eq!(items.attr("node"), Some("logs"));
        let item = items.get_child("item", ns::PUBSUB_EVENT).unwrap();
        assert_eq!(item.attr("id"), Some("s-1"));
        assert_eq!(item.attr("publisher"), Some("alice@localhost"));
        let line = item
            .get_child("lines", "urn:roost:log:0")
            .and_then(|l| l.get_child("line", "urn:roost:log:0"))
            .unwrap();
        assert_eq!(line.text(), "a < b");

        let done = fin(&reply).unwrap();
        assert!(done.is("fin", ns::MAM));
        assert_eq!(done.attr("complete"), Some("true"));
        let set = done.get_child("set", ns::RSM).unwrap();
        assert_eq!(set.get_child("count", ns::RSM).unwrap().text(), "1");
        assert_eq!(set.get_child("last", ns::RSM).unwrap().text(), "s-1");
        assert!(fin(&Reply::Done).is_none());
    }
}
