//! Leases: who may serve a range, and at which timestamps.
//!
//! This module owns the lease record of a replica ([`LeaseClock`]: the term
//! it leads in, its low-water mark, the highest read it served), the check
//! that a replica holds the lease (`Replica::ensure_lease`), and the rules
//! for timestamps under a lease: where a write goes
//! ([`LeaseClock::write_timestamp`]), how far a read looks for uncertain
//! values ([`uncertainty_limit`]) and how long an acknowledgement waits
//! ([`commit_wait`]). The rules are plain functions of the lease record and
//! the clock's readings, so they are tested without a cluster.
//!
//! It does not own the lease itself: that is openraft's leader lease, kept
//! by the Raft group; nor the order of the steps of serving a batch (see
//! [`crate::replica`]).
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

use std::time::{Duration, Instant};

use meridian_hlc::Timestamp;
use meridian_kvapi::KvError;
use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;

use crate::replica::Replica;

/// How many times a read whose timestamp the leaseholder chose moves up
/// past an uncertain value before giving up.
pub const MAX_UNCERTAINTY_RESTARTS: usize = 16;

/// Timestamp bookkeeping of the current lease.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaseClock {
    /// The Raft term this replica last saw itself lead in.
    pub term: u64,
    /// Writes go above this: set to `now + max_offset` on taking the lease.
    pub low_water: Timestamp,
    /// The highest timestamp a read was served at under this lease.
    pub max_read: Timestamp,
}

impl LeaseClock {
    /// Starts the bookkeeping of a new lease the first time a request runs
    /// under `term`; `now` is the leaseholder's clock reading. Within one
    /// term this does nothing.
    pub fn enter_term(&mut self, term: u64, now: Timestamp, max_offset: Duration) {
        if self.term != term {
            *self = LeaseClock {
                term,
                low_water: now.add_duration(max_offset),
                max_read: Timestamp::ZERO,
            };
        }
    }

    /// The timestamp a write asked for at `requested` is evaluated at: above
    /// the low-water mark and above every read served under this lease. A
    /// transaction's timestamp cannot move silently (its reads were at it),
    /// so a transactional write below the floor is refused instead.
    pub fn write_timestamp(
        &self,
        requested: Timestamp,
        transactional: bool,
    ) -> Result<Timestamp, KvError> {
        let floor = self.low_water.max(self.max_read);
        if requested > floor {
            Ok(requested)
        } else if transactional {
            Err(KvError::WriteTooOld {
                requested,
                existing: floor,
            })
        } else {
            Ok(floor.next())
        }
    }

    /// Remembers a read served at `ts`, so no later write goes below it.
    pub fn record_read(&mut self, ts: Timestamp) {
        self.max_read = self.max_read.max(ts);
    }
}

