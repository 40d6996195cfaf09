//! The §8.6 subscription authorization form (to an owner, and submitted back) and the
//! §8.7 get-pending forms.

use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};

use super::super::codec::NS_SUBSCRIBE_AUTHORIZATION;
use super::{form, labelled, parse_bool, single, submitted, text};

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
