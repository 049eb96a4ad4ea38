//! What the cluster benchmarks share: flags and a 3-node cluster with N
//! ranges, each on all three nodes, with a leader.

use std::time::Duration;

use meridian_kvserver::RaftTimeouts;
use meridian_testkit::{ClusterConfig, TestCluster};

/// The value of `--name N` on the command line, or `default`.
pub fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The span of range `range_id`: keys starting `r<id>/`.
pub fn range_prefix(range_id: u64) -> String {
    format!("r{range_id:06}/")
}

/// Starts 3 nodes with LAN timeouts and creates `ranges` ranges replicated
/// on all of them, each with an elected leader.
pub async fn cluster_with_ranges(ranges: u64) -> TestCluster {
    let mut config = ClusterConfig::new(3);
    config.timeouts = RaftTimeouts::LAN;
    let cluster = TestCluster::start(config).await.unwrap();
    for range_id in 1..=ranges {
        let start = range_prefix(range_id).into_bytes();
        let end = format!("r{range_id:06}0").into_bytes();
        cluster
            .create_range(range_id, &start, &end, &[1, 2, 3])
            .await
            .unwrap();
    }
    for range_id in 1..=ranges {
        cluster
            .wait_for_leader(range_id, Duration::from_secs(120))
            .await
            .unwrap();
    }
    cluster
}
