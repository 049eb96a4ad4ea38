//! A store's own metrics, updated where the work happens; the server
//! registers them with its Prometheus registry at each scrape.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

/// Clones share the same metrics.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Seconds to serve a KV batch addressed to one of this node's ranges,
    /// from arrival to answer (errors included).
    pub batch_seconds: Histogram,
    /// KV batches addressed to this node's ranges (errors included).
    pub batches: Counter,
    /// Seconds per WAL fsync of the group-commit thread.
    pub wal_sync_seconds: Histogram,
    /// Raft commands this node proposed as leaseholder.
    pub proposals: Counter,
    /// Reads served without the lease, at or below a closed timestamp.
    pub follower_reads: Counter,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        // 50 µs to about 1.6 s.
        let buckets = || exponential_buckets(0.000_05, 2.0, 16);
        StoreMetrics {
            batch_seconds: Histogram::new(buckets()),
            batches: Counter::default(),
            wal_sync_seconds: Histogram::new(buckets()),
            proposals: Counter::default(),
            follower_reads: Counter::default(),
        }
    }
}
