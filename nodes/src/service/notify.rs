//! Notifications: broadcasts to subscribers, notices to owners and to one subscriber.

use super::*;

impl<S: Store> Context for Service<S> {
    fn presence(&self) -> &PresenceTable {
        &self.presence
    }

    fn admitted(&self, node: &NodeState, subscriber: &BareJid) -> bool {
        self.gate(Ask::new(subscriber, Question::ReceiveItems, node)) == Decision::Allow
    }

    fn reaches(&self, node: &NodeState, subscriber: &BareJid, items: bool) -> bool {
        let question = if items {
            Question::Do(Action::RetrieveItems)
        } else {
            Question::SeeNode
        };
        self.gate(Ask::new(subscriber, question, node)).is_allowed()
    }

    fn clock_running(&self) -> bool {
        self.clock_running
    }
}

impl<S: Store> Service<S> {
    /// Who `occasion` on `n` reaches among `scope`, through the matching stage; `subject`:
    /// the item it is about, for content filters.
    pub(super) fn recipients(
        &self,
        n: &NodeState,
        occasion: Occasion<'_>,
        scope: Scope<'_>,
        subject: Option<&Subject>,
    ) -> Vec<Recipient> {
        let occ = Occurrence {
            node: n,
            occasion,
            scope,
            subject,
        };
        self.matchers.recipients(self, &self.state, &occ)
    }

    /// The node's last item to whom `occasion` (a new subscription, a resource coming
    /// online) reaches among `scope` (`pubsub#send_last_published_item`), content filters
    /// applied to it.
    pub(super) fn last_item(
        &self,
        n: &NodeState,
        occasion: Occasion<'_>,
        scope: Scope<'_>,
    ) -> Result<Vec<Notification>, Error> {
        if !crate::matching::deliver::node_notifies(&n.rec.config, &occasion, false) {
            return Ok(Vec::new());
        }
        let Some(mut last) = self.store.latest_items(n.rec.uid, Some(1))?.pop() else {
            return Ok(Vec::new());
        };
        let subject = Subject::new(std::mem::take(&mut last.payload));
        let recipients = self.recipients(n, occasion, scope, Some(&subject));
        if recipients.is_empty() {
            return Ok(Vec::new());
        }
        last.payload = subject.into_payload();
        let event = items_event(&n.rec.config, vec![last]);
        Ok(self.notifications(n, recipients, event))
    }

    /// One notification of `event` on `n` per recipient.
    pub(super) fn notifications(
        &self,
        n: &NodeState,
        recipients: Vec<Recipient>,
        event: Event,
    ) -> Vec<Notification> {
        let event = std::sync::Arc::new(event);
        recipients
            .into_iter()
            .map(|r| Notification {
                to: r.to,
                node: n.rec.name.clone(),
                subids: r.subids,
                name_subids: r.name_subids,
                kind: n.rec.config.notification_type,
                include_body: r.include_body,
                collections: r.collections,
                event: event.clone(),
            })
            .collect()
    }

    /// `event` to everyone `broadcast` on `n` reaches, walked once the change is applied.
    /// News of the node: no content filter applies.
    pub(super) fn broadcast(&self, n: &NodeState, broadcast: Broadcast, event: Event) -> Dispatch {
        self.fanout(
            &n.rec,
            n.rec.config.notification_type,
            broadcast,
            event,
            None,
        )
    }

    /// Whether a content filter may select among `n`'s items: a filtered subscription to
    /// `n` or to a collection above it (XEP-0248).
    pub(super) fn filters_reach(&self, n: &NodeState) -> bool {
        n.has_filters() || self.state.ancestors(n).iter().any(|(a, _)| a.has_filters())
    }

    /// `event` about the item whose payload is `payload` to everyone `broadcast` on `n`
    /// reaches: filtered subscriptions (to `n` or to a collection above it) when their
    /// filter matches the item. The payload is kept for the walk only when a filter may
    /// select among the node's items.
    pub(super) fn item_broadcast(
        &self,
        n: &NodeState,
        broadcast: Broadcast,
        event: Event,
        payload: &str,
    ) -> Dispatch {
        let subject = self
            .filters_reach(n)
            .then(|| Subject::new(payload.to_owned()));
        self.fanout(
            &n.rec,
            n.rec.config.notification_type,
            broadcast,
            event,
            subject,
        )
    }

