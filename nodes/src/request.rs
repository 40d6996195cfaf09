//! Typed requests (one per XEP-0060 use case) and what the engine returns for them.

use crate::model::*;
use crate::typed::{OrderBy, TypeFilter};
use crate::{BareJid, Jid, Millis};

/// A requester's ask, already parsed from its stanza. The actor (who asks) is passed
/// beside it to [`crate::Service::handle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    // §5 entity use cases
    /// disco#items on the service, the root collection: the nodes without a parent
    /// (XEP-0248 §disco-nodes) that the actor may see.
    DiscoNodes,
    /// disco#info on a node: existence, type and the `pubsub#meta-data` form.
    NodeMetadata { node: String },
    /// disco#items on a node: on a leaf the ItemIDs the actor may see, on a collection its
    /// children (XEP-0248 §disco-nodes).
    DiscoItems { node: String },
    /// The actor's own subscriptions, on all nodes or one (§5.6).
    Subscriptions { node: Option<String> },
    /// The actor's own affiliations, on all nodes or one (§5.7).
    Affiliations { node: Option<String> },

    // §6 subscriber use cases
    /// Subscribe `jid` (§6.1), optionally configuring at once (§6.3.7).
    Subscribe {
        node: String,
        jid: Jid,
        options: Option<SubOptionsPatch>,
    },
    /// Unsubscribe `jid` (§6.2).
    Unsubscribe {
        node: String,
        jid: Jid,
        subid: Option<String>,
    },
    /// Get the options of a subscription (§6.3.2).
    GetOptions {
        node: String,
        jid: Jid,
        subid: Option<String>,
    },
    /// Set the options of a subscription (§6.3.5).
    SetOptions {
        node: String,
        jid: Jid,
        subid: Option<String>,
        options: SubOptionsPatch,
    },
    /// Default subscription options, service-wide or for a node (§6.4).
    DefaultOptions { node: Option<String> },
    /// Retrieve items (§6.5): all, the `max_items` most recent, or the given ids.
    Items {
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        subid: Option<String>,
    },

    // §7 publisher use cases
    /// Publish one item (§7.1), with optional publish-options preconditions (§7.1.5).
    Publish {
        node: String,
        item: Option<NewItem>,
        options: Option<NodeConfigPatch>,
    },
    /// Retract items (§7.2).
    Retract {
        node: String,
        ids: Vec<String>,
        notify: bool,
    },

    // §8 owner use cases
    /// Create a node; `None` asks for an instant node (§8.1).
    Create {
        node: Option<String>,
        config: Option<NodeConfigPatch>,
    },
    /// Get a node's configuration (§8.2).
    GetConfig { node: String },
    /// Change a node's configuration (§8.2.5).
    SetConfig {
        node: String,
        config: NodeConfigPatch,
    },
    /// The default configuration of a node of `node_type` (§8.3; XEP-0248 §owner-default).
    DefaultConfig { node_type: NodeType },
    /// Delete a node, optionally pointing subscribers elsewhere (§8.4).
    Delete {
        node: String,
        redirect: Option<String>,
    },
    /// Purge all items (§8.5).
    Purge { node: String },
    /// List all subscriptions of a node (§8.8.1).
    GetSubscriptions { node: String },
    /// Change subscriptions of a node (§8.8.2).
    SetSubscriptions {
        node: String,
        changes: Vec<SubscriptionChange>,
    },
    /// Associate `node` with the collection `collection` (XEP-0248 §associate-node).
    Associate { collection: String, node: String },
    /// Dissociate `node` from the collection `collection` (XEP-0248 §dissociate).
    Dissociate { collection: String, node: String },
    /// List all affiliations of a node (§8.9.1).
    GetAffiliations { node: String },
    /// Change affiliations of a node (§8.9.2).
    SetAffiliations {
        node: String,
        changes: Vec<(BareJid, Affiliation)>,
    },

    /// An owner's answer to a subscription request on an authorize node (§8.6): the
    /// submitted `pubsub#subscribe_authorization` form. Approves (`allow`) or denies the
    /// pending subscriptions of `jid`, or only the one `subid` names.
    AuthorizeSubscription {
        node: String,
        jid: Jid,
        subid: Option<String>,
        allow: bool,
    },
    /// Ad-hoc command `pubsub#get-pending`, first step (§8.7): the nodes whose pending
    /// subscription requests the actor may decide.
    PendingNodes,
    /// Ad-hoc command `pubsub#get-pending`, per-node step (§8.7): send the actor one
    /// authorization request per pending subscription of `node`.
    GetPending { node: String },

    // XEP-0059
    /// One page of a list, when the request carried an RSM `<set/>`. Requests without one
    /// use the plain variants ([`Request::DiscoNodes`], [`Request::DiscoItems`],
    /// [`Request::Items`]) and get the whole list, unpaged: paging is never forced.
    Page { list: PagedList, rsm: RsmQuery },

    // Typed discovery
    /// disco#items with an XEP-0462 type filter: the nodes of the service (`node` `None`:
    /// the root collection) or of a collection that `types` admits, paged when `rsm` is
    /// given. On a leaf the list is its ItemIDs, unfiltered: the filter selects nodes by
    /// their `pubsub#type`, and items have none.
    DiscoTyped {
        node: Option<String>,
        types: TypeFilter,
        rsm: Option<RsmQuery>,
    },
    /// Item retrieval (§6.5) in XEP-0413 order: as [`Request::Items`] (or a page, with
    /// `rsm`, as [`PagedList::Items`]), the items in `order` (never empty), `max_items`
    /// the most recent by its first field ([`crate::typed::ordered`]). RSM UIDs are
    /// ItemIDs, positions in that order.
    ItemsOrdered {
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        subid: Option<String>,
        order: Vec<OrderBy>,
        rsm: Option<RsmQuery>,
    },

    // XEP-0313
    /// A Message Archive Management query on a node's items: the node's history is its
    /// stored items, in publish order, with the ItemIDs as archive ids. `filter` narrows
    /// the list, then `rsm` pages it; a page is never larger than the service's cap.
    History {
        node: String,
        filter: HistoryFilter,
        rsm: RsmQuery,
    },
}

