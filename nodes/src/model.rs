//! Nodes, items, subscriptions and affiliations, named as XEP-0060 names them.

use crate::{BareJid, Jid, Millis};
use std::fmt;
use std::str::FromStr;

/// Declares an enum whose variants map one-to-one onto XEP-0060 wire values.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The value as XEP-0060 writes it on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s { $($s => Ok($name::$var),)+ _ => Err(UnknownValue(s.to_owned())) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

/// A wire value that none of an enum's variants spells.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownValue(pub String);

wire_enum! {
    /// An entity's affiliation with a node (§4.1).
    Affiliation {
        Owner = "owner",
        Publisher = "publisher",
        PublishOnly = "publish-only",
        Member = "member",
        None = "none",
        Outcast = "outcast",
    }
}

wire_enum! {
    /// The state of one subscription (§4.2).
    SubscriptionState {
        None = "none",
        Pending = "pending",
        Unconfigured = "unconfigured",
        Subscribed = "subscribed",
    }
}

wire_enum! {
    /// Who may subscribe and retrieve items (§4.5). Presence and roster need the owners'
    /// rosters: the engine accepts them only while it has roster access (see
    /// [`crate::roster::RosterTable::granted`]).
    AccessModel {
        Open = "open",
        Whitelist = "whitelist",
        Authorize = "authorize",
        Presence = "presence",
        Roster = "roster",
    }
}

wire_enum! {
    /// Who may publish (`pubsub#publish_model`).
    PublishModel {
        Publishers = "publishers",
        Subscribers = "subscribers",
        Open = "open",
    }
}

wire_enum! {
    /// When the last published item is sent to a subscriber (`pubsub#send_last_published_item`).
    SendLastPublished {
        Never = "never",
        OnSub = "on_sub",
        OnSubAndPresence = "on_sub_and_presence",
    }
}

wire_enum! {
    /// The `type` of notification messages (`pubsub#notification_type`).
    NotificationType {
        Normal = "normal",
        Headline = "headline",
    }
}

wire_enum! {
    /// Who replies to an item go to (`pubsub#itemreply`).
    ItemReply {
        Owner = "owner",
        Publisher = "publisher",
    }
}

wire_enum! {
    /// Whether a node holds items or other nodes (`pubsub#node_type`, XEP-0248).
    NodeType {
        Leaf = "leaf",
        Collection = "collection",
    }
}

wire_enum! {
    /// Who may associate children with a collection
    /// (`pubsub#children_association_policy`, XEP-0248 §configure-collection).
    AssociationPolicy {
        /// Only the collection's owners.
        Owners = "owners",
        /// Owners and the JIDs of `pubsub#children_association_whitelist`.
        Whitelist = "whitelist",
        /// Anyone not banned from the collection.
        All = "all",
    }
}

wire_enum! {
    /// What a subscription to a collection hears of (`pubsub#subscription_type`,
    /// XEP-0248 §subscribe): items published in its nodes, the nodes themselves (created,
    /// deleted, configured, associated, dissociated), or both.
    SubscriptionType {
        Items = "items",
        Nodes = "nodes",
        All = "all",
    }
}

impl SubscriptionType {
    /// Whether it hears of items (published, retracted, purged).
    pub fn items(self) -> bool {
        self != SubscriptionType::Nodes
    }

    /// Whether it hears of nodes (created, deleted, configured, associated, dissociated).
    pub fn nodes(self) -> bool {
        self != SubscriptionType::Items
    }
}

/// How far below a collection a subscription reaches (`pubsub#subscription_depth`,
/// XEP-0248 §subscribe): `Depth(1)` is the collection's children, `All` every descendant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionDepth {
    /// Nodes at most this many associations below the collection.
    Depth(u64),
    /// Every node below the collection.
    All,
}

impl SubscriptionDepth {
    /// Whether a node `distance` associations below reaches the subscription.
    pub fn reaches(self, distance: u64) -> bool {
        match self {
            SubscriptionDepth::Depth(d) => distance <= d,
            SubscriptionDepth::All => true,
        }
    }
}

impl fmt::Display for SubscriptionDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubscriptionDepth::Depth(d) => write!(f, "{d}"),
            SubscriptionDepth::All => f.write_str("all"),
        }
    }
}

impl FromStr for SubscriptionDepth {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, UnknownValue> {
        match s {
            "all" => Ok(SubscriptionDepth::All),
            n => n
                .parse()
                .map(SubscriptionDepth::Depth)
                .map_err(|_| UnknownValue(s.to_owned())),
        }
    }
}

