//! Clusters of whole nodes in one process, on loopback: what `meridian
//! demo` and `meridian bench` start, and what the testkit's `NodeCluster`
//! wraps for tests.
//!
//! In a directory the caller owns (and removes): a throwaway CA and a node
//! certificate for `127.0.0.1`/`localhost` in `certs/`, and one store per
//! node in `node1/`, `node2/`, ... Every node listens on a port the system
//! picks (QUIC on UDP; SQL on TCP), the first is node 1 and the others
//! join it, as `meridian start --join` processes do.
//!
//! Not here: temporary directories and logging (the callers'), faults
//! (the testkit flips them on the shared `NetworkModel` it passes in).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use meridian_transport::Locality;

use crate::config::NodeConfig;
use crate::error::ServerError;
use crate::node::Node;

/// Whole nodes in this process.
pub struct LocalCluster {
    nodes: Vec<Node>,
}

impl LocalCluster {
    /// Starts one node per locality, bootstraps the cluster on the first
    /// before the others start (so their first join succeeds), and waits
    /// up to `timeout` until every node is a member. `configure` adjusts
    /// each node's settings (the `usize` is its 0-based index) before it
    /// starts; stores and certificates go into `dir`.
    pub async fn start(
        dir: &Path,
        localities: &[Locality],
        configure: impl FnMut(usize, &mut NodeConfig),
        timeout: Duration,
    ) -> Result<LocalCluster, ServerError> {
        let cluster = Self::start_nodes(dir, localities, configure, true).await?;
        cluster.wait_members(timeout).await?;
        Ok(cluster)
    }

    /// Starts one node per locality without a cluster: the first waits for
    /// [`LocalCluster::init`], the others wait to join it.
    pub async fn start_uninitialized(
        dir: &Path,
        localities: &[Locality],
        configure: impl FnMut(usize, &mut NodeConfig),
    ) -> Result<LocalCluster, ServerError> {
        Self::start_nodes(dir, localities, configure, false).await
    }

    async fn start_nodes(
        dir: &Path,
        localities: &[Locality],
        mut configure: impl FnMut(usize, &mut NodeConfig),
        bootstrap_first: bool,
    ) -> Result<LocalCluster, ServerError> {
        if localities.is_empty() {
            return Err(ServerError::LocalCluster("a cluster of no nodes".into()));
        }
        meridian_transport::install_crypto_provider();
        let certs = dir.join("certs");
        meridian_transport::create_ca(&certs)?;
        meridian_transport::create_node_cert(&certs, &["127.0.0.1", "localhost"])?;
        let mut nodes: Vec<Node> = Vec::with_capacity(localities.len());
        for (i, locality) in localities.iter().enumerate() {
            let loopback: SocketAddr = "127.0.0.1:0".parse().expect("loopback address");
            let mut config =
                NodeConfig::new(dir.join(format!("node{}", i + 1)), loopback, certs.clone());
            config.locality = locality.clone();
            if let Some(first) = nodes.first() {
                config.join = vec![first.advertise_addr()];
            }
            configure(i, &mut config);
            let node = match Node::start(config).await {
                Ok(node) => node,
                Err(e) => {
                    shutdown_all(&nodes, Duration::ZERO).await;
                    return Err(e);
                }
            };
            if i == 0 && bootstrap_first {
                if let Err(e) = node.bootstrap().await {
                    node.shutdown(Duration::ZERO).await;
                    return Err(e);
                }
            }
            nodes.push(node);
        }
        Ok(LocalCluster { nodes })
    }

    /// Bootstraps the cluster on the first node and waits up to `timeout`
    /// until every node is a member.
    pub async fn init(&self, timeout: Duration) -> Result<(), ServerError> {
        self.nodes[0].bootstrap().await?;
        self.wait_members(timeout).await
    }

    /// Waits until every node is a member, for at most `timeout` in all.
    /// A node that must stop (its `fatal` reason) ends the wait with that
    /// reason.
    pub async fn wait_members(&self, timeout: Duration) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        for node in &self.nodes {
            let mut fatal = node.fatal();
            tokio::select! {
                _ = node.wait_member() => {}
                reason = fatal.wait_for(|r| r.is_some()) => {
                    let reason = reason.ok().and_then(|r| r.clone());
                    return Err(ServerError::LocalCluster(format!(
                        "node at {} stopped before joining: {}",
                        node.advertise_addr(),
                        reason.map(|e| e.to_string()).unwrap_or_default()
                    )));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(ServerError::LocalCluster(format!(
                        "node at {} did not become a member within {timeout:?}",
                        node.advertise_addr()
                    )));
                }
            }
        }
        Ok(())
    }

    /// Waits up to `timeout` until every range has at least `voters`
    /// voters, as node 1 sees them.
    pub async fn wait_replicated(
        &self,
        voters: usize,
        timeout: Duration,
    ) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(status) = self.nodes[0].cluster_status().await {
                if !status.ranges.is_empty()
                    && status.ranges.iter().all(|r| r.voters.len() >= voters)
                {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ServerError::LocalCluster(format!(
                    "ranges did not reach {voters} voters within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Node `i` (0-based, in start order; the first is node id 1).
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Stops node `i` at once (no lease handover), as a crash would.
    pub async fn stop(&self, i: usize) {
        self.nodes[i].shutdown(Duration::ZERO).await;
    }

    /// Starts node `i` again on its store and its addresses (after
    /// [`LocalCluster::stop`]); it rejoins as a restarted process does.
    pub async fn restart(&mut self, i: usize) -> Result<(), ServerError> {
        let old = self.nodes.remove(i);
        let mut config = old.config().clone();
        config.listen = old.advertise_addr();
        config.sql_listen = Some(old.sql_addr());
        old.shutdown(Duration::ZERO).await;
        drop(old);
        // The last tasks of the stopped node let go of its RocksDB (and
        // its lock) and of its sockets a moment after the handle goes.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let node = loop {
            let still_held = |e: &ServerError| match e {
                ServerError::Store { reason, .. } => reason.contains("lock"),
                ServerError::Config(reason) => reason.contains("in use"),
                _ => false,
            };
            match Node::start(config.clone()).await {
                Ok(node) => break node,
                Err(e) if still_held(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => return Err(e),
            }
        };
        self.nodes.insert(i, node);
        Ok(())
    }

    /// Every node's SQL address, in start order.
    pub fn sql_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::sql_addr).collect()
    }

    /// Stops every node at once, each handing its leases away for at most
    /// `drain` (zero: stop without handing them over, when the whole
    /// cluster goes away).
    pub async fn shutdown(self, drain: Duration) {
        shutdown_all(&self.nodes, drain).await;
    }
}

async fn shutdown_all(nodes: &[Node], drain: Duration) {
    join_all(nodes.iter().map(|node| node.shutdown(drain))).await;
}
