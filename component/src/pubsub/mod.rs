//! The XMPP face of the XEP-0060 engine: stanzas in, [`roost_nodes::Request`]s out, and
//! [`roost_nodes::Reply`], [`roost_nodes::Error`] and [`roost_nodes::Notification`] back
//! into stanzas.
//!
//! Submodules, one job each; each uses only those listed before it:
//! - `codec`: namespaces, the IQ type, payloads as stored, dates, XEP-0059 sets;
//! - `forms`: data forms ↔ node configuration, subscription options, node meta-data;
//! - `mam`: XEP-0313 queries on a node's history, their result messages and `<fin/>`;
//! - `parse`: IQ payload (or an owner's §8.6 answer in a message) → [`roost_nodes::Request`]
//!   (or the stanza error the request deserves, from [`crate::errors`]);
//! - `reply`: [`roost_nodes::Reply`] → IQ result payload;
//! - `notify`: [`roost_nodes::Notification`] → `<message/>`;
//! - `commands`: XEP-0050 discovery of the ad-hoc commands (get-pending, and the admins').
//!
//! xmpp-parsers types are used wherever they exist; the few elements built or read by hand
//! say why where they are.

pub(crate) mod codec;
mod commands;
pub(crate) mod forms;
mod mam;
mod notify;
mod parse;
mod reply;
#[cfg(test)]
mod schema_tests;

pub use crate::errors::stanza_error;
pub(crate) use codec::serialize_payload;
pub use codec::IqKind;
pub use commands::{command_disco, ADMIN_COMMANDS};
pub(crate) use forms::{metadata_form, node_config_form, offer_roster_models};
pub use mam::reply_messages;
pub use notify::{notification_message, NotificationRenderer};
pub use parse::{parse_message, parse_request};
pub use reply::{command_session, owner_namespace, reply_payload};

/// The `http://jabber.org/protocol/pubsub#…` features that work end to end (translation and
/// engine), as disco#info `var`s for the service's identity.
///
/// `access-presence` and `access-roster` are not here: they work only on a connection whose
/// server grants roster access (XEP-0356), so the service adds [`ROSTER_FEATURES`] then.
/// Deliberately absent until they work: `presence-subscribe` (XEP-0060 §9.1
/// auto-subscription from entity capabilities), `auto-subscribe`, `auto-create`, `filtered-notifications`, `publish-node-full` (no
/// `pubsub#publish_node_full` option: a full node always drops its oldest item) and
/// `last-published` (the default `send_last_published_item` is `never`).
pub const FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-authorize",
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    // XEP-0248: collection nodes, the root collection, associations, node news.
    "http://jabber.org/protocol/pubsub#collections",
    "http://jabber.org/protocol/pubsub#config-node",
    // `max` for pubsub#max_items, pubsub#item_expire and pubsub#children_max.
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#get-pending",
    "http://jabber.org/protocol/pubsub#instant-nodes",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#leased-subscription",
    "http://jabber.org/protocol/pubsub#manage-subscriptions",
    "http://jabber.org/protocol/pubsub#member-affiliation",
    "http://jabber.org/protocol/pubsub#meta-data",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-collection",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#multi-subscribe",
    "http://jabber.org/protocol/pubsub#outcast-affiliation",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-only-affiliation",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#publisher-affiliation",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-affiliations",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-default-sub",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#retrieve-subscriptions",
    "http://jabber.org/protocol/pubsub#rsm",
    "http://jabber.org/protocol/pubsub#subscribe",
    "http://jabber.org/protocol/pubsub#subscription-notifications",
    "http://jabber.org/protocol/pubsub#subscription-options",
];

/// The other protocols the service implements besides pubsub, disco, ping and version:
/// XEP-0050 ad-hoc commands (get-pending, §8.7; XEP-0050 §2.1), data forms, which it reads
/// as a direct child of `<message/>` (the §8.6 authorization answer; XEP-0004 §8), and
/// XEP-0059 result set management (§5 "Determining Support"), on disco#items as well as on
/// items (for which `pubsub#rsm` says so, §6.5.4), Roost's content filters
/// ([`FILTER_FEATURE`]), and typed discovery: XEP-0462 type filtering of disco#items, and
/// XEP-0413 order-by on item retrieval (§disco: the namespace, and the namespace it applies
/// to after `@`; not on XEP-0313 queries, which do not read `<order/>`).
///
/// Not claimed: XEP-0472's `urn:xmpp:pubsub-social-feed:1`. A social feed's node is created
/// and kept as the base profile configures it (`pubsub#type`, `notify_retract`,
/// `max_items=max`, `persist_items`, `send_last_published_item`, `deliver_payloads`), but
/// the XEP's service side (alternate links "SHOULD be inserted at server side") and the
/// gallery profile's item rule are not implemented.
pub const OTHER_FEATURES: &[&str] = &[
    FILTER_FEATURE,
    crate::xml::typed::NS_PUBSUB_FILTER,
    crate::xml::typed::NS_ORDER_BY,
    ORDER_BY_PUBSUB,
    crate::xml::commands::NS_COMMANDS,
    xmpp_parsers::ns::DATA_FORMS,
    xmpp_parsers::ns::RSM,
];

/// XEP-0413 §disco: order-by applies to XEP-0060 item retrieval.
pub const ORDER_BY_PUBSUB: &str = "urn:xmpp:order-by:1@http://jabber.org/protocol/pubsub";

/// Roost's content-based subscriptions (XEP-0060 §12 "Content-Based Pubsub Systems"): the
/// `x-roost#filter` subscription option (`forms/options.rs`). Advertised by the service and
/// by every node, whose notifications it selects (a collection's: among its leaves' items).
pub const FILTER_FEATURE: &str = "urn:roost:filter:0";

/// The access models that need the owners' rosters (§4.5), advertised only while the server
/// grants roster access (XEP-0356).
pub const ROSTER_FEATURES: &[&str] = &[
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-roster",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_namespaced() {
        assert!(FEATURES.contains(&"http://jabber.org/protocol/pubsub#publish"));
        assert!(FEATURES
            .iter()
            .all(|f| f.starts_with("http://jabber.org/protocol/pubsub#")));
    }
}
