//! The range-local record from which a node reopens a replica at start.
//!
//! A replica's span and generation as of its applied index live in its
//! applied state; this record says only that the replica exists, what it
//! looked like when it was created.

use meridian_keys::RangeLocalKind;
use meridian_kvapi::{RangeDescriptor, RangeId};
use meridian_storage::{Batch, Engine, StorageError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRecord {
    pub descriptor: RangeDescriptor,
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
}
