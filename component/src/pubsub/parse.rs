//! IQ payloads → engine requests.
//!
//! Typed xmpp-parsers structures are used where they parse XEP-0060 correctly. Read by hand,
//! because xmpp-parsers 0.23 rejects valid XEP-0060 input for them:
//! - `<subscribe/>` + `<options/>` (example 67): `Options.jid` is required;
//! - `<unsubscribe/>` without subid (example 47): `Unsubscribe.subid` is required;
//! - `<options/>` get/set: a missing jid must be `jid-required` (example 59), not a generic
//!   parse failure;
//! - owner `<affiliations/>`: `owner::Affiliation` has private fields;
//! - the payload count of a published `<item/>`: the typed `Item` accepts two payloads
//!   silently, which must be `invalid-payload` (example 110).

// The public interface returns `StanzaError` by value (the lead's loop puts it straight into
// the IQ error); boxing it only inside this module would buy nothing on this cold path.
#![allow(clippy::result_large_err)]

use minidom::Element;
use roost_nodes::request::SubscriptionChange;
use roost_nodes::{
    Affiliation, Error, NewItem, NodeConfigPatch, PagedList, Request, RsmQuery, SubscriptionState,
};
use xmpp_parsers::data_forms::{DataForm, DataFormType};
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::owner::{Owner, Payload as OwnerPayload};
use xmpp_parsers::pubsub::pubsub::{Configure, PubSub, PublishOptions};
use xmpp_parsers::pubsub::Subscription;
use xmpp_parsers::stanza_error::StanzaError;

use super::errors::{bad_request, bad_request_with, stanza_error, unsupported};
use super::forms::{
    parse_node_config, parse_pending_node, parse_publish_options, parse_sub_options,
    parse_subscribe_authorization,
};
use super::{serialize_payload, IqKind, GET_PENDING_NODE, NS_COMMANDS, NS_SUBSCRIBE_AUTHORIZATION};

type Parsed = Result<Request, StanzaError>;

/// Translate the payload of an IQ addressed to the service (or a node of it) into an engine
/// request.
///
/// Returns `None` when the payload is not for the pubsub layer: the caller then answers
/// service-level disco/ping/version, or `service-unavailable`. Handles the namespaces
/// `http://jabber.org/protocol/pubsub` and `…#owner`, disco#info *with* a node
/// (→ [`Request::NodeMetadata`]) and disco#items (no node → [`Request::DiscoNodes`], a node
/// → [`Request::DiscoItems`]) and XEP-0313 queries on a node (→ [`Request::History`]). Requests Roost does not implement are
/// `feature-not-implemented` with `<unsupported feature='…'/>`.
///
/// `from` is the requester. JIDs named in the request are passed through as given: whether
/// the requester may act for them (`invalid-jid`, `forbidden`) is the engine's decision,
/// since owners and admins may act for others.
pub fn parse_request(kind: IqKind, payload: &Element, from: &Jid) -> Option<Parsed> {
    let _ = from;
    if payload.is("pubsub", ns::PUBSUB) {
        Some(parse_pubsub(kind, payload))
    } else if payload.is("pubsub", ns::PUBSUB_OWNER) {
        Some(parse_owner(kind, payload))
    } else if payload.is("query", ns::DISCO_INFO) {
        // Without a node it is about the service itself: the caller's business.
        payload.attr("node").filter(|n| !n.is_empty())?;
        Some(parse_disco_info(kind, payload))
    } else if payload.is("query", ns::DISCO_ITEMS) {
        Some(parse_disco_items(kind, payload))
    } else if payload.is("command", NS_COMMANDS) {
        Some(parse_command(kind, payload))
    } else if payload.is("query", ns::MAM) {
        Some(super::mam::parse_query(kind, payload))
    } else {
        None
    }
}

/// XEP-0050 commands: only get-pending (§8.7). Without a submitted form it is the first
/// step (list the nodes); with one, the per-node request.
fn parse_command(kind: IqKind, payload: &Element) -> Parsed {
    if payload.attr("node") != Some(GET_PENDING_NODE) {
        // XEP-0050 §4.4: an unknown command is item-not-found.
        return Err(err(Error::NodeNotFound));
    }
    if kind != IqKind::Set {
        return Err(bad_request("commands are executed with an iq set"));
    }
    match payload.attr("action") {
        None | Some("execute") | Some("next") | Some("complete") => {}
        // Nothing to cancel or go back to: the command keeps no session.
        Some(other) => return Err(bad_request(format!("action '{other}' is not offered"))),
    }
    match form_child(payload)? {
        None => Ok(Request::PendingNodes),
        Some(form) => {
            let node = parse_pending_node(&form).map_err(bad_request)?;
            Ok(Request::GetPending { node })
        }
    }
}

/// Translate a `<message/>` addressed to the service into an engine request.
///
/// Only one kind of message is a request: an owner's answer to a subscription
/// authorization request (§8.6), a submitted `pubsub#subscribe_authorization` form.
/// Returns `None` for every other message (ignored, as before), including a cancelled
/// form, which by §8.6 leaves the subscription pending. `Some(Err)` is a malformed
/// answer: the caller may bounce it as a message error.
///
/// `from` is the sender; whether it may decide (is an owner) is the engine's business.
pub fn parse_message(m: &Message, from: &Jid) -> Option<Parsed> {
    let _ = from;
    if m.type_ == MessageType::Error {
        return None;
    }
    let x = m.payloads.iter().find(|p| p.is("x", ns::DATA_FORMS))?;
    let is_ours = x.children().any(|f| {
        f.attr("var") == Some("FORM_TYPE")
            && f.get_child("value", ns::DATA_FORMS)
                .is_some_and(|v| v.text().trim() == NS_SUBSCRIBE_AUTHORIZATION)
    });
    if !is_ours || x.attr("type") == Some("cancel") {
        return None;
    }
    Some(parse_authorization(x))
}

