//! IQ payloads → engine requests: the dispatch by namespace, disco, the XEP-0050 command and
//! the §8.6 answers in messages here; the entity's requests in `entity`, the owner's in
//! `owner`.
//!
//! Typed structures are used where they parse XEP-0060 correctly: xmpp-parsers' where it
//! has them, Roost's own ([`crate::xml`]) where it does not. Read by hand, because
//! xmpp-parsers 0.23 rejects valid XEP-0060 input for them:
//! - `<subscribe/>` + `<options/>` (example 67): `Options.jid` is required;
//! - `<unsubscribe/>` without subid (example 47): `Unsubscribe.subid` is required;
//! - `<options/>` get/set: a missing jid must be `jid-required` (example 59), not a generic
//!   parse failure;
//! - the payload count of a published `<item/>`: the typed `Item` accepts two payloads
//!   silently, which must be `invalid-payload` (example 110).

// The public interface returns `StanzaError` by value (the lead's loop puts it straight into
// the IQ error); boxing it only inside this module would buy nothing on this cold path.
#![allow(clippy::result_large_err)]

mod entity;
mod owner;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_tests;

use minidom::Element;
use roost_nodes::{Error, PagedList, Request};
use xmpp_parsers::data_forms::DataForm;
use xmpp_parsers::disco::{DiscoInfoQuery, DiscoItemsQuery};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::StanzaError;

use super::codec::{rsm_child, IqKind, GET_PENDING_NODE, NS_SUBSCRIBE_AUTHORIZATION};
use super::forms::{parse_pending_node, parse_subscribe_authorization, parse_type_filter};
use super::mam;
use crate::errors::{bad_request, bad_request_with, stanza_error};
use crate::xml::commands::{Action, Command, NS_COMMANDS};
use crate::xml::pubsub_errors::PubSubError;
use crate::xml::typed::{PubSubFilter, NS_PUBSUB_FILTER};

pub(super) type Parsed = Result<Request, StanzaError>;

/// Translate the payload of an IQ addressed to the service (or a node of it) into an engine
/// request.
///
/// Returns `None` when the payload is not for the pubsub layer: the caller then answers
/// service-level disco/ping/version, or `service-unavailable`. Handles the namespaces
/// `http://jabber.org/protocol/pubsub` and `…#owner`, disco#info *with* a node
/// (→ [`Request::NodeMetadata`]) and disco#items (no node → [`Request::DiscoNodes`], a node
/// → [`Request::DiscoItems`]; with an XEP-0462 `<filter/>`, [`Request::DiscoTyped`]) and XEP-0313 queries on a node (→ [`Request::History`]). Requests Roost does not implement are
/// `feature-not-implemented` with `<unsupported feature='…'/>`.
///
/// `from` is the requester. JIDs named in the request are passed through as given: whether
/// the requester may act for them (`invalid-jid`, `forbidden`) is the engine's decision,
/// since owners and admins may act for others.
pub fn parse_request(kind: IqKind, payload: &Element, from: &Jid) -> Option<Parsed> {
    let _ = from;
    if payload.is("pubsub", ns::PUBSUB) {
        Some(entity::parse(kind, payload))
    } else if payload.is("pubsub", ns::PUBSUB_OWNER) {
        Some(owner::parse(kind, payload))
    } else if payload.is("query", ns::DISCO_INFO) {
        // Without a node it is about the service itself: the caller's business.
        payload.attr("node").filter(|n| !n.is_empty())?;
        Some(parse_disco_info(kind, payload))
    } else if payload.is("query", ns::DISCO_ITEMS) {
        Some(parse_disco_items(kind, payload))
    } else if payload.is("command", NS_COMMANDS) {
        Some(parse_command(kind, payload))
    } else if payload.is("query", ns::MAM) {
        Some(mam::parse_query(kind, payload))
    } else {
        None
    }
}

/// XEP-0050 commands: only get-pending (§8.7). Without a submitted form it is the first
/// step (list the nodes); with one, the per-node request.
fn parse_command(kind: IqKind, payload: &Element) -> Parsed {
    let command = match Command::try_from(payload.clone()) {
        Ok(c) if c.node == GET_PENDING_NODE => c,
        // XEP-0050 §4.4: an unknown command is item-not-found, however it is asked for.
        Ok(_) => return Err(err(Error::NodeNotFound)),
        Err(_) if payload.attr("node") != Some(GET_PENDING_NODE) => {
            return Err(err(Error::NodeNotFound))
        }
        Err(e) => return Err(bad_request(format!("malformed command: {e}"))),
    };
    if kind != IqKind::Set {
        return Err(bad_request("commands are executed with an iq set"));
    }
    match command.action {
        None | Some(Action::Execute | Action::Next | Action::Complete) => {}
        // Nothing to cancel or go back to: the command keeps no session.
        Some(other) => {
            return Err(bad_request(format!(
                "action '{}' is not offered",
                other.as_str()
            )))
        }
    }
    match command.form {
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
    // FORM_TYPE is read before the form is parsed: a malformed form that says it is an
    // authorization answer is a malformed answer, any other form is not for the service.
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
    // XEP-0462's <filter/> is read apart: the typed query has no place for it.
    let mut bare = payload.clone();
    let filter = bare.remove_child("filter", NS_PUBSUB_FILTER);
    let q = DiscoItemsQuery::try_from(bare).map_err(|e| bad_request(e.to_string()))?;
    let rsm = rsm_child(payload)?;
    let types = match filter {
        None => None,
        Some(f) => {
            let f = PubSubFilter::try_from(f)
                .map_err(|e| bad_request(format!("malformed XEP-0462 filter: {e}")))?;
            parse_type_filter(&f.form).map_err(bad_request)?
        }
    };
    if let Some(types) = types {
        return Ok(Request::DiscoTyped {
            node: q.node.filter(|n| !n.is_empty()),
            types,
            rsm,
        });
    }
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

/// The engine error as a stanza error, for parse-level failures that have one.
pub(super) fn err(e: Error) -> StanzaError {
    stanza_error(&e)
}

/// The request's single verb element and what may follow it.
pub(super) fn verb(
    payload: &Element,
    namespace: &str,
) -> Result<(Element, Vec<Element>), StanzaError> {
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
pub(super) fn node_attr(e: &Element) -> Result<String, StanzaError> {
    match e.attr("node") {
        Some(n) if !n.is_empty() => Ok(n.to_owned()),
        _ => Err(err(Error::NodeIdRequired)),
    }
}

/// The `jid` attribute, required (example 59): `jid-required` when missing, `invalid-jid`
/// when it does not parse.
pub(super) fn jid_attr(e: &Element) -> Result<Jid, StanzaError> {
    match e.attr("jid") {
        None | Some("") => Err(bad_request_with(
            PubSubError::JidRequired,
            "a jid attribute is required",
        )),
        Some(j) => j.parse::<Jid>().map_err(|_| err(Error::InvalidJid)),
    }
}

pub(super) fn subid_attr(e: &Element) -> Option<String> {
    e.attr("subid").filter(|s| !s.is_empty()).map(str::to_owned)
}

pub(super) fn wrong_kind(verb: &str, kind: IqKind) -> StanzaError {
    let k = match kind {
        IqKind::Get => "get",
        IqKind::Set => "set",
    };
    bad_request(format!("<{verb}/> is not a {k} request"))
}
