//! Getting past another transaction's intent: push its transaction at its
//! record, then resolve the intent as the push left it.
//!
//! A push succeeds when the holder ended, its heartbeat expired, or the
//! pusher's priority is higher (see kvserver's `txn_eval`). Otherwise the
//! pusher waits, with a growing backoff, and asks again. A holder whose
//! record is STAGING (a parallel commit) is neither aborted nor moved by a
//! push that succeeds: the pusher recovers it ([`super::recovery`]) and
//! resolves the intent as the recovery ended it. A cycle of
//! transactions waiting for each other would wait for ever, so after
//! [`FORCE_AFTER`] of waiting the pusher that is greater by (priority, id)
//! pushes as if its priority were above the holder's: in any cycle, the
//! greatest member breaks it. (A lock table with wait queues and real
//! deadlock detection replaces this with issue 10's concurrency control.)

use std::time::{Duration, Instant};

use meridian_hlc::HybridClock;
use meridian_kvapi::{KvError, PushKind, Request, Response, TxnMeta, TxnStatus};

use super::error::TxnError;
use crate::{ClientError, DistSender};

/// How long a pusher waits for a live holder before forcing the push, if
/// it is the greater of the two.
pub const FORCE_AFTER: Duration = Duration::from_millis(500);

/// How long a pusher waits in all before giving up with a restart.
const GIVE_UP_AFTER: Duration = Duration::from_secs(20);

/// Pushes `holder` (whose intent on `key` blocked `pusher`) and resolves
/// that intent, so the blocked request can go again.
pub async fn push_past(
    ds: &DistSender,
    clock: &HybridClock,
    pusher: &TxnMeta,
    holder: &TxnMeta,
    key: &[u8],
    kind: PushKind,
) -> Result<(), TxnError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(5);
    loop {
        let greater = (pusher.priority, pusher.id) > (holder.priority, holder.id);
        let priority = if greater && started.elapsed() >= FORCE_AFTER {
            holder.priority.saturating_add(1).max(pusher.priority)
        } else {
            pusher.priority
        };
        let push = Request::PushTxn {
            key: holder.anchor_key.clone(),
            pushee: Box::new(holder.clone()),
            kind,
            pusher_priority: priority,
            now: clock.now(),
        };
        match ds.send(vec![push]).await {
            Ok(mut responses) => {
                let Some(Response::PushTxn { record }) = responses.pop() else {
                    return Err(TxnError::Client(ClientError::InvalidRequest(
                        "a push answered something else".into(),
                    )));
                };
                let record = if record.status == TxnStatus::Staging {
                    // Perhaps committed: only its recovery can tell.
                    let recovered = super::recovery::recover(ds, &record).await?;
                    if !super::recovery::is_final(recovered.status) {
                        // Its coordinator moved it on meanwhile: ask again.
                        continue;
                    }
                    recovered
                } else {
                    *record
                };
                let status = match record.status {
                    // Pushed to a later timestamp: its intent moves up.
                    TxnStatus::Pending | TxnStatus::Staging => TxnStatus::Pending,
                    ended => ended,
                };
                let resolve = Request::ResolveIntent {
                    key: key.to_vec(),
                    txn: Box::new(record.meta),
                    status,
                };
                ds.send(vec![resolve]).await?;
                return Ok(());
            }
            Err(ClientError::Kv(KvError::TransactionPushFailed { .. })) => {
                if started.elapsed() >= GIVE_UP_AFTER {
                    return Err(TxnError::Restart {
                        at: pusher.write_timestamp,
                        reason: format!("waited {GIVE_UP_AFTER:?} for transaction {}", holder.id),
                    });
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
