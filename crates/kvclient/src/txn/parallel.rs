//! The parallel commit: how a transaction whose last writes span ranges
//! commits in one consensus round ([`Txn::write_batch_and_commit`] when a
//! one-phase commit is not possible), and how its coordinator settles a
//! STAGING record it is unsure of.
//!
//! The writes and an `EndTxn(commit)` naming them as in flight go as one
//! batch, cut per range and sent at once; the record becomes STAGING.
//! When every part answers at the transaction's timestamp the transaction
//! is committed (every in-flight write is an intent there); the record is
//! made COMMITTED and the intents resolved after the answer. A write moved
//! above a read means a refresh and an explicit commit at the new
//! timestamp. A part that failed means reading the record: never staged,
//! the writes go again the ordinary way (under the same sequence number,
//! so those that landed are replays) and the commit is explicit; STAGING,
//! the coordinator recovers it ([`super::recovery`]) and never rewrites a
//! write. After a failure beyond that, it settles its own record before
//! it answers, so a retryable error never hides a commit.
//!
//! Not here: the one-phase and ordinary commits and the resolution of
//! intents ([`super::commit`]), recovering another coordinator's record
//! ([`super::recovery`]).

use std::collections::BTreeSet;

use meridian_kvapi::{KvError, Request, Response, TxnMeta, TxnRecord, TxnStatus};

use super::commit::{point_span, resolve_all};
use super::heartbeat::HEARTBEAT_INTERVAL;
use super::{recovery, Txn, TxnError};
use crate::{BatchHeader, ClientError};

/// How often settling a staged transaction reads its record again when a
/// concurrent change (its own write, landing late) keeps moving it.
const MAX_SETTLE_ROUNDS: usize = 8;

impl Txn {
    /// Writes `requests` and commits in parallel (see the module
    /// documentation): on an error that leaves the outcome open, the
    /// transaction's own recovery settles it before the answer, so a
    /// retryable error always means "not committed".
    pub(super) async fn commit_in_parallel(
        &self,
        requests: Vec<Request>,
        new_sequence: bool,
    ) -> Result<Vec<Response>, TxnError> {
        self.check_writable()?;
        match self
            .try_commit_in_parallel(requests.clone(), new_sequence)
            .await
        {
            Ok(responses) => Ok(responses),
            Err(e @ TxnError::Ambiguous(_)) => Err(e),
            Err(e) if !self.inner.state.lock().staged => Err(e),
            Err(e) => match self.settle_staged().await {
                Ok(TxnStatus::Committed) => {
                    tracing::debug!(txn = ?self.meta().id, "committed despite: {e}");
                    Ok(requests.iter().map(write_response).collect())
                }
                Ok(_) => Err(e),
                Err(settling) => Err(TxnError::Ambiguous(format!(
                    "{e}; then its outcome could not be settled: {settling}"
                ))),
            },
        }
    }

    async fn try_commit_in_parallel(
        &self,
        requests: Vec<Request>,
        new_sequence: bool,
    ) -> Result<Vec<Response>, TxnError> {
        // A transaction anchored by this batch has its record written by
        // the commit itself: no heartbeat is due before one interval.
        self.anchor_at(requests[0].span().0, HEARTBEAT_INTERVAL);
        let (header, end) = {
            let mut state = self.inner.state.lock();
            if state.ended {
                return Err(TxnError::Client(ClientError::InvalidRequest(
                    "the transaction has ended".into(),
                )));
            }
            if new_sequence {
                state.meta.sequence += 1;
            }
            let sequence = state.meta.sequence;
            let keys: BTreeSet<Vec<u8>> = requests.iter().map(|r| r.span().0.to_vec()).collect();
            state.written.extend(keys.iter().cloned());
            if requests
                .iter()
                .any(|r| matches!(r, Request::ConditionalPut { .. }))
            {
                state.has_read = true;
            }
            state.staged = true;
            let end = Request::EndTxn {
                key: state.meta.anchor_key.clone(),
                commit: true,
                lock_spans: state.held_keys().iter().map(|k| point_span(k)).collect(),
                in_flight_writes: keys.into_iter().map(|k| (k, sequence)).collect(),
                one_phase: false,
            };
            let header = BatchHeader {
                timestamp: Some(state.meta.write_timestamp),
                txn: Some(state.meta.clone()),
                nearest_replica: false,
            };
            (header, end)
        };
        let staged_at = header.timestamp.expect("set above");
        let count = requests.len();
        let mut batch = requests.clone();
        batch.push(end);
        let keys = requests.iter().map(|r| r.span().0.to_vec());
        match self.inner.ds.send_with_timestamp(&header, batch).await {
            Ok((mut responses, at)) if responses.len() == count + 1 => {
                responses.pop();
                self.inner.state.lock().locked.extend(keys);
                if at == staged_at {
                    // Every write landed at the record's timestamp: the
                    // transaction is committed. Making that explicit, and
                    // resolving, is for after the answer.
                    self.finish_implicit_commit();
                } else {
                    // A write was moved above a read, so the record's
                    // timestamp is not the commit's: refresh there, then
                    // commit explicitly at it.
                    self.move_up(at, true, "a write was moved above a read")
                        .await?;
                    self.commit().await?;
                }
                Ok(responses)
            }
            Ok(_) => Err(TxnError::Client(ClientError::InvalidRequest(
                "a parallel commit answered a response short".into(),
            ))),
            Err(e) => {
                let error = TxnError::from(e);
                if matches!(error, TxnError::Ambiguous(_)) {
                    self.inner.state.lock().ended = true;
                    return Err(error);
                }
                // Every part has answered (the DistSender returns a
                // definite error only then), so the record is as the
                // batch left it. If it is STAGING, some writes landed and
                // others did not: rewriting the missing ones could
                // complete the staged commit behind our back while other
                // rewrites land higher, so only a recovery may settle it.
                let meta = self.meta();
                let record = recovery::query(&self.inner.ds, &meta.anchor_key, meta.id).await?;
                let record = match record {
                    Some(record) if record.status == TxnStatus::Staging => {
                        recovery::recover(&self.inner.ds, &record).await?
                    }
                    other => other.unwrap_or_else(|| pending_record(&meta)),
                };
                match record.status {
                    TxnStatus::Pending => {
                        // The record was never staged: the writes that
                        // landed are ordinary intents. Write (again, past
                        // conflicts) and commit explicitly.
                        tracing::debug!(txn = ?meta.id, "parallel commit failed, committing the ordinary way: {error}");
                        // The same sequence number: the parts that landed
                        // are replays (their conditions are not checked
                        // against their own intents).
                        let responses = self.write_batch_sequenced(requests.clone(), false).await?;
                        self.commit().await?;
                        Ok(responses)
                    }
                    TxnStatus::Committed => {
                        self.finish_recovered(record);
                        Ok(requests.iter().map(write_response).collect())
                    }
                    TxnStatus::Aborted | TxnStatus::Staging => {
                        let reason = format!("its parallel commit failed ({error})");
                        self.finish_recovered(record);
                        Err(TxnError::Aborted(reason))
                    }
                }
            }
        }
    }

