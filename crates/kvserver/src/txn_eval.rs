//! Evaluation of the transaction requests against a range: a transaction's
//! record (heartbeat, end, query) at its anchor key, and the resolution of
//! its intents once its outcome is known.
//!
//! The rules a record follows here: it is created PENDING by the first
//! heartbeat, or directly in its final state by the end; once COMMITTED or
//! ABORTED it never changes state again (ending it again the same way
//! answers the same record, the other way is refused); a heartbeat or a
//! commit of an ABORTED record answers `TransactionAborted`, so a
//! coordinator whose transaction another one aborted learns it. The anchor
//! of the request must be the transaction's.
//!
//! A push ([`push`]) settles a conflict between two transactions at the
//! pushee's record: an ended pushee is answered as it is; a PENDING one
//! (or one without a record yet) gives way if its heartbeat expired
//! ([`TXN_HEARTBEAT_EXPIRY`]; for a missing record, counted from its first
//! timestamp) or the pusher's priority is higher: it is aborted, or its
//! timestamp moved up; otherwise `TransactionPushFailed` and the pusher
//! waits. A commit whose record was pushed above the timestamp it commits
//! at is refused with `TransactionPushed`.
//!
//! A one-phase commit ([`is_one_phase_commit`], [`end_in_one_phase`]) is a
//! batch holding all of a transaction's writes (puts, conditional puts,
//! deletes) followed by its `EndTxn(commit)`: the writes are evaluated as
//! committed values at the transaction's write timestamp (no intents) and
//! no record is written, so the whole transaction is one Raft command. The
//! batch's timestamp went through the timestamp cache like any
//! transactional write (refused as `WriteTooOld` at or below a read, never
//! moved silently: the coordinator refreshes its reads and sends it
//! again). A commit with writes that are not all of the transaction's
//! (its commit names a key the batch does not write, or a write meets the
//! transaction's own intent) is refused with `OnePhaseCommitIncomplete`:
//! the rest of its writes may be on another range, perhaps not written.
//!
//! A parallel commit (an `EndTxn(commit)` naming in-flight writes) makes
//! the record STAGING: committed once every one of those writes is found.
//! Such a record is never aborted by its coordinator nor aborted or moved
//! by a push that succeeds (it is answered as it is, for the pusher to
//! recover); only [`recover`] (`RecoverTxn`), after the recovering
//! transaction looked for each write ([`query_intent`]), ends it
//! otherwise than by an explicit commit.
//!
//! Not here: the coordinator that sends these, and the recovery's steps
//! (kvclient's `txn`), waiting for and detecting deadlocks among pushes,
//! or removing records after resolution (issue 10).

use std::collections::BTreeSet;

use meridian_hlc::Timestamp;
use meridian_kvapi::{
    KvError, PushKind, Request, Response, TxnMeta, TxnRecord, TxnStatus, TXN_HEARTBEAT_EXPIRY,
};
use meridian_storage::mvcc::{mvcc_intent, resolve_intent, IntentResolution, ResolutionStatus};
use meridian_storage::{Batch, Engine, MvccStats, Reader};

use crate::error::kv_error;

/// Whether `request` is one of the transaction requests this module
/// evaluates.
pub fn is_txn_request(request: &Request) -> bool {
    matches!(
        request,
        Request::HeartbeatTxn { .. }
            | Request::EndTxn { .. }
            | Request::QueryTxn { .. }
            | Request::PushTxn { .. }
            | Request::RecoverTxn { .. }
            | Request::ResolveIntent { .. }
    )
}

