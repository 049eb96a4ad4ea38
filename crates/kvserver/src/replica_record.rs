//! The range-local records of a replica's identity: the one from which a
//! node reopens a replica at start ([`ReplicaRecord`]), and the tombstone a
//! destroyed replica leaves ([`Tombstone`]).
//!
//! A replica's span and generation as of its applied index live in its
//! applied state; the record says only that the replica exists, which
//! replica id it has, and what the range looked like when it was created.
//! Neither record travels in a snapshot: they belong to this node's copy.

use meridian_keys::RangeLocalKind;
use meridian_kvapi::{RangeDescriptor, RangeId, ReplicaId};
use meridian_storage::{Batch, Engine, StorageError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub descriptor: RangeDescriptor,
    /// This replica's member id in the range's Raft group.
    pub replica_id: ReplicaId,
}

impl ReplicaRecord {
    pub fn put(&self, batch: &mut Batch) {
        let bytes = postcard::to_stdvec(self).expect("replica record serializes");
        batch.put_range_local(self.descriptor.range_id, RangeLocalKind::Descriptor, &bytes);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        postcard::from_bytes(bytes).map_err(|e| StorageError::Corrupt {
            what: "replica record",
            detail: e.to_string(),
        })
    }

    /// Whether `engine` holds a replica of `range_id`.
    pub fn exists(engine: &Engine, range_id: RangeId) -> Result<bool, StorageError> {
        Ok(engine
            .range_local(range_id, RangeLocalKind::Descriptor)?
            .is_some())
    }

    /// The record of this node's replica of `range_id`, if it has one.
    pub fn load(engine: &Engine, range_id: RangeId) -> Result<Option<Self>, StorageError> {
        engine
            .range_local(range_id, RangeLocalKind::Descriptor)?
            .map(|bytes| Self::decode(&bytes))
            .transpose()
    }
}

/// What a destroyed replica leaves: replica ids below `next_replica_id`
/// are never created again on this node for this range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub next_replica_id: ReplicaId,
}

impl Tombstone {
    /// The tombstone of `range_id` on this node (zero if none).
    pub fn load(engine: &Engine, range_id: RangeId) -> Result<Self, StorageError> {
        match engine.range_local(range_id, RangeLocalKind::Tombstone)? {
            Some(bytes) => postcard::from_bytes(&bytes).map_err(|e| StorageError::Corrupt {
                what: "range tombstone",
                detail: e.to_string(),
            }),
            None => Ok(Tombstone::default()),
        }
    }

    pub fn put(&self, batch: &mut Batch, range_id: RangeId) {
        let bytes = postcard::to_stdvec(self).expect("tombstone serializes");
        batch.put_range_local(range_id, RangeLocalKind::Tombstone, &bytes);
    }
}
