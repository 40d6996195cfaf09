//! Owner use cases (§8): create, configure, delete, purge, subscriptions and affiliations,
//! subscription approval.

use super::*;

impl<S: Store> Service<S> {
    /// Check a configuration against what the engine supports and the policy caps.
    pub(super) fn validate_config(&self, cfg: &NodeConfig) -> Result<(), Error> {
        if !access::access_model_supported(cfg.access_model, self.rosters.granted()) {
            return Err(Error::UnsupportedAccessModel);
        }
        if let MaxItems::Count(n) = cfg.max_items {
            if n > self.policy.max_items_per_node {
                return Err(Error::MaxItemsExceeded);
            }
        }
        if cfg.max_payload_size == 0 || cfg.max_payload_size > self.policy.max_payload_size {
            return Err(Error::InvalidConfig(format!(
                "pubsub#max_payload_size must be between 1 and {}",
                self.policy.max_payload_size
            )));
        }
        Ok(())
    }

    pub(super) fn create(
        &self,
        me: &BareJid,
        node: Option<String>,
        patch: Option<NodeConfigPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        self.gate(Ask::create(me)).check()?;
        let name = match node {
            Some(name) if name.is_empty() => return Err(Error::NodeIdRequired),
            Some(name) if self.state.has_node(&name) => return Err(Error::NodeExists),
            Some(name) => name,
            None => loop {
                let name = self.fresh(now);
                if !self.state.has_node(&name) {
                    break name;
                }
            },
        };
        let mut config = match &patch {
            Some(p) => patch_config(&self.policy.default_config, p),
            None => self.policy.default_config.clone(),
        };
        self.validate_config(&config)?;
        // Topic hierarchies: the collections the name implies, created when missing.
        let (fresh, existing) = self.missing_prefixes(&name);
        if let Some(p) = fresh.last().map(|f| &f.name).or(existing.as_ref()) {
            config.collection.push(p.clone());
        }
        if !self.is_admin(me) {
            let owned = self
                .state
                .affiliations_of(me)
                .filter(|(_, a)| *a == Affiliation::Owner)
                .count() as u64;
            if owned + 1 + fresh.len() as u64 > self.policy.max_nodes_per_jid {
                return Err(Error::LimitReached("nodes per JID"));
            }
        }
        let mut changes = ChangeSet::default();
        let mut news: Vec<Dispatch> = Vec::new();
        let mut uid = self.state.last_uid;
        let put = |changes: &mut ChangeSet, news: &mut Vec<Dispatch>, rec: NodeRecord| {
            news.push(self.fanout(
                &rec,
                rec.config.notification_type,
                Broadcast::Create,
                Event::Create,
                None,
            ));
            let (uid, node) = (rec.uid, rec.name.clone());
            changes.push(Change::PutNode(rec));
            changes.push(Change::PutCounters {
                uid,
                counters: ItemCounters::default(),
            });
            changes.push(Change::PutAffiliation {
                node,
                jid: me.clone(),
                affiliation: Affiliation::Owner,
            });
        };
        for f in &fresh {
            uid += 1;
            let mut rec = NodeRecord {
                name: f.name.clone(),
                uid,
                creator: me.clone(),
                created: now,
                config: self.hierarchy_config(&config, f),
            };
            let relate = Relate {
                rec: &mut rec,
                old: &NodeConfig::default(),
                creating: true,
                fresh: &fresh,
            };
            self.relate(me, relate, &mut changes, &mut news)?;
            put(&mut changes, &mut news, rec);
        }
        uid += 1;
        let mut rec = NodeRecord {
            name: name.clone(),
            uid,
            creator: me.clone(),
            created: now,
            config,
        };
        let relate = Relate {
            rec: &mut rec,
            old: &NodeConfig::default(),
            creating: true,
            fresh: &fresh,
        };
        self.relate(me, relate, &mut changes, &mut news)?;
        put(&mut changes, &mut news, rec);
        Ok(Plan::with(Reply::Created { node: name }, changes, news))
    }

