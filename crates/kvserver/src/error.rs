//! The crate's errors: what the store's operations fail with
//! ([`StoreError`]), what a node answers when asked to create or destroy a
//! replica ([`RemoteReplicaError`], which crosses the wire), and how storage
//! outcomes become KV errors at the replica boundary (`kv_error`).
//!
//! It does not own the KV errors a batch is answered with (`KvError`, in
//! kvapi) nor the errors of Raft messages between peers
//! ([`crate::raft::network::RaftRpcError`]).

use std::io;

use meridian_kvapi::{KvError, NodeId, RangeId, ReplicaId};
use meridian_storage::StorageError;
use meridian_transport::TransportError;
use openraft::errors::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::ConfigError;
use serde::{Deserialize, Serialize};

use crate::raft::types::TypeConfig;

/// Errors of the store's replica lifecycle, membership and administration
/// operations. Raft failures keep openraft's error, boxed: they are large
/// and rare.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("range {0} not found on this node")]
    RangeNotFound(RangeId),
    #[error("node {node} failed: {source}")]
    Remote {
        node: NodeId,
        #[source]
        source: RemoteReplicaError,
    },
    #[error("invalid raft configuration: {0}")]
    RaftConfig(#[from] ConfigError),
    #[error("range {range_id}: not the leader here: {reason}")]
    NotLeader { range_id: RangeId, reason: String },
    #[error("range {range_id} has no replica on node {node}")]
    NotAReplica { range_id: RangeId, node: NodeId },
    #[error(
        "invalid raft timeouts for this clock: the lease ({lease:?}, the election timeout) \
         must exceed the clock offset bound ({max_offset:?}) plus two heartbeats ({needed:?} in all)"
    )]
    LeaseTooShort {
        lease: std::time::Duration,
        max_offset: std::time::Duration,
        needed: std::time::Duration,
    },
    #[error("opening the state machine of range {range_id}: {source}")]
    OpenStateMachine {
        range_id: RangeId,
        #[source]
        source: io::Error,
    },
    #[error("starting the raft group of range {range_id}: {source}")]
    StartRaft {
        range_id: RangeId,
        #[source]
        source: Box<Fatal<TypeConfig>>,
    },
    #[error("initializing the raft group of range {range_id}: {source}")]
    InitializeRaft {
        range_id: RangeId,
        #[source]
        source: Box<RaftError<TypeConfig, InitializeError<TypeConfig>>>,
    },
    #[error("changing the membership of range {range_id}: {source}")]
    ChangeMembership {
        range_id: RangeId,
        #[source]
        source: Box<RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
    },
    #[error("transferring the leadership of range {range_id}: {source}")]
    TransferLeadership {
        range_id: RangeId,
        #[source]
        source: Box<Fatal<TypeConfig>>,
    },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
}

/// Why a node did not create or destroy a replica another node asked for
/// (`CreateReplicaRpc`, `DestroyReplicaRpc`). It crosses the wire, so
/// local errors that cannot (storage, I/O) travel as their message under a
/// variant that says what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteReplicaError {
    /// The node holds a replica of another range over part of the span:
    /// it has yet to apply the split that creates the asked-for range, and
    /// that split will create it.
    #[error(
        "range {range_id} overlaps local range {local_range_id}; waiting for it to split or leave"
    )]
    OverlapsLocalRange {
        range_id: RangeId,
        local_range_id: RangeId,
    },
    #[error("range {range_id}: storage: {message}")]
    Storage { range_id: RangeId, message: String },
    /// The replica asked for was removed from this node (its tombstone is
    /// above it) or a newer replica of the range is here.
    #[error("range {range_id}: replica {replica_id} is too old (this node is at replica {next_replica_id})")]
    ReplicaTooOld {
        range_id: RangeId,
        replica_id: ReplicaId,
        next_replica_id: ReplicaId,
    },
    #[error("range {range_id}: starting its raft group: {source}")]
    StartRaft {
        range_id: RangeId,
        #[source]
        source: Box<Fatal<TypeConfig>>,
    },
}

impl RemoteReplicaError {
    /// The wire form of a failure to create, open or destroy a replica of
    /// `range_id`. Those fail only in storage or when the Raft group does
    /// not start; any other error is reported by its message as well.
    pub(crate) fn from_store(range_id: RangeId, e: StoreError) -> Self {
        match e {
            StoreError::StartRaft { source, .. } => {
                RemoteReplicaError::StartRaft { range_id, source }
            }
            other => RemoteReplicaError::Storage {
                range_id,
                message: other.to_string(),
            },
        }
    }
}

pub(crate) fn kv_error(e: StorageError) -> KvError {
    match e {
        StorageError::WriteIntent { mut intents } => {
            let first = intents.swap_remove(0);
            KvError::WriteIntent {
                key: first.key,
                txn: Box::new(first.txn),
            }
        }
        StorageError::WriteTooOld {
            requested,
            existing,
        } => KvError::WriteTooOld {
            requested,
            existing,
        },
        StorageError::ReadWithinUncertainty {
            read_ts, value_ts, ..
        } => KvError::ReadWithinUncertainty { read_ts, value_ts },
        StorageError::ConditionFailed { actual } => KvError::ConditionFailed { actual },
        e @ (StorageError::KeyTooLarge { .. }
        | StorageError::ValueTooLarge { .. }
        | StorageError::InvalidArgument(_)
        | StorageError::StaleEpoch { .. }) => KvError::InvalidRequest(e.to_string()),
        e @ (StorageError::Corrupt { .. } | StorageError::RocksDb(_)) => {
            KvError::Storage(e.to_string())
        }
    }
}
