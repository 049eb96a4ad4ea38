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
//! **Replica identity.** Each replica has a replica id, its member id in
//! the range's Raft group, distinct from its node's id: the leader takes a
//! fresh one for every addition (above every id the range ever had, kept in
//! the applied state as `next_replica_id`). A destroyed replica leaves a
//! tombstone naming the lowest id this node may still create for the range,
//! so a stale request cannot bring the removed replica back, and a
//! destroy or GC meant for an old replica never touches a newer one (both
//! name the replica id they mean). A node removed and added again is a new
//! member with empty state, never an old member whose votes and log were
//! wiped (Raft amnesia).
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

use meridian_kvapi::{NodeId, RangeDescriptor, RangeId, ReplicaId};
use meridian_transport::Rpc;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::InitializeError;
use tracing::info;

use crate::error::{RemoteReplicaError, StoreError};
use crate::raft::log_store::LogStore;
use crate::raft::network::NetworkFactory;
use crate::raft::state_machine::StateMachine;
use crate::raft::types::ReplicaNode;
use crate::replica::{NodeContext, Raft, Replica};
use crate::replica_record::{ReplicaRecord, Tombstone};
use crate::store::Store;

/// Asks a node to create an empty replica of a range it is about to join.
pub struct CreateReplicaRpc;
impl Rpc for CreateReplicaRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::CREATE_REPLICA;
    const NAME: &'static str = "CreateReplica";
    const IDEMPOTENT: bool = true;
    type Request = CreateReplicaRequest;
    type Response = Result<(), RemoteReplicaError>;
}

/// Create replica `replica_id` of `descriptor`'s range.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CreateReplicaRequest {
    pub descriptor: RangeDescriptor,
    pub replica_id: ReplicaId,
}

/// Destroy replica `replica_id` of range `range_id`, or an older one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestroyReplicaRequest {
    pub range_id: RangeId,
    pub replica_id: ReplicaId,
}

/// Tells a node that its replica of a range was removed from the group.
pub struct DestroyReplicaRpc;
impl Rpc for DestroyReplicaRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::DESTROY_REPLICA;
    const NAME: &'static str = "DestroyReplica";
    const IDEMPOTENT: bool = true;
    type Request = DestroyReplicaRequest;
    type Response = Result<(), RemoteReplicaError>;
}

