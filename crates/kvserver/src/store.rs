//! A node's Store: its replicas, the Raft and KV handlers it registers on
//! the transport, and the membership operations on its ranges.
//!
//! Replicas come to exist in three ways: at bootstrap (the first range),
//! when a leader adds this node to a range (it first asks this node to
//! create an empty replica with [`CreateReplicaRpc`], then adds it as a
//! learner and lets Raft fill it by log or snapshot), and at restart (every
//! range whose descriptor record is in the engine is reopened). A replica
//! removed from its range is destroyed with its data ([`DestroyReplicaRpc`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{BatchRequest, BatchResult, KvError, RangeDescriptor, ReplicaKind};
use meridian_storage::Engine;
use meridian_transport::{Rpc, Transport};
use openraft::async_runtime::WatchReceiver;
use openraft::errors::InitializeError;
use openraft::{ChangeMembers, SnapshotPolicy};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::quiesce::{QuiesceRequest, QuiesceRpc, WakeRpc};
use crate::raft::log_store::LogStore;
use crate::raft::network::SnapshotChunk;
use crate::raft::network::{
    AppendRpc, NetworkFactory, PreVoteRpc, RaftRpcError, RangeMessage, SnapshotRpc,
    TransferLeaderRpc, VoteRpc,
};
use crate::raft::state_machine::{SplitApplied, StateMachine};
use crate::raft::syncer::Syncer;
use crate::raft::types::{ReplicaNode, Snapshot, SnapshotMeta, TypeConfig};
use crate::replica::{NodeContext, Raft, Replica};
use crate::replica_record::ReplicaRecord;
use meridian_storage::RangeData;
use openraft::raft::SnapshotResponse;

/// Raft timing of every group on a node. Heartbeats must arrive well within
/// the election timeout across the slowest link; the leader lease lasts
/// `election_timeout_max`, and a failover takes about twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftTimeouts {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl RaftTimeouts {
    /// For one data center or loopback: failover in about 2 s.
    pub const LAN: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 150,
        election_min_ms: 750,
        election_max_ms: 1_000,
    };
    /// For regions up to ~150 ms round trip apart (the demo's profile).
    pub const WAN: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 400,
        election_min_ms: 2_000,
        election_max_ms: 3_000,
    };
    /// For in-process tests: fast failover on loopback, with room for
    /// debug builds on two busy cores.
    pub const TEST: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 100,
        election_min_ms: 400,
        election_max_ms: 700,
    };
}

impl Default for RaftTimeouts {
    fn default() -> Self {
        Self::LAN
    }
}

/// Serves a KV batch at the node holding the range's lease.
pub struct BatchRpc;
impl Rpc for BatchRpc {
    const KIND: u16 = meridian_kvapi::wire::BATCH_KIND;
    const NAME: &'static str = "Batch";
    type Request = BatchRequest;
    type Response = BatchResult;
}

/// Splits a range at its leaseholder.
pub struct AdminSplitRpc;
impl Rpc for AdminSplitRpc {
    const KIND: u16 = meridian_kvapi::wire::ADMIN_SPLIT_KIND;
    const NAME: &'static str = "AdminSplit";
    type Request = meridian_kvapi::wire::AdminSplitRequest;
    type Response = meridian_kvapi::wire::AdminSplitResult;
}

/// Asks a node to create an empty replica of a range it is about to join.
pub struct CreateReplicaRpc;
impl Rpc for CreateReplicaRpc {
    const KIND: u16 = 111;
    const NAME: &'static str = "CreateReplica";
    const IDEMPOTENT: bool = true;
    type Request = RangeDescriptor;
    type Response = Result<(), String>;
}

/// Tells a node that its replica of a range was removed from the group.
pub struct DestroyReplicaRpc;
impl Rpc for DestroyReplicaRpc {
    const KIND: u16 = 112;
    const NAME: &'static str = "DestroyReplica";
    const IDEMPOTENT: bool = true;
    type Request = u64;
    type Response = Result<(), String>;
}

