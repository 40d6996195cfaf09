//! The one delivery predicate.

use crate::model::*;

/// Whether delivery to `sub` depends on its subscriber's presence: the node delivers by
/// presence, or the subscription accepts only some shows (which only presence can tell).
pub(crate) fn presence_bound(cfg: &NodeConfig, sub: &Subscription) -> bool {
    cfg.presence_based_delivery
        || !Show::ALL
            .iter()
            .all(|s| sub.options.show_values.contains(s))
}

/// Whether the service must learn `sub`'s subscriber's presence.
pub(crate) fn needs_presence(cfg: &NodeConfig, sub: &Subscription) -> bool {
    sub.state == SubscriptionState::Subscribed
        && (presence_bound(cfg, sub)
            || cfg.send_last_published_item == SendLastPublished::OnSubAndPresence)
}
