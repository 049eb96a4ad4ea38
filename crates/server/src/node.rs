//! A node's life: open the store, start the transport, then either resume
//! (the store has an identity), wait to be bootstrapped (`meridian init`),
//! or join through `--join`; run the background loops; drain on shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_hlc::HybridClock;
use meridian_keys::space::{MAX_KEY, MIN_KEY, TABLE_PREFIX};
use meridian_kvapi::{NodeId, RangeDescriptor, ReplicaDescriptor};
use meridian_kvclient::{ClusterView, DistSender, DistSenderConfig};
use meridian_kvserver::store::Store;
use meridian_storage::{Engine, EngineOptions};
use meridian_transport::{Transport, TransportConfig};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::error::ServerError;
use crate::ident::{self, StoreIdent};
use crate::liveness::Liveness;
use crate::rpc::{ClusterInfo, ClusterInfoRpc, InitRpc, JoinRequest, JoinRpc};
use crate::system::{self, NodeDescriptor};

const NODES_FILE: &str = "NODES.json";

/// The first range: meta and system keys. It never splits.
pub const FIRST_RANGE_ID: u64 = 1;

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
    pub member: RwLock<Option<Member>>,
    pub directory: RwLock<BTreeMap<NodeId, NodeDescriptor>>,
    first_range: RwLock<Option<RangeDescriptor>>,
    pub liveness: Liveness,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stopping: AtomicBool,
    /// Serializes bootstrap and join: a store gets one identity.
    become_member: tokio::sync::Mutex<()>,
    /// Whether the cluster's bootstrap records (id counters above all)
    /// exist: a node answers joins only then, or it could hand out an id
    /// twice.
    bootstrapped: AtomicBool,
    /// Set when the node must stop for good (e.g. its store belongs to
    /// another cluster); the process should exit with this message.
    fatal: watch::Sender<Option<String>>,
}

