//! Notifications: broadcasts to subscribers, notices to owners and to one subscriber.

use super::*;

impl<S: Store> Service<S> {
    /// One notification per subscribed JID (with all its subids, §12.5) whose delivery is
    /// not paused (and, for published items, that does not take digests).
    pub(super) fn broadcast(&self, n: &NodeState, event: Event) -> Vec<Notification> {
        // Digest subscriptions get published items batched by `tick` instead (once it runs).
        let items = matches!(event, Event::Items { .. }) && self.clock_running;
        let event = std::sync::Arc::new(event);
        let mut by_jid: BTreeMap<Jid, (Vec<String>, bool)> = BTreeMap::new();
        for s in n.subs.values() {
            if s.state == SubscriptionState::Subscribed
                && s.options.deliver
                && !(items && s.options.digest)
                && self.still_admitted(n, s)
            {
                for to in self.targets(&n.rec.config, s) {
                    let e = by_jid.entry(to).or_default();
                    e.0.push(s.subid.clone());
                    e.1 |= s.options.include_body;
                }
            }
        }
        by_jid
            .into_iter()
            .map(|(to, (subids, include_body))| Notification {
                to,
                node: n.rec.name.clone(),
                subids,
                kind: n.rec.config.notification_type,
                include_body,
                event: event.clone(),
            })
            .collect()
    }

    /// Whether the owners' rosters still admit `sub`'s subscriber to a presence or roster
    /// node (always true for other models). Rosters change after subscribing; one not
    /// known, or lost with the privilege, admits nobody who is not affiliated.
    pub(super) fn still_admitted(&self, n: &NodeState, sub: &Subscription) -> bool {
        let who = sub.jid.to_bare();
        self.gate(Ask::new(&who, Question::ReceiveItems, n)) == Decision::Allow
    }

    /// Notifications to the node's owners (explicit owners; admins are not told).
    pub(super) fn to_owners(&self, n: &NodeState, event: Event) -> Vec<Notification> {
        let event = std::sync::Arc::new(event);
        n.affs
            .iter()
            .filter(|(_, a)| **a == Affiliation::Owner)
            .map(|(jid, _)| Notification {
                to: Jid::from(jid.clone()),
                node: n.rec.name.clone(),
                subids: Vec::new(),
                kind: n.rec.config.notification_type,
                include_body: false,
                event: event.clone(),
            })
            .collect()
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
                kind: NotificationType::Normal,
                include_body: false,
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
            kind: n.rec.config.notification_type,
            include_body: false,
            event: std::sync::Arc::new(Event::Subscription {
                jid: sub.jid.clone(),
                state,
                subid: Some(sub.subid.clone()),
                expiry: sub.options.expire,
            }),
        }
    }
}
