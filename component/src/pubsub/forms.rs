//! Data forms (XEP-0004) ↔ engine types: node configuration (§16.4.4 `pubsub#node_config`),
//! publish-options preconditions (§7.1.5), subscription options (§16.4.2
//! `pubsub#subscribe_options`) and node meta-data (§16.4.3 `pubsub#meta-data`, XEP-0128).
//!
//! Submitted forms are read strictly where Roost knows the field: a value it cannot parse is
//! an error, never a silent default. Fields it does not implement are ignored in a node
//! configuration or options form (clients echo whole forms from other services back, and the
//! §16.4 registry is long), but rejected in publish-options, as §7.1.5 requires.

use std::collections::HashSet;
use std::str::FromStr;

use minidom::Element;

use roost_nodes::request::NodeMeta;
use roost_nodes::{
    AccessModel, Error, ItemReply, MaxItems, NodeConfig, NodeConfigPatch, NotificationType,
    PublishModel, SendLastPublished, Show, SubOptions, SubOptionsPatch,
};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::ns;

use super::{
    format_datetime, parse_datetime, NS_META_DATA, NS_PUBLISH_OPTIONS, NS_SUBSCRIBE_AUTHORIZATION,
    NS_SUBSCRIBE_OPTIONS,
};

/// Access models offered in the configuration form: the ones the engine always implements.
/// `presence` and `roster` are added by [`offer_roster_models`] on a connection whose
/// server grants roster access (XEP-0356). Others still parse (the engine answers
/// `unsupported-access-model`).
const OFFERED_ACCESS: &[AccessModel] = &[
    AccessModel::Open,
    AccessModel::Authorize,
    AccessModel::Whitelist,
];

// ---------------------------------------------------------------------------------------
// Building forms

fn labelled(var: &str, type_: FieldType, label: &str) -> Field {
    let mut f = Field::new(var, type_);
    f.label = Some(label.to_owned());
    f
}

fn boolean(var: &str, label: &str, value: bool) -> Field {
    labelled(var, FieldType::Boolean, label).with_value(if value { "1" } else { "0" })
}

fn text(var: &str, label: &str, value: &str) -> Field {
    let f = labelled(var, FieldType::TextSingle, label);
    if value.is_empty() {
        f
    } else {
        f.with_value(value)
    }
}

fn list_single(var: &str, label: &str, options: &[(&str, Option<&str>)], value: &str) -> Field {
    let mut f = labelled(var, FieldType::ListSingle, label).with_value(value);
    f.options = options
        .iter()
        .map(|(v, l)| Option_ {
            label: l.map(str::to_owned),
            value: (*v).to_owned(),
        })
        .collect();
    f
}

fn plain_options<T: Copy>(
    all: &[T],
    s: impl Fn(T) -> &'static str,
) -> Vec<(&'static str, Option<&'static str>)> {
    all.iter().map(|v| (s(*v), None)).collect()
}

fn form(type_: DataFormType, form_type: &str, fields: Vec<Field>) -> DataForm {
    // DataForm::new panics on type cancel; never called with it.
    debug_assert!(type_ != DataFormType::Cancel);
    DataForm::new(type_, form_type, fields)
}

