//! The XEP-0060 and XEP-0313 requests `roost-kv` sends, and what it reads from the
//! service's messages. Built with xmpp-parsers' types, except the two whose fields
//! xmpp-parsers 0.23 keeps private (see [`affiliations`] and [`unsubscribe`]).

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::mam::{Fin, Query, QueryId, Result_};
use xmpp_parsers::message::Message;
use xmpp_parsers::pubsub::event::{Event, Payload};
use xmpp_parsers::pubsub::owner::{Owner, Payload as OwnerPayload};
use xmpp_parsers::pubsub::pubsub::{Configure, Create, Item, Items, Publish, Retract, Subscribe};
use xmpp_parsers::pubsub::{ItemId, NodeName, PubSub};
use xmpp_parsers::rsm::SetQuery;

use crate::kv::{self, Change};

const OWNER_NS: &str = "http://jabber.org/protocol/pubsub#owner";
const PUBSUB_NS: &str = "http://jabber.org/protocol/pubsub";
const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";

/// History page size asked for (Roost's largest).
pub const PAGE: usize = 250;

/// The node configuration a store needs: every item kept (up to the service's limit) and
/// stored, payloads in notifications, retractions notified, and no last item re-sent on
/// every subscribe (a clone reads the history instead).
fn config_form() -> DataForm {
    let f = |var: &str, value: &str| Field::new(var, FieldType::TextSingle).with_value(value);
    DataForm::new(
        DataFormType::Submit,
        NODE_CONFIG,
        vec![
            f("pubsub#max_items", "max"),
            f("pubsub#persist_items", "1"),
            f("pubsub#deliver_payloads", "1"),
            f("pubsub#deliver_notifications", "1"),
            f("pubsub#notify_retract", "1"),
            f("pubsub#send_last_published_item", "never"),
        ],
    )
}

/// Create the node with the store's configuration.
pub fn create(node: &str) -> Element {
    PubSub::Create {
        create: Create {
            node: Some(NodeName(node.to_owned())),
        },
        configure: Some(Configure {
            form: Some(config_form()),
        }),
    }
    .into()
}

/// Give an existing node the store's configuration (owners only).
pub fn configure(node: &str) -> Element {
    Owner {
        payload: OwnerPayload::Configure {
            node: Some(NodeName(node.to_owned())),
            form: Some(config_form()),
        },
    }
    .into()
}

/// Make `jids` publishers of the node (XEP-0060 §8.9.2), so they may write and delete.
pub fn affiliations(node: &str, jids: &[Jid]) -> Element {
    // Built by hand: xmpp-parsers 0.23's owner `Affiliation` has private fields and no
    // constructor.
    let mut list = Element::builder("affiliations", OWNER_NS).attr(nc("node"), node);
    for j in jids {
        list = list.append(
            Element::builder("affiliation", OWNER_NS)
                .attr(nc("jid"), j.to_string())
                .attr(nc("affiliation"), "publisher"),
        );
    }
    Element::builder("pubsub", OWNER_NS).append(list).build()
}

/// Write `change` to the node: publish the value under the key, or retract the key with
/// `notify` (so subscribers hear of it whatever `pubsub#notify_retract` says).
pub fn write(node: &str, change: &Change) -> Element {
    let item = |k: &str, payload| Item {
        id: Some(ItemId(k.to_owned())),
        publisher: None,
        payload,
    };
    match change {
        Change::Put(k, v) => PubSub::Publish {
            publish: Publish {
                node: NodeName(node.to_owned()),
                items: vec![item(k, Some(kv::encode(v)))],
            },
            publish_options: None,
        },
        Change::Del(k) => PubSub::Retract(Retract {
            node: NodeName(node.to_owned()),
            notify: true,
            items: vec![item(k, None)],
        }),
    }
    .into()
}

/// Retrieve the item `key`.
pub fn get(node: &str, key: &str) -> Element {
    let mut items = Items::new(node);
    items.items.push(Item {
        id: Some(ItemId(key.to_owned())),
        publisher: None,
        payload: None,
    });
    PubSub::Items(items).into()
}

/// The value of `key` in a `get` reply: `Ok(None)` when the node has no such item.
pub fn got(reply: Option<Element>, key: &str) -> anyhow::Result<Option<Option<String>>> {
    let Some(reply) = reply else {
        return Ok(None);
    };
    let PubSub::Items(items) = PubSub::try_from(reply)? else {
        anyhow::bail!("the service answered an items request with something else");
    };
    Ok(items
        .items
        .into_iter()
        .find(|i| i.id.as_ref().is_some_and(|id| id.0 == key))
        .map(|i| i.payload.as_ref().and_then(kv::decode)))
}

