//! The collection graph (XEP-0248): parents are stored on each child
//! (`pubsub#collection`), children derived from them; the root collection above every
//! node without a parent; distances up and down the graph, for matching and presence.
//!
//! The graph is acyclic (the service refuses a configuration that would close a cycle),
//! but every walk here keeps a visited set all the same, so a corrupt store cannot make
//! one loop.

use super::*;
use std::collections::VecDeque;

/// The root collection's record: owned by the service, open, a collection.
pub(super) fn root_record() -> NodeRecord {
    NodeRecord {
        name: String::new(),
        uid: ROOT_UID,
        // Never shown: disco#info on the service is the component's, not a node's.
        creator: BareJid::new("root.invalid").expect("a valid domain"),
        created: 0,
        config: NodeConfig {
            node_type: NodeType::Collection,
            ..NodeConfig::default()
        },
    }
}

impl State {
    /// The children of the collection `name`, in NodeID order.
    pub(super) fn children_list(&self, name: &str) -> Vec<String> {
        self.children_of
            .get(name)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// `child`'s parents changed from `old` to `new`: keep the derived children lists.
    pub(super) fn relink(&mut self, child: &str, old: &[String], new: &[String]) {
        let mut touched = Vec::new();
        for p in old.iter().filter(|p| !new.contains(p)) {
            if let Some(c) = self.children_of.get_mut(p) {
                c.remove(child);
                if c.is_empty() {
                    self.children_of.remove(p);
                }
            }
            touched.push(p.clone());
        }
        for p in new.iter().filter(|p| !old.contains(p)) {
            self.children_of
                .entry(p.clone())
                .or_default()
                .insert(child.to_owned());
            touched.push(p.clone());
        }
        for p in touched {
            let list = self.children_list(&p);
            if let Some(n) = self.nodes.get_mut(&p) {
                n.rec.config.children = list;
            }
        }
    }

    /// The children of `n`: its derived list, or for the root every node without a
    /// parent.
    pub(crate) fn children<'a>(
        &'a self,
        n: &'a NodeState,
    ) -> Box<dyn Iterator<Item = &'a NodeState> + 'a> {
        if n.rec.uid == ROOT_UID {
            Box::new(
                self.nodes
                    .values()
                    .filter(|c| c.rec.config.collection.is_empty()),
            )
        } else {
            Box::new(
                n.rec
                    .config
                    .children
                    .iter()
                    .filter_map(|c| self.nodes.get(c)),
            )
        }
    }

