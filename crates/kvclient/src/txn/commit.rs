//! The committer: how a transaction ends, as CockroachDB's txnCommitter.
//!
//! It owns [`Txn::commit`], [`Txn::rollback`] and
//! [`Txn::write_batch_and_commit`], the `EndTxn` they send, and the
//! resolution of intents after the outcome is known. Two commit paths:
//!
//! - **One-phase commit** (`write_batch_and_commit` on a transaction that
//!   has written nothing yet, all of whose keys lie in one range): the
//!   writes and `EndTxn(commit)` go as one batch; the leaseholder
//!   evaluates it as committed values at the transaction's write timestamp
//!   and replicates it as one Raft command. No intent, no record, no
//!   heartbeat, nothing to resolve: one consensus round for the whole
//!   transaction. The batch meets other transactions' intents, newer
//!   versions and the timestamp cache exactly as ordinary writes do (a
//!   push, or a move up with a refresh of the reads, then the batch goes
//!   again), since it is sent through the same loop
//!   ([`Txn::send_batch`]). If the batch was cut across ranges on its way
//!   (a split since the range lookup, or a lookup that failed for some
//!   of its keys), the leaseholder refuses the part holding the commit,
//!   marked `one_phase` (`OnePhaseCommitIncomplete`), and the
//!   transaction falls back to the ordinary path.
//! - **Parallel commit** (`write_batch_and_commit` whose keys span
//!   ranges): the writes and an `EndTxn(commit)` naming them as in flight
//!   go as one batch, cut per range and sent at once; the record becomes
//!   STAGING. When every part answers at the transaction's timestamp the
//!   transaction is committed (every in-flight write is an intent there):
//!   one consensus round on the critical path. The record is made
//!   COMMITTED and the intents resolved after the answer. A write moved
//!   above a read means a refresh and an explicit commit at the new
//!   timestamp; a part that failed means writing again the ordinary way
//!   and committing explicitly. After a failure beyond that, the
//!   coordinator settles its own record before it answers
//!   ([`super::recovery`] if STAGING), so a retryable error never hides a
//!   commit.
//! - **Ordinary commit**: the writes are intents already; the record at the
//!   anchor becomes COMMITTED in one `EndTxn`, then the intents are
//!   resolved in the background (the answer does not wait for them).
//!
//! Not here: sending the writes themselves and moving the transaction up
//! ([`super`]), the heartbeat ([`super::heartbeat`]), conflicts
//! ([`super::conflict`]), recovering another coordinator's STAGING record
//! ([`super::recovery`]); write pipelining and removing records after
//! resolution are not built (issue 10).

use std::collections::BTreeSet;

use meridian_kvapi::{KvError, Request, Response, TxnMeta, TxnRecord, TxnStatus};

use super::heartbeat::HEARTBEAT_INTERVAL;
use super::{check_point_writes, recovery, Txn, TxnError};
use crate::{BatchHeader, ClientError, DistSender};

/// How often settling a staged transaction reads its record again when a
/// concurrent change (its own write, landing late) keeps moving it.
const MAX_SETTLE_ROUNDS: usize = 8;

impl Txn {
    /// Commits: the record becomes COMMITTED, then the intents are
    /// resolved in the background. A transaction that wrote nothing has
    /// nothing to commit.
    pub async fn commit(&self) -> Result<(), TxnError> {
        self.end(true).await
    }

    /// Aborts: the record becomes ABORTED and the intents are removed in
    /// the background.
    pub async fn rollback(&self) -> Result<(), TxnError> {
        self.end(false).await
    }

