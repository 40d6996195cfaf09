//! Collections (XEP-0248): the node graph a configuration, an association request or a
//! hierarchical name asks for, checked in one place ([`Service::relate`]); association
//! and dissociation requests; a collection's children in disco.
//!
//! Choices where XEP-0248 leaves room (documented once, here; those about delivery are in
//! `crate::matching::deliver`):
//! - A node may be a child of several collections (`pubsub#multi-collection`).
//! - The association is stored once, on the child (`pubsub#collection` in its record);
//!   a collection's `pubsub#children` is derived from it. Setting `pubsub#children` on a
//!   collection rewrites the children's records in the same change set.
//! - Associating a node with a collection needs the right to change the node (its owner)
//!   and the collection's `pubsub#children_association_policy` (owners by default;
//!   `whitelist`, `all`); dissociating needs to own either. A collection's owner cannot
//!   pull in someone else's node: a node's subscribers are not handed to a collection
//!   its owner did not choose.
//! - Every node without a parent is a child of the root collection (the service, the
//!   empty NodeID); this is not written in its `pubsub#collection`, which lists real
//!   collections only (an empty value there, "the root", means no parent). disco#items
//!   on the service lists these top-level nodes.
//! - Deleting a collection dissociates its children; they are not deleted. A child left
//!   without a parent is a top-level node again.
//! - A collection cannot become a leaf (XEP-0248 §error-node-type), with children or not;
//!   a leaf that becomes a collection loses its items (§change-to-collection), silently.
//! - News of a node created inside a collection is a `create` event to the collections
//!   above it, not also an association; associations and dissociations of existing nodes
//!   are `collection` events from the collection whose children changed.
//! - Collections hold no items: publishing, retracting, purging and retrieving items on
//!   one (or its history) get `feature-not-implemented` with XEP-0060's feature names
//!   (`publish`, `persistent-items`, `retrieve-items`); a subscription to a collection
//!   gets no last item (there is none).
//! - A JID may hold one subscription per kind of news on a collection: a second with a
//!   `pubsub#subscription_type` that overlaps one it holds is a `conflict` (§subscribe-errors);
//!   `items` with depth `all` is allowed.
//! - `pubsub#children_max` above the service's cap (`max_children`) counts as the cap.

use super::*;
use crate::state::ROOT_UID;

/// A collection the request being planned creates (a hierarchy's missing prefix): its
/// name and its parents. It does not exist yet, so the checks take it from here.
pub(super) struct Fresh {
    pub name: String,
    pub parents: Vec<String>,
}

/// What [`Service::relate`] is asked about: the node and its configuration before and
/// after (as the request would leave it).
pub(super) struct Relate<'a> {
    /// The node's record as it will be stored (its configuration is normalised in place).
    pub rec: &'a mut NodeRecord,
    /// Its configuration before the request: the default leaf when it is being created.
    pub old: &'a NodeConfig,
    /// True when the request creates the node: its creation is the news.
    pub creating: bool,
    /// Collections created by the same request.
    pub fresh: &'a [Fresh],
}

impl<S: Store> Service<S> {
    /// The most children `n` may have.
    fn children_limit(&self, cfg: &NodeConfig) -> u64 {
        cfg.children_max
            .unwrap_or(self.policy.max_children)
            .min(self.policy.max_children)
    }