/// The node configuration form (§8.2.1 example 140, §16.4.4): `type='form'` for an owner to
/// fill, `type='result'` inside configuration notifications (example 151).
pub(crate) fn node_config_form(c: &NodeConfig, type_: DataFormType) -> DataForm {
    let mut access: Vec<AccessModel> = OFFERED_ACCESS.to_vec();
    if !access.contains(&c.access_model) {
        access.push(c.access_model);
    }
    let max_items = match c.max_items {
        MaxItems::Count(n) => n.to_string(),
        MaxItems::Max => "max".to_owned(),
    };
    let fields = vec![
        text("pubsub#title", "A friendly name for the node", &c.title),
        text("pubsub#description", "A description of the node", &c.description),
        text(
            "pubsub#type",
            "The semantic type (namespace) of the payloads of this node",
            &c.payload_type,
        ),
        list_single(
            "pubsub#access_model",
            "Specify the subscriber model",
            &plain_options(&access, AccessModel::as_str),
            c.access_model.as_str(),
        ),
        roster_groups(&c.roster_groups_allowed),
        list_single(
            "pubsub#publish_model",
            "Specify the publisher model",
            &plain_options(PublishModel::ALL, PublishModel::as_str),
            c.publish_model.as_str(),
        ),
        text(
            "pubsub#max_items",
            "Max # of items to persist. `max` for no specific limit other than a server imposed maximum.",
            &max_items,
        ),
        boolean("pubsub#persist_items", "Persist items to storage", c.persist_items),
        boolean(
            "pubsub#deliver_payloads",
            "Whether to deliver payloads with event notifications",
            c.deliver_payloads,
        ),
        boolean(
            "pubsub#deliver_notifications",
            "Whether to deliver event notifications",
            c.deliver_notifications,
        ),
        boolean(
            "pubsub#notify_config",
            "Notify subscribers when the node configuration changes",
            c.notify_config,
        ),
        boolean(
            "pubsub#notify_delete",
            "Notify subscribers when the node is deleted",
            c.notify_delete,
        ),
        boolean(
            "pubsub#notify_retract",
            "Notify subscribers when items are removed from the node",
            c.notify_retract,
        ),
        boolean(
            "pubsub#notify_sub",
            "Notify owners about new subscribers and unsubscribes",
            c.notify_sub,
        ),
        boolean(
            "pubsub#presence_based_delivery",
            "Deliver event notifications only to available users",
            c.presence_based_delivery,
        ),
        list_single(
            "pubsub#send_last_published_item",
            "When to send the last published item",
            &[
                ("never", Some("Never")),
                ("on_sub", Some("When a new subscription is processed")),
                (
                    "on_sub_and_presence",
                    Some("When a new subscription is processed and whenever a subscriber comes online"),
                ),
            ],
            c.send_last_published_item.as_str(),
        ),
        text(
            "pubsub#item_expire",
            "Number of seconds after which to automatically purge items (empty: never)",
            &c.item_expire.map(|s| s.to_string()).unwrap_or_default(),
        ),
        list_single(
            "pubsub#notification_type",
            "Specify the delivery style for event notifications",
            &plain_options(NotificationType::ALL, NotificationType::as_str),
            c.notification_type.as_str(),
        ),
        list_single(
            "pubsub#itemreply",
            "Whether owners or publisher should receive replies to items",
            &plain_options(ItemReply::ALL, ItemReply::as_str),
            c.itemreply.as_str(),
        ),
        text(
            "pubsub#max_payload_size",
            "Max payload size in bytes",
            &c.max_payload_size.to_string(),
        ),
    ];
    form(type_, ns::PUBSUB_CONFIGURE, fields)
}

const ROSTER_GROUPS: &str = "pubsub#roster_groups_allowed";

/// The `pubsub#roster_groups_allowed` field (§16.4.4, example 140) with the node's groups.
/// Always in the form, so that a configuration round-trips; it acts only with the roster
/// access model.
fn roster_groups(groups: &[String]) -> Field {
    let mut f = labelled(
        ROSTER_GROUPS,
        FieldType::ListMulti,
        "Roster groups allowed to subscribe",
    );
    f.values = groups.to_vec();
    f
}

/// Adds the `presence` and `roster` access models to the options of a configuration form
/// inside a reply payload: done by the connection when the server grants roster access,
/// since only then can those models be honoured. A payload without such a form is left as
/// it is.
pub(crate) fn offer_roster_models(payload: &mut Element) {
    let Some(configure) = payload
        .children_mut()
        .find(|c| c.name() == "configure" || c.name() == "default")
    else {
        return;
    };
    let Some(x) = configure.children_mut().find(|c| c.is("x", ns::DATA_FORMS)) else {
        return;
    };
    let Ok(mut form) = DataForm::try_from(x.clone()) else {
        return;
    };
    for f in form.fields.iter_mut() {
        if f.var.as_deref() == Some("pubsub#access_model") {
            for m in [AccessModel::Presence, AccessModel::Roster] {
                if !f.options.iter().any(|o| o.value == m.as_str()) {
                    f.options.push(Option_ {
                        label: None,
                        value: m.as_str().to_owned(),
                    });
                }
            }
        }
    }
    *x = form.into();
}

