//! The one error enum of the engine, in XEP-0060 vocabulary.
//!
//! Each variant names the situation, not the stanza: `roost-component` owns the single
//! table that turns a variant into a stanza error condition plus `pubsub#errors` child.

use crate::store::StoreError;

/// Why a request was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node does not exist (`item-not-found`).
    #[error("node not found")]
    NodeNotFound,
    /// The item does not exist (`item-not-found`).
    #[error("item not found")]
    ItemNotFound,
    /// A node with that NodeID exists already (`conflict`).
    #[error("node already exists")]
    NodeExists,
    /// The request needs a NodeID (`bad-request` + `nodeid-required`).
    #[error("a NodeID is required")]
    NodeIdRequired,
    /// The requester lacks the privilege (`forbidden`).
    #[error("forbidden")]
    Forbidden,
    /// The requester is an outcast (`forbidden`).
    #[error("blocked (outcast)")]
    Outcast,
    /// Whitelist node, requester not on it (`not-allowed` + `closed-node`).
    #[error("node is closed to the requester")]
    ClosedNode,
    /// The requester may not publish here (`forbidden`).
    #[error("publishing is not allowed")]
    PublishForbidden,
    /// The JID in the request does not match the requester (`bad-request` + `invalid-jid`).
    #[error("JID does not match the requester")]
    InvalidJid,
    /// Not subscribed (`unexpected-request` + `not-subscribed`).
    #[error("not subscribed")]
    NotSubscribed,
    /// Several subscriptions and no subid (`bad-request` + `subid-required`).
    #[error("subid required")]
    SubIdRequired,
    /// The subid is not one of the requester's (`not-acceptable` + `invalid-subid`).
    #[error("invalid subid")]
    InvalidSubId,
    /// Items of an authorize node asked for by an entity that is neither subscribed nor
    /// affiliated, a pending subscription included (§6.5.9 "Entity Not Subscribed":
    /// `not-authorized` + `not-subscribed`).
    #[error("only subscribers may retrieve items")]
    NotAuthorizedSubscriber,
    /// Presence access model, and the requester is not subscribed to the presence of an
    /// owner (§6.1.3 and §6.5.9 "Presence Subscription Required": `not-authorized` +
    /// `presence-subscription-required`).
    #[error("presence subscription required")]
    PresenceSubscriptionRequired,
    /// Roster access model, and the requester is in none of the allowed roster groups
    /// (§6.1.3 and §6.5.9 "Not in Roster Group": `not-authorized` + `not-in-roster-group`).
    #[error("not in an allowed roster group")]
    NotInRosterGroup,
    /// The decision needs the rosters of these owners, which the engine has not been given
    /// yet: the component fetches them and asks again. Never sent to a requester as is.
    #[error("the rosters of {0:?} are needed")]
    RosterNeeded(Vec<crate::BareJid>),
    /// Subscription is pending approval (`not-authorized` + `pending-subscription`).
    #[error("subscription pending")]
    PendingSubscription,
    /// Payload fails the node's rules (`bad-request` + `invalid-payload`).
    #[error("invalid payload")]
    InvalidPayload,
    /// Persistent node and no item (`bad-request` + `item-required`).
    #[error("item required")]
    ItemRequired,
    /// Payload required and missing (`bad-request` + `payload-required`).
    #[error("payload required")]
    PayloadRequired,
    /// Transient notification-only node but an item or payload was given (`bad-request` + `item-forbidden`).
    #[error("item forbidden")]
    ItemForbidden,
    /// Payload larger than `pubsub#max_payload_size` (`not-acceptable` + `payload-too-big`).
    #[error("payload too big (limit {limit} bytes)")]
    PayloadTooBig {
        /// The node's limit in bytes.
        limit: u64,
    },
    /// publish-options do not match the node configuration (`conflict` + `precondition-not-met`).
    #[error("precondition not met: {field}")]
    PreconditionNotMet {
        /// The `pubsub#…` field that differs.
        field: String,
    },
    /// A configuration value is invalid (`not-acceptable`).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Subscription options are invalid (`bad-request` + `invalid-options`).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The content filter (`x-roost#filter`) does not parse (`not-acceptable`); the text
    /// says where and why.
    #[error("{0}")]
    InvalidFilter(crate::filter::ParseError),
    /// The node has no configurable options of this kind (`feature-not-implemented` + `unsupported`).
    #[error("unsupported feature {0}")]
    Unsupported(&'static str),
    /// The requested access model is not supported (`not-acceptable` + `unsupported-access-model`).
    #[error("unsupported access model")]
    UnsupportedAccessModel,
    /// The requester may not create nodes, or has too many (`not-allowed` / `policy-violation`).
    #[error("node creation not allowed")]
    CreateForbidden,
    /// A per-JID or per-node cap was hit (`policy-violation` / `resource-constraint`).
    #[error("limit reached: {0}")]
    LimitReached(&'static str),
    /// The node's max_items cap would be exceeded by configuration (`not-acceptable` + `max-items-exceeded`).
    #[error("max items exceeded")]
    MaxItemsExceeded,
    /// Retract needs an item id (`bad-request` + `item-required`).
    #[error("item id required")]
    ItemIdRequired,
    /// Purge on a node that does not persist items (`feature-not-implemented` + `persistent-items`).
    #[error("node does not persist items")]
    NotPersistent,
    /// A collection configuration XEP-0248 forbids: children on a leaf, a cycle, a
    /// collection turned into a leaf, a parent that is no collection or does not exist
    /// (`not-allowed` + `invalid-options`).
    #[error("collection refused: {0}")]
    InvalidCollection(String),
    /// A collection would have more children than its `pubsub#children_max` (or the
    /// service's cap) allows (`not-allowed` + `max-nodes-exceeded`).
    #[error("too many children for collection {0}")]
    MaxNodesExceeded(String),
    /// A dissociation of a node that is not a child of the collection (XEP-0248
    /// §error-dissoc-not-assoc: `bad-request`).
    #[error("{node} is not a child of {collection}")]
    NotAssociated {
        /// The collection named.
        collection: String,
        /// The node named.
        node: String,
    },
    /// The root collection cannot be deleted or configured (XEP-0248 §delete-root-node,
    /// §root: `not-allowed`).
    #[error("the root collection belongs to the service")]
    RootNode,
    /// A second subscription of the same JID to a collection for the same kind of news
    /// (XEP-0248 §subscribe-errors: `conflict`).
    #[error("already subscribed to this collection for {0}")]
    SubscriptionExists(&'static str),
    /// The request is malformed beyond the cases above (`bad-request`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store failed; nothing was changed (`internal-server-error`, type wait).
    #[error("storage failure: {0}")]
    Storage(#[from] StoreError),
}
