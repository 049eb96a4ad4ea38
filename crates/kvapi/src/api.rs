//! KV requests and responses, as they travel between a client and the
//! leaseholder of a range.

use meridian_hlc::Timestamp;
use serde::{Deserialize, Serialize};

use crate::descriptor::RangeId;
use crate::error::KvError;
use crate::txn::{PushKind, TxnId, TxnMeta, TxnRecord, TxnStatus};

/// One operation on a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Get {
        key: Vec<u8>,
    },
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Put `value` only if the current value equals `expected` (`None`:
    /// only if the key does not exist).
    ConditionalPut {
        key: Vec<u8>,
        value: Vec<u8>,
        expected: Option<Vec<u8>>,
    },
    Delete {
        key: Vec<u8>,
    },
    DeleteRange {
        start: Vec<u8>,
        end: Vec<u8>,
    },
    /// Rows in `[start, end)` in key order, at most `max_rows` (0: all).
    Scan {
        start: Vec<u8>,
        end: Vec<u8>,
        max_rows: u32,
    },
    /// Rows in `[start, end)` from the end backwards.
    ReverseScan {
        start: Vec<u8>,
        end: Vec<u8>,
        max_rows: u32,
    },
    /// Creates, or refreshes the heartbeat of, the PENDING record of the
    /// batch's transaction at its anchor `key`.
    HeartbeatTxn {
        key: Vec<u8>,
        now: Timestamp,
    },
    /// Ends the batch's transaction: its record at anchor `key` becomes
    /// COMMITTED (at the transaction's write timestamp) or ABORTED, naming
    /// the spans of its intents for resolution. Ending it again the same
    /// way answers the same record.
    EndTxn {
        key: Vec<u8>,
        commit: bool,
        lock_spans: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// The record of transaction `txn_id` anchored at `key`, if any.
    QueryTxn {
        key: Vec<u8>,
        txn_id: TxnId,
    },
    /// Pushes transaction `pushee` (whose anchor is `key`) for a pusher of
    /// priority `pusher_priority`, at `now`: succeeds if the pushee ended,
    /// or its heartbeat expired, or the pusher's priority is higher;
    /// answers the pushee's record as the push left it.
    PushTxn {
        key: Vec<u8>,
        pushee: Box<TxnMeta>,
        kind: PushKind,
        pusher_priority: u32,
        now: Timestamp,
    },
    /// Resolves `txn`'s intent on `key` (if it has one there) as `status`
    /// says: committed at `txn.write_timestamp`, aborted, or pending and
    /// pushed to `txn.write_timestamp`.
    ResolveIntent {
        key: Vec<u8>,
        txn: Box<TxnMeta>,
        status: TxnStatus,
    },
}

impl Request {
    /// Whether this commits its batch's transaction (`EndTxn` with
    /// `commit`).
    pub fn is_commit(&self) -> bool {
        matches!(self, Request::EndTxn { commit: true, .. })
    }

    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Put { .. }
                | Request::ConditionalPut { .. }
                | Request::Delete { .. }
                | Request::DeleteRange { .. }
                | Request::HeartbeatTxn { .. }
                | Request::EndTxn { .. }
                | Request::PushTxn { .. }
                | Request::ResolveIntent { .. }
        )
    }

    /// The span `[start, end)` of keys the request touches.
    pub fn span(&self) -> (&[u8], Option<&[u8]>) {
        match self {
            Request::Get { key }
            | Request::Put { key, .. }
            | Request::ConditionalPut { key, .. }
            | Request::Delete { key }
            | Request::HeartbeatTxn { key, .. }
            | Request::EndTxn { key, .. }
            | Request::QueryTxn { key, .. }
            | Request::PushTxn { key, .. }
            | Request::ResolveIntent { key, .. } => (key, None),
            Request::DeleteRange { start, end }
            | Request::Scan { start, end, .. }
            | Request::ReverseScan { start, end, .. } => (start, Some(end)),
        }
    }
}

/// The result of one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Get {
        value: Option<Vec<u8>>,
    },
    Put,
    ConditionalPut,
    Delete,
    DeleteRange {
        deleted: Vec<Vec<u8>>,
    },
    Scan {
        rows: Vec<(Vec<u8>, Vec<u8>)>,
        /// Where to continue when `max_rows` stopped the scan: the next start
        /// key (forward) or the next exclusive end key (reverse).
        resume_key: Option<Vec<u8>>,
    },
    HeartbeatTxn {
        record: Box<TxnRecord>,
    },
    EndTxn {
        record: Box<TxnRecord>,
    },
    QueryTxn {
        record: Option<Box<TxnRecord>>,
    },
    PushTxn {
        record: Box<TxnRecord>,
    },
    /// Whether the transaction had an intent on the key.
    ResolveIntent {
        resolved: bool,
    },
}

/// Requests for one range, evaluated together: writes atomically, reads at
/// one timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub range_id: RangeId,
    /// The timestamp to read and write at; `None` lets the leaseholder pick.
    pub timestamp: Option<Timestamp>,
    pub txn: Option<TxnMeta>,
    pub requests: Vec<Request>,
}

/// Responses in request order, and the timestamp the batch executed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub timestamp: Timestamp,
    pub responses: Vec<Response>,
    /// The generation of the range descriptor the serving replica holds: a
    /// client whose cached descriptor is older looks the range up again
    /// (a leaseholder that serves never corrects a stale cache otherwise,
    /// and a stale one misses replicas added since, which follower reads
    /// would use).
    pub range_generation: u64,
}

pub type BatchResult = Result<BatchResponse, KvError>;