/// Evaluates a transaction request into `batch` (which it reads back, so
/// several in one batch see each other).
pub fn evaluate_txn_request(
    batch: &mut Batch,
    request: &Request,
    txn: Option<&TxnMeta>,
    stats: &mut MvccStats,
) -> Result<Response, KvError> {
    match request {
        Request::HeartbeatTxn { key, now } => {
            let txn = own_txn(txn, key)?;
            let record = match batch.txn_record(key, txn.id).map_err(kv_error)? {
                None => TxnRecord {
                    meta: txn.clone(),
                    status: TxnStatus::Pending,
                    last_heartbeat: *now,
                    lock_spans: Vec::new(),
                    in_flight_writes: Vec::new(),
                },
                Some(record) => match record.status {
                    TxnStatus::Aborted => {
                        return Err(KvError::TransactionAborted { txn_id: txn.id })
                    }
                    TxnStatus::Committed => {
                        return Err(invalid(txn, "a committed transaction has no heartbeat"))
                    }
                    TxnStatus::Pending | TxnStatus::Staging => TxnRecord {
                        last_heartbeat: record.last_heartbeat.max(*now),
                        ..record
                    },
                },
            };
            batch.put_txn_record(&record);
            Ok(Response::HeartbeatTxn {
                record: Box::new(record),
            })
        }
        Request::EndTxn {
            key,
            commit,
            lock_spans,
            in_flight_writes,
            ..
        } => {
            let txn = own_txn(txn, key)?;
            let existing = batch.txn_record(key, txn.id).map_err(kv_error)?;
            let status = match (*commit, in_flight_writes.is_empty()) {
                (true, true) => TxnStatus::Committed,
                (true, false) => TxnStatus::Staging,
                (false, _) => TxnStatus::Aborted,
            };
            if let Some(record) = existing.as_ref() {
                match (record.status, *commit) {
                    (TxnStatus::Committed, true) | (TxnStatus::Aborted, false) => {
                        return Ok(Response::EndTxn {
                            record: Box::new(record.clone()),
                        })
                    }
                    (TxnStatus::Aborted, true) => {
                        return Err(KvError::TransactionAborted { txn_id: txn.id })
                    }
                    (TxnStatus::Committed, false) => {
                        return Err(invalid(txn, "a committed transaction cannot be aborted"))
                    }
                    (TxnStatus::Staging, false) => {
                        // Perhaps committed already: only a recovery, which
                        // finds out, may end it.
                        return Err(KvError::TransactionStaging { txn_id: txn.id });
                    }
                    (TxnStatus::Pending | TxnStatus::Staging, true) => {
                        if record.meta.write_timestamp > txn.write_timestamp {
                            return Err(KvError::TransactionPushed {
                                txn_id: txn.id,
                                pushed_to: record.meta.write_timestamp,
                            });
                        }
                    }
                    (TxnStatus::Pending, false) => {}
                }
            }
            let record = TxnRecord {
                meta: txn.clone(),
                status,
                last_heartbeat: existing.map_or(txn.write_timestamp, |r| r.last_heartbeat),
                lock_spans: lock_spans.clone(),
                in_flight_writes: in_flight_writes.clone(),
            };
            batch.put_txn_record(&record);
            Ok(Response::EndTxn {
                record: Box::new(record),
            })
        }
        Request::PushTxn {
            key,
            pushee,
            kind,
            pusher_priority,
            now,
        } => {
            if pushee.anchor_key != *key {
                return Err(invalid(
                    pushee,
                    "the request's key is not the pushee's anchor",
                ));
            }
            let existing = batch.txn_record(key, pushee.id).map_err(kv_error)?;
            let record = push(pushee, existing, *kind, *pusher_priority, *now)?;
            batch.put_txn_record(&record);
            Ok(Response::PushTxn {
                record: Box::new(record),
            })
        }
        Request::QueryTxn { key, txn_id } => Ok(Response::QueryTxn {
            record: batch
                .txn_record(key, *txn_id)
                .map_err(kv_error)?
                .map(Box::new),
        }),
        Request::RecoverTxn {
            key,
            txn,
            implicitly_committed,
        } => {
            let record = batch.txn_record(key, txn.id).map_err(kv_error)?;
            let record = recover(txn, record, *implicitly_committed)?;
            batch.put_txn_record(&record);
            Ok(Response::RecoverTxn {
                record: Box::new(record),
            })
        }
        Request::ResolveIntent { key, txn, status } => {
            let status = match status {
                TxnStatus::Committed => ResolutionStatus::Committed,
                TxnStatus::Aborted => ResolutionStatus::Aborted,
                TxnStatus::Pending => ResolutionStatus::Pending,
                TxnStatus::Staging => {
                    return Err(invalid(txn, "a STAGING transaction's outcome is not known"))
                }
            };
            let resolution = IntentResolution {
                txn_id: txn.id,
                epoch: txn.epoch,
                status,
                timestamp: txn.write_timestamp,
                ignored_seqs: txn.ignored_seqs.clone(),
            };
            let resolved = resolve_intent(batch, key, &resolution, stats).map_err(kv_error)?;
            Ok(Response::ResolveIntent { resolved })
        }
        other => Err(KvError::InvalidRequest(format!(
            "not a transaction request: {other:?}"
        ))),
    }
}