    /// The configuration of a collection created for a hierarchical name (`f`) on the
    /// way to a node configured `leaf`: a collection with the leaf's access model (so
    /// that the names above a closed node are as closed as it is) and roster groups,
    /// open to associations (names decide them), otherwise the service's defaults.
    fn hierarchy_config(&self, leaf: &NodeConfig, f: &Fresh) -> NodeConfig {
        NodeConfig {
            node_type: NodeType::Collection,
            access_model: leaf.access_model,
            roster_groups_allowed: leaf.roster_groups_allowed.clone(),
            collection: f.parents.clone(),
            children_association_policy: AssociationPolicy::All,
            ..self.policy.default_config.clone()
        }
    }

    pub(super) fn set_config(
        &self,
        me: &BareJid,
        node: String,
        patch: NodeConfigPatch,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        if node.is_empty() {
            return Err(Error::RootNode);
        }
        self.check(me, Action::ConfigureNode, n)?;
        let config = patch_config(&n.rec.config, &patch);
        self.validate_config(&config)?;
        let mut changes = ChangeSet::default();
        let mut notifications: Vec<Dispatch> = Vec::new();
        let mut rec = NodeRecord {
            config,
            ..n.rec.clone()
        };
        let relate = Relate {
            rec: &mut rec,
            old: &n.rec.config,
            creating: false,
            fresh: &[],
        };
        self.relate(me, relate, &mut changes, &mut notifications)?;
        let config = rec.config;
        // XEP-0248 §change-to-collection: a leaf that becomes a collection loses its items.
        if config.is_collection() && !n.rec.config.is_collection() {
            changes.push(Change::PurgeItems { uid: n.rec.uid });
            changes.push(Change::PutCounters {
                uid: n.rec.uid,
                counters: ItemCounters {
                    count: 0,
                    last_seq: n.counters.last_seq,
                },
            });
        }
        // Subscribers that the new access model shuts out lose their subscriptions.
        if config.access_model != n.rec.config.access_model {
            for sub in n.subs() {
                // Undecided for want of a roster: the request fails with RosterNeeded and is
                // asked again once the component has the rosters, rather than dropping
                // subscriptions a roster would have kept.
                let ask = Ask::new(sub.bare(), Action::Subscribe, n).under(&config);
                if !self.gate(ask).admits()? {
                    let sub = sub.to_subscription();
                    let notice = self.to_subscriber(n, &sub, SubscriptionState::None);
                    notifications.push(notice.into());
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid: sub.jid,
                        subid: sub.subid,
                    });
                }
            }
        }
        changes.push(Change::PutNode(NodeRecord {
            config: config.clone(),
            ..n.rec.clone()
        }));
        // Walked once applied: to the subscribers that remain, under the new
        // configuration (its switches, its notification type).
        let event = Event::Configuration {
            config: config.deliver_payloads.then(|| config.clone()),
        };
        let kind = config.notification_type;
        notifications.push(self.fanout(&n.rec, kind, Broadcast::Configure, event, None));
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    /// An owner's decision on pending subscriptions (§8.6).
    pub(super) fn authorize(
        &self,
        me: &BareJid,
        node: String,
        jid: &Jid,
        subid: Option<&str>,
        allow: bool,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ManageSubscriptions, n)?;
        let pending: Vec<Subscription> = self
            .state
            .jid_subs(n, &jid.to_bare())
            .filter(|s| s.key.is(jid) && s.state() == SubscriptionState::Pending)
            .filter(|s| match subid {
                Some(id) if !id.is_empty() => s.subid.is(id),
                _ => true,
            })
            .map(Sub::to_subscription)
            .collect();
        // Already decided (e.g. by another owner) or never asked: nothing to do.
        if pending.is_empty() {
            return Err(Error::NotSubscribed);
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for sub in pending {
            let state = if allow {
                let mut approved = sub.clone();
                approved.state = SubscriptionState::Subscribed;
                changes.push(Change::PutSubscription {
                    node: node.clone(),
                    sub: approved,
                });
                SubscriptionState::Subscribed
            } else {
                changes.push(Change::DeleteSubscription {
                    node: node.clone(),
                    jid: sub.jid.clone(),
                    subid: sub.subid.clone(),
                });
                SubscriptionState::None
            };
            notifications.push(self.to_subscriber(n, &sub, state));
        }
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn set_subscriptions(
        &self,
        me: &BareJid,
        node: String,
        rows: Vec<SubscriptionChange>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ManageSubscriptions, n)?;
        // subid → (jid, new subscription or None when removed): an overlay over the
        // node's subscriptions, so that later rows see earlier rows' effects.
        let mut work: BTreeMap<String, (Jid, Option<Subscription>)> = BTreeMap::new();
        for row in rows {
            let mut current: Vec<Subscription> = self
                .state
                .jid_subs(n, &row.jid.to_bare())
                .filter(|s| s.key.is(&row.jid))
                .map(Sub::to_subscription)
                .filter(|s| !work.contains_key(&s.subid))
                .collect();
            current.extend(
                work.values()
                    .filter_map(|(_, s)| s.as_ref())
                    .filter(|s| s.jid == row.jid)
                    .cloned(),
            );
            let targets: Vec<Subscription> = match row.subid.as_deref().filter(|s| !s.is_empty()) {
                Some(id) => {
                    let t: Vec<_> = current.into_iter().filter(|s| s.subid == id).collect();
                    if t.is_empty() {
                        return Err(Error::InvalidSubId);
                    }
                    t
                }
                None => current,
            };
            if row.state == SubscriptionState::None {
                for t in targets {
                    work.insert(t.subid.clone(), (t.jid, None));
                }
            } else if targets.is_empty() {
                // The owner subscribes someone new; a banned entity stays out.
                let target = row.jid.to_bare();
                self.gate(Ask::new(&target, Question::BeSubscribedByOwner, n))
                    .check()?;
                let subid = self.fresh_subid(n, &target, &work, now);
                let sub = Subscription {
                    jid: row.jid.clone(),
                    subid: subid.clone(),
                    state: row.state,
                    options: SubOptions::default(),
                };
                work.insert(subid, (row.jid, Some(sub)));
            } else {
                for mut t in targets {
                    t.state = row.state;
                    work.insert(t.subid.clone(), (t.jid.clone(), Some(t)));
                }
            }
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for (subid, (jid, sub)) in work {
            match sub {
                Some(sub) => {
                    let now = self.state.find_sub(n, &jid, &subid);
                    if now.map(Sub::to_subscription).as_ref() == Some(&sub) {
                        continue;
                    }
                    notifications.push(self.to_subscriber(n, &sub, sub.state));
                    changes.push(Change::PutSubscription {
                        node: node.clone(),
                        sub,
                    });
                }
                None => {
                    // Created and removed within this request: nothing to store.
                    let Some(old) = self.state.find_sub(n, &jid, &subid) else {
                        continue;
                    };
                    let old = old.to_subscription();
                    notifications.push(self.to_subscriber(n, &old, SubscriptionState::None));
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid,
                        subid,
                    });
                }
            }
        }
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn set_affiliations(
        &self,
        me: &BareJid,
        node: String,
        rows: Vec<(BareJid, Affiliation)>,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        if node.is_empty() {
            return Err(Error::RootNode);
        }
        self.check(me, Action::ManageAffiliations, n)?;
        let mut work: BTreeMap<BareJid, Affiliation> = BTreeMap::new();
        for (jid, aff) in rows {
            // §8.9.2.4: the same entity twice in one request is a bad request.
            if work.insert(jid.clone(), aff).is_some() {
                return Err(Error::BadRequest(format!(
                    "affiliation for {jid} given twice"
                )));
            }
        }
        let owners_left = n.owners().filter(|j| !work.contains_key(*j)).count()
            + work.values().filter(|a| **a == Affiliation::Owner).count();
        if owners_left == 0 {
            return Err(Error::InvalidConfig(
                "a node must keep at least one owner".to_owned(),
            ));
        }
        let mut changes = ChangeSet::default();
        let mut notifications = Vec::new();
        for (jid, aff) in work {
            let old = n.aff(&jid);
            if old == aff {
                continue;
            }
            changes.push(Change::PutAffiliation {
                node: node.clone(),
                jid: jid.clone(),
                affiliation: aff,
            });
            // Whoever may no longer subscribe (banned, or dropped from a whitelist)
            // loses its subscriptions and is told so.
            let ask = Ask::new(&jid, Action::Subscribe, n).as_affiliated(aff);
            if !self.gate(ask).admits()? {
                for sub in self.state.jid_subs(n, &jid).map(Sub::to_subscription) {
                    notifications.push(self.to_subscriber(n, &sub, SubscriptionState::None));
                    changes.push(Change::DeleteSubscription {
                        node: node.clone(),
                        jid: sub.jid,
                        subid: sub.subid,
                    });
                }
            }
        }
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn get_config(&self, me: &BareJid, node: String) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ConfigureNode, n)?;
        Ok(Plan::read(Reply::Config {
            node: Some(node),
            config: n.rec.config.clone(),
        }))
    }

    pub(super) fn default_config(&self, node_type: NodeType) -> Result<Plan, Error> {
        Ok(Plan::read(Reply::Config {
            node: None,
            config: NodeConfig {
                node_type,
                ..self.policy.default_config.clone()
            },
        }))
    }

    pub(super) fn delete(
        &self,
        me: &BareJid,
        node: String,
        redirect: Option<String>,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        if node.is_empty() {
            return Err(Error::RootNode);
        }
        self.check(me, Action::DeleteNode, n)?;
        let mut changes = ChangeSet::default();
        // Its children are dissociated, not deleted (see `collections`).
        for c in self.state.children(n) {
            let mut rec = c.rec.clone();
            rec.config.collection.retain(|p| *p != node);
            changes.push(Change::PutNode(rec));
        }
        changes.push(Change::DeleteNode {
            name: node,
            uid: n.rec.uid,
        });
        // Built now: once applied, the node and its subscriptions are gone.
        let recipients = self.recipients(n, Occasion::Delete, Scope::Everyone, None);
        let event = Event::Delete { redirect };
        let notifications = self.notifications(n, recipients, event);
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn purge(&self, me: &BareJid, node: String) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::PurgeNode, n)?;
        Self::no_items(n, "persistent-items")?;
        if !n.rec.config.persist_items {
            return Err(Error::NotPersistent);
        }
        let mut changes = ChangeSet::default();
        changes.push(Change::PurgeItems { uid: n.rec.uid });
        changes.push(Change::PutCounters {
            uid: n.rec.uid,
            counters: ItemCounters {
                count: 0,
                last_seq: n.counters.last_seq,
            },
        });
        let notifications = vec![self.broadcast(n, Broadcast::Purge, Event::Purge)];
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn get_subscriptions(&self, me: &BareJid, node: String) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ManageSubscriptions, n)?;
        let subs = by_subid(n.subs())
            .into_iter()
            .map(|s| (node.clone(), s))
            .collect();
        Ok(Plan::read(Reply::Subscriptions {
            node: Some(node),
            subs,
        }))
    }

    pub(super) fn get_affiliations(&self, me: &BareJid, node: String) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ManageAffiliations, n)?;
        let affs = n
            .affs()
            .map(|(j, a)| (node.clone(), j.clone(), a))
            .collect();
        Ok(Plan::read(Reply::Affiliations {
            node: Some(node),
            affs,
        }))
    }

    /// Ad-hoc `pubsub#get-pending`, first step (§8.7).
    pub(super) fn pending_nodes(&self, me: &BareJid) -> Result<Plan, Error> {
        let nodes = self
            .state
            .nodes()
            .filter(|n| self.check(me, Action::ManageSubscriptions, n).is_ok())
            .filter(|n| n.subs().any(|s| s.state() == SubscriptionState::Pending))
            .map(|n| n.rec.name.clone())
            .collect();
        Ok(Plan::read(Reply::PendingNodes { nodes }))
    }

    /// Ad-hoc `pubsub#get-pending`, per-node step (§8.7).
    pub(super) fn get_pending(
        &self,
        me: &BareJid,
        actor: &Jid,
        node: String,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::ManageSubscriptions, n)?;
        let pending = n.subs().filter(|s| s.state() == SubscriptionState::Pending);
        let notifications: Vec<Notification> = by_subid(pending)
            .iter()
            .flat_map(|s| self.authorization_requests(n, s, Some(actor)))
            .collect();
        Ok(Plan::with(
            Reply::PendingSent { node },
            ChangeSet::default(),
            notifications,
        ))
    }
}

