//! The committer: how a transaction ends, as CockroachDB's txnCommitter.
//!
//! It owns [`Txn::commit`], [`Txn::rollback`] and
//! [`Txn::write_batch_and_commit`], the `EndTxn` they send, and the
//! resolution of intents after the outcome is known. Three commit paths:
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
//!   ranges): the writes and the STAGING record in one round, in
//!   [`super::parallel`].
//! - **Ordinary commit**: the writes are intents already; the record at the
//!   anchor becomes COMMITTED in one `EndTxn`, then the intents are
//!   resolved in the background (the answer does not wait for them).
//!
//! Not here: sending the writes themselves and moving the transaction up
//! ([`super`]), the heartbeat ([`super::heartbeat`]), conflicts
//! ([`super::conflict`]), the parallel commit ([`super::parallel`]),
//! recovering another coordinator's STAGING record ([`super::recovery`]);
//! write pipelining and removing records after resolution are not built
//! (issue 10).

use std::collections::BTreeSet;

use meridian_kvapi::{KvError, Request, Response, TxnMeta, TxnStatus};

use super::{check_point_writes, Txn, TxnError};
use crate::{BatchHeader, ClientError, DistSender};

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
            // Its commit releases only the keys it writes.
            let keys: BTreeSet<&[u8]> = requests.iter().map(|r| r.span().0).collect();
            if !state.read_locks.iter().all(|k| keys.contains(k.as_slice())) {
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

    async fn end(&self, commit: bool) -> Result<(), TxnError> {
        let (meta, held, wrote, aborted, staged) = {
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
                state.held_keys(),
                !state.written.is_empty(),
                aborted,
                state.staged,
            )
        };
        if !wrote {
            // No record and no intents; perhaps locks of its locking reads.
            if !held.is_empty() {
                let status = if commit {
                    TxnStatus::Committed
                } else {
                    TxnStatus::Aborted
                };
                self.resolve_in_background(meta, held, status);
            }
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
            self.resolve_in_background(meta, held, TxnStatus::Aborted);
            return Err(TxnError::Aborted(
                "a heartbeat found the record aborted".into(),
            ));
        }
        match self.send_end(&meta, &held, commit).await {
            Ok(_) => {
                let status = if commit {
                    TxnStatus::Committed
                } else {
                    TxnStatus::Aborted
                };
                self.resolve_in_background(meta, held, status);
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
                        let _ = txn.abort_record_and_resolve(meta, held).await;
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
    pub(super) async fn send_end(
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

    pub(super) fn resolve_in_background(
        &self,
        meta: TxnMeta,
        written: BTreeSet<Vec<u8>>,
        status: TxnStatus,
    ) {
        let ds = self.inner.ds.clone();
        tokio::spawn(async move {
            let _ = resolve_all(&ds, &meta, &written, status).await;
        });
    }
}

pub(super) async fn resolve_all(
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

pub(super) fn point_span(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut end = key.to_vec();
    end.push(0);
    (key.to_vec(), end)
}
