//! The KV error enum: what a range can answer instead of a result. It
//! crosses the wire, so it carries data, not sources.

use meridian_hlc::Timestamp;
use serde::{Deserialize, Serialize};

use crate::descriptor::{RangeDescriptor, RangeId, ReplicaDescriptor};
use crate::txn::TxnMeta;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum KvError {
    /// This replica does not hold the lease; `leaseholder` is a hint.
    #[error("range {range_id}: not leaseholder (hint: {leaseholder:?})")]
    NotLeaseholder {
        range_id: RangeId,
        leaseholder: Option<ReplicaDescriptor>,
        descriptor: Option<Box<RangeDescriptor>>,
    },
    /// The keys are not (or no longer) in this range; `descriptor` is the
    /// range as this node knows it, to refresh a cache.
    #[error("range {range_id}: keys outside the range (descriptor: {descriptor:?})")]
    RangeKeyMismatch {
        range_id: RangeId,
        descriptor: Option<Box<RangeDescriptor>>,
    },
    /// No replica of the range lives on this node.
    #[error("range {range_id} not found on node")]
    RangeNotFound { range_id: RangeId },
    #[error("conflicting intent on {key:?} of txn {}", txn.id)]
    WriteIntent { key: Vec<u8>, txn: Box<TxnMeta> },
    #[error("write at {requested} too old: a version exists at {existing}")]
    WriteTooOld {
        requested: Timestamp,
        existing: Timestamp,
    },
    #[error("read at {read_ts} found a value at {value_ts} within its uncertainty interval")]
    ReadWithinUncertainty {
        read_ts: Timestamp,
        value_ts: Timestamp,
    },
    #[error("condition failed: actual value {actual:?}")]
    ConditionFailed { actual: Option<Vec<u8>> },
    /// The request was malformed; retrying it will not help.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The range could not serve the request now (no quorum, shutting
    /// down, proposal dropped); retrying later may succeed.
    #[error("range {range_id} unavailable: {reason}")]
    Unavailable { range_id: RangeId, reason: String },
    /// A write was proposed but its outcome is unknown: it may or may not
    /// have been applied. Retrying blindly could apply it twice.
    #[error("range {range_id}: write outcome unknown: {reason}")]
    AmbiguousResult { range_id: RangeId, reason: String },
    /// The node failed to read or write its storage.
    #[error("storage failure: {0}")]
    Storage(String),
}

impl KvError {
    /// Whether a client should retry (possibly elsewhere, after refreshing
    /// its range cache) rather than report the error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            KvError::NotLeaseholder { .. }
                | KvError::RangeKeyMismatch { .. }
                | KvError::RangeNotFound { .. }
                | KvError::Unavailable { .. }
        )
    }
}
