//! Operational metrics, in Prometheus form (prometheus-client), and the health of the
//! service; served over HTTP by [`http`] when `metrics_listen` is set.
//!
//! Updating a metric on the request path is one relaxed atomic add: counters are
//! prometheus-client `Counter`s (an `AtomicU64`), and requests by kind and outcome are a
//! fixed table of atomics ([`RequestCounts`]) read only when scraped, so no label is looked
//! up per request. Histograms (a lock) are observed once per batch, and the gauges are set
//! once a second from [`roost_nodes::Service::stats`].

#[cfg(feature = "jemalloc")]
mod heap;
pub mod http;
mod requests;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use roost_nodes::ServiceStats;

pub use requests::{Kind, Outcome, RequestCounts};

/// Every metric of the service, and its health.
#[derive(Debug)]
pub struct Metrics {
    /// Items published (successful publish requests).
    pub publishes: Counter,
    /// Notification messages written to the link.
    pub notifications: Counter,
    /// Connections to the server after the first.
    pub reconnects: Counter,
    /// IQ requests by kind and outcome.
    pub requests: Arc<RequestCounts>,
    /// Stanzas handled per batch (one commit group, one sync).
    pub batch_size: Histogram,
    /// Time of each batch's `Store::sync`.
    pub sync_seconds: Histogram,
    nodes: Gauge,
    subscriptions: Gauge,
    items: Gauge,
    linked: AtomicBool,
    store_ok: AtomicBool,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set, registered under the `roost_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roost");
        let publishes = Counter::default();
        let notifications = Counter::default();
        let reconnects = Counter::default();
        let requests = Arc::new(RequestCounts::default());
        // 1 to 512 stanzas (MAX_BATCH), in powers of two.
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        // 50 µs to about 1.6 s: an fdatasync on a fast SSD to a saturated disk.
        let sync_seconds = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        let (nodes, subscriptions, items) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "publishes",
            "Items published (successful publish requests)",
            publishes.clone(),
        );
        registry.register(
            "notifications",
            "Notification messages sent to subscribers",
            notifications.clone(),
        );
        registry.register(
            "link_reconnects",
            "Connections to the XMPP server after the first",
            reconnects.clone(),
        );
        registry.register_collector(Box::new(requests::Collector(requests.clone())));
        registry.register(
            "commit_batch_size",
            "Stanzas handled per batch (they share one store sync)",
            batch_size.clone(),
        );
        registry.register(
            "sync_seconds",
            "Time of each batch's store sync (fdatasync)",
            sync_seconds.clone(),
        );
        registry.register("nodes", "Nodes", nodes.clone());
        registry.register(
            "subscriptions",
            "Subscriptions in any state",
            subscriptions.clone(),
        );
        registry.register("items", "Items stored", items.clone());
        #[cfg(feature = "jemalloc")]
        registry.register_collector(Box::new(heap::Collector));
        Metrics {
            publishes,
            notifications,
            reconnects,
            requests,
            batch_size,
            sync_seconds,
            nodes,
            subscriptions,
            items,
            linked: AtomicBool::new(false),
            store_ok: AtomicBool::new(true),
            registry,
        }
    }

    /// Set the gauges from the engine's totals.
    pub fn set_totals(&self, s: &ServiceStats) {
        let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.nodes.set(g(s.nodes));
        self.subscriptions.set(g(s.subscriptions));
        self.items.set(g(s.items));
    }

    /// Whether the link to the server is up (authenticated).
    pub fn set_linked(&self, up: bool) {
        self.linked.store(up, Ordering::Relaxed);
    }

    /// Whether the store serves (false while the engine waits to be rebuilt after a
    /// storage failure).
    pub fn set_store_ok(&self, ok: bool) {
        self.store_ok.store(ok, Ordering::Relaxed);
    }

    /// `Ok` when healthy: linked to the server with a working store; otherwise what is
    /// wrong.
    pub fn health(&self) -> Result<(), &'static str> {
        match (
            self.linked.load(Ordering::Relaxed),
            self.store_ok.load(Ordering::Relaxed),
        ) {
            (true, true) => Ok(()),
            (false, _) => Err("not linked to the XMPP server"),
            (true, false) => Err("the store failed; rebuilding from disk"),
        }
    }

    /// Every metric in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series ` in `text`.
    pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn every_metric_of_the_issue_is_exposed_with_its_value() {
        let m = Metrics::new();
        m.publishes.inc();
        m.publishes.inc();
        m.notifications.inc_by(5);
        m.reconnects.inc();
        m.requests.count(Kind::Publish, Outcome::Ok);
        m.requests.count(Kind::Publish, Outcome::Ok);
        m.requests.count(
            Kind::Subscribe,
            Outcome::Error(&xmpp_parsers::stanza_error::DefinedCondition::Forbidden),
        );
        m.batch_size.observe(3.0);
        m.sync_seconds.observe(0.001);
        m.set_totals(&ServiceStats {
            nodes: 2,
            subscriptions: 7,
            subscribed: 6,
            items: 11,
        });
        let t = m.encode();
        assert_eq!(sample(&t, "roost_publishes_total"), Some(2.0), "{t}");
        assert_eq!(sample(&t, "roost_notifications_total"), Some(5.0));
        assert_eq!(sample(&t, "roost_link_reconnects_total"), Some(1.0));
        assert_eq!(
            sample(&t, "roost_requests_total{kind=\"publish\",outcome=\"ok\"}"),
            Some(2.0),
            "{t}"
        );
        assert_eq!(
            sample(
                &t,
                "roost_requests_total{kind=\"subscribe\",outcome=\"forbidden\"}"
            ),
            Some(1.0)
        );
        assert!(
            !t.contains("kind=\"create\""),
            "kinds never seen are not listed"
        );
        assert_eq!(sample(&t, "roost_commit_batch_size_count"), Some(1.0));
        assert_eq!(sample(&t, "roost_commit_batch_size_sum"), Some(3.0));
        assert_eq!(sample(&t, "roost_sync_seconds_count"), Some(1.0));
        assert_eq!(sample(&t, "roost_nodes"), Some(2.0));
        assert_eq!(sample(&t, "roost_subscriptions"), Some(7.0));
        assert_eq!(sample(&t, "roost_items"), Some(11.0));
        assert!(t.contains("# TYPE roost_requests counter"), "{t}");
        assert!(t.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn health_needs_the_link_and_the_store() {
        let m = Metrics::new();
        assert!(m.health().is_err(), "not linked at start");
        m.set_linked(true);
        assert!(m.health().is_ok());
        m.set_store_ok(false);
        assert!(m.health().unwrap_err().contains("store"));
        m.set_store_ok(true);
        m.set_linked(false);
        assert!(m.health().unwrap_err().contains("linked"));
    }
}
