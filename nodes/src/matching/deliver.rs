//! The one delivery predicate: is this subscription delivered for this occasion, and at
//! which JIDs?
//!
//! Choices where XEP-0060 leaves room (documented once, here):
//! - `pubsub#deliver=false` on a subscription pauses every broadcast to it (items,
//!   retractions, purge, configuration, delete) and the last items; only notifications
//!   about the subscription itself (§8.8.4), which do not come through here, still reach it.
//! - `pubsub#deliver_notifications=false` silences item and retraction events, last items
//!   and digests; purge, configuration and delete events have their own `notify_*`
//!   switches. §8.5 sends the purge event when the node notifies on retraction.
//! - Presence-bound delivery (`pubsub#presence_based_delivery`, or `pubsub#show-values`
//!   narrower than every show) goes to each available resource whose show is accepted,
//!   never to the bare JID, so the server stores nothing offline.
//!
//! Through collections (XEP-0248), a subscription to a collection hears of what happens
//! below it:
//! - only news of the kind its `pubsub#subscription_type` asks for (`items`: published,
//!   retracted, purged; `nodes`: created, deleted, configured, associated, dissociated)
//!   and only from within its `pubsub#subscription_depth`;
//! - the delivery options are those of the node where it happened, not the collection's
//!   (§notify): its `deliver_notifications` and `notify_retract`, its presence-based
//!   delivery, its notification type; the subscription's own options (`deliver`,
//!   `digest`, `show-values`, `include_body`) hold as on a leaf;
//! - news of a node reaches `nodes` subscribers whatever the node's `notify_config` and
//!   `notify_delete` say (those are for the node's own subscribers): subscribing to
//!   node news is the request for it;
//! - access is the node's: items only to who may retrieve the node's items, news of a
//!   node only to who may see it (§security: an open collection over a whitelist, an
//!   authorize or a presence leaf discloses nothing of it).
//! - a content filter on a collection subscription selects among the items of every leaf
//!   below it, as on a leaf it selects among the leaf's items; news of nodes reaches it
//!   whatever its filter.

use super::{Candidate, Context, Occasion, Occurrence};
use crate::model::*;
use crate::presence::PresenceTable;
use crate::state::Sub;
use crate::Jid;

/// Whether the node lets its subscribers hear of `occasion` at all: its
/// `deliver_notifications`, `notify_*` and `send_last_published_item` switches; `via`:
/// for the subscribers of the collections above it (see the module).
pub(crate) fn node_notifies(cfg: &NodeConfig, occasion: &Occasion<'_>, via: bool) -> bool {
    match occasion {
        Occasion::Create | Occasion::Collection { .. } => true,
        Occasion::Delete | Occasion::Configure if via => true,
        Occasion::Publish | Occasion::Digest => cfg.deliver_notifications,
        Occasion::Retract { requested } => {
            cfg.deliver_notifications && (*requested || cfg.notify_retract)
        }
        Occasion::Purge => cfg.notify_retract,
        Occasion::Delete => cfg.notify_delete,
        Occasion::Configure => cfg.notify_config,
        Occasion::Subscribed => {
            cfg.deliver_notifications && cfg.send_last_published_item != SendLastPublished::Never
        }
        Occasion::Online { .. } => {
            cfg.deliver_notifications
                && cfg.send_last_published_item == SendLastPublished::OnSubAndPresence
        }
    }
}

/// The one predicate: is `cand` delivered for `occ`? If so, its recipient JIDs are
/// pushed to `to` (none, when presence-bound and nobody suitable is online).
pub(crate) fn deliver(
    ctx: &impl Context,
    occ: &Occurrence<'_>,
    cand: &Candidate<'_>,
    to: &mut Vec<Jid>,
) -> bool {
    let occasion = &occ.occasion;
    // The options of the node where it happened (XEP-0248 §notify).
    let (sub, cfg) = (&cand.sub, &occ.node.rec.config);
    let options = sub.options();
    let via = cand.via_collection();
    // How far below the subscription's node the node the news is about lies.
    let distance = cand.depth + occasion.offset();
    if distance > 0 {
        let kind = options.subscription_type;
        let wanted = if occasion.about_items() {
            kind.items()
        } else {
            kind.nodes()
        };
        if !wanted || !options.subscription_depth.reaches(distance) {
            return false;
        }
    }
    if !node_notifies(cfg, occasion, via) || !options.deliver {
        return false;
    }
    // A filtered subscription hears of an item only when its filter matched it (a matcher
    // that evaluated the filter says so), whichever matcher offers it.
    if occasion.concerns_items() && sub.filter().is_some() && !cand.matched {
        return false;
    }
    // A new subscription was admitted by the gate a moment ago and is not applied yet;
    // every other one must be subscribed and still admitted (rosters change).
    if !matches!(occasion, Occasion::Subscribed)
        && (sub.state() != SubscriptionState::Subscribed || !ctx.admitted(cand.node, sub.bare()))
    {
        return false;
    }
    if distance > 0 {
        let about = match occasion {
            Occasion::Collection { child, .. } => *child,
            _ => occ.node,
        };
        if !ctx.reaches(about, sub.bare(), occasion.about_items()) {
            return false;
        }
    }
    // Digest subscriptions get published items batched by the tick, once it runs.
    if matches!(occasion, Occasion::Publish) && options.digest && ctx.clock_running() {
        return false;
    }
    match occasion {
        Occasion::Online { resource, show } => {
            let full = Jid::from((*resource).clone());
            if options.show_values.contains(show) && (!sub.is_full() || sub.key.is(&full)) {
                to.push(full);
            }
        }
        _ => targets(ctx.presence(), cfg, sub, to),
    }
    true
}

/// Where a notification for `sub` goes: the JID as subscribed or, when its delivery
/// depends on presence, each available resource (of a bare JID; only the resource itself
/// for a full JID) whose show the subscription accepts. Full JIDs, so that the server
/// never stores one offline.
fn targets(presence: &PresenceTable, cfg: &NodeConfig, sub: &Sub<'_>, to: &mut Vec<Jid>) {
    if !presence_bound(cfg, sub.options()) {
        to.push(sub.jid());
        return;
    }
    let accepts = |show: Show| sub.options().show_values.contains(&show);
    match &sub.key.full {
        Some(full) => {
            if presence.show(full).is_some_and(accepts) {
                to.push(sub.jid());
            }
        }
        None => to.extend(
            presence
                .resources(sub.bare())
                .filter(|(_, show)| accepts(*show))
                .filter_map(|(res, _)| sub.bare().with_resource_str(res).ok().map(Jid::from)),
        ),
    }
}

/// Whether delivery to a subscription with `options` depends on its subscriber's
/// presence: the node delivers by presence, or the subscription accepts only some shows
/// (which only presence can tell).
pub(crate) fn presence_bound(cfg: &NodeConfig, options: &SubOptions) -> bool {
    let shows = &options.show_values;
    cfg.presence_based_delivery || !Show::ALL.iter().all(|s| shows.contains(s))
}

/// Whether the service must learn the presence of a subscriber whose subscription is in
/// `state` with `options`.
pub(crate) fn needs_presence(
    cfg: &NodeConfig,
    state: SubscriptionState,
    options: &SubOptions,
) -> bool {
    state == SubscriptionState::Subscribed
        && (presence_bound(cfg, options)
            || cfg.send_last_published_item == SendLastPublished::OnSubAndPresence)
}
