//! Leases: who may serve a range, and at which timestamps.
//!
//! This module owns the lease a replica serves under ([`Lease`]: a Raft
//! term and an interval `[start, expiration)` of HLC time), the bookkeeping
//! of one term's lease ([`LeaseState`]: its start, and the timestamp cache
//! of the reads it served), how a replica learns its lease
//! (`Replica::lease`), and the rules for timestamps under it: which
//! requests it covers ([`Lease::covers`]), where a write goes
//! ([`LeaseState::write_timestamp`]: above the lease's start and above
//! every read of its keys by anyone else), how far a read looks for
//! uncertain values ([`uncertainty_limit`]) and how long an acknowledgement
//! waits ([`commit_wait`]). The rules are plain functions of the lease and
//! the clock's readings, so they are tested without a cluster.
//!
//! It does not own who leads: that is openraft's leader lease, kept by the
//! Raft group; nor the order of the steps of serving a batch (see
//! [`crate::replica`]); nor the timestamp cache's structure
//! ([`crate::tscache`]).
//!
//! ## The lease rule
//!
//! Who may serve: the Raft leader while its openraft leader lease is valid.
//! That lease (`election_timeout_max` long) starts when a quorum
//! acknowledged a heartbeat or append the leader *sent*; followers refuse
//! to vote for anyone else for `election_timeout_max` after they *received*
//! it. So no other leader can be elected while it runs. This relies on the
//! nodes' clock *rates* agreeing over one lease (monotonic clocks), not on
//! their offset.
//!
//! At which timestamps: the leaseholder turns the monotonic lease into an
//! interval of HLC time each time it checks it. The expiration is its
//! physical clock plus what remains of the monotonic lease (a whole lease
//! for a group whose only voter is the leader: no quorum acknowledges its
//! heartbeats, and no rival can be elected); the start of
//! the lease of a term is `physical + max_offset` when the term's first
//! request arrives. A request is served only if the highest timestamp it
//! reads or writes (a read's uncertainty limit, a write's timestamp) lies
//! below the expiration, checked *after* the timestamp is chosen, so a
//! leaseholder paused between the lease check and the evaluation refuses
//! instead of serving at a timestamp its lease no longer covers.
//!
//! Why the intervals of two leases never overlap: the previous lease ended,
//! by its holder's physical clock, at its expiration `E`, before the new
//! leader was elected; the new leader's physical clock is at most
//! `max_offset` behind, so its start `physical + max_offset` is at or above
//! `E`. Every timestamp the previous holder served lies below `E`, every
//! write of the new one above its start. A range made by a split is a new
//! Raft group whose first leader may be another node than the parent's
//! leaseholder, with a slower clock: the split carries the parent
//! leaseholder's clock reading (at or above everything it served on the
//! range) as the new range's lease floor, and no lease of the new range
//! starts at or below it.
//!
//! Why no write lands at or below a read of its keys: the lease's
//! timestamp cache records every read it served (key span, timestamp,
//! reading transaction) before the read's latches are released, and a
//! write goes above the highest read of its span by anyone but its own
//! transaction. Reads served under an earlier lease are below this lease's
//! start, which is the cache's low-water mark; so are the parent's reads
//! for a range made by a split (its lease floor is at or above them). So
//! a new lease's cache starts empty at its start, and the cache may forget
//! reads by raising its floor, never by lowering it.
//!
//! Why a read at the leaseholder is linearizable: every write acknowledged
//! before the read arrived either lies at or below the leaseholder's clock
//! (it wrote it, and moved its clock up to every timestamp it
//! acknowledged) or below the lease's start (a previous lease, or the
//! parent range, wrote it). A
//! read whose timestamp the leaseholder chose looks for uncertain values up
//! to the larger of the two, which is below the expiration; the state
//! machine has applied every committed write before the read evaluates.
//! Writes of a later lease lie above the expiration, so the read cannot
//! miss one acknowledged before it began.
//!
//! The clocks: a write's timestamp is at most `max_offset` ahead of the
//! physical clock of the node that chose it, so a leaseholder's writes are
//! at most `2 * max_offset` ahead of its own physical clock (its HLC can
//! run `max_offset` ahead after hearing from a fast peer). Commit wait
//! lasts until the physical clock passed the write's timestamp, with no
//! shorter cap. A lease must outlast `max_offset` plus a heartbeat round,
//! or reads at a timestamp the leaseholder chose would never fit under it
//! ([`RaftTimeouts::check_lease_covers_offset`]).

use std::time::{Duration, Instant};

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, KvError, Request, Response, TxnId};
use openraft::async_runtime::WatchReceiver;
use openraft::{Instant as _, ReadPolicy};

use crate::closedts::{Closer, InFlightWrite};
use crate::error::StoreError;
use crate::raft::config::RaftTimeouts;
use crate::replica::Replica;
use crate::tscache::{read_span, write_span, TimestampCache};

