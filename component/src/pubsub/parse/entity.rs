//! Requests in the `http://jabber.org/protocol/pubsub` namespace (§§5–7): create, publish,
//! retract, items, subscribe, unsubscribe, options, and the entity's own lists.

use minidom::Element;
use roost_nodes::{Error, NewItem, NodeConfigPatch, OrderBy, OrderField, PagedList, Request};
use xmpp_parsers::data_forms::{DataForm, DataFormType};
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::pubsub::{Configure, PubSub, PublishOptions};
use xmpp_parsers::stanza_error::StanzaError;

use super::super::codec::{form_child, rsm_child, serialize_payload, IqKind};
use super::super::forms::{parse_node_config, parse_publish_options, parse_sub_options};
use super::{err, jid_attr, node_attr, subid_attr, verb, wrong_kind, Parsed};
use crate::errors::{bad_request, refusal, unsupported, Refusal};
use crate::xml::typed::{Order, NS_ORDER_BY};

#[cfg(test)]
mod plain_tests;

/// A `<pubsub/>` payload.
pub(super) fn parse(kind: IqKind, payload: &Element) -> Parsed {
    match plain_publish(kind, payload) {
        Some(publish) => Ok(publish),
        None => parse_typed(kind, payload),
    }
}

/// A publish of one item with one payload and nothing else, the shape nearly every publish
/// has: `<publish node='…'><item [id='…']>PAYLOAD</item></publish>`, no other attribute,
/// child or text (whitespace aside), read straight from the element. `None` for any other
/// shape, which [`parse_typed`] reads and judges.
///
/// Why not always the typed parse: it takes the `<pubsub/>` element by value, so the
/// request is copied twice before the parse replays the payload into an element of its
/// own, a third copy: 6–7 % of Roost's CPU under publish load (docs/benchmarks.md,
/// seventh session). Here the payload is serialized from the request as it came. For the
/// shapes taken here both give the same request (tested against each other).
fn plain_publish(kind: IqKind, pubsub: &Element) -> Option<Request> {
    let publish = only_child(pubsub, 0)?;
    let item = only_child(publish, 1)?;
    let body = only_child(item, usize::from(item.attr("id").is_some()))?;
    let node = publish.attr("node").filter(|n| !n.is_empty())?;
    let plain =
        kind == IqKind::Set && publish.is("publish", ns::PUBSUB) && item.is("item", ns::PUBSUB);
    plain.then(|| Request::Publish {
        node: node.to_owned(),
        item: Some(NewItem {
            id: item.attr("id").filter(|i| !i.is_empty()).map(str::to_owned),
            payload: Some(serialize_payload(body)),
        }),
        options: None,
    })
}

/// `e`'s one child element, when `e` has exactly `attrs` attributes (those its caller reads),
/// one child element, and no text but whitespace.
fn only_child(e: &Element, attrs: usize) -> Option<&Element> {
    let mut children = e.children();
    let child = children.next()?;
    let plain = children.next().is_none()
        && e.attrs().len() == attrs
        && e.texts().all(|t| t.trim().is_empty());
    plain.then_some(child)
}

