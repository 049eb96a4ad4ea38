//! Who leads a range, as the running replicas see it: finding and
//! waiting for the leader, moving the lease on purpose, and whether a
//! range's replicas all stopped their timers (quiesced).
//!
//! Does not own faults that move leases as a side effect (the nemesis).

use std::time::Duration;

use meridian_kvapi::RangeId;
use meridian_transport::NodeId;

use crate::{Result, TestCluster, TestkitError};

impl TestCluster {
    /// Whether every node's replica of `range_id` is quiesced (a node
    /// without one, or not running, counts as not).
    pub fn quiesced_everywhere(&self, range_id: RangeId) -> bool {
        self.node_ids().into_iter().all(|n| {
            self.store(n)
                .ok()
                .and_then(|s| s.replica(range_id))
                .is_some_and(|r| r.is_quiesced())
        })
    }

    /// The node whose replica of `range_id` currently leads, as the running
    /// replicas agree.
    pub fn leader(&self, range_id: RangeId) -> Option<NodeId> {
        self.nodes
            .values()
            .filter_map(|s| s.running.as_ref())
            .find_map(|node| {
                let replica = node.store.replica(range_id)?;
                (replica.leader() == Some(node.store.node_id())).then(|| node.store.node_id())
            })
    }

    /// Waits until some running node leads `range_id`.
    pub async fn wait_for_leader(&self, range_id: RangeId, timeout: Duration) -> Result<NodeId> {
        self.wait_for(
            &format!("a leader of range {range_id}"),
            timeout,
            || async { self.leader(range_id) },
        )
        .await
    }

    /// Moves the lease of `range_id` to node `to` (a planned transfer by
    /// the current leader) and waits, for at most `timeout`, until `to`
    /// leads.
    pub async fn move_lease(&self, range_id: RangeId, to: NodeId, timeout: Duration) -> Result<()> {
        let from = self.wait_for_leader(range_id, timeout).await?;
        if from != to {
            self.store(from)?
                .transfer_leadership(range_id, to)
                .await
                .map_err(|e| TestkitError::Raft(e.to_string()))?;
        }
        self.wait_for(
            &format!("node {to} to lead range {range_id}"),
            timeout,
            || async { self.leader(range_id).filter(|&l| l == to) },
        )
        .await?;
        Ok(())
    }
}
