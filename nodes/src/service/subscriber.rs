//! Subscriber use cases (§6): subscribe, unsubscribe, options; and an entity's own
//! subscriptions and affiliations (§5.6, §5.7).

use super::*;
use crate::filter::Filter;

impl<S: Store> Service<S> {
    pub(super) fn subscribe(
        &self,
        me: &BareJid,
        node: String,
        jid: Jid,
        options: Option<SubOptionsPatch>,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        let bare = jid.to_bare();
        let decision = self
            .gate(Ask::new(me, Action::Subscribe, n).about(&bare))
            .check()?;
        if options.is_none() {
            // The lowest subid without a content filter, as the service's choices say.
            let existing = self
                .state
                .jid_subs(n, &bare)
                .filter(|s| s.key.is(&jid) && s.filter().is_none())
                .map(Sub::to_subscription)
                .min_by(|a, b| a.subid.cmp(&b.subid));
            if let Some(sub) = existing {
                return Ok(Plan::read(Reply::Subscription {
                    node,
                    sub,
                    collection: n.rec.config.is_collection(),
                }));
            }
        }
        if n.sub_count() as u64 >= self.policy.max_subscriptions_per_node {
            return Err(Error::LimitReached("subscriptions per node"));
        }
        let held = self.state.subscription_count(&bare);
        if held >= self.policy.max_subscriptions_per_jid {
            return Err(Error::LimitReached("subscriptions per JID"));
        }
        let opts = match &options {
            Some(p) => self.checked_options(&SubOptions::default(), p, now)?,
            None => SubOptions::default(),
        };
        if n.rec.config.is_collection() && opts.filter.is_none() {
            // XEP-0248 §subscribe-errors: one subscription per kind of news. Filtered
            // subscriptions each select other items (XEP-0060 §12): as on a leaf, a JID
            // may hold several, so only unfiltered ones count as the same again.
            let want = opts.subscription_type;
            let overlaps =
                |t: SubscriptionType| (t.items() && want.items()) || (t.nodes() && want.nodes());
            if self.state.jid_subs(n, &bare).any(|s| {
                s.key.is(&jid) && s.filter().is_none() && overlaps(s.options().subscription_type)
            }) {
                return Err(Error::SubscriptionExists(want.as_str()));
            }
        }
        let needs_approval = decision == Decision::Pending;
        let sub = Subscription {
            jid: jid.clone(),
            subid: self.fresh_subid(n, &bare, &BTreeMap::new(), now),
            state: if needs_approval {
                SubscriptionState::Pending
            } else {
                SubscriptionState::Subscribed
            },
            options: opts,
        };
        let mut changes = ChangeSet::default();
        changes.push(Change::PutSubscription {
            node: node.clone(),
            sub: sub.clone(),
        });
        if needs_approval {
            // The authorization request is the owners' notice; no item is sent yet.
            let notifications = self.authorization_requests(n, &sub, None);
            return Ok(Plan::with(
                Reply::Subscription {
                    node,
                    sub,
                    collection: n.rec.config.is_collection(),
                },
                changes,
                notifications,
            ));
        }
        let mut notifications = self.subscription_news(n, &sub, sub.state);
        let planned = Planned::new(&sub);
        let scope = Scope::One(planned.view());
        notifications.extend(self.last_item(n, Occasion::Subscribed, scope)?);
        Ok(Plan::with(
            Reply::Subscription {
                node,
                sub,
                collection: n.rec.config.is_collection(),
            },
            changes,
            notifications,
        ))
    }

    pub(super) fn own_subscriptions(
        &self,
        me: &BareJid,
        node: Option<String>,
    ) -> Result<Plan, Error> {
        if let Some(name) = &node {
            self.node(name)?;
        }
        let mut subs: Vec<(String, Subscription)> = self
            .state
            .subscriptions_of(me)
            .filter(|(n, _)| wanted(node.as_deref(), &n.rec.name))
            .map(|(n, s)| (n.rec.name.clone(), s.to_subscription()))
            .collect();
        // The index is in uid order; the reply lists nodes by name, then subids, as it
        // always has.
        subs.sort_by(|a, b| (&a.0, &a.1.subid).cmp(&(&b.0, &b.1.subid)));
        Ok(Plan::read(Reply::Subscriptions { node, subs }))
    }