/// How long a node gets to create or destroy a replica it was asked for.
const REMOTE_LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Creates this node's replica `replica_id` of `descriptor` (empty, or
    /// from what the engine holds) unless it exists, persisting the record
    /// first so a restart reopens it.
    pub async fn create_replica(
        &self,
        descriptor: &RangeDescriptor,
        replica_id: ReplicaId,
    ) -> Result<Arc<Replica>, StoreError> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.create_replica_locked(descriptor, replica_id).await
    }

    async fn create_replica_locked(
        &self,
        descriptor: &RangeDescriptor,
        replica_id: ReplicaId,
    ) -> Result<Arc<Replica>, StoreError> {
        if let Some(existing) = self.replica(descriptor.range_id) {
            return Ok(existing);
        }
        let record = ReplicaRecord {
            descriptor: descriptor.clone(),
            replica_id,
        };
        let mut batch = self.inner.engine.batch();
        record.put(&mut batch);
        self.inner.engine.commit(batch, true)?;
        self.open_replica(&record).await
    }

    /// Creates the empty replica `replica_id` a leader asked for. Refused if
    /// the id is below this node's tombstone for the range (that replica was
    /// destroyed) or below the replica it holds (a newer one exists); a
    /// replica here with a lower id is an old incarnation, removed from the
    /// group: it is destroyed first. Also refused while a replica here still
    /// covers part of the span: then this node has not yet applied the split
    /// that created the range, and the split will create it (a snapshot now
    /// would be overwritten by the older log entries the left-hand side
    /// still has to apply).
    pub(crate) async fn create_requested_replica(
        &self,
        request: &CreateReplicaRequest,
    ) -> Result<(), RemoteReplicaError> {
        let CreateReplicaRequest {
            descriptor,
            replica_id,
        } = request;
        let (range_id, replica_id) = (descriptor.range_id, *replica_id);
        let _lifecycle = self.inner.lifecycle.lock().await;
        let store_error = |e| RemoteReplicaError::from_store(range_id, e);
        let tombstone =
            Tombstone::load(&self.inner.engine, range_id).map_err(|e| store_error(e.into()))?;
        if replica_id < tombstone.next_replica_id {
            return Err(RemoteReplicaError::ReplicaTooOld {
                range_id,
                replica_id,
                next_replica_id: tombstone.next_replica_id,
            });
        }
        if let Some(existing) = self.replica(range_id) {
            if existing.replica_id() > replica_id {
                return Err(RemoteReplicaError::ReplicaTooOld {
                    range_id,
                    replica_id,
                    next_replica_id: existing.replica_id(),
                });
            }
            if existing.replica_id() < replica_id {
                self.destroy_replica_locked(range_id, existing.replica_id(), replica_id)
                    .await
                    .map_err(store_error)?;
            }
        }
        if self.replica(range_id).is_none() {
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
        self.create_replica_locked(descriptor, replica_id)
            .await
            .map(|_| ())
            .map_err(store_error)
    }

    /// Starts the Raft group of the replica `record` names from what the
    /// engine holds. The caller holds the lifecycle lock, or is the store
    /// starting.
    pub(crate) async fn open_replica(
        &self,
        record: &ReplicaRecord,
    ) -> Result<Arc<Replica>, StoreError> {
        let inner = &self.inner;
        let (descriptor, replica_id) = (&record.descriptor, record.replica_id);
        let range_id = descriptor.range_id;
        let span = (descriptor.start_key.clone(), descriptor.end_key.clone());
        let sm = StateMachine::open(
            inner.engine.clone(),
            replica_id,
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
        let raft = Raft::new(replica_id, inner.config.clone(), network, log, sm)
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
        let replica = Arc::new(Replica::new(range_id, replica_id, raft, applied, node));
        inner.replicas.write().insert(range_id, replica.clone());
        Ok(replica)
    }

    /// Shuts this node's replica of `range_id` down and deletes its data,
    /// log and state, if its replica id is at most `at_most` (a destroy
    /// meant for an old replica never touches a newer one); leaves a
    /// tombstone so no replica below `tombstone` is created here again.
    pub async fn destroy_replica(
        &self,
        range_id: RangeId,
        at_most: ReplicaId,
        tombstone: ReplicaId,
    ) -> Result<(), StoreError> {
        let _lifecycle = self.inner.lifecycle.lock().await;
        self.destroy_replica_locked(range_id, at_most, tombstone)
            .await
    }

    async fn destroy_replica_locked(
        &self,
        range_id: RangeId,
        at_most: ReplicaId,
        tombstone: ReplicaId,
    ) -> Result<(), StoreError> {
        let replica = {
            let mut replicas = self.inner.replicas.write();
            match replicas.get(&range_id) {
                Some(r) if r.replica_id() <= at_most => replicas.remove(&range_id),
                _ => None,
            }
        };
        let Some(replica) = replica else {
            return Ok(());
        };
        replica.stop().await;
        let mut batch = self.inner.engine.batch();
        // An uninitialized replica owns no data: its span is the one it was
        // created with, which a split since may have given to another range
        // that is initialized here.
        if replica.is_initialized() {
            let span = replica.span();
            batch.clear_data_span(&span.0, &span.1);
        }
        batch.clear_raft(range_id);
        batch.clear_range_local(range_id);
        let previous = Tombstone::load(&self.inner.engine, range_id)?;
        Tombstone {
            next_replica_id: previous.next_replica_id.max(tombstone),
        }
        .put(&mut batch, range_id);
        self.inner.engine.commit(batch, true)?;
        info!(
            range_id,
            replica_id = replica.replica_id(),
            node = self.inner.node_id,
            "replica destroyed"
        );
        Ok(())
    }

    /// Creates the replicas of a new range on `voters` (this node among
    /// them) and initializes its Raft group. Used at cluster bootstrap.
    pub async fn bootstrap_range(
        &self,
        descriptor: &RangeDescriptor,
    ) -> Result<Arc<Replica>, StoreError> {
        let mut local_id = None;
        for replica in &descriptor.replicas {
            if replica.node_id != self.inner.node_id {
                self.create_remote(replica.node_id, descriptor, replica.replica_id)
                    .await?;
            } else {
                local_id = Some(replica.replica_id);
            }
        }
        let local_id = local_id.ok_or(StoreError::NotAReplica {
            range_id: descriptor.range_id,
            node: self.inner.node_id,
        })?;
        let local = self.create_replica(descriptor, local_id).await?;
        // Already initialized is fine: a restart of a bootstrap that got this far.
        self.initialize_group(&local, descriptor).await?;
        Ok(local)
    }

    async fn initialize_group(
        &self,
        replica: &Replica,
        descriptor: &RangeDescriptor,
    ) -> Result<(), StoreError> {
        let members: BTreeMap<ReplicaId, ReplicaNode> = descriptor
            .voters()
            .map(|r| (r.replica_id, self.replica_node(r.node_id)))
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
            node_id,
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
        let missing: Vec<(NodeId, ReplicaId)> = {
            let metrics = replica.raft().metrics().borrow_watched().clone();
            let membership = metrics.membership_config.membership();
            match &metrics.replication {
                Some(progress) => progress
                    .iter()
                    .filter(|(&id, matched)| id != replica.replica_id() && matched.is_none())
                    .filter_map(|(&id, _)| membership.get_node(&id).map(|n| (n.node_id, id)))
                    .collect(),
                None => Vec::new(),
            }
        };
        if missing.is_empty() {
            return Ok(());
        }
        let descriptor = replica.descriptor();
        for (node, replica_id) in missing {
            self.create_remote(node, &descriptor, replica_id).await?;
        }
        Ok(())
    }

    /// Asks `node` to create its (empty) replica `replica_id` of
    /// `descriptor`'s range.
    pub(crate) async fn create_remote(
        &self,
        node: NodeId,
        descriptor: &RangeDescriptor,
        replica_id: ReplicaId,
    ) -> Result<(), StoreError> {
        let request = CreateReplicaRequest {
            descriptor: descriptor.clone(),
            replica_id,
        };
        self.inner
            .transport
            .call::<CreateReplicaRpc>(node, &request, REMOTE_LIFECYCLE_TIMEOUT)
            .await?
            .map_err(|source| StoreError::Remote { node, source })
    }

    /// Asks `node` to destroy its replica `replica_id` of `range_id` (or an
    /// older one).
    pub(crate) async fn destroy_remote(
        &self,
        node: NodeId,
        range_id: RangeId,
        replica_id: ReplicaId,
    ) -> Result<(), StoreError> {
        let request = DestroyReplicaRequest {
            range_id,
            replica_id,
        };
        self.inner
            .transport
            .call::<DestroyReplicaRpc>(node, &request, REMOTE_LIFECYCLE_TIMEOUT)
            .await?
            .map_err(|source| StoreError::Remote { node, source })
    }
}
