//! A replica: one node's member of one range's Raft group, and the place a
//! KV batch is served.
//!
//! A batch walks through [`Replica::send`]:
//! 1. its keys must lie in the range, else `RangeKeyMismatch` with our
//!    descriptor;
//! 2. the replica must be the leaseholder: the Raft leader with a valid
//!    leader lease (openraft's `LeaseRead`), else `NotLeaseholder` naming the
//!    leader it knows; the call also waits until the state machine has
//!    applied everything committed before the lease check;
//! 3. latches on the batch's spans serialize it with overlapping requests;
//! 4. it gets a timestamp: reads at the leaseholder's clock, writes above
//!    every read this leaseholder served and above the lease's low-water
//!    mark (see below);
//! 5. it is evaluated against MVCC: reads return at once; writes become a
//!    write set proposed through Raft and answered once applied.
//!
//! ## Why a read at the leaseholder is linearizable
//!
//! The leader lease (openraft's, `election_timeout_max` long) starts when a
//! quorum acknowledged a heartbeat or append the leader *sent*; followers
//! refuse to vote for anyone else for `election_timeout_max` after they
//! *received* it. So no other leader can be elected, and no write committed
//! elsewhere, while the lease is valid: a read at the lease holder, after
//! its state machine caught up with its commit index, sees every write
//! acknowledged before the read began. This relies on the nodes' clock
//! *rates* agreeing over one lease (monotonic clocks), not on their offset.
//!
//! Timestamps need the offset bound. A new leaseholder's clock may be up to
//! `max_offset` behind the one the previous holder read with, so when it
//! takes over it sets a low-water mark `now + max_offset`: its writes go
//! above every timestamp the previous holder could have served a read at,
//! and are acknowledged only once its own clock has passed their
//! timestamp (commit wait, only in the first `max_offset` of a lease). Reads
//! whose timestamp the leaseholder chose use an uncertainty interval of
//! `max_offset` and move up to any value found in it, so they also see
//! writes the previous holder acknowledged at timestamps ahead of our clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::{
    BatchRequest, BatchResponse, KvError, RangeDescriptor, ReplicaDescriptor, ReplicaKind,
};
use meridian_storage::Engine;
use meridian_transport::Transport;
use openraft::async_runtime::WatchReceiver;
use openraft::errors::ClientWriteError;
use openraft::ReadPolicy;
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::eval::{evaluate, Evaluated};
use crate::latch::{LatchManager, LatchSpan};
use crate::quiesce::WakeRpc;
use crate::raft::state_machine::{AppliedSummary, StateMachine};
use crate::raft::types::{RaftCommand, TypeConfig};

pub type Raft = openraft::Raft<TypeConfig, StateMachine>;

/// How many times a read whose timestamp the leaseholder chose moves up
/// past an uncertain value before giving up.
const MAX_UNCERTAINTY_RESTARTS: usize = 16;

/// A replica's Raft state at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftStatus {
    pub leader: Option<u64>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// The last log index covered by the replica's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Log entries up to this index were purged.
    pub purged_index: Option<u64>,
}

/// Timestamp bookkeeping of the current lease.
#[derive(Debug, Default)]
struct LeaseClock {
    /// The Raft term this replica last saw itself lead in.
    term: u64,
    /// Writes go above this: set to `now + max_offset` on taking the lease.
    low_water: Timestamp,
    /// The highest timestamp a read was served at under this lease.
    max_read: Timestamp,
}

/// What every replica of a node shares with its store.
#[derive(Clone)]
pub(crate) struct NodeContext {
    pub node_id: u64,
    pub metrics: crate::metrics::StoreMetrics,
    pub engine: Engine,
    pub clock: Arc<HybridClock>,
    pub transport: Transport,
}

pub struct Replica {
    range_id: u64,
    node_id: u64,
    raft: Raft,
    engine: Engine,
    clock: Arc<HybridClock>,
    latches: LatchManager,
    lease_clock: Mutex<LeaseClock>,
    applied: watch::Receiver<AppliedSummary>,
    transport: Transport,
    metrics: crate::metrics::StoreMetrics,
    /// When the replica last served or was asked to serve a request.
    last_activity: Mutex<Instant>,
    /// Whether this replica's Raft timers are stopped (see `quiesce`).
    quiesced: AtomicBool,
    /// The leader when the replica quiesced: what the leader watch pings.
    quiesced_leader: AtomicU64,
}

