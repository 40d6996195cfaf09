//! The engine: one `Service` per pubsub service, driven by one task.

use crate::policy::Policy;
use crate::presence::PresenceTable;
use crate::request::{Outcome, Request};
use crate::store::Store;
use crate::{Error, Jid, Millis};

/// The pubsub service: in-memory state over a [`Store`].
pub struct Service<S: Store> {
    store: S,
    policy: Policy,
    /// Available resources, as the component learns them.
    pub presence: PresenceTable,
}

impl<S: Store> Service<S> {
    /// Load the service's state from `store`.
    pub fn open(mut store: S, policy: Policy) -> Result<Self, Error> {
        let _snapshot = store.load()?;
        Ok(Service {
            store,
            policy,
            presence: PresenceTable::new(),
        })
    }

    /// Handle one request from `actor` at time `now`.
    pub fn handle(&mut self, actor: &Jid, req: Request, now: Millis) -> Result<Outcome, Error> {
        let _ = (actor, req, now, &self.policy);
        Err(Error::Unsupported("not yet"))
    }

    /// The store, e.g. to flush it on shutdown.
    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }
}
