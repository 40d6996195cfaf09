//! Request-rate quotas: one token bucket per bare JID.
//!
//! The engine caps what a JID may *own* (nodes, subscriptions, payload size); this caps how
//! fast it may *ask*, so that one flooding client cannot take the single service task (and
//! every group-commit flush) for itself. A request over the limit is answered at once with
//! `resource-constraint` (type `wait`): RFC 6120 §8.3.3.18 defines it as "the requesting
//! entity lacks the system resources necessary to service the request", and `wait` tells a
//! well-behaved client to retry later, which is exactly the remedy. `policy-violation` would
//! suggest the request itself is forbidden, which it is not.

use roost_nodes::BareJid;
use std::collections::HashMap;

/// Refill rate and burst of every JID's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per second a JID may sustain.
    pub per_sec: f64,
    /// Requests a JID may send at once after a quiet spell (the bucket's size).
    pub burst: f64,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_sec: 200.0,
            burst: 400.0,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// Buckets not touched for this long are full again and can be forgotten.
const IDLE_MS: u64 = 60_000;

/// Token buckets by bare JID. Memory is bounded by the JIDs active within the last minute:
/// a full bucket is indistinguishable from a missing one, so idle ones are dropped.
#[derive(Debug)]
pub struct Quotas {
    limit: RateLimit,
    buckets: HashMap<BareJid, Bucket>,
    last_sweep_ms: u64,
}

impl Quotas {
    /// Buckets for `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Quotas {
            limit,
            buckets: HashMap::new(),
            last_sweep_ms: 0,
        }
    }

    /// Take one token from `jid`'s bucket at time `now_ms`; `false` when it is empty.
    pub fn allow(&mut self, jid: &BareJid, now_ms: u64) -> bool {
        self.sweep(now_ms);
        let limit = self.limit;
        let b = self.buckets.entry(jid.clone()).or_insert(Bucket {
            tokens: limit.burst,
            at_ms: now_ms,
        });
        // A clock step backwards must not mint tokens or panic.
        let elapsed = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
        b.tokens = (b.tokens + elapsed * limit.per_sec).min(limit.burst);
        b.at_ms = b.at_ms.max(now_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// JIDs currently tracked (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn sweep(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < IDLE_MS {
            return;
        }
        self.last_sweep_ms = now_ms;
        self.buckets
            .retain(|_, b| now_ms.saturating_sub(b.at_ms) < IDLE_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jid(s: &str) -> BareJid {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let mut q = Quotas::new(RateLimit {
            per_sec: 10.0,
            burst: 5.0,
        });
        let a = jid("a@x");
        for _ in 0..5 {
            assert!(q.allow(&a, 1_000));
        }
        assert!(!q.allow(&a, 1_000), "the burst is spent");
        // 100 ms at 10/s is one more token.
        assert!(q.allow(&a, 1_100));
        assert!(!q.allow(&a, 1_100));
    }

    #[test]
    fn jids_are_independent() {
        let mut q = Quotas::new(RateLimit {
            per_sec: 1.0,
            burst: 1.0,
        });
        assert!(q.allow(&jid("a@x"), 0));
        assert!(!q.allow(&jid("a@x"), 0));
        assert!(q.allow(&jid("b@x"), 0));
    }

    #[test]
    fn clock_going_back_mints_nothing() {
        let mut q = Quotas::new(RateLimit {
            per_sec: 1.0,
            burst: 1.0,
        });
        let a = jid("a@x");
        assert!(q.allow(&a, 10_000));
        assert!(!q.allow(&a, 5_000));
        assert!(!q.allow(&a, 10_000));
        assert!(q.allow(&a, 11_000));
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let mut q = Quotas::new(RateLimit::default());
        for i in 0..100 {
            q.allow(&jid(&format!("u{i}@x")), 1);
        }
        assert_eq!(q.tracked(), 100);
        q.allow(&jid("late@x"), 1 + 2 * IDLE_MS);
        assert_eq!(q.tracked(), 1);
    }
}
