//! SQL on an in-process cluster of stores: one range over the whole key
//! space and a SQL engine whose gateway is a given node, for tests that
//! drive sessions directly (no pgwire).

use std::sync::Arc;
use std::time::Duration;

use meridian_keys::space::MAX_KEY;
use meridian_sql::{SqlConfig, SqlEngine};

use crate::{ClusterConfig, NodeId, Result, TestCluster};

impl TestCluster {
    /// `n` nodes and one range, on all of them, holding every key, with a
    /// leader.
    pub async fn start_with_one_range(n: usize) -> Result<TestCluster> {
        let cluster = TestCluster::start(ClusterConfig::new(n)).await?;
        let replicas: Vec<NodeId> = cluster.node_ids();
        cluster.create_range(1, b"", MAX_KEY, &replicas).await?;
        cluster.wait_for_leader(1, Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// A SQL engine whose gateway is node `id` (its clock, the cluster's
    /// DistSender).
    pub fn sql_engine(&self, id: NodeId) -> Result<Arc<SqlEngine>> {
        Ok(SqlEngine::new(
            self.dist_sender().clone(),
            self.node(id)?.clock.clone(),
            SqlConfig {
                node_id: id,
                ..Default::default()
            },
        ))
    }
}