/// Whether `requests` by `txn` are a one-phase commit (see the module
/// documentation): they end with `EndTxn(commit)` and otherwise hold only
/// point writes, which include every key the commit names. `Ok(false)`:
/// no commit, or no MVCC write beside it (evaluated as usual). A commit
/// with writes that is not complete is refused.
pub fn is_one_phase_commit(requests: &[Request], txn: Option<&TxnMeta>) -> Result<bool, KvError> {
    let is_mvcc_write = |r: &Request| {
        matches!(
            r,
            Request::Put { .. }
                | Request::ConditionalPut { .. }
                | Request::Delete { .. }
                | Request::DeleteRange { .. }
        )
    };
    let is_commit = |r: &Request| matches!(r, Request::EndTxn { commit: true, .. });
    let is_parallel_commit = |r: &Request| matches!(r, Request::EndTxn { commit: true, in_flight_writes, .. } if !in_flight_writes.is_empty());
    if !requests.iter().any(is_commit) || requests.iter().any(is_parallel_commit) {
        return Ok(false);
    }
    if !requests.iter().any(is_mvcc_write) {
        return match requests.iter().find(|r| is_commit(r)) {
            // Its writes went to another range (the batch was cut on its
            // way): they may have landed as intents.
            Some(Request::EndTxn {
                one_phase: true, ..
            }) => {
                let txn = txn.map_or(meridian_kvapi::TxnId(0), |t| t.id);
                Err(KvError::OnePhaseCommitIncomplete {
                    txn_id: txn,
                    reason: "its writes are not in this batch".into(),
                })
            }
            _ => Ok(false),
        };
    }
    let (
        Some(Request::EndTxn {
            key, lock_spans, ..
        }),
        writes,
    ) = (requests.last(), &requests[..requests.len() - 1])
    else {
        return Err(KvError::InvalidRequest(
            "a commit batched with writes must come last".into(),
        ));
    };
    let txn = own_txn(txn, key)?;
    if writes.iter().any(|r| {
        !matches!(
            r,
            Request::Put { .. } | Request::ConditionalPut { .. } | Request::Delete { .. }
        )
    }) {
        return Err(invalid(
            txn,
            "a one-phase commit holds only puts, conditional puts and deletes beside its commit",
        ));
    }
    let written: BTreeSet<&[u8]> = writes.iter().map(|r| r.span().0).collect();
    for (start, end) in lock_spans {
        let point =
            end.len() == start.len() + 1 && end.starts_with(start) && end.last() == Some(&0);
        if !point || !written.contains(start.as_slice()) {
            return Err(KvError::OnePhaseCommitIncomplete {
                txn_id: txn.id,
                reason: format!("its commit names {start:?}, which the batch does not write"),
            });
        }
    }
    Ok(true)
}