/// Errors of membership and administration operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("range {0} not found on this node")]
    RangeNotFound(u64),
    #[error("node {node} failed: {reason}")]
    Remote { node: u64, reason: String },
    #[error("raft: {0}")]
    Raft(String),
    #[error("storage: {0}")]
    Storage(#[from] meridian_storage::StorageError),
    #[error("transport: {0}")]
    Transport(#[from] meridian_transport::TransportError),
}

struct Inner {
    node_id: u64,
    engine: Engine,
    transport: Transport,
    clock: Arc<HybridClock>,
    syncer: Syncer,
    config: Arc<openraft::Config>,
    replicas: RwLock<HashMap<u64, Arc<Replica>>>,
    stopped: std::sync::atomic::AtomicBool,
    /// Snapshots being received, by range.
    incoming_snapshots: parking_lot::Mutex<HashMap<u64, IncomingSnapshot>>,
    /// Where state machines report the ranges their splits created.
    splits: tokio::sync::mpsc::UnboundedSender<SplitApplied>,
    /// Held while a replica is created, opened or destroyed, so one range
    /// never has two Raft instances, and a destroy's data deletion never
    /// races the creation of an overlapping replica.
    lifecycle: tokio::sync::Mutex<()>,
    metrics: crate::metrics::StoreMetrics,
}

/// The chunks of a snapshot received so far.
struct IncomingSnapshot {
    meta: SnapshotMeta,
    data: RangeData,
}

/// A node's replicas. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn raft_config(timeouts: RaftTimeouts) -> Result<openraft::Config, StoreError> {
    openraft::Config {
        cluster_name: "meridian".into(),
        heartbeat_interval: timeouts.heartbeat_ms,
        election_timeout_min: timeouts.election_min_ms,
        election_timeout_max: timeouts.election_max_ms,
        install_snapshot_timeout: 30_000,
        max_payload_entries: 256,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
        // Large: openraft 0.10.0-alpha.37 can panic when a purge overtakes
        // a queued apply (openraft issue 2116); keeping a long tail avoids it.
        max_in_snapshot_log_to_keep: 5_000,
        enable_pre_vote: Some(true),
        ..Default::default()
    }
    .validate()
    .map_err(|e| StoreError::Raft(e.to_string()))
}

