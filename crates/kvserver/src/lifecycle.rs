//! Replica lifecycle: how a replica comes to exist on a node, and how it
//! goes.
//!
//! Replicas come to exist in four ways: at bootstrap (the first ranges,
//! [`Store::bootstrap_range`]), when a leader adds this node to a range (it
//! first asks this node to create an empty replica with
//! [`CreateReplicaRpc`], then adds it as a learner and lets Raft fill it by
//! log or snapshot), when this node applies a split (see
//! [`crate::split`]), and at restart (every range whose [`ReplicaRecord`]
//! is in the engine is reopened by [`Store::start`]); a follower that missed
//! the split creating its range is asked for one by the new range's leader
//! ([`Store::create_missing_followers`]). A replica removed
//! from its range is destroyed with its data ([`DestroyReplicaRpc`]).
//!
//! Creating, opening and destroying take the store's lifecycle lock, so a
//! range never has two Raft instances and a destroy's data deletion never
//! races the creation of an overlapping replica.
//!
//! This module does not own membership changes (which ask for replicas to
//! be created and destroyed: [`crate::membership`]) nor the registration of
//! the RPC handlers ([`crate::handlers`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use meridian_transport::Rpc;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::InitializeError;
use tracing::{info, warn};

use crate::error::{RemoteReplicaError, StoreError};
use crate::raft::log_store::LogStore;
use crate::raft::network::NetworkFactory;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::ReplicaNode;
use crate::replica::{NodeContext, Raft, Replica};
use crate::replica_record::ReplicaRecord;
use crate::store::Store;

/// Asks a node to create an empty replica of a range it is about to join.
pub struct CreateReplicaRpc;
impl Rpc for CreateReplicaRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::CREATE_REPLICA;
    const NAME: &'static str = "CreateReplica";
    const IDEMPOTENT: bool = true;
    type Request = RangeDescriptor;
    type Response = Result<(), RemoteReplicaError>;
}

/// Tells a node that its replica of a range was removed from the group.
pub struct DestroyReplicaRpc;
impl Rpc for DestroyReplicaRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::DESTROY_REPLICA;
    const NAME: &'static str = "DestroyReplica";
    const IDEMPOTENT: bool = true;
    type Request = RangeId;
    type Response = Result<(), RemoteReplicaError>;
}

/// How long a node gets to create or destroy a replica it was asked for.
const REMOTE_LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
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
    pub(crate) async fn create_requested_replica(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<(), RemoteReplicaError> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        if self.replica(descriptor.range_id).is_none() {
            let overlapping = self.replicas().into_iter().find(|r| {
                let span = r.span();
                r.range_id() != descriptor.range_id
                    && span.0 < descriptor.end_key
                    && descriptor.start_key < span.1
            });
            if let Some(other) = overlapping {
                return Err(RemoteReplicaError::OverlapsLocalRange {
                    range_id: descriptor.range_id,
                    local_range_id: other.range_id(),
                });
            }
        }
        self.create_replica_locked(descriptor)
            .await
            .map(|_| ())
            .map_err(|e| RemoteReplicaError::from_store(descriptor.range_id, e))
    }

    /// Starts the Raft group of `descriptor`'s range from what the engine
    /// holds. The caller holds the lifecycle lock, or is the store starting.
    pub(crate) async fn open_replica(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<Arc<Replica>, StoreError> {
        let inner = &self.inner;
        let range_id = descriptor.range_id;
        let span = (descriptor.start_key.clone(), descriptor.end_key.clone());
        let sm = StateMachine::open(
            inner.engine.clone(),
            inner.node_id,
            range_id,
            span,
            Some(inner.splits.clone()),
        )
        .map_err(|source| StoreError::OpenStateMachine { range_id, source })?;
        let applied = sm.subscribe();
        let log = LogStore::new(inner.engine.clone(), range_id, inner.syncer.clone())
            .with_applied(sm.subscribe());
        let network = NetworkFactory {
            transport: inner.transport.clone(),
            range_id,
        };
        let raft = Raft::new(inner.node_id, inner.config.clone(), network, log, sm)
            .await
            .map_err(|source| StoreError::StartRaft {
                range_id,
                source: Box::new(source),
            })?;
        let node = NodeContext {
            node_id: inner.node_id,
            metrics: inner.metrics.clone(),
            engine: inner.engine.clone(),
            clock: inner.clock.clone(),
            transport: inner.transport.clone(),
            lease_duration: std::time::Duration::from_millis(inner.config.election_timeout_max),
        };
        let replica = Arc::new(Replica::new(range_id, raft, applied, node));
        inner.replicas.write().insert(range_id, replica.clone());
        Ok(replica)
    }

    /// Shuts this node's replica down and deletes its data, log and state.
    pub async fn destroy_replica(&self, range_id: RangeId) -> Result<(), StoreError> {
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
        let voters: Vec<NodeId> = descriptor.voters().map(|r| r.node_id).collect();
        // Already initialized is fine: a restart of a bootstrap that got this far.
        self.initialize_group(&local, &voters).await?;
        Ok(local)
    }

    async fn initialize_group(
        &self,
        replica: &Replica,
        voters: &[NodeId],
    ) -> Result<(), StoreError> {
        let members: BTreeMap<NodeId, ReplicaNode> = voters
            .iter()
            .map(|&id| (id, self.replica_node(id)))
            .collect();
        match replica.raft().initialize(members).await {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.api_error(), Some(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(StoreError::InitializeRaft {
                range_id: replica.range_id(),
                source: Box::new(e),
            }),
        }
    }

    /// The member record of `node_id` in a group's membership: routing uses
    /// the id alone; the region is known for this node only.
    pub(crate) fn replica_node(&self, node_id: NodeId) -> ReplicaNode {
        ReplicaNode {
            addr: String::new(),
            region: if node_id == self.inner.node_id {
                self.inner.transport.locality().region.clone()
            } else {
                String::new()
            },
        }
    }

    /// Asks every follower the leader of `range_id` never reached to create
    /// its replica (step 6 of a split, see [`crate::split`]): a node that
    /// missed the split creating this range (it caught up on the left-hand
    /// side by snapshot) gets it by snapshot.
    pub async fn create_missing_followers(&self, range_id: RangeId) -> Result<(), StoreError> {
        let replica = self
            .replica(range_id)
            .ok_or(StoreError::RangeNotFound(range_id))?;
        let missing: Vec<NodeId> = {
            let metrics = replica.raft().metrics().borrow_watched().clone();
            match &metrics.replication {
                Some(progress) => progress
                    .iter()
                    .filter(|(id, matched)| **id != self.node_id() && matched.is_none())
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

    /// Asks `node` to create its (empty) replica of `descriptor`'s range.
    pub(crate) async fn create_remote(
        &self,
        node: NodeId,
        descriptor: &RangeDescriptor,
    ) -> Result<(), StoreError> {
        self.inner
            .transport
            .call::<CreateReplicaRpc>(node, descriptor, REMOTE_LIFECYCLE_TIMEOUT)
            .await?
            .map_err(|source| StoreError::Remote { node, source })
    }

    /// Asks `node` to destroy its replica of `range_id`.
    pub(crate) async fn destroy_remote(
        &self,
        node: NodeId,
        range_id: RangeId,
    ) -> Result<(), StoreError> {
        self.inner
            .transport
            .call::<DestroyReplicaRpc>(node, &range_id, REMOTE_LIFECYCLE_TIMEOUT)
            .await?
            .map_err(|source| StoreError::Remote { node, source })
    }
}
