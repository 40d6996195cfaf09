//! `roost export`, `roost import`, `roost check`: the data directory as a documented,
//! versioned XML dump (docs/dump-format.md) and back, and a check of its indexes.
//!
//! The dump is XEP-0227's two pubsub sections in XEP-0060's vocabulary (configuration
//! forms, affiliations, subscriptions with their options forms, items with ids and
//! publishers in publish order), plus what Roost keeps besides in attributes of
//! [`NS_DUMP`], so that an export imported into an empty data directory gives back the
//! same state, and exports again to the same bytes. Forms are written and read by the
//! service's own form code (`pubsub::forms`): one home for each field.
//!
//! Both directions stream: one node's records, or one item, at a time.

mod export;
mod import;

pub use export::export;
pub use import::import;

use roost_nodes::service::{patch_config, patch_options};
use roost_nodes::{
    Affiliation, BareJid, NodeConfig, NodeRecord, SubOptions, Subscription, SubscriptionState,
};
use xmpp_parsers::data_forms::{DataForm, DataFormType};
use xmpp_parsers::pubsub::AffiliationAttribute;

use crate::pubsub::codec::{format_datetime, parse_datetime};
use crate::pubsub::forms;
use crate::xml::dump::{DumpConfigure, DumpSubscription, NS_DUMP};
use crate::xml::pubsub::SubState;

/// What went wrong, in one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading or writing the file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store.
    #[error("{0}")]
    Store(#[from] roost_nodes::StoreError),
    /// The dump does not say what the format says.
    #[error("{0}")]
    Format(String),
}

fn bad(why: impl std::fmt::Display) -> DumpError {
    DumpError::Format(why.to_string())
}

/// What a dump holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Nodes.
    pub nodes: u64,
    /// Affiliations.
    pub affiliations: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// Items.
    pub items: u64,
    /// Item expiry entries.
    pub expiries: u64,
}

impl std::fmt::Display for Totals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} nodes, {} affiliations, {} subscriptions, {} items, {} item expiries",
            self.nodes, self.affiliations, self.subscriptions, self.items, self.expiries
        )
    }
}

/// A form without its labels and options: the dump carries values only.
fn values_only(mut form: DataForm) -> DataForm {
    for f in form.fields.iter_mut() {
        f.label = None;
        f.options.clear();
    }
    form
}

/// The `<configure/>` of a node.
fn configure(rec: &NodeRecord, last_seq: u64) -> DumpConfigure {
    DumpConfigure {
        node: rec.name.clone(),
        uid: rec.uid,
        creator: rec.creator.clone(),
        created: format_datetime(rec.created),
        last_seq,
        form: values_only(forms::node_config_form(&rec.config, DataFormType::Submit)),
    }
}

/// A node's record back from its `<configure/>`; fields the form leaves out keep Roost's
/// defaults.
fn record(c: DumpConfigure) -> Result<(NodeRecord, u64), DumpError> {
    let patch = forms::parse_node_config(&c.form)
        .map_err(|e| bad(format!("node {:?}: configuration form: {e:?}", c.node)))?;
    let created = parse_datetime(&c.created).ok_or_else(|| {
        bad(format!(
            "node {:?}: created {:?} is not a DateTime",
            c.node, c.created
        ))
    })?;
    Ok((
        NodeRecord {
            name: c.node,
            uid: c.uid,
            creator: c.creator,
            created,
            config: patch_config(&NodeConfig::default(), &patch),
        },
        c.last_seq,
    ))
}

fn sub_state(s: SubscriptionState) -> SubState {
    match s {
        SubscriptionState::None => SubState::None,
        SubscriptionState::Pending => SubState::Pending,
        SubscriptionState::Unconfigured => SubState::Unconfigured,
        SubscriptionState::Subscribed => SubState::Subscribed,
    }
}

fn subscription_state(s: SubState) -> SubscriptionState {
    match s {
        SubState::None => SubscriptionState::None,
        SubState::Pending => SubscriptionState::Pending,
        SubState::Unconfigured => SubscriptionState::Unconfigured,
        SubState::Subscribed => SubscriptionState::Subscribed,
    }
}

fn dump_subscription(s: &Subscription) -> DumpSubscription {
    DumpSubscription {
        jid: s.jid.clone(),
        subid: s.subid.clone(),
        subscription: sub_state(s.state),
        // Every option, the collection ones too: the dump keeps what is stored, whatever
        // the node.
        options: Some(values_only(forms::sub_options_form(
            &s.options,
            true,
            DataFormType::Submit,
        ))),
    }
}

fn subscription(node: &str, s: DumpSubscription) -> Result<Subscription, DumpError> {
    let options = match &s.options {
        None => SubOptions::default(),
        Some(form) => {
            let patch = forms::parse_sub_options(form).map_err(|e| {
                bad(format!(
                    "node {node:?}, subscription {:?}: options: {e:?}",
                    s.subid
                ))
            })?;
            patch_options(&SubOptions::default(), &patch)
        }
    };
    // The engine stores only filters that parse; one that does not would silently select
    // nothing (a damaged or hand-edited dump): refuse it, naming it.
    if let Some(f) = &options.filter {
        roost_nodes::filter::Filter::parse_stored(f).map_err(|e| {
            bad(format!(
                "node {node:?}, subscription {:?}: x-roost#filter {f:?}: {e}",
                s.subid
            ))
        })?;
    }
    Ok(Subscription {
        jid: s.jid,
        subid: s.subid,
        state: subscription_state(s.subscription),
        options,
    })
}

fn affiliation_attr(a: Affiliation) -> AffiliationAttribute {
    match a {
        Affiliation::Owner => AffiliationAttribute::Owner,
        Affiliation::Publisher => AffiliationAttribute::Publisher,
        Affiliation::PublishOnly => AffiliationAttribute::PublishOnly,
        Affiliation::Member => AffiliationAttribute::Member,
        Affiliation::None => AffiliationAttribute::None,
        Affiliation::Outcast => AffiliationAttribute::Outcast,
    }
}

fn affiliation(a: &AffiliationAttribute) -> Affiliation {
    match a {
        AffiliationAttribute::Owner => Affiliation::Owner,
        AffiliationAttribute::Publisher => Affiliation::Publisher,
        AffiliationAttribute::PublishOnly => Affiliation::PublishOnly,
        AffiliationAttribute::Member => Affiliation::Member,
        AffiliationAttribute::None => Affiliation::None,
        AffiliationAttribute::Outcast => Affiliation::Outcast,
    }
}

fn bare(node: &str, jid: &xmpp_parsers::jid::Jid) -> Result<BareJid, DumpError> {
    if jid.resource().is_some() {
        return Err(bad(format!(
            "node {node:?}: affiliation of {jid}, a full JID (affiliations are of bare JIDs)"
        )));
    }
    Ok(jid.to_bare())
}

#[cfg(test)]
mod tests;