    /// The retraction of `items` from `n` (by request, or expired), to everyone it
    /// reaches. Where a content filter may select among the node's items each item is its
    /// own notification, so that a filtered subscription hears of exactly the items its
    /// filter matched; elsewhere one notification lists them all.
    pub(super) fn retractions(
        &self,
        n: &NodeState,
        requested: bool,
        items: Vec<Item>,
    ) -> Vec<Dispatch> {
        let broadcast = Broadcast::Retract { requested };
        if !self.filters_reach(n) {
            let ids = items.into_iter().map(|i| i.id).collect();
            return vec![self.broadcast(n, broadcast, Event::Retract { ids })];
        }
        items
            .into_iter()
            .map(|i| {
                let event = Event::Retract { ids: vec![i.id] };
                self.item_broadcast(n, broadcast, event, &i.payload)
            })
            .collect()
    }

    /// Notifications to the node's owners (explicit owners; admins are not told).
    pub(super) fn to_owners(&self, n: &NodeState, event: Event) -> Vec<Notification> {
        let event = std::sync::Arc::new(event);
        n.owners()
            .map(|jid| Notification {
                to: Jid::from(jid.clone()),
                node: n.rec.name.clone(),
                subids: Vec::new(),
                name_subids: false,
                kind: n.rec.config.notification_type,
                include_body: false,
                collections: Vec::new(),
                event: event.clone(),
            })
            .collect()
    }

    /// The owners' notice that `sub` is now in `state` (subscribed, or gone), when the node
    /// asks for them (`pubsub#notify_sub`).
    pub(super) fn subscription_news(
        &self,
        n: &NodeState,
        sub: &Subscription,
        state: SubscriptionState,
    ) -> Vec<Notification> {
        if !n.rec.config.notify_sub {
            return Vec::new();
        }
        let event = Event::Subscription {
            jid: sub.jid.clone(),
            state,
            subid: Some(sub.subid.clone()),
            // A subscription that is gone has no lease to tell of.
            expiry: sub
                .options
                .expire
                .filter(|_| state != SubscriptionState::None),
        };
        self.to_owners(n, event)
    }

    /// The §8.6 authorization request for a pending subscription: to `only` when given
    /// (get-pending, §8.7), else to every owner.
    pub(super) fn authorization_requests(
        &self,
        n: &NodeState,
        sub: &Subscription,
        only: Option<&Jid>,
    ) -> Vec<Notification> {
        let event = Event::Subscription {
            jid: sub.jid.clone(),
            state: SubscriptionState::Pending,
            subid: Some(sub.subid.clone()),
            expiry: sub.options.expire,
        };
        let mut out = match only {
            Some(to) => vec![Notification {
                to: to.clone(),
                node: n.rec.name.clone(),
                subids: Vec::new(),
                name_subids: false,
                kind: NotificationType::Normal,
                include_body: false,
                collections: Vec::new(),
                event: std::sync::Arc::new(event),
            }],
            None => self.to_owners(n, event),
        };
        // A form to fill in is not a headline: it must be stored for offline owners.
        for m in &mut out {
            m.kind = NotificationType::Normal;
        }
        out
    }

    /// Tell a subscriber its subscription changed (§8.8.4).
    pub(super) fn to_subscriber(
        &self,
        n: &NodeState,
        sub: &Subscription,
        state: SubscriptionState,
    ) -> Notification {
        Notification {
            to: sub.jid.clone(),
            node: n.rec.name.clone(),
            subids: vec![sub.subid.clone()],
            name_subids: false,
            kind: n.rec.config.notification_type,
            include_body: false,
            collections: Vec::new(),
            event: std::sync::Arc::new(Event::Subscription {
                jid: sub.jid.clone(),
                state,
                subid: Some(sub.subid.clone()),
                expiry: sub.options.expire,
            }),
        }
    }
}
