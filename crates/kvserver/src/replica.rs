//! A replica: one node's member of one range's Raft group, and the place a
//! KV batch is served.
//!
//! This module owns the [`Replica`] value (its Raft handle, latches and the
//! views of its applied state) and the walk of a batch through
//! [`Replica::send`]:
//! 1. its keys must lie in the range, else `RangeKeyMismatch` with our
//!    descriptor; a read at a timestamp this replica knows to be closed is
//!    served here and now, by any replica (`follower_read`);
//! 2. latches on the batch's spans serialize it with overlapping requests;
//! 3. the replica must be the leaseholder: the Raft leader with a valid
//!    leader lease (openraft's `LeaseRead`), else `NotLeaseholder` naming the
//!    leader it knows; the call also waits until the state machine has
//!    applied everything committed before the lease check, and gives the
//!    lease as an interval of HLC time;
//! 4. it gets a timestamp: reads at the leaseholder's clock, writes above
//!    the lease's start and above every read of their keys this
//!    leaseholder served (its timestamp cache, [`crate::tscache`]), except
//!    their own transaction's (a transaction's intents move up only if
//!    none of their keys was written since its timestamp, and its
//!    one-phase commit does not move at all: `WriteTooOld`);
//! 5. it is evaluated against MVCC, unless it writes or locks a key that
//!    another transaction's locking read locked: then it waits for the
//!    lock without its latches and starts again; so does a batch whose
//!    evaluation met an intent, until the intent is resolved or for at
//!    most 100 ms, after which its coordinator pushes ([`crate::locks`]);
//! 6. the lease must cover the highest timestamp the batch read or writes;
//!    if it does not (the lease neared its end, or the replica paused), the
//!    lease is renewed by a heartbeat round and the batch evaluated again,
//!    once; then it is refused;
//! 7. what the batch read (its reads, conditional puts and delete-ranges,
//!    or a condition that failed) is recorded in the timestamp cache, still
//!    under the latches; reads return; writes become a write set proposed
//!    through Raft and answered once applied and, for a commit or a write
//!    outside a transaction, once the clock passed their timestamp.
//!
//! It does not own the rules behind steps 3, 4 and 6, nor the argument for
//! why reads at the leaseholder are linearizable: those live in
//! [`crate::lease`]. Follower reads (`follower_read`), proposing through
//! Raft (`propose`), what the clock does before an answer
//! (`acknowledge`), quiescing (`impl Replica` in [`crate::quiesce`]) and
//! splitting (`impl Replica` in [`crate::split`]) live in their own modules,
//! as does evaluation ([`crate::eval`]).

use std::sync::Arc;

use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::{
    BatchRequest, BatchResponse, KvError, NodeId, RangeDescriptor, RangeId, ReplicaId, Request,
};
use meridian_storage::Engine;
use meridian_transport::Transport;
use openraft::async_runtime::WatchReceiver;
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use crate::closedts::{FollowerClosed, InFlightWrite};
use crate::eval::{evaluate, Evaluated};
use crate::latch::{LatchManager, LatchSpan};
use crate::lease::{
    may_move_write_above, may_restart_uncertain_read, uncertainty_limit, Lease, LeaseState,
};
use crate::locks::LockTable;
use crate::quiesce::QuiesceState;
use crate::raft::state_machine::{AppliedSummary, StateMachine};
use crate::raft::types::{RaftCommand, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig, StateMachine>;

/// How long [`Replica::stop`] waits for the state-machine worker to finish
/// what was queued. Applies take milliseconds; this bounds a node's stop if
/// one ever hangs.
const STATE_MACHINE_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A replica's Raft state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftStatus {
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// The last log index covered by the replica's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Log entries up to this index were purged.
    pub purged_index: Option<u64>,
}

/// What every replica of a node shares with its store.
#[derive(Clone)]
pub(crate) struct NodeContext {
    pub node_id: NodeId,
    pub metrics: crate::metrics::StoreMetrics,
    pub engine: Engine,
    pub clock: Arc<HybridClock>,
    pub transport: Transport,
    /// How long a leader lease lasts (`election_timeout_max`).
    pub lease_duration: std::time::Duration,
}