/// What a node has once it belongs to a cluster.
#[derive(Clone)]
pub struct Member {
    pub ident: StoreIdent,
    pub store: Store,
    pub ds: DistSender,
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
        let clock = Arc::new(HybridClock::system());
        let mut transport_config = TransportConfig::new(
            ident.as_ref().map_or(0, |i| i.node_id),
            config.listen,
            config.locality.clone(),
        );
        transport_config.peer_timeout = Duration::from_secs(6);
        let transport = Transport::start(transport_config, &identity, clock.clone())
            .await
            .map_err(|e| match e {
                meridian_transport::TransportError::Io { .. } => ServerError::Config(format!(
                    "cannot listen on {}: {e} (is the port in use?)",
                    config.listen
                )),
                other => ServerError::Transport(other),
            })?;
        let (fatal, _) = watch::channel(None);
        let node = Node {
            inner: Arc::new(NodeInner {
                liveness: Liveness::new(config.time_until_dead),
                config,
                engine,
                transport,
                clock,
                member: RwLock::new(None),
                directory: RwLock::new(BTreeMap::new()),
                first_range: RwLock::new(None),
                tasks: Mutex::new(Vec::new()),
                stopping: AtomicBool::new(false),
                become_member: tokio::sync::Mutex::new(()),
                bootstrapped: AtomicBool::new(ident.is_some()),
                fatal,
            }),
        };
        node.load_directory();
        node.register_handlers()?;
        match ident {
            Some(ident) => {
                info!(node = ident.node_id, cluster = %ident.cluster_id, "resuming");
                let member = node.become_member(ident).await?;
                node.spawn(announce_loop(Arc::downgrade(&node.inner)));
                if member.ident.node_id == 1 {
                    let again = node.clone();
                    node.spawn(async move {
                        while let Err(e) = again.ensure_bootstrap_records(&member).await {
                            warn!("completing the bootstrap records: {e}; retrying");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    });
                }
            }
            None if !node.inner.config.join.is_empty() => {
                node.spawn(join_loop(Arc::downgrade(&node.inner)));
            }
            None => info!("waiting for `meridian init`"),
        }
        if let Some(addr) = node.inner.config.http {
            let handle = crate::admin::serve(node.clone(), addr).await?;
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

    /// The node's membership, once bootstrapped or joined.
    pub fn member(&self) -> Option<Member> {
        self.inner.member.read().clone()
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

    /// A receiver that turns `Some(reason)` when the node must stop.
    pub fn fatal(&self) -> watch::Receiver<Option<String>> {
        self.inner.fatal.subscribe()
    }

    pub fn liveness(&self) -> &Liveness {
        &self.inner.liveness
    }

    pub fn directory(&self) -> Vec<NodeDescriptor> {
        self.inner.directory.read().values().cloned().collect()
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.inner.tasks.lock().push(tokio::spawn(task));
    }

    fn descriptor(&self, node_id: NodeId) -> NodeDescriptor {
        NodeDescriptor {
            node_id,
            address: self.advertise_addr().to_string(),
            http_address: self.inner.config.http.map(|a| a.to_string()),
            locality: self.inner.config.locality.clone(),
        }
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        let member = self.member();
        ClusterInfo {
            cluster_id: member.as_ref().map(|m| m.ident.cluster_id.clone()),
            node_id: self.node_id(),
            first_range: self.local_first_range(),
            nodes: self.directory(),
        }
    }

    fn local_first_range(&self) -> Option<RangeDescriptor> {
        let local = self
            .member()
            .and_then(|m| m.store.replica(FIRST_RANGE_ID))
            .map(|r| r.descriptor());
        local.or_else(|| self.inner.first_range.read().clone())
    }

    /// Adds or updates nodes in the address book (and the transport's).
    pub(crate) fn learn_nodes(&self, nodes: &[NodeDescriptor]) {
        let mut changed = false;
        {
            let mut directory = self.inner.directory.write();
            for node in nodes {
                if node.node_id == 0 || directory.get(&node.node_id) == Some(node) {
                    continue;
                }
                directory.insert(node.node_id, node.clone());
                changed = true;
            }
        }
        // This node too: its DistSender reaches local replicas the same way.
        for node in nodes {
            if node.node_id == 0 {
                continue;
            }
            match node.address.parse() {
                Ok(addr) => {
                    self.inner
                        .transport
                        .set_peer(node.node_id, addr, node.locality.clone())
                }
                Err(e) => warn!(node = node.node_id, address = %node.address, "bad address: {e}"),
            }
        }
        if changed {
            self.save_directory();
        }
    }

    fn load_directory(&self) {
        let path = self.inner.config.store.join(NODES_FILE);
        if let Ok(bytes) = std::fs::read(&path) {
            match serde_json::from_slice::<Vec<NodeDescriptor>>(&bytes) {
                Ok(nodes) => self.learn_nodes(&nodes),
                Err(e) => warn!("ignoring {}: {e}", path.display()),
            }
        }
    }

    fn save_directory(&self) {
        let nodes = self.directory();
        let dir: PathBuf = self.inner.config.store.clone();
        let tmp = dir.join(format!("{NODES_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&nodes).expect("descriptors serialize");
        let result =
            std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, dir.join(NODES_FILE)));
        if let Err(e) = result {
            warn!("cannot save the node directory: {e}");
        }
    }

    /// Starts the store and the loops of a cluster member.
    async fn become_member(&self, ident: StoreIdent) -> Result<Member, ServerError> {
        let inner = &self.inner;
        inner.transport.set_node_id(ident.node_id);
        let store = Store::start(
            ident.node_id,
            inner.engine.clone(),
            inner.transport.clone(),
            inner.clock.clone(),
            inner.config.raft,
        )
        .await?;
        let view = Arc::new(NodeView {
            node: Arc::downgrade(inner),
        });
        let ds = DistSender::new(inner.transport.clone(), view, DistSenderConfig::default());
        let member = Member {
            ident: ident.clone(),
            store,
            ds,
        };
        *inner.member.write() = Some(member.clone());
        self.learn_nodes(&[self.descriptor(ident.node_id)]);
        self.spawn(crate::liveness::run(Arc::downgrade(inner)));
        self.spawn(crate::queues::run(Arc::downgrade(inner)));
        self.spawn(directory_loop(Arc::downgrade(inner)));
        Ok(member)
    }

    /// Bootstraps a new cluster with this node as node 1: the first range
    /// (meta and system keys) and one range for everything else.
    pub async fn bootstrap(&self) -> Result<ClusterInfo, ServerError> {
        let _guard = self.inner.become_member.lock().await;
        if let Some(member) = self.member() {
            return Err(ServerError::Refused(format!(
                "cluster {} is already initialized",
                member.ident.cluster_id
            )));
        }
        if let Some(existing) = ident::read(&self.inner.config.store)? {
            return Err(ServerError::Refused(format!(
                "this store already belongs to cluster {}",
                existing.cluster_id
            )));
        }
        let ident = StoreIdent {
            cluster_id: ident::new_cluster_id(),
            node_id: 1,
        };
        let member = self.become_member(ident.clone()).await?;
        let replicas = vec![ReplicaDescriptor::voter(1)];
        let first = RangeDescriptor {
            range_id: FIRST_RANGE_ID,
            start_key: MIN_KEY.to_vec(),
            end_key: vec![TABLE_PREFIX],
            replicas: replicas.clone(),
            generation: 0,
        };
        let rest = RangeDescriptor {
            range_id: 2,
            start_key: vec![TABLE_PREFIX],
            end_key: MAX_KEY.to_vec(),
            replicas,
            generation: 0,
        };
        member.store.bootstrap_range(&first).await?;
        member.store.bootstrap_range(&rest).await?;
        *self.inner.first_range.write() = Some(first.clone());
        self.ensure_bootstrap_records(&member).await?;
        // The identity last: a store without one is bootstrapped again by
        // the next `init` (every step above is idempotent).
        ident::write(&self.inner.config.store, &ident)?;
        self.inner.bootstrapped.store(true, Ordering::SeqCst);
        info!(cluster = %ident.cluster_id, "cluster bootstrapped");
        Ok(self.cluster_info())
    }

    /// The `--join` addresses but this node's own.
    fn other_join_addresses(&self) -> Vec<SocketAddr> {
        let own = [self.advertise_addr(), self.inner.transport.local_addr()];
        self.inner
            .config
            .join
            .iter()
            .copied()
            .filter(|addr| !own.contains(addr))
            .collect()
    }

    /// Refuses `init` on a node whose `--join` nodes already form a
    /// cluster: it would bootstrap a second one beside it.
    async fn refuse_if_joined_elsewhere(&self) -> Result<(), String> {
        for addr in self.other_join_addresses() {
            let info = self
                .inner
                .transport
                .call_addr::<ClusterInfoRpc>(addr, &(), Duration::from_secs(2))
                .await;
            if let Ok(ClusterInfo {
                cluster_id: Some(cluster_id),
                ..
            }) = info
            {
                return Err(format!(
                    "cluster {cluster_id} is already initialized (node at {addr} belongs to it); \
                     this node will join it"
                ));
            }
        }
        Ok(())
    }

    /// The records node 1 writes at bootstrap; idempotent, so a node 1
    /// that crashed half-way through writes the rest at restart.
    async fn ensure_bootstrap_records(&self, member: &Member) -> Result<(), ServerError> {
        let ds = &member.ds;
        for (name, value) in [
            (system::NODE_ID_COUNTER, 1u64),
            (system::RANGE_ID_COUNTER, 2),
        ] {
            let put = meridian_kvapi::Request::ConditionalPut {
                key: system::counter_key(name),
                value: value.to_be_bytes().to_vec(),
                expected: None,
            };
            match ds.send(vec![put]).await {
                Ok(_) => {}
                Err(meridian_kvclient::ClientError::Kv(
                    meridian_kvapi::KvError::ConditionFailed { .. },
                )) => {}
                Err(e) => return Err(e.into()),
            }
        }
        system::put_json(ds, system::node_key(1), &self.descriptor(1)).await?;
        for range_id in [FIRST_RANGE_ID, 2] {
            if let Some(replica) = member.store.replica(range_id) {
                system::update_meta(ds, &replica.descriptor()).await?;
            }
        }
        Ok(())
    }

    /// Answers a joining or restarting node.
    async fn handle_join(&self, request: JoinRequest) -> Result<ClusterInfo, String> {
        let member = self
            .member()
            .filter(|_| self.inner.bootstrapped.load(Ordering::SeqCst))
            .ok_or("this node is not part of an initialized cluster yet")?;
        let node_id = match &request.existing {
            Some((cluster_id, node_id)) => {
                if *cluster_id != member.ident.cluster_id {
                    return Err(format!(
                        "the store of node {node_id} belongs to cluster {cluster_id}, \
                         not to this cluster ({})",
                        member.ident.cluster_id
                    ));
                }
                *node_id
            }
            None => match self.unstarted_node_at(&request.descriptor.address) {
                // A retried join whose first answer was lost: same id.
                Some(id) => id,
                // Node 1 is the node that bootstrapped.
                None => system::next_id(&member.ds, system::NODE_ID_COUNTER, 2)
                    .await
                    .map_err(|e| format!("allocating a node id: {e}"))?,
            },
        };
        let mut descriptor = request.descriptor;
        descriptor.node_id = node_id;
        system::put_json(&member.ds, system::node_key(node_id), &descriptor)
            .await
            .map_err(|e| format!("recording node {node_id}: {e}"))?;
        self.learn_nodes(&[descriptor]);
        let mut info = self.cluster_info();
        info.node_id = node_id;
        Ok(info)
    }

    /// A node recorded at `address` that never heartbeated: one whose join
    /// answer was lost.
    fn unstarted_node_at(&self, address: &str) -> Option<NodeId> {
        self.directory()
            .into_iter()
            .find(|n| n.address == address && self.liveness().record(n.node_id).is_none())
            .map(|n| n.node_id)
    }

    fn register_handlers(&self) -> Result<(), ServerError> {
        let transport = &self.inner.transport;
        let weak = Arc::downgrade(&self.inner);
        transport.register::<InitRpc, _, _>(move |_, ()| {
            let weak = weak.clone();
            async move {
                let node = Node {
                    inner: weak.upgrade().ok_or("node stopping")?,
                };
                node.refuse_if_joined_elsewhere().await?;
                node.bootstrap().await.map_err(|e| e.to_string())
            }
        })?;
        let weak = Arc::downgrade(&self.inner);
        transport.register::<JoinRpc, _, _>(move |_, request| {
            let weak = weak.clone();
            async move {
                let node = Node {
                    inner: weak.upgrade().ok_or("node stopping")?,
                };
                node.handle_join(request).await
            }
        })?;
        let weak = Arc::downgrade(&self.inner);
        transport.register::<ClusterInfoRpc, _, _>(move |_, ()| {
            let weak = weak.clone();
            async move {
                match weak.upgrade() {
                    Some(inner) => Node { inner }.cluster_info(),
                    None => ClusterInfo::default(),
                }
            }
        })?;
        crate::status::register(self)?;
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
        if let Some(member) = self.member() {
            let deadline = tokio::time::Instant::now() + drain;
            let me = member.ident.node_id;
            for replica in member.store.replicas() {
                if replica.leader() != Some(me) {
                    continue;
                }
                let descriptor = replica.descriptor();
                let Some(target) = descriptor.voters().find(|r| r.node_id != me) else {
                    continue;
                };
                let transfer = member
                    .store
                    .transfer_leadership(replica.range_id(), target.node_id);
                let _ = tokio::time::timeout_at(deadline, transfer).await;
            }
            while tokio::time::Instant::now() < deadline
                && member
                    .store
                    .replicas()
                    .iter()
                    .any(|r| r.leader() == Some(me) && r.descriptor().voters().count() > 1)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            member.store.shutdown().await;
        }
        self.inner.transport.shutdown().await;
        info!("node stopped");
    }
}

/// The DistSender's view of the cluster from this node.
struct NodeView {
    node: Weak<NodeInner>,
}

impl ClusterView for NodeView {
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(async move {
            let inner = self.node.upgrade()?;
            let node = Node { inner };
            let local = node
                .member()
                .and_then(|m| m.store.replica(FIRST_RANGE_ID))
                .map(|r| r.descriptor());
            if let Some(first) = local {
                return Some(first);
            }
            // Asked again on every cache miss: the first range's replicas
            // move, and a remembered descriptor would go stale.
            let me = node.node_id();
            for peer in node.directory() {
                if peer.node_id == me {
                    continue;
                }
                let info = node
                    .inner
                    .transport
                    .call::<ClusterInfoRpc>(peer.node_id, &(), Duration::from_secs(1))
                    .await;
                if let Ok(ClusterInfo {
                    first_range: Some(first),
                    ..
                }) = info
                {
                    *node.inner.first_range.write() = Some(first.clone());
                    return Some(first);
                }
            }
            let remembered = node.inner.first_range.read().clone();
            remembered
        })
    }
}

/// How a round of join calls ended.
enum JoinOutcome {
    Joined(ClusterInfo),
    /// A node refused for good (e.g. another cluster): stop.
    Refused(String),
    /// Some node answered but cannot take us yet (not initialized).
    NotYet,
    /// No node answered; the last error.
    Unreachable(String),
}

/// Calls the `--join` addresses (by address: their ids are not known).
async fn call_join_addresses(node: &Node, request: &JoinRequest) -> JoinOutcome {
    let mut last = None;
    let mut answered = false;
    for addr in node.other_join_addresses() {
        let result = node
            .inner
            .transport
            .call_addr::<JoinRpc>(addr, request, Duration::from_secs(5))
            .await;
        match result {
            Ok(Ok(info)) => return JoinOutcome::Joined(info),
            Ok(Err(refusal)) => {
                if refusal.contains("belongs to cluster") {
                    return JoinOutcome::Refused(refusal);
                }
                answered = true;
                last = Some(format!("{addr}: {refusal}"));
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    let Some(last) = last else {
        // Only this node is listed: wait for `init`, as without --join.
        return JoinOutcome::NotYet;
    };
    info!("join: {last}; retrying");
    if answered {
        JoinOutcome::NotYet
    } else {
        JoinOutcome::Unreachable(last)
    }
}

/// A new node: asks `--join` nodes for an id until one answers. If none
/// of them can be reached for `join_timeout`, the node gives up.
async fn join_loop(weak: Weak<NodeInner>) {
    let started = tokio::time::Instant::now();
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let node = Node { inner };
        if node.member().is_some() {
            return;
        }
        let request = JoinRequest {
            existing: None,
            descriptor: node.descriptor(0),
        };
        match call_join_addresses(&node, &request).await {
            JoinOutcome::Joined(info) => {
                let _guard = node.inner.become_member.lock().await;
                if node.member().is_some() {
                    return;
                }
                let Some(cluster_id) = info.cluster_id.clone() else {
                    continue;
                };
                let ident = StoreIdent {
                    cluster_id,
                    node_id: info.node_id,
                };
                if let Err(e) = ident::write(&node.inner.config.store, &ident) {
                    let _ = node.inner.fatal.send(Some(e.to_string()));
                    return;
                }
                node.learn_nodes(&info.nodes);
                *node.inner.first_range.write() = info.first_range.clone();
                info!(node = ident.node_id, cluster = %ident.cluster_id, "joined");
                match node.become_member(ident).await {
                    Ok(_) => node.inner.bootstrapped.store(true, Ordering::SeqCst),
                    Err(e) => {
                        let _ = node.inner.fatal.send(Some(e.to_string()));
                    }
                }
                return;
            }
            JoinOutcome::Refused(refusal) => {
                let _ = node.inner.fatal.send(Some(refusal));
                return;
            }
            JoinOutcome::Unreachable(last)
                if started.elapsed() > node.inner.config.join_timeout =>
            {
                let addrs: Vec<String> = node
                    .inner
                    .config
                    .join
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                let _ = node.inner.fatal.send(Some(format!(
                    "cannot reach any node of --join {} within {:?} (last error: {last})",
                    addrs.join(","),
                    node.inner.config.join_timeout
                )));
                return;
            }
            JoinOutcome::NotYet | JoinOutcome::Unreachable(_) => {}
        }
        drop(node);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A restarted node: tells a `--join` node its (possibly new) address and
/// learns the cluster's nodes; refuses to go on with a store of another
/// cluster.
async fn announce_loop(weak: Weak<NodeInner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let node = Node { inner };
        let Some(member) = node.member() else { return };
        if node.inner.config.join.is_empty() {
            return;
        }
        let request = JoinRequest {
            existing: Some((member.ident.cluster_id.clone(), member.ident.node_id)),
            descriptor: node.descriptor(member.ident.node_id),
        };
        match call_join_addresses(&node, &request).await {
            JoinOutcome::Joined(info) => {
                node.learn_nodes(&info.nodes);
                return;
            }
            JoinOutcome::Refused(refusal) => {
                let _ = node.inner.fatal.send(Some(refusal));
                return;
            }
            // A restarted node keeps trying: its peers may be restarting too.
            JoinOutcome::NotYet | JoinOutcome::Unreachable(_) => {}
        }
        drop(node);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Keeps the address book in step with the node records.
async fn directory_loop(weak: Weak<NodeInner>) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(inner) = weak.upgrade() else { return };
        let node = Node { inner };
        let Some(member) = node.member() else {
            continue;
        };
        match system::scan_json::<NodeDescriptor>(&member.ds, &system::node_prefix()).await {
            Ok(nodes) => node.learn_nodes(&nodes),
            Err(e) => warn!("refreshing the node directory: {e}"),
        }
    }
}
