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
//! Not here: the coordinator that sends these (kvclient, not yet built),
//! pushing other transactions, recovering STAGING records, or removing
//! records after resolution (all issue 10).

use meridian_kvapi::{KvError, Request, Response, TxnMeta, TxnRecord, TxnStatus};
use meridian_storage::mvcc::{resolve_intent, IntentResolution, ResolutionStatus};
use meridian_storage::{Batch, Engine, MvccStats};

use crate::error::kv_error;

/// Whether `request` is one of the transaction requests this module
/// evaluates.
pub fn is_txn_request(request: &Request) -> bool {
    matches!(
        request,
        Request::HeartbeatTxn { .. }
            | Request::EndTxn { .. }
            | Request::QueryTxn { .. }
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
        } => {
            let txn = own_txn(txn, key)?;
            let existing = batch.txn_record(key, txn.id).map_err(kv_error)?;
            let status = if *commit {
                TxnStatus::Committed
            } else {
                TxnStatus::Aborted
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
                    (TxnStatus::Pending | TxnStatus::Staging, _) => {}
                }
            }
            let record = TxnRecord {
                meta: txn.clone(),
                status,
                last_heartbeat: existing.map_or(txn.write_timestamp, |r| r.last_heartbeat),
                lock_spans: lock_spans.clone(),
                in_flight_writes: Vec::new(),
            };
            batch.put_txn_record(&record);
            Ok(Response::EndTxn {
                record: Box::new(record),
            })
        }
        Request::QueryTxn { key, txn_id } => Ok(Response::QueryTxn {
            record: batch
                .txn_record(key, *txn_id)
                .map_err(kv_error)?
                .map(Box::new),
        }),
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
            };
            let resolved = resolve_intent(batch, key, &resolution, stats).map_err(kv_error)?;
            Ok(Response::ResolveIntent { resolved })
        }
        other => Err(KvError::InvalidRequest(format!(
            "not a transaction request: {other:?}"
        ))),
    }
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