    /// Check the node graph the request asks for around `r.rec` and plan it: the changes
    /// to other nodes' records (children gained or lost) and the news (associations and
    /// dissociations). Every XEP-0248 §configure error case is decided here.
    pub(super) fn relate(
        &self,
        me: &BareJid,
        r: Relate<'_>,
        changes: &mut ChangeSet,
        news: &mut Vec<Dispatch>,
    ) -> Result<(), Error> {
        let name = r.rec.name.clone();
        let new = &mut r.rec.config;
        normalise(&mut new.collection);
        normalise(&mut new.children);
        if r.old.is_collection() && !new.is_collection() {
            return Err(Error::InvalidCollection(format!(
                "{name} is a collection and cannot become a leaf"
            )));
        }
        if !new.is_collection() && !new.children.is_empty() {
            return Err(Error::InvalidCollection(format!(
                "{name} is a leaf: it cannot have children"
            )));
        }
        if new.collection.contains(&name) || new.children.contains(&name) {
            return Err(Error::InvalidCollection(format!(
                "{name} cannot contain itself"
            )));
        }
        if new.children.len() as u64 > self.children_limit(new) {
            return Err(Error::MaxNodesExceeded(name));
        }
        let added_parents: Vec<&String> = new
            .collection
            .iter()
            .filter(|p| !r.old.collection.contains(p))
            .collect();
        let removed_parents: Vec<&String> = r
            .old
            .collection
            .iter()
            .filter(|p| !new.collection.contains(p))
            .collect();
        for p in &added_parents {
            if r.fresh.iter().any(|f| &f.name == *p) {
                continue;
            }
            let pn = self.collection_named(p)?;
            self.gate(Ask::new(me, Question::AssociateChild, pn))
                .check()?;
            if pn.rec.config.children.len() as u64 >= self.children_limit(&pn.rec.config) {
                return Err(Error::MaxNodesExceeded(p.to_string()));
            }
        }
        let added_children: Vec<&NodeState> = new
            .children
            .iter()
            .filter(|c| !r.old.children.contains(c))
            .map(|c| {
                self.state.node(c).filter(|_| !c.is_empty()).ok_or_else(|| {
                    Error::InvalidCollection(format!("there is no node {c} to make a child"))
                })
            })
            .collect::<Result<_, _>>()?;
        for c in &added_children {
            // The child's record changes: only who may change it may.
            self.check(me, Action::ConfigureNode, c)?;
        }
        if !(added_parents.is_empty() && added_children.is_empty()) {
            self.refuse_cycle(&name, new, &added_children, r.fresh)?;
        }
        let removed_children: Vec<&NodeState> = r
            .old
            .children
            .iter()
            .filter(|c| !new.children.contains(c))
            .filter_map(|c| self.state.node(c))
            .collect();
        let added_parents: Vec<String> = added_parents.into_iter().cloned().collect();
        let removed_parents: Vec<String> = removed_parents.into_iter().cloned().collect();
        let rec: &NodeRecord = r.rec;
        // The children's records, which hold the relation.
        for c in &added_children {
            changes.push(Change::PutNode(with_parent(c, &name, true)));
            news.push(self.association(rec, &c.rec, true));
        }
        for c in removed_children {
            changes.push(Change::PutNode(with_parent(c, &name, false)));
            news.push(self.association(rec, &c.rec, false));
        }
        if !r.creating {
            for p in &added_parents {
                if let Some(pn) = self.state.node(p) {
                    news.push(self.association(&pn.rec, rec, true));
                }
            }
        }
        for p in &removed_parents {
            if let Some(pn) = self.state.node(p).filter(|_| !p.is_empty()) {
                news.push(self.association(&pn.rec, rec, false));
            }
        }
        Ok(())
    }

    /// The existing collection named `name`, or why it cannot be a parent.
    fn collection_named(&self, name: &str) -> Result<&NodeState, Error> {
        let n = self
            .state
            .node(name)
            .filter(|_| !name.is_empty())
            .ok_or_else(|| Error::InvalidCollection(format!("there is no collection {name}")))?;
        if !n.rec.config.is_collection() {
            return Err(Error::InvalidCollection(format!(
                "{name} is a leaf: it cannot have children"
            )));
        }
        Ok(n)
    }

