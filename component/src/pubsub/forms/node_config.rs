//! The node configuration fields (§16.4.4 `pubsub#node_config`) as one table, which the
//! configuration form (§8.2), the meta-data form (§5.4, §16.4.3) and the publish-options
//! preconditions (§7.1.5) all read.
//!
//! A new configuration field is a row here (and its place in [`META_DATA`] if the meta-data
//! form shows it) plus the field itself in `roost_nodes::NodeConfig` and its patch.

use roost_nodes::request::NodeMeta;
use roost_nodes::{
    AccessModel, AssociationPolicy, BareJid, Error, ItemReply, MaxItems, NodeConfig,
    NodeConfigPatch, NodeType, NotificationType, PublishModel, SendLastPublished,
};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::ns;

use super::super::codec::{format_datetime, NS_META_DATA, NS_PUBLISH_OPTIONS};
use super::{form, labelled, parse_bool, parse_enum, parse_u64, single, submitted};

/// The options of a list-single field: values, and their labels where they have one.
type Options = Vec<(&'static str, Option<&'static str>)>;

/// How one field's value is held, shown and read back.
enum Value {
    /// text-single; no `<value/>` when empty.
    Text {
        get: fn(&NodeConfig) -> &str,
        set: fn(&mut NodeConfigPatch, String),
    },
    /// boolean, `1` or `0`.
    Boolean {
        get: fn(&NodeConfig) -> bool,
        set: fn(&mut NodeConfigPatch, bool),
    },
    /// A non-negative integer in a text-single.
    Count {
        get: fn(&NodeConfig) -> u64,
        set: fn(&mut NodeConfigPatch, u64),
    },
    /// list-single of an enumeration.
    Choice {
        get: fn(&NodeConfig) -> &'static str,
        /// The options offered, with labels, given the node's configuration.
        options: fn(&NodeConfig) -> Options,
        set: fn(&mut NodeConfigPatch, &str) -> Result<(), String>,
    },
    /// Any other shape: the field's type, its values, and how submitted values are read.
    Custom {
        type_: FieldType,
        get: fn(&NodeConfig) -> Vec<String>,
        set: fn(&mut NodeConfigPatch, &[String]) -> Result<(), String>,
    },
}

/// One `pubsub#node_config` field.
struct ConfigField {
    var: &'static str,
    /// Its label in the configuration form.
    label: &'static str,
    /// Its label in the meta-data form, for the fields that form shows.
    meta_label: Option<&'static str>,
    value: Value,
}

const MAX_ITEMS_LABEL: &str =
    "Max # of items to persist. `max` for no specific limit other than a server imposed maximum.";