/// The `EndTxn(commit)` of a one-phase commit by `txn` at `ts`: the
/// transaction's record, if it has one, must be its own PENDING one, not
/// pushed above `ts`; it is removed (there is nothing to resolve). Answers
/// the record the transaction ends with, COMMITTED at `ts`, which is never
/// written.
pub fn end_in_one_phase(
    batch: &mut Batch,
    request: &Request,
    txn: Option<&TxnMeta>,
    ts: Timestamp,
) -> Result<Response, KvError> {
    let Request::EndTxn {
        key,
        commit: true,
        lock_spans,
        ..
    } = request
    else {
        return Err(KvError::InvalidRequest(format!(
            "not a commit: {request:?}"
        )));
    };
    let txn = own_txn(txn, key)?;
    if ts != txn.write_timestamp {
        // Its reads were checked at its write timestamp, and only there.
        return Err(invalid(
            txn,
            "a one-phase commit runs at its transaction's write timestamp",
        ));
    }
    if let Some(record) = batch.txn_record(key, txn.id).map_err(kv_error)? {
        match record.status {
            TxnStatus::Aborted => return Err(KvError::TransactionAborted { txn_id: txn.id }),
            TxnStatus::Committed => return Err(invalid(txn, "the transaction committed already")),
            TxnStatus::Pending | TxnStatus::Staging => {
                if record.meta.write_timestamp > ts {
                    return Err(KvError::TransactionPushed {
                        txn_id: txn.id,
                        pushed_to: record.meta.write_timestamp,
                    });
                }
                batch.delete_txn_record(key, txn.id);
            }
        }
    }
    Ok(Response::EndTxn {
        record: Box::new(TxnRecord {
            meta: txn.clone(),
            status: TxnStatus::Committed,
            last_heartbeat: ts,
            lock_spans: lock_spans.clone(),
            in_flight_writes: Vec::new(),
        }),
    })
}

/// The pushee's record after a push (see the module documentation), from
/// what its intent says of it (`pushee`) and its record, if any.
pub fn push(
    pushee: &TxnMeta,
    existing: Option<TxnRecord>,
    kind: PushKind,
    pusher_priority: u32,
    now: Timestamp,
) -> Result<TxnRecord, KvError> {
    let mut record = existing.unwrap_or_else(|| TxnRecord {
        meta: pushee.clone(),
        status: TxnStatus::Pending,
        // A transaction that never heartbeated is as old as it is.
        last_heartbeat: pushee.min_timestamp,
        lock_spans: Vec::new(),
        in_flight_writes: Vec::new(),
    });
    if matches!(record.status, TxnStatus::Committed | TxnStatus::Aborted) {
        return Ok(record);
    }
    let expired = record.last_heartbeat.add_duration(TXN_HEARTBEAT_EXPIRY) < now;
    if !expired && pusher_priority <= record.meta.priority {
        return Err(KvError::TransactionPushFailed { pushee: pushee.id });
    }
    if record.status == TxnStatus::Staging {
        // It may have committed already (every in-flight write landed):
        // neither aborted nor moved here. The pusher recovers it.
        return Ok(record);
    }
    match kind {
        // An abandoned transaction is aborted, not kept alive higher.
        PushKind::Abort | PushKind::Timestamp(_) if expired => {
            record.status = TxnStatus::Aborted;
        }
        PushKind::Abort => record.status = TxnStatus::Aborted,
        PushKind::Timestamp(to) => {
            record.meta.write_timestamp = record.meta.write_timestamp.max(to);
        }
    }
    Ok(record)
}

/// The record a recovery of `txn` (the STAGING record it started from)
/// leaves (see [`Request::RecoverTxn`]).
pub fn recover(
    txn: &TxnMeta,
    existing: Option<TxnRecord>,
    implicitly_committed: bool,
) -> Result<TxnRecord, KvError> {
    let Some(mut record) = existing else {
        return Err(invalid(txn, "a recovered transaction has no record"));
    };
    let unchanged = record.status == TxnStatus::Staging
        && record.meta.epoch == txn.epoch
        && record.meta.write_timestamp == txn.write_timestamp;
    if unchanged {
        record.status = if implicitly_committed {
            TxnStatus::Committed
        } else {
            TxnStatus::Aborted
        };
        record.in_flight_writes.clear();
    }
    Ok(record)
}

