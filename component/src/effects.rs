//! [`Effects`]: what handling one stanza, a timer tick or a connection start produced, as a
//! value the service loop takes.

use std::sync::Arc;

use roost_nodes::{Dispatch, Event};
use xmpp_parsers::stanza::Stanza;

/// What one piece of work asks the service loop to do: stanzas to send, the notifications of
/// the changes it made, and whether a storage call failed.
///
/// Handlers return it rather than setting flags on shared state, so that the loop alone
/// decides what becomes of a batch: everything in it goes out after the batch's sync, the
/// stanzas of each piece of work before its notifications; after a storage failure the
/// acknowledgements are withheld and the engine is rebuilt from the store.
#[derive(Debug, Default)]
#[must_use]
pub struct Effects {
    /// Replies, presences, requests to other entities, in order.
    pub stanzas: Vec<Stanza>,
    /// Notifications of the changes made, in order (a fan-out walked only as it is
    /// written); sent after `stanzas`.
    pub notifications: Vec<Dispatch>,
    /// A storage call failed: memory may be ahead of the disk.
    pub storage_failed: bool,
    /// Events among `notifications` whose item payloads were serialized by this process
    /// from XML it parsed for the same request: their text may be copied into the
    /// notifications as it is ([`crate::pubsub::NotificationRenderer::trust`]).
    pub fresh_payloads: Vec<Arc<Event>>,
}

impl Effects {
    /// Nothing to do.
    pub fn none() -> Self {
        Self::default()
    }

    /// One stanza to send.
    pub fn stanza(st: impl Into<Stanza>) -> Self {
        Effects {
            stanzas: vec![st.into()],
            ..Self::default()
        }
    }

    /// Stanzas to send.
    pub fn stanzas<T: Into<Stanza>>(sts: impl IntoIterator<Item = T>) -> Self {
        Effects {
            stanzas: sts.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Add a stanza after those already there.
    pub fn push(&mut self, st: impl Into<Stanza>) {
        self.stanzas.push(st.into());
    }

    /// Add notifications (one each, or fan-outs) after those already there.
    pub fn notify<N: Into<Dispatch>>(&mut self, notifications: impl IntoIterator<Item = N>) {
        self.notifications
            .extend(notifications.into_iter().map(Into::into));
    }

    /// Add `other`'s stanzas and notifications after these; either failing fails both.
    pub fn extend(&mut self, other: Effects) {
        self.stanzas.extend(other.stanzas);
        self.notify(other.notifications);
        self.storage_failed |= other.storage_failed;
        self.fresh_payloads.extend(other.fresh_payloads);
    }

    /// Take note of an engine error: a storage failure marks these effects failed. True
    /// when it was one (the caller logs it as an error rather than a refusal).
    pub fn engine_error(&mut self, e: &roost_nodes::Error) -> bool {
        let storage = matches!(e, roost_nodes::Error::Storage(_));
        self.storage_failed |= storage;
        storage
    }
}