/// The monotonic clock openraft's leader lease is measured with.
type RaftInstant = openraft::alias::InstantOf<crate::raft::types::TypeConfig>;

/// How many times a read whose timestamp the leaseholder chose moves up
/// past an uncertain value before giving up.
pub const MAX_UNCERTAINTY_RESTARTS: usize = 16;

/// The lease a replica serves under: the Raft term it leads in and the
/// interval of HLC time it covers, `[start, expiration)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub term: u64,
    pub start: Timestamp,
    pub expiration: Timestamp,
}

impl Lease {
    /// Whether a request that reads or writes at timestamps up to `highest`
    /// may be served under this lease.
    pub fn covers(&self, highest: Timestamp) -> bool {
        highest < self.expiration
    }
}

/// The expiration of a lease in HLC time: the physical clock reading
/// `physical_now` plus what `remains` of the monotonic lease.
pub fn lease_expiration(physical_now: u64, remains: Duration) -> Timestamp {
    Timestamp::new(physical_now, 0).add_duration(remains)
}

/// The timestamp bookkeeping of the lease of one term.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaseState {
    /// The Raft term this replica last saw itself lead in.
    pub term: u64,
    /// Where this term's lease starts: at or above every timestamp a
    /// previous lease served; writes go above it.
    pub start: Timestamp,
    /// The reads served under this lease, per key span; its low-water mark
    /// is `start`.
    pub reads: TimestampCache,
    /// What this lease closed, and the writes it waits for
    /// ([`crate::closedts`]): writes go above its floor as above a read.
    pub closer: Closer,
}

impl LeaseState {
    /// Starts the bookkeeping of a new lease the first time a request runs
    /// under `term`: `hlc_now` and `physical_now` are the leaseholder's
    /// clock readings, `floor` the range's lease floor (for a range made by
    /// a split, what its parent served). The timestamp cache starts empty
    /// with the lease's start as its floor (keeping its limits). Within one
    /// term this does nothing.
    pub fn enter_term(
        &mut self,
        term: u64,
        hlc_now: Timestamp,
        physical_now: u64,
        max_offset: Duration,
        floor: Timestamp,
    ) {
        if self.term != term {
            let start = Timestamp::new(physical_now, 0)
                .add_duration(max_offset)
                .max(hlc_now)
                .max(floor.next());
            *self = LeaseState {
                term,
                start,
                reads: TimestampCache::new(start, self.reads.limits()),
                closer: Closer::default(),
            };
        }
    }

    /// The timestamp a batch of `requests` by `txn` (`None`: not
    /// transactional) that asked for `requested` writes at: above the
    /// lease's start, above what the lease closed, and above every read of
    /// the keys it writes served under this lease, except its own
    /// transaction's (they were at or below its timestamp). A non-transactional write moves up, and so do a
    /// transaction's intents: the batch answers the higher timestamp, and
    /// the coordinator refreshes its reads there before it commits (the
    /// replica first checks that nothing was written on the batch's keys
    /// since `requested`, so the transaction's reads of them still hold).
    /// A one-phase commit (writes with their commit) cannot move: its
    /// commit would land above reads nobody checked, so it is refused with
    /// `WriteTooOld` and the coordinator refreshes, then sends it again.
    pub fn write_timestamp(
        &mut self,
        requested: Timestamp,
        txn: Option<TxnId>,
        requests: &[Request],
    ) -> Result<Timestamp, KvError> {
        let mut spans = requests.iter().filter_map(write_span).peekable();
        if spans.peek().is_none() {
            // No MVCC write (transaction records, intent resolution): no
            // version lands at this timestamp, nothing to keep it above.
            return Ok(requested);
        }
        let closed_floor = self.closer.floor_for(txn, requested);
        let read_floor = spans
            .map(|span| self.reads.max_over(span, txn))
            .fold(self.start, Timestamp::max);
        let floor = read_floor.max(closed_floor);
        let commits = requests.iter().any(Request::is_commit);
        match txn {
            _ if requested > floor => Ok(requested),
            Some(txn) if commits => {
                if closed_floor >= requested {
                    // Held, so the commit that comes back after the
                    // refresh lands there instead of chasing a floor
                    // that moves on every close.
                    self.closer.reserve(txn, floor.next());
                }
                Err(KvError::WriteTooOld {
                    requested,
                    existing: floor,
                })
            }
            _ => Ok(floor.next()),
        }
    }

