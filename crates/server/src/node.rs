//! A node: what it is made of and how its parts are wired.
//!
//! `Node::start`:
//! 1. checks the configuration, opens the store directory, reads the
//!    store's identity (`ident`), loads the certificates, opens RocksDB and
//!    starts the QUIC endpoint;
//! 2. loads the node directory (`directory`) and registers the node-level
//!    RPC handlers (`node_rpc`);
//! 3. then, with an identity, resumes: becomes a member and announces
//!    itself to a `--join` node (`join`), node 1 also completing its
//!    bootstrap records (`bootstrap`); without one, joins through `--join`
//!    (`join`) or waits for `meridian init` (`bootstrap`);
//! 4. serves the admin HTTP endpoint (`admin`) if asked.
//!
//! The PostgreSQL listener (`pgwire`) is bound right after the endpoint
//! (TCP, `sql_listen`, by default `listen`'s ip and port) and serves from
//! the start: until the node is a member it refuses connections (57P03).
//!
//! Becoming a member (`start_member`) starts the store, the DistSender,
//! the SQL engine and the loops. `Node::shutdown` drains (`drain`), then
//! stops the replicas and the endpoint.
//!
//! Not here: bootstrapping a cluster (`bootstrap`), joining one (`join`),
//! becoming a member (`start_member`), the RPC handlers (`node_rpc`), what
//! the loops do (`liveness`, `queues`, `directory`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_hlc::HybridClock;
use meridian_kvapi::NodeId;
use meridian_storage::{Engine, EngineOptions};
use meridian_transport::{Transport, TransportConfig};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin::{AdminNode, Health};
use crate::cluster_view::{local_first_range, RememberedFirstRange};
use crate::config::NodeConfig;
use crate::directory::Directory;
use crate::error::ServerError;
use crate::ident::{self, StoreIdent};
use crate::liveness::{Liveness, LivenessStatus};
use crate::member::Member;
use crate::pgwire::{EngineState, SqlNode};
use crate::rpc::ClusterInfo;
use crate::status::{self, ClusterStatus, LocalReplicas, StatusError};
use crate::system::NodeDescriptor;

pub use crate::system::FIRST_RANGE_ID;

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<NodeInner>,
}

pub(crate) struct NodeInner {
    pub config: NodeConfig,
    pub engine: Engine,
    pub transport: Transport,
    pub clock: Arc<HybridClock>,
    /// Set once, when the node bootstraps, joins or resumes. The loops hold
    /// it weakly and stop when the node is dropped.
    pub member: RwLock<Option<Arc<Member>>>,
    pub directory: Arc<Directory>,
    pub first_range: Arc<RememberedFirstRange>,
    pub liveness: Arc<Liveness>,
    /// How the ranges this node leads stand against their zone configs.
    pub conformance: Arc<crate::conformance::Conformance>,
    /// The bound address of the PostgreSQL listener.
    pub sql_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
    /// Serializes bootstrap and join: a store gets one identity.
    pub become_member: tokio::sync::Mutex<()>,
    /// Whether the cluster's bootstrap records (id counters above all)
    /// exist: a node answers joins only then, or it could hand out an id
    /// twice.
    pub bootstrapped: AtomicBool,
    /// Set when the node must stop for good (e.g. its store belongs to
    /// another cluster); the process should exit with this error.
    pub fatal: watch::Sender<Option<Arc<ServerError>>>,
}

/// A weak hold on a node, for what must not keep a stopped node alive:
/// RPC handlers (registered in the transport the node owns) and the admin
/// endpoint's connections.
#[derive(Clone)]
pub(crate) struct WeakNode(Weak<NodeInner>);