/// Every node configuration field Roost implements, in the order of the configuration form.
const NODE_CONFIG: &[ConfigField] = &[
    ConfigField {
        var: "pubsub#title",
        label: "A friendly name for the node",
        meta_label: Some("A short name for the node"),
        value: Value::Text {
            get: |c| &c.title,
            set: |p, v| p.title = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#description",
        label: "A description of the node",
        meta_label: Some("A description of the node"),
        value: Value::Text {
            get: |c| &c.description,
            set: |p, v| p.description = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#type",
        label: "The semantic type (namespace) of the payloads of this node",
        meta_label: Some("Payload semantic type information"),
        value: Value::Text {
            get: |c| &c.payload_type,
            set: |p, v| p.payload_type = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#access_model",
        label: "Specify the subscriber model",
        meta_label: Some("Access model"),
        value: Value::Choice {
            get: |c| c.access_model.as_str(),
            options: access_options,
            set: |p, v| {
                p.access_model = Some(parse_enum(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: ROSTER_GROUPS,
        label: "Roster groups allowed to subscribe",
        meta_label: None,
        // Always in the form, so that a configuration round-trips; it acts only with the
        // roster access model. Every value is a group; empty values mean nothing.
        value: Value::Custom {
            type_: FieldType::ListMulti,
            get: |c| c.roster_groups_allowed.clone(),
            set: |p, values| {
                let mut groups: Vec<String> = values
                    .iter()
                    .map(|g| g.trim().to_owned())
                    .filter(|g| !g.is_empty())
                    .collect();
                groups.sort();
                groups.dedup();
                p.roster_groups_allowed = Some(groups);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#publish_model",
        label: "Specify the publisher model",
        meta_label: Some("Publish model"),
        value: Value::Choice {
            get: |c| c.publish_model.as_str(),
            options: |_| plain(PublishModel::ALL, PublishModel::as_str),
            set: |p, v| {
                p.publish_model = Some(parse_enum(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#max_items",
        label: MAX_ITEMS_LABEL,
        meta_label: Some(MAX_ITEMS_LABEL),
        value: Value::Custom {
            type_: FieldType::TextSingle,
            get: |c| {
                vec![match c.max_items {
                    MaxItems::Count(n) => n.to_string(),
                    MaxItems::Max => "max".to_owned(),
                }]
            },
            set: |p, values| {
                let v = one(values)?;
                p.max_items = Some(if v == "max" {
                    MaxItems::Max
                } else {
                    MaxItems::Count(parse_u64(v)?)
                });
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#persist_items",
        label: "Persist items to storage",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.persist_items,
            set: |p, v| p.persist_items = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#deliver_payloads",
        label: "Whether to deliver payloads with event notifications",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.deliver_payloads,
            set: |p, v| p.deliver_payloads = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#deliver_notifications",
        label: "Whether to deliver event notifications",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.deliver_notifications,
            set: |p, v| p.deliver_notifications = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#notify_config",
        label: "Notify subscribers when the node configuration changes",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.notify_config,
            set: |p, v| p.notify_config = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#notify_delete",
        label: "Notify subscribers when the node is deleted",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.notify_delete,
            set: |p, v| p.notify_delete = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#notify_retract",
        label: "Notify subscribers when items are removed from the node",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.notify_retract,
            set: |p, v| p.notify_retract = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#notify_sub",
        label: "Notify owners about new subscribers and unsubscribes",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.notify_sub,
            set: |p, v| p.notify_sub = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#presence_based_delivery",
        label: "Deliver event notifications only to available users",
        meta_label: None,
        value: Value::Boolean {
            get: |c| c.presence_based_delivery,
            set: |p, v| p.presence_based_delivery = Some(v),
        },
    },
    ConfigField {
        var: "pubsub#send_last_published_item",
        label: "When to send the last published item",
        meta_label: None,
        value: Value::Choice {
            get: |c| c.send_last_published_item.as_str(),
            options: |_| {
                vec![
                    ("never", Some("Never")),
                    ("on_sub", Some("When a new subscription is processed")),
                    (
                        "on_sub_and_presence",
                        Some(
                            "When a new subscription is processed and whenever a subscriber \
                             comes online",
                        ),
                    ),
                ]
            },
            set: |p, v| {
                p.send_last_published_item = Some(parse_enum::<SendLastPublished>(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#item_expire",
        label: "Number of seconds after which to automatically purge items (empty: never)",
        meta_label: None,
        value: Value::Custom {
            type_: FieldType::TextSingle,
            get: |c| c.item_expire.map(|s| s.to_string()).into_iter().collect(),
            set: |p, values| {
                // Empty or `max` (example 140's label): items never expire.
                let v = one(values)?;
                p.item_expire = Some(if v.is_empty() || v == "max" {
                    None
                } else {
                    Some(parse_u64(v)?)
                });
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#notification_type",
        label: "Specify the delivery style for event notifications",
        meta_label: None,
        value: Value::Choice {
            get: |c| c.notification_type.as_str(),
            options: |_| plain(NotificationType::ALL, NotificationType::as_str),
            set: |p, v| {
                p.notification_type = Some(parse_enum::<NotificationType>(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#itemreply",
        label: "Whether owners or publisher should receive replies to items",
        meta_label: None,
        value: Value::Choice {
            get: |c| c.itemreply.as_str(),
            options: |_| plain(ItemReply::ALL, ItemReply::as_str),
            set: |p, v| {
                p.itemreply = Some(parse_enum::<ItemReply>(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#max_payload_size",
        label: "Max payload size in bytes",
        meta_label: None,
        value: Value::Count {
            get: |c| c.max_payload_size,
            set: |p, v| p.max_payload_size = Some(v),
        },
    },
    // XEP-0248 §configure and §owner-default (example 62): a collection's fields.
    ConfigField {
        var: NODE_TYPE,
        label: "Whether the node is a leaf (default) or a collection",
        meta_label: Some("Whether the node is a leaf or a collection"),
        value: Value::Choice {
            get: |c| c.node_type.as_str(),
            options: |_| {
                vec![
                    ("leaf", Some("The node is a leaf node (default)")),
                    ("collection", Some("The node is a collection node")),
                ]
            },
            set: |p, v| {
                p.node_type = Some(parse_enum::<NodeType>(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#collection",
        label: "The collections of which this node is a child",
        meta_label: Some("The collections of which this node is a child"),
        value: Value::Custom {
            type_: FieldType::TextMulti,
            get: |c| c.collection.clone(),
            set: |p, values| {
                p.collection = Some(node_ids(values));
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#children",
        label: "The child nodes (leaf or collection) associated with a collection",
        meta_label: None,
        value: Value::Custom {
            type_: FieldType::TextMulti,
            get: |c| c.children.clone(),
            set: |p, values| {
                p.children = Some(node_ids(values));
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#children_association_policy",
        label: "Who may associate leaf nodes with a collection",
        meta_label: None,
        value: Value::Choice {
            get: |c| c.children_association_policy.as_str(),
            options: |_| {
                vec![
                    (
                        "owners",
                        Some("Only the owners of this node may associate other nodes to this collection"),
                    ),
                    (
                        "whitelist",
                        Some(
                            "Only those on the children association whitelist may associate \
                             other nodes to this collection",
                        ),
                    ),
                    ("all", Some("Anyone may associate nodes with this collection")),
                ]
            },
            set: |p, v| {
                p.children_association_policy = Some(parse_enum::<AssociationPolicy>(v)?);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#children_association_whitelist",
        label: "The list of JIDs that may associate leaf nodes with a collection",
        meta_label: None,
        value: Value::Custom {
            type_: FieldType::JidMulti,
            get: |c| {
                c.children_association_whitelist
                    .iter()
                    .map(|j| j.to_string())
                    .collect()
            },
            set: |p, values| {
                let jids = values
                    .iter()
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        v.parse::<BareJid>()
                            .map_err(|_| format!("{v:?} is not a bare JID"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                p.children_association_whitelist = Some(jids);
                Ok(())
            },
        },
    },
    ConfigField {
        var: "pubsub#children_max",
        label: "The maximum number of child nodes that can be associated with a collection",
        meta_label: None,
        value: Value::Custom {
            type_: FieldType::TextSingle,
            get: |c| vec![c.children_max.map_or("max".to_owned(), |n| n.to_string())],
            set: |p, values| {
                let v = one(values)?;
                p.children_max = Some(if v.is_empty() || v == "max" {
                    None
                } else {
                    Some(parse_u64(v)?)
                });
                Ok(())
            },
        },
    },
];

const ROSTER_GROUPS: &str = "pubsub#roster_groups_allowed";
const NODE_TYPE: &str = "pubsub#node_type";

/// One row of the meta-data form (§5.4 example 14, §16.4.3), in its order.
enum MetaField {
    /// The configuration field of that var, with its meta-data label.
    Config(&'static str),
    Creator,
    CreationDate,
    Owners,
    Publishers,
    NumSubscribers,
}

/// The meta-data form's fields, in order.
const META_DATA: &[MetaField] = &[
    MetaField::Config("pubsub#type"),
    MetaField::Creator,
    MetaField::CreationDate,
    MetaField::Config("pubsub#title"),
    MetaField::Config("pubsub#description"),
    MetaField::Config("pubsub#access_model"),
    MetaField::Config("pubsub#publish_model"),
    MetaField::Config("pubsub#max_items"),
    MetaField::Owners,
    MetaField::Publishers,
    MetaField::NumSubscribers,
];

/// Access models offered in the configuration form: the ones the engine always implements.
/// `presence` and `roster` are added by [`super::offer_roster_models`] on a connection whose
/// server grants roster access (XEP-0356). Others still parse (the engine answers
/// `unsupported-access-model`).
const OFFERED_ACCESS: &[AccessModel] = &[
    AccessModel::Open,
    AccessModel::Authorize,
    AccessModel::Whitelist,
];

/// The offered access models, and the node's own when it is another.
fn access_options(c: &NodeConfig) -> Options {
    let mut access: Vec<AccessModel> = OFFERED_ACCESS.to_vec();
    if !access.contains(&c.access_model) {
        access.push(c.access_model);
    }
    plain(&access, AccessModel::as_str)
}

fn plain<T: Copy>(all: &[T], s: impl Fn(T) -> &'static str) -> Options {
    all.iter().map(|v| (s(*v), None)).collect()
}

/// The NodeIDs of a text-multi field (`pubsub#collection`, `pubsub#children`), without
/// blank lines, in order and without repeats.
fn node_ids(values: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The one value of a single-valued field; none reads as empty.
fn one(values: &[String]) -> Result<&str, String> {
    match values {
        [] => Ok(""),
        [v] => Ok(v.trim()),
        _ => Err("takes a single value".to_owned()),
    }
}

impl ConfigField {
    fn find(var: &str) -> Option<&'static ConfigField> {
        NODE_CONFIG.iter().find(|f| f.var == var)
    }

    /// The field as a form shows it for `c` (with `label`); `None` for fields never shown.
    fn field(&self, c: &NodeConfig, label: &str, with_options: bool) -> Option<Field> {
        let f = match &self.value {
            Value::Text { get, .. } => {
                let f = labelled(self.var, FieldType::TextSingle, label);
                match get(c) {
                    "" => f,
                    v => f.with_value(v),
                }
            }
            Value::Boolean { get, .. } => labelled(self.var, FieldType::Boolean, label)
                .with_value(if get(c) { "1" } else { "0" }),
            Value::Count { get, .. } => {
                labelled(self.var, FieldType::TextSingle, label).with_value(&get(c).to_string())
            }
            Value::Choice { get, options, .. } => {
                let mut f = labelled(self.var, FieldType::ListSingle, label).with_value(get(c));
                if with_options {
                    f.options = options(c)
                        .into_iter()
                        .map(|(v, l)| Option_ {
                            label: l.map(str::to_owned),
                            value: v.to_owned(),
                        })
                        .collect();
                }
                f
            }
            Value::Custom { type_, get, .. } => {
                let mut f = labelled(self.var, type_.clone(), label);
                f.values = get(c);
                f
            }
        };
        Some(f)
    }

    /// Applies the submitted `f` to `patch`.
    fn apply(&self, patch: &mut NodeConfigPatch, f: &Field) -> Result<(), String> {
        match &self.value {
            Value::Text { set, .. } => set(patch, single(f)?.to_owned()),
            Value::Boolean { set, .. } => set(patch, parse_bool(single(f)?)?),
            Value::Count { set, .. } => set(patch, parse_u64(single(f)?)?),
            Value::Choice { set, .. } => set(patch, single(f)?)?,
            Value::Custom { set, .. } => set(patch, &f.values)?,
        }
        Ok(())
    }
}

/// The node configuration form (§8.2.1 example 140, §16.4.4): `type='form'` for an owner to
/// fill, `type='result'` inside configuration notifications (example 151).
pub(crate) fn node_config_form(c: &NodeConfig, type_: DataFormType) -> DataForm {
    let fields = NODE_CONFIG
        .iter()
        .filter_map(|f| f.field(c, f.label, true))
        .collect();
    form(type_, ns::PUBSUB_CONFIGURE, fields)
}

/// The `pubsub#meta-data` form of a node's disco#info (§5.4 example 14, §16.4.3).
pub(crate) fn metadata_form(m: &NodeMeta) -> DataForm {
    let jids = |var: &str, label: &str, list: &[roost_nodes::BareJid]| {
        let mut f = labelled(var, FieldType::JidMulti, label);
        f.values = list.iter().map(|j| j.to_string()).collect();
        f
    };
    let fields = META_DATA
        .iter()
        .filter_map(|row| match row {
            MetaField::Config(var) => {
                let f = ConfigField::find(var)?;
                f.field(&m.config, f.meta_label.unwrap_or(f.label), false)
            }
            MetaField::Creator => Some(
                labelled("pubsub#creator", FieldType::JidSingle, "Node creator")
                    .with_value(&m.creator.to_string()),
            ),
            MetaField::CreationDate => Some(
                labelled(
                    "pubsub#creation_date",
                    FieldType::TextSingle,
                    "Creation date",
                )
                .with_value(&format_datetime(m.created)),
            ),
            MetaField::Owners => Some(jids("pubsub#owner", "Node owners", &m.owners)),
            MetaField::Publishers => Some(jids(
                "pubsub#publisher",
                "Publishers to this node",
                &m.publishers,
            )),
            MetaField::NumSubscribers => Some(
                labelled(
                    "pubsub#num_subscribers",
                    FieldType::TextSingle,
                    "Number of subscribers to this node",
                )
                .with_value(&m.num_subscribers.to_string()),
            ),
        })
        .collect();
    form(DataFormType::Result_, NS_META_DATA, fields)
}

/// A submitted `pubsub#node_config` form (create-and-configure §8.1.3, configure §8.2.4)
/// as a patch. Bad values are `not-acceptable` (example 149); unknown fields are ignored
/// (clients echo whole forms from other services back, and the §16.4 registry is long).
pub(crate) fn parse_node_config(form: &DataForm) -> Result<NodeConfigPatch, Error> {
    let fields = submitted(form, ns::PUBSUB_CONFIGURE, false).map_err(Error::BadRequest)?;
    let mut patch = NodeConfigPatch::default();
    for (var, f) in fields {
        if let Some(field) = ConfigField::find(var) {
            field
                .apply(&mut patch, f)
                .map_err(|e| Error::InvalidConfig(format!("{var}: {e}")))?;
        }
    }
    Ok(patch)
}

/// A `pubsub#publish-options` form (§7.1.5) as preconditions. An unknown field or a value
/// Roost cannot compare is a precondition that cannot be met.
pub(crate) fn parse_publish_options(form: &DataForm) -> Result<NodeConfigPatch, Error> {
    let fields = submitted(form, NS_PUBLISH_OPTIONS, true).map_err(Error::BadRequest)?;
    let mut patch = NodeConfigPatch::default();
    for (var, f) in fields {
        let met = ConfigField::find(var).is_some_and(|field| field.apply(&mut patch, f).is_ok());
        if !met {
            return Err(Error::PreconditionNotMet {
                field: var.to_owned(),
            });
        }
    }
    Ok(patch)
}