    /// After a recovery ended the transaction's record: the transaction
    /// has ended as the record says (a record still STAGING, which only
    /// a recovery that lost a race leaves, is settled by the caller's
    /// error path), and its intents are resolved in the background.
    fn finish_recovered(&self, record: TxnRecord) {
        let written = {
            let mut state = self.inner.state.lock();
            if record.status == TxnStatus::Staging {
                return;
            }
            state.ended = true;
            if let Some(heartbeat) = state.heartbeat.take() {
                heartbeat.stop();
            }
            state.held_keys()
        };
        self.resolve_in_background(record.meta, written, record.status);
    }

    /// After a parallel commit found every write at the record's
    /// timestamp: the transaction has ended, committed. In the background,
    /// the record becomes COMMITTED (so conflicting transactions need no
    /// recovery) and the intents are resolved.
    fn finish_implicit_commit(&self) {
        let (meta, written, heartbeat) = {
            let mut state = self.inner.state.lock();
            state.ended = true;
            (
                state.meta.clone(),
                state.held_keys(),
                state.heartbeat.take(),
            )
        };
        let txn = self.clone();
        tokio::spawn(async move {
            match txn.send_end(&meta, &written, true).await {
                Ok(_) => {
                    let _ = resolve_all(&txn.inner.ds, &meta, &written, TxnStatus::Committed).await;
                }
                // A recovery resolves it instead, once the record expires.
                Err(e) => tracing::debug!(txn = ?meta.id, "making a commit explicit failed: {e}"),
            }
            drop(heartbeat);
        });
    }

    /// Ends a transaction whose record may be STAGING otherwise than by
    /// committing it: a record that is not (missing or PENDING) is
    /// aborted; a STAGING one is recovered, which may find it committed.
    /// Answers how the transaction ended; the intents are resolved in the
    /// background.
    pub(super) async fn settle_staged(&self) -> Result<TxnStatus, ClientError> {
        let (meta, written) = {
            let mut state = self.inner.state.lock();
            state.ended = true;
            if let Some(heartbeat) = state.heartbeat.take() {
                heartbeat.stop();
            }
            (state.meta.clone(), state.held_keys())
        };
        let ds = &self.inner.ds;
        for _ in 0..MAX_SETTLE_ROUNDS {
            let record = recovery::query(ds, &meta.anchor_key, meta.id).await?;
            let ended = match record {
                Some(record) if record.status == TxnStatus::Staging => {
                    recovery::recover(ds, &record).await?
                }
                Some(record) if recovery::is_final(record.status) => record,
                _ => match self.send_end(&meta, &written, false).await {
                    Ok(mut responses) => match responses.pop() {
                        Some(Response::EndTxn { record }) => *record,
                        other => {
                            return Err(ClientError::InvalidRequest(format!(
                                "an abort answered {other:?}"
                            )))
                        }
                    },
                    // It became STAGING meanwhile: recover it.
                    Err(ClientError::Kv(KvError::TransactionStaging { .. })) => continue,
                    Err(e) => return Err(e),
                },
            };
            if recovery::is_final(ended.status) {
                self.resolve_in_background(ended.meta, written, ended.status);
                return Ok(ended.status);
            }
        }
        Err(ClientError::InvalidRequest(format!(
            "the record of transaction {} kept changing",
            meta.id
        )))
    }
}

/// What a write of a batch answers when it succeeded.
fn write_response(request: &Request) -> Response {
    match request {
        Request::ConditionalPut { .. } => Response::ConditionalPut,
        Request::Delete { .. } => Response::Delete,
        _ => Response::Put,
    }
}

/// The record a transaction without one has, as a push would see it.
fn pending_record(meta: &TxnMeta) -> TxnRecord {
    TxnRecord {
        meta: meta.clone(),
        status: TxnStatus::Pending,
        last_heartbeat: meta.min_timestamp,
        lock_spans: Vec::new(),
        in_flight_writes: Vec::new(),
    }
}