fn parse_authorization(x: &Element) -> Parsed {
    let form = DataForm::try_from(x.clone())
        .map_err(|e| bad_request(format!("malformed data form: {e}")))?;
    let a = parse_subscribe_authorization(&form).map_err(bad_request)?;
    let jid = a.jid.parse::<Jid>().map_err(|_| err(Error::InvalidJid))?;
    Ok(Request::AuthorizeSubscription {
        node: a.node,
        jid,
        subid: a.subid,
        allow: a.allow,
    })
}

fn parse_disco_info(kind: IqKind, payload: &Element) -> Parsed {
    if kind != IqKind::Get {
        return Err(bad_request("disco#info is a get"));
    }
    let q = DiscoInfoQuery::try_from(payload.clone()).map_err(|e| bad_request(e.to_string()))?;
    match q.node {
        Some(node) if !node.is_empty() => Ok(Request::NodeMetadata { node }),
        _ => Err(bad_request("disco#info without node")),
    }
}

fn parse_disco_items(kind: IqKind, payload: &Element) -> Parsed {
    if kind != IqKind::Get {
        return Err(bad_request("disco#items is a get"));
    }
    let q = DiscoItemsQuery::try_from(payload.clone()).map_err(|e| bad_request(e.to_string()))?;
    let rsm = rsm_child(payload)?;
    Ok(match (q.node, rsm) {
        (Some(node), None) if !node.is_empty() => Request::DiscoItems { node },
        (Some(node), Some(rsm)) if !node.is_empty() => Request::Page {
            list: PagedList::ItemIds { node },
            rsm,
        },
        (_, None) => Request::DiscoNodes,
        (_, Some(rsm)) => Request::Page {
            list: PagedList::Nodes,
            rsm,
        },
    })
}

/// The XEP-0059 `<set/>` child of `e`, if any. Read by hand: xmpp-parsers' `SetQuery`
/// uses `usize`, and an empty `<before/>` (the last page, §2.5) must stay distinguishable
/// from no `<before/>`.
pub(crate) fn rsm_child(e: &Element) -> Result<Option<RsmQuery>, StanzaError> {
    let Some(set) = e.get_child("set", ns::RSM) else {
        return Ok(None);
    };
    let text = |name: &str| set.get_child(name, ns::RSM).map(|c| c.text());
    let number = |name: &str| -> Result<Option<u64>, StanzaError> {
        text(name)
            .map(|t| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| bad_request(format!("RSM <{name}/> is not a number")))
            })
            .transpose()
    };
    let uid = |name: &str| -> Result<Option<String>, StanzaError> {
        match text(name) {
            Some(t) if t.is_empty() && name == "after" => {
                Err(bad_request("RSM <after/> needs a UID"))
            }
            t => Ok(t),
        }
    };
    Ok(Some(RsmQuery {
        max: number("max")?,
        after: uid("after")?,
        before: uid("before")?,
        index: number("index")?,
    }))
}

/// The engine error as a stanza error, for parse-level failures that have one.
fn err(e: Error) -> StanzaError {
    stanza_error(&e)
}

/// The request's single verb element and what may follow it.
fn verb(payload: &Element, namespace: &str) -> Result<(Element, Vec<Element>), StanzaError> {
    let mut children = payload.children();
    let first = children
        .next()
        .ok_or_else(|| bad_request("empty pubsub element"))?;
    if !first.has_ns(namespace) {
        return Err(bad_request("pubsub child in a foreign namespace"));
    }
    Ok((first.clone(), children.cloned().collect()))
}

/// The `node` attribute, required (examples 121, 143): `nodeid-required` when missing.
fn node_attr(e: &Element) -> Result<String, StanzaError> {
    match e.attr("node") {
        Some(n) if !n.is_empty() => Ok(n.to_owned()),
        _ => Err(err(Error::NodeIdRequired)),
    }
}

/// The `jid` attribute, required (example 59): `jid-required` when missing, `invalid-jid`
/// when it does not parse.
fn jid_attr(e: &Element) -> Result<Jid, StanzaError> {
    match e.attr("jid") {
        None | Some("") => Err(bad_request_with(
            "jid-required",
            "a jid attribute is required",
        )),
        Some(j) => j.parse::<Jid>().map_err(|_| err(Error::InvalidJid)),
    }
}

