//! Requests in the `http://jabber.org/protocol/pubsub#owner` namespace (§8): configure,
//! default, delete, purge, subscriptions and affiliations.

use minidom::Element;
use roost_nodes::request::SubscriptionChange;
use roost_nodes::{Affiliation, NodeConfigPatch, NodeType, Request, SubscriptionState};
use xmpp_parsers::data_forms::DataFormType;
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::owner::{Owner, Payload as OwnerPayload};
use xmpp_parsers::pubsub::{AffiliationAttribute, Subscription};

use super::super::codec::IqKind;
use super::super::forms::parse_node_config;
use super::{err, jid_attr, node_attr, verb, wrong_kind, Parsed};
use crate::errors::{bad_request, unsupported};
use crate::xml::collections::{OwnerAssociation, OwnerCollection};
use crate::xml::pubsub::OwnerAffiliations;

/// A `<pubsub xmlns='…#owner'/>` payload.
pub(super) fn parse(kind: IqKind, payload: &Element) -> Parsed {
    let (first, rest) = verb(payload, ns::PUBSUB_OWNER)?;
    let name = first.name();
    let get_ok = matches!(
        name,
        "configure" | "default" | "subscriptions" | "affiliations"
    );
    let set_ok = matches!(
        name,
        "configure" | "delete" | "purge" | "subscriptions" | "affiliations" | "collection"
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
    if name == "collection" {
        return parse_association(first);
    }
    if name == "default" {
        // XEP-0248 example 61: `type='collection'` asks for a collection's defaults.
        // xmpp-parsers' `<default/>` has no `type`, hence read here.
        let node_type = match first.attr("type") {
            None => NodeType::Leaf,
            Some(t) => t
                .parse::<NodeType>()
                .map_err(|_| bad_request(format!("<default type='{t}'/>: not a node type")))?,
        };
        return Ok(Request::DefaultConfig { node_type });
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
            node_type: NodeType::Leaf,
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

/// Owner `<affiliations/>` (§8.9). Affiliations belong to bare JIDs, so a full JID is
/// taken as its bare JID.
fn parse_owner_affiliations(kind: IqKind, e: &Element) -> Parsed {
    let node = node_attr(e)?;
    if kind == IqKind::Get {
        return Ok(Request::GetAffiliations { node });
    }
    // The XEP's own conditions for the JIDs come first (`jid-required`, `invalid-jid`);
    // anything else malformed is a plain bad-request.
    for a in e
        .children()
        .filter(|a| a.is("affiliation", ns::PUBSUB_OWNER))
    {
        jid_attr(a)?;
    }
    let typed = OwnerAffiliations::try_from(e.clone())
        .map_err(|err| bad_request(format!("malformed <affiliations/>: {err}")))?;
    let changes = typed
        .affiliations
        .into_iter()
        .map(|a| (a.jid.to_bare(), affiliation(a.affiliation)))
        .collect();
    Ok(Request::SetAffiliations { node, changes })
}

/// xmpp-parsers' affiliation as the engine's (the same six values, §4.1).
fn affiliation(a: AffiliationAttribute) -> Affiliation {
    match a {
        AffiliationAttribute::Owner => Affiliation::Owner,
        AffiliationAttribute::Publisher => Affiliation::Publisher,
        AffiliationAttribute::PublishOnly => Affiliation::PublishOnly,
        AffiliationAttribute::Member => Affiliation::Member,
        AffiliationAttribute::None => Affiliation::None,
        AffiliationAttribute::Outcast => Affiliation::Outcast,
    }
}

/// XEP-0248 §owner-associate, §owner-dissociate (examples 47, 52): `<collection node='…'>`
/// with one `<associate node='…'/>` or `<dissociate node='…'/>`.
fn parse_association(collection: Element) -> Parsed {
    let c = OwnerCollection::try_from(collection).map_err(|e| bad_request(e.to_string()))?;
    let collection = c.node.0;
    Ok(match c.change {
        OwnerAssociation::Associate { node } => Request::Associate {
            collection,
            node: node.0,
        },
        OwnerAssociation::Dissociate { node } => Request::Dissociate {
            collection,
            node: node.0,
        },
    })
}