/// Whether `engine` holds the intent a [`Request::QueryIntent`] at `ts`
/// looks for.
pub fn query_intent(
    reader: &dyn Reader,
    request: &Request,
    ts: Timestamp,
) -> Result<Response, KvError> {
    let Request::QueryIntent {
        key,
        txn_id,
        epoch,
        sequence,
    } = request
    else {
        return Err(KvError::InvalidRequest(format!(
            "not an intent query: {request:?}"
        )));
    };
    let found = mvcc_intent(reader, key)
        .map_err(kv_error)?
        .is_some_and(|intent| {
            intent.txn.id == *txn_id
                && intent.txn.epoch == *epoch
                && intent.txn.sequence >= *sequence
                && intent.txn.write_timestamp <= ts
        });
    Ok(Response::QueryIntent { found })
}

/// The record of `request` (a `QueryTxn`) read from `engine`, for a batch
/// that only reads.
pub fn query_txn(engine: &Engine, request: &Request) -> Result<Response, KvError> {
    match request {
        Request::QueryTxn { key, txn_id } => Ok(Response::QueryTxn {
            record: engine
                .txn_record(key, *txn_id)
                .map_err(kv_error)?
                .map(Box::new),
        }),
        other => Err(KvError::InvalidRequest(format!("not a query: {other:?}"))),
    }
}

/// The batch's transaction, which a record request at anchor `key` needs.
fn own_txn<'a>(txn: Option<&'a TxnMeta>, key: &[u8]) -> Result<&'a TxnMeta, KvError> {
    let txn = txn.ok_or_else(|| {
        KvError::InvalidRequest("a transaction record request needs its transaction".into())
    })?;
    if txn.anchor_key != key {
        return Err(invalid(
            txn,
            "the request's key is not the transaction's anchor",
        ));
    }
    Ok(txn)
}