    /// Writes `requests` (puts, conditional puts and deletes, as
    /// [`Txn::write_batch`]) and commits: the last statement of a
    /// transaction, e.g. SQL's implicit single-statement transactions
    /// ("auto-commit"). Responses in order, without the commit's.
    ///
    /// When the transaction has written nothing before and every key lies
    /// in one range, this is a one-phase commit: one batch, one Raft
    /// command, no intents and no transaction record. Otherwise it is a
    /// parallel commit (see the module documentation).
    /// On an error the transaction is not committed (unless the error is
    /// [`TxnError::Ambiguous`]) and is rolled back as after a failed
    /// `write_batch`.
    pub async fn write_batch_and_commit(
        &self,
        requests: Vec<Request>,
    ) -> Result<Vec<Response>, TxnError> {
        check_point_writes(&requests)?;
        if requests.is_empty() {
            self.commit().await?;
            return Ok(Vec::new());
        }
        if self.one_phase_possible(&requests).await? {
            match self.commit_in_one_phase(requests.clone()).await {
                Err(TxnError::Client(ClientError::Kv(KvError::OnePhaseCommitIncomplete {
                    reason,
                    ..
                }))) => {
                    // Parts of it may have landed as intents: the parallel
                    // commit sends the same writes under the same sequence
                    // number, so those count as its own (replays).
                    tracing::debug!(txn = ?self.meta().id, "one-phase commit refused: {reason}");
                    return self.commit_in_parallel(requests, false).await;
                }
                done => return done,
            }
        }
        self.commit_in_parallel(requests, true).await
    }

    /// Whether `requests` can be the whole transaction in one batch: it
    /// has written nothing yet (so it has no intents anywhere) and their
    /// keys lie in one range as the range cache knows it.
    async fn one_phase_possible(&self, requests: &[Request]) -> Result<bool, TxnError> {
        {
            let state = self.inner.state.lock();
            if state.ended || !state.written.is_empty() {
                return Ok(false);
            }
        }
        let range = self.inner.ds.lookup_range(requests[0].span().0).await?;
        Ok(requests.iter().all(|r| range.contains_key(r.span().0)))
    }