wire_enum! {
    /// A resource's presence `show`, as `pubsub#show-values` lists them; `Online` is plain available.
    Show {
        Away = "away",
        Chat = "chat",
        Dnd = "dnd",
        Online = "online",
        Xa = "xa",
    }
}

/// `pubsub#max_items`: a number, or `max` (the service's cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxItems {
    /// At most this many items are kept.
    Count(u64),
    /// As many as the service's `max_items_per_node` policy allows.
    Max,
}

impl MaxItems {
    /// The effective limit under a service cap.
    pub fn limit(self, cap: u64) -> u64 {
        match self {
            MaxItems::Count(n) => n.min(cap),
            MaxItems::Max => cap,
        }
    }
}

/// The configuration of a node: the XEP-0060 §16.4.4 fields Roost supports, and the
/// XEP-0248 fields of collections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// `pubsub#title`.
    pub title: String,
    /// `pubsub#description`.
    pub description: String,
    /// `pubsub#type`: the namespace of the payloads, empty when unset.
    pub payload_type: String,
    /// `pubsub#access_model`.
    pub access_model: AccessModel,
    /// `pubsub#roster_groups_allowed`: with access model roster, the owners' roster groups
    /// whose members may subscribe and retrieve items.
    pub roster_groups_allowed: Vec<String>,
    /// `pubsub#publish_model`.
    pub publish_model: PublishModel,
    /// `pubsub#max_items`.
    pub max_items: MaxItems,
    /// `pubsub#persist_items`.
    pub persist_items: bool,
    /// `pubsub#deliver_payloads`.
    pub deliver_payloads: bool,
    /// `pubsub#deliver_notifications`.
    pub deliver_notifications: bool,
    /// `pubsub#notify_config`.
    pub notify_config: bool,
    /// `pubsub#notify_delete`.
    pub notify_delete: bool,
    /// `pubsub#notify_retract`.
    pub notify_retract: bool,
    /// `pubsub#notify_sub`.
    pub notify_sub: bool,
    /// `pubsub#presence_based_delivery`.
    pub presence_based_delivery: bool,
    /// `pubsub#send_last_published_item`.
    pub send_last_published_item: SendLastPublished,
    /// `pubsub#item_expire`, in seconds; `None` keeps items until trimmed or retracted.
    pub item_expire: Option<u64>,
    /// `pubsub#notification_type`.
    pub notification_type: NotificationType,
    /// `pubsub#itemreply`.
    pub itemreply: ItemReply,
    /// `pubsub#max_payload_size`, in bytes of serialized XML.
    pub max_payload_size: u64,
    /// `pubsub#node_type` (XEP-0248): a leaf holds items, a collection other nodes.
    pub node_type: NodeType,
    /// `pubsub#collection` (XEP-0248): the collections this node is a child of, in
    /// NodeID order. The association is stored here, on the child, and only here.
    pub collection: Vec<String>,
    /// `pubsub#children` (XEP-0248): the nodes whose `collection` names this one, in
    /// NodeID order. Derived: the engine keeps it from the other nodes' `collection`
    /// and hands it out with the configuration; stores need not keep it.
    pub children: Vec<String>,
    /// `pubsub#children_max` (XEP-0248): at most this many children; `None` is `max`,
    /// the service's cap.
    pub children_max: Option<u64>,
    /// `pubsub#children_association_policy` (XEP-0248).
    pub children_association_policy: AssociationPolicy,
    /// `pubsub#children_association_whitelist` (XEP-0248), with policy `whitelist`.
    pub children_association_whitelist: Vec<BareJid>,
}

impl NodeConfig {
    /// Whether the node's items go out with their publisher ([`Item::shown_publisher`]):
    /// with `pubsub#itemreply = publisher` notifications name it, and §7.1.2.3 then asks for
    /// it "with every other form of item retrieval" too (`<items/>`, pages, last items,
    /// digests).
    pub fn shows_publisher(&self) -> bool {
        self.itemreply == ItemReply::Publisher
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            title: String::new(),
            description: String::new(),
            payload_type: String::new(),
            access_model: AccessModel::Open,
            roster_groups_allowed: Vec::new(),
            publish_model: PublishModel::Publishers,
            max_items: MaxItems::Count(10),
            persist_items: true,
            deliver_payloads: true,
            deliver_notifications: true,
            notify_config: false,
            notify_delete: false,
            notify_retract: false,
            notify_sub: false,
            presence_based_delivery: false,
            send_last_published_item: SendLastPublished::Never,
            item_expire: None,
            notification_type: NotificationType::Headline,
            itemreply: ItemReply::Owner,
            max_payload_size: 64 * 1024,
            node_type: NodeType::Leaf,
            collection: Vec::new(),
            children: Vec::new(),
            children_max: None,
            children_association_policy: AssociationPolicy::Owners,
            children_association_whitelist: Vec::new(),
        }
    }
}