impl WeakNode {
    pub fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

impl Node {
    /// Opens the store and starts serving. Errors name what is wrong with
    /// the configuration, the certificates, the store or the ports.
    pub async fn start(config: NodeConfig) -> Result<Node, ServerError> {
        if config.replication_factor == 0 {
            return Err(ServerError::Config(
                "replication factor must be at least 1".into(),
            ));
        }
        if config.gc_ttl.is_zero() {
            return Err(ServerError::Config(
                "the GC ttl must be at least 1 second".into(),
            ));
        }
        check_network(&config)?;
        let store_dir = config.store.clone();
        std::fs::create_dir_all(&store_dir).map_err(|e| ServerError::Store {
            path: store_dir.display().to_string(),
            reason: e.to_string(),
        })?;
        if config.advertise.is_none() && config.listen.ip().is_unspecified() {
            return Err(ServerError::Config(format!(
                "--listen {} is a wildcard address: other nodes cannot dial it; set --advertise",
                config.listen
            )));
        }
        let ident = ident::read(&store_dir)?;
        meridian_transport::install_crypto_provider();
        let identity = meridian_transport::load_node_identity(&config.certs_dir)?;
        let engine = Engine::open(&store_dir, &EngineOptions::default()).map_err(|e| {
            ServerError::Store {
                path: store_dir.display().to_string(),
                reason: format!("cannot open the database: {e}"),
            }
        })?;
        let clock = Arc::new(HybridClock::new(
            Arc::new(meridian_hlc::SystemClock),
            config.max_offset,
        ));
        let mut transport_config = TransportConfig::new(
            ident.as_ref().map_or(0, |i| i.node_id),
            config.listen,
            config.locality.clone(),
        );
        transport_config.peer_timeout = Duration::from_secs(6);
        transport_config.network = config.network.clone();
        let transport = Transport::start(transport_config, &identity, clock.clone())
            .await
            .map_err(|e| match e {
                meridian_transport::TransportError::Io { .. } => ServerError::Config(format!(
                    "cannot listen on {}: {e} (is the port in use?)",
                    config.listen
                )),
                other => ServerError::Transport(other),
            })?;
        let sql_listen = config.sql_listen.unwrap_or(config.listen);
        let sql_listener = crate::pgwire::bind(sql_listen).await?;
        let sql_addr = sql_listener
            .local_addr()
            .map_err(|e| ServerError::SqlListen {
                addr: sql_listen.to_string(),
                reason: e.to_string(),
            })?;
        let (fatal, _) = watch::channel(None);
        let node = Node {
            inner: Arc::new(NodeInner {
                liveness: Arc::new(Liveness::new(config.time_until_dead)),
                conformance: Arc::default(),
                directory: Arc::new(Directory::load(store_dir, transport.clone())),
                config,
                engine,
                transport,
                clock,
                sql_addr,
                member: RwLock::new(None),
                first_range: Arc::default(),
                tasks: Mutex::new(Vec::new()),
                stopping: AtomicBool::new(false),
                become_member: tokio::sync::Mutex::new(()),
                bootstrapped: AtomicBool::new(ident.is_some()),
                fatal,
            }),
        };
        node.register_handlers()?;
        let sql_node: Arc<dyn SqlNode> = Arc::new(node.downgrade());
        let sql_task = crate::pgwire::serve(sql_listener, sql_node);
        node.inner.tasks.lock().push(sql_task);
        match ident {
            Some(ident) => node.resume(ident).await?,
            None if !node.inner.config.join.is_empty() => {
                node.spawn(crate::join::join_loop(node.downgrade()));
            }
            None => info!("waiting for `meridian init`"),
        }
        if let Some(addr) = node.inner.config.http {
            let admin: Arc<dyn AdminNode> = Arc::new(node.downgrade());
            let handle = crate::admin::serve(admin, addr).await?;
            node.inner.tasks.lock().push(handle);
        }
        Ok(node)
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.transport.node_id()
    }

    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.inner.clock
    }

    /// The address other nodes and clients dial.
    pub fn advertise_addr(&self) -> SocketAddr {
        self.inner
            .config
            .advertise
            .unwrap_or_else(|| self.inner.transport.local_addr())
    }