impl Store {
    /// Opens the store of node `node_id`: reopens every replica the engine
    /// holds and registers the Raft and KV handlers on the transport.
    pub async fn start(
        node_id: u64,
        engine: Engine,
        transport: Transport,
        clock: Arc<HybridClock>,
        timeouts: RaftTimeouts,
    ) -> Result<Store, StoreError> {
        let (splits, mut split_events) = tokio::sync::mpsc::unbounded_channel();
        let metrics = crate::metrics::StoreMetrics::default();
        let store = Store {
            inner: Arc::new(Inner {
                node_id,
                syncer: Syncer::start(engine.clone(), Some(metrics.wal_sync_seconds.clone())),
                metrics: metrics.clone(),
                engine,
                transport,
                clock,
                config: Arc::new(raft_config(timeouts)?),
                replicas: RwLock::new(HashMap::new()),
                stopped: std::sync::atomic::AtomicBool::new(false),
                incoming_snapshots: parking_lot::Mutex::new(HashMap::new()),
                splits,
                lifecycle: tokio::sync::Mutex::new(()),
            }),
        };
        for (range_id, bytes) in store
            .inner
            .engine
            .range_local_all(RangeLocalKind::Descriptor)?
        {
            let record = ReplicaRecord::decode(&bytes)?;
            debug_assert_eq!(record.descriptor.range_id, range_id);
            store.open_replica(&record.descriptor).await?;
        }
        store.register_handlers()?;
        let weak = Arc::downgrade(&store.inner);
        tokio::spawn(async move {
            while let Some(event) = split_events.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                let store = Store { inner };
                if store.is_stopped() {
                    return;
                }
                if let Err(e) = store.open_split(&event).await {
                    warn!(range_id = event.right.range_id, error = %e, "opening the right-hand side of a split failed");
                }
            }
        });
        let election_timeout = Duration::from_millis(timeouts.election_max_ms);
        tokio::spawn(crate::quiesce::run(store.clone(), election_timeout));
        Ok(store)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.inner
            .stopped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    pub fn metrics(&self) -> &crate::metrics::StoreMetrics {
        &self.inner.metrics
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub fn replica(&self, range_id: u64) -> Option<Arc<Replica>> {
        self.inner.replicas.read().get(&range_id).cloned()
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.inner.replicas.read().values().cloned().collect()
    }

    /// Creates this node's replica of `descriptor` (empty, or from what the
    /// engine holds) unless it exists, persisting the descriptor first so a
    /// restart reopens it.
    pub async fn create_replica(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<Arc<Replica>, StoreError> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.create_replica_locked(descriptor).await
    }

    async fn create_replica_locked(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<Arc<Replica>, StoreError> {
        if let Some(existing) = self.replica(descriptor.range_id) {
            return Ok(existing);
        }
        let mut batch = self.inner.engine.batch();
        ReplicaRecord {
            descriptor: descriptor.clone(),
        }
        .put(&mut batch);
        self.inner.engine.commit(batch, true)?;
        self.open_replica(descriptor).await
    }

    /// Creates an empty replica that a leader asked for, unless a replica
    /// here still covers part of its span: then this node has not yet
    /// applied the split that created the range, and the split will create
    /// it (a snapshot now would be overwritten by the older log entries the
    /// left-hand side still has to apply).
    async fn create_requested_replica(&self, descriptor: &RangeDescriptor) -> Result<(), String> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.replica(descriptor.range_id).is_none() {
            let overlapping = self.replicas().into_iter().find(|r| {
                let span = r.span();
                r.range_id() != descriptor.range_id
                    && span.0 < descriptor.end_key
                    && descriptor.start_key < span.1
            });
            if let Some(other) = overlapping {
                return Err(format!(
                    "range {} overlaps local range {}; waiting for it to split or leave",
                    descriptor.range_id,
                    other.range_id()
                ));
            }
        }
        self.create_replica_locked(descriptor)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Opens the right-hand side of a split this node applied (its group
    /// starts initialized: see the state machine); where the left-hand side
    /// leads, the new range's leadership (and lease) is claimed here too.
    async fn open_split(&self, event: &SplitApplied) -> Result<(), StoreError> {
        let replica = {
            let _lifecycle = self.inner.lifecycle.lock().await;
            if self.is_stopped() {
                return Ok(());
            }
            match self.replica(event.right.range_id) {
                Some(replica) => replica,
                None => self.open_replica(&event.right).await?,
            }
        };
        let leads_left = self
            .replica(event.left_range_id)
            .is_some_and(|left| left.leader() == Some(self.inner.node_id));
        if leads_left {
            let _ = replica.raft().trigger().elect(false).await;
        }
        Ok(())
    }

    async fn initialize_group(&self, replica: &Replica, voters: &[u64]) -> Result<(), StoreError> {
        let members: BTreeMap<u64, ReplicaNode> = voters
            .iter()
            .map(|&id| (id, self.replica_node(id)))
            .collect();
        match replica.raft().initialize(members).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(StoreError::Raft(e.to_string())),
        }
    }

    /// Splits range `range_id` at `split_key` into a new range
    /// `right_range_id`. Must run at the leaseholder.
    pub async fn split_range(
        &self,
        range_id: u64,
        split_key: &[u8],
        right_range_id: u64,
    ) -> Result<(RangeDescriptor, RangeDescriptor), KvError> {
        let replica = self
            .replica(range_id)
            .ok_or(KvError::RangeNotFound { range_id })?;
        replica.split(split_key, right_range_id).await
    }

    /// Asks every follower the leader of `range_id` never reached to create
    /// its replica: a node that missed the split creating this range (it
    /// caught up on the left-hand side by snapshot) gets it by snapshot.
    pub async fn create_missing_followers(&self, range_id: u64) -> Result<(), StoreError> {
        let replica = self
            .replica(range_id)
            .ok_or(StoreError::RangeNotFound(range_id))?;
        let missing: Vec<u64> = {
            let metrics = replica.raft().metrics().borrow_watched().clone();
            match &metrics.replication {
                Some(progress) => progress
                    .iter()
                    .filter(|(id, matched)| **id != self.inner.node_id && matched.is_none())
                    .map(|(id, _)| *id)
                    .collect(),
                None => Vec::new(),
            }
        };
        if missing.is_empty() {
            return Ok(());
        }
        let descriptor = replica.descriptor();
        for node in missing {
            self.create_remote(node, &descriptor).await?;
        }
        Ok(())
    }

    async fn open_replica(&self, descriptor: &RangeDescriptor) -> Result<Arc<Replica>, StoreError> {
        let inner = &self.inner;
        let range_id = descriptor.range_id;
        let span = (descriptor.start_key.clone(), descriptor.end_key.clone());
        let log = LogStore::new(inner.engine.clone(), range_id, inner.syncer.clone());
        let sm = StateMachine::open(
            inner.engine.clone(),
            inner.node_id,
            range_id,
            span,
            Some(inner.splits.clone()),
        )
        .map_err(|e| StoreError::Raft(e.to_string()))?;
        let applied = sm.subscribe();
        let network = NetworkFactory {
            transport: inner.transport.clone(),
            range_id,
        };
        let raft = Raft::new(inner.node_id, inner.config.clone(), network, log, sm)
            .await
            .map_err(|e| StoreError::Raft(e.to_string()))?;
        let node = NodeContext {
            node_id: inner.node_id,
            metrics: inner.metrics.clone(),
            engine: inner.engine.clone(),
            clock: inner.clock.clone(),
            transport: inner.transport.clone(),
        };
        let replica = Arc::new(Replica::new(range_id, raft, applied, node));
        inner.replicas.write().insert(range_id, replica.clone());
        Ok(replica)
    }

    fn replica_node(&self, node_id: u64) -> ReplicaNode {
        ReplicaNode {
            addr: String::new(),
            region: if node_id == self.inner.node_id {
                self.inner.transport.locality().region.clone()
            } else {
                String::new()
            },
        }
    }

    /// Creates the replicas of a new range on `voters` (this node among
    /// them) and initializes its Raft group. Used at cluster bootstrap.
    pub async fn bootstrap_range(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<Arc<Replica>, StoreError> {
        for replica in &descriptor.replicas {
            if replica.node_id != self.inner.node_id {
                self.create_remote(replica.node_id, descriptor).await?;
            }
        }
        let local = self.create_replica(descriptor).await?;
        let voters: Vec<u64> = descriptor.voters().map(|r| r.node_id).collect();
        // Already initialized is fine: a restart of a bootstrap that got this far.
        self.initialize_group(&local, &voters).await?;
        Ok(local)
    }

    async fn create_remote(
        &self,
        node: u64,
        descriptor: &RangeDescriptor,
    ) -> Result<(), StoreError> {
        self.inner
            .transport
            .call::<CreateReplicaRpc>(node, descriptor, Duration::from_secs(10))
            .await?
            .map_err(|reason| StoreError::Remote { node, reason })
    }

    /// This node's replica of `range_id`, woken if it was quiesced: the
    /// administrative operations below need a ticking leader.
    async fn leader_replica(&self, range_id: u64) -> Result<Arc<Replica>, StoreError> {
        let replica = self
            .replica(range_id)
            .ok_or(StoreError::RangeNotFound(range_id))?;
        replica.activate().await;
        Ok(replica)
    }

    /// Adds `node` to the range as a voter or non-voter: creates its empty
    /// replica, adds it as a learner once caught up, then promotes a voter
    /// through joint consensus. Must run on the leader.
    pub async fn add_replica(
        &self,
        range_id: u64,
        node: u64,
        kind: ReplicaKind,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        self.create_remote(node, &replica.descriptor()).await?;
        replica
            .raft()
            .add_learner(node, self.replica_node(node), true)
            .await
            .map_err(|e| StoreError::Raft(e.to_string()))?;
        if kind == ReplicaKind::Voter {
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([node]));
            change_membership(&replica, change, false).await?;
        }
        Ok(())
    }

    /// Turns a voter into a non-voter (it keeps receiving the log).
    pub async fn demote_replica(&self, range_id: u64, node: u64) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([node]));
        change_membership(&replica, change, true).await
    }

