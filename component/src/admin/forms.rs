//! The admin commands' data forms: what they ask, what they answer.

use prometheus_client::metrics::counter::Counter;
use roost_nodes::{NodeMeta, NodeStats, ServiceStats, Subscription};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType};

use super::{Which, MAX_PAGE};
use crate::metrics::Metrics;
use crate::pubsub::{metadata_form, node_config_form};

/// FORM_TYPE of every admin form.
pub const NS_ADMIN: &str = "urn:roost:admin:0";

fn text(var: &str, label: &str, value: impl ToString) -> Field {
    Field {
        label: Some(label.to_owned()),
        ..Field::text_single(var, &value.to_string())
    }
}

fn multi(var: &str, type_: FieldType, label: &str, values: Vec<String>) -> Field {
    Field {
        label: Some(label.to_owned()),
        values,
        ..Field::new(var, type_)
    }
}

/// The first stage of a command about one node: which node.
pub(super) fn ask_node(which: Which) -> DataForm {
    let title = match which {
        Which::NodeSummary => "Node summary",
        Which::DeleteNode => "Delete a node (its subscribers are told)",
        Which::PurgeNode => "Purge a node's items (its subscribers are told)",
        _ => "List a node's subscriptions",
    };
    let mut node = Field::new("node", FieldType::TextSingle);
    node.label = Some("Node".to_owned());
    node.required = true;
    let mut form = DataForm::new(DataFormType::Form, NS_ADMIN, vec![node]);
    form.title = Some(title.to_owned());
    form
}

/// The value of a submitted form's single-valued field `var`, trimmed; `None` when absent
/// or empty.
fn value<'a>(form: &'a DataForm, var: &str) -> Option<&'a str> {
    form.fields
        .iter()
        .find(|f| f.var.as_deref() == Some(var))
        .and_then(|f| f.values.first())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The node a submitted form names.
pub(super) fn submitted_node(form: &DataForm) -> Result<String, String> {
    value(form, "node")
        .map(str::to_owned)
        .ok_or_else(|| "the form names no node (field 'node')".to_owned())
}

/// The page size a submitted node-list form asks for.
pub(super) fn submitted_max(form: &DataForm) -> Result<u64, String> {
    match value(form, "max") {
        None => Ok(super::DEFAULT_PAGE),
        Some(v) => v
            .parse()
            .ok()
            .filter(|m| (1..=MAX_PAGE).contains(m))
            .ok_or_else(|| format!("max must be a number from 1 to {MAX_PAGE}")),
    }
}

/// One page of the node list.
pub(super) fn node_page(nodes: &[&str], total: u64) -> DataForm {
    let fields = vec![
        text("count", "Nodes in all", total),
        multi(
            "nodes",
            FieldType::TextMulti,
            "Nodes",
            nodes.iter().map(|n| n.to_string()).collect(),
        ),
    ];
    DataForm::new(DataFormType::Result_, NS_ADMIN, fields)
}

/// A node's summary: its configuration, who created and owns it, and its counts.
pub(super) fn summary(meta: &NodeMeta, counts: &NodeStats) -> DataForm {
    let mut fields = vec![
        text("node", "Node", &meta.node),
        text("items", "Items", counts.items),
        text("subscriptions", "Subscriptions", counts.subscriptions),
        text(
            "subscribed",
            "Subscriptions in state subscribed",
            counts.subscribed,
        ),
    ];
    // The meta-data form (creator, creation date, owners, publishers, …), then every
    // configuration field it does not already carry; FORM_TYPE is ours.
    let more = metadata_form(meta)
        .fields
        .into_iter()
        .chain(node_config_form(&meta.config, DataFormType::Result_).fields);
    for f in more {
        let known = fields.iter().any(|g| g.var == f.var);
        if !known && f.var.as_deref() != Some("FORM_TYPE") {
            fields.push(f);
        }
    }
    DataForm::new(DataFormType::Result_, NS_ADMIN, fields)
}

/// A node's subscriptions, one line each: JID, state, subid.
pub(super) fn subscribers(node: &str, subs: &[(String, Subscription)]) -> DataForm {
    let lines = subs
        .iter()
        .map(|(_, s)| format!("{} {} {}", s.jid, s.state.as_str(), s.subid))
        .collect();
    let fields = vec![
        text("node", "Node", node),
        text("count", "Subscriptions", subs.len()),
        multi(
            "subscriptions",
            FieldType::TextMulti,
            "Subscriptions (JID, state, subid)",
            lines,
        ),
    ];
    DataForm::new(DataFormType::Result_, NS_ADMIN, fields)
}

/// The service's totals and counters.
pub(super) fn statistics(s: &ServiceStats, m: &Metrics) -> DataForm {
    let count = |c: &Counter| c.get();
    let fields = vec![
        text("nodes", "Nodes", s.nodes),
        text("subscriptions", "Subscriptions", s.subscriptions),
        text(
            "subscribed",
            "Subscriptions in state subscribed",
            s.subscribed,
        ),
        text("items", "Items", s.items),
        text(
            "publishes",
            "Items published since start",
            count(&m.publishes),
        ),
        text(
            "notifications",
            "Notifications sent since start",
            count(&m.notifications),
        ),
        text("requests", "Requests since start", m.requests.total()),
        text(
            "reconnects",
            "Reconnections to the server since start",
            count(&m.reconnects),
        ),
    ];
    DataForm::new(DataFormType::Result_, NS_ADMIN, fields)
}