    /// Remembers what `requests` by `txn` read at `ts`, so no later write
    /// of those keys by anyone else goes at or below it. `responses` are
    /// theirs, in order, if they were served (a scan stopped by its row
    /// limit read only up to its resume key); `None` counts whole spans.
    pub fn record_reads(
        &mut self,
        ts: Timestamp,
        txn: Option<TxnId>,
        requests: &[Request],
        responses: Option<&[Response]>,
    ) {
        for (i, request) in requests.iter().enumerate() {
            let response = responses.and_then(|r| r.get(i));
            if let Some(span) = read_span(request, response) {
                self.reads.record(span, ts, txn);
            }
        }
    }
}

/// The transaction a batch runs in, if any.
fn txn_id(request: &BatchRequest) -> Option<TxnId> {
    request.txn.as_ref().map(|txn| txn.id)
}

/// The upper end of a read's uncertainty interval. What this leaseholder
/// can vouch for: every value acknowledged before the read arrived lies at
/// or below its clock on `arrival` (it moves its clock up to every
/// timestamp it serves) or below `lease_start` (a previous lease, or the
/// parent range of a split, wrote it), so nothing above the larger of the
/// two needs to be seen (the observed-timestamp rule). A read whose
/// timestamp the leaseholder chose (its clock on arrival) looks up to
/// there; a transaction's read up to its own global limit (`txn_limit`:
/// its first timestamp plus `max_offset`, fixed for its life), narrowed to
/// there; a read at a timestamp the client fixed without a transaction (a
/// snapshot at exactly that time) has no interval.
pub fn uncertainty_limit(
    ts: Timestamp,
    chosen_by_leaseholder: bool,
    txn_limit: Option<Timestamp>,
    arrival: Timestamp,
    lease_start: Timestamp,
) -> Option<Timestamp> {
    let local = arrival.max(lease_start);
    let limit = if chosen_by_leaseholder {
        local
    } else {
        txn_limit?.min(local)
    };
    (limit > ts).then_some(limit)
}

/// Whether a request that met a value in its uncertainty interval moves its
/// timestamp up to that value and evaluates again. Only reads whose
/// timestamp the leaseholder chose may move (a write's timestamp is fixed by
/// then), and at most [`MAX_UNCERTAINTY_RESTARTS`] times.
pub fn may_restart_uncertain_read(
    chosen_by_leaseholder: bool,
    is_write: bool,
    restarts: usize,
) -> bool {
    chosen_by_leaseholder && !is_write && restarts < MAX_UNCERTAINTY_RESTARTS
}

/// Until when a node that just started grants no Raft vote (nor pre-vote):
/// one lease duration after its start, if it held any replica. Before it
/// went down it may have acknowledged a leader's heartbeat and so promised
/// not to vote for anyone else while that leader's lease runs; openraft
/// rebuilds the vote at start with the lease already expired, so without
/// this rule a node restarted inside a lease could elect a rival while the
/// old leaseholder still serves reads. A node that held no replica promised
/// nothing.
pub fn votes_withheld_until(started: Instant, held_replicas: bool, lease: Duration) -> Instant {
    if held_replicas {
        started + lease
    } else {
        started
    }
}

/// Whether a write that found a newer version of its key moves above it and
/// evaluates again, instead of failing with `WriteTooOld`. A
/// non-transactional write has no reads to keep consistent and reports the
/// timestamp it was written at, so it moves (after a lease move the new
/// leaseholder's clock may lag a version its predecessor wrote); a
/// transaction's write may not (its coordinator must refresh or restart).
/// A transaction's batch of locking reads only (`locking_reads_only`)
/// moves too: it answers the values at the moved timestamp, which it
/// reports, and its coordinator refreshes its other reads there. Moving
/// here saves that batch a round trip, and it takes its locks now: sent
/// back with `WriteTooOld`, it would find them taken by another waiter,
/// again and again on a hot key.
pub fn may_move_write_above(
    transactional: bool,
    locking_reads_only: bool,
    restarts: usize,
) -> bool {
    (!transactional || locking_reads_only) && restarts < MAX_UNCERTAINTY_RESTARTS
}

/// How long the acknowledgement of a write at `ts` waits, given the local
/// physical clock `now_nanos`: until the clock passed `ts`. Never capped:
/// readers elsewhere rely on a write being acknowledged only once no clock
/// within `max_offset` of ours can pick a timestamp that misses it in its
/// uncertainty interval (the wait is at most `2 * max_offset`, see the
/// module documentation). `None`: no wait.
pub fn commit_wait(ts: Timestamp, now_nanos: u64) -> Option<Duration> {
    (ts.wall_nanos > now_nanos).then(|| Duration::from_nanos(ts.wall_nanos - now_nanos))
}

