//! The KV error enum: what a range can answer instead of a result. It
//! crosses the wire, so it carries data, not sources.

use meridian_hlc::Timestamp;
use serde::{Deserialize, Serialize};

use crate::descriptor::{RangeDescriptor, RangeId, ReplicaDescriptor};
use crate::txn::{TxnId, TxnMeta};

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
    /// The request's timestamp is at or below the range's GC threshold:
    /// versions it would need may have been garbage collected. Not
    /// retryable at that timestamp; a read at a newer one works.
    #[error(
        "range {range_id}: timestamp {timestamp} is at or below the GC threshold {threshold}: \
         the versions it would read may have been garbage collected (retry at a newer timestamp, \
         or raise gc_ttl)"
    )]
    BelowGcThreshold {
        range_id: RangeId,
        timestamp: Timestamp,
        threshold: Timestamp,
    },
    /// The transaction's record says it was aborted (by its coordinator, or
    /// by another transaction that found it abandoned): it can only start
    /// again as a new transaction.
    #[error("transaction {txn_id} was aborted")]
    TransactionAborted { txn_id: TxnId },
    /// A push could not move the pushee: it is alive (heartbeating) and its
    /// priority is not below the pusher's. The pusher waits and asks again.
    #[error("transaction {pushee} could not be pushed: it is alive and not of lower priority")]
    TransactionPushFailed { pushee: TxnId },
    /// The transaction's record was pushed to a later timestamp than the
    /// one it tried to commit at: it must refresh its reads there (or
    /// restart) before it commits.
    #[error("transaction {txn_id} was pushed to {pushed_to}: refresh or restart")]
    TransactionPushed { txn_id: TxnId, pushed_to: Timestamp },
    /// A request that needs a transaction came without one, or with one
    /// whose record disagrees with it (another anchor, already committed).
    #[error("transaction {txn_id}: {reason}")]
    TransactionInvalid { txn_id: TxnId, reason: String },
    /// An abort of a STAGING transaction: it may have committed already
    /// (every write of its parallel commit landed), so only a recovery,
    /// which finds out, may end it.
    #[error("transaction {txn_id} is STAGING: only its recovery may end it")]
    TransactionStaging { txn_id: TxnId },
    /// A batch that commits its transaction together with writes (a
    /// one-phase commit) did not hold every write its commit names, or met
    /// an intent the transaction wrote before: its writes may lie on other
    /// ranges (the batch was cut across ranges on its way). Nothing of
    /// this part was applied; the coordinator writes intents and commits
    /// the ordinary way instead.
    #[error("transaction {txn_id}: not a one-phase commit: {reason}")]
    OnePhaseCommitIncomplete { txn_id: TxnId, reason: String },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_gc_threshold_is_final_explains_itself_and_crosses_the_wire() {
        let error = KvError::BelowGcThreshold {
            range_id: 7,
            timestamp: Timestamp::new(5_000_000_000, 0),
            threshold: Timestamp::new(6_000_000_000, 1),
        };
        assert!(!error.is_retryable(), "the same timestamp fails again");
        let message = error.to_string();
        assert!(message.contains("range 7"), "{message}");
        assert!(message.contains("GC threshold 6.000000000,1"), "{message}");
        let bytes = postcard::to_allocvec(&error).expect("encodes");
        assert_eq!(postcard::from_bytes::<KvError>(&bytes).unwrap(), error);
    }
}
