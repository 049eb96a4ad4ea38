//! Prometheus metrics, gathered from the node's state at each scrape
//! (prometheus-client encodes them): replicas and leases, Raft progress,
//! MVCC sizes, and per-peer transport counters and round trips.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::node::Node;

type Labels = Vec<(String, String)>;

/// The node's metrics in the OpenMetrics text format.
pub fn metrics_text(node: &Node) -> String {
    let mut registry = Registry::with_prefix("meridian");
    let me = node.node_id();
    let replicas = Gauge::<i64>::default();
    let leaseholders = Gauge::<i64>::default();
    let applied = Counter::<u64>::default();
    let live_bytes = Gauge::<i64>::default();
    if let Some(member) = node.member() {
        let store = member.store.metrics().clone();
        registry.register(
            "batch_seconds",
            "Seconds to serve a KV batch at this node (leaseholder side)",
            store.batch_seconds,
        );
        registry.register(
            "wal_sync_seconds",
            "Seconds per WAL fsync (group commit)",
            store.wal_sync_seconds,
        );
        registry.register(
            "raft_proposals",
            "Raft commands proposed by this node as leaseholder",
            store.proposals,
        );
        for r in member.store.replicas() {
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
    for (peer, stats) in node.transport().peer_stats() {
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
    let mut out = String::new();
    encode(&mut out, &registry).expect("writing to a String cannot fail");
    out
}