/// Subscribe `jid` (a full JID: notifications go to that session only).
pub fn subscribe(node: &str, jid: &Jid) -> Element {
    PubSub::Subscribe {
        subscribe: Some(Subscribe {
            jid: jid.clone(),
            node: Some(NodeName(node.to_owned())),
        }),
        options: None,
    }
    .into()
}

/// Unsubscribe `jid`.
pub fn unsubscribe(node: &str, jid: &Jid) -> Element {
    // Built by hand: xmpp-parsers 0.23's `Unsubscribe` has private fields and no
    // constructor.
    Element::builder("pubsub", PUBSUB_NS)
        .append(
            Element::builder("unsubscribe", PUBSUB_NS)
                .attr(nc("node"), node)
                .attr(nc("jid"), jid.to_string()),
        )
        .build()
}

/// One page of the node's history (XEP-0313 §5), after item `after`.
pub fn history(node: &str, queryid: &str, after: Option<String>) -> Element {
    Query {
        queryid: Some(QueryId(queryid.to_owned())),
        node: Some(NodeName(node.to_owned())),
        form: None,
        set: Some(SetQuery {
            max: Some(PAGE),
            after,
            before: None,
            index: None,
        }),
        flip_page: false,
    }
    .into()
}

/// Whether a history query's IQ result says the page was the last one. A result without
/// `<fin/>` counts as complete: there is nothing to page on from.
pub fn complete(reply: Option<Element>) -> bool {
    match reply.map(Fin::try_from) {
        None => true,
        Some(Ok(fin)) => fin.complete,
        Some(Err(e)) => {
            tracing::warn!("unreadable <fin/> taken as the last page: {e}");
            true
        }
    }
}

/// What a message from the service says about the node.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// A notification: a key written or deleted.
    Change(Change),
    /// A notification: every item was purged.
    Purge,
    /// A notification: the node was deleted.
    Deleted,
    /// A result of history query `queryid`: `key` holds this value (`None`: an item that
    /// is not a value).
    Result {
        queryid: String,
        key: String,
        value: Option<String>,
    },
}

/// Everything `m` (a message from the service) says about `node`.
pub fn notices(m: &Message, node: &str) -> Vec<Notice> {
    let mut out = Vec::new();
    for p in &m.payloads {
        if p.is("event", xmpp_parsers::ns::PUBSUB_EVENT) {
            match Event::try_from(p.clone()) {
                Ok(e) => event(e.payload, node, None, &mut out),
                Err(e) => tracing::warn!("unreadable pubsub event ignored: {e}"),
            }
        } else if p.is("result", xmpp_parsers::ns::MAM) {
            let Ok(r) = Result_::try_from(p.clone()) else {
                tracing::warn!("unreadable history result ignored");
                continue;
            };
            let queryid = r.queryid.map(|q| q.0).unwrap_or_default();
            for inner in &r.forwarded.message.payloads {
                if let Ok(e) = Event::try_from(inner.clone()) {
                    event(e.payload, node, Some(&queryid), &mut out);
                }
            }
        }
    }
    out
}

fn event(payload: Payload, node: &str, queryid: Option<&str>, out: &mut Vec<Notice>) {
    if payload.node_name().0 != node {
        return;
    }
    match payload {
        Payload::Items {
            published,
            retracted,
            ..
        } => {
            for item in published {
                let Some(key) = item.id.map(|i| i.0) else {
                    continue;
                };
                let Some(payload) = item.payload else {
                    tracing::warn!(
                        key,
                        "a notification without payload: configure the node with \
                         pubsub#deliver_payloads=1 (roost-kv create does)"
                    );
                    continue;
                };
                let value = kv::decode(&payload);
                if value.is_none() {
                    tracing::warn!(
                        key,
                        "item is not a <value xmlns='{}'/>: the key counts as absent",
                        kv::KV_NS
                    );
                }
                out.push(match (queryid, value) {
                    (Some(q), value) => Notice::Result {
                        queryid: q.to_owned(),
                        key,
                        value,
                    },
                    (None, Some(v)) => Notice::Change(Change::Put(key, v)),
                    (None, None) => Notice::Change(Change::Del(key)),
                });
            }
            if queryid.is_none() {
                out.extend(
                    retracted
                        .into_iter()
                        .map(|id| Notice::Change(Change::Del(id.0))),
                );
            }
        }
        Payload::Purge { .. } if queryid.is_none() => out.push(Notice::Purge),
        Payload::Delete { .. } if queryid.is_none() => out.push(Notice::Deleted),
        _ => {}
    }
}