impl RaftTimeouts {
    /// Whether a lease of these timeouts outlasts `max_offset` plus a
    /// heartbeat round (two heartbeat intervals): otherwise a read at a
    /// timestamp the leaseholder chose, up to `max_offset` ahead of its
    /// physical clock, would not fit under a lease renewed by the last
    /// heartbeat.
    pub fn check_lease_covers_offset(&self, max_offset: Duration) -> Result<(), StoreError> {
        let lease = Duration::from_millis(self.election_max_ms);
        let needed = max_offset + Duration::from_millis(2 * self.heartbeat_ms);
        if lease > needed {
            Ok(())
        } else {
            Err(StoreError::LeaseTooShort {
                lease,
                max_offset,
                needed,
            })
        }
    }
}

impl Replica {
    /// Waits until this replica holds a valid lease and has applied all it
    /// committed; returns the lease as an interval of HLC time. `renew`
    /// confirms leadership with a heartbeat round first (the lease then
    /// runs a whole `election_timeout_max` from now) instead of trusting
    /// the last one.
    pub(crate) async fn lease(&self, renew: bool) -> Result<Lease, KvError> {
        let asked = RaftInstant::now();
        let policy = if renew {
            ReadPolicy::ReadIndex
        } else {
            ReadPolicy::LeaseRead
        };
        if let Err(e) = self.raft.ensure_linearizable(policy).await {
            let forward = e
                .forward_to_leader()
                .map(|f| f.leader_node.as_ref().map(|n| n.node_id));
            return Err(self.raft_error(forward, &e));
        }
        let sole_voter = self.is_sole_voter();
        if renew && !sole_voter {
            // openraft publishes the acknowledgement in its metrics a moment
            // after the heartbeat round returns.
            let _ = self
                .raft
                .wait(Some(self.lease_duration))
                .metrics(
                    |m| m.last_quorum_acked.as_ref().is_some_and(|t| **t >= asked),
                    "the lease renewal to show in the metrics",
                )
                .await;
        }
        let (term, leader, acked) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            (
                m.current_term,
                m.current_leader,
                m.last_quorum_acked.as_ref().map(|t| **t),
            )
        };
        if leader != Some(self.replica_id) {
            return Err(self.not_leaseholder(self.leader()));
        }
        let remains = if sole_voter {
            // No quorum acknowledges a sole voter's heartbeats (it sends
            // none), and no rival can be elected while it is the only
            // voter: its lease runs a whole duration from every check.
            self.lease_duration
        } else {
            acked
                .map(|acked| {
                    (acked + self.lease_duration).saturating_duration_since(RaftInstant::now())
                })
                .unwrap_or_default()
        };
        let physical_now = self.clock.physical_now();
        let floor = self.lease_floor();
        let mut state = self.lease_state.lock();
        state.enter_term(
            term,
            self.clock.now(),
            physical_now,
            self.clock.max_offset(),
            floor,
        );
        Ok(Lease {
            term,
            start: state.start,
            expiration: lease_expiration(physical_now, remains),
        })
    }

    /// Whether this replica is the only voter of its group's latest
    /// membership (not a joint one: adding a voter needs the new voter's
    /// acknowledgements too).
    fn is_sole_voter(&self) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let membership = m.membership_config.membership();
        let sole = membership.get_joint_config().len() == 1
            && membership.voter_ids().eq([self.replica_id]);
        sole
    }

    /// The timestamp of a write under `lease` (see
    /// [`LeaseState::write_timestamp`]), and, for a batch that writes MVCC
    /// versions, its registration as in flight: until it is dropped, the
    /// lease closes nothing at or above that timestamp.
    pub(crate) fn lease_write_timestamp(
        &self,
        lease: &Lease,
        requested: Timestamp,
        request: &BatchRequest,
    ) -> Result<(Timestamp, Option<InFlightWrite<'_>>), KvError> {
        let mut state = self.lease_state.lock();
        if state.term != lease.term {
            return Err(self.not_leaseholder(None));
        }
        let ts = state.write_timestamp(requested, txn_id(request), &request.requests)?;
        let in_flight = request
            .requests
            .iter()
            .any(|r| write_span(r).is_some())
            .then(|| {
                if let Some(txn) = txn_id(request) {
                    state.closer.release_reservation(txn);
                }
                state.closer.register(ts);
                InFlightWrite {
                    replica: self,
                    term: lease.term,
                    ts,
                }
            });
        Ok((ts, in_flight))
    }

    /// Records what `request` read at `ts` (see
    /// [`LeaseState::record_reads`]). Called before the batch's latches
    /// are released, so no overlapping write checks the cache in between.
    /// Recorded whatever term the cache now belongs to: a read evaluated
    /// under the previous term may have chosen its timestamp after this
    /// one began, above its start, and recording more than needed only
    /// pushes writes higher.
    pub(crate) fn lease_record_reads(
        &self,
        ts: Timestamp,
        request: &BatchRequest,
        responses: Option<&[Response]>,
    ) {
        self.lease_state
            .lock()
            .record_reads(ts, txn_id(request), &request.requests, responses);
    }
}

#[cfg(test)]
mod tests;