    /// Turns a non-voter into a voter.
    pub async fn promote_replica(&self, range_id: u64, node: u64) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([node]));
        change_membership(&replica, change, false).await
    }

    /// Removes `node`'s replica from the range and destroys its data there.
    pub async fn remove_replica(&self, range_id: u64, node: u64) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let descriptor = replica.descriptor();
        let nodes = BTreeSet::from([node]);
        // Without `retain`, removing a voter drops it from the group entirely.
        if descriptor.voters().any(|r| r.node_id == node) {
            change_membership(&replica, ChangeMembers::RemoveVoters(nodes), false).await?;
        } else if descriptor.replica_on(node).is_some() {
            change_membership(&replica, ChangeMembers::RemoveNodes(nodes), false).await?;
        }
        self.inner
            .transport
            .call::<DestroyReplicaRpc>(node, &range_id, Duration::from_secs(10))
            .await?
            .map_err(|reason| StoreError::Remote { node, reason })
    }

    /// Moves the range's leadership (and so its lease) to `to`.
    pub async fn transfer_leadership(&self, range_id: u64, to: u64) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        replica
            .raft()
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|e| StoreError::Raft(e.to_string()))
    }

    /// Shuts this node's replica down and deletes its data, log and state.
    pub async fn destroy_replica(&self, range_id: u64) -> Result<(), StoreError> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        let Some(replica) = self.inner.replicas.write().remove(&range_id) else {
            return Ok(());
        };
        if let Err(e) = replica.raft().shutdown().await {
            warn!(range_id, error = %e, "raft shutdown failed while destroying replica");
        }
        let span = replica.span();
        let mut batch = self.inner.engine.batch();
        batch.clear_data_span(&span.0, &span.1);
        batch.clear_raft(range_id);
        batch.clear_range_local(range_id);
        self.inner.engine.commit(batch, true)?;
        info!(range_id, node = self.inner.node_id, "replica destroyed");
        Ok(())
    }

    /// Serves a batch addressed to one of this node's ranges.
    pub async fn send(&self, request: BatchRequest) -> BatchResult {
        let started = std::time::Instant::now();
        let result = match self.replica(request.range_id) {
            Some(replica) => replica.send(request).await,
            None => Err(KvError::RangeNotFound {
                range_id: request.range_id,
            }),
        };
        self.inner
            .metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Stops every replica's Raft group.
    pub async fn shutdown(&self) {
        self.inner
            .stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let replicas: Vec<_> = self
            .inner
            .replicas
            .write()
            .drain()
            .map(|(_, r)| r)
            .collect();
        for replica in replicas {
            let _ = replica.raft().shutdown().await;
        }
    }

    /// Collects a snapshot's chunks; installs it when the last arrives.
    async fn receive_snapshot_chunk(
        &self,
        range_id: u64,
        chunk: SnapshotChunk,
    ) -> Result<Option<SnapshotResponse<TypeConfig>>, RaftRpcError> {
        let replica = self
            .replica(range_id)
            .ok_or(RaftRpcError::RangeNotFound(range_id))?;
        let complete = {
            let mut staging = self.inner.incoming_snapshots.lock();
            if chunk.offset == 0 {
                staging.insert(
                    range_id,
                    IncomingSnapshot {
                        meta: chunk.meta.clone(),
                        data: RangeData::default(),
                    },
                );
            }
            let incoming = staging
                .get_mut(&range_id)
                .filter(|s| s.meta == chunk.meta && s.data.data.len() as u64 == chunk.offset)
                .ok_or_else(|| RaftRpcError::Raft("snapshot chunk out of order".into()))?;
            incoming.data.local.extend(chunk.local);
            incoming.data.data.extend(chunk.records);
            if !chunk.done {
                return Ok(None);
            }
            staging.remove(&range_id).expect("staged above")
        };
        let snapshot = Snapshot {
            meta: complete.meta,
            snapshot: complete.data,
        };
        replica
            .raft()
            .install_full_snapshot(chunk.vote, snapshot)
            .await
            .map(Some)
            .map_err(|e| RaftRpcError::Raft(e.to_string()))
    }

    fn register_handlers(&self) -> Result<(), StoreError> {
        let transport = &self.inner.transport;
        macro_rules! raft_handler {
            ($rpc:ty, |$raft:ident, $body:ident| $call:expr) => {{
                let store = self.clone();
                transport.register::<$rpc, _, _>(move |_, message: RangeMessage<_>| {
                    let store = store.clone();
                    async move {
                        let replica = store
                            .replica(message.range_id)
                            .ok_or(RaftRpcError::RangeNotFound(message.range_id))?;
                        let $raft = replica.raft();
                        let $body = message.body;
                        $call.map_err(|e| RaftRpcError::Raft(e.to_string()))
                    }
                })?;
            }};
        }
        raft_handler!(AppendRpc, |raft, req| raft.append_entries(req).await);
        raft_handler!(VoteRpc, |raft, req| raft.vote(req).await);
        raft_handler!(PreVoteRpc, |raft, req| raft.pre_vote(req).await);
        raft_handler!(TransferLeaderRpc, |raft, req| raft
            .handle_transfer_leader(req)
            .await);
        let store = self.clone();
        transport.register::<SnapshotRpc, _, _>(
            move |_, message: RangeMessage<SnapshotChunk>| {
                let store = store.clone();
                async move {
                    store
                        .receive_snapshot_chunk(message.range_id, message.body)
                        .await
                }
            },
        )?;

        let store = self.clone();
        transport.register::<BatchRpc, _, _>(move |_, request| {
            let store = store.clone();
            async move { store.send(request).await }
        })?;
        let store = self.clone();
        transport.register::<AdminSplitRpc, _, _>(
            move |_, request: meridian_kvapi::wire::AdminSplitRequest| {
                let store = store.clone();
                async move {
                    store
                        .split_range(request.range_id, &request.split_key, request.right_range_id)
                        .await
                }
            },
        )?;
        let store = self.clone();
        transport.register::<CreateReplicaRpc, _, _>(move |_, descriptor: RangeDescriptor| {
            let store = store.clone();
            async move { store.create_requested_replica(&descriptor).await }
        })?;
        let store = self.clone();
        transport.register::<QuiesceRpc, _, _>(move |_, request: QuiesceRequest| {
            let store = store.clone();
            async move {
                let Some(replica) = store.replica(request.range_id) else {
                    return false;
                };
                let status = replica.raft_status();
                let agrees = status.leader == Some(request.leader) && status.term == request.term;
                if agrees {
                    replica.quiesce_under(request.leader);
                }
                agrees
            }
        })?;
        let store = self.clone();
        transport.register::<WakeRpc, _, _>(move |_, ranges: Vec<u64>| {
            let store = store.clone();
            async move {
                for range_id in ranges {
                    if let Some(replica) = store.replica(range_id) {
                        replica.wake_local();
                    }
                }
            }
        })?;
        let store = self.clone();
        transport.register::<DestroyReplicaRpc, _, _>(move |_, range_id: u64| {
            let store = store.clone();
            async move {
                store
                    .destroy_replica(range_id)
                    .await
                    .map_err(|e| e.to_string())
            }
        })?;
        Ok(())
    }
}

/// Applies a membership change through joint consensus; with `retain`,
/// removed voters stay as non-voters.
async fn change_membership(
    replica: &Replica,
    change: ChangeMembers<u64, ReplicaNode>,
    retain: bool,
) -> Result<(), StoreError> {
    replica
        .raft()
        .change_membership(change, retain)
        .await
        .map_err(|e| StoreError::Raft(e.to_string()))?;
    Ok(())
}
