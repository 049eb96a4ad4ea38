//! Running a transaction body until it commits ([`run_txn`]): the retry
//! loop every caller of a transaction shares. Not here: what is retried
//! ([`super::error`]), the transaction itself ([`super::Txn`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::{HybridClock, Timestamp};

use super::{Txn, TxnError};
use crate::DistSender;

/// How many times [`run_txn`] runs a body before giving up.
pub const MAX_ATTEMPTS: usize = 32;

/// Runs `body` in a transaction until it commits: a retryable failure
/// (of the body or of the commit) rolls the attempt back and runs the body
/// again in a new transaction, after a backoff, at a higher priority and
/// no lower than where the last attempt had to restart. Gives up after
/// [`MAX_ATTEMPTS`].
pub async fn run_txn<T, F, Fut>(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    mut body: F,
) -> Result<T, TxnError>
where
    F: FnMut(Txn) -> Fut,
    Fut: Future<Output = Result<T, TxnError>>,
{
    let mut backoff = Duration::from_millis(2);
    let mut at_least = Timestamp::ZERO;
    let mut last = None;
    for attempt in 0..MAX_ATTEMPTS {
        let start = clock.now().max(at_least);
        let txn = Txn::begin_at(ds.clone(), clock.clone(), start, attempt as u32 + 1);
        let outcome = match body(txn.clone()).await {
            Ok(value) => txn.commit().await.map(|()| value),
            Err(e) => {
                let _ = txn.rollback().await;
                Err(e)
            }
        };
        match outcome {
            Ok(value) => return Ok(value),
            Err(e) if e.is_retryable() => {
                if let TxnError::Restart { at, .. } = &e {
                    at_least = at_least.max(*at);
                }
                last = Some(e);
                let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 + 1);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff = (backoff * 2).min(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}
