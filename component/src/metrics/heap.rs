//! The heap as jemalloc counts it (feature `jemalloc`), read when scraped.
//!
//! The process's RSS counts the pages jemalloc keeps for reuse (Roost keeps every freed
//! page, see `main.rs`), so it stays at its high-water mark: a slow growth of what Roost
//! really holds would not show in it until that mark is passed. `heap_allocated_bytes` is
//! what jemalloc counts as allocated: Roost's data, and the small blocks freed into each
//! thread's cache, which jemalloc counts as allocated until they go back to their arena (in
//! the soak it crept up by ~2 MB over 5 minutes while a heap profile of the same run stayed
//! flat, and with the thread caches off it stayed flat too: docs/benchmarks.md).
//! `heap_resident_bytes` is what jemalloc holds, freed pages included.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

#[derive(Debug)]
pub(super) struct Collector;

/// jemalloc's statistics as of now: (allocated, resident) bytes.
fn read() -> Option<(u64, u64)> {
    // jemalloc refreshes the figures it reports only when its epoch is advanced.
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    let allocated = tikv_jemalloc_ctl::stats::allocated::read().ok()?;
    let resident = tikv_jemalloc_ctl::stats::resident::read().ok()?;
    Some((allocated as u64, resident as u64))
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((allocated, resident)) = read() else {
            return Ok(());
        };
        for (name, help, v) in [
            (
                "heap_allocated_bytes",
                "Bytes jemalloc counts as allocated: live data and blocks in its thread caches",
                allocated,
            ),
            (
                "heap_resident_bytes",
                "Bytes of physical memory jemalloc holds, pages kept for reuse included",
                resident,
            ),
        ] {
            let g = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
            g.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{tests::sample, Metrics};

    /// Under the test harness the global allocator is the system's: jemalloc still answers
    /// for its own (nearly empty) heap, and the figures are exposed. In the `roost` binary
    /// they are Roost's heap (`scripts/soak` reports them).
    #[test]
    fn the_heap_figures_are_exposed() {
        let text = Metrics::new().encode();
        let allocated = sample(&text, "roost_heap_allocated_bytes");
        let resident = sample(&text, "roost_heap_resident_bytes");
        assert!(allocated.is_some_and(|a| a >= 0.0), "{text}");
        // jemalloc's own metadata is resident as soon as it has started.
        assert!(resident.is_some_and(|r| r > 0.0), "{text}");
    }
}
