//! Prometheus metrics, gathered from the node's state at each scrape
//! (prometheus-client encodes them): replicas and leases, Raft progress,
//! MVCC sizes, per-peer transport counters and round trips, and the
//! measured round trip to each region, and the conformance of the ranges
//! this node leads to their zone configs.
//!
//! Not here: serving them over HTTP (`admin`), the store's own histograms
//! (kvserver, registered here).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use meridian_kvapi::NodeId;
use meridian_kvserver::store::Store;
use meridian_transport::Transport;

use crate::conformance::Totals;
use crate::latency::RegionLatencies;

type Labels = Vec<(String, String)>;

/// Node `me`'s metrics in the OpenMetrics text format, from its store
/// (`None` before it is a member) and its transport.
pub fn metrics_text(
    me: NodeId,
    store: Option<&Store>,
    transport: &Transport,
    latencies: &RegionLatencies,
    conformance: Totals,
) -> String {
    let mut registry = Registry::with_prefix("meridian");
    let replicas = Gauge::<i64>::default();
    let leaseholders = Gauge::<i64>::default();
    let applied = Counter::<u64>::default();
    let live_bytes = Gauge::<i64>::default();
    let closed_lag = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    if let Some(store) = store {
        let metrics = store.metrics().clone();
        registry.register(
            "batch_seconds",
            "Seconds to serve a KV batch at this node (leaseholder side)",
            metrics.batch_seconds,
        );
        registry.register(
            "wal_sync_seconds",
            "Seconds per WAL fsync (group commit)",
            metrics.wal_sync_seconds,
        );
        registry.register(
            "batches",
            "KV batches addressed to this node's ranges",
            metrics.batches,
        );
        registry.register(
            "raft_proposals",
            "Raft commands proposed by this node as leaseholder",
            metrics.proposals,
        );
        registry.register(
            "follower_reads",
            "Reads this node served without the lease, at or below a closed timestamp",
            metrics.follower_reads,
        );
        let now = store.clock().now();
        for r in store.replicas() {
            let closed = r.closed_timestamp();
            if !closed.is_zero() {
                let lag = now.wall_nanos.saturating_sub(closed.wall_nanos) as f64 / 1e9;
                closed_lag
                    .get_or_create(&vec![("range_id".to_string(), r.range_id().to_string())])
                    .set(lag);
            }
            replicas.inc();
            if r.leader() == Some(me) {
                leaseholders.inc();
            }
            applied.inc_by(r.applied_index());
            live_bytes.inc_by(r.stats().live_bytes);
        }
    }
    registry.register("replicas", "Replicas on this node", replicas);
    registry.register(
        "closed_timestamp_lag_seconds",
        "How far behind this node's clock each of its replicas' closed timestamp is (what it serves follower reads at)",
        closed_lag,
    );
    registry.register(
        "leaseholders",
        "Ranges whose lease (Raft leadership) this node holds",
        leaseholders,
    );
    registry.register(
        "raft_applied_entries",
        "Raft entries applied, summed over this node's replicas",
        applied,
    );
    registry.register(
        "live_bytes",
        "Bytes of live MVCC values on this node",
        live_bytes,
    );

    let calls = Family::<Labels, Counter>::default();
    let errors = Family::<Labels, Counter>::default();
    let rtt = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (peer, stats) in transport.peer_stats() {
        let labels = vec![("peer".to_string(), peer.to_string())];
        calls.get_or_create(&labels).inc_by(stats.calls);
        errors.get_or_create(&labels).inc_by(stats.call_errors);
        if let Some(d) = stats.quic_rtt.or(stats.rtt) {
            rtt.get_or_create(&labels).set(d.as_secs_f64());
        }
    }
    registry.register("rpc_calls", "RPC calls made to each peer", calls);
    registry.register(
        "rpc_call_errors",
        "RPC calls to each peer that failed",
        errors,
    );
    registry.register("rpc_rtt_seconds", "Smoothed round trip to each peer", rtt);
    let region_rtt = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (region, ms) in &latencies.regions {
        let labels = vec![("region".to_string(), region.clone())];
        region_rtt.get_or_create(&labels).set(ms / 1e3);
    }
    registry.register(
        "peer_region_rtt_seconds",
        "Measured round trip to each region (median over its nodes, injected latency included)",
        region_rtt,
    );
    for (name, help, value) in [
        (
            "ranges_underreplicated",
            "Ranges this node leads with fewer live voters or non-voters than their zone config wants",
            conformance.under_replicated,
        ),
        (
            "ranges_overreplicated",
            "Ranges this node leads with more voters or non-voters than their zone config wants",
            conformance.over_replicated,
        ),
        (
            "ranges_unavailable",
            "Ranges this node leads whose live voters are short of a quorum",
            conformance.unavailable,
        ),
        (
            "ranges_nonconforming",
            "Ranges this node leads that do not conform to their zone config",
            conformance.nonconforming,
        ),
        (
            "replicas_outside_constraints",
            "Replicas of ranges this node leads on nodes their constraints exclude (must stay 0)",
            conformance.replicas_outside_constraints,
        ),
    ] {
        let gauge = Gauge::<i64>::default();
        gauge.set(value as i64);
        registry.register(name, help, gauge);
    }
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}