/// The XEP-0313 filter fields that apply to a node's history (§4.1.1 `start`/`end`,
/// §4.1.2 `after-id`/`before-id`); every bound is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only items published at or after this time.
    pub start: Option<Millis>,
    /// Only items published at or before this time.
    pub end: Option<Millis>,
    /// Only items published after this ItemID (exclusive).
    pub after_id: Option<String>,
    /// Only items published before this ItemID (exclusive).
    pub before_id: Option<String>,
}

/// The lists that can be paged with XEP-0059.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagedList {
    /// disco#items on the service: visible nodes, in NodeID order (the RSM UID is the NodeID).
    Nodes,
    /// disco#items on a node: ItemIDs in publish order; on a collection its children, in
    /// NodeID order.
    ItemIds { node: String },
    /// Item retrieval (§6.5.4): items in publish order.
    Items { node: String, subid: Option<String> },
}

/// An RSM `<set/>` query (XEP-0059 §2). UIDs are NodeIDs or ItemIDs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsmQuery {
    /// Page size; `None` means the rest of the list.
    pub max: Option<u64>,
    /// Start right after this UID.
    pub after: Option<String>,
    /// End right before this UID; `Some("")` (an empty `<before/>`) asks for the last page.
    pub before: Option<String>,
    /// Skip this many from the start (XEP-0059 §2.5).
    pub index: Option<u64>,
}

/// The RSM `<set/>` of a paged reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RsmPage {
    /// The UID of the page's first entry and its position in the whole list.
    pub first: Option<(String, u64)>,
    /// The UID of the page's last entry.
    pub last: Option<String>,
    /// How many entries the whole list has.
    pub count: u64,
}

/// One row of an owner's subscription change (§8.8.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionChange {
    /// Whose subscription.
    pub jid: Jid,
    /// Which one, when the JID has several.
    pub subid: Option<String>,
    /// The new state; `None` removes it.
    pub state: SubscriptionState,
}

/// What the engine answers the requester.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An empty IQ result.
    Done,
    /// A node was created; its NodeID (needed for instant nodes).
    Created { node: String },
    /// An item was published under this id.
    Published { node: String, id: String },
    /// A subscription as it now stands (subscribe reply, §6.1.2). `collection`: the node
    /// is a collection, whose subscriptions have XEP-0248's options besides (see
    /// [`Reply::Options`]).
    Subscription {
        node: String,
        sub: Subscription,
        collection: bool,
    },
    /// A subscription's options (§6.3.2), or the defaults when `subid` is `None`.
    /// `collection`: they are for a collection (or, without a node, for any node), so the
    /// form shows XEP-0248's `subscription_type` and `subscription_depth`, which mean
    /// nothing on a leaf.
    Options {
        collection: bool,
        node: Option<String>,
        jid: Option<Jid>,
        subid: Option<String>,
        options: SubOptions,
    },
    /// Items, oldest first (§6.5); `page` when the request was paged.
    Items {
        node: String,
        items: Vec<Item>,
        page: Option<RsmPage>,
        /// Each item goes with its publisher ([`Item::shown_publisher`]), as in the node's
        /// notifications ([`crate::NodeConfig::shows_publisher`]).
        with_publisher: bool,
    },
    /// Visible nodes (disco#items); `page` when the request was paged.
    Nodes {
        nodes: Vec<NodeSummary>,
        page: Option<RsmPage>,
    },
    /// A collection's children that the actor may see (disco#items on it), in NodeID
    /// order; `page` when the request was paged.
    Children {
        node: String,
        nodes: Vec<NodeSummary>,
        page: Option<RsmPage>,
    },
    /// One node's metadata (disco#info).
    Metadata(NodeMeta),
    /// ItemIDs (disco#items on a node), oldest first; `page` when the request was paged.
    ItemIds {
        node: String,
        ids: Vec<String>,
        page: Option<RsmPage>,
    },
    /// Subscriptions, as (node, subscription) pairs.
    Subscriptions {
        node: Option<String>,
        subs: Vec<(String, Subscription)>,
    },
    /// Affiliations, as (node, jid, affiliation) rows.
    Affiliations {
        node: Option<String>,
        affs: Vec<(String, BareJid, Affiliation)>,
    },
    /// The nodes with pending subscription requests the actor may decide (§8.7).
    PendingNodes { nodes: Vec<String> },
    /// The authorization requests for `node` went out as notifications (§8.7).
    PendingSent { node: String },
    /// One page of a node's history (XEP-0313), oldest first. `complete` is true when the
    /// page reaches the end of the filtered history in the direction of paging (the newest
    /// item going forward, the oldest going back with RSM `<before/>`).
    History {
        node: String,
        items: Vec<Item>,
        complete: bool,
        page: RsmPage,
    },
    /// A node's configuration, or the default one when `node` is `None`.
    Config {
        node: Option<String>,
        config: NodeConfig,
    },
}