/// The subscription options form (§6.3.2 example 56, §16.4.2).
pub(crate) fn sub_options_form(o: &SubOptions, type_: DataFormType) -> DataForm {
    let mut show = labelled(
        "pubsub#show-values",
        FieldType::ListMulti,
        "Select the presence types which are allowed to receive event notifications",
    );
    show.options = [
        (Show::Chat, "Want to Chat"),
        (Show::Online, "Available"),
        (Show::Away, "Away"),
        (Show::Xa, "Extended Away"),
        (Show::Dnd, "Do Not Disturb"),
    ]
    .iter()
    .map(|(s, l)| Option_ {
        label: Some((*l).to_owned()),
        value: s.as_str().to_owned(),
    })
    .collect();
    show.values = o
        .show_values
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    let fields = vec![
        boolean("pubsub#deliver", "Enable delivery?", o.deliver),
        boolean(
            "pubsub#digest",
            "Receive digest notifications (approx. one per day)?",
            o.digest,
        ),
        text(
            "pubsub#digest_frequency",
            "Minimum number of milliseconds between sending any two notification digests",
            &o.digest_frequency.to_string(),
        ),
        text(
            "pubsub#expire",
            "Requested lease expiration (XEP-0082 DateTime; empty: none)",
            &o.expire.map(format_datetime).unwrap_or_default(),
        ),
        boolean(
            "pubsub#include_body",
            "Receive message body in addition to payload?",
            o.include_body,
        ),
        show,
    ];
    form(type_, NS_SUBSCRIBE_OPTIONS, fields)
}

/// The `pubsub#meta-data` form of a node's disco#info (§5.4 example 14, §16.4.3).
pub(crate) fn metadata_form(m: &NodeMeta) -> DataForm {
    let jids = |var: &str, label: &str, list: &[roost_nodes::BareJid]| {
        let mut f = labelled(var, FieldType::JidMulti, label);
        f.values = list.iter().map(|j| j.to_string()).collect();
        f
    };
    let mut creator = labelled("pubsub#creator", FieldType::JidSingle, "Node creator");
    creator.values = vec![m.creator.to_string()];
    let max_items = match m.config.max_items {
        MaxItems::Count(n) => n.to_string(),
        MaxItems::Max => "max".to_owned(),
    };
    let fields = vec![
        text(
            "pubsub#type",
            "Payload semantic type information",
            &m.config.payload_type,
        ),
        creator,
        text(
            "pubsub#creation_date",
            "Creation date",
            &format_datetime(m.created),
        ),
        text("pubsub#title", "A short name for the node", &m.config.title),
        text(
            "pubsub#description",
            "A description of the node",
            &m.config.description,
        ),
        labelled("pubsub#access_model", FieldType::ListSingle, "Access model")
            .with_value(m.config.access_model.as_str()),
        labelled("pubsub#publish_model", FieldType::ListSingle, "Publish model")
            .with_value(m.config.publish_model.as_str()),
        text(
            "pubsub#max_items",
            "Max # of items to persist. `max` for no specific limit other than a server imposed maximum.",
            &max_items,
        ),
        jids("pubsub#owner", "Node owners", &m.owners),
        jids("pubsub#publisher", "Publishers to this node", &m.publishers),
        text(
            "pubsub#num_subscribers",
            "Number of subscribers to this node",
            &m.num_subscribers.to_string(),
        ),
    ];
    form(DataFormType::Result_, NS_META_DATA, fields)
}

/// The §8.6 approval request form (example 189): `pubsub#allow` starts false, so a form
/// submitted unchanged denies nothing by accident but also approves nothing.
pub(crate) fn subscribe_authorization_form(
    node: &str,
    subscriber: &str,
    subid: Option<&str>,
) -> DataForm {
    let mut fields = Vec::new();
    if let Some(subid) = subid {
        fields.push(Field::new("pubsub#subid", FieldType::Hidden).with_value(subid));
    }
    fields.push(text("pubsub#node", "Node ID", node));
    fields.push(
        labelled(
            "pubsub#subscriber_jid",
            FieldType::JidSingle,
            "Subscriber Address",
        )
        .with_value(subscriber),
    );
    fields.push(
        labelled(
            "pubsub#allow",
            FieldType::Boolean,
            "Allow this JID to subscribe to this pubsub node?",
        )
        .with_value("false"),
    );
    let mut f = form(DataFormType::Form, NS_SUBSCRIBE_AUTHORIZATION, fields);
    f.title = Some("PubSub subscriber request".to_owned());
    f.instructions = Some(
        "To approve this entity's subscription request, click the OK button. \
         To deny the request, click the cancel button."
            .to_owned(),
    );
    f
}

/// The get-pending form (§8.7, example 196): the nodes to pick from.
pub(crate) fn pending_nodes_form(nodes: &[String]) -> DataForm {
    let mut field = Field::new("pubsub#node", FieldType::ListSingle);
    field.options = nodes
        .iter()
        .map(|n| Option_ {
            label: None,
            value: n.clone(),
        })
        .collect();
    form(DataFormType::Form, NS_SUBSCRIBE_AUTHORIZATION, vec![field])
}