fn subid_attr(e: &Element) -> Option<String> {
    e.attr("subid").filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The data form child of `e`, if any.
pub(crate) fn form_child(e: &Element) -> Result<Option<DataForm>, StanzaError> {
    match e.get_child("x", ns::DATA_FORMS) {
        None => Ok(None),
        Some(x) => DataForm::try_from(x.clone())
            .map(Some)
            .map_err(|e| bad_request(format!("malformed data form: {e}"))),
    }
}

fn wrong_kind(verb: &str, kind: IqKind) -> StanzaError {
    let k = match kind {
        IqKind::Get => "get",
        IqKind::Set => "set",
    };
    bad_request(format!("<{verb}/> is not a {k} request"))
}

fn parse_pubsub(kind: IqKind, payload: &Element) -> Parsed {
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
    if matches!(
        name,
        "publish" | "retract" | "items" | "subscribe" | "unsubscribe" | "options"
    ) {
        node_attr(&first)?;
    }
    match name {
        "subscribe" => return parse_subscribe(&first, &rest),
        "unsubscribe" | "options" => {
            if !rest.is_empty() {
                return Err(bad_request(format!("unexpected element after <{name}/>")));
            }
            let node = node_attr(&first)?;
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
            Ok(match rsm {
                // Asking for given ItemIDs is not a list to page through: the set is
                // ignored and the items are returned as §6.5.8 says.
                Some(mut rsm) if ids.is_empty() => {
                    // Both limits given: the smaller wins.
                    rsm.max = match (rsm.max, max_items) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
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

/// The node_config form of a create request; a cancelled form means "defaults".
fn create_config(form: &DataForm) -> Result<NodeConfigPatch, StanzaError> {
    if form.type_ == DataFormType::Cancel {
        return Ok(NodeConfigPatch::default());
    }
    parse_node_config(form).map_err(err)
}

/// `<subscribe/>`, optionally followed by `<options/>` with a form (§6.1.1, §6.3.7).
fn parse_subscribe(subscribe: &Element, rest: &[Element]) -> Parsed {
    let node = node_attr(subscribe)?;
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

fn parse_owner(kind: IqKind, payload: &Element) -> Parsed {
    let (first, rest) = verb(payload, ns::PUBSUB_OWNER)?;
    let name = first.name();
    let get_ok = matches!(
        name,
        "configure" | "default" | "subscriptions" | "affiliations"
    );
    let set_ok = matches!(
        name,
        "configure" | "delete" | "purge" | "subscriptions" | "affiliations"
    );
    if !get_ok && !set_ok {
        return Err(unsupported(name));
    }
    if (kind == IqKind::Get && !get_ok) || (kind == IqKind::Set && !set_ok) {
        return Err(wrong_kind(name, kind));
    }
    if name != "default" {
        node_attr(&first)?;
    }
    if !rest.is_empty() {
        return Err(bad_request(format!("unexpected element after <{name}/>")));
    }
    if name == "affiliations" {
        return parse_owner_affiliations(kind, &first);
    }

    let owner = Owner::try_from(payload.clone()).map_err(|e| bad_request(e.to_string()))?;
    match (owner.payload, kind) {
        (OwnerPayload::Configure { node, .. }, IqKind::Get) => Ok(Request::GetConfig {
            node: node.map(|n| n.0).unwrap_or_default(),
        }),
        (OwnerPayload::Configure { node, form }, IqKind::Set) => {
            let node = node.map(|n| n.0).unwrap_or_default();
            let form = form.ok_or_else(|| bad_request("<configure/> set needs a data form"))?;
            // Example 147: a cancelled configuration changes nothing. There is no request
            // for it, so it becomes an empty patch: the engine still checks the requester
            // owns the node, changes nothing, and answers an empty result (example 148).
            let config = if form.type_ == DataFormType::Cancel {
                NodeConfigPatch::default()
            } else {
                parse_node_config(&form).map_err(err)?
            };
            Ok(Request::SetConfig { node, config })
        }
        (OwnerPayload::Default { .. }, _) => Ok(Request::DefaultConfig {
            node_type: roost_nodes::NodeType::Leaf,
        }),
        (OwnerPayload::Delete { node, redirect_uri }, _) => Ok(Request::Delete {
            node: node.0,
            redirect: redirect_uri.filter(|u| !u.is_empty()),
        }),
        (OwnerPayload::Purge { node }, _) => Ok(Request::Purge { node: node.0 }),
        (OwnerPayload::Subscriptions { node, .. }, IqKind::Get) => {
            Ok(Request::GetSubscriptions { node: node.0 })
        }
        (
            OwnerPayload::Subscriptions {
                node,
                subscriptions,
            },
            IqKind::Set,
        ) => Ok(Request::SetSubscriptions {
            node: node.0,
            changes: subscriptions
                .into_iter()
                .map(|s| SubscriptionChange {
                    jid: s.jid,
                    subid: s.subid.filter(|s| !s.is_empty()),
                    state: match s.subscription {
                        Subscription::None => SubscriptionState::None,
                        Subscription::Pending => SubscriptionState::Pending,
                        Subscription::Subscribed => SubscriptionState::Subscribed,
                        Subscription::Unconfigured => SubscriptionState::Unconfigured,
                    },
                })
                .collect(),
        }),
        (OwnerPayload::Affiliations { .. }, _) => Err(bad_request("unexpected owner request")),
    }
}

/// Owner `<affiliations/>` (§8.9), read by hand: `owner::Affiliation`'s fields are private.
/// Affiliations belong to bare JIDs, so a full JID is taken as its bare JID.
fn parse_owner_affiliations(kind: IqKind, e: &Element) -> Parsed {
    let node = node_attr(e)?;
    if kind == IqKind::Get {
        return Ok(Request::GetAffiliations { node });
    }
    let mut changes = Vec::new();
    for a in e.children() {
        if !a.is("affiliation", ns::PUBSUB_OWNER) {
            return Err(bad_request("unexpected element in <affiliations/>"));
        }
        let jid = jid_attr(a)?;
        let aff: Affiliation = a
            .attr("affiliation")
            .ok_or_else(|| bad_request("an <affiliation/> needs an affiliation attribute"))?
            .parse()
            .map_err(|_| bad_request("unknown affiliation"))?;
        changes.push((jid.to_bare(), aff));
    }
    Ok(Request::SetAffiliations { node, changes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use roost_nodes::{AccessModel, MaxItems, PagedList, RsmQuery, Show};
    use xmpp_parsers::stanza_error::DefinedCondition as C;

    /// The payload of an XEP-0060 example IQ, parsed as the component receives it.
    fn iq_payload(iq: &str) -> (IqKind, Element) {
        // The examples are in jabber:client; declare it so minidom accepts them.
        let iq = iq.replacen("<iq ", "<iq xmlns='jabber:component:accept' ", 1);
        let e: Element = iq.parse().expect("example parses");
        let kind = match e.attr("type") {
            Some("get") => IqKind::Get,
            Some("set") => IqKind::Set,
            t => panic!("not a request: {t:?}"),
        };
        (kind, e.children().next().expect("payload").clone())
    }

    fn from() -> Jid {
        "hamlet@denmark.lit/elsinore".parse().unwrap()
    }

    fn req(iq: &str) -> Request {
        let (kind, p) = iq_payload(iq);
        parse_request(kind, &p, &from())
            .expect("for the pubsub layer")
            .expect("valid request")
    }

    fn error(iq: &str) -> StanzaError {
        let (kind, p) = iq_payload(iq);
        parse_request(kind, &p, &from())
            .expect("for the pubsub layer")
            .expect_err("rejected")
    }

    fn pubsub_cond(e: &StanzaError) -> Option<String> {
        e.other.as_ref().map(|o| o.name().to_owned())
    }

    fn jid(s: &str) -> Jid {
        s.parse().unwrap()
    }

    #[test]
    fn example_9_disco_nodes() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='nodes1'>
  <query xmlns='http://jabber.org/protocol/disco#items'/>
</iq>");
        assert_eq!(r, Request::DiscoNodes);
    }

    #[test]
    fn example_11_and_15_disco_node() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='info2'>
  <query xmlns='http://jabber.org/protocol/disco#info' node='blogs'/>
</iq>");
        assert_eq!(
            r,
            Request::NodeMetadata {
                node: "blogs".into()
            }
        );
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items1'>
  <query xmlns='http://jabber.org/protocol/disco#items' node='princely_musings'/>
</iq>");
        assert_eq!(
            r,
            Request::DiscoItems {
                node: "princely_musings".into()
            }
        );
    }

    #[test]
    fn not_for_pubsub() {
        let (k, p) = iq_payload(
            "<iq type='get' id='info1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        );
        assert!(parse_request(k, &p, &from()).is_none());
        let (k, p) = iq_payload("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>");
        assert!(parse_request(k, &p, &from()).is_none());
    }

    #[test]
    fn examples_16_20_22_26_entity_lists() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='subscriptions1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <subscriptions/>
  </pubsub>
</iq>");
        assert_eq!(r, Request::Subscriptions { node: None });
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='subscriptions2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <subscriptions node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Subscriptions {
                node: Some("princely_musings".into())
            }
        );
        let r = req(
            "<iq type='get' from='francisco@denmark.lit' to='pubsub.shakespeare.lit' id='affil1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <affiliations/>
  </pubsub>
</iq>",
        );
        assert_eq!(r, Request::Affiliations { node: None });
        let r = req(
            "<iq type='get' from='francisco@denmark.lit' to='pubsub.shakespeare.lit' id='affil2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <affiliations node='princely_musings'/>
  </pubsub>
</iq>",
        );
        assert_eq!(
            r,
            Request::Affiliations {
                node: Some("princely_musings".into())
            }
        );
    }

    #[test]
    fn example_28_subscribe() {
        let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <subscribe
        node='princely_musings'
        jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Subscribe {
                node: "princely_musings".into(),
                jid: jid("francisco@denmark.lit"),
                options: None
            }
        );
    }

    #[test]
    fn example_67_subscribe_and_configure() {
        let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='sub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <subscribe node='princely_musings' jid='francisco@denmark.lit'/>
    <options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#subscribe_options</value>
        </field>
        <field var='pubsub#deliver'><value>1</value></field>
        <field var='pubsub#digest'><value>0</value></field>
        <field var='pubsub#include_body'><value>false</value></field>
        <field var='pubsub#show-values'>
          <value>chat</value>
          <value>online</value>
          <value>away</value>
        </field>
      </x>
    </options>
  </pubsub>
</iq>");
        let Request::Subscribe {
            node,
            jid: j,
            options: Some(o),
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(node, "princely_musings");
        assert_eq!(j, jid("francisco@denmark.lit"));
        assert_eq!(o.deliver, Some(true));
        assert_eq!(
            o.show_values,
            Some(vec![Show::Chat, Show::Online, Show::Away])
        );
    }

    #[test]
    fn example_47_unsubscribe_and_subid() {
        let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='unsub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
     <unsubscribe
         node='princely_musings'
         jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Unsubscribe {
                node: "princely_musings".into(),
                jid: jid("francisco@denmark.lit"),
                subid: None
            }
        );
        let r = req("<iq type='set' id='u'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <unsubscribe node='n' jid='francisco@denmark.lit' subid='ba49252aaa4f5d320c24d3766f0bdcade78c78d3'/></pubsub></iq>");
        let Request::Unsubscribe { subid, .. } = r else {
            panic!()
        };
        assert_eq!(
            subid.as_deref(),
            Some("ba49252aaa4f5d320c24d3766f0bdcade78c78d3")
        );
    }

    #[test]
    fn examples_55_64_options() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <options node='princely_musings' jid='francisco@denmark.lit'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::GetOptions {
                node: "princely_musings".into(),
                jid: jid("francisco@denmark.lit"),
                subid: None
            }
        );
        let r = req("<iq type='set' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <options node='princely_musings' jid='francisco@denmark.lit'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#subscribe_options</value>
        </field>
        <field var='pubsub#deliver'><value>1</value></field>
        <field var='pubsub#digest'><value>0</value></field>
        <field var='pubsub#include_body'><value>false</value></field>
        <field var='pubsub#show-values'>
          <value>chat</value>
          <value>online</value>
          <value>away</value>
        </field>
      </x>
    </options>
  </pubsub>
</iq>");
        let Request::SetOptions { options, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(options.include_body, Some(false));
    }

    #[test]
    fn example_59_options_without_jid() {
        let e = error("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='options1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <options node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(e.defined_condition, C::BadRequest);
        assert_eq!(pubsub_cond(&e).as_deref(), Some("jid-required"));
    }

    #[test]
    fn example_66_invalid_options() {
        let e = error(
            "<iq type='set' id='o'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <options node='n' jid='francisco@denmark.lit'><x xmlns='jabber:x:data' type='submit'>\
            <field var='pubsub#deliver'><value>perhaps</value></field></x></options></pubsub></iq>",
        );
        assert_eq!(e.defined_condition, C::BadRequest);
        assert_eq!(pubsub_cond(&e).as_deref(), Some("invalid-options"));
    }

    #[test]
    fn examples_69_70_default_options() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <default node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::DefaultOptions {
                node: Some("princely_musings".into())
            }
        );
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='def2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <default/>
  </pubsub>
</iq>");
        assert_eq!(r, Request::DefaultOptions { node: None });
    }

    #[test]
    fn examples_74_78_80_items() {
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Items {
                node: "princely_musings".into(),
                max_items: None,
                ids: vec![],
                subid: None
            }
        );
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items3'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='princely_musings'>
      <item id='368866411b877c30064a5f62b917cffe'/>
      <item id='4e30f35051b7b8b42abe083742187228'/>
    </items>
  </pubsub>
</iq>");
        let Request::Items { ids, .. } = r else {
            panic!()
        };
        assert_eq!(
            ids,
            [
                "368866411b877c30064a5f62b917cffe",
                "4e30f35051b7b8b42abe083742187228"
            ]
        );
        let r = req("<iq type='get' from='francisco@denmark.lit/barracks' to='pubsub.shakespeare.lit' id='items2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <items node='princely_musings' max_items='2'/>
  </pubsub>
</iq>");
        let Request::Items { max_items, .. } = r else {
            panic!()
        };
        assert_eq!(max_items, Some(2));
        let e = error(
            "<iq type='get' id='i'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <items node='n' max_items='x'/></pubsub></iq>",
        );
        assert_eq!(e.defined_condition, C::BadRequest);
    }

    #[test]
    fn xep0059_paged_items_and_disco() {
        let r = req(
            "<iq type='get' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <items node='princely_musings' max_items='5'/>\
            <set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>x</after></set>\
            </pubsub></iq>",
        );
        assert_eq!(
            r,
            Request::Page {
                list: PagedList::Items {
                    node: "princely_musings".into(),
                    subid: None
                },
                rsm: RsmQuery {
                    max: Some(5),
                    after: Some("x".into()),
                    before: None,
                    index: None
                }
            }
        );
        // An empty <before/> is the last page, not "no before".
        let r = req("<iq type='get' id='p2'><query xmlns='http://jabber.org/protocol/disco#items' node='n'>\
            <set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set></query></iq>");
        assert_eq!(
            r,
            Request::Page {
                list: PagedList::ItemIds { node: "n".into() },
                rsm: RsmQuery {
                    max: Some(2),
                    before: Some(String::new()),
                    ..RsmQuery::default()
                }
            }
        );
        let r = req(
            "<iq type='get' id='p3'><query xmlns='http://jabber.org/protocol/disco#items'>\
            <set xmlns='http://jabber.org/protocol/rsm'><index>4</index></set></query></iq>",
        );
        assert_eq!(
            r,
            Request::Page {
                list: PagedList::Nodes,
                rsm: RsmQuery {
                    index: Some(4),
                    ..RsmQuery::default()
                }
            }
        );
        // Given ItemIDs are not paged.
        let r = req(
            "<iq type='get' id='p4'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <items node='n'><item id='a'/></items>\
            <set xmlns='http://jabber.org/protocol/rsm'><max>1</max></set></pubsub></iq>",
        );
        assert!(matches!(r, Request::Items { .. }));
        for bad in [
            "<max>-1</max>",
            "<max>many</max>",
            "<index>x</index>",
            "<after/>",
        ] {
            let e = error(&format!(
                "<iq type='get' id='p5'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                <items node='n'/><set xmlns='http://jabber.org/protocol/rsm'>{bad}</set>\
                </pubsub></iq>"
            ));
            assert_eq!(e.defined_condition, C::BadRequest, "{bad}");
        }
    }

    fn message(xml: &str) -> Message {
        let e: Element = xml
            .replace("<message", "<message xmlns='jabber:component:accept'")
            .parse()
            .unwrap();
        Message::try_from(e).unwrap()
    }

    #[test]
    fn s8_6_examples_190_192_194_authorization_answers() {
        let form = |type_: &str, allow: &str| {
            format!(
                "<message from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='approve1'>\
                <x xmlns='jabber:x:data' type='{type_}'>\
                <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>\
                <field var='pubsub#subid'><value>123-abc</value></field>\
                <field var='pubsub#node'><value>princely_musings</value></field>\
                <field var='pubsub#subscriber_jid'><value>horatio@denmark.lit</value></field>\
                {allow}</x></message>"
            )
        };
        let allow = |v: &str| format!("<field var='pubsub#allow'><value>{v}</value></field>");
        let r = parse_message(&message(&form("submit", &allow("true"))), &from())
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            Request::AuthorizeSubscription {
                node: "princely_musings".into(),
                jid: jid("horatio@denmark.lit"),
                subid: Some("123-abc".into()),
                allow: true
            }
        );
        let r = parse_message(&message(&form("submit", &allow("0"))), &from())
            .unwrap()
            .unwrap();
        assert!(matches!(
            r,
            Request::AuthorizeSubscription { allow: false, .. }
        ));
        // Example 194: a cancelled form leaves the request pending: nothing to do.
        let cancel = "<message from='hamlet@denmark.lit/elsinore' id='approve1'>\
            <x xmlns='jabber:x:data' type='cancel'>\
            <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#subscribe_authorization</value></field>\
            </x></message>";
        assert!(parse_message(&message(cancel), &from()).is_none());
        // Malformed answers are errors, not panics; other messages are not requests.
        assert!(parse_message(&message(&form("submit", "")), &from())
            .unwrap()
            .is_err());
        assert!(
            parse_message(&message(&form("submit", &allow("maybe"))), &from())
                .unwrap()
                .is_err()
        );
        assert!(parse_message(&message("<message><body>hi</body></message>"), &from()).is_none());
        let other_form = "<message><x xmlns='jabber:x:data' type='submit'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:other</value></field></x></message>";
        assert!(parse_message(&message(other_form), &from()).is_none());
    }

    #[test]
    fn s8_7_get_pending_command() {
        let r = req(
            "<iq type='set' id='pending1'><command xmlns='http://jabber.org/protocol/commands' \
            node='http://jabber.org/protocol/pubsub#get-pending' action='execute'/></iq>",
        );
        assert_eq!(r, Request::PendingNodes);
        let r = req("<iq type='set' id='pending2'><command xmlns='http://jabber.org/protocol/commands' \
            sessionid='pubsub-get-pending' node='http://jabber.org/protocol/pubsub#get-pending' action='execute'>\
            <x xmlns='jabber:x:data' type='submit'><field var='pubsub#node'><value>princely_musings</value></field></x>\
            </command></iq>");
        assert_eq!(
            r,
            Request::GetPending {
                node: "princely_musings".into()
            }
        );
        let e = error("<iq type='set' id='c'><command xmlns='http://jabber.org/protocol/commands' node='urn:nope'/></iq>");
        assert_eq!(e.defined_condition, C::ItemNotFound);
        let e = error(
            "<iq type='get' id='c'><command xmlns='http://jabber.org/protocol/commands' \
            node='http://jabber.org/protocol/pubsub#get-pending'/></iq>",
        );
        assert_eq!(e.defined_condition, C::BadRequest);
        let e = error("<iq type='set' id='c'><command xmlns='http://jabber.org/protocol/commands' \
            node='http://jabber.org/protocol/pubsub#get-pending'><x xmlns='jabber:x:data' type='submit'/></command></iq>");
        assert_eq!(e.defined_condition, C::BadRequest);
    }

    #[test]
    fn examples_96_97_publish() {
        let r = req("<iq type='set' from='hamlet@denmark.lit/blogbot' to='pubsub.shakespeare.lit' id='publish1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='princely_musings'>
      <item id='bnd81g37d61f49fgn581'>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title>Soliloquy</title>
          <summary>
To be, or not to be: that is the question
          </summary>
          <id>tag:denmark.lit,2003:entry-32397</id>
        </entry>
      </item>
    </publish>
  </pubsub>
</iq>");
        let Request::Publish {
            node,
            item: Some(item),
            options: None,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(node, "princely_musings");
        assert_eq!(item.id.as_deref(), Some("bnd81g37d61f49fgn581"));
        let payload: Element = item.payload.unwrap().parse().unwrap();
        assert!(payload.is("entry", "http://www.w3.org/2005/Atom"));
        assert_eq!(
            payload
                .get_child("title", "http://www.w3.org/2005/Atom")
                .unwrap()
                .text(),
            "Soliloquy"
        );

        let r = req("<iq type='set' id='publish2'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <publish node='princely_musings'><item><entry xmlns='http://www.w3.org/2005/Atom'/></item></publish></pubsub></iq>");
        let Request::Publish {
            item: Some(item), ..
        } = r
        else {
            panic!()
        };
        assert_eq!(item.id, None);
        // No item at all (notification-only / transient) and an empty item.
        let r = req("<iq type='set' id='p3'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub></iq>");
        assert_eq!(
            r,
            Request::Publish {
                node: "n".into(),
                item: None,
                options: None
            }
        );
        let r = req("<iq type='set' id='p4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='a'/></publish></pubsub></iq>");
        let Request::Publish {
            item: Some(item), ..
        } = r
        else {
            panic!()
        };
        assert_eq!(item.payload, None);
    }

    #[test]
    fn example_110_two_payloads() {
        let e = error("<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <publish node='n'><item id='a'><one xmlns='urn:a'/><two xmlns='urn:a'/></item></publish></pubsub></iq>");
        assert_eq!(e.defined_condition, C::BadRequest);
        assert_eq!(pubsub_cond(&e).as_deref(), Some("invalid-payload"));
        let e = error(
            "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <publish node='n'><item id='a'/><item id='b'/></publish></pubsub></iq>",
        );
        assert_eq!(e.defined_condition, C::BadRequest);
    }

    #[test]
    fn example_114_publish_options() {
        let r = req("<iq type='set' from='hamlet@denmark.lit/blogbot' to='pubsub.shakespeare.lit' id='pub1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='princely_musings'>
      <item>
        <entry xmlns='http://www.w3.org/2005/Atom'>
          <title>Soliloquy</title>
        </entry>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#access_model'>
          <value>presence</value>
        </field>
      </x>
    </publish-options>
  </pubsub>
</iq>");
        let Request::Publish {
            options: Some(o), ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(o.access_model, Some(AccessModel::Presence));
    }

    #[test]
    fn examples_115_121_122_retract() {
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='retract1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <retract node='princely_musings'>
      <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
    </retract>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Retract {
                node: "princely_musings".into(),
                ids: vec!["ae890ac52d0df67ed7cfdf51b644e901".into()],
                notify: false
            }
        );
        for n in ["true", "1"] {
            let r = req(&format!(
                "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
                <retract node='n' notify='{n}'><item id='a'/></retract></pubsub></iq>"
            ));
            let Request::Retract { notify, .. } = r else {
                panic!()
            };
            assert!(notify);
        }
        // Example 121: no node.
        let e = error("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='retract1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <retract>
      <item id='ae890ac52d0df67ed7cfdf51b644e901'/>
    </retract>
  </pubsub>
</iq>");
        assert_eq!(pubsub_cond(&e).as_deref(), Some("nodeid-required"));
        // Example 122: no item id.
        let e = error(
            "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <retract node='princely_musings'><item/></retract></pubsub></iq>",
        );
        assert_eq!(pubsub_cond(&e).as_deref(), Some("item-required"));
        let e = error(
            "<iq type='set' id='r'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <retract node='princely_musings'/></pubsub></iq>",
        );
        assert_eq!(pubsub_cond(&e).as_deref(), Some("item-required"));
    }

    #[test]
    fn examples_125_131_137_create() {
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <create node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Create {
                node: Some("princely_musings".into()),
                config: None
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create2'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <create/>
    </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Create {
                node: None,
                config: None
            }
        );
        let r = req(
            "<iq type='set' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <create node='n'/><configure/></pubsub></iq>",
        );
        assert_eq!(
            r,
            Request::Create {
                node: Some("n".into()),
                config: None
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='create2'>
    <pubsub xmlns='http://jabber.org/protocol/pubsub'>
      <create node='princely_musings'/>
      <configure>
        <x xmlns='jabber:x:data' type='submit'>
          <field var='FORM_TYPE' type='hidden'>
            <value>http://jabber.org/protocol/pubsub#node_config</value>
          </field>
          <field var='pubsub#access_model'><value>whitelist</value></field>
        </x>
      </configure>
    </pubsub>
</iq>");
        let Request::Create {
            config: Some(c), ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(c.access_model, Some(AccessModel::Whitelist));
        let e = error("<iq type='set' id='c'><pubsub xmlns='http://jabber.org/protocol/pubsub'>\
            <create node='n'/><configure><x xmlns='jabber:x:data' type='submit'>\
            <field var='pubsub#max_items'><value>lots</value></field></x></configure></pubsub></iq>");
        assert_eq!(e.defined_condition, C::NotAcceptable);
    }

    #[test]
    fn examples_139_143_146_147_owner_configure() {
        let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::GetConfig {
                node: "princely_musings".into()
            }
        );
        let e = error("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure/>
  </pubsub>
</iq>");
        assert_eq!(pubsub_cond(&e).as_deref(), Some("nodeid-required"));
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure node='princely_musings'>
      <x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#node_config</value>
        </field>
        <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
        <field var='pubsub#deliver_notifications'><value>1</value></field>
        <field var='pubsub#deliver_payloads'><value>1</value></field>
        <field var='pubsub#persist_items'><value>1</value></field>
        <field var='pubsub#max_items'><value>10</value></field>
        <field var='pubsub#item_expire'><value>604800</value></field>
        <field var='pubsub#access_model'><value>roster</value></field>
        <field var='pubsub#roster_groups_allowed'>
          <value>friends</value>
          <value>servants</value>
          <value>courtiers</value>
        </field>
        <field var='pubsub#publish_model'><value>publishers</value></field>
        <field var='pubsub#purge_offline'><value>0</value></field>
        <field var='pubsub#send_last_published_item'><value>never</value></field>
        <field var='pubsub#presence_based_delivery'><value>false</value></field>
        <field var='pubsub#notification_type'><value>headline</value></field>
        <field var='pubsub#notify_config'><value>0</value></field>
        <field var='pubsub#notify_delete'><value>0</value></field>
        <field var='pubsub#notify_retract'><value>0</value></field>
        <field var='pubsub#notify_sub'><value>0</value></field>
        <field var='pubsub#max_payload_size'><value>1028</value></field>
        <field var='pubsub#type'><value>http://www.w3.org/2005/Atom</value></field>
        <field var='pubsub#body_xslt'>
          <value>http://jabxslt.jabberstudio.org/atom_body.xslt</value>
        </field>
      </x>
    </configure>
  </pubsub>
</iq>");
        let Request::SetConfig { node, config } = r else {
            panic!("{r:?}")
        };
        assert_eq!(node, "princely_musings");
        assert_eq!(config.access_model, Some(AccessModel::Roster));
        assert_eq!(config.max_items, Some(MaxItems::Count(10)));
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='config2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <configure node='princely_musings'>
      <x xmlns='jabber:x:data' type='cancel'/>
    </configure>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::SetConfig {
                node: "princely_musings".into(),
                config: NodeConfigPatch::default()
            }
        );
    }

    #[test]
    fn examples_152_157_158_163_owner() {
        let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='def1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <default/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::DefaultConfig {
                node_type: roost_nodes::NodeType::Leaf
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='delete1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <delete node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Delete {
                node: "princely_musings".into(),
                redirect: None
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='delete1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <delete node='princely_musings'>
      <redirect uri='xmpp:hamlet@denmark.lit?;node=blog'/>
    </delete>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Delete {
                node: "princely_musings".into(),
                redirect: Some("xmpp:hamlet@denmark.lit?;node=blog".into())
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='purge1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <purge node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::Purge {
                node: "princely_musings".into()
            }
        );
        let e = error("<iq type='get' id='x'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><purge node='n'/></pubsub></iq>");
        assert_eq!(e.defined_condition, C::BadRequest);
    }

    #[test]
    fn examples_184_189_owner_subscriptions() {
        let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='subman1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <subscriptions node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::GetSubscriptions {
                node: "princely_musings".into()
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='subman2'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <subscriptions node='princely_musings'>
      <subscription jid='bard@shakespeare.lit' subscription='subscribed'/>
    </subscriptions>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::SetSubscriptions {
                node: "princely_musings".into(),
                changes: vec![SubscriptionChange {
                    jid: jid("bard@shakespeare.lit"),
                    subid: None,
                    state: SubscriptionState::Subscribed
                }]
            }
        );
    }

    #[test]
    fn examples_197_202_208_owner_affiliations() {
        let r = req("<iq type='get' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent1'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='princely_musings'/>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::GetAffiliations {
                node: "princely_musings".into()
            }
        );
        let r = req("<iq type='set' from='hamlet@denmark.lit/elsinore' to='pubsub.shakespeare.lit' id='ent3'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
    <affiliations node='princely_musings'>
      <affiliation jid='polonius@denmark.lit' affiliation='none'/>
      <affiliation jid='bard@shakespeare.lit' affiliation='publisher'/>
    </affiliations>
  </pubsub>
</iq>");
        assert_eq!(
            r,
            Request::SetAffiliations {
                node: "princely_musings".into(),
                changes: vec![
                    ("polonius@denmark.lit".parse().unwrap(), Affiliation::None),
                    (
                        "bard@shakespeare.lit".parse().unwrap(),
                        Affiliation::Publisher
                    ),
                ]
            }
        );
        let e = error("<iq type='set' id='a'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>\
            <affiliations node='n'><affiliation jid='a@b' affiliation='king'/></affiliations></pubsub></iq>");
        assert_eq!(e.defined_condition, C::BadRequest);
    }

    #[test]
    fn malformed_never_panics() {
        for (kind, xml) in [
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'/>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node=''/></pubsub>"),
            ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='@@'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='a@b'/><bogus/></pubsub>"),
            ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='a'/><create node='b'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><frobnicate/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><x xmlns='urn:other'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='maybe'><item id='a'/></retract></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'><x xmlns='jabber:x:data'/></options></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><delete/></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'><subscription jid='a@b' subscription='maybe'/></subscriptions></pubsub>"),
            ("set", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'><affiliation affiliation='owner'/></affiliations></pubsub>"),
            ("get", "<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><wat/></pubsub>"),
            ("set", "<query xmlns='http://jabber.org/protocol/disco#items'/>"),
        ] {
            let kind = if kind == "get" { IqKind::Get } else { IqKind::Set };
            let p: Element = xml.parse().unwrap();
            match parse_request(kind, &p, &from()) {
                Some(Err(_)) => {}
                other => panic!("{xml}: {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_verbs_are_unsupported() {
        let p: Element =
            "<pubsub xmlns='http://jabber.org/protocol/pubsub'><frobnicate node='n'/></pubsub>"
                .parse()
                .unwrap();
        let e = parse_request(IqKind::Set, &p, &from())
            .unwrap()
            .unwrap_err();
        assert_eq!(e.defined_condition, C::FeatureNotImplemented);
        assert_eq!(pubsub_cond(&e).as_deref(), Some("unsupported"));
    }
}