/// Subscriptions as the API spells them, in subid order (how owners have always seen
/// them listed).
fn by_subid<'a>(subs: impl Iterator<Item = Sub<'a>>) -> Vec<Subscription> {
    let mut v: Vec<Subscription> = subs.map(Sub::to_subscription).collect();
    v.sort_by(|a, b| a.subid.cmp(&b.subid));
    v
}

/// Lists every configuration field with its form name, once, for patching and for
/// publish-options preconditions.
macro_rules! config_fields {
    ($m:ident) => {
        $m! {
            title = "pubsub#title",
            description = "pubsub#description",
            payload_type = "pubsub#type",
            access_model = "pubsub#access_model",
            roster_groups_allowed = "pubsub#roster_groups_allowed",
            publish_model = "pubsub#publish_model",
            max_items = "pubsub#max_items",
            persist_items = "pubsub#persist_items",
            deliver_payloads = "pubsub#deliver_payloads",
            deliver_notifications = "pubsub#deliver_notifications",
            notify_config = "pubsub#notify_config",
            notify_delete = "pubsub#notify_delete",
            notify_retract = "pubsub#notify_retract",
            notify_sub = "pubsub#notify_sub",
            presence_based_delivery = "pubsub#presence_based_delivery",
            send_last_published_item = "pubsub#send_last_published_item",
            item_expire = "pubsub#item_expire",
            notification_type = "pubsub#notification_type",
            itemreply = "pubsub#itemreply",
            max_payload_size = "pubsub#max_payload_size",
            node_type = "pubsub#node_type",
            collection = "pubsub#collection",
            children = "pubsub#children",
            children_max = "pubsub#children_max",
            children_association_policy = "pubsub#children_association_policy",
            children_association_whitelist = "pubsub#children_association_whitelist",
        }
    };
}

/// `cfg` with every field the patch gives replaced.
pub fn patch_config(cfg: &NodeConfig, patch: &NodeConfigPatch) -> NodeConfig {
    let mut out = cfg.clone();
    macro_rules! apply {
        ($($f:ident = $name:literal),* $(,)?) => {
            $(if let Some(v) = &patch.$f { out.$f = v.clone(); })*
        };
    }
    config_fields!(apply);
    out
}

/// The form name of the first field the publish-options give that differs from the
/// node's configuration (§7.1.5).
pub fn precondition_mismatch(cfg: &NodeConfig, patch: &NodeConfigPatch) -> Option<&'static str> {
    macro_rules! check {
        ($($f:ident = $name:literal),* $(,)?) => {
            $(if let Some(v) = &patch.$f { if *v != cfg.$f { return Some($name); } })*
        };
    }
    config_fields!(check);
    None
}
