//! Engine replies → IQ result payloads: xmpp-parsers' types where they can express the
//! reply, Roost's own ([`crate::xml::pubsub`], [`crate::xml::commands`]) where they cannot
//! (`<subscription/>` results and owner `<affiliation/>` rows have private fields there, and
//! `<default/>` has no form).

use std::cell::RefCell;
use std::str::FromStr;

use minidom::rxml::xml_ncname;
use minidom::Element;
use roost_nodes::{Reply, Request, SubOptions, Subscription, SubscriptionState};
use xmpp_parsers::data_forms::DataFormType;
use xmpp_parsers::disco::{DiscoInfoResult, DiscoItemsResult, Identity, Item as DiscoItem};
use xmpp_parsers::jid::Jid;
use xmpp_parsers::ns;
use xmpp_parsers::pubsub::owner::{Owner, Payload as OwnerPayload};
use xmpp_parsers::pubsub::pubsub::{
    Affiliation as PsAffiliation, Affiliations as PsAffiliations, Create, Item as PsItem, Items,
    Options, PubSub,
};
use xmpp_parsers::pubsub::{AffiliationAttribute, ItemId, NodeName, SubscriptionId};

use super::codec::{payload_element, set_result, GET_PENDING_NODE};
use super::forms::{metadata_form, node_config_form, pending_nodes_form, sub_options_form};
use crate::xml::commands::{Command, Note, NoteType, Status, NS_COMMANDS};
use crate::xml::pubsub::{
    Default as DefaultOptions, OwnerAffiliation, OwnerAffiliations, OwnerResult,
    OwnerSubscribeOptions, OwnerSubscription, OwnerSubscriptions, PubSubResult, SubState,
    SubscribeOptions, Subscription as SubscriptionElem, Subscriptions,
};

/// The `<x/>` stating a subscription's options (example 69), built once per distinct options
/// and cloned after. Every subscribe reply carries it, nearly always for the default options,
/// and xso's serializer of the typed form copies its whole iterator state (kilobytes, nested
/// four deep) at every XML event: building it each time was most of a subscribe's CPU
/// (docs/benchmarks.md, subscribe storm).
fn options_result_form(options: &SubOptions, collection: bool) -> Element {
    /// Distinct options remembered; the oldest is forgotten first.
    const KEEP: usize = 16;
    thread_local! {
        static FORMS: RefCell<Vec<(SubOptions, bool, Element)>> = const { RefCell::new(Vec::new()) };
    }
    FORMS.with(|forms| {
        let mut forms = forms.borrow_mut();
        if let Some((_, _, e)) = forms
            .iter()
            .find(|(o, c, _)| *c == collection && o == options)
        {
            return e.clone();
        }
        let e = Element::from(sub_options_form(options, collection, DataFormType::Result_));
        if forms.len() == KEEP {
            forms.remove(0);
        }
        forms.push((options.clone(), collection, e.clone()));
        e
    })
}

/// True when the reply to `request` belongs in the `pubsub#owner` namespace: lists of
/// subscriptions and affiliations look alike for the owner requests (§8.8.1, §8.9.1) and the
/// entity's own lists (§5.6, §5.7); only the request tells them apart.
pub fn owner_namespace(request: &Request) -> bool {
    matches!(
        request,
        Request::GetSubscriptions { .. } | Request::GetAffiliations { .. }
    )
}

/// The payload of the IQ result for a reply (`None`: an empty result); `owner_ns` from
/// [`owner_namespace`] of the request it answers.
pub fn reply_payload(reply: &Reply, service: &Jid, owner_ns: bool) -> Option<Element> {
    build(reply, service, owner_ns)
}