impl Replica {
    pub(crate) fn new(
        range_id: u64,
        raft: Raft,
        applied: watch::Receiver<AppliedSummary>,
        node: NodeContext,
    ) -> Self {
        Replica {
            range_id,
            node_id: node.node_id,
            raft,
            engine: node.engine,
            clock: node.clock,
            latches: LatchManager::default(),
            lease_clock: Mutex::new(LeaseClock::default()),
            applied,
            transport: node.transport,
            metrics: node.metrics,
            last_activity: Mutex::new(Instant::now()),
            quiesced: AtomicBool::new(false),
            quiesced_leader: AtomicU64::new(0),
        }
    }

    pub fn is_quiesced(&self) -> bool {
        self.quiesced.load(Ordering::Relaxed)
    }

    /// The leader this replica quiesced under, while it is quiesced.
    pub(crate) fn quiesced_leader(&self) -> Option<u64> {
        let leader = self.quiesced_leader.load(Ordering::Relaxed);
        (self.is_quiesced() && leader != 0).then_some(leader)
    }

    /// Stops this replica's Raft timers; `leader` leads the quiet group.
    pub(crate) fn quiesce_under(&self, leader: u64) {
        self.quiesced_leader.store(leader, Ordering::Relaxed);
        if !self.quiesced.swap(true, Ordering::Relaxed) {
            self.raft.runtime_config().tick(false);
        }
    }

    /// Restarts this replica's timers.
    pub(crate) fn wake_local(&self) {
        if self.quiesced.swap(false, Ordering::Relaxed) {
            self.raft.runtime_config().tick(true);
        }
    }

    /// Asks every other replica of the range to restart its timers.
    pub(crate) async fn wake_followers(&self) {
        let others: Vec<u64> = self
            .descriptor()
            .replicas
            .iter()
            .map(|r| r.node_id)
            .filter(|&n| n != self.node_id)
            .collect();
        // Best effort: a follower that misses it is woken when it sees the
        // leader change, and follows a live leader either way.
        let ranges = vec![self.range_id];
        futures_util::future::join_all(others.into_iter().map(|node| {
            self.transport
                .call::<WakeRpc>(node, &ranges, Duration::from_millis(500))
        }))
        .await;
    }

