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
    /// A transaction's read of `key` that locks it until the transaction
    /// ends (`SELECT ... FOR UPDATE`, and the rows an `UPDATE` or `DELETE`
    /// reads by key). It is evaluated as a write would be: refused with
    /// `WriteTooOld` if the key has a version above the batch's timestamp,
    /// and with `WriteIntent` on another transaction's intent. The lock is
    /// the leaseholder's, in memory: other transactions' writes and
    /// locking reads of the key wait for it; plain reads do not. It is
    /// released when the transaction's `EndTxn` or `ResolveIntent` names
    /// the key, and broken by a waiter after a while (lost with a lease):
    /// serializability never rests on it, only on intents and the
    /// timestamp cache. Answered as `Response::Get`.
    GetForUpdate {
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
    ///
    /// A commit with `in_flight_writes` is a parallel commit: the record
    /// becomes STAGING, and the transaction is committed (implicitly) once
    /// every one of those writes, sent in the same round, is an intent at
    /// or below the record's timestamp with at least its sequence number.
    ///
    /// A commit marked `one_phase` is sent with all of the transaction's
    /// writes in one batch: it is refused (`OnePhaseCommitIncomplete`)
    /// unless evaluated together with every write it names, so a batch
    /// cut across ranges on its way never commits some of them as
    /// intents nobody resolves.
    EndTxn {
        key: Vec<u8>,
        commit: bool,
        lock_spans: Vec<(Vec<u8>, Vec<u8>)>,
        in_flight_writes: Vec<(Vec<u8>, u32)>,
        one_phase: bool,
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
    /// Whether transaction `txn_id` holds an intent on `key` of epoch
    /// `epoch`, with sequence number `sequence` or later, at or below the
    /// batch's timestamp: one in-flight write of a STAGING record, as its
    /// recovery looks for it. Answered by the leaseholder, which records
    /// it as a read of `key` at the batch's timestamp by no transaction:
    /// a write of `txn_id` that had not arrived yet can then no longer
    /// land at or below that timestamp, so a missing write stays missing.
    QueryIntent {
        key: Vec<u8>,
        txn_id: TxnId,
        epoch: u32,
        sequence: u32,
    },
    /// Ends the STAGING record of `txn` at anchor `key` as its recovery
    /// found it: COMMITTED if every in-flight write was found
    /// (`implicitly_committed`), else ABORTED. Only a record still STAGING
    /// at `txn`'s epoch and timestamp changes; any other is answered as it
    /// is (its coordinator moved it on meanwhile, and the recovery starts
    /// again from what it says).
    RecoverTxn {
        key: Vec<u8>,
        txn: Box<TxnMeta>,
        implicitly_committed: bool,
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
                | Request::RecoverTxn { .. }
                | Request::ResolveIntent { .. }
        )
    }

    /// Whether it locks its key for its transaction ([`Request::GetForUpdate`]).
    pub fn is_locking_read(&self) -> bool {
        matches!(self, Request::GetForUpdate { .. })
    }

    /// The span `[start, end)` of keys the request touches.
    pub fn span(&self) -> (&[u8], Option<&[u8]>) {
        match self {
            Request::Get { key }
            | Request::GetForUpdate { key }
            | Request::Put { key, .. }
            | Request::ConditionalPut { key, .. }
            | Request::Delete { key }
            | Request::HeartbeatTxn { key, .. }
            | Request::EndTxn { key, .. }
            | Request::QueryTxn { key, .. }
            | Request::PushTxn { key, .. }
            | Request::QueryIntent { key, .. }
            | Request::RecoverTxn { key, .. }
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
    /// Whether the intent asked for was found.
    QueryIntent {
        found: bool,
    },
    RecoverTxn {
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