/// An owner's submitted §8.6 form: (node, subscriber JID, subid, allow).
pub(crate) struct Authorization {
    pub node: String,
    pub jid: String,
    pub subid: Option<String>,
    pub allow: bool,
}

/// Reads a submitted `pubsub#subscribe_authorization` form (examples 190, 192). Node,
/// subscriber and `pubsub#allow` are required; the subid is optional.
pub(crate) fn parse_subscribe_authorization(form: &DataForm) -> Result<Authorization, String> {
    let mut node = None;
    let mut jid = None;
    let mut subid = None;
    let mut allow = None;
    for (var, f) in submitted(form, NS_SUBSCRIBE_AUTHORIZATION, true)? {
        let v = single(f).map_err(|e| format!("{var} {e}"))?;
        match var {
            "pubsub#node" => node = Some(v.to_owned()),
            "pubsub#subscriber_jid" => jid = Some(v.to_owned()),
            "pubsub#subid" => subid = Some(v.to_owned()).filter(|s| !s.is_empty()),
            "pubsub#allow" => {
                allow = Some(parse_bool(v).map_err(|e| format!("pubsub#allow: {e}"))?)
            }
            _ => {}
        }
    }
    Ok(Authorization {
        node: node
            .filter(|n| !n.is_empty())
            .ok_or("pubsub#node is required")?,
        jid: jid
            .filter(|j| !j.is_empty())
            .ok_or("pubsub#subscriber_jid is required")?,
        subid,
        allow: allow.ok_or("pubsub#allow is required")?,
    })
}

/// The node picked in a submitted get-pending form (§8.7, example 199). Clients often
/// leave FORM_TYPE out of this one (the XEP's own example does), so it is optional.
pub(crate) fn parse_pending_node(form: &DataForm) -> Result<String, String> {
    for (var, f) in submitted(form, NS_SUBSCRIBE_AUTHORIZATION, false)? {
        if var == "pubsub#node" {
            let v = single(f).map_err(|e| format!("{var} {e}"))?;
            if !v.is_empty() {
                return Ok(v.to_owned());
            }
        }
    }
    Err("pubsub#node is required".to_owned())
}

// ---------------------------------------------------------------------------------------
// Reading submitted forms

/// Checks the form is a submission with the expected FORM_TYPE (`required`: must be
/// present) and returns its other fields, rejecting a var given twice.
fn submitted<'f>(
    form: &'f DataForm,
    form_type: &str,
    required: bool,
) -> Result<Vec<(&'f str, &'f Field)>, String> {
    if form.type_ != DataFormType::Submit {
        return Err("the form must be of type 'submit'".to_owned());
    }
    match form.form_type() {
        Some(t) if t != form_type => return Err(format!("FORM_TYPE must be {form_type}")),
        None if required => return Err(format!("FORM_TYPE {form_type} is required")),
        _ => {}
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in &form.fields {
        if f.is_form_type(&form.type_) {
            continue;
        }
        let Some(var) = f.var.as_deref() else {
            continue; // fixed fields carry no data
        };
        if !seen.insert(var) {
            return Err(format!("field {var} given twice"));
        }
        out.push((var, f));
    }
    Ok(out)
}

/// The one value of a single-valued field; none reads as empty.
fn single(f: &Field) -> Result<&str, String> {
    match f.values.as_slice() {
        [] => Ok(""),
        [v] => Ok(v.trim()),
        _ => Err("takes a single value".to_owned()),
    }
}

/// XEP-0004 §3.3 boolean: 1/0/true/false.
fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(format!("{v:?} is not a boolean")),
    }
}

fn parse_u64(v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("{v:?} is not a non-negative integer"))
}

fn parse_enum<T: FromStr>(v: &str) -> Result<T, String> {
    v.parse::<T>()
        .map_err(|_| format!("{v:?} is not an allowed value"))
}

/// The node_config vars Roost reads.
const CONFIG_VARS: &[&str] = &[
    "pubsub#title",
    "pubsub#description",
    "pubsub#type",
    "pubsub#access_model",
    ROSTER_GROUPS,
    "pubsub#publish_model",
    "pubsub#max_items",
    "pubsub#persist_items",
    "pubsub#deliver_payloads",
    "pubsub#deliver_notifications",
    "pubsub#notify_config",
    "pubsub#notify_delete",
    "pubsub#notify_retract",
    "pubsub#notify_sub",
    "pubsub#presence_based_delivery",
    "pubsub#send_last_published_item",
    "pubsub#item_expire",
    "pubsub#notification_type",
    "pubsub#itemreply",
    "pubsub#max_payload_size",
    "pubsub#node_type",
];