    pub(super) fn own_affiliations(
        &self,
        me: &BareJid,
        node: Option<String>,
    ) -> Result<Plan, Error> {
        if let Some(name) = &node {
            self.node(name)?;
        }
        let mut affs: Vec<(String, BareJid, Affiliation)> = self
            .state
            .affiliations_of(me)
            .filter(|(n, _)| wanted(node.as_deref(), &n.rec.name))
            .map(|(n, a)| (n.rec.name.clone(), me.clone(), a))
            .collect();
        // The index is in uid order; the reply lists nodes by name.
        affs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Plan::read(Reply::Affiliations { node, affs }))
    }

    pub(super) fn unsubscribe(
        &self,
        me: &BareJid,
        node: String,
        jid: &Jid,
        subid: Option<String>,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.gate(Ask::new(me, Question::ManageOwnSubscription, n).about(&jid.to_bare()))
            .check()?;
        let sub = self
            .resolve_sub(n, jid, subid.as_deref())?
            .to_subscription();
        let mut changes = ChangeSet::default();
        changes.push(Change::DeleteSubscription {
            node: node.clone(),
            jid: sub.jid.clone(),
            subid: sub.subid.clone(),
        });
        let notifications = self.subscription_news(n, &sub, SubscriptionState::None);
        Ok(Plan::with(Reply::Done, changes, notifications))
    }

    pub(super) fn get_options(
        &self,
        me: &BareJid,
        node: String,
        jid: &Jid,
        subid: Option<String>,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.gate(Ask::new(me, Question::ManageOwnSubscription, n).about(&jid.to_bare()))
            .check()?;
        let sub = self
            .resolve_sub(n, jid, subid.as_deref())?
            .to_subscription();
        Ok(Plan::read(Reply::Options {
            collection: n.rec.config.is_collection(),
            node: Some(node),
            jid: Some(sub.jid.clone()),
            subid: Some(sub.subid.clone()),
            options: sub.options.clone(),
        }))
    }

    pub(super) fn set_options(
        &self,
        me: &BareJid,
        node: String,
        jid: &Jid,
        subid: Option<String>,
        options: &SubOptionsPatch,
        now: Millis,
    ) -> Result<Plan, Error> {
        let n = self.node(&node)?;
        self.gate(Ask::new(me, Question::ManageOwnSubscription, n).about(&jid.to_bare()))
            .check()?;
        let sub = self
            .resolve_sub(n, jid, subid.as_deref())?
            .to_subscription();
        let new_opts = self.checked_options(&sub.options, options, now)?;
        let mut new_sub = sub.clone();
        new_sub.options = new_opts;
        let mut changes = ChangeSet::default();
        changes.push(Change::PutSubscription { node, sub: new_sub });
        Ok(Plan {
            reply: Reply::Done,
            changes,
            notifications: Vec::new(),
        })
    }

    pub(super) fn default_options(&self, node: Option<String>) -> Result<Plan, Error> {
        // Without a node: defaults for any node, collections too.
        let collection = match &node {
            Some(name) => self.node(name)?.rec.config.is_collection(),
            None => true,
        };
        Ok(Plan::read(Reply::Options {
            collection,
            node,
            jid: None,
            subid: None,
            options: SubOptions::default(),
        }))
    }
}

/// `opts` with every field the patch gives replaced.
pub fn patch_options(opts: &SubOptions, patch: &SubOptionsPatch) -> SubOptions {
    let mut out = opts.clone();
    if let Some(v) = patch.deliver {
        out.deliver = v;
    }
    if let Some(v) = patch.digest {
        out.digest = v;
    }
    if let Some(v) = patch.digest_frequency {
        out.digest_frequency = v;
    }
    if let Some(v) = patch.expire {
        out.expire = v;
    }
    if let Some(v) = patch.include_body {
        out.include_body = v;
    }
    if let Some(v) = &patch.show_values {
        out.show_values = v.clone();
    }
    if let Some(v) = &patch.filter {
        // As submitted; the engine keeps the canonical text (`checked_options`).
        out.filter = Some(v.clone()).filter(|f| !f.trim().is_empty());
    }
    if let Some(v) = patch.subscription_type {
        out.subscription_type = v;
    }
    if let Some(v) = patch.subscription_depth {
        out.subscription_depth = v;
    }
    out
}

impl<S: Store> Service<S> {
    /// `opts` patched with `patch`, as they will be stored, or why not: valid, a content
    /// filter given in the patch parsed under the policy's limits and kept as its
    /// canonical text (a filter already held is not checked again: it passed the limits
    /// of its day).
    pub(super) fn checked_options(
        &self,
        opts: &SubOptions,
        patch: &SubOptionsPatch,
        now: Millis,
    ) -> Result<SubOptions, Error> {
        let mut out = patch_options(opts, patch);
        validate_options(&out, now)?;
        if let Some(text) = &patch.filter {
            let parsed = Filter::parse_option(text, &self.policy.filter_limits)
                .map_err(Error::InvalidFilter)?;
            out.filter = parsed.map(|f| f.to_string());
        }
        Ok(out)
    }
}

fn validate_options(opts: &SubOptions, now: Millis) -> Result<(), Error> {
    if opts.digest && opts.digest_frequency == 0 {
        return Err(Error::InvalidOptions(
            "pubsub#digest_frequency must be positive".to_owned(),
        ));
    }
    if opts.expire.is_some_and(|t| t <= now) {
        return Err(Error::InvalidOptions(
            "pubsub#expire is in the past".to_owned(),
        ));
    }
    Ok(())
}

/// Whether `node` passes an optional node filter (spelled out rather than with
/// `Option::is_none_or`, which is newer than the workspace's rust-version).
pub(super) fn wanted(filter: Option<&str>, node: &str) -> bool {
    match filter {
        Some(want) => want == node,
        None => true,
    }
}