    /// Every collection above `n` (the root included, unless `n` is the root) with its
    /// distance: 1 for a parent, 2 for a grandparent..., the shortest where several
    /// paths lead up. Nearest first.
    pub(crate) fn ancestors<'a>(&'a self, n: &'a NodeState) -> Vec<(&'a NodeState, u64)> {
        let mut out = Vec::new();
        if n.rec.uid == ROOT_UID {
            return out;
        }
        let mut seen: BTreeSet<&str> = BTreeSet::from([n.rec.name.as_str()]);
        let mut frontier = vec![n];
        let mut root = None;
        let mut dist = 0;
        while !frontier.is_empty() {
            dist += 1;
            let mut next = Vec::new();
            for x in frontier {
                if x.rec.config.collection.is_empty() {
                    root.get_or_insert(dist);
                }
                for p in &x.rec.config.collection {
                    if seen.insert(p) {
                        if let Some(pn) = self.nodes.get(p) {
                            out.push((pn, dist));
                            next.push(pn);
                        }
                    }
                }
            }
            frontier = next;
        }
        if let Some(d) = root {
            out.push((&self.root, d));
        }
        out
    }

    /// Every node below the collection `n` within `depth`, with its (shortest) distance,
    /// nearest first.
    pub(crate) fn descendants<'a>(
        &'a self,
        n: &'a NodeState,
        depth: SubscriptionDepth,
    ) -> Vec<(&'a NodeState, u64)> {
        let mut out = Vec::new();
        let mut seen: BTreeSet<u64> = BTreeSet::from([n.rec.uid]);
        let mut queue = VecDeque::from([(n, 0)]);
        while let Some((x, d)) = queue.pop_front() {
            if !depth.reaches(d + 1) {
                continue;
            }
            for c in self.children(x) {
                if seen.insert(c.rec.uid) {
                    out.push((c, d + 1));
                    queue.push_back((c, d + 1));
                }
            }
        }
        out
    }

    /// The leaves below the collection `n` that a subscription with `options` hears the
    /// items of, by uid, each with its newest seq: where a collection digest's period
    /// starts. Empty for a leaf.
    pub(crate) fn leaf_seqs(&self, n: &NodeState, options: &SubOptions) -> BTreeMap<u64, u64> {
        if !n.rec.config.is_collection() || !options.subscription_type.items() {
            return BTreeMap::new();
        }
        self.descendants(n, options.subscription_depth)
            .into_iter()
            .filter(|(c, _)| !c.rec.config.is_collection())
            .map(|(c, _)| (c.rec.uid, c.counters.last_seq))
            .collect()
    }

    /// Start every digest period afresh from now: after the newest item of its node, or
    /// of each leaf a collection's subscription reaches.
    pub(crate) fn restart_digests(&mut self) {
        let keys: Vec<(u64, SubKey)> = self.digests.keys().cloned().collect();
        for k in keys {
            let Some((after_seq, leaves)) = self.node_by_uid(k.0).and_then(|n| {
                let sub = n.sub(&k.1)?;
                Some((n.counters.last_seq, self.leaf_seqs(n, sub.options())))
            }) else {
                continue;
            };
            if let Some(d) = self.digests.get_mut(&k) {
                d.after_seq = after_seq;
                d.leaves = leaves;
            }
        }
    }

    /// Whether the service must learn the presence of the subscriber of a subscription to
    /// `n` in `state` with `options`: as [`needs_presence`] says for a leaf; for a
    /// collection when it accepts only some shows, or when it hears of items from a leaf
    /// that delivers by presence (the leaf's delivery options apply, XEP-0248 §notify).
    pub(crate) fn sub_needs_presence(
        &self,
        n: &NodeState,
        state: SubscriptionState,
        options: &SubOptions,
    ) -> bool {
        if !n.rec.config.is_collection() {
            return needs_presence(&n.rec.config, state, options);
        }
        state == SubscriptionState::Subscribed
            && (crate::matching::presence_bound(&n.rec.config, options)
                || options.subscription_type.items()
                    && self
                        .descendants(n, options.subscription_depth)
                        .iter()
                        .any(|(c, _)| {
                            c.rec.config.presence_based_delivery && !c.rec.config.is_collection()
                        }))
    }

    /// The node `name` was stored: ask for the presence of its own subscribers that need
    /// it and, when it or a leaf below it delivers by presence, of the item subscribers of
    /// the collections above it that reach it (a little more than needed when the leaf
    /// is deeper than their depth: asking is harmless, missing one is not).
    pub(super) fn ask_presence(&mut self, name: &str) {
        let Some(n) = self.nodes.get(name) else {
            return;
        };
        let mut ask: Vec<BareJid> = n
            .subs
            .iter()
            .filter(|s| self.sub_needs_presence(n, s.state(), s.options()))
            .map(|s| s.bare().clone())
            .collect();
        let by_presence =
            |c: &NodeState| c.rec.config.presence_based_delivery && !c.rec.config.is_collection();
        let below = by_presence(n)
            || n.rec.config.is_collection()
                && self
                    .descendants(n, SubscriptionDepth::All)
                    .iter()
                    .any(|(c, _)| by_presence(c));
        if below {
            for (a, d) in self.ancestors(n) {
                ask.extend(
                    a.subs
                        .iter()
                        .filter(|s| {
                            let o = s.options();
                            s.state() == SubscriptionState::Subscribed
                                && o.subscription_type.items()
                                && o.subscription_depth.reaches(d)
                        })
                        .map(|s| s.bare().clone()),
                );
            }
        }
        self.presence_requests.extend(ask);
    }
}