    /// Refuse a graph in which `name` (configured as `new`, gaining `added_children`)
    /// would be above itself (XEP-0248 §error-collection-cycle). Only edges touching
    /// `name` change, so any new cycle passes through it: walk up from its parents.
    fn refuse_cycle(
        &self,
        name: &str,
        new: &NodeConfig,
        added_children: &[&NodeState],
        fresh: &[Fresh],
    ) -> Result<(), Error> {
        let parents_of = |y: &str| -> Vec<String> {
            if let Some(f) = fresh.iter().find(|f| f.name == y) {
                return f.parents.clone();
            }
            let Some(n) = self.state.node(y).filter(|_| !y.is_empty()) else {
                return Vec::new();
            };
            let mut p = n.rec.config.collection.clone();
            if added_children.iter().any(|c| c.rec.uid == n.rec.uid) {
                p.push(name.to_owned());
            }
            p
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut todo: Vec<String> = new.collection.clone();
        while let Some(y) = todo.pop() {
            if y == name {
                return Err(Error::InvalidCollection(format!(
                    "{name} would be inside itself (a cycle)"
                )));
            }
            if seen.insert(y.clone()) {
                todo.extend(parents_of(&y));
            }
        }
        Ok(())
    }

    /// The news that `child` was associated with the collection `coll` or dissociated
    /// from it, walked once applied.
    fn association(&self, coll: &NodeRecord, child: &NodeRecord, associate: bool) -> Dispatch {
        let event = Event::Collection {
            child: child.name.clone(),
            associate,
        };
        let broadcast = Broadcast::Collection { child: child.uid };
        self.fanout(coll, coll.config.notification_type, broadcast, event, None)
    }

    /// `<collection node='P'><associate node='X'/></collection>` (XEP-0248
    /// §associate-node): `me` makes `node` a child of `collection`.
    pub(super) fn associate(
        &self,
        me: &BareJid,
        collection: String,
        node: String,
    ) -> Result<Plan, Error> {
        self.node(&collection)?;
        let n = self.node(&node)?;
        if collection.is_empty() || node.is_empty() {
            // The root's children are the nodes without parents: nothing to associate.
            return Err(Error::RootNode);
        }
        self.check(me, Action::ConfigureNode, n)?;
        if n.rec.config.collection.contains(&collection) {
            return Ok(Plan::read(Reply::Done));
        }
        let mut rec = n.rec.clone();
        rec.config.collection.push(collection);
        self.relink_plan(me, n, rec)
    }

    /// `<collection node='P'><dissociate node='X'/></collection>` (XEP-0248
    /// §dissociate): `node` stops being a child of `collection`.
    pub(super) fn dissociate(
        &self,
        me: &BareJid,
        collection: String,
        node: String,
    ) -> Result<Plan, Error> {
        let coll = self.node(&collection)?;
        let n = self.node(&node)?;
        if !n.rec.config.collection.contains(&collection) || node.is_empty() {
            return Err(Error::NotAssociated { collection, node });
        }
        // Either side may end it.
        if self.check(me, Action::ConfigureNode, n).is_err() {
            self.check(me, Action::ConfigureNode, coll)?;
        }
        let mut rec = n.rec.clone();
        rec.config.collection.retain(|p| *p != collection);
        self.relink_plan(me, n, rec)
    }

    /// The plan of an association request: `n`'s record becomes `rec`.
    fn relink_plan(&self, me: &BareJid, n: &NodeState, mut rec: NodeRecord) -> Result<Plan, Error> {
        let mut changes = ChangeSet::default();
        let mut news = Vec::new();
        let relate = Relate {
            rec: &mut rec,
            old: &n.rec.config,
            creating: false,
            fresh: &[],
        };
        self.relate(me, relate, &mut changes, &mut news)?;
        changes.push(Change::PutNode(rec));
        Ok(Plan::with(Reply::Done, changes, news))
    }

    /// The collections a hierarchical name needs that do not exist yet (XEP-0248 by names,
    /// `Policy::hierarchy`), top first, and the existing collection they hang from.
    pub(super) fn missing_prefixes(&self, name: &str) -> (Vec<Fresh>, Option<String>) {
        let mut missing = Vec::new();
        let mut at = name;
        let mut existing = None;
        while let Some(p) = self.policy.name_parent(at) {
            if self.state.has_node(p) {
                existing = Some(p.to_owned());
                break;
            }
            missing.push(Fresh {
                name: p.to_owned(),
                parents: self
                    .policy
                    .name_parent(p)
                    .map(|pp| vec![pp.to_owned()])
                    .unwrap_or_default(),
            });
            at = p;
        }
        missing.reverse();
        (missing, existing)
    }

    /// The children of the collection `n` that `me` may see and `types` admits (XEP-0462),
    /// in NodeID order.
    pub(super) fn visible_children(
        &self,
        me: &BareJid,
        n: &NodeState,
        types: Option<&TypeFilter>,
    ) -> Vec<NodeSummary> {
        self.state
            .children(n)
            .filter(|c| types.is_none_or(|t| t.admits(&c.rec.config)))
            .filter(|c| self.gate(Ask::new(me, Question::SeeNode, c)).is_allowed())
            .map(|c| NodeSummary {
                node: c.rec.name.clone(),
                title: c.rec.config.title.clone(),
            })
            .collect()
    }

    /// Refuse the item use cases on collections (and the root), which hold no items.
    pub(super) fn no_items(n: &NodeState, feature: &'static str) -> Result<(), Error> {
        if n.rec.config.is_collection() || n.rec.uid == ROOT_UID {
            return Err(match feature {
                "persistent-items" => Error::NotPersistent,
                f => Error::Unsupported(f),
            });
        }
        Ok(())
    }
}

/// Sorted, once each, without the root (an empty value: "no parent").
fn normalise(v: &mut Vec<String>) {
    v.retain(|s| !s.is_empty());
    v.sort();
    v.dedup();
}

/// `c`'s record with `parent` added to or removed from its `pubsub#collection`.
fn with_parent(c: &NodeState, parent: &str, add: bool) -> NodeRecord {
    let mut rec = c.rec.clone();
    rec.config.collection.retain(|p| p != parent);
    if add {
        rec.config.collection.push(parent.to_owned());
        rec.config.collection.sort();
    }
    rec
}