fn nc(s: &'static str) -> minidom::rxml::NcName {
    // Only called with ASCII literals that are valid names.
    minidom::rxml::NcName::try_from(s).unwrap_or_else(|_| unreachable!("{s} is an NcName"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(xml: &str) -> Message {
        Message::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    #[test]
    fn notifications_become_changes() {
        // XEP-0060 §7.1.2.1 and §7.2.2.1, with a value and a foreign payload.
        let m = message(
            "<message xmlns='jabber:client' from='pubsub.localhost' to='bob@localhost/kv'>\
               <event xmlns='http://jabber.org/protocol/pubsub#event'>\
                 <items node='store'>\
                   <item id='k1'><value xmlns='urn:roost:kv:0'> v 1 </value></item>\
                   <item id='k2'><entry xmlns='http://www.w3.org/2005/Atom'/></item>\
                   <retract id='k3'/>\
                 </items>\
               </event>\
             </message>",
        );
        assert_eq!(
            notices(&m, "store"),
            vec![
                Notice::Change(Change::Put("k1".into(), " v 1 ".into())),
                Notice::Change(Change::Del("k2".into())),
                Notice::Change(Change::Del("k3".into())),
            ]
        );
        assert!(notices(&m, "other").is_empty());
        let purge = message(
            "<message xmlns='jabber:client' from='pubsub.localhost'>\
               <event xmlns='http://jabber.org/protocol/pubsub#event'><purge node='store'/></event>\
             </message>",
        );
        assert_eq!(notices(&purge, "store"), vec![Notice::Purge]);
    }

    #[test]
    fn history_results_are_read() {
        // XEP-0313 §5, example 5, as Roost sends it.
        let m = message(
            "<message xmlns='jabber:client' from='pubsub.localhost' to='bob@localhost/kv'>\
               <result xmlns='urn:xmpp:mam:2' queryid='q7' id='k1'>\
                 <forwarded xmlns='urn:xmpp:forward:0'>\
                   <delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/>\
                   <message xmlns='jabber:client'>\
                     <event xmlns='http://jabber.org/protocol/pubsub#event'>\
                       <items node='store'>\
                         <item id='k1' publisher='alice@localhost'><value xmlns='urn:roost:kv:0'>v</value></item>\
                       </items>\
                     </event>\
                   </message>\
                 </forwarded>\
               </result>\
             </message>",
        );
        assert_eq!(
            notices(&m, "store"),
            vec![Notice::Result {
                queryid: "q7".into(),
                key: "k1".into(),
                value: Some("v".into())
            }]
        );
    }

    #[test]
    fn requests_serialize_as_the_xeps_say() {
        let s = String::from(&write("store", &Change::Del("k".into())));
        assert!(
            s.contains("<retract node='store' notify='true'><item id='k'/>"),
            "{s}"
        );
        let s = String::from(&write("store", &Change::Put("k".into(), "v".into())));
        assert!(
            s.contains("<item id='k'><value xmlns='urn:roost:kv:0'>v</value></item>"),
            "{s}"
        );
        let s = String::from(&history("store", "q1", Some("k".into())));
        assert!(
            s.contains("node='store'") && s.contains("<after>k</after>"),
            "{s}"
        );
        assert!(s.contains("<max>250</max>"), "{s}");
        let s = String::from(&create("store"));
        assert!(
            s.contains("pubsub#max_items") && s.contains("<value>max</value>"),
            "{s}"
        );
        let jid: Jid = "bob@localhost".parse().unwrap();
        let s = String::from(&affiliations("store", &[jid]));
        assert!(s.contains("affiliation='publisher'"), "{s}");
    }

    #[test]
    fn fin_tells_whether_the_page_was_the_last() {
        let fin = |c: &str| -> Option<Element> {
            Some(
                format!(
                    "<fin xmlns='urn:xmpp:mam:2' complete='{c}'>\
                       <set xmlns='http://jabber.org/protocol/rsm'><count>3</count></set></fin>"
                )
                .parse()
                .unwrap(),
            )
        };
        assert!(complete(fin("true")));
        assert!(!complete(fin("false")));
        assert!(complete(None));
    }
}
