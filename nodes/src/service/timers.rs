//! Everything that happens because time passes: item expiry, subscription leases, digests.

use super::*;
use crate::matching::content::Selection;

impl<S: Store> Service<S> {
    /// Everything that happens because time passed, as of `now`: items past
    /// `pubsub#item_expire` are removed (subscribers get a retraction when the node has
    /// `notify_retract`), subscription leases (`pubsub#expire`) that ended are removed
    /// (the subscriber is told: state `none`), and due digests (`pubsub#digest`) go out,
    /// one message per subscription with every item published in the period.
    ///
    /// Meant to be called about once a second; until it is first called, digest
    /// subscriptions receive items one by one. Like [`Service::handle`], it commits its
    /// changes before returning; the caller syncs the store before sending. On `Err`,
    /// nothing changed (the same work is found again on the next tick).
    pub fn tick(&mut self, now: Millis) -> Result<Vec<Notification>, Error> {
        let dispatches = self.tick_streamed(now)?;
        Ok(self.walk_all(dispatches))
    }

    /// [`Service::tick`], with broadcasts handed back as [`Fanout`]s to walk (with
    /// [`Service::walk`]) once the change is durable.
    pub fn tick_streamed(&mut self, now: Millis) -> Result<Vec<Dispatch>, Error> {
        // Fan-outs being walked read the clock (digests): settle them first.
        self.settle();
        if !self.clock_running {
            self.clock_running = true;
            // Until now digest subscribers got items one by one: start their digests here.
            self.state.restart_digests();
        }
        let mut changes = ChangeSet::default();
        let mut notifications: Vec<Dispatch> = Vec::new();

        // Expired items, grouped by node so that each node's counters and retraction
        // notification are computed once.
        let mut expired: BTreeMap<u64, Vec<Item>> = BTreeMap::new();
        for (at, uid, seq) in self.store.due_expiries(now, EXPIRE_BATCH)? {
            changes.push(Change::UnscheduleExpiry { at, uid, seq });
            if !self.state.has_uid(uid) {
                continue; // the node is gone: a stale entry
            }
            let range = ItemRange {
                after: seq.checked_sub(1),
                before: seq.checked_add(1),
                skip: 0,
                limit: 1,
                from_end: false,
            };
            // A stale entry when the item was retracted or replaced meanwhile.
            if let Some(item) = self.store.items_range(uid, &range)?.pop() {
                expired.entry(uid).or_default().push(item);
            }
        }
        for (uid, items) in expired {
            let Some(n) = self.state.node_by_uid(uid) else {
                continue;
            };
            for i in &items {
                changes.push(Change::DeleteItem {
                    uid,
                    id: i.id.clone(),
                    seq: i.seq,
                });
            }
            changes.push(Change::PutCounters {
                uid,
                counters: ItemCounters {
                    count: n.counters.count.saturating_sub(items.len() as u64),
                    last_seq: n.counters.last_seq,
                },
            });
            notifications.extend(self.retractions(n, false, items));
        }

        // Ended leases: the index is ordered by end time, so only those are read.
        for (uid, key) in self.state.ended_leases(now) {
            let Some(n) = self.state.node_by_uid(uid) else {
                continue;
            };
            let Some(sub) = n.sub(&key) else {
                continue;
            };
            let sub = sub.to_subscription();
            notifications.push(self.to_subscriber(n, &sub, SubscriptionState::None).into());
            changes.push(Change::DeleteSubscription {
                node: n.rec.name.clone(),
                jid: sub.jid,
                subid: sub.subid,
            });
        }

        if !changes.is_empty() {
            self.store.commit(&changes)?;
            self.apply(&changes);
        }

        self.track(&notifications);
        let digests = self.release_digests(now)?;
        notifications.extend(digests.into_iter().map(Dispatch::from));
        Ok(notifications)
    }

    /// Sends the digests that are due and schedules the next ones. Only memory changes.
    /// A digest of a subscription to a collection is one message per leaf with items in
    /// the period (a notification names one node), each through the collection.
    pub(super) fn release_digests(&mut self, now: Millis) -> Result<Vec<Notification>, Error> {
        let mut out = Vec::new();
        let keys: Vec<(u64, SubKey)> = self.state.digests.keys().cloned().collect();
        for key in keys {
            let (Some(n), Some(d)) = (
                self.state.node_by_uid(key.0),
                self.state.digests.get(&key).cloned(),
            ) else {
                continue;
            };
            let Some(sub) = n.sub(&key.1) else {
                continue;
            };
            let period = sub.options().digest_frequency.max(1);
            let Some(due) = d.due else {
                if let Some(d) = self.state.digests.get_mut(&key) {
                    d.due = Some(now.saturating_add(period));
                }
                continue;
            };
            if due > now {
                continue;
            }
            let last_seq = n.counters.last_seq;
            if n.rec.config.is_collection() {
                let reach = self.state.descendants(n, sub.options().subscription_depth);
                for (leaf_uid, after) in &d.leaves {
                    let Some((leaf, depth)) = reach.iter().find(|(c, _)| c.rec.uid == *leaf_uid)
                    else {
                        continue; // deleted or dissociated meanwhile
                    };
                    let scope = Scope::Via {
                        sub,
                        collection: n,
                        depth: *depth,
                    };
                    out.extend(self.digest(leaf, sub, scope, *after)?);
                }
            } else {
                out.extend(self.digest(n, sub, Scope::One(sub), d.after_seq)?);
            }
            let leaves = self.state.leaf_seqs(n, sub.options());
            if let Some(d) = self.state.digests.get_mut(&key) {
                d.after_seq = last_seq;
                d.leaves = leaves;
                d.due = Some(now.saturating_add(period));
            }
        }
        Ok(out)
    }

    /// The digest of the items of `n` after seq `after` for `sub`, the one subscription
    /// `scope` names, if the predicate delivers it. A filtered subscription's digest holds
    /// the items its filter matches, and goes out only if there is one: the first stands
    /// for them all before the predicate.
    fn digest(
        &self,
        n: &NodeState,
        sub: Sub<'_>,
        scope: Scope<'_>,
        after: u64,
    ) -> Result<Vec<Notification>, Error> {
        let range = ItemRange {
            after: Some(after),
            before: None,
            skip: 0,
            limit: u64::MAX,
            from_end: false,
        };
        let (recipients, items) = match Selection::of(&sub) {
            Selection::All => {
                let recipients = self.recipients(n, Occasion::Digest, scope, None);
                if recipients.is_empty() {
                    return Ok(Vec::new());
                }
                (recipients, self.store.items_range(n.rec.uid, &range)?)
            }
            selection => {
                let mut items = self.store.items_range(n.rec.uid, &range)?;
                items.retain(|i| selection.accepts(&i.payload));
                let Some(first) = items.first() else {
                    return Ok(Vec::new());
                };
                let subject = Subject::new(first.payload.clone());
                let recipients = self.recipients(n, Occasion::Digest, scope, Some(&subject));
                (recipients, items)
            }
        };
        if recipients.is_empty() || items.is_empty() {
            return Ok(Vec::new());
        }
        let event = items_event(&n.rec.config, items);
        Ok(self.notifications(n, recipients, event))
    }
}