/// [`parse`] through the typed structures: every shape of request.
fn parse_typed(kind: IqKind, payload: &Element) -> Parsed {
    let (first, rest) = verb(payload, ns::PUBSUB)?;
    let name = first.name();
    let expected = match name {
        "create" | "publish" | "retract" | "subscribe" | "unsubscribe" => Some(IqKind::Set),
        "items" | "default" | "subscriptions" | "affiliations" => Some(IqKind::Get),
        "options" => None,
        // Nothing else is a request in XEP-0060's pubsub namespace that Roost implements.
        other => return Err(unsupported(other)),
    };
    if expected.is_some_and(|k| k != kind) {
        return Err(wrong_kind(name, kind));
    }
    // Without a node, `<subscribe/>`, `<unsubscribe/>` and `<options/>` are about the root
    // collection (see `subscription_node`).
    if matches!(name, "publish" | "retract" | "items") {
        node_attr(&first)?;
    }
    match name {
        "subscribe" => return parse_subscribe(&first, &rest),
        "unsubscribe" | "options" => {
            if !rest.is_empty() {
                return Err(bad_request(format!("unexpected element after <{name}/>")));
            }
            let node = subscription_node(&first);
            let jid = jid_attr(&first)?;
            let subid = subid_attr(&first);
            return match (name, kind) {
                ("unsubscribe", _) => Ok(Request::Unsubscribe { node, jid, subid }),
                (_, IqKind::Get) => Ok(Request::GetOptions { node, jid, subid }),
                (_, IqKind::Set) => {
                    let form = form_child(&first)?
                        .ok_or_else(|| err(Error::InvalidOptions("no options form".to_owned())))?;
                    let options = parse_sub_options(&form).map_err(err)?;
                    Ok(Request::SetOptions {
                        node,
                        jid,
                        subid,
                        options,
                    })
                }
            };
        }
        _ => {}
    }

    // An RSM <set/> beside <items/> (§6.5.4) is read apart: the typed parser rejects it.
    let rsm = if name == "items" {
        rsm_child(payload)?
    } else {
        None
    };
    let mut bare = payload.clone();
    if rsm.is_some() {
        bare.remove_child("set", ns::RSM);
    }
    // XEP-0413's <order/>s beside <items/> likewise.
    let mut order = Vec::new();
    while let Some(o) = bare.remove_child("order", NS_ORDER_BY) {
        if name != "items" {
            return Err(bad_request(format!("<order/> does not apply to <{name}/>")));
        }
        order.push(parse_order(o)?);
    }
    let typed = PubSub::try_from(bare).map_err(|e| bad_request(e.to_string()))?;
    match typed {
        PubSub::Create { create, configure } => {
            let node = match create.node {
                None => None,
                Some(n) if n.0.is_empty() => return Err(bad_request("empty NodeID")),
                Some(n) => Some(n.0),
            };
            let config = match configure {
                None | Some(Configure { form: None }) => None,
                Some(Configure { form: Some(form) }) => Some(create_config(&form)?),
            };
            Ok(Request::Create { node, config })
        }
        PubSub::Publish {
            publish,
            publish_options,
        } => {
            let item = match publish.items.as_slice() {
                [] => None,
                [item] => {
                    // Count payloads on the raw element: the typed item keeps one silently.
                    let payloads = first
                        .get_child("item", ns::PUBSUB)
                        .map_or(0, |i| i.children().count());
                    if payloads > 1 {
                        return Err(err(Error::InvalidPayload));
                    }
                    Some(NewItem {
                        id: item
                            .id
                            .as_ref()
                            .map(|i| i.0.clone())
                            .filter(|i| !i.is_empty()),
                        payload: item.payload.as_ref().map(serialize_payload),
                    })
                }
                _ => return Err(bad_request("only one item may be published at a time")),
            };
            let options = match publish_options {
                None | Some(PublishOptions { form: None }) => None,
                Some(PublishOptions { form: Some(form) }) => {
                    Some(parse_publish_options(&form).map_err(err)?)
                }
            };
            Ok(Request::Publish {
                node: publish.node.0,
                item,
                options,
            })
        }
        PubSub::Retract(retract) => {
            let ids = retract
                .items
                .iter()
                .map(|i| {
                    i.id.as_ref()
                        .map(|id| id.0.clone())
                        .filter(|id| !id.is_empty())
                })
                .collect::<Option<Vec<_>>>()
                .filter(|ids| !ids.is_empty())
                .ok_or_else(|| err(Error::ItemIdRequired))?;
            Ok(Request::Retract {
                node: retract.node.0,
                ids,
                notify: retract.notify,
            })
        }
        PubSub::Items(items) => {
            let ids = items
                .items
                .iter()
                .map(|i| {
                    i.id.as_ref()
                        .map(|id| id.0.clone())
                        .filter(|id| !id.is_empty())
                })
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad_request("an <item/> to retrieve needs an id"))?;
            let max_items = items.max_items.map(u64::from);
            let subid = items.subid.map(|s| s.0).filter(|s| !s.is_empty());
            if !order.is_empty() {
                // As without an order: given ItemIDs are not paged, and with a <set/> the
                // smaller of the two limits is the page size.
                let (max_items, rsm) = match rsm {
                    Some(mut rsm) if ids.is_empty() => {
                        rsm.max = smaller(rsm.max, max_items);
                        (None, Some(rsm))
                    }
                    _ => (max_items, None),
                };
                return Ok(Request::ItemsOrdered {
                    node: items.node.0,
                    max_items,
                    ids,
                    subid,
                    order,
                    rsm,
                });
            }
            Ok(match rsm {
                // Asking for given ItemIDs is not a list to page through: the set is
                // ignored and the items are returned as §6.5.8 says.
                Some(mut rsm) if ids.is_empty() => {
                    // Both limits given: the smaller wins.
                    rsm.max = smaller(rsm.max, max_items);
                    Request::Page {
                        list: PagedList::Items {
                            node: items.node.0,
                            subid,
                        },
                        rsm,
                    }
                }
                _ => Request::Items {
                    node: items.node.0,
                    max_items,
                    ids,
                    subid,
                },
            })
        }
        PubSub::Default(d) => Ok(Request::DefaultOptions {
            node: d.node.map(|n| n.0).filter(|n| !n.is_empty()),
        }),
        PubSub::Subscriptions(s) => Ok(Request::Subscriptions {
            node: s.node.map(|n| n.0).filter(|n| !n.is_empty()),
        }),
        PubSub::Affiliations(a) => Ok(Request::Affiliations {
            node: a.node.map(|n| n.0).filter(|n| !n.is_empty()),
        }),
        // Handled above by hand; listed for exhaustiveness.
        PubSub::Subscribe { .. } | PubSub::Unsubscribe(_) | PubSub::Subscription(_) => {
            Err(bad_request("unexpected pubsub request"))
        }
    }
}

