//! Clusters of whole nodes in one process: N `meridian_server::Node`s, each
//! with its store in a temporary directory, on loopback with ports the
//! system chooses, as `meridian start` runs them: bootstrap by `init` on
//! the first, the others joining it, liveness, queues, and each node's
//! PostgreSQL listener ([`NodeCluster::sql_addr`]).
//!
//! [`TestCluster`](crate::TestCluster) is the store-level cluster (no
//! meta range, no node loops, ranges made by hand); this one is for tests
//! of what a node adds: SQL above all.

use std::net::SocketAddr;
use std::time::Duration;

use meridian_server::{Node, NodeConfig};
use meridian_transport::Locality;

use crate::{setup, Result, TestkitError};

/// How long the nodes of a cluster may take to become members.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(60);

/// Whole nodes in this process. Call [`NodeCluster::shutdown`] to stop
/// them cleanly.
pub struct NodeCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

impl NodeCluster {
    /// Starts `n` nodes, initializes the cluster on the first (the others
    /// join it) and waits until every node is a member.
    pub async fn start(n: usize) -> Result<NodeCluster> {
        let cluster = NodeCluster::start_uninitialized(n).await?;
        cluster.init().await?;
        Ok(cluster)
    }

    /// Starts `n` nodes without initializing a cluster: the first waits for
    /// [`NodeCluster::init`], the others wait to join it.
    pub async fn start_uninitialized(n: usize) -> Result<NodeCluster> {
        crate::init_logging();
        meridian_transport::install_crypto_provider();
        let dir = tempfile::tempdir().map_err(setup)?;
        let certs = dir.path().join("certs");
        meridian_transport::create_ca(&certs).map_err(setup)?;
        meridian_transport::create_node_cert(&certs, &["127.0.0.1", "localhost"]).map_err(setup)?;
        let mut nodes: Vec<Node> = Vec::with_capacity(n);
        for i in 0..n {
            let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
            let mut config = NodeConfig::new(
                dir.path().join(format!("node{}", i + 1)),
                loopback,
                certs.clone(),
            );
            config.locality = Locality::new("local", format!("local-{}", (b'a' + i as u8) as char));
            if let Some(first) = nodes.first() {
                config.join = vec![first.advertise_addr()];
            }
            nodes.push(Node::start(config).await.map_err(setup)?);
        }
        Ok(NodeCluster { nodes, _dir: dir })
    }

    /// Initializes the cluster on the first node and waits until every
    /// node is a member.
    pub async fn init(&self) -> Result<()> {
        let first = self
            .nodes
            .first()
            .ok_or_else(|| setup("a cluster of no nodes"))?;
        first.bootstrap().await.map_err(setup)?;
        for node in &self.nodes {
            tokio::time::timeout(MEMBER_TIMEOUT, node.wait_member())
                .await
                .map_err(|_| {
                    TestkitError::Timeout(
                        MEMBER_TIMEOUT,
                        format!("node at {} to become a member", node.advertise_addr()),
                    )
                })?;
        }
        Ok(())
    }

    /// Node `i` (0-based, in start order; the first is node id 1).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The PostgreSQL address of node `i`.
    pub fn sql_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].sql_addr()
    }

    /// Every node's PostgreSQL address, in start order.
    pub fn sql_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::sql_addr).collect()
    }

    /// Stops every node (each hands its leases away for at most a second).
    pub async fn shutdown(self) {
        for node in &self.nodes {
            node.shutdown(Duration::from_secs(1)).await;
        }
    }
}
