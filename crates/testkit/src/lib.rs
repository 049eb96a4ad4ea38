//! testkit: in-process clusters for tests.
//!
//! A [`TestCluster`] runs N real nodes in one process: each has its own
//! RocksDB directory, its own QUIC endpoint on loopback (certificates from a
//! throwaway cluster CA), its own hybrid clock (skewable), and a [`Store`].
//! All nodes share one [`NetworkModel`], so a test can inject latency between
//! regions, partition nodes, or isolate one. Nodes can be killed (their
//! replicas stop, their endpoint closes, their data stays) and restarted on
//! the same address.
//!
//! Nothing here stands in for a layer of the product: the cluster is the
//! product's own store, storage and transport, wired as a node wires them.
//! Requests go through the product's own [`DistSender`] (leaseholder
//! routing, redirects, retries), which reaches the stores in process
//! ([`InProcess`], in `routing.rs`): a test cluster has no meta range, so
//! its ranges are located from the replicas themselves. Waiting is always
//! for a condition ([`TestCluster::wait_for`]), polled, never a fixed
//! sleep.
//!
//! Scenario (golden) files are run with [`golden`], re-exported from
//! `meridian-golden`.
//!
//! [`NodeCluster`] (in `nodes.rs`) runs whole nodes instead, as
//! `meridian start` does (bootstrap, join, liveness, queues), for tests of
//! what a node adds above the stores; each node's SQL address is
//! [`NodeCluster::sql_addr`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_hlc::{HybridClock, SkewedClock, SystemClock};
use meridian_kvapi::{KvError, RangeDescriptor, RangeId, ReplicaDescriptor, Request, Response};

use meridian_kvserver::{RaftTimeouts, Store};
use meridian_storage::{Engine, EngineOptions};
use meridian_transport::{Locality, NetworkModel, NodeIdentity, Transport, TransportConfig};

mod consistency;
mod leadership;
pub mod nemesis;
mod nodes;
mod routing;
mod sql;

pub use meridian_golden as golden;
pub use meridian_kvclient::{BatchHeader, ClientError, DistSender, DistSenderConfig};
pub use meridian_transport::NodeId;
pub use nodes::NodeCluster;
pub use routing::InProcess;

/// What went wrong starting or driving a test cluster.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("node {0} is not running")]
    NodeDown(NodeId),
    #[error("{0}")]
    Setup(String),
    /// A Raft operation a test asked for (a snapshot, a purge) failed.
    #[error("raft: {0}")]
    Raft(String),
    #[error("kv: {0}")]
    Kv(#[from] KvError),
    /// The DistSender gave up (its own deadline) or refused the batch.
    #[error("client: {0}")]
    Client(ClientError),
}

impl From<ClientError> for TestkitError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Kv(e) => TestkitError::Kv(e),
            other => TestkitError::Client(other),
        }
    }
}

pub type Result<T, E = TestkitError> = std::result::Result<T, E>;

fn setup(e: impl std::fmt::Display) -> TestkitError {
    TestkitError::Setup(e.to_string())
}

/// The shape of a test cluster.
#[derive(Clone)]
pub struct ClusterConfig {
    /// One locality per node; node ids are 1, 2, ...
    pub localities: Vec<Locality>,
    pub timeouts: RaftTimeouts,
    /// The clock offset bound of every node; the lease must outlast it
    /// (`RaftTimeouts::check_lease_covers_offset`).
    pub max_offset: Duration,
    /// Shared by all nodes. Idle unless a test configures it.
    pub network: NetworkModel,
}

impl ClusterConfig {
    /// `n` nodes in one region, each in its own zone.
    pub fn new(n: usize) -> Self {
        let localities = (0..n)
            .map(|i| Locality {
                region: "local".into(),
                zone: format!("local-{}", (b'a' + i as u8) as char),
            })
            .collect();
        ClusterConfig {
            localities,
            timeouts: RaftTimeouts::TEST,
            max_offset: RaftTimeouts::TEST_MAX_OFFSET,
            network: NetworkModel::new(),
        }
    }
}

/// A running node of a test cluster.
pub struct TestNode {
    pub store: Store,
    pub transport: Transport,
    pub engine: Engine,
    pub clock: Arc<HybridClock>,
}

struct NodeSlot {
    locality: Locality,
    addr: SocketAddr,
    dir: PathBuf,
    skew: Arc<SkewedClock>,
    running: Option<TestNode>,
}

/// N nodes in one process. Dropping it stops nothing cleanly; call
/// [`TestCluster::shutdown`].
pub struct TestCluster {
    dir: tempfile::TempDir,
    identity: NodeIdentity,
    config: ClusterConfig,
    nodes: BTreeMap<NodeId, NodeSlot>,
    /// The running stores, as the DistSender reaches them.
    stores: InProcess,
    ds: DistSender,
}

/// The DistSender's own deadline; each call of [`TestCluster::send`] has
/// its caller's, shorter, timeout on top.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

