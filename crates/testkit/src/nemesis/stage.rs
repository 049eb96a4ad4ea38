//! The stage nemesis tests run on: a cluster of 3 nodes (or more, for
//! replica moves) with two ranges on nodes 1 to 3, a nemesis over it, and
//! the DistSender and clocks a workload uses.
//!
//! Owns: starting that cluster, running a workload future and the nemesis
//! side by side, and waiting after the faults until both ranges take
//! writes again (the liveness half of a run: quorum held throughout, so
//! the cluster must recover). Does not own: the workloads, their checks,
//! the faults' semantics.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_hlc::HybridClock;
use meridian_kvapi::Request;

use super::{FaultKind, Nemesis, NemesisConfig, NemesisLog, Stop};
use crate::{ClusterConfig, DistSender, DistSenderConfig, TestCluster};

/// Range 1 holds `[a, m)`, range 2 `[m, z)`.
pub const RANGES: [(u64, &[u8], &[u8]); 2] = [(1, b"a", b"m"), (2, b"m", b"z")];

/// The DistSender timeouts of workload clients: a call to one replica
/// gives up after 2 s, a whole send after 6 s.
pub const WORKLOAD_DIST_SENDER: DistSenderConfig = DistSenderConfig {
    rpc_timeout: Duration::from_secs(2),
    deadline: Duration::from_secs(6),
};

pub struct Stage {
    pub cluster: TestCluster,
    pub nemesis: Nemesis,
    pub seed: u64,
}

impl Stage {
    /// Three nodes, two ranges on all of them with leaders, and a nemesis
    /// of `seed` drawing from `kinds`.
    pub async fn start(seed: u64, kinds: &[FaultKind]) -> Result<Stage, String> {
        Stage::start_with(seed, kinds, 3, Vec::new()).await
    }

    /// `nodes` nodes (at least 3), two ranges on nodes 1 to 3 with
    /// leaders, and a nemesis of `seed` drawing from `kinds` over every
    /// node, splitting at and moving the ranges of `split_keys`.
    pub async fn start_with(
        seed: u64,
        kinds: &[FaultKind],
        nodes: usize,
        split_keys: Vec<Vec<u8>>,
    ) -> Result<Stage, String> {
        let config = ClusterConfig::new(nodes);
        let max_offset = config.max_offset;
        let cluster = TestCluster::start(config)
            .await
            .map_err(|e| e.to_string())?;
        for (range, start, end) in RANGES {
            cluster
                .create_range(range, start, end, &[1, 2, 3])
                .await
                .map_err(|e| e.to_string())?;
        }
        for (range, _, _) in RANGES {
            cluster
                .wait_for_leader(range, Duration::from_secs(30))
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut nemesis = NemesisConfig::new(seed, nodes, &[1, 2], max_offset);
        nemesis.kinds = kinds.to_vec();
        nemesis.split_keys = split_keys;
        Ok(Stage {
            cluster,
            nemesis: Nemesis::new(nemesis),
            seed,
        })
    }

    /// A DistSender of its own for a workload ([`WORKLOAD_DIST_SENDER`]).
    pub fn dist_sender(&self) -> DistSender {
        self.cluster.dist_sender_with(WORKLOAD_DIST_SENDER)
    }

    /// Each node's hybrid clock (skewed with its node), as gateway clocks
    /// for transactions. They stay usable across a kill and restart.
    pub fn clocks(&self) -> Vec<Arc<HybridClock>> {
        self.cluster
            .node_ids()
            .into_iter()
            .map(|id| {
                self.cluster
                    .node(id)
                    .expect("running at the start")
                    .clock
                    .clone()
            })
            .collect()
    }

    /// Runs `workload` and a nemesis schedule of `duration` side by side,
    /// and raises `stop` when the nemesis is done (every fault undone,
    /// every range led again); the workload must end soon after.
    pub async fn run<F: Future>(
        &mut self,
        duration: Duration,
        stop: &Stop,
        workload: F,
    ) -> (Result<NemesisLog, String>, F::Output) {
        let nemesis = async {
            let log = self.nemesis.run(&mut self.cluster, duration).await;
            stop.stop();
            log
        };
        tokio::join!(nemesis, workload)
    }

    /// Waits until a write to each range succeeds, for at most `timeout`
    /// (after the faults, the cluster must take writes again).
    pub async fn wait_until_writable(&self, timeout: Duration) -> Result<(), String> {
        let ds = self.dist_sender();
        let deadline = Instant::now() + timeout;
        for (range, start, _) in RANGES {
            let mut key = start.to_vec();
            key.extend_from_slice(b"/nemesis-probe");
            loop {
                let put = Request::Put {
                    key: key.clone(),
                    value: b"1".to_vec(),
                };
                match ds.send(vec![put]).await {
                    Ok(_) => break,
                    Err(e) if Instant::now() >= deadline => {
                        return Err(format!(
                            "seed {}: range {range} took no write within {timeout:?} after the faults: {e}",
                            self.seed
                        ))
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }
        Ok(())
    }

    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}