/// One node's replica of one range. The fields are the crate's so that the
/// modules holding `impl Replica` blocks for one concern each (lease,
/// quiesce, split) reach them directly.
pub struct Replica {
    pub(crate) range_id: RangeId,
    pub(crate) node_id: NodeId,
    /// This replica's member id in the range's Raft group (openraft's node
    /// id), distinct from the node's id and fresh for every addition.
    pub(crate) replica_id: ReplicaId,
    pub(crate) raft: Raft,
    pub(crate) engine: Engine,
    pub(crate) clock: Arc<HybridClock>,
    pub(crate) latches: LatchManager,
    /// Row locks of locking reads, while this replica holds the lease.
    pub(crate) locks: LockTable,
    /// The timestamp bookkeeping of the lease ([`crate::lease`]).
    pub(crate) lease_state: Mutex<LeaseState>,
    pub(crate) lease_duration: std::time::Duration,
    /// The last replica id this replica handed out as leader
    /// ([`Replica::allocate_replica_id`]).
    pub(crate) last_allocated_replica_id: Mutex<ReplicaId>,
    /// A pause tests insert after the next batch's lease check.
    pause_after_lease_check: Mutex<Option<PausePoint>>,
    pub(crate) applied: watch::Receiver<AppliedSummary>,
    pub(crate) transport: Transport,
    metrics: crate::metrics::StoreMetrics,
    /// Activity and timer state ([`crate::quiesce`]).
    pub(crate) quiesce: QuiesceState,
    /// What leaseholders closed, as far as this replica applied
    /// ([`crate::closedts`]).
    pub(crate) closed: Mutex<FollowerClosed>,
    /// Whether the range's zone config asks for global reads: its
    /// leaseholder then closes timestamps ahead of the present
    /// ([`crate::closedts`]).
    pub(crate) global_reads: std::sync::atomic::AtomicBool,
}

impl Replica {
    pub(crate) fn new(
        range_id: RangeId,
        replica_id: ReplicaId,
        raft: Raft,
        applied: watch::Receiver<AppliedSummary>,
        node: NodeContext,
    ) -> Self {
        Replica {
            range_id,
            replica_id,
            node_id: node.node_id,
            raft,
            engine: node.engine,
            clock: node.clock,
            latches: LatchManager::default(),
            locks: LockTable::default(),
            lease_state: Mutex::new(LeaseState::default()),
            lease_duration: node.lease_duration,
            pause_after_lease_check: Mutex::new(None),
            last_allocated_replica_id: Mutex::new(0),
            applied,
            transport: node.transport,
            metrics: node.metrics,
            quiesce: QuiesceState::default(),
            closed: Mutex::new(FollowerClosed::default()),
            global_reads: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn range_id(&self) -> RangeId {
        self.range_id
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The row locks this replica holds as leaseholder ([`crate::locks`]).
    pub fn locks(&self) -> &LockTable {
        &self.locks
    }

    /// Whether this replica's state machine is gone: its worker quit, so
    /// nothing more is applied, or written, on its behalf.
    pub fn state_machine_stopped(&self) -> bool {
        self.applied.has_changed().is_err()
    }

    /// Stops the Raft group and waits until its state machine is gone.
    /// openraft's shutdown ends the core task but not the state-machine
    /// worker, which goes on applying what was queued for it: a caller that
    /// deletes the replica's log and data must not race those applies (a
    /// late apply found its entries deleted and wrote the destroyed
    /// replica's applied state back). The worker drops the state machine,
    /// and with it the applied-index sender, when it quits.
    pub(crate) async fn stop(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(range_id = self.range_id, error = %e, "raft shutdown failed");
        }
        let mut applied = self.applied.clone();
        let gone = async { while applied.changed().await.is_ok() {} };
        if tokio::time::timeout(STATE_MACHINE_STOP_WAIT, gone)
            .await
            .is_err()
        {
            tracing::error!(
                range_id = self.range_id,
                "the state machine worker has not stopped; going on without it"
            );
        }
    }

    /// `[start, end)`: the range's keys as of the applied index. A split
    /// shrinks it.
    pub fn span(&self) -> Arc<(Vec<u8>, Vec<u8>)> {
        self.applied.borrow().span.clone()
    }

    /// Whether this replica holds the range's data (see
    /// [`AppliedSummary::initialized`]).
    pub fn is_initialized(&self) -> bool {
        self.applied.borrow().initialized
    }

    /// The index the state machine has applied.
    pub fn applied_index(&self) -> u64 {
        self.applied.borrow().index
    }

    /// The range's MVCC statistics as of the applied index.
    pub fn stats(&self) -> meridian_storage::MvccStats {
        self.applied.borrow().stats
    }

    pub fn replica_id(&self) -> ReplicaId {
        self.replica_id
    }

    /// The node of the leader this replica knows of, if any.
    pub fn leader(&self) -> Option<NodeId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        leader_node(&m)
    }

    /// No lease of this range starts at or below this (see
    /// [`crate::lease::LeaseState::enter_term`]).
    pub(crate) fn lease_floor(&self) -> meridian_hlc::Timestamp {
        self.applied.borrow().lease_floor
    }

    /// The most replica ids this range has had: the range's next addition
    /// takes an id at least this high.
    pub fn next_replica_id(&self) -> ReplicaId {
        self.applied.borrow().next_replica_id
    }

    /// The replica's Raft state, copied out of openraft's metrics.
    pub fn raft_status(&self) -> RaftStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        RaftStatus {
            leader: leader_node(&m),
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.as_ref().map(|id| id.index),
            snapshot_index: m.snapshot.as_ref().map(|id| id.index),
            purged_index: m.purged.as_ref().map(|id| id.index),
        }
    }

