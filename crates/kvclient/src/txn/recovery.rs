//! Recovering a STAGING transaction: deciding, from its record and its
//! intents alone, whether a parallel commit committed.
//!
//! A STAGING record names the writes that were still in flight when it was
//! written. The transaction committed if and only if every one of them
//! landed as an intent at or below the record's timestamp (with at least
//! the sequence number the record names). The recovery asks each key's
//! leaseholder ([`Request::QueryIntent`]); a leaseholder that does not find
//! the intent records a read of the key at the record's timestamp, so the
//! write, if it is still on its way, lands above it and can never complete
//! the commit. Then the record ends as the answers say
//! ([`Request::RecoverTxn`]), unless its coordinator moved it on meanwhile
//! (committed or aborted it itself): then it is answered as it is.
//!
//! Any transaction may recover any STAGING record at any time: a pusher
//! whose push the record refused for its age or priority
//! ([`super::conflict`]), and the coordinator itself when its commit failed
//! in a way that leaves it unsure whether the record was written. Not here:
//! writing the record (the committer, [`super::commit`]).

use meridian_kvapi::{Request, Response, TxnId, TxnRecord, TxnStatus};

use crate::{BatchHeader, ClientError, DistSender};

/// Recovers the transaction of `record` (as a push or a query answered it,
/// STAGING) and answers its record afterwards: COMMITTED or ABORTED, or,
/// if its coordinator changed it meanwhile, as it now is.
pub async fn recover(ds: &DistSender, record: &TxnRecord) -> Result<TxnRecord, ClientError> {
    let meta = &record.meta;
    let queries: Vec<Request> = record
        .in_flight_writes
        .iter()
        .map(|(key, sequence)| Request::QueryIntent {
            key: key.clone(),
            txn_id: meta.id,
            epoch: meta.epoch,
            sequence: *sequence,
        })
        .collect();
    let header = BatchHeader {
        timestamp: Some(meta.write_timestamp),
        txn: None,
        nearest_replica: false,
    };
    let answers = ds.send_with(&header, queries).await?;
    let implicitly_committed = answers
        .iter()
        .all(|a| matches!(a, Response::QueryIntent { found: true }));
    let end = Request::RecoverTxn {
        key: meta.anchor_key.clone(),
        txn: Box::new(meta.clone()),
        implicitly_committed,
    };
    match ds.send(vec![end]).await?.pop() {
        Some(Response::RecoverTxn { record }) => {
            tracing::debug!(
                txn = ?meta.id,
                implicitly_committed,
                status = ?record.status,
                "recovered a STAGING transaction"
            );
            Ok(*record)
        }
        other => Err(ClientError::InvalidRequest(format!(
            "a recovery answered {other:?}"
        ))),
    }
}

/// The record of transaction `id` anchored at `anchor`, if any.
pub async fn query(
    ds: &DistSender,
    anchor: &[u8],
    id: TxnId,
) -> Result<Option<TxnRecord>, ClientError> {
    let request = Request::QueryTxn {
        key: anchor.to_vec(),
        txn_id: id,
    };
    match ds.send(vec![request]).await?.pop() {
        Some(Response::QueryTxn { record }) => Ok(record.map(|r| *r)),
        other => Err(ClientError::InvalidRequest(format!(
            "a record query answered {other:?}"
        ))),
    }
}

/// Whether `status` is final.
pub fn is_final(status: TxnStatus) -> bool {
    matches!(status, TxnStatus::Committed | TxnStatus::Aborted)
}