    /// Sends `requests` with `EndTxn(commit)` as one batch, anchored at the
    /// first key. The anchor is not heartbeated: the batch either commits
    /// whole or leaves nothing (unless cut across ranges, which the
    /// leaseholder refuses; its keys are kept as written, so a rollback
    /// removes any intent such a cut batch left).
    async fn commit_in_one_phase(&self, requests: Vec<Request>) -> Result<Vec<Response>, TxnError> {
        let keys: BTreeSet<Vec<u8>> = requests.iter().map(|r| r.span().0.to_vec()).collect();
        let anchor = requests[0].span().0.to_vec();
        {
            let mut state = self.inner.state.lock();
            state.meta.anchor_key = anchor.clone();
            state.meta.sequence += 1;
            state.written.extend(keys.iter().cloned());
        }
        let count = requests.len();
        let mut batch = requests;
        batch.push(Request::EndTxn {
            key: anchor,
            commit: true,
            lock_spans: keys.iter().map(|k| point_span(k)).collect(),
            in_flight_writes: Vec::new(),
            one_phase: true,
        });
        match self.send_batch(batch).await {
            Ok(mut responses) => {
                match responses.pop() {
                    Some(Response::EndTxn { record }) if record.status == TxnStatus::Committed => {
                        let mut state = self.inner.state.lock();
                        state.meta.write_timestamp = record.meta.write_timestamp;
                        state.ended = true;
                    }
                    other => {
                        return Err(TxnError::Client(ClientError::InvalidRequest(format!(
                            "a one-phase commit answered {other:?}"
                        ))))
                    }
                }
                debug_assert_eq!(responses.len(), count);
                Ok(responses)
            }
            Err(e @ TxnError::Ambiguous(_)) => {
                // It may have committed: nothing may undo it.
                self.inner.state.lock().ended = true;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `requests` and commits in parallel (see the module
    /// documentation): on an error that leaves the outcome open, the
    /// transaction's own recovery settles it before the answer, so a
    /// retryable error always means "not committed".
    async fn commit_in_parallel(
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
                lock_spans: state.written.iter().map(|k| point_span(k)).collect(),
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
            state.written.clone()
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
                state.written.clone(),
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
    async fn settle_staged(&self) -> Result<TxnStatus, ClientError> {
        let (meta, written) = {
            let mut state = self.inner.state.lock();
            state.ended = true;
            if let Some(heartbeat) = state.heartbeat.take() {
                heartbeat.stop();
            }
            (state.meta.clone(), state.written.clone())
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

    async fn end(&self, commit: bool) -> Result<(), TxnError> {
        let (meta, written, aborted, staged) = {
            let mut state = self.inner.state.lock();
            if state.ended {
                return Ok(());
            }
            state.ended = true;
            let aborted = state.heartbeat.take().is_some_and(|h| {
                h.stop();
                h.aborted()
            });
            (
                state.meta.clone(),
                state.written.clone(),
                aborted,
                state.staged,
            )
        };
        if written.is_empty() {
            return Ok(());
        }
        if staged && !commit {
            // Only a recovery may end a STAGING record otherwise.
            return match self.settle_staged().await {
                Ok(_) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        if commit && aborted {
            self.resolve_in_background(meta, written, TxnStatus::Aborted);
            return Err(TxnError::Aborted(
                "a heartbeat found the record aborted".into(),
            ));
        }
        match self.send_end(&meta, &written, commit).await {
            Ok(_) => {
                let status = if commit {
                    TxnStatus::Committed
                } else {
                    TxnStatus::Aborted
                };
                self.resolve_in_background(meta, written, status);
                Ok(())
            }
            Err(e) => {
                let error = TxnError::from(e);
                if !matches!(error, TxnError::Ambiguous(_)) && !staged {
                    // Not committed: take the intents away (an abort of an
                    // already-aborted record is answered as it is). A
                    // staged transaction's caller settles it instead.
                    let txn = self.clone();
                    tokio::spawn(async move {
                        let _ = txn.abort_record_and_resolve(meta, written).await;
                    });
                }
                Err(error)
            }
        }
    }

    async fn abort_record_and_resolve(
        &self,
        meta: TxnMeta,
        written: BTreeSet<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.send_end(&meta, &written, false).await?;
        resolve_all(&self.inner.ds, &meta, &written, TxnStatus::Aborted).await
    }

    /// Ends the record of `meta` (which wrote `written`) as committed or
    /// aborted.
    async fn send_end(
        &self,
        meta: &TxnMeta,
        written: &BTreeSet<Vec<u8>>,
        commit: bool,
    ) -> Result<Vec<Response>, ClientError> {
        let end = Request::EndTxn {
            key: meta.anchor_key.clone(),
            commit,
            lock_spans: written.iter().map(|k| point_span(k)).collect(),
            in_flight_writes: Vec::new(),
            one_phase: false,
        };
        let header = BatchHeader {
            timestamp: Some(meta.write_timestamp),
            txn: Some(meta.clone()),
            nearest_replica: false,
        };
        self.inner.ds.send_with(&header, vec![end]).await
    }

    fn resolve_in_background(&self, meta: TxnMeta, written: BTreeSet<Vec<u8>>, status: TxnStatus) {
        let ds = self.inner.ds.clone();
        tokio::spawn(async move {
            let _ = resolve_all(&ds, &meta, &written, status).await;
        });
    }
}

async fn resolve_all(
    ds: &DistSender,
    meta: &TxnMeta,
    written: &BTreeSet<Vec<u8>>,
    status: TxnStatus,
) -> Result<(), ClientError> {
    let requests = written
        .iter()
        .map(|key| Request::ResolveIntent {
            key: key.clone(),
            txn: Box::new(meta.clone()),
            status,
        })
        .collect();
    ds.send(requests).await.map(|_| ())
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

fn point_span(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = key.to_vec();
    end.push(0);
    (key.to_vec(), end)
}