impl NodeConfig {
    /// Whether the node is a collection (XEP-0248).
    pub fn is_collection(&self) -> bool {
        self.node_type == NodeType::Collection
    }
}

/// A partial configuration, as submitted in a `pubsub#node_config` form or as
/// `publish-options` preconditions: every field that was present, typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeConfigPatch {
    #[allow(missing_docs)]
    pub title: Option<String>,
    #[allow(missing_docs)]
    pub description: Option<String>,
    #[allow(missing_docs)]
    pub payload_type: Option<String>,
    #[allow(missing_docs)]
    pub access_model: Option<AccessModel>,
    #[allow(missing_docs)]
    pub roster_groups_allowed: Option<Vec<String>>,
    #[allow(missing_docs)]
    pub publish_model: Option<PublishModel>,
    #[allow(missing_docs)]
    pub max_items: Option<MaxItems>,
    #[allow(missing_docs)]
    pub persist_items: Option<bool>,
    #[allow(missing_docs)]
    pub deliver_payloads: Option<bool>,
    #[allow(missing_docs)]
    pub deliver_notifications: Option<bool>,
    #[allow(missing_docs)]
    pub notify_config: Option<bool>,
    #[allow(missing_docs)]
    pub notify_delete: Option<bool>,
    #[allow(missing_docs)]
    pub notify_retract: Option<bool>,
    #[allow(missing_docs)]
    pub notify_sub: Option<bool>,
    #[allow(missing_docs)]
    pub presence_based_delivery: Option<bool>,
    #[allow(missing_docs)]
    pub send_last_published_item: Option<SendLastPublished>,
    /// `Some(None)` clears the expiry.
    pub item_expire: Option<Option<u64>>,
    #[allow(missing_docs)]
    pub notification_type: Option<NotificationType>,
    #[allow(missing_docs)]
    pub itemreply: Option<ItemReply>,
    #[allow(missing_docs)]
    pub max_payload_size: Option<u64>,
    #[allow(missing_docs)]
    pub node_type: Option<NodeType>,
    /// The new set of parents; the root collection (an empty NodeID) means none.
    pub collection: Option<Vec<String>>,
    /// The new set of children.
    pub children: Option<Vec<String>>,
    /// `Some(None)` is `max`.
    pub children_max: Option<Option<u64>>,
    #[allow(missing_docs)]
    pub children_association_policy: Option<AssociationPolicy>,
    #[allow(missing_docs)]
    pub children_association_whitelist: Option<Vec<BareJid>>,
}

impl NodeConfigPatch {
    /// True when no field was given.
    pub fn is_empty(&self) -> bool {
        *self == NodeConfigPatch::default()
    }
}

/// Per-subscription delivery options (`pubsub#subscribe_options`, §6.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubOptions {
    /// `pubsub#deliver`: false pauses delivery without unsubscribing.
    pub deliver: bool,
    /// `pubsub#digest`.
    pub digest: bool,
    /// `pubsub#digest_frequency`, in milliseconds.
    pub digest_frequency: u64,
    /// `pubsub#expire`: when the subscription lease ends, if it does.
    pub expire: Option<Millis>,
    /// `pubsub#include_body`.
    pub include_body: bool,
    /// `pubsub#show-values`: deliver only while the resource's show is one of these.
    pub show_values: Vec<Show>,
    /// `x-roost#filter`: the content filter (Roost feature `urn:roost:filter:0`, see
    /// [`crate::filter`]), as its canonical text; `None`: every item. Items, retractions,
    /// last items and digests reach the subscription only when the filter matches the
    /// item; news of the node (purge, configuration, deletion) reaches it whatever it says.
    pub filter: Option<String>,
    /// `pubsub#subscription_type` (XEP-0248): what a subscription to a collection hears
    /// of. Meaningless on a leaf.
    pub subscription_type: SubscriptionType,
    /// `pubsub#subscription_depth` (XEP-0248): how far below a collection it reaches.
    /// Meaningless on a leaf.
    pub subscription_depth: SubscriptionDepth,
}