    /// The generation of [`Self::descriptor`], without copying it.
    pub fn generation(&self) -> u64 {
        self.applied.borrow().descriptor.generation
    }

    /// The range descriptor as of this replica's applied index: span,
    /// generation and members all from the same applied state (never from
    /// a membership Raft has not yet applied).
    pub fn descriptor(&self) -> RangeDescriptor {
        (*self.applied.borrow().descriptor).clone()
    }

    pub(crate) fn not_leaseholder(&self, leader: Option<NodeId>) -> KvError {
        let descriptor = self.descriptor();
        let leaseholder = leader.and_then(|l| descriptor.replica_on(l).copied());
        KvError::NotLeaseholder {
            range_id: self.range_id,
            leaseholder,
            descriptor: Some(Box::new(descriptor)),
        }
    }

    /// `RangeKeyMismatch` with this replica's descriptor, unless every
    /// request of the batch lies within the range.
    fn check_batch_in_range(&self, request: &BatchRequest) -> Result<(), KvError> {
        let span = self.span();
        // Only the bounds: reading the members from Raft's metrics on every
        // request would cost more than the check.
        let bounds = RangeDescriptor {
            range_id: self.range_id,
            start_key: span.0.clone(),
            end_key: span.1.clone(),
            replicas: Vec::new(),
            generation: 0,
        };
        if request
            .requests
            .iter()
            .all(|r| request_in_range(&bounds, r))
        {
            Ok(())
        } else {
            Err(KvError::RangeKeyMismatch {
                range_id: self.range_id,
                descriptor: Some(Box::new(self.descriptor())),
            })
        }
    }

    /// Serves a batch: see the module documentation for the steps.
    pub async fn send(&self, request: BatchRequest) -> Result<BatchResponse, KvError> {
        // A loop, not a recursion: a request on a hot key may wait and go
        // again many times, and each nested attempt would add to the
        // stack of the task polling it.
        loop {
            if let Some(served) = self.try_send(&request).await? {
                return Ok(served);
            }
        }
    }

