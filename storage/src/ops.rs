//! Counts of the sled operations a store makes, for benchmarks (`benches/store.rs`).
//!
//! A *read* is a point lookup or one row yielded by a range scan; a *write* is one key
//! inserted or removed by a batch. Relaxed atomics: a few nanoseconds per operation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals of sled reads and writes.
#[derive(Debug, Default)]
pub struct OpCounts {
    reads: AtomicU64,
    writes: AtomicU64,
}

impl OpCounts {
    pub(crate) fn read(&self, n: u64) {
        self.reads.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn write(&self, n: u64) {
        self.writes.fetch_add(n, Ordering::Relaxed);
    }

    /// (reads, writes) so far.
    pub fn get(&self) -> (u64, u64) {
        (
            self.reads.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}
