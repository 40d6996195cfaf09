//! Reading: node discovery and metadata (§5), item retrieval (§6.5) and XEP-0059 paging.

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn node_metadata(&self, me: &BareJid, node: &str) -> Result<Plan, Error> {
        let n = self.node(node)?;
        self.check(me, Question::SeeNode, n)?;
        let with = |want: Affiliation| {
            n.affs()
                .filter(|(_, a)| *a == want)
                .map(|(j, _)| j.clone())
                .collect()
        };
        Ok(Plan::read(Reply::Metadata(NodeMeta {
            node: node.to_owned(),
            config: n.rec.config.clone(),
            creator: n.rec.creator.clone(),
            created: n.rec.created,
            owners: with(Affiliation::Owner),
            publishers: with(Affiliation::Publisher),
            num_subscribers: n.subscribed,
        })))
    }

    /// The top-level nodes (the root collection's children, XEP-0248 §disco-nodes) `me`
    /// may see, in NodeID order.
    pub(super) fn visible_nodes(&self, me: &BareJid) -> Vec<NodeSummary> {
        self.visible_children(me, self.root(), None)
    }

    fn root(&self) -> &NodeState {
        self.state.node("").expect("the root")
    }

    /// The node, if `me` may retrieve its items (§6.5.9–§6.5.12), with the subid check
    /// of §6.5.3.
    pub(super) fn retrievable(
        &self,
        me: &BareJid,
        node: &str,
        subid: Option<&str>,
    ) -> Result<&NodeState, Error> {
        let n = self.node(node)?;
        self.check(me, Action::RetrieveItems, n)?;
        Self::no_items(n, "retrieve-items")?;
        if let Some(subid) = subid.filter(|s| !s.is_empty()) {
            let sub = self
                .state
                .jid_subs(n, me)
                .find(|s| s.subid.is(subid))
                .ok_or(Error::InvalidSubId)?;
            if sub.state() == SubscriptionState::Pending {
                return Err(Error::PendingSubscription);
            }
        }
        Ok(n)
    }

    /// One XEP-0059 page of a list.
    pub(super) fn page(
        &self,
        me: &BareJid,
        list: PagedList,
        rsm: &RsmQuery,
    ) -> Result<Plan, Error> {
        match list {
            PagedList::Nodes => {
                let (nodes, page) = listed_page(self.visible_nodes(me), rsm, |n| &n.node)?;
                Ok(Plan::read(Reply::Nodes {
                    nodes,
                    page: Some(page),
                }))
            }
            PagedList::ItemIds { node } if self.is_collection(&node) => {
                let n = self.node(&node)?;
                self.check(me, Question::SeeNode, n)?;
                let all = self.visible_children(me, n, None);
                let (nodes, page) = listed_page(all, rsm, |n| &n.node)?;
                Ok(Plan::read(Reply::Children {
                    node,
                    nodes,
                    page: Some(page),
                }))
            }
            PagedList::ItemIds { node } => {
                let n = self.retrievable(me, &node, None)?;
                let (items, page) = self.item_page(n, rsm)?;
                Ok(Plan::read(Reply::ItemIds {
                    node,
                    ids: items.into_iter().map(|i| i.id).collect(),
                    page: Some(page),
                }))
            }
            PagedList::Items { node, subid } => {
                let n = self.retrievable(me, &node, subid.as_deref())?;
                let (items, page) = self.item_page(n, rsm)?;
                Ok(Plan::read(Reply::Items {
                    node,
                    items,
                    page: Some(page),
                    with_publisher: n.rec.config.shows_publisher(),
                }))
            }
        }
    }

    /// A page of a node's items, by `seq` so that items published meanwhile only ever
    /// appear after the last page. An `after`/`before` ItemID that does not exist (any
    /// more) is `item-not-found`, as XEP-0059 §2.1 asks.
    pub(super) fn item_page(
        &self,
        n: &NodeState,
        rsm: &RsmQuery,
    ) -> Result<(Vec<Item>, RsmPage), Error> {
        let uid = n.rec.uid;
        let seq_of = |id: &str| -> Result<u64, Error> {
            Ok(self.store.item(uid, id)?.ok_or(Error::ItemNotFound)?.seq)
        };
        let after = rsm.after.as_deref().map(seq_of).transpose()?;
        let before = match rsm.before.as_deref() {
            None | Some("") => None,
            Some(id) => Some(seq_of(id)?),
        };
        let from_end = rsm.before.is_some();
        let skip = match (from_end, after) {
            (false, None) => rsm.index.unwrap_or(0),
            _ => 0,
        };
        let range = ItemRange {
            after,
            before,
            skip,
            limit: rsm.max.unwrap_or(u64::MAX),
            from_end,
        };
        let items = self.store.items_range(uid, &range)?;
        let first = match items.first() {
            None => None,
            Some(i) => {
                let index = if !from_end && after.is_none() {
                    skip
                } else {
                    self.store.count_before(uid, Some(i.seq))?
                };
                Some((i.id.clone(), index))
            }
        };
        let page = RsmPage {
            first,
            last: items.last().map(|i| i.id.clone()),
            count: n.counters.count,
        };
        Ok((items, page))
    }

    pub(super) fn items(
        &self,
        me: &BareJid,
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        subid: Option<String>,
    ) -> Result<Plan, Error> {
        let n = self.retrievable(me, &node, subid.as_deref())?;
        let items = if ids.is_empty() {
            self.store.latest_items(n.rec.uid, max_items)?
        } else {
            self.items_by_id(n, &ids)?
        };
        Ok(Plan::read(Reply::Items {
            node,
            items,
            page: None,
            with_publisher: n.rec.config.shows_publisher(),
        }))
    }

    /// The items of `n` among `ids` (§6.5.8), each once, in publish order; ids not there
    /// are left out.
    fn items_by_id(&self, n: &NodeState, ids: &[String]) -> Result<Vec<Item>, Error> {
        let mut found = Vec::new();
        let mut seen = BTreeSet::new();
        for id in ids {
            if seen.insert(id.as_str()) {
                if let Some(item) = self.store.item(n.rec.uid, id)? {
                    found.push(item);
                }
            }
        }
        found.sort_by_key(|i| i.seq);
        Ok(found)
    }

    /// Item retrieval in XEP-0413 order ([`Request::ItemsOrdered`]). The whole node is
    /// read and sorted in memory: its size is bounded by `pubsub#max_items` and the
    /// service's `max_items_per_node`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn items_ordered(
        &self,
        me: &BareJid,
        node: String,
        max_items: Option<u64>,
        ids: Vec<String>,
        subid: Option<String>,
        order: &[OrderBy],
        rsm: Option<&RsmQuery>,
    ) -> Result<Plan, Error> {
        let n = self.retrievable(me, &node, subid.as_deref())?;
        let items = if ids.is_empty() {
            self.store.latest_items(n.rec.uid, None)?
        } else {
            self.items_by_id(n, &ids)?
        };
        let items = crate::typed::ordered(items, order, max_items);
        let (items, page) = match rsm {
            None => (items, None),
            Some(rsm) => {
                let (items, page) = listed_page(items, rsm, |i| &i.id)?;
                (items, Some(page))
            }
        };
        Ok(Plan::read(Reply::Items {
            node,
            items,
            page,
            with_publisher: n.rec.config.shows_publisher(),
        }))
    }

    /// disco#items with an XEP-0462 type filter ([`Request::DiscoTyped`]).
    pub(super) fn disco_typed(
        &self,
        me: &BareJid,
        node: Option<String>,
        types: &TypeFilter,
        rsm: Option<&RsmQuery>,
    ) -> Result<Plan, Error> {
        let (node, n) = match node.filter(|n| !n.is_empty()) {
            None => (None, self.root()),
            Some(leaf) if !self.is_collection(&leaf) => {
                return match rsm {
                    None => self.disco_items(me, leaf),
                    Some(rsm) => self.page(me, PagedList::ItemIds { node: leaf }, rsm),
                };
            }
            Some(name) => {
                let n = self.node(&name)?;
                self.check(me, Question::SeeNode, n)?;
                (Some(name), n)
            }
        };
        let all = self.visible_children(me, n, Some(types));
        let (nodes, page) = match rsm {
            None => (all, None),
            Some(rsm) => {
                let (nodes, page) = listed_page(all, rsm, |n| &n.node)?;
                (nodes, Some(page))
            }
        };
        Ok(Plan::read(match node {
            None => Reply::Nodes { nodes, page },
            Some(node) => Reply::Children { node, nodes, page },
        }))
    }

    pub(super) fn disco_nodes(&self, me: &BareJid) -> Result<Plan, Error> {
        Ok(Plan::read(Reply::Nodes {
            nodes: self.visible_nodes(me),
            page: None,
        }))
    }

    pub(super) fn disco_items(&self, me: &BareJid, node: String) -> Result<Plan, Error> {
        if self.is_collection(&node) {
            let n = self.node(&node)?;
            self.check(me, Question::SeeNode, n)?;
            return Ok(Plan::read(Reply::Children {
                nodes: self.visible_children(me, n, None),
                node,
                page: None,
            }));
        }
        let n = self.retrievable(me, &node, None)?;
        let ids = self
            .store
            .latest_items(n.rec.uid, None)?
            .into_iter()
            .map(|i| i.id)
            .collect();
        Ok(Plan::read(Reply::ItemIds {
            node,
            ids,
            page: None,
        }))
    }
}

