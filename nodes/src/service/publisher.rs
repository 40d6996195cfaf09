//! Publisher use cases (§7): publish and retract.

use super::*;

impl<S: Store> Service<S> {
    pub(super) fn publish(
        &self,
        actor: &Jid,
        me: &BareJid,
        node: String,
        item: Option<NewItem>,
        preconditions: Option<NodeConfigPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        let cfg = &n.rec.config;
        self.check(me, Action::PublishItems, n)?;
        Self::no_items(n, "publish")?;
        if let Some(p) = &preconditions {
            if let Some(field) = precondition_mismatch(cfg, p) {
                return Err(Error::PreconditionNotMet {
                    field: field.to_owned(),
                });
            }
        }
        let given = item.is_some();
        let (id, payload) = match item {
            Some(NewItem { id, payload }) => (id.filter(|i| !i.is_empty()), payload),
            None => (None, None),
        };
        if cfg.persist_items && !given {
            return Err(Error::ItemRequired);
        }
        if (cfg.deliver_payloads || cfg.persist_items) && payload.is_none() {
            return Err(Error::PayloadRequired);
        }
        if !cfg.persist_items && !cfg.deliver_payloads && payload.is_some() {
            return Err(Error::ItemForbidden);
        }
        let limit = cfg.max_payload_size.min(self.policy.max_payload_size);
        if payload.as_ref().is_some_and(|p| p.len() as u64 > limit) {
            return Err(Error::PayloadTooBig { limit });
        }
        let uid = n.rec.uid;
        // A fresh id is one no item has: checked here, so not looked up again below.
        let (id, fresh) = match id {
            Some(id) => (id, false),
            None => loop {
                let id = self.fresh_item_id(now);
                if self.store.item(uid, &id)?.is_none() {
                    break (id, true);
                }
            },
        };
        let seq = n.counters.last_seq + 1;
        let mut item = Item {
            id: id.clone(),
            seq,
            first_seq: None,
            publisher: actor.clone(),
            published: now,
            payload: payload.unwrap_or_default(),
        };
        let mut changes = ChangeSet::default();
        let mut count = n.counters.count;
        if cfg.persist_items {
            let old = if fresh {
                None
            } else {
                self.store.item(uid, &id)?
            };
            if let Some(o) = &old {
                // An overwrite: the item keeps its creation (XEP-0413 §glossary).
                item.first_seq = Some(o.created_seq());
                changes.push(Change::DeleteItem {
                    uid,
                    id: o.id.clone(),
                    seq: o.seq,
                });
                count = count.saturating_sub(1);
            }
            let keep = cfg.max_items.limit(self.policy.max_items_per_node);
            if keep > 0 {
                changes.push(Change::PutItem {
                    uid,
                    item: item.clone(),
                });
                count += 1;
                // Expiry is fixed at publish time: reconfiguring item_expire later
                // applies to items published from then on.
                if let Some(secs) = cfg.item_expire {
                    changes.push(Change::ScheduleExpiry {
                        at: now.saturating_add(secs.saturating_mul(1000)),
                        uid,
                        seq,
                    });
                }
            }
            if count > keep {
                // The store drops the oldest in bulk (the replaced item, if any, is
                // already gone and the new one is the newest).
                changes.push(Change::TrimItems { uid, keep });
                count = keep;
            }
        }
        // last_seq advances even for transient nodes: it keeps seqs strictly increasing
        // should the node later become persistent.
        changes.push(Change::PutCounters {
            uid,
            counters: ItemCounters {
                count,
                last_seq: seq,
            },
        });
        // The payload goes to the event (stripped when the node does not deliver payloads)
        // and, for content filters, to the walk.
        let payload = item.payload.clone();
        let event = items_event(cfg, vec![item]);
        let notifications = vec![self.item_broadcast(n, Broadcast::Publish, event, &payload)];
        Ok(Plan::with(
            Reply::Published { node, id },
            changes,
            notifications,
        ))
    }

    pub(super) fn retract(
        &self,
        me: &BareJid,
        node: String,
        ids: Vec<String>,
        notify: bool,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.check(me, Action::DeleteOwnItem, n)?;
        Self::no_items(n, "persistent-items")?;
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|i| !i.is_empty())
            .filter(|i| seen.insert(i.clone()))
            .collect();
        if ids.is_empty() {
            return Err(Error::ItemIdRequired);
        }
        let mut changes = ChangeSet::default();
        // Read whole: the publisher decides who may retract, and the payload which
        // filtered subscriptions hear of the retraction.
        let mut items = Vec::with_capacity(ids.len());
        for id in &ids {
            let item = self.store.item(n.rec.uid, id)?.ok_or(Error::ItemNotFound)?;
            if item.publisher.to_bare() != *me {
                self.check(me, Action::DeleteAnyItem, n)?;
            }
            changes.push(Change::DeleteItem {
                uid: n.rec.uid,
                id: item.id.clone(),
                seq: item.seq,
            });
            items.push(item);
        }
        changes.push(Change::PutCounters {
            uid: n.rec.uid,
            counters: ItemCounters {
                count: n.counters.count.saturating_sub(ids.len() as u64),
                last_seq: n.counters.last_seq,
            },
        });
        let notifications = self.retractions(n, notify, items);
        Ok(Plan::with(Reply::Done, changes, notifications))
    }
}

/// The event for published items: payloads stripped unless the node delivers them, each
/// item's publisher named when replies go to it (`pubsub#itemreply`).
pub(super) fn items_event(cfg: &NodeConfig, mut items: Vec<Item>) -> Event {
    if !cfg.deliver_payloads {
        for i in &mut items {
            i.payload.clear();
        }
    }
    Event::Items {
        items,
        with_payload: cfg.deliver_payloads,
        with_publisher: cfg.shows_publisher(),
    }
}
