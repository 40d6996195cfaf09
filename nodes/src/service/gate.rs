//! Asking the access gate: the facts [`crate::access::decide`] needs, gathered in one place.

use super::*;
use crate::access::{Decision, Facts, Question};

/// One question to the gate: may `actor` do `action` on `node`?
#[derive(Clone, Copy)]
pub(super) struct Ask<'a> {
    actor: &'a BareJid,
    question: Question,
    node: Option<&'a NodeState>,
    about: Option<&'a BareJid>,
    config: Option<&'a NodeConfig>,
    aff: Option<Affiliation>,
}

impl<'a> Ask<'a> {
    /// `actor` wants to do `question` on `node`.
    pub(super) fn new(
        actor: &'a BareJid,
        question: impl Into<Question>,
        node: &'a NodeState,
    ) -> Self {
        Ask {
            actor,
            question: question.into(),
            node: Some(node),
            about: None,
            config: None,
            aff: None,
        }
    }

    /// `actor` wants to create a node.
    pub(super) fn create(actor: &'a BareJid) -> Self {
        Ask {
            actor,
            question: Question::CreateNode,
            node: None,
            about: None,
            config: None,
            aff: None,
        }
    }

    /// The request names `jid` (a subscriber request): the rights that count are its,
    /// and naming someone else is for admins only.
    pub(super) fn about(self, jid: &'a BareJid) -> Self {
        Ask {
            about: Some(jid),
            ..self
        }
    }

    /// Decide on `config` rather than the node's current configuration.
    pub(super) fn under(self, config: &'a NodeConfig) -> Self {
        Ask {
            config: Some(config),
            ..self
        }
    }

    /// Decide as if the JID the question is about held `aff` on the node.
    pub(super) fn as_affiliated(self, aff: Affiliation) -> Self {
        Ask {
            aff: Some(aff),
            ..self
        }
    }
}

impl<S: Store> Service<S> {
    /// The one access decision: gathers what [`crate::access::decide`] needs and asks it.
    pub(super) fn gate(&self, ask: Ask<'_>) -> Decision {
        let Some(n) = ask.node else {
            return if self.policy.may_create(ask.actor) {
                Decision::Allow
            } else {
                Decision::Deny(Error::CreateForbidden)
            };
        };
        let who = ask.about.unwrap_or(ask.actor);
        let config = ask.config.unwrap_or(&n.rec.config);
        let aff = if self.is_admin(who) {
            Affiliation::Owner
        } else {
            ask.aff.unwrap_or_else(|| n.aff(who))
        };
        let subscribed = matches!(
            ask.question,
            Question::Do(Action::PublishItems | Action::RetrieveItems)
        ) && self.state.is_subscribed(n, who);
        let asks_rosters = matches!(
            ask.question,
            Question::Do(Action::Subscribe | Action::RetrieveItems) | Question::ReceiveItems
        ) && matches!(
            config.access_model,
            AccessModel::Presence | AccessModel::Roster
        );
        let roster = (asks_rosters && self.rosters.granted())
            .then(|| self.rosters.standing(n.owners(), who));
        access::decide(
            ask.question,
            &Facts {
                aff,
                admin: self.is_admin(ask.actor),
                for_other: who != ask.actor,
                config,
                subscribed,
                roster,
                association_whitelisted: ask.question == Question::AssociateChild
                    && config.children_association_whitelist.contains(who),
            },
        )
    }

    /// Shorthand for the common question: may `me` do `action` on `n`, as the node is?
    pub(super) fn check(
        &self,
        me: &BareJid,
        question: impl Into<Question>,
        n: &NodeState,
    ) -> Result<(), Error> {
        self.gate(Ask::new(me, question, n)).check().map(|_| ())
    }
}