impl<S: Store> Service<S> {
    /// Whether `node` names a collection (the root included).
    fn is_collection(&self, node: &str) -> bool {
        self.state
            .node(node)
            .is_some_and(|n| n.rec.config.is_collection())
    }
}

/// One RSM page of an in-memory list whose UIDs are `uid`, and its `<set/>`.
fn listed_page<T: Clone>(
    all: Vec<T>,
    rsm: &RsmQuery,
    uid: impl Fn(&T) -> &String,
) -> Result<(Vec<T>, RsmPage), Error> {
    let (start, end) = page_bounds(&all, rsm, |t| uid(t).as_str())?;
    let list = all[start..end].to_vec();
    let page = RsmPage {
        first: list.first().map(|t| (uid(t).clone(), start as u64)),
        last: list.last().map(|t| uid(t).clone()),
        count: all.len() as u64,
    };
    Ok((list, page))
}

/// The `[start, end)` positions of an RSM page over an in-memory list sorted by `uid`.
/// An `after`/`before` UID not in the list is `item-not-found` (XEP-0059 §2.1).
pub(super) fn page_bounds<T>(
    all: &[T],
    rsm: &RsmQuery,
    uid: impl Fn(&T) -> &str,
) -> Result<(usize, usize), Error> {
    let pos = |id: &str| {
        all.iter()
            .position(|t| uid(t) == id)
            .ok_or(Error::ItemNotFound)
    };
    let limit = rsm
        .max
        .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
    let lo = match rsm.after.as_deref() {
        Some(id) => pos(id)? + 1,
        None => 0,
    };
    Ok(match rsm.before.as_deref() {
        Some(b) => {
            let hi = if b.is_empty() { all.len() } else { pos(b)? };
            let hi = hi.max(lo);
            (hi.saturating_sub(limit).max(lo), hi)
        }
        None => {
            let skip = match (rsm.after.is_some(), rsm.index) {
                (false, Some(i)) => usize::try_from(i).unwrap_or(usize::MAX),
                _ => 0,
            };
            let start = lo.saturating_add(skip).min(all.len());
            (start, start.saturating_add(limit).min(all.len()))
        }
    })
}
