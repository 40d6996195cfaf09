//! After a storage failure: the engine is degraded (it serves nothing) until it has been
//! rebuilt from what the store holds.
//!
//! A failed commit or sync may leave memory ahead of the disk: serving that memory (or
//! building on it) would acknowledge what a restart forgets. So the failed engine is
//! replaced by one loaded from the store, and until that succeeds requests fail with
//! `internal-server-error` (wait).

use std::path::PathBuf;

use roost_nodes::{Millis, Policy, Service, Store};
use roost_storage::Reopenable;
use tracing::warn;

/// Rebuilds the engine from what the store holds durably, after a storage failure: given the
/// failed engine (so that it can release the store first), returns a fresh one.
pub type Recover<S> = Box<dyn FnMut(&mut Service<S>) -> Result<Service<S>, String>>;

/// Least time between two recovery attempts while the store stays broken (e.g. the disk is
/// still full): reopening reloads every node, too costly to do per batch under a flood.
pub const RECOVERY_INTERVAL_MS: u64 = 1_000;

/// The recovery state of one engine.
pub struct Recovery<S: Store> {
    recover: Option<Recover<S>>,
    /// The engine must not be used until it is rebuilt from the store.
    degraded: bool,
    /// When the last attempt was made.
    pub(crate) last_attempt_ms: Millis,
}

impl<S: Store> Default for Recovery<S> {
    fn default() -> Self {
        Recovery {
            recover: None,
            degraded: false,
            last_attempt_ms: 0,
        }
    }
}

impl<S: Store> Recovery<S> {
    /// Rebuild with `recover` after a failure. Without it (the default) a failure only
    /// withholds the batch's acknowledgements.
    pub fn new(recover: Recover<S>) -> Self {
        Recovery {
            recover: Some(recover),
            ..Self::default()
        }
    }

    /// True while the engine waits to be rebuilt.
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }

    /// The batch is over: `durable` false when a storage call or the sync failed, which
    /// degrades the engine if it can be rebuilt.
    pub fn after_batch(&mut self, durable: bool) {
        if !durable && self.recover.is_some() {
            self.degraded = true;
            // Right away after a fresh failure: the sooner memory equals the disk the
            // better; the interval only throttles retries.
            self.last_attempt_ms = 0;
        }
    }

    /// While degraded, and at most once per [`RECOVERY_INTERVAL_MS`], replace `service` by
    /// one rebuilt from the store. True when it was replaced.
    pub fn try_recover(&mut self, service: &mut Service<S>, now: Millis) -> bool {
        if !self.degraded || now.saturating_sub(self.last_attempt_ms) < RECOVERY_INTERVAL_MS {
            return false;
        }
        self.last_attempt_ms = now;
        let Some(recover) = self.recover.as_mut() else {
            return false;
        };
        match recover(service) {
            Ok(fresh) => {
                *service = fresh;
                self.degraded = false;
                true
            }
            Err(e) => {
                warn!("the store cannot be reopened yet ({e}); requests fail until it can");
                false
            }
        }
    }
}

/// Recovery for the sled store in `path`: drops the failed engine's sled handle, reopens
/// the directory and reloads, so that memory holds exactly what is durable.
pub fn reopen(path: PathBuf, durable: bool, policy: Policy) -> Recover<Reopenable> {
    Box::new(move |failed: &mut Service<Reopenable>| {
        failed.store_mut().close();
        let store = Reopenable::open(&path, durable).map_err(|e| e.to_string())?;
        Service::open(store, policy.clone()).map_err(|e| e.to_string())
    })
}
