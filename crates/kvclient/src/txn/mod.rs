//! Transactions: a coordinator on the gateway that runs a serializable
//! transaction over the DistSender, and a loop that retries it.
//!
//! This file owns the [`Txn`] handle and its state, its reads and writes,
//! and the loop every batch goes through ([`Txn::send_batch`]): past
//! other transactions' intents (a read or write that meets one pushes
//! that transaction, [`conflict`], and goes again), and up the clock when
//! a write is refused as too old (a newer version, or a read of its key at
//! a later timestamp) or a read meets a value within its uncertainty
//! interval: the transaction moves up after checking that everything it
//! read is unchanged at the new timestamp ([`refresh`]), or restarts.
//! [`run_txn`] (in `retry`) runs a transaction body until it commits,
//! restarting with a backoff and a rising priority.
//!
//! A [`Txn`] reads at one timestamp (the gateway's clock when it began)
//! and writes intents at the same one; its record lives at the first key it
//! writes (the anchor). How it ends is the committer's ([`commit`]): a
//! one-phase commit when its last writes and its commit fit in one batch
//! on one range ([`Txn::write_batch_and_commit`]), a parallel commit when
//! they span ranges, else the record becomes COMMITTED and the intents are
//! resolved in the background. Each write batch takes the next sequence
//! number, which its intents carry (a parallel commit names the ones it
//! waits for).
//!
//! One file per concern: [`commit`] ends the transaction ([`parallel`]:
//! the parallel commit), [`heartbeat`]
//! keeps the record alive, [`conflict`] gets past other transactions'
//! intents, [`refresh`] keeps the reads a move up must check, [`error`]
//! says what is retried, [`recovery`] decides whether a STAGING
//! transaction committed, `nearest` holds historical transactions and the
//! reads tried at the nearest replica, `savepoint` rolls back to a point
//! inside the transaction. Not here, not yet (issue 10): write pipelining,
//! delete-range inside a transaction.

pub mod commit;
pub mod conflict;
pub mod error;
pub mod heartbeat;
mod nearest;
pub mod parallel;
pub mod recovery;
pub mod refresh;
mod retry;
mod savepoint;

pub use retry::{run_txn, MAX_ATTEMPTS};
pub use savepoint::Savepoint;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::{KvError, PushKind, Request, Response, TxnMeta};
use parking_lot::Mutex;

pub use error::TxnError;
use heartbeat::Heartbeat;
use refresh::ReadSet;

use crate::{BatchHeader, ClientError, DistSender};

/// How often one batch may move its transaction up before the
/// transaction restarts instead (with `run_txn`'s jittered backoff): a
/// backstop, not the thing that makes hot keys progress.
///
/// It was added when 16 concurrent increments of one key hung about one
/// run in three. The cause: a transactional write under a read in the
/// timestamp cache was refused (`WriteTooOld`) and laid no intent, and the
/// refresh that followed re-read the key at the new timestamp, recording a
/// read there; so the writers of a hot key refused each other's writes
/// with their refreshes, round after round, one logical tick higher each
/// time (measured without the bound: 184,000 moves in 86 s). Now, as in
/// CockroachDB, the leaseholder lays the intents above the read (after
/// checking that nothing was written on their keys since the
/// transaction's timestamp) and answers the higher timestamp; the
/// transaction follows and refreshes its other reads, and the other
/// writers queue on the intent. Measured without the bound since: at most
/// 2 moves per batch in 45 runs.
const MAX_MOVES_PER_BATCH: u32 = 4;

/// A transaction in progress. Cheap to clone: clones are the same
/// transaction.
#[derive(Clone)]
pub struct Txn {
    inner: Arc<Inner>,
}

struct Inner {
    ds: DistSender,
    clock: Arc<HybridClock>,
    state: Mutex<State>,
}

struct State {
    meta: TxnMeta,
    /// Whether the anchor (and so the record's place) is chosen: at the
    /// first write.
    anchored: bool,
    /// Whether it read anything: then its timestamp moves only after a
    /// refresh of its reads.
    has_read: bool,
    /// What it read, for refreshing.
    reads: ReadSet,
    /// Keys that may hold its intents (recorded before each write is
    /// sent, for cleanup).
    written: BTreeSet<Vec<u8>>,
    /// Keys whose writes it knows succeeded: its intent keeps other
    /// writers off them, so a refresh need not check its reads of them.
    locked: BTreeSet<Vec<u8>>,
    /// Keys its locking reads may have locked (recorded before each is
    /// sent): released with its intents when it ends. Unlike an intent, a
    /// lock may be broken, so a refresh checks reads of them all the same.
    read_locks: BTreeSet<Vec<u8>>,
    heartbeat: Option<Heartbeat>,
    /// Whether a parallel commit was sent: from then on the record may be
    /// STAGING, and only a recovery may end the transaction otherwise than
    /// committed ([`commit`]).
    staged: bool,
    ended: bool,
    /// A read-only transaction at a fixed timestamp in the past
    /// ([`Txn::begin_historical`]).
    historical: bool,
}

