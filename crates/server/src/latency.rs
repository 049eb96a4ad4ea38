//! Measured round trips between this node and the others, by node and by
//! region: a loop pings every node in the directory every
//! [`PING_INTERVAL`] (the transport folds each ping into a per-peer EWMA,
//! injected latency included), and [`RegionLatencies`] turns those into
//! this node's round trip to each region (the median over its nodes
//! there). The allocator reads them for REGION survival (voters outside
//! the home region go to the regions nearest it; the queue runs at the
//! leaseholder, which is in the home region), `GET /_status/latency` and
//! the `peer_region_rtt_seconds` metric show them.
//!
//! Only this node's own region's row of the matrix is known here; the
//! allocator's questions are asked at the leaseholder, from its region.
//!
//! Not here: the pings themselves and the EWMA (`transport`), injecting
//! latency (`transport`'s network model).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_kvapi::NodeId;
use meridian_placement::allocator::RoundTrips;
use meridian_transport::Transport;
use serde::{Deserialize, Serialize};

use crate::directory::Directory;
use crate::member::Member;
use crate::system::NodeDescriptor;

/// How often every other node is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// One peer's measured round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerLatency {
    pub node_id: NodeId,
    pub region: String,
    pub zone: String,
    pub rtt_ms: f64,
}

/// This node's view: each peer, and each region's median.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionLatencies {
    pub node_id: NodeId,
    pub region: String,
    pub peers: Vec<PeerLatency>,
    /// Round trip in milliseconds to each region with a measured peer
    /// (this node's own region: the median over its other nodes there).
    pub regions: BTreeMap<String, f64>,
}

impl RegionLatencies {
    /// From the directory and each peer's measured round trip.
    pub fn gather(
        me: NodeId,
        nodes: &[NodeDescriptor],
        measured: &BTreeMap<NodeId, Duration>,
    ) -> RegionLatencies {
        let region = nodes
            .iter()
            .find(|n| n.node_id == me)
            .map(|n| n.locality.region.clone())
            .unwrap_or_default();
        let peers: Vec<PeerLatency> = nodes
            .iter()
            .filter(|n| n.node_id != me)
            .filter_map(|n| {
                let rtt = measured.get(&n.node_id)?;
                Some(PeerLatency {
                    node_id: n.node_id,
                    region: n.locality.region.clone(),
                    zone: n.locality.zone.clone(),
                    rtt_ms: rtt.as_secs_f64() * 1e3,
                })
            })
            .collect();
        let mut by_region: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for p in &peers {
            by_region
                .entry(p.region.clone())
                .or_default()
                .push(p.rtt_ms);
        }
        let regions = by_region
            .into_iter()
            .map(|(r, mut v)| {
                v.sort_by(f64::total_cmp);
                (r, v[v.len() / 2])
            })
            .collect();
        RegionLatencies {
            node_id: me,
            region,
            peers,
            regions,
        }
    }

    /// The row of the round-trip matrix this node knows, for the
    /// allocator (microseconds; its own region to itself is 0).
    pub fn round_trips(&self) -> RoundTrips {
        let mut rtt = RoundTrips::default();
        for (region, ms) in &self.regions {
            if *region != self.region {
                rtt.set(&self.region, region, (ms * 1e3) as u64);
            }
        }
        rtt
    }
}

/// Each peer's measured round trip (ping EWMA, injected latency included).
pub fn measured(transport: &Transport) -> BTreeMap<NodeId, Duration> {
    transport
        .peer_stats()
        .into_iter()
        .filter_map(|(id, s)| Some((id, s.rtt?)))
        .collect()
}

/// Pings every other node every [`PING_INTERVAL`] while the membership
/// lives.
pub(crate) async fn run(member: Weak<Member>, directory: Arc<Directory>) {
    loop {
        let Some(m) = member.upgrade() else { return };
        let transport = m.store.transport().clone();
        let me = m.ident.node_id;
        drop(m);
        let pings = directory
            .nodes()
            .into_iter()
            .filter(|n| n.node_id != me)
            .map(|n| {
                let transport = transport.clone();
                async move {
                    let _ = transport.ping(n.node_id, PING_TIMEOUT).await;
                }
            });
        futures_util::future::join_all(pings).await;
        tokio::time::sleep(PING_INTERVAL).await;
    }
}

#[cfg(test)]
mod tests {
    use meridian_transport::Locality;

    use super::*;

    fn node(id: NodeId, region: &str) -> NodeDescriptor {
        NodeDescriptor {
            node_id: id,
            address: String::new(),
            http_address: None,
            locality: Locality::new(region, format!("{region}-{id}")),
        }
    }

    #[test]
    fn each_region_gets_the_median_of_its_measured_nodes() {
        let nodes = [
            node(1, "east"),
            node(2, "east"),
            node(3, "west"),
            node(4, "west"),
            node(5, "west"),
            node(6, "eu"),
        ];
        let ms = Duration::from_millis;
        let measured = BTreeMap::from([(2, ms(1)), (3, ms(60)), (4, ms(66)), (5, ms(90))]);
        let view = RegionLatencies::gather(1, &nodes, &measured);
        assert_eq!(view.region, "east");
        assert_eq!(view.peers.len(), 4, "node 6 was never measured");
        assert_eq!(view.regions["west"], 66.0);
        assert_eq!(view.regions["east"], 1.0);
        assert!(!view.regions.contains_key("eu"));
        let rtt = view.round_trips();
        assert_eq!(rtt.get("east", "west"), Some(66_000));
        assert_eq!(rtt.get("west", "east"), Some(66_000));
        assert_eq!(rtt.get("east", "eu"), None);
        assert_eq!(rtt.get("east", "east"), Some(0));
    }
}