fn build(reply: &Reply, service: &Jid, owner: bool) -> Option<Element> {
    Some(match reply {
        Reply::Done => return None,
        // XEP-0313 §4.2: the items went out as messages; the result is the <fin/>.
        Reply::History { .. } => return super::mam::fin(reply),
        // Example 132; harmless for a named node, required for an instant one.
        Reply::Created { node } => PubSub::Create {
            create: Create {
                node: Some(NodeName(node.clone())),
            },
            configure: None,
        }
        .into(),
        // Example 99, built with minidom's builder rather than converted from the typed
        // `PubSub` (or `Publish`): the conversion replays the type as xso events into a new
        // element, ~4 % of Roost's CPU under publish load for these three elements. The
        // test of example 99 also reads it back as the typed `PubSub`.
        Reply::Published { node, id } => Element::builder("pubsub", ns::PUBSUB)
            .append(
                Element::builder("publish", ns::PUBSUB)
                    .attr(xml_ncname!("node").to_owned(), node.as_str())
                    .append(
                        Element::builder("item", ns::PUBSUB)
                            .attr(xml_ncname!("id").to_owned(), id.as_str()),
                    ),
            )
            .build(),
        // Examples 29, 43, 68. The options carry `jid` (the schema requires it), `node` and
        // `subid`: example 68 shows a bare <options/>, but the rule that it names neither node
        // nor JID is for the request (§6.3.7), where <subscribe/> says them; clients that
        // read the reply with the schema's type (aioxmpp, xmpp-parsers) reject it without.
        Reply::Subscription {
            node,
            sub,
            collection,
        } => {
            // The `<pubsub/>` wrapper by hand (it only holds the typed children): converting
            // a `PubSubResult` steps xso's iterator over every field the type could hold,
            // moving its whole state (kilobytes) at each step, and a storm of subscribes
            // paid that per reply (docs/benchmarks.md).
            let mut e = Element::builder("pubsub", ns::PUBSUB).build();
            e.append_child(entity_subscription(Some(node), sub, true).into());
            if sub.state == SubscriptionState::Subscribed {
                let mut options: Element = Options {
                    jid: sub.jid.clone(),
                    node: Some(NodeName(node.clone())),
                    subid: Some(SubscriptionId(sub.subid.clone())).filter(|s| !s.0.is_empty()),
                    form: None,
                }
                .into();
                options.append_child(options_result_form(&sub.options, *collection));
                e.append_child(options);
            }
            e
        }
        // Example 56 (a subscription's options) and example 71 (defaults).
        Reply::Options {
            collection,
            node,
            jid,
            subid,
            options,
        } => {
            let form = sub_options_form(options, *collection, DataFormType::Form);
            match jid {
                Some(jid) => PubSub::Subscribe {
                    subscribe: None,
                    options: Some(Options {
                        jid: jid.clone(),
                        node: node.clone().map(NodeName),
                        subid: subid.clone().map(SubscriptionId),
                        form: Some(form),
                    }),
                }
                .into(),
                None => PubSubResult {
                    default: Some(DefaultOptions {
                        node: node.clone().map(NodeName),
                        form: Some(form),
                    }),
                    ..PubSubResult::empty()
                }
                .into(),
            }
        }
        // Example 75; the publisher as in the node's notifications (§7.1.2.3). With a page,
        // the RSM <set/> follows <items/> inside <pubsub/> (§6.5.4).
        Reply::Items {
            node,
            items,
            page,
            with_publisher,
        } => {
            let mut pubsub: Element = PubSub::Items(Items {
                max_items: None,
                node: NodeName(node.clone()),
                subid: None,
                items: items
                    .iter()
                    .map(|i| PsItem {
                        id: Some(ItemId(i.id.clone())),
                        publisher: with_publisher.then(|| i.shown_publisher()),
                        payload: payload_element(&i.payload),
                    })
                    .collect(),
            })
            .into();
            if let Some(page) = page {
                pubsub.append_child(set_result(page).into());
            }
            pubsub
        }
        // Example 10.
        Reply::Nodes { nodes, page } => DiscoItemsResult {
            node: None,
            items: nodes
                .iter()
                .map(|n| DiscoItem {
                    jid: service.clone(),
                    node: Some(n.node.clone()),
                    name: Some(n.title.clone()).filter(|t| !t.is_empty()),
                })
                .collect(),
            rsm: page.as_ref().map(set_result),
        }
        .into(),
        // XEP-0248 example 6: a collection's children.
        Reply::Children { node, nodes, page } => DiscoItemsResult {
            node: Some(node.clone()),
            items: nodes
                .iter()
                .map(|n| DiscoItem {
                    jid: service.clone(),
                    node: Some(n.node.clone()),
                    name: Some(n.title.clone()).filter(|t| !t.is_empty()),
                })
                .collect(),
            rsm: page.as_ref().map(set_result),
        }
        .into(),
        // Examples 12, 14.
        Reply::Metadata(meta) => DiscoInfoResult {
            node: Some(meta.node.clone()),
            identities: vec![Identity {
                category: "pubsub".to_owned(),
                type_: meta.config.node_type.as_str().to_owned(),
                lang: None,
                name: None,
            }],
            // A node's history can be queried with XEP-0313 (its own feature, per node); its
            // subscriptions take content filters (a collection's select its leaves' items).
            features: [ns::PUBSUB, ns::MAM, super::FILTER_FEATURE]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            extensions: vec![metadata_form(meta)],
        }
        .into(),
        // Example 15.
        Reply::ItemIds { node, ids, page } => DiscoItemsResult {
            node: Some(node.clone()),
            items: ids
                .iter()
                .map(|id| DiscoItem {
                    jid: service.clone(),
                    node: None,
                    name: Some(id.clone()),
                })
                .collect(),
            rsm: page.as_ref().map(set_result),
        }
        .into(),
        // §8.7 example 177: the get-pending command's form. The command is stateless: the
        // second step carries the node. The session id is the caller's ([`command_session`]).
        Reply::PendingNodes { nodes } => Command {
            form: Some(pending_nodes_form(nodes)),
            ..command(Status::Executing)
        }
        .into(),
        // §8.7 example 183: the authorization requests went out as messages.
        Reply::PendingSent { node } => Command {
            notes: vec![Note {
                type_: Some(NoteType::Info),
                text: format!("Pending subscription requests of node {node} sent."),
            }],
            ..command(Status::Completed)
        }
        .into(),
        // Examples 17, 21 (entity) and 185 (owner).
        Reply::Subscriptions { node, subs } if owner => OwnerResult {
            affiliations: None,
            subscriptions: Some(OwnerSubscriptions {
                // Owner rows are all of the one node named on <subscriptions/>.
                node: NodeName(node.clone().unwrap_or_default()),
                subscriptions: subs
                    .iter()
                    .map(|(_, sub)| owner_subscription(sub))
                    .collect(),
            }),
        }
        .into(),
        Reply::Subscriptions { node, subs } => PubSubResult {
            subscriptions: Some(Subscriptions {
                node: node.clone().map(NodeName),
                subscriptions: subs
                    .iter()
                    .map(|(n, sub)| entity_subscription(Some(n), sub, false))
                    .collect(),
            }),
            ..PubSubResult::empty()
        }
        .into(),
        // Example 198.
        Reply::Affiliations { node, affs } if owner => OwnerResult {
            affiliations: Some(OwnerAffiliations {
                node: NodeName(node.clone().unwrap_or_default()),
                affiliations: affs
                    .iter()
                    .filter_map(|(_, jid, aff)| {
                        Some(OwnerAffiliation {
                            jid: Jid::from(jid.clone()),
                            affiliation: AffiliationAttribute::from_str(aff.as_str()).ok()?,
                        })
                    })
                    .collect(),
            }),
            subscriptions: None,
        }
        .into(),
        // Examples 23, 27.
        Reply::Affiliations { node, affs } => PubSub::Affiliations(PsAffiliations {
            node: node.clone().map(NodeName),
            affiliations: affs
                .iter()
                .filter_map(|(n, _, aff)| {
                    Some(PsAffiliation {
                        node: NodeName(n.clone()),
                        affiliation: AffiliationAttribute::from_str(aff.as_str()).ok()?,
                    })
                })
                .collect(),
        })
        .into(),
        // Examples 140 and 154.
        Reply::Config { node, config } => {
            let form = Some(node_config_form(config, DataFormType::Form));
            let payload = match node {
                Some(node) => OwnerPayload::Configure {
                    node: Some(NodeName(node.clone())),
                    form,
                },
                None => OwnerPayload::Default { form },
            };
            Owner { payload }.into()
        }
    })
}