impl State {
    /// The keys whose intents or locks its end must release.
    fn held_keys(&self) -> BTreeSet<Vec<u8>> {
        self.written.union(&self.read_locks).cloned().collect()
    }
}

impl Txn {
    /// Begins a transaction at the gateway's clock, of `priority`.
    pub fn begin(ds: DistSender, clock: Arc<HybridClock>, priority: u32) -> Txn {
        Txn::begin_at(ds, clock.clone(), clock.now(), priority)
    }

    /// Begins a transaction at `ts` (no lower than where a previous
    /// attempt had to restart), of `priority`.
    pub fn begin_at(ds: DistSender, clock: Arc<HybridClock>, ts: Timestamp, priority: u32) -> Txn {
        let mut meta = TxnMeta::new(Vec::new(), ts);
        meta.priority = priority;
        Txn {
            inner: Arc::new(Inner {
                ds,
                clock,
                state: Mutex::new(State {
                    meta,
                    anchored: false,
                    has_read: false,
                    reads: ReadSet::default(),
                    written: BTreeSet::new(),
                    locked: BTreeSet::new(),
                    read_locks: BTreeSet::new(),
                    heartbeat: None,
                    staged: false,
                    ended: false,
                    historical: false,
                }),
            }),
        }
    }

    /// The transaction's metadata as it stands.
    pub fn meta(&self) -> TxnMeta {
        self.inner.state.lock().meta.clone()
    }

