//! Service-wide policy: who may create nodes, who administers, and the caps.

use crate::filter::Limits;
use crate::model::NodeConfig;
use crate::BareJid;

/// Who may create nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreatePolicy {
    /// Any JID at all.
    Anyone,
    /// Users whose domain is one of these (default: the service's parent domain).
    Domains(Vec<String>),
    /// Only admins.
    AdminsOnly,
}

/// Service-wide settings the engine enforces. Every limit here is operator config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Who may create nodes.
    pub create: CreatePolicy,
    /// JIDs that are owners of every node.
    pub admins: Vec<BareJid>,
    /// Configuration of a new node before the creator's form applies.
    pub default_config: NodeConfig,
    /// Hard cap on items kept per node; also what `max_items = max` means.
    pub max_items_per_node: u64,
    /// Hard cap on `pubsub#max_payload_size`.
    pub max_payload_size: u64,
    /// Nodes one JID may create (owners of).
    pub max_nodes_per_jid: u64,
    /// Subscriptions one node may hold.
    pub max_subscriptions_per_node: u64,
    /// Subscriptions one bare JID may hold across the service.
    pub max_subscriptions_per_jid: u64,
    /// Bounds on a subscription's content filter (`x-roost#filter`): length, predicates,
    /// nesting.
    pub filter_limits: Limits,
    /// Hard cap on a collection's children; what `pubsub#children_max = max` means.
    pub max_children: u64,
    /// Topic hierarchies from names: with a separator (e.g. `/`), creating `a/b/c`
    /// creates the collections `a/b` and `a` when missing and associates `a/b/c` with
    /// `a/b` and `a/b` with `a` (see `Service::create`). `None`: names are flat.
    pub hierarchy: Option<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            create: CreatePolicy::Anyone,
            admins: Vec::new(),
            default_config: NodeConfig::default(),
            max_items_per_node: 10_000,
            max_payload_size: 256 * 1024,
            max_nodes_per_jid: 1_000,
            max_subscriptions_per_node: 1_000_000,
            max_subscriptions_per_jid: 10_000,
            filter_limits: Limits::default(),
            max_children: 10_000,
            hierarchy: None,
        }
    }
}

impl Policy {
    /// True if `jid` is a service admin.
    pub fn is_admin(&self, jid: &BareJid) -> bool {
        self.admins.contains(jid)
    }

    /// The collection a name belongs in under the hierarchy setting: `a/b` for `a/b/c`
    /// with separator `/`. `None` without the setting, for top-level names, and for
    /// names whose prefix before the last separator is empty (`/a`).
    pub fn name_parent<'a>(&self, name: &'a str) -> Option<&'a str> {
        let sep = self.hierarchy.as_deref().filter(|s| !s.is_empty())?;
        let (parent, _) = name.rsplit_once(sep)?;
        (!parent.is_empty()).then_some(parent)
    }

    /// True if `jid` may create nodes at all (caps are checked separately).
    pub fn may_create(&self, jid: &BareJid) -> bool {
        if self.is_admin(jid) {
            return true;
        }
        match &self.create {
            CreatePolicy::Anyone => true,
            CreatePolicy::Domains(d) => d.iter().any(|d| d == jid.domain().as_str()),
            CreatePolicy::AdminsOnly => false,
        }
    }
}