/// The get-pending `<command/>` result in `status`, without its session id: that depends
/// on the request, not on the engine's reply ([`command_session`]).
fn command(status: Status) -> Command {
    Command {
        status: Some(status),
        ..Command::new(GET_PENDING_NODE)
    }
}

/// Give a `<command/>` result the session id XEP-0050 asks for: the requester's own on a
/// later stage ("Formal Description": the responder maintains it), otherwise a new one from
/// `fresh`, which must never repeat ("Session Lifetime": "It is the responder's
/// responsibility to ensure that each 'sessionid' value is unique"). Nothing is kept per
/// session, so any session id the requester brings is accepted. Other results are left alone.
pub fn command_session(result: &mut Element, request: &Element, fresh: impl FnOnce() -> String) {
    if !result.is("command", NS_COMMANDS) || !request.is("command", NS_COMMANDS) {
        return;
    }
    let Ok(mut command) = Command::try_from(result.clone()) else {
        return;
    };
    command.sessionid = Some(match request.attr("sessionid") {
        Some(sid) if !sid.is_empty() => sid.to_owned(),
        _ => format!("get-pending:{}", fresh()),
    });
    *result = command.into();
}

/// One entity `<subscription/>` (examples 17, 29, 43): `unconfigured` carries
/// `<subscribe-options><required/></subscribe-options>` (example 43); with `announce`, a
/// configured subscription carries an empty `<subscribe-options/>` to say options are
/// supported (example 45).
fn entity_subscription(node: Option<&str>, sub: &Subscription, announce: bool) -> SubscriptionElem {
    SubscriptionElem {
        node: node.map(|n| NodeName(n.to_owned())),
        jid: sub.jid.clone(),
        subid: Some(sub.subid.clone())
            .filter(|s| !s.is_empty())
            .map(SubscriptionId),
        subscription: sub_state(sub.state),
        subscribe_options: match sub.state {
            SubscriptionState::Unconfigured => Some(SubscribeOptions { required: true }),
            SubscriptionState::Subscribed if announce => Some(SubscribeOptions { required: false }),
            _ => None,
        },
    }
}

/// One owner `<subscription/>` (example 185): the node is named once on the list.
fn owner_subscription(sub: &Subscription) -> OwnerSubscription {
    OwnerSubscription {
        node: None,
        jid: sub.jid.clone(),
        subid: Some(sub.subid.clone())
            .filter(|s| !s.is_empty())
            .map(SubscriptionId),
        subscription: sub_state(sub.state),
        subscribe_options: (sub.state == SubscriptionState::Unconfigured)
            .then_some(OwnerSubscribeOptions { required: true }),
    }
}

fn sub_state(s: SubscriptionState) -> SubState {
    match s {
        SubscriptionState::None => SubState::None,
        SubscriptionState::Pending => SubState::Pending,
        SubscriptionState::Unconfigured => SubState::Unconfigured,
        SubscriptionState::Subscribed => SubState::Subscribed,
    }
}

#[cfg(test)]
mod tests;