/// Applies one node_config field to `patch`. `Ok(false)`: the var is not one Roost knows.
fn apply_config_field(patch: &mut NodeConfigPatch, var: &str, f: &Field) -> Result<bool, String> {
    if !CONFIG_VARS.contains(&var) {
        return Ok(false);
    }
    if var == ROSTER_GROUPS {
        // list-multi: every value is a group; empty values mean nothing.
        let mut groups: Vec<String> = f
            .values
            .iter()
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect();
        groups.sort();
        groups.dedup();
        patch.roster_groups_allowed = Some(groups);
        return Ok(true);
    }
    let v = single(f)?;
    match var {
        "pubsub#title" => patch.title = Some(v.to_owned()),
        "pubsub#description" => patch.description = Some(v.to_owned()),
        "pubsub#type" => patch.payload_type = Some(v.to_owned()),
        "pubsub#access_model" => patch.access_model = Some(parse_enum(v)?),
        "pubsub#publish_model" => patch.publish_model = Some(parse_enum(v)?),
        "pubsub#max_items" => {
            patch.max_items = Some(if v == "max" {
                MaxItems::Max
            } else {
                MaxItems::Count(parse_u64(v)?)
            })
        }
        "pubsub#persist_items" => patch.persist_items = Some(parse_bool(v)?),
        "pubsub#deliver_payloads" => patch.deliver_payloads = Some(parse_bool(v)?),
        "pubsub#deliver_notifications" => patch.deliver_notifications = Some(parse_bool(v)?),
        "pubsub#notify_config" => patch.notify_config = Some(parse_bool(v)?),
        "pubsub#notify_delete" => patch.notify_delete = Some(parse_bool(v)?),
        "pubsub#notify_retract" => patch.notify_retract = Some(parse_bool(v)?),
        "pubsub#notify_sub" => patch.notify_sub = Some(parse_bool(v)?),
        "pubsub#presence_based_delivery" => patch.presence_based_delivery = Some(parse_bool(v)?),
        "pubsub#send_last_published_item" => {
            patch.send_last_published_item = Some(parse_enum::<SendLastPublished>(v)?)
        }
        // Empty or `max` (example 140's label): items never expire.
        "pubsub#item_expire" => {
            patch.item_expire = Some(if v.is_empty() || v == "max" {
                None
            } else {
                Some(parse_u64(v)?)
            })
        }
        "pubsub#notification_type" => {
            patch.notification_type = Some(parse_enum::<NotificationType>(v)?)
        }
        "pubsub#itemreply" => patch.itemreply = Some(parse_enum::<ItemReply>(v)?),
        "pubsub#max_payload_size" => patch.max_payload_size = Some(parse_u64(v)?),
        // Every Roost node is a leaf.
        "pubsub#node_type" if v.is_empty() || v == "leaf" => {}
        "pubsub#node_type" => return Err("only leaf nodes are supported".to_owned()),
        _ => return Ok(false),
    }
    Ok(true)
}

/// A submitted `pubsub#node_config` form (create-and-configure §8.1.3, configure §8.2.4)
/// as a patch. Bad values are `not-acceptable` (example 149); unknown fields are ignored.
pub(crate) fn parse_node_config(form: &DataForm) -> Result<NodeConfigPatch, Error> {
    let fields = submitted(form, ns::PUBSUB_CONFIGURE, false).map_err(Error::BadRequest)?;
    let mut patch = NodeConfigPatch::default();
    for (var, f) in fields {
        if var == "pubsub#node_type" && !matches!(single(f), Ok("" | "leaf")) {
            return Err(Error::Unsupported("collections"));
        }
        apply_config_field(&mut patch, var, f)
            .map_err(|e| Error::InvalidConfig(format!("{var}: {e}")))?;
    }
    Ok(patch)
}

/// A `pubsub#publish-options` form (§7.1.5) as preconditions. An unknown field or a value
/// Roost cannot compare is a precondition that cannot be met.
pub(crate) fn parse_publish_options(form: &DataForm) -> Result<NodeConfigPatch, Error> {
    let fields = submitted(form, NS_PUBLISH_OPTIONS, true).map_err(Error::BadRequest)?;
    let mut patch = NodeConfigPatch::default();
    for (var, f) in fields {
        match apply_config_field(&mut patch, var, f) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                return Err(Error::PreconditionNotMet {
                    field: var.to_owned(),
                })
            }
        }
    }
    Ok(patch)
}