/// A node as disco#items lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// The NodeID.
    pub node: String,
    /// `pubsub#title`, possibly empty.
    pub title: String,
}

/// What disco#info reports about one node (§5.4, XEP-0128 `pubsub#meta-data`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMeta {
    /// The NodeID.
    pub node: String,
    /// The node's configuration.
    pub config: NodeConfig,
    /// Who created it.
    pub creator: BareJid,
    /// When.
    pub created: Millis,
    /// Owners.
    pub owners: Vec<BareJid>,
    /// Publishers.
    pub publishers: Vec<BareJid>,
    /// Subscriptions in state subscribed.
    pub num_subscribers: u64,
}

/// A message the service must send after the change is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The recipient, exactly as subscribed (bare or full).
    pub to: Jid,
    /// The node the event happened on.
    pub node: String,
    /// The subids of `to`'s subscriptions this notification is for (§12.5: SHIM headers
    /// when more than one, or when `name_subids`).
    pub subids: Vec<String>,
    /// Name `subids` in SHIM headers even when there is only one: the notification reached
    /// a subscription through its content filter (XEP-0060 §12 "Content-Based Pubsub
    /// Systems": the subscriber learns which of its filters matched).
    pub name_subids: bool,
    /// `normal` or `headline` message.
    pub kind: NotificationType,
    /// Add a `<body/>` summary (`pubsub#include_body`).
    pub include_body: bool,
    /// The collections it comes through (XEP-0248 §notify: SHIM `Collection` headers), in
    /// NodeID order, the root being the empty NodeID; empty when it comes only through
    /// the node's own subscriptions.
    pub collections: Vec<String>,
    /// What happened; shared by every recipient of the same event (a fan-out to many
    /// subscribers copies no payload).
    pub event: std::sync::Arc<Event>,
}

/// What a notification reports (§7.1.2, §7.2.2, §8.2.5.5, §8.4.2, §8.5.2, §8.8.4;
/// XEP-0248 §notify-nodes and §notify-associate-dissociate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Published items; payloads stripped to empty strings when `deliver_payloads` is off.
    Items {
        items: Vec<Item>,
        with_payload: bool,
        /// Each item goes with its publisher ([`Item::shown_publisher`]), where replies go
        /// (`pubsub#itemreply`, see [`crate::NodeConfig::shows_publisher`]).
        with_publisher: bool,
    },
    /// Retracted ItemIDs.
    Retract { ids: Vec<String> },
    /// All items purged.
    Purge,
    /// The node was deleted.
    Delete { redirect: Option<String> },
    /// The node was created (to the collections above it).
    Create,
    /// `child` was associated with the notification's node, a collection (`associate`),
    /// or dissociated from it.
    Collection { child: String, associate: bool },
    /// The node was reconfigured; the configuration is included when `deliver_payloads` is on.
    Configuration { config: Option<NodeConfig> },
    /// A subscription changed state. When the state is `pending` and the recipient is an
    /// owner rather than the subscriber, it is an authorization request (§8.6): the
    /// component renders it as the `pubsub#subscribe_authorization` form.
    Subscription {
        jid: Jid,
        state: SubscriptionState,
        subid: Option<String>,
        expiry: Option<Millis>,
    },
}

/// The result of one handled request: the reply plus the notifications to send once the
/// change is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The IQ result payload.
    pub reply: Reply,
    /// Messages to send, in order.
    pub notifications: Vec<Notification>,
}

impl Outcome {
    /// An outcome with a reply and nothing to send.
    pub fn reply(reply: Reply) -> Self {
        Outcome {
            reply,
            notifications: Vec::new(),
        }
    }
}