    pub async fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxnError> {
        match self.read(Request::Get { key: key.to_vec() }).await? {
            Response::Get { value } => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Reads `key` and locks it until the transaction ends
    /// ([`Request::GetForUpdate`]): other transactions' writes of it wait.
    pub async fn get_for_update(&self, key: &[u8]) -> Result<Option<Vec<u8>>, TxnError> {
        let get = Request::GetForUpdate { key: key.to_vec() };
        match self.read(get).await? {
            Response::Get { value } => Ok(value),
            other => Err(unexpected(other)),
        }
    }

    /// Rows in `[start, end)`, at most `limit` (0: all).
    pub async fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TxnError> {
        self.scan_routed(start, end, limit, false).await
    }

    async fn scan_routed(
        &self,
        start: &[u8],
        end: &[u8],
        limit: u32,
        nearest: bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TxnError> {
        let scan = Request::Scan {
            start: start.to_vec(),
            end: end.to_vec(),
            max_rows: limit,
        };
        match self.read_routed(vec![scan], nearest).await?.pop() {
            Some(Response::Scan { rows, .. }) => Ok(rows),
            Some(other) => Err(unexpected(other)),
            None => Err(unexpected_none()),
        }
    }

    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<(), TxnError> {
        self.write(Request::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        })
        .await
    }

    pub async fn delete(&self, key: &[u8]) -> Result<(), TxnError> {
        self.write(Request::Delete { key: key.to_vec() }).await
    }

    /// Sends reads (gets and scans) as one batch; responses in order.
    pub async fn read_batch(&self, requests: Vec<Request>) -> Result<Vec<Response>, TxnError> {
        self.read_routed(requests, false).await
    }

    async fn read_routed(
        &self,
        requests: Vec<Request>,
        nearest: bool,
    ) -> Result<Vec<Response>, TxnError> {
        if requests.iter().any(Request::is_write) {
            return Err(TxnError::Client(ClientError::InvalidRequest(
                "a read batch holds a write".into(),
            )));
        }
        {
            let mut state = self.inner.state.lock();
            state.has_read = true;
            let locking = requests.iter().filter(|r| r.is_locking_read());
            let keys: Vec<Vec<u8>> = locking.map(|r| r.span().0.to_vec()).collect();
            state.read_locks.extend(keys);
        }
        let responses = self.send_routed(requests.clone(), true, nearest).await?;
        self.inner.state.lock().reads.record(&requests, &responses);
        Ok(responses)
    }

    /// Sends point writes (puts, conditional puts, deletes) as one batch;
    /// responses in order. A conditional put counts as a read too.
    pub async fn write_batch(&self, requests: Vec<Request>) -> Result<Vec<Response>, TxnError> {
        self.write_batch_sequenced(requests, true).await
    }

    /// [`Txn::write_batch`], under the next sequence number
    /// (`new_sequence`) or the current one: sending again writes that may
    /// have landed, which the leaseholder then takes as replays (a
    /// conditional put whose intent holds its value at its sequence
    /// number is not checked again).
    pub(crate) async fn write_batch_sequenced(
        &self,
        requests: Vec<Request>,
        new_sequence: bool,
    ) -> Result<Vec<Response>, TxnError> {
        check_point_writes(&requests)?;
        self.check_writable()?;
        let Some(first) = requests.first() else {
            return Ok(Vec::new());
        };
        self.anchor_at(first.span().0, Duration::ZERO);
        {
            // Recorded before sending: a batch that fails on one range may
            // have left intents on another, and resolving a key without
            // an intent costs nothing.
            let mut state = self.inner.state.lock();
            if new_sequence {
                state.meta.sequence += 1;
            }
            for r in &requests {
                state.written.insert(r.span().0.to_vec());
            }
            if requests
                .iter()
                .any(|r| matches!(r, Request::ConditionalPut { .. }))
            {
                state.has_read = true;
            }
        }
        let keys: Vec<Vec<u8>> = requests.iter().map(|r| r.span().0.to_vec()).collect();
        let responses = self.send_batch(requests).await?;
        self.inner.state.lock().locked.extend(keys);
        Ok(responses)
    }

    async fn read(&self, request: Request) -> Result<Response, TxnError> {
        self.read_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(unexpected_none)
    }

    async fn write(&self, request: Request) -> Result<(), TxnError> {
        self.check_writable()?;
        let key = request.span().0.to_vec();
        self.anchor_at(&key, Duration::ZERO);
        {
            let mut state = self.inner.state.lock();
            state.meta.sequence += 1;
            state.written.insert(key.clone());
        }
        self.send(request).await?;
        self.inner.state.lock().locked.insert(key);
        Ok(())
    }

    async fn send(&self, request: Request) -> Result<Response, TxnError> {
        self.send_batch(vec![request])
            .await?
            .pop()
            .ok_or_else(unexpected_none)
    }

    /// Sends requests as this transaction until they are served: past
    /// other transactions' intents (a read pushes their timestamp, a write
    /// aborts them), and, where a write was refused as too old or a read
    /// met an uncertain value, after moving the transaction up (refreshing
    /// its reads if it has read; a failed refresh restarts it).
    async fn send_batch(&self, requests: Vec<Request>) -> Result<Vec<Response>, TxnError> {
        self.send_batch_with(requests, true).await
    }

    async fn send_batch_with(
        &self,
        requests: Vec<Request>,
        may_refresh: bool,
    ) -> Result<Vec<Response>, TxnError> {
        self.send_routed(requests, may_refresh, false).await
    }

    /// [`Self::send_batch_with`], the reads tried at the nearest replica
    /// first when `nearest`.
    async fn send_routed(
        &self,
        requests: Vec<Request>,
        may_refresh: bool,
        nearest: bool,
    ) -> Result<Vec<Response>, TxnError> {
        let writes = requests.iter().any(Request::is_write);
        // A locking read meets conflicts as a write does.
        let writes_or_locks = writes || requests.iter().any(Request::is_locking_read);
        let mut moves = 0;
        loop {
            let mut header = self.header();
            header.nearest_replica |= nearest;
            let meta = self.meta();
            let sent = self.inner.ds.send_with_timestamp(&header, requests.clone());
            match sent.await {
                Ok((responses, at)) if responses.len() == requests.len() => {
                    // Locking reads that met a newer version were served
                    // above it, at `at`; the transaction moves there too.
                    if writes_or_locks && at > meta.write_timestamp {
                        // A leaseholder moved the writes above a read it
                        // served: their intents lie at `at` (it checked
                        // that nothing was written on their keys since our
                        // timestamp, so our reads of them hold there), and
                        // the transaction follows, refreshing its other
                        // reads. The intents are laid first, so a hot
                        // key's writers queue on them instead of refusing
                        // each other round after round.
                        let keys = requests.iter().filter(|r| {
                            matches!(
                                r,
                                Request::Put { .. }
                                    | Request::ConditionalPut { .. }
                                    | Request::Delete { .. }
                            )
                        });
                        let keys: Vec<Vec<u8>> = keys.map(|r| r.span().0.to_vec()).collect();
                        self.inner.state.lock().locked.extend(keys);
                        let reason = if writes {
                            "a write was moved above a read"
                        } else {
                            "a locking read was moved above a newer version"
                        };
                        self.move_up(at, may_refresh, reason).await?;
                    }
                    return Ok(responses);
                }
                Ok(_) => return Err(unexpected_none()),
                Err(ClientError::Kv(KvError::WriteIntent { .. })) if !may_refresh => {
                    // A refresh does not wait on other transactions: one
                    // that waited here could close a cycle of waiters that
                    // no forced push breaks (its own transaction is
                    // already half-way through a write). Restart instead,
                    // as CockroachDB's refresh fails on an intent.
                    return Err(TxnError::Restart {
                        at: meta.write_timestamp,
                        reason: "a refreshed read met another transaction's intent".into(),
                    });
                }
                Err(ClientError::Kv(KvError::WriteIntent { key, txn })) => {
                    let kind = if writes_or_locks {
                        PushKind::Abort
                    } else {
                        PushKind::Timestamp(meta.write_timestamp.next())
                    };
                    let (ds, clock) = (&self.inner.ds, &self.inner.clock);
                    conflict::push_past(ds, clock, &meta, &txn, &key, kind).await?;
                }
                Err(ClientError::Kv(KvError::WriteTooOld { existing, .. })) if writes_or_locks => {
                    let reason = "a write met a newer version or read";
                    moves += 1;
                    if moves > MAX_MOVES_PER_BATCH {
                        return Err(TxnError::Restart {
                            at: existing.next(),
                            reason: format!("{reason}, {moves} times in a row"),
                        });
                    }
                    self.move_up(existing.next(), may_refresh, reason).await?;
                }
                Err(ClientError::Kv(KvError::ReadWithinUncertainty { value_ts, .. }))
                    if may_refresh =>
                {
                    let reason = "a read met a value within its uncertainty interval";
                    moves += 1;
                    if moves > MAX_MOVES_PER_BATCH {
                        return Err(TxnError::Restart {
                            at: value_ts.next(),
                            reason: format!("{reason}, {moves} times in a row"),
                        });
                    }
                    self.move_up(value_ts.next(), may_refresh, reason).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Moves the transaction's timestamp up to `at`. Its first timestamp
    /// (and so its uncertainty limit) stays. A transaction that has read
    /// must first find every read unchanged at `at` ([`refresh`]), or
    /// restart.
    async fn move_up(
        &self,
        at: Timestamp,
        may_refresh: bool,
        reason: &str,
    ) -> Result<(), TxnError> {
        let restart = || TxnError::Restart {
            at,
            reason: reason.to_string(),
        };
        let (reads, locked) = {
            let mut state = self.inner.state.lock();
            if !state.has_read {
                state.meta.write_timestamp = state.meta.write_timestamp.max(at);
                return Ok(());
            }
            if !may_refresh {
                return Err(restart());
            }
            let reads = state.reads.batches().ok_or_else(restart)?;
            state.meta.write_timestamp = state.meta.write_timestamp.max(at);
            (reads, state.locked.clone())
        };
        for (requests, seen) in reads {
            // Point reads of keys under its own intents hold at any later
            // timestamp: nothing else can have written there.
            let own = |r: &Request| r.span().1.is_none() && locked.contains(r.span().0);
            if requests.iter().all(own) {
                continue;
            }
            let again = Box::pin(self.send_batch_with(requests.clone(), false))
                .await
                .map_err(|e| match e {
                    TxnError::Restart { .. } => {
                        tracing::debug!(txn = ?self.meta().id, "refresh failed: {e}");
                        restart()
                    }
                    other => other,
                })?;
            if !refresh::unchanged(&seen, &again, &requests, &locked) {
                tracing::debug!(txn = ?self.meta().id, "refresh failed: a read changed");
                return Err(restart());
            }
        }
        Ok(())
    }

    /// Chooses the anchor at the first write and starts heartbeating, the
    /// first heartbeat after `first_heartbeat`.
    fn anchor_at(&self, key: &[u8], first_heartbeat: Duration) {
        let mut state = self.inner.state.lock();
        if state.anchored {
            return;
        }
        state.anchored = true;
        state.meta.anchor_key = key.to_vec();
        state.heartbeat = Some(Heartbeat::start(
            self.inner.ds.clone(),
            self.inner.clock.clone(),
            state.meta.clone(),
            first_heartbeat,
        ));
    }

    /// What every batch of the transaction carries. A historical one reads
    /// as no transaction at a fixed timestamp: a snapshot, without an
    /// uncertainty interval, that any replica can serve once it is closed.
    fn header(&self) -> BatchHeader {
        let state = self.inner.state.lock();
        BatchHeader {
            timestamp: Some(state.meta.write_timestamp),
            txn: (!state.historical).then(|| state.meta.clone()),
            nearest_replica: state.historical,
        }
    }
}

/// Refuses a write batch holding anything but puts, conditional puts and
/// deletes.
fn check_point_writes(requests: &[Request]) -> Result<(), TxnError> {
    if requests.iter().any(|r| {
        !matches!(
            r,
            Request::Put { .. } | Request::ConditionalPut { .. } | Request::Delete { .. }
        )
    }) {
        return Err(TxnError::Client(ClientError::InvalidRequest(
            "a write batch holds only puts, conditional puts and deletes".into(),
        )));
    }
    Ok(())
}

fn unexpected(response: Response) -> TxnError {
    TxnError::Client(ClientError::InvalidRequest(format!(
        "unexpected response {response:?}"
    )))
}

fn unexpected_none() -> TxnError {
    TxnError::Client(ClientError::InvalidRequest("no response".into()))
}