/// The upper end of a read's uncertainty interval: `ts + max_offset` when
/// the leaseholder chose `ts` (a value in the interval may have been
/// written before the read began, by a node whose clock is ahead), none
/// when the client did (it asked for a snapshot at exactly that time).
pub fn uncertainty_limit(
    ts: Timestamp,
    chosen_by_leaseholder: bool,
    max_offset: Duration,
) -> Option<Timestamp> {
    chosen_by_leaseholder.then(|| ts.add_duration(max_offset))
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
pub fn may_move_write_above(transactional: bool, restarts: usize) -> bool {
    !transactional && restarts < MAX_UNCERTAINTY_RESTARTS
}

/// How long the acknowledgement of a write at `ts` waits, given the local
/// physical clock `now_nanos`: until the clock passed `ts`, at most
/// `max_offset` (our own timestamps are at most that far ahead, and client
/// timestamps beyond it were refused). `None`: no wait.
pub fn commit_wait(ts: Timestamp, now_nanos: u64, max_offset: Duration) -> Option<Duration> {
    (ts.wall_nanos > now_nanos)
        .then(|| Duration::from_nanos(ts.wall_nanos - now_nanos).min(max_offset))
}

impl Replica {
    /// Waits until this replica holds a valid lease and has applied all it
    /// committed; returns the current term.
    pub(crate) async fn ensure_lease(&self) -> Result<u64, KvError> {
        match self.raft.ensure_linearizable(ReadPolicy::LeaseRead).await {
            Ok(_) => Ok(self.raft.metrics().borrow_watched().current_term),
            Err(e) => Err(self.raft_error(e.forward_to_leader().map(|f| f.leader_id), &e)),
        }
    }

    /// The timestamp of a write under the lease of `term`: see
    /// [`LeaseClock::write_timestamp`].
    pub(crate) fn lease_write_timestamp(
        &self,
        term: u64,
        requested: Timestamp,
        transactional: bool,
    ) -> Result<Timestamp, KvError> {
        let mut lease = self.lease_clock.lock();
        lease.enter_term(term, self.clock.now(), self.clock.max_offset());
        lease.write_timestamp(requested, transactional)
    }

    /// Records a read served at `ts` under the lease of `term`.
    pub(crate) fn lease_record_read(&self, term: u64, ts: Timestamp) {
        let mut lease = self.lease_clock.lock();
        lease.enter_term(term, self.clock.now(), self.clock.max_offset());
        lease.record_read(ts);
    }

    /// Holds an acknowledgement until the local clock has passed `ts`.
    pub(crate) async fn commit_wait(&self, ts: Timestamp) {
        let now = self.clock.physical_now();
        if let Some(wait) = commit_wait(ts, now, self.clock.max_offset()) {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFSET: Duration = Duration::from_millis(500);

    fn ts(wall_nanos: u64) -> Timestamp {
        Timestamp::new(wall_nanos, 0)
    }

    fn lease_at(term: u64, now: u64) -> LeaseClock {
        let mut lease = LeaseClock::default();
        lease.enter_term(term, ts(now), OFFSET);
        lease
    }

    #[test]
    fn a_new_term_sets_the_low_water_mark_max_offset_ahead() {
        let lease = lease_at(3, 1_000);
        assert_eq!(lease.term, 3);
        assert_eq!(lease.low_water, ts(1_000).add_duration(OFFSET));
        assert_eq!(lease.max_read, Timestamp::ZERO);
    }

    #[test]
    fn the_same_term_keeps_its_bookkeeping_and_a_new_one_resets_it() {
        let mut lease = lease_at(3, 1_000);
        lease.record_read(ts(9_000_000_000));
        let before = lease.clone();
        lease.enter_term(3, ts(5_000_000_000), OFFSET);
        assert_eq!(lease, before, "re-entering the same term changed the lease");

        lease.enter_term(4, ts(5_000_000_000), OFFSET);
        assert_eq!(lease.term, 4);
        assert_eq!(lease.max_read, Timestamp::ZERO);
        assert_eq!(lease.low_water, ts(5_000_000_000).add_duration(OFFSET));
    }

    #[test]
    fn a_write_above_the_floor_keeps_its_timestamp() {
        let lease = lease_at(1, 0);
        let above = lease.low_water.next();
        assert_eq!(lease.write_timestamp(above, false), Ok(above));
        assert_eq!(lease.write_timestamp(above, true), Ok(above));
    }

    #[test]
    fn a_write_at_or_below_the_low_water_mark_moves_just_above_it() {
        let lease = lease_at(1, 1_000);
        let floor = lease.low_water;
        assert_eq!(lease.write_timestamp(ts(1_000), false), Ok(floor.next()));
        assert_eq!(lease.write_timestamp(floor, false), Ok(floor.next()));
    }

    #[test]
    fn a_write_moves_above_the_highest_read_served() {
        let mut lease = lease_at(1, 0);
        let read = lease.low_water.add_duration(Duration::from_secs(1));
        lease.record_read(read);
        lease.record_read(ts(1)); // an older read does not lower the floor
        assert_eq!(lease.max_read, read);
        assert_eq!(lease.write_timestamp(read, false), Ok(read.next()));
    }

    #[test]
    fn a_transactional_write_below_the_floor_is_refused_not_moved() {
        let lease = lease_at(1, 1_000);
        let requested = ts(1_000);
        assert_eq!(
            lease.write_timestamp(requested, true),
            Err(KvError::WriteTooOld {
                requested,
                existing: lease.low_water,
            })
        );
    }

    #[test]
    fn only_reads_at_a_timestamp_the_leaseholder_chose_are_uncertain() {
        let at = ts(1_000);
        assert_eq!(
            uncertainty_limit(at, true, OFFSET),
            Some(at.add_duration(OFFSET))
        );
        assert_eq!(uncertainty_limit(at, false, OFFSET), None);
    }

    #[test]
    fn only_chosen_reads_restart_and_only_a_bounded_number_of_times() {
        assert!(may_restart_uncertain_read(true, false, 0));
        assert!(may_restart_uncertain_read(
            true,
            false,
            MAX_UNCERTAINTY_RESTARTS - 1
        ));
        assert!(!may_restart_uncertain_read(
            true,
            false,
            MAX_UNCERTAINTY_RESTARTS
        ));
        assert!(!may_restart_uncertain_read(false, false, 0), "client's ts");
        assert!(!may_restart_uncertain_read(true, true, 0), "a write");
    }

    #[test]
    fn commit_wait_lasts_until_the_clock_passes_the_write_bounded_by_max_offset() {
        let now = 10_000_000_000;
        assert_eq!(commit_wait(ts(now), now, OFFSET), None, "not ahead");
        assert_eq!(commit_wait(ts(now - 1), now, OFFSET), None, "behind");
        assert_eq!(
            commit_wait(ts(now + 1_000), now, OFFSET),
            Some(Duration::from_nanos(1_000))
        );
        assert_eq!(
            commit_wait(ts(now + 10_000_000_000), now, OFFSET),
            Some(OFFSET),
            "never longer than max_offset"
        );
    }

    #[test]
    fn only_non_transactional_writes_move_above_a_newer_version() {
        assert!(may_move_write_above(false, 0));
        assert!(!may_move_write_above(true, 0));
        assert!(!may_move_write_above(false, MAX_UNCERTAINTY_RESTARTS));
    }

    #[test]
    fn a_restarted_node_withholds_votes_for_one_lease() {
        let started = Instant::now();
        let lease = Duration::from_millis(700);
        assert_eq!(votes_withheld_until(started, true, lease), started + lease);
        assert_eq!(votes_withheld_until(started, false, lease), started);
    }
}
