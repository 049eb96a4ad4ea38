//! Clusters of whole nodes in one process: N `meridian_server::Node`s, each
//! with its store in a temporary directory, on loopback with ports the
//! system chooses, as `meridian start` runs them: bootstrap by `init` on
//! the first, the others joining it, liveness, queues, and each node's
//! PostgreSQL listener ([`NodeCluster::sql_addr`]). The starting is
//! `meridian_server::LocalCluster`'s, which `meridian demo` uses too; this
//! adds the temporary directory, test logging and test localities.
//!
//! [`TestCluster`](crate::TestCluster) is the store-level cluster (no
//! meta range, no node loops, ranges made by hand); this one is for tests
//! of what a node adds: SQL above all.

use std::net::SocketAddr;
use std::time::Duration;

use meridian_server::config::NodeConfig;
use meridian_server::{LocalCluster, Node};
use meridian_transport::Locality;

use crate::{setup, Result};

/// How long the nodes of a cluster may take to become members.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(60);

/// Whole nodes in this process (a [`LocalCluster`] in a temporary
/// directory, localities `region=local,zone=local-a`, `local-b`, ...).
/// Call [`NodeCluster::shutdown`] to stop them cleanly.
pub struct NodeCluster {
    cluster: LocalCluster,
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
        let localities: Vec<Locality> = (0..n)
            .map(|i| Locality::new("local", format!("local-{}", (b'a' + i as u8) as char)))
            .collect();
        NodeCluster::start_uninitialized_with(&localities, |_, _| {}).await
    }

    /// Starts one node per locality, each configured by `configure` (its
    /// 0-based index and settings), initializes the cluster on the first
    /// and waits until every node is a member.
    pub async fn start_with(
        localities: &[Locality],
        configure: impl FnMut(usize, &mut NodeConfig),
    ) -> Result<NodeCluster> {
        let cluster = NodeCluster::start_uninitialized_with(localities, configure).await?;
        cluster.init().await?;
        Ok(cluster)
    }

    async fn start_uninitialized_with(
        localities: &[Locality],
        configure: impl FnMut(usize, &mut NodeConfig),
    ) -> Result<NodeCluster> {
        crate::init_logging();
        let dir = tempfile::tempdir().map_err(setup)?;
        let cluster = LocalCluster::start_uninitialized(dir.path(), localities, configure)
            .await
            .map_err(setup)?;
        Ok(NodeCluster { cluster, _dir: dir })
    }

    /// Initializes the cluster on the first node and waits until every
    /// node is a member.
    pub async fn init(&self) -> Result<()> {
        self.cluster.init(MEMBER_TIMEOUT).await.map_err(setup)
    }

    /// Node `i` (0-based, in start order; the first is node id 1).
    pub fn node(&self, i: usize) -> &Node {
        self.cluster.node(i)
    }

    pub fn nodes(&self) -> &[Node] {
        self.cluster.nodes()
    }

    /// Stops node `i` at once, as a crash would (its store stays).
    pub async fn stop(&self, i: usize) {
        self.cluster.stop(i).await;
    }

    /// Starts node `i` again on its store and addresses.
    pub async fn restart(&mut self, i: usize) -> Result<()> {
        self.cluster.restart(i).await.map_err(setup)
    }

    /// The PostgreSQL address of node `i`.
    pub fn sql_addr(&self, i: usize) -> SocketAddr {
        self.cluster.node(i).sql_addr()
    }

    /// Every node's PostgreSQL address, in start order.
    pub fn sql_addrs(&self) -> Vec<SocketAddr> {
        self.cluster.sql_addrs()
    }

    /// Stops every node, one after the other, each handing its leases away
    /// for at most a second.
    pub async fn shutdown(self) {
        for node in self.cluster.nodes() {
            node.shutdown(Duration::from_secs(1)).await;
        }
    }
}