impl Default for SubOptions {
    fn default() -> Self {
        SubOptions {
            deliver: true,
            digest: false,
            digest_frequency: 86_400_000,
            expire: None,
            include_body: false,
            show_values: vec![Show::Online, Show::Chat, Show::Away, Show::Xa, Show::Dnd],
            filter: None,
            // XEP-0248 §subscribe: "nodes" and "1" are the defaults it recommends.
            subscription_type: SubscriptionType::Nodes,
            subscription_depth: SubscriptionDepth::Depth(1),
        }
    }
}

/// A partial set of subscription options, as submitted in a form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubOptionsPatch {
    #[allow(missing_docs)]
    pub deliver: Option<bool>,
    #[allow(missing_docs)]
    pub digest: Option<bool>,
    #[allow(missing_docs)]
    pub digest_frequency: Option<u64>,
    /// `Some(None)` removes the lease.
    pub expire: Option<Option<Millis>>,
    #[allow(missing_docs)]
    pub include_body: Option<bool>,
    #[allow(missing_docs)]
    pub show_values: Option<Vec<Show>>,
    /// `x-roost#filter` as submitted: the engine parses it (an unparsable filter is
    /// [`crate::Error::InvalidFilter`]) and keeps its canonical text; empty or blank
    /// removes the filter.
    pub filter: Option<String>,
    #[allow(missing_docs)]
    pub subscription_type: Option<SubscriptionType>,
    #[allow(missing_docs)]
    pub subscription_depth: Option<SubscriptionDepth>,
}

/// One subscription of one JID (bare or full) to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscribed JID, exactly as it subscribed (bare or full).
    pub jid: Jid,
    /// Service-assigned id, unique per node; the engine also never gives one subscriber
    /// the same subid twice across the service, so the subids that meet in one
    /// notification (a leaf's and its collections', XEP-0248) are distinct.
    pub subid: String,
    /// Subscribed, pending or unconfigured.
    pub state: SubscriptionState,
    /// Delivery options.
    pub options: SubOptions,
}

/// A published item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// ItemID, unique within the node.
    pub id: String,
    /// Position in publish order within the node; strictly increasing. An item published
    /// again under its id gets a new one: this is its modification order (XEP-0413).
    pub seq: u64,
    /// The `seq` its id was first published at, when the item has since been overwritten
    /// by a publish under the same id (`None`: never overwritten, created at `seq`). A
    /// retraction forgets it: the id published again is a new item (XEP-0413 §glossary).
    pub first_seq: Option<u64>,
    /// Who published it (full JID when known).
    pub publisher: Jid,
    /// When it was stored.
    pub published: Millis,
    /// The payload as serialized XML; empty for a notification-only item.
    pub payload: String,
}

impl Item {
    /// Its creation order (XEP-0413 "date of creation"): the seq its id was first
    /// published at in the node.
    pub fn created_seq(&self) -> u64 {
        self.first_seq.unwrap_or(self.seq)
    }

    /// The `publisher` attribute the item carries wherever it goes out with one (see
    /// [`NodeConfig::shows_publisher`]): the bare JID, as in the XEP's examples (§7.1.2.3).
    /// The full JID would tell every subscriber which device the publisher used, and a
    /// reply (what `pubsub#itemreply = publisher` is for) is for the account, not for a
    /// resource that may be gone.
    pub fn shown_publisher(&self) -> Jid {
        Jid::from(self.publisher.to_bare())
    }
}

/// A node's durable record: name, owner-facing metadata and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    /// The NodeID.
    pub name: String,
    /// Service-unique number; items are keyed by it, so a node created again under the
    /// same name after a delete never sees the old node's items.
    pub uid: u64,
    /// Who created it.
    pub creator: BareJid,
    /// When it was created.
    pub created: Millis,
    /// Its configuration.
    pub config: NodeConfig,
}

/// A node's item bookkeeping, small enough to rewrite on every publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemCounters {
    /// How many items the node holds.
    pub count: u64,
    /// The highest `seq` ever given to an item of this node (0: none yet).
    pub last_seq: u64,
}

/// An item as a publisher submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// The ItemID asked for; the service generates one when absent.
    pub id: Option<String>,
    /// Serialized payload XML; `None` for a notification-only publish.
    pub payload: Option<String>,
}