    /// One attempt at [`Self::send`]: `None` when the batch waited for a
    /// lock or an intent (without its latches) and must start again.
    async fn try_send(&self, request: &BatchRequest) -> Result<Option<BatchResponse>, KvError> {
        if request.requests.is_empty() {
            return Err(KvError::InvalidRequest("empty batch".into()));
        }
        self.check_batch_in_range(request)?;
        if let Some(ts) = request.timestamp {
            // A client's timestamp moves our clock like any remote one. One
            // beyond the offset bound is a future-time timestamp (a
            // transaction that wrote to a range with global reads, whose
            // writes go ahead of the present): served, but it does not move
            // the clock, which must stay within `max_offset` of the others'
            // (the transport refuses frames from a clock further ahead).
            let _ = self.clock.update(ts);
        }
        if let Some(served) = self.serve_below_closed(request) {
            return served.map(Some);
        }
        self.activate().await;
        // A timestamp the client gave is known now: latches at it let a read
        // below a pending write (or a write above a read) go ahead.
        let spans = request
            .requests
            .iter()
            .map(|r| latch_span(r).at(request.timestamp))
            .collect();
        let latches = self.latches.acquire(spans).await;
        // The lease is checked after the latches: waiting for them may have
        // outlasted the lease, and the state machine must be caught up with
        // every write committed before this request evaluates.
        let mut lease = self.lease(false).await?;
        self.testing_pause().await;
        // A split may have moved some keys to another range while we waited.
        self.check_batch_in_range(request)?;
        let txn_id = request.txn.as_ref().map(|t| t.id);
        if let Some(wait) = self.locks.conflict(lease.term, &request.requests, txn_id) {
            // Another transaction locked a key this batch writes or locks:
            // wait (without the latches) until it ends, then go again.
            let waiting = wait.wait(&self.locks);
            drop(latches);
            waiting.await;
            return Ok(None);
        }
        let (ts, evaluated, in_flight) = match self.evaluate_under(request, &lease) {
            Err(KvError::WriteIntent { key, txn }) => {
                // Wait (without the latches) for the intent's resolution,
                // for a while, and go again; then it is for the
                // coordinator to push the intent's transaction.
                let resolution = self.locks.intent_resolution(&key);
                let resolved = resolution.notified();
                drop(latches);
                if self
                    .locks
                    .wait_for_resolution(&key, &resolution, resolved)
                    .await
                {
                    return Ok(None);
                }
                return Err(KvError::WriteIntent { key, txn });
            }
            Err(e) => return Err(e),
            Ok(Some(done)) => done,
            Ok(None) => {
                lease = self.lease(true).await?;
                self.evaluate_under(request, &lease)?
                    .ok_or_else(|| KvError::Unavailable {
                        range_id: self.range_id,
                        reason: format!(
                            "the lease (until {}) does not cover the request's timestamps",
                            lease.expiration
                        ),
                    })?
            }
        };
        let Evaluated {
            responses,
            writes,
            written_at,
        } = evaluated;
        // Writes as well: their conditional puts and delete-ranges read.
        // Recording before the proposal is decided only ever pushes a
        // later write higher than it needed.
        self.lease_record_reads(ts, request, Some(&responses));
        let locks = || {
            let txn = request.txn.as_ref();
            self.locks
                .record(lease.term, &request.requests, &responses, txn)
        };
        if let Some((writes, stats)) = writes {
            if !writes.is_empty() {
                let proposed = self
                    .propose(RaftCommand::Write {
                        writes,
                        stats,
                        term: lease.term,
                    })
                    .await;
                if let Err(KvError::AmbiguousResult { .. }) = proposed {
                    self.stop_closing(lease.term);
                }
                proposed?;
            }
            drop(in_flight);
            // Released once the outcome is applied: a waiter then reads
            // the resolved values.
            locks();
            self.wait_until_visible(request, ts).await;
        } else {
            locks();
        }
        self.forward_clock_to_served(ts);
        Ok(Some(BatchResponse {
            timestamp: written_at.max(ts),
            responses,
            range_generation: self.generation(),
        }))
    }

