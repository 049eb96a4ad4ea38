//! SQL on an in-process cluster of stores: one range over the whole key
//! space and a SQL engine whose gateway is a given node, for tests that
//! drive sessions directly (no pgwire).

use std::sync::Arc;
use std::time::Duration;

use meridian_keys::space::MAX_KEY;
use meridian_sql::{LocalitiesFn, SqlConfig, SqlEngine};
use meridian_transport::Locality;

use crate::{ClusterConfig, NodeId, Result, TestCluster};

impl TestCluster {
    /// `n` nodes and one range, on all of them, holding every key, with a
    /// leader.
    pub async fn start_with_one_range(n: usize) -> Result<TestCluster> {
        let replicas: Vec<NodeId> = (1..=n as NodeId).collect();
        TestCluster::start_with_one_range_on(ClusterConfig::new(n), &replicas).await
    }

    /// The nodes of `config` and one range holding every key, on
    /// `replicas` only, with a leader.
    pub async fn start_with_one_range_on(
        config: ClusterConfig,
        replicas: &[NodeId],
    ) -> Result<TestCluster> {
        let cluster = TestCluster::start(config).await?;
        cluster.create_range(1, b"", MAX_KEY, replicas).await?;
        cluster.wait_for_leader(1, Duration::from_secs(30)).await?;
        Ok(cluster)
    }

    /// A SQL engine whose gateway is node `id` (its clock and locality,
    /// the cluster's DistSender and node localities).
    pub fn sql_engine(&self, id: NodeId) -> Result<Arc<SqlEngine>> {
        let locality = self.nodes[&id].locality.clone();
        let localities: Vec<(NodeId, Locality)> =
            (1..).zip(self.config.localities.iter().cloned()).collect();
        Ok(SqlEngine::new(
            self.dist_sender().clone(),
            self.node(id)?.clock.clone(),
            SqlConfig {
                node_id: id,
                locality: vec![
                    ("region".to_string(), locality.region),
                    ("zone".to_string(), locality.zone),
                ],
                cluster_localities: Some(Arc::new(LocalitiesFn(move || localities.clone()))),
                ..Default::default()
            },
        ))
    }
}

impl ClusterConfig {
    /// `per_region` nodes in each of `regions`, each node in its own zone
    /// (`<region>-a`, `-b`, ...); node ids go region by region.
    pub fn multi_region(regions: &[&str], per_region: usize) -> Self {
        let mut config = ClusterConfig::new(regions.len() * per_region);
        config.localities = regions
            .iter()
            .flat_map(|r| {
                (0..per_region)
                    .map(move |i| Locality::new(*r, format!("{r}-{}", (b'a' + i as u8) as char)))
            })
            .collect();
        config
    }
}