/// The smaller of two optional limits.
fn smaller(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One XEP-0413 `<order/>`; a field other than `creation` and `modification` is not
/// offered (see [`Refusal::OrderNotOffered`]).
fn parse_order(e: Element) -> Result<OrderBy, StanzaError> {
    let o = Order::try_from(e).map_err(|e| bad_request(format!("malformed <order/>: {e}")))?;
    let by = match o.by.as_str() {
        "creation" => OrderField::Creation,
        "modification" => OrderField::Modification,
        other => return Err(refusal(&Refusal::OrderNotOffered(other.to_owned()))),
    };
    Ok(OrderBy {
        by,
        desc: o.desc.unwrap_or(false),
    })
}

/// The node_config form of a create request; a cancelled form means "defaults".
fn create_config(form: &DataForm) -> Result<NodeConfigPatch, StanzaError> {
    if form.type_ == DataFormType::Cancel {
        return Ok(NodeConfigPatch::default());
    }
    parse_node_config(form).map_err(err)
}

/// The node of a `<subscribe/>`, `<unsubscribe/>` or `<options/>`: without one, the root
/// collection, the service itself (XEP-0248 §root, example 62), whose NodeID is empty.
fn subscription_node(e: &Element) -> String {
    e.attr("node").unwrap_or_default().to_owned()
}

/// `<subscribe/>`, optionally followed by `<options/>` with a form (§6.1.1, §6.3.7).
fn parse_subscribe(subscribe: &Element, rest: &[Element]) -> Parsed {
    let node = subscription_node(subscribe);
    let jid = jid_attr(subscribe)?;
    let options = match rest {
        [] => None,
        [o] if o.is("options", ns::PUBSUB) => match form_child(o)? {
            None => None,
            Some(form) => Some(parse_sub_options(&form).map_err(err)?),
        },
        _ => return Err(bad_request("unexpected element after <subscribe/>")),
    };
    Ok(Request::Subscribe { node, jid, options })
}