/// A submitted `pubsub#subscribe_options` form (§6.3.5, §6.3.7) as a patch. Anything Roost
/// cannot honour is `invalid-options` (example 66).
pub(crate) fn parse_sub_options(form: &DataForm) -> Result<SubOptionsPatch, Error> {
    let fields = submitted(form, NS_SUBSCRIBE_OPTIONS, false).map_err(Error::InvalidOptions)?;
    let mut patch = SubOptionsPatch::default();
    for (var, f) in fields {
        let bad = |e: String| Error::InvalidOptions(format!("{var}: {e}"));
        match var {
            "pubsub#show-values" => {
                let shows = f
                    .values
                    .iter()
                    .map(|v| parse_enum::<Show>(v.trim()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(bad)?;
                patch.show_values = Some(shows);
            }
            _ => {
                let v = single(f).map_err(bad)?;
                match var {
                    "pubsub#deliver" => patch.deliver = Some(parse_bool(v).map_err(bad)?),
                    "pubsub#digest" => patch.digest = Some(parse_bool(v).map_err(bad)?),
                    "pubsub#digest_frequency" => {
                        patch.digest_frequency = Some(parse_u64(v).map_err(bad)?)
                    }
                    "pubsub#include_body" => patch.include_body = Some(parse_bool(v).map_err(bad)?),
                    // A lease end as DateTime; empty removes it. `presence` leases (§12.18)
                    // are not implemented.
                    "pubsub#expire" if v.is_empty() => patch.expire = Some(None),
                    "pubsub#expire" => {
                        let at = parse_datetime(v)
                            .ok_or_else(|| bad(format!("{v:?} is not an XEP-0082 DateTime")))?;
                        patch.expire = Some(Some(at));
                    }
                    _ => {} // not implemented by Roost: ignored, see the module doc
                }
            }
        }
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minidom::Element;

    fn parse_form(xml: &str) -> DataForm {
        DataForm::try_from(xml.parse::<Element>().unwrap()).unwrap()
    }

    /// A form as an owner's client sends it back: every field's values, type submit.
    fn resubmit(form: &DataForm) -> DataForm {
        let mut f = form.clone();
        f.type_ = DataFormType::Submit;
        for field in &mut f.fields {
            field.options.clear();
            field.label = None;
        }
        // Through XML, as it would arrive.
        let e: Element = f.into();
        DataForm::try_from(e).unwrap()
    }

    fn sample_config() -> NodeConfig {
        NodeConfig {
            title: "Princely Musings (Atom)".into(),
            description: "Updates for Hamlet's Princely Musings weblog.".into(),
            payload_type: "http://www.w3.org/2005/Atom".into(),
            access_model: AccessModel::Whitelist,
            roster_groups_allowed: vec!["Family".into(), "Friends".into()],
            publish_model: PublishModel::Open,
            max_items: MaxItems::Max,
            persist_items: false,
            deliver_payloads: false,
            deliver_notifications: true,
            notify_config: true,
            notify_delete: true,
            notify_retract: true,
            notify_sub: true,
            presence_based_delivery: true,
            send_last_published_item: SendLastPublished::OnSubAndPresence,
            item_expire: Some(604_800),
            notification_type: NotificationType::Normal,
            itemreply: ItemReply::Publisher,
            max_payload_size: 1028,
        }
    }

    fn apply(c: &NodeConfig, p: NodeConfigPatch) -> NodeConfig {
        let mut c = c.clone();
        macro_rules! set { ($($f:ident),*) => { $( if let Some(v) = p.$f { c.$f = v; } )* } }
        set!(
            title,
            description,
            payload_type,
            access_model,
            roster_groups_allowed,
            publish_model,
            max_items,
            persist_items,
            deliver_payloads,
            deliver_notifications,
            notify_config,
            notify_delete,
            notify_retract,
            notify_sub,
            presence_based_delivery,
            send_last_published_item,
            item_expire,
            notification_type,
            itemreply,
            max_payload_size
        );
        c
    }

    #[test]
    fn node_config_round_trip() {
        for config in [NodeConfig::default(), sample_config()] {
            let form = node_config_form(&config, DataFormType::Form);
            assert_eq!(form.form_type(), Some(ns::PUBSUB_CONFIGURE));
            let patch = parse_node_config(&resubmit(&form)).unwrap();
            // Every field is in the form, so the patch alone rebuilds the configuration.
            assert_eq!(apply(&NodeConfig::default(), patch.clone()), config);
            assert_eq!(apply(&sample_config(), patch), config);
        }
    }

    #[test]
    fn node_config_form_field_types() {
        let form = node_config_form(&NodeConfig::default(), DataFormType::Form);
        let get = |v: &str| {
            form.fields
                .iter()
                .find(|f| f.var.as_deref() == Some(v))
                .unwrap()
        };
        assert_eq!(get("pubsub#persist_items").type_, FieldType::Boolean);
        assert_eq!(get("pubsub#access_model").type_, FieldType::ListSingle);
        assert_eq!(get("pubsub#access_model").options.len(), 3);
        assert_eq!(get("pubsub#max_items").type_, FieldType::TextSingle);
        assert!(form
            .fields
            .iter()
            .all(|f| f.label.is_some() || f.var.as_deref() == Some("FORM_TYPE")));
    }

    #[test]
    fn node_config_example_137() {
        // XEP-0060 example 137 (create and configure), the <x/> part.
        let form = parse_form(
            "<x xmlns='jabber:x:data' type='submit'>
          <field var='FORM_TYPE' type='hidden'>
            <value>http://jabber.org/protocol/pubsub#node_config</value>
          </field>
          <field var='pubsub#title'><value>Princely Musings (Atom)</value></field>
          <field var='pubsub#deliver_notifications'><value>1</value></field>
          <field var='pubsub#deliver_payloads'><value>1</value></field>
          <field var='pubsub#persist_items'><value>1</value></field>
          <field var='pubsub#max_items'><value>10</value></field>
          <field var='pubsub#item_expire'><value>604800</value></field>
          <field var='pubsub#access_model'><value>open</value></field>
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
        </x>",
        );
        let p = parse_node_config(&form).unwrap();
        assert_eq!(p.title.as_deref(), Some("Princely Musings (Atom)"));
        assert_eq!(p.max_items, Some(MaxItems::Count(10)));
        assert_eq!(p.item_expire, Some(Some(604_800)));
        assert_eq!(p.presence_based_delivery, Some(false));
        assert_eq!(p.access_model, Some(AccessModel::Open));
        assert_eq!(
            p.payload_type.as_deref(),
            Some("http://www.w3.org/2005/Atom")
        );
        assert_eq!(p.itemreply, None);
    }

    fn config_with(field: &str) -> DataForm {
        parse_form(&format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/protocol/pubsub#node_config</value></field>{field}</x>"
        ))
    }

    #[test]
    fn node_config_bad_values() {
        for f in [
            "<field var='pubsub#access_model'><value>bogus</value></field>",
            "<field var='pubsub#max_items'><value>x</value></field>",
            "<field var='pubsub#max_items'><value>-1</value></field>",
            "<field var='pubsub#persist_items'><value>yes</value></field>",
            "<field var='pubsub#persist_items'/>",
            "<field var='pubsub#item_expire'><value>1h</value></field>",
            "<field var='pubsub#title'><value>a</value><value>b</value></field>",
        ] {
            match parse_node_config(&config_with(f)) {
                Err(Error::InvalidConfig(_)) => {}
                other => panic!("{f}: {other:?}"),
            }
        }
        assert_eq!(
            parse_node_config(&config_with(
                "<field var='pubsub#node_type'><value>collection</value></field>"
            )),
            Err(Error::Unsupported("collections"))
        );
        // Duplicate var, wrong FORM_TYPE, wrong form type: bad-request.
        assert!(matches!(
            parse_node_config(&config_with(
                "<field var='pubsub#title'/><field var='pubsub#title'/>"
            )),
            Err(Error::BadRequest(_))
        ));
        let wrong = parse_form(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>urn:other</value></field></x>",
        );
        assert!(matches!(
            parse_node_config(&wrong),
            Err(Error::BadRequest(_))
        ));
        let not_submit = node_config_form(&NodeConfig::default(), DataFormType::Form);
        assert!(matches!(
            parse_node_config(&not_submit),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn node_config_lenient_values() {
        let p = parse_node_config(&config_with(
            "<field var='pubsub#max_items'><value>max</value></field>\
             <field var='pubsub#notify_sub'><value>true</value></field>\
             <field var='pubsub#item_expire'/>\
             <field var='pubsub#title'/>\
             <field var='pubsub#node_type'><value>leaf</value></field>",
        ))
        .unwrap();
        assert_eq!(p.max_items, Some(MaxItems::Max));
        assert_eq!(p.notify_sub, Some(true));
        assert_eq!(p.item_expire, Some(None));
        assert_eq!(p.title.as_deref(), Some(""));
    }

    #[test]
    fn publish_options_example_114() {
        // XEP-0060 example 114, the <x/> part.
        let form = parse_form(
            "<x xmlns='jabber:x:data' type='submit'>
        <field var='FORM_TYPE' type='hidden'>
          <value>http://jabber.org/protocol/pubsub#publish-options</value>
        </field>
        <field var='pubsub#access_model'>
          <value>presence</value>
        </field>
      </x>",
        );
        let p = parse_publish_options(&form).unwrap();
        assert_eq!(p.access_model, Some(AccessModel::Presence));
        let unknown = parse_form(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>http://jabber.org/protocol/pubsub#publish-options</value></field>\
             <field var='pubsub#frobnicate'><value>1</value></field></x>",
        );
        assert_eq!(
            parse_publish_options(&unknown),
            Err(Error::PreconditionNotMet {
                field: "pubsub#frobnicate".into()
            })
        );
        let no_form_type = parse_form(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='pubsub#access_model'><value>open</value></field></x>",
        );
        assert!(matches!(
            parse_publish_options(&no_form_type),
            Err(Error::BadRequest(_))
        ));
    }

    #[test]
    fn sub_options_example_64() {
        // XEP-0060 example 64, the <x/> part.
        let form = parse_form(
            "<x xmlns='jabber:x:data' type='submit'>
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
      </x>",
        );
        let p = parse_sub_options(&form).unwrap();
        assert_eq!(
            p,
            SubOptionsPatch {
                deliver: Some(true),
                digest: Some(false),
                digest_frequency: None,
                expire: None,
                include_body: Some(false),
                show_values: Some(vec![Show::Chat, Show::Online, Show::Away]),
                filter: None,
            }
        );
    }

    #[test]
    fn sub_options_round_trip_and_errors() {
        let opts = SubOptions {
            deliver: false,
            digest: true,
            digest_frequency: 3_600_000,
            expire: Some(1_059_519_370_000),
            include_body: true,
            show_values: vec![Show::Dnd],
            filter: None,
        };
        let form = sub_options_form(&opts, DataFormType::Form);
        let p = parse_sub_options(&resubmit(&form)).unwrap();
        assert_eq!(p.deliver, Some(false));
        assert_eq!(p.digest, Some(true));
        assert_eq!(p.digest_frequency, Some(3_600_000));
        assert_eq!(p.expire, Some(Some(1_059_519_370_000)));
        assert_eq!(p.include_body, Some(true));
        assert_eq!(p.show_values, Some(vec![Show::Dnd]));
        let p = parse_sub_options(&resubmit(&sub_options_form(
            &SubOptions::default(),
            DataFormType::Form,
        )))
        .unwrap();
        assert_eq!(p.expire, Some(None));

        let with = |field: &str| {
            parse_form(&format!(
                "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
                 <value>http://jabber.org/protocol/pubsub#subscribe_options</value></field>{field}</x>"
            ))
        };
        for f in [
            "<field var='pubsub#deliver'><value>maybe</value></field>",
            "<field var='pubsub#show-values'><value>sleeping</value></field>",
            "<field var='pubsub#expire'><value>presence</value></field>",
            "<field var='pubsub#expire'><value>tomorrow</value></field>",
            "<field var='pubsub#digest_frequency'><value>often</value></field>",
        ] {
            assert!(
                matches!(parse_sub_options(&with(f)), Err(Error::InvalidOptions(_))),
                "{f}"
            );
        }
    }

    #[test]
    fn metadata() {
        let meta = NodeMeta {
            node: "princely_musings".into(),
            config: sample_config(),
            creator: "hamlet@denmark.lit".parse().unwrap(),
            created: 1_059_519_370_000,
            owners: vec!["hamlet@denmark.lit".parse().unwrap()],
            publishers: vec![
                "hamlet@denmark.lit".parse().unwrap(),
                "horatio@denmark.lit".parse().unwrap(),
            ],
            num_subscribers: 1066,
        };
        let form = metadata_form(&meta);
        assert_eq!(form.type_, DataFormType::Result_);
        assert_eq!(form.form_type(), Some(NS_META_DATA));
        let get = |v: &str| {
            form.fields
                .iter()
                .find(|f| f.var.as_deref() == Some(v))
                .unwrap()
        };
        assert_eq!(get("pubsub#creation_date").values, ["2003-07-29T22:56:10Z"]);
        assert_eq!(get("pubsub#owner").type_, FieldType::JidMulti);
        assert_eq!(get("pubsub#publisher").values.len(), 2);
        assert_eq!(get("pubsub#num_subscribers").values, ["1066"]);
        assert_eq!(get("pubsub#access_model").values, ["whitelist"]);
        assert_eq!(get("pubsub#max_items").values, ["max"]);
    }
}