    /// Steps 4 to 6 of [`Self::send`]: the batch's timestamp and its
    /// evaluation under `lease` (with, for a write, its registration as in
    /// flight, [`crate::closedts`]), or `None` if the lease does not cover
    /// the highest timestamp the batch reads or writes.
    fn evaluate_under(
        &self,
        request: &BatchRequest,
        lease: &Lease,
    ) -> Result<Option<(Timestamp, Evaluated, Option<InFlightWrite<'_>>)>, KvError> {
        let is_write = request.requests.iter().any(|r| r.is_write());
        let chosen_by_us = request.timestamp.is_none();
        // Read after the client's timestamp moved the clock: a later
        // reading than the true arrival only widens the interval.
        let arrival = self.clock.now();
        let mut ts = request.timestamp.unwrap_or(arrival);
        let mut in_flight = None;
        if is_write {
            let requested = ts;
            (ts, in_flight) = self.lease_write_timestamp(lease, ts, request)?;
            if let Some(txn) = request.txn.as_ref().filter(|_| ts > requested) {
                // Its intents move above a read; only if nothing was
                // written on their keys since the transaction's timestamp.
                crate::eval::check_moved_writes(&self.engine, &request.requests, requested, txn)?;
            }
        }
        // Fixed for the whole request: moving up to an uncertain value does
        // not widen the interval.
        let txn_limit = request
            .txn
            .as_ref()
            .map(|txn| txn.min_timestamp.add_duration(self.clock.max_offset()));
        let limit = uncertainty_limit(ts, chosen_by_us, txn_limit, arrival, lease.start);
        let mut restarts = 0;
        let evaluated = loop {
            match evaluate(
                &self.engine,
                &request.requests,
                ts,
                request.txn.as_ref(),
                limit.filter(|&l| l > ts),
                crate::eval::GcFloor::of(self.range_id, &self.applied),
            ) {
                Err(KvError::ReadWithinUncertainty { value_ts, .. })
                    if may_restart_uncertain_read(chosen_by_us, is_write, restarts) =>
                {
                    restarts += 1;
                    ts = value_ts;
                }
                Err(KvError::WriteTooOld { existing, .. })
                    if may_move_write_above(
                        request.txn.is_some(),
                        !is_write && request.requests.iter().any(Request::is_locking_read),
                        restarts,
                    ) =>
                {
                    restarts += 1;
                    ts = existing.next();
                }
                Err(failed @ KvError::ConditionFailed { .. }) => {
                    // A failed condition answers with the value it read:
                    // served only under a lease that covers it, and
                    // recorded (with the clock moved up to it, as for any
                    // read served) so no later write goes under it.
                    if !lease.covers(ts) {
                        return Ok(None);
                    }
                    self.lease_record_reads(ts, request, None);
                    self.forward_clock_to_served(ts);
                    return Err(failed);
                }
                other => break other?,
            }
        };
        let highest = if is_write {
            ts
        } else {
            limit.unwrap_or(ts).max(ts)
        };
        Ok(lease.covers(highest).then_some((ts, evaluated, in_flight)))
    }

    /// For tests: the next batch, once past its lease check, reports on
    /// the returned `paused` and then waits until `resume` is sent or
    /// dropped. This is how a test places a pause (a stalled thread, a long
    /// GC) exactly where a lease can run out under a request.
    pub fn pause_next_batch_after_lease_check(
        &self,
    ) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (paused_tx, paused) = oneshot::channel();
        let (resume, resume_rx) = oneshot::channel();
        *self.pause_after_lease_check.lock() = Some(PausePoint {
            paused: paused_tx,
            resume: resume_rx,
        });
        (paused, resume)
    }

    async fn testing_pause(&self) {
        let point = self.pause_after_lease_check.lock().take();
        if let Some(point) = point {
            let _ = point.paused.send(());
            let _ = point.resume.await;
        }
    }
}

/// The node of the leader `metrics` name, mapped through the group's
/// membership (openraft's ids are replica ids).
fn leader_node(metrics: &openraft::RaftMetrics<TypeConfig>) -> Option<NodeId> {
    let leader = metrics.current_leader?;
    metrics
        .membership_config
        .membership()
        .get_node(&leader)
        .map(|node| node.node_id)
}

/// Where a test holds a batch: see
/// [`Replica::pause_next_batch_after_lease_check`].
struct PausePoint {
    paused: oneshot::Sender<()>,
    resume: oneshot::Receiver<()>,
}

/// Whether `request` touches only keys of `descriptor`'s range. A point
/// request covers `[key, key\0)`, the smallest span holding `key`.
fn request_in_range(descriptor: &RangeDescriptor, request: &Request) -> bool {
    match request.span() {
        (key, None) => descriptor.contains_key(key),
        (start, Some(end)) => descriptor.contains_span(start, end),
    }
}

/// The latch a request takes: its span, exclusive if it writes.
fn latch_span(request: &Request) -> LatchSpan {
    match request.span() {
        // A locking read is exclusive: its check, read and lock are one
        // step for the writers of its key.
        (key, None) => LatchSpan::point(key, request.is_write() || request.is_locking_read()),
        (start, Some(end)) => LatchSpan {
            start: start.to_vec(),
            end: end.to_vec(),
            write: request.is_write(),
            ts: None,
        },
    }
}

mod acknowledge;
mod follower_read;
mod propose;

#[cfg(test)]
mod tests;
