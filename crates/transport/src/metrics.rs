//! Per-peer counters: messages and bytes each way, calls and their failures,
//! messages the network model dropped, and a round-trip-time estimate.
//!
//! Counters are relaxed atomics bumped on the hot path; readers take a
//! [`PeerStatsSnapshot`] (plain values) through
//! [`Transport::peer_stats`](crate::Transport::peer_stats). The RTT estimate
//! is an EWMA over [`Transport::ping`](crate::Transport::ping) round trips, so
//! it includes injected latency; `quic_rtt` is quinn's own smoothed RTT of
//! the current connection, which does not.
//!
//! Owns: the counters and snapshots. Does not own: exporting them
//! (Prometheus export lives in the server crate).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use meridian_topology::NodeId;

/// Weight of a new sample in the RTT moving average.
const RTT_EWMA_ALPHA: f64 = 0.2;

/// Live counters for one peer.
#[derive(Debug, Default)]
pub(crate) struct PeerStats {
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub calls: AtomicU64,
    pub call_errors: AtomicU64,
    pub dropped_by_model: AtomicU64,
    pub refused_frames: AtomicU64,
    /// EWMA in nanoseconds; 0 means no sample yet.
    rtt_ewma_nanos: AtomicU64,
}

impl PeerStats {
    pub(crate) fn sent(&self, bytes: usize) {
        self.messages_sent.fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.messages_received.fetch_add(1, Relaxed);
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn record_rtt(&self, sample: Duration) {
        let sample = u64::try_from(sample.as_nanos()).unwrap_or(u64::MAX).max(1);
        let _ = self.rtt_ewma_nanos.fetch_update(Relaxed, Relaxed, |old| {
            Some(if old == 0 {
                sample
            } else {
                ((1.0 - RTT_EWMA_ALPHA) * old as f64 + RTT_EWMA_ALPHA * sample as f64) as u64
            })
        });
    }

    /// The moving average of the measured round trips, if any was measured.
    pub(crate) fn rtt(&self) -> Option<Duration> {
        let rtt = self.rtt_ewma_nanos.load(Relaxed);
        (rtt != 0).then(|| Duration::from_nanos(rtt))
    }

    fn snapshot(&self, node_id: NodeId) -> PeerStatsSnapshot {
        let rtt = self.rtt_ewma_nanos.load(Relaxed);
        PeerStatsSnapshot {
            node_id,
            messages_sent: self.messages_sent.load(Relaxed),
            messages_received: self.messages_received.load(Relaxed),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            calls: self.calls.load(Relaxed),
            call_errors: self.call_errors.load(Relaxed),
            dropped_by_model: self.dropped_by_model.load(Relaxed),
            refused_frames: self.refused_frames.load(Relaxed),
            rtt: (rtt != 0).then(|| Duration::from_nanos(rtt)),
            quic_rtt: None,
            connected: false,
        }
    }
}

/// A point-in-time copy of one peer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerStatsSnapshot {
    pub node_id: NodeId,
    /// Frames sent to the peer (requests, one-way messages, responses).
    pub messages_sent: u64,
    /// Frames received from the peer.
    pub messages_received: u64,
    /// Frame bytes sent, length prefix included.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Calls made to the peer, and how many of them failed.
    pub calls: u64,
    pub call_errors: u64,
    /// Messages to or from the peer the network model dropped or blocked.
    pub dropped_by_model: u64,
    /// Frames from the peer refused as malformed, oversized or from a clock
    /// beyond the max offset.
    pub refused_frames: u64,
    /// Round-trip estimate from pings (EWMA), injected latency included.
    pub rtt: Option<Duration>,
    /// quinn's smoothed RTT of the outbound connection, if there is one.
    pub quic_rtt: Option<Duration>,
    /// Whether an outbound connection to the peer is open.
    pub connected: bool,
}

/// Counters of every peer this node has talked to, by node id.
#[derive(Default)]
pub(crate) struct StatsRegistry {
    peers: RwLock<HashMap<NodeId, Arc<PeerStats>>>,
}

impl StatsRegistry {
    pub(crate) fn get(&self, node: NodeId) -> Arc<PeerStats> {
        if let Some(s) = self.peers.read().get(&node) {
            return s.clone();
        }
        self.peers.write().entry(node).or_default().clone()
    }

    /// `node`'s measured round trip, without creating its entry.
    pub(crate) fn rtt(&self, node: NodeId) -> Option<Duration> {
        self.peers.read().get(&node).and_then(|s| s.rtt())
    }

    pub(crate) fn snapshot(&self) -> BTreeMap<NodeId, PeerStatsSnapshot> {
        self.peers
            .read()
            .iter()
            .map(|(&id, s)| (id, s.snapshot(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_ewma() {
        let reg = StatsRegistry::default();
        let s = reg.get(3);
        s.sent(10);
        s.sent(5);
        s.received(7);
        s.record_rtt(Duration::from_millis(100));
        s.record_rtt(Duration::from_millis(200));
        let snap = reg.snapshot()[&3].clone();
        assert_eq!(snap.messages_sent, 2);
        assert_eq!(snap.bytes_sent, 15);
        assert_eq!(snap.bytes_received, 7);
        assert_eq!(snap.rtt, Some(Duration::from_millis(120)));
        assert!(Arc::ptr_eq(&s, &reg.get(3)));
    }
}