fn invalid(txn: &TxnMeta, reason: &str) -> KvError {
    KvError::TransactionInvalid {
        txn_id: txn.id,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn secs(s: u64) -> Timestamp {
        Timestamp::new(s * 1_000_000_000, 0)
    }

    fn pushee(priority: u32) -> TxnMeta {
        let mut txn = TxnMeta::new(b"a".to_vec(), secs(100));
        txn.priority = priority;
        txn
    }

    fn record(txn: &TxnMeta, status: TxnStatus, heartbeat: Timestamp) -> TxnRecord {
        TxnRecord {
            meta: txn.clone(),
            status,
            last_heartbeat: heartbeat,
            lock_spans: Vec::new(),
            in_flight_writes: Vec::new(),
        }
    }

    #[test]
    fn an_ended_pushee_is_answered_as_it_is() {
        let txn = pushee(1);
        for status in [TxnStatus::Committed, TxnStatus::Aborted] {
            let ended = record(&txn, status, secs(100));
            assert_eq!(
                push(&txn, Some(ended.clone()), PushKind::Abort, 0, secs(101)),
                Ok(ended)
            );
        }
    }

    #[test]
    fn a_live_pushee_of_equal_or_higher_priority_holds() {
        let txn = pushee(5);
        let live = record(&txn, TxnStatus::Pending, secs(100));
        for priority in [1, 5] {
            assert_eq!(
                push(
                    &txn,
                    Some(live.clone()),
                    PushKind::Abort,
                    priority,
                    secs(101)
                ),
                Err(KvError::TransactionPushFailed { pushee: txn.id })
            );
        }
    }

    #[test]
    fn a_higher_priority_pusher_aborts_or_moves_a_live_pushee() {
        let txn = pushee(1);
        let live = record(&txn, TxnStatus::Pending, secs(100));
        let aborted = push(&txn, Some(live.clone()), PushKind::Abort, 2, secs(101)).unwrap();
        assert_eq!(aborted.status, TxnStatus::Aborted);
        let moved = push(
            &txn,
            Some(live),
            PushKind::Timestamp(secs(150)),
            2,
            secs(101),
        )
        .unwrap();
        assert_eq!(moved.status, TxnStatus::Pending);
        assert_eq!(moved.meta.write_timestamp, secs(150));
    }

    /// A coordinator that stopped heartbeating (or never wrote its record)
    /// gives way to anyone once the expiry passed, and is aborted even by a
    /// timestamp push: an abandoned transaction is not kept alive.
    #[test]
    fn an_abandoned_pushee_is_aborted_by_any_pusher() {
        let txn = pushee(9);
        let after_expiry = secs(100).add_duration(TXN_HEARTBEAT_EXPIRY + Duration::from_secs(1));
        let stale = record(&txn, TxnStatus::Pending, secs(100));
        let pushed = push(
            &txn,
            Some(stale),
            PushKind::Timestamp(secs(200)),
            0,
            after_expiry,
        );
        assert_eq!(pushed.map(|r| r.status), Ok(TxnStatus::Aborted));
        let no_record = push(&txn, None, PushKind::Abort, 0, after_expiry);
        assert_eq!(no_record.map(|r| r.status), Ok(TxnStatus::Aborted));
        assert_eq!(
            push(&txn, None, PushKind::Abort, 0, secs(101)),
            Err(KvError::TransactionPushFailed { pushee: txn.id }),
            "a young transaction without a record is alive"
        );
    }

    /// A STAGING pushee may have committed: a push that would succeed
    /// (higher priority, or an expired heartbeat) leaves it as it is, for
    /// the pusher to recover; one that would not still fails.
    #[test]
    fn a_staging_pushee_is_neither_aborted_nor_moved() {
        let txn = pushee(1);
        let staging = record(&txn, TxnStatus::Staging, secs(100));
        for (priority, now) in [(5, secs(101)), (0, secs(200))] {
            for kind in [PushKind::Abort, PushKind::Timestamp(secs(150))] {
                assert_eq!(
                    push(&txn, Some(staging.clone()), kind, priority, now),
                    Ok(staging.clone())
                );
            }
        }
        assert_eq!(
            push(&txn, Some(staging), PushKind::Abort, 1, secs(101)),
            Err(KvError::TransactionPushFailed { pushee: txn.id })
        );
    }

    /// A recovery ends only the record it started from: STAGING at the
    /// same epoch and timestamp; any other is answered as it is.
    #[test]
    fn a_recovery_ends_only_an_unchanged_staging_record() {
        let txn = pushee(1);
        let mut staging = record(&txn, TxnStatus::Staging, secs(100));
        staging.in_flight_writes = vec![(b"k".to_vec(), 1)];
        for (found, status) in [(true, TxnStatus::Committed), (false, TxnStatus::Aborted)] {
            let ended = recover(&txn, Some(staging.clone()), found).unwrap();
            assert_eq!(ended.status, status);
            assert!(ended.in_flight_writes.is_empty());
        }
        let mut moved = staging.clone();
        moved.meta.write_timestamp = secs(120);
        assert_eq!(recover(&txn, Some(moved.clone()), false), Ok(moved));
        for status in [TxnStatus::Committed, TxnStatus::Aborted, TxnStatus::Pending] {
            let other = record(&txn, status, secs(100));
            assert_eq!(recover(&txn, Some(other.clone()), false), Ok(other));
        }
        assert!(recover(&txn, None, true).is_err());
    }

    /// A one-phase commit cut from its writes on the way (they went to
    /// another range, where they may have landed as intents) is refused:
    /// committed alone, it would leave those intents to nobody. An
    /// ordinary commit alone is not.
    #[test]
    fn a_one_phase_commit_without_its_writes_is_refused() {
        let txn = pushee(1);
        let end = |one_phase| Request::EndTxn {
            key: txn.anchor_key.clone(),
            commit: true,
            lock_spans: vec![(b"k".to_vec(), b"k\0".to_vec())],
            in_flight_writes: Vec::new(),
            one_phase,
        };
        assert!(matches!(
            is_one_phase_commit(&[end(true)], Some(&txn)),
            Err(KvError::OnePhaseCommitIncomplete { .. })
        ));
        assert_eq!(is_one_phase_commit(&[end(false)], Some(&txn)), Ok(false));
        let put = Request::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        };
        assert_eq!(is_one_phase_commit(&[put, end(true)], Some(&txn)), Ok(true));
    }
}