    /// The address SQL clients connect to (PostgreSQL wire protocol, TCP),
    /// as bound: with port 0 asked, the port the system chose.
    pub fn sql_addr(&self) -> SocketAddr {
        self.inner.sql_addr
    }

    /// The node's membership, once bootstrapped or joined.
    pub fn member(&self) -> Option<Member> {
        self.inner.member.read().as_deref().cloned()
    }

    /// Resolves once the node belongs to a cluster.
    pub async fn wait_member(&self) -> Member {
        loop {
            if let Some(member) = self.member() {
                return member;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A receiver that turns `Some(error)` when the node must stop.
    pub fn fatal(&self) -> watch::Receiver<Option<Arc<ServerError>>> {
        self.inner.fatal.subscribe()
    }

    pub fn liveness(&self) -> &Liveness {
        &self.inner.liveness
    }

    pub fn directory(&self) -> Vec<NodeDescriptor> {
        self.inner.directory.nodes()
    }

    /// What this node knows of its cluster without a KV read.
    pub fn cluster_info(&self) -> ClusterInfo {
        let member = self.member();
        let first_range = member
            .as_ref()
            .and_then(|m| local_first_range(&m.store))
            .or_else(|| self.inner.first_range.get());
        ClusterInfo {
            starting: member.is_none() && self.node_id() != 0,
            cluster_id: member.map(|m| m.ident.cluster_id),
            node_id: self.node_id(),
            first_range,
            nodes: self.directory(),
        }
    }

    /// This node's own replicas.
    pub fn local_replicas(&self) -> LocalReplicas {
        let member = self.member();
        status::local_replicas(self.node_id(), member.as_ref().map(|m| &m.store))
    }

    /// The cluster's status as this node sees it.
    /// This node's metrics in the OpenMetrics text format (`GET /metrics`).
    pub fn metrics_text(&self) -> String {
        let member = self.member();
        crate::metrics::metrics_text(
            self.node_id(),
            member.as_ref().map(|m| &m.store),
            self.transport(),
            &self.latencies(),
            self.inner.conformance.totals(),
        )
    }

    /// This node's measured round trips to every other node and region.
    pub fn latencies(&self) -> crate::latency::RegionLatencies {
        crate::latency::RegionLatencies::gather(
            self.node_id(),
            &self.directory(),
            &crate::latency::measured(self.transport()),
        )
    }

    pub async fn cluster_status(&self) -> Result<ClusterStatus, StatusError> {
        let member = self.member().ok_or(StatusError::NotMember)?;
        let inner = &self.inner;
        let config = &inner.config;
        let root = crate::zones::root_config(config);
        status::cluster_status(
            &member,
            &inner.directory,
            &inner.liveness,
            &inner.clock,
            &root,
        )
        .await
    }

    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.tasks.lock().push(tokio::spawn(task));
    }

    /// Stops the node for good with `error` (the process exits with it).
    pub(crate) fn fail(&self, error: ServerError) {
        let _ = self.inner.fatal.send(Some(Arc::new(error)));
    }

    /// This node's descriptor, as it records it under `node_id`.
    pub(crate) fn descriptor(&self, node_id: NodeId) -> NodeDescriptor {
        NodeDescriptor {
            node_id,
            address: self.advertise_addr().to_string(),
            http_address: self.inner.config.http.map(|a| a.to_string()),
            locality: self.inner.config.locality.clone(),
        }
    }

    /// Starts a store that has an identity: becomes a member, announces
    /// itself, and (node 1) completes the bootstrap records.
    async fn resume(&self, ident: StoreIdent) -> Result<(), ServerError> {
        info!(node = ident.node_id, cluster = %ident.cluster_id, "resuming");
        let member = self.become_member(ident).await?;
        self.spawn(crate::join::announce_loop(self.downgrade()));
        if member.ident.node_id == 1 {
            let again = self.clone();
            self.spawn(async move {
                while let Err(e) = again.ensure_bootstrap_records(&member).await {
                    warn!("completing the bootstrap records: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
        Ok(())
    }

    /// Stops the node: hands its leases to other replicas (for at most
    /// `drain`), then stops its ranges and closes the transport.
    pub async fn shutdown(&self, drain: Duration) {
        if self.inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
        let started = std::time::Instant::now();
        if let Some(member) = self.member() {
            crate::drain::drain(&member, tokio::time::Instant::now() + drain).await;
            let drained = started.elapsed();
            member.store.shutdown().await;
            info!(?drained, replicas_stopped = ?started.elapsed(), "ranges stopped");
        }
        self.inner.transport.shutdown().await;
        info!(took = ?started.elapsed(), "node stopped");
    }
}

/// A latency profile must list the node's own region: without it every
/// message to or from this node would go undelayed, silently.
fn check_network(config: &NodeConfig) -> Result<(), ServerError> {
    let Some(matrix) = config.network.as_ref().and_then(|n| n.latency()) else {
        return Ok(());
    };
    let region = &config.locality.region;
    let listed = matrix.listed_regions();
    if listed.contains(&region.as_str()) {
        return Ok(());
    }
    Err(ServerError::Config(format!(
        "the latency profile {:?} has no region {region:?} (this node's locality is {}); \
         it lists {}: give the node one of those regions with --locality, or a profile \
         with a link to {region:?}",
        matrix.name(),
        config.locality,
        if listed.is_empty() {
            "no region".to_string()
        } else {
            listed.join(", ")
        },
    )))
}

impl SqlNode for WeakNode {
    fn sql_engine(&self) -> EngineState {
        let Some(node) = self.upgrade() else {
            return EngineState::Stopped;
        };
        if node.inner.stopping.load(Ordering::SeqCst) {
            return EngineState::Stopped;
        }
        let state = match node.inner.member.read().as_ref() {
            Some(member) => EngineState::Ready(member.sql.clone()),
            None => EngineState::NotMember,
        };
        state
    }
}

impl AdminNode for WeakNode {
    fn health(&self) -> Option<Health> {
        let node = self.upgrade()?;
        let me = node.node_id();
        Some(Health {
            node_id: me,
            member: node.member().is_some(),
            live: node.liveness().status(me, node.clock().physical_now()) == LivenessStatus::Live,
        })
    }

    fn metrics_text(&self) -> Option<String> {
        Some(self.upgrade()?.metrics_text())
    }

    fn cluster_status(&self) -> BoxFuture<'_, Option<Result<ClusterStatus, StatusError>>> {
        Box::pin(async move {
            let node = self.upgrade()?;
            Some(node.cluster_status().await)
        })
    }

    fn latencies(&self) -> Option<crate::latency::RegionLatencies> {
        let node = self.upgrade()?;
        Some(node.latencies())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use meridian_transport::{LatencyMatrix, Locality, NetworkModel};

    use super::*;

    fn config(region: &str, network: Option<NetworkModel>) -> NodeConfig {
        let mut config = NodeConfig::new("/s".into(), "127.0.0.1:0".parse().unwrap(), "/c".into());
        config.locality = Locality::new(region, format!("{region}-a"));
        config.network = network;
        config
    }

    #[test]
    fn a_latency_profile_must_list_the_nodes_region() {
        assert!(check_network(&config("local", None)).is_ok());
        assert!(check_network(&config("local", Some(NetworkModel::new()))).is_ok());
        let demo = || Some(NetworkModel::demo_3_region());
        assert!(check_network(&config("us-west1", demo())).is_ok());
        let e = check_network(&config("mars-north1", demo()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"mars-north1\""), "{e}");
        assert!(e.contains("us-east1, us-west1, europe-west1"), "{e}");
        let empty = NetworkModel::with_latency(LatencyMatrix::new("empty", Duration::ZERO));
        let e = check_network(&config("eu", Some(empty)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lists no region"), "{e}");
    }
}