/// Installs a log subscriber once (respecting `RUST_LOG`, default: warnings
/// of our crates, errors of openraft), so failing tests explain themselves.
pub fn init_logging() {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,openraft=error".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

impl TestCluster {
    /// Starts every node of `config` (no ranges yet).
    pub async fn start(config: ClusterConfig) -> Result<TestCluster> {
        init_logging();
        meridian_transport::install_crypto_provider();
        let dir = tempfile::tempdir().map_err(setup)?;
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&certs).map_err(setup)?;
        meridian_transport::create_ca(&certs).map_err(setup)?;
        meridian_transport::create_node_cert(&certs, &["127.0.0.1", "localhost"]).map_err(setup)?;
        let identity = meridian_transport::load_node_identity(&certs).map_err(setup)?;

        let stores = InProcess::default();
        let ds = DistSender::with_transport(
            Arc::new(stores.clone()),
            Arc::new(stores.clone()),
            DistSenderConfig {
                deadline: CLIENT_DEADLINE,
                ..DistSenderConfig::default()
            },
        );
        let mut cluster = TestCluster {
            dir,
            identity,
            config: config.clone(),
            nodes: BTreeMap::new(),
            stores,
            ds,
        };
        for (i, locality) in config.localities.iter().enumerate() {
            let id = i as NodeId + 1;
            let node_dir = cluster.dir.path().join(format!("node-{id}"));
            let skew = Arc::new(SkewedClock::new(Arc::new(SystemClock)));
            cluster.nodes.insert(
                id,
                NodeSlot {
                    locality: locality.clone(),
                    addr: "127.0.0.1:0".parse().expect("loopback address"),
                    dir: node_dir,
                    skew,
                    running: None,
                },
            );
            cluster.boot(id).await?;
        }
        cluster.refresh_address_books();
        Ok(cluster)
    }

    /// Starts node `id` from its directory, on its previous address if it
    /// had one.
    async fn boot(&mut self, id: NodeId) -> Result<()> {
        let slot = self.nodes.get(&id).ok_or(TestkitError::NodeDown(id))?;
        let clock = Arc::new(HybridClock::new(slot.skew.clone(), self.config.max_offset));
        let mut transport_config = TransportConfig::new(id, slot.addr, slot.locality.clone());
        transport_config.network = Some(self.config.network.clone());
        transport_config.peer_timeout = Duration::from_secs(2);
        // Likewise the old endpoint's socket, held by tasks still finishing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let transport = loop {
            match Transport::start(transport_config.clone(), &self.identity, clock.clone()).await {
                Ok(transport) => break transport,
                Err(e) if Instant::now() >= deadline => return Err(setup(e)),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        // RocksDB's lock may outlive a killed node's last handle for a moment.
        let engine = retry_for(Duration::from_secs(10), || {
            Engine::open(
                &slot.dir,
                &EngineOptions {
                    block_cache_bytes: 8 << 20,
                    ..EngineOptions::default()
                },
            )
        })
        .await
        .map_err(setup)?;
        let store = Store::start(
            id,
            engine.clone(),
            transport.clone(),
            clock.clone(),
            self.config.timeouts,
        )
        .await
        .map_err(setup)?;
        let addr = transport.local_addr();
        self.stores.insert(id, store.clone());
        let slot = self.nodes.get_mut(&id).expect("slot exists");
        slot.addr = addr;
        slot.running = Some(TestNode {
            store,
            transport,
            engine,
            clock,
        });
        Ok(())
    }

    fn refresh_address_books(&self) {
        for slot in self.nodes.values() {
            let Some(node) = &slot.running else { continue };
            for (&peer, peer_slot) in &self.nodes {
                node.transport
                    .set_peer(peer, peer_slot.addr, peer_slot.locality.clone());
            }
        }
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }

    pub fn node(&self, id: NodeId) -> Result<&TestNode> {
        self.nodes
            .get(&id)
            .and_then(|s| s.running.as_ref())
            .ok_or(TestkitError::NodeDown(id))
    }

    pub fn store(&self, id: NodeId) -> Result<&Store> {
        Ok(&self.node(id)?.store)
    }

    pub fn is_running(&self, id: NodeId) -> bool {
        self.node(id).is_ok()
    }

    pub fn network(&self) -> &NetworkModel {
        &self.config.network
    }

    /// Skews node `id`'s physical clock by `nanos` (negative: behind).
    pub fn skew_clock(&self, id: NodeId, nanos: i64) {
        if let Some(slot) = self.nodes.get(&id) {
            slot.skew.set_skew_nanos(nanos);
        }
    }

    /// Stops node `id`: its replicas stop and its endpoint closes; its data
    /// stays for [`TestCluster::restart`].
    pub async fn kill(&mut self, id: NodeId) -> Result<()> {
        let slot = self.nodes.get_mut(&id).ok_or(TestkitError::NodeDown(id))?;
        let node = slot.running.take().ok_or(TestkitError::NodeDown(id))?;
        self.stores.remove(id);
        node.store.shutdown().await;
        node.transport.shutdown().await;
        Ok(())
    }

    /// Restarts a killed node on its old address with its old data.
    pub async fn restart(&mut self, id: NodeId) -> Result<()> {
        self.boot(id).await?;
        self.refresh_address_books();
        Ok(())
    }

    /// Polls `check` every 10 ms until it returns `Some`, for at most `timeout`.
    pub async fn wait_for<T, F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check().await {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::Timeout(timeout, what.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Creates range `range_id` over `[start, end)` with voters on `voters`
    /// and initializes its group from the first of them.
    pub async fn create_range(
        &self,
        range_id: RangeId,
        start: &[u8],
        end: &[u8],
        voters: &[NodeId],
    ) -> Result<()> {
        let descriptor = RangeDescriptor {
            range_id,
            start_key: start.to_vec(),
            end_key: end.to_vec(),
            replicas: voters
                .iter()
                .map(|&n| ReplicaDescriptor::voter(n))
                .collect(),
            generation: 0,
        };
        let first = *voters
            .first()
            .ok_or_else(|| setup("a range needs a voter"))?;
        self.store(first)?
            .bootstrap_range(&descriptor)
            .await
            .map_err(setup)?;
        Ok(())
    }

    /// Sends a batch through the cluster's [`DistSender`]: to the
    /// leaseholders of the ranges holding its keys (`range_id` names the
    /// range the caller expects, for the error message; routing is by key),
    /// following `NotLeaseholder` hints and retrying retryable errors until
    /// `timeout`. Responses come in request order.
    pub async fn send(
        &self,
        range_id: RangeId,
        requests: Vec<Request>,
        timeout: Duration,
    ) -> Result<Vec<Response>> {
        match tokio::time::timeout(timeout, self.ds.send(requests)).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(TestkitError::Timeout(
                timeout,
                format!("range {range_id} to serve a batch"),
            )),
        }
    }

    /// A DistSender on node `node` that reaches the leaseholders over that
    /// node's QUIC transport, as a gateway does: the network model's
    /// partitions and drops apply to its requests and their replies. It
    /// locates ranges like the cluster's own DistSender.
    pub fn gateway_dist_sender(
        &self,
        node: NodeId,
        config: DistSenderConfig,
    ) -> Result<DistSender> {
        let transport = self.node(node)?.transport.clone();
        Ok(DistSender::new(
            transport,
            Arc::new(self.stores.clone()),
            config,
        ))
    }

    /// Builds a snapshot of node `node`'s replica of `range_id` and purges
    /// its log up to it, waiting for both: a replica that needs entries
    /// from before can then only catch up by snapshot.
    pub async fn snapshot_and_truncate(&self, node: NodeId, range_id: RangeId) -> Result<()> {
        let replica = self
            .store(node)?
            .replica(range_id)
            .ok_or(KvError::RangeNotFound { range_id })?;
        let raft_error = |e: &dyn std::fmt::Display| TestkitError::Raft(e.to_string());
        replica
            .raft()
            .trigger()
            .snapshot()
            .await
            .map_err(|e| raft_error(&e))?;
        let applied = replica.applied_index();
        self.wait_for("a snapshot", Duration::from_secs(30), || async {
            replica
                .raft_status()
                .snapshot_index
                .filter(|&s| s >= applied)
        })
        .await?;
        replica
            .raft()
            .trigger()
            .purge_log(applied)
            .await
            .map_err(|e| raft_error(&e))?;
        self.wait_for("the log purged", Duration::from_secs(30), || async {
            replica.raft_status().purged_index.filter(|&p| p >= applied)
        })
        .await?;
        Ok(())
    }

    /// A new DistSender (its own range cache) that reaches the stores in
    /// process like the cluster's own, with `config`'s timeouts: what a
    /// nemesis workload uses, so that an operation gives up in seconds
    /// rather than after the cluster DistSender's two minutes.
    pub fn dist_sender_with(&self, config: DistSenderConfig) -> DistSender {
        DistSender::with_transport(
            Arc::new(self.stores.clone()),
            Arc::new(self.stores.clone()),
            config,
        )
    }

    /// The cluster's DistSender (its range cache shows what it learned).
    pub fn dist_sender(&self) -> &DistSender {
        &self.ds
    }

    pub async fn put(&self, range_id: RangeId, key: &[u8], value: &[u8]) -> Result<()> {
        let request = Request::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        };
        self.send(range_id, vec![request], Duration::from_secs(20))
            .await?;
        Ok(())
    }

    pub async fn get(&self, range_id: RangeId, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let request = Request::Get { key: key.to_vec() };
        let response = self
            .send(range_id, vec![request], Duration::from_secs(20))
            .await?;
        match response.into_iter().next() {
            Some(Response::Get { value }) => Ok(value),
            other => Err(setup(format!("unexpected response {other:?}"))),
        }
    }

    /// Stops every running node.
    pub async fn shutdown(mut self) {
        for id in self.node_ids() {
            let _ = self.kill(id).await;
        }
    }
}

async fn retry_for<T, E: std::fmt::Display>(
    limit: Duration,
    mut f: impl FnMut() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