    /// Whether this replica leads, has been idle for `idle`, and every
    /// follower holds its last log entry: then its group can stop ticking.
    pub(crate) fn should_quiesce(&self, idle: Duration) -> bool {
        if self.is_quiesced() || self.last_activity.lock().elapsed() < idle {
            return false;
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        if m.current_leader != Some(self.node_id) {
            return false;
        }
        let last = m.last_log_index;
        match &m.replication {
            Some(followers) => followers
                .iter()
                .filter(|(&node, _)| node != self.node_id)
                .all(|(_, matched)| matched.as_ref().map(|id| id.index) == last),
            None => false,
        }
    }

    /// Marks activity and, at a quiesced leader, wakes the group and renews
    /// the lease with one quorum round.
    pub(crate) async fn activate(&self) {
        *self.last_activity.lock() = Instant::now();
        // A follower stays quiet: it answers NotLeaseholder, and waking its
        // election timer beside a quiet leader would only start an election.
        if !self.is_quiesced() || self.leader() != Some(self.node_id) {
            return;
        }
        self.wake_local();
        self.wake_followers().await;
        // The lease ran out while quiet: renew it with a read-index round,
        // which heartbeats a quorum.
        let _ = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await;
    }

    pub fn range_id(&self) -> u64 {
        self.range_id
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// `[start, end)`: the range's keys as of the applied index. A split
    /// shrinks it.
    pub fn span(&self) -> Arc<(Vec<u8>, Vec<u8>)> {
        self.applied.borrow().span.clone()
    }

    /// The index the state machine has applied.
    pub fn applied_index(&self) -> u64 {
        self.applied.borrow().index
    }

    /// The range's MVCC statistics as of the applied index.
    pub fn stats(&self) -> meridian_storage::MvccStats {
        self.applied.borrow().stats
    }

    /// The leader this replica knows of, if any.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow_watched().current_leader
    }

    /// The replica's Raft state, copied out of openraft's metrics.
    pub fn raft_status(&self) -> RaftStatus {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        RaftStatus {
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.as_ref().map(|id| id.index),
            snapshot_index: m.snapshot.as_ref().map(|id| id.index),
            purged_index: m.purged.as_ref().map(|id| id.index),
        }
    }

    /// The range descriptor as this replica sees it: its span and the
    /// members of its latest membership configuration.
    pub fn descriptor(&self) -> RangeDescriptor {
        let metrics = self.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
        let replicas = membership
            .nodes()
            .map(|(&node_id, _)| {
                let kind = if voters.contains(&node_id) {
                    ReplicaKind::Voter
                } else {
                    ReplicaKind::NonVoter
                };
                ReplicaDescriptor::on_node(node_id, kind)
            })
            .collect();
        let applied = self.applied.borrow();
        RangeDescriptor {
            range_id: self.range_id,
            start_key: applied.span.0.clone(),
            end_key: applied.span.1.clone(),
            replicas,
            generation: applied.generation,
        }
    }

    fn not_leaseholder(&self, leader: Option<u64>) -> KvError {
        let descriptor = self.descriptor();
        let leaseholder = leader.and_then(|l| descriptor.replica_on(l).copied());
        KvError::NotLeaseholder {
            range_id: self.range_id,
            leaseholder,
            descriptor: Some(Box::new(descriptor)),
        }
    }

    fn check_span(&self, request: &BatchRequest) -> Result<(), KvError> {
        let span = self.span();
        let (start, end) = (&span.0[..], &span.1[..]);
        let inside = request.requests.iter().all(|r| match r.span() {
            (key, None) => start <= key && key < end,
            (s, Some(e)) => start <= s && e <= end && s <= e,
        });
        if inside {
            Ok(())
        } else {
            Err(KvError::RangeKeyMismatch {
                range_id: self.range_id,
                descriptor: Some(Box::new(self.descriptor())),
            })
        }
    }

    /// Waits until this replica holds a valid lease and has applied all it
    /// committed; returns the current term.
    async fn ensure_lease(&self) -> Result<u64, KvError> {
        match self.raft.ensure_linearizable(ReadPolicy::LeaseRead).await {
            Ok(_) => Ok(self.raft.metrics().borrow_watched().current_term),
            Err(e) => Err(self.raft_error(e.forward_to_leader().map(|f| f.leader_id), &e)),
        }
    }

    /// Serves a batch: see the module documentation for the steps.
    pub async fn send(&self, request: BatchRequest) -> Result<BatchResponse, KvError> {
        if request.requests.is_empty() {
            return Err(KvError::InvalidRequest("empty batch".into()));
        }
        self.check_span(&request)?;
        if let Some(ts) = request.timestamp {
            // A client's timestamp moves our clock like any remote one, and
            // is refused if it is beyond the offset bound.
            self.clock
                .update(ts)
                .map_err(|e| KvError::InvalidRequest(e.to_string()))?;
        }
        self.activate().await;
        let is_write = request.requests.iter().any(|r| r.is_write());
        let spans = request
            .requests
            .iter()
            .map(|r| match r.span() {
                (key, None) => LatchSpan::point(key, r.is_write()),
                (start, Some(end)) => LatchSpan {
                    start: start.to_vec(),
                    end: end.to_vec(),
                    write: r.is_write(),
                },
            })
            .collect();
        let _latches = self.latches.acquire(spans).await;
        // The lease is checked after the latches: waiting for them may have
        // outlasted the lease, and the state machine must be caught up with
        // every write committed before this request evaluates.
        let term = self.ensure_lease().await?;
        // A split may have moved some keys to another range while we waited.
        self.check_span(&request)?;

        let max_offset = self.clock.max_offset();
        let chosen_by_us = request.timestamp.is_none();
        let mut ts = request.timestamp.unwrap_or_else(|| self.clock.now());
        if is_write {
            let mut lease = self.lease_clock.lock();
            self.enter_term(&mut lease, term);
            let floor = lease.low_water.max(lease.max_read);
            if ts <= floor {
                if request.txn.is_some() {
                    return Err(KvError::WriteTooOld {
                        requested: ts,
                        existing: floor,
                    });
                }
                ts = floor.next();
            }
        }

        let mut restarts = 0;
        let evaluated = loop {
            let limit = chosen_by_us.then(|| ts.add_duration(max_offset));
            match evaluate(
                &self.engine,
                &request.requests,
                ts,
                request.txn.as_ref(),
                limit,
            ) {
                Err(KvError::ReadWithinUncertainty { value_ts, .. })
                    if chosen_by_us && !is_write && restarts < MAX_UNCERTAINTY_RESTARTS =>
                {
                    restarts += 1;
                    ts = value_ts;
                }
                other => break other?,
            }
        };
        let Evaluated { responses, writes } = evaluated;

        match writes {
            None => {
                let mut lease = self.lease_clock.lock();
                self.enter_term(&mut lease, term);
                lease.max_read = lease.max_read.max(ts);
            }
            Some((writes, stats)) => {
                if !writes.is_empty() {
                    self.propose(RaftCommand::Write {
                        writes,
                        stats,
                        term,
                    })
                    .await?;
                }
                self.commit_wait(ts).await;
            }
        }
        if chosen_by_us {
            // The clock must not hand out a timestamp below one we acknowledged.
            self.clock.forward_to(ts);
        }
        Ok(BatchResponse {
            timestamp: ts,
            responses,
        })
    }

    /// Splits the range at `split_key`; `[split_key, end)` becomes range
    /// `right_range_id` on the same replicas. Returns the left and right
    /// descriptors. Must run at the leaseholder.
    pub async fn split(
        &self,
        split_key: &[u8],
        right_range_id: u64,
    ) -> Result<(RangeDescriptor, RangeDescriptor), KvError> {
        let outside = |span: &(Vec<u8>, Vec<u8>)| {
            !(span.0.as_slice() < split_key && split_key < span.1.as_slice())
        };
        if outside(&self.span()) {
            return Err(KvError::RangeKeyMismatch {
                range_id: self.range_id,
                descriptor: Some(Box::new(self.descriptor())),
            });
        }
        let taken = crate::replica_record::ReplicaRecord::exists(&self.engine, right_range_id)
            .map_err(|e| KvError::Storage(e.to_string()))?;
        if taken || right_range_id == self.range_id {
            return Err(KvError::InvalidRequest(format!(
                "range id {right_range_id} is already in use"
            )));
        }
        self.activate().await;
        // Every request on the range finishes before the split evaluates, and
        // none starts until it applied: none can write to the right-hand
        // side through this range afterwards.
        let span = self.span();
        let _latches = self
            .latches
            .acquire(vec![LatchSpan {
                start: span.0.clone(),
                end: span.1.clone(),
                write: true,
            }])
            .await;
        let term = self.ensure_lease().await?;
        if outside(&self.span()) {
            return Err(KvError::RangeKeyMismatch {
                range_id: self.range_id,
                descriptor: Some(Box::new(self.descriptor())),
            });
        }
        {
            let metrics = self.raft.metrics().borrow_watched().clone();
            let membership = metrics.membership_config.membership();
            let learners = membership.learner_ids().next().is_some();
            if membership.get_joint_config().len() > 1 || learners {
                return Err(KvError::Unavailable {
                    range_id: self.range_id,
                    reason: "a membership change is in progress; split later".into(),
                });
            }
        }
        self.propose(RaftCommand::Split {
            split_key: split_key.to_vec(),
            right_range_id,
            term,
        })
        .await?;
        let left = self.descriptor();
        let right = RangeDescriptor {
            range_id: right_range_id,
            start_key: split_key.to_vec(),
            end_key: span.1.clone(),
            replicas: left.replicas.clone(),
            generation: left.generation,
        };
        Ok((left, right))
    }

    /// Starts the timestamp bookkeeping of a new lease the first time a
    /// request runs under `term`.
    fn enter_term(&self, lease: &mut LeaseClock, term: u64) {
        if lease.term != term {
            *lease = LeaseClock {
                term,
                low_water: self.clock.now().add_duration(self.clock.max_offset()),
                max_read: Timestamp::ZERO,
            };
        }
    }

    async fn propose(&self, command: RaftCommand) -> Result<(), KvError> {
        let ambiguous = |reason: String| KvError::AmbiguousResult {
            range_id: self.range_id,
            reason,
        };
        self.metrics.proposals.inc();
        match self.raft.client_write(command).await {
            Ok(response) if response.data.applied => Ok(()),
            // Proposed in a later term than it was evaluated in: every
            // replica skipped it, so a retry is safe.
            Ok(_) => Err(self.not_leaseholder(self.leader())),
            Err(e) => match e.api_error() {
                // Refused before anything was appended: safe to retry.
                Some(ClientWriteError::ForwardToLeader(forward)) => {
                    Err(self.raft_error(Some(forward.leader_id), &e))
                }
                // Appended, then discarded or the group failed: the write
                // may still commit through another leader.
                _ => Err(ambiguous(e.to_string())),
            },
        }
    }

    /// A Raft refusal as a KV error: `forward` is `Some(leader hint)` when
    /// Raft says another node leads (then `NotLeaseholder`), else the range
    /// is unavailable for now.
    fn raft_error(&self, forward: Option<Option<u64>>, e: &dyn std::fmt::Display) -> KvError {
        match forward {
            Some(leader) => self.not_leaseholder(leader.filter(|&l| l != self.node_id)),
            None => KvError::Unavailable {
                range_id: self.range_id,
                reason: e.to_string(),
            },
        }
    }

    /// Holds an acknowledgement until the local clock has passed `ts`. Our
    /// own timestamps are at most `max_offset` ahead, and client timestamps
    /// beyond it were refused, so the wait is bounded by `max_offset`.
    async fn commit_wait(&self, ts: Timestamp) {
        let now = self.clock.physical_now();
        if ts.wall_nanos > now {
            let wait = Duration::from_nanos(ts.wall_nanos - now).min(self.clock.max_offset());
            tokio::time::sleep(wait).await;
        }
    }
}
