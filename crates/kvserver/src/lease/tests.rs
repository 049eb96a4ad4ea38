//! The lease rules, as plain functions of leases and clock readings.

use super::*;

const OFFSET: Duration = Duration::from_millis(500);
const TXN: Option<TxnId> = Some(TxnId(1));
const OTHER: Option<TxnId> = Some(TxnId(2));

fn put(key: &[u8]) -> Request {
    Request::Put {
        key: key.to_vec(),
        value: b"v".to_vec(),
    }
}

fn get(key: &[u8]) -> Request {
    Request::Get { key: key.to_vec() }
}

fn span_request(start: &[u8], end: &[u8], delete: bool) -> Request {
    let (start, end) = (start.to_vec(), end.to_vec());
    if delete {
        Request::DeleteRange { start, end }
    } else {
        Request::Scan {
            start,
            end,
            max_rows: 0,
        }
    }
}

fn ts(wall_nanos: u64) -> Timestamp {
    Timestamp::new(wall_nanos, 0)
}

fn lease_at(term: u64, now: u64) -> LeaseState {
    let mut lease = LeaseState::default();
    lease.enter_term(term, ts(now), now, OFFSET, Timestamp::ZERO);
    lease
}

#[test]
fn a_new_term_starts_max_offset_ahead_of_the_physical_clock() {
    let lease = lease_at(3, 1_000);
    assert_eq!(lease.term, 3);
    assert_eq!(lease.start, ts(1_000).add_duration(OFFSET));
    assert!(lease.reads.is_empty());
    assert_eq!(lease.reads.low_water(), lease.start, "the cache's floor");
}

#[test]
fn a_new_term_starts_no_lower_than_an_hlc_that_ran_ahead() {
    let mut lease = LeaseState::default();
    let hlc = ts(1_000).add_duration(OFFSET).next();
    lease.enter_term(1, hlc, 1_000, OFFSET, Timestamp::ZERO);
    assert_eq!(lease.start, hlc);
}

/// The first lease of a range made by a split starts above what the
/// parent's leaseholder served, even if its own clock is slower.
#[test]
fn a_new_term_starts_above_the_range_lease_floor() {
    let mut lease = LeaseState::default();
    let floor = ts(1_000).add_duration(OFFSET * 3);
    lease.enter_term(1, ts(1_000), 1_000, OFFSET, floor);
    assert_eq!(lease.start, floor.next());
}

/// The right-hand range of a split gets no copy of its parent's cache:
/// the split's floor is the parent leaseholder's clock, at or above every
/// read it served, and the new range's cache starts above the floor even
/// under a leader whose clock is far slower.
#[test]
fn a_split_needs_no_copy_of_the_parents_cache() {
    let mut parent = lease_at(1, 1_000);
    let read = parent.start.add_duration(Duration::from_millis(200));
    parent.record_reads(read, TXN, &[get(b"r")], None);
    let parent_clock = read; // moved up to every timestamp served
    let mut right = LeaseState::default();
    right.enter_term(1, ts(1_000), 1_000, OFFSET, parent_clock);
    assert!(right.start > parent_clock);
    assert!(right.reads.max_over((b"r", None), OTHER) > read);
    let below = parent.start.next();
    assert_eq!(
        right.write_timestamp(below, None, &[put(b"r")]),
        Ok(right.start.next())
    );
}

#[test]
fn the_same_term_keeps_its_bookkeeping_and_a_new_one_resets_it() {
    let mut lease = lease_at(3, 1_000);
    lease.record_reads(ts(9_000_000_000), None, &[get(b"k")], None);
    let before = lease.clone();
    lease.enter_term(3, ts(5_000_000_000), 5_000_000_000, OFFSET, Timestamp::ZERO);
    assert_eq!(lease, before, "re-entering the same term changed the lease");

    lease.enter_term(4, ts(5_000_000_000), 5_000_000_000, OFFSET, Timestamp::ZERO);
    assert_eq!(lease.term, 4);
    assert_eq!(lease.start, ts(5_000_000_000).add_duration(OFFSET));
    assert!(lease.reads.is_empty(), "a new lease starts a new cache");
    assert_eq!(lease.reads.low_water(), lease.start);
    assert_eq!(lease.reads.limits(), before.reads.limits());
}

/// The previous holder's lease ended at `E` by its clock, before the new
/// leader was elected; the new leader's clock is at most `max_offset`
/// behind. Its lease starts at or above `E`.
#[test]
fn a_new_lease_starts_at_or_above_the_previous_expiration() {
    let lease = Duration::from_millis(700);
    let old_physical = 10_000_000_000;
    let old = Lease {
        term: 1,
        start: ts(old_physical),
        expiration: lease_expiration(old_physical, lease),
    };
    // The old lease ran out; the new leader's clock lags by max_offset.
    let new_physical = old.expiration.wall_nanos - OFFSET.as_nanos() as u64;
    let mut new = LeaseState::default();
    new.enter_term(2, ts(new_physical), new_physical, OFFSET, Timestamp::ZERO);
    assert!(new.start >= old.expiration);
}

/// The leaseholder checked its lease, then paused past its end. The
/// timestamp it picks on waking lies beyond the lease: refused.
#[test]
fn a_timestamp_chosen_after_a_pause_past_the_lease_is_not_covered() {
    let checked_at = 10_000_000_000;
    let lease = Lease {
        term: 1,
        start: ts(0),
        expiration: lease_expiration(checked_at, Duration::from_millis(700)),
    };
    assert!(lease.covers(ts(checked_at)));
    let woke_at = ts(checked_at).add_duration(Duration::from_secs(2));
    assert!(!lease.covers(woke_at));
    assert!(
        !lease.covers(lease.expiration),
        "the expiration is exclusive"
    );
}

#[test]
fn a_write_above_the_floor_keeps_its_timestamp() {
    let mut lease = lease_at(1, 0);
    let above = lease.start.next();
    assert_eq!(lease.write_timestamp(above, None, &[put(b"k")]), Ok(above));
    assert_eq!(lease.write_timestamp(above, TXN, &[put(b"k")]), Ok(above));
}

#[test]
fn a_write_at_or_below_the_lease_start_moves_just_above_it() {
    let mut lease = lease_at(1, 1_000);
    let floor = lease.start;
    let write = [put(b"k")];
    assert_eq!(
        lease.write_timestamp(ts(1_000), None, &write),
        Ok(floor.next())
    );
    assert_eq!(lease.write_timestamp(floor, None, &write), Ok(floor.next()));
}

#[test]
fn a_write_moves_above_the_highest_read_of_its_key() {
    let mut lease = lease_at(1, 0);
    let read = lease.start.add_duration(Duration::from_secs(1));
    lease.record_reads(read, None, &[get(b"a")], None);
    // An older read does not lower the floor.
    lease.record_reads(lease.start.next(), None, &[get(b"a")], None);
    assert_eq!(
        lease.write_timestamp(read, None, &[put(b"a")]),
        Ok(read.next())
    );
}

/// The rule the single watermark per range broke: a read of one key says
/// nothing about another.
#[test]
fn a_write_of_another_key_is_not_moved_by_a_read() {
    let mut lease = lease_at(1, 0);
    let read = lease.start.add_duration(Duration::from_secs(1));
    lease.record_reads(read, None, &[get(b"a")], None);
    let below = lease.start.next();
    assert_eq!(lease.write_timestamp(below, None, &[put(b"b")]), Ok(below));
    assert_eq!(lease.write_timestamp(below, TXN, &[put(b"b")]), Ok(below));
}

#[test]
fn a_batch_writes_above_the_reads_of_every_key_it_writes() {
    let mut lease = lease_at(1, 0);
    let read = lease.start.add_duration(Duration::from_secs(1));
    lease.record_reads(read, None, &[get(b"b")], None);
    let below = lease.start.next();
    assert_eq!(
        lease.write_timestamp(below, None, &[put(b"a"), put(b"b")]),
        Ok(read.next())
    );
    let delete_range = [span_request(b"a", b"c", true)];
    assert_eq!(
        lease.write_timestamp(below, None, &delete_range),
        Ok(read.next())
    );
}

/// Conditional puts read their key and delete-ranges their span; a scan
/// stopped by its row limit read only up to its resume key.
#[test]
fn every_kind_of_read_counts_and_only_what_it_read() {
    let start = lease_at(1, 0).start;
    let read = start.add_duration(Duration::from_secs(1));
    let below = start.next();
    let cput = Request::ConditionalPut {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        expected: None,
    };
    for (reads, written, moved) in [
        (vec![cput], &b"k"[..], true),
        (vec![span_request(b"a", b"c", true)], b"b", true),
        (vec![span_request(b"a", b"c", false)], b"b", true),
        (vec![span_request(b"a", b"c", false)], b"c", false),
        (vec![put(b"k")], b"k", false),
    ] {
        let mut lease = lease_at(1, 0);
        lease.record_reads(read, None, &reads, None);
        let expected = if moved { read.next() } else { below };
        assert_eq!(
            lease.write_timestamp(below, None, &[put(written)]),
            Ok(expected),
            "{written:?} after {reads:?}"
        );
    }
    let mut lease = lease_at(1, 0);
    let stopped = Response::Scan {
        rows: vec![(b"a".to_vec(), b"1".to_vec())],
        resume_key: Some(b"a\0".to_vec()),
    };
    lease.record_reads(
        read,
        None,
        &[span_request(b"a", b"c", false)],
        Some(&[stopped]),
    );
    assert_eq!(lease.write_timestamp(below, None, &[put(b"b")]), Ok(below));
    assert_eq!(
        lease.write_timestamp(below, None, &[put(b"a")]),
        Ok(read.next())
    );
}

#[test]
fn a_transactions_own_reads_never_push_its_writes() {
    let mut lease = lease_at(1, 0);
    let read = lease.start.add_duration(Duration::from_secs(1));
    lease.record_reads(read, TXN, &[get(b"k")], None);
    let below = lease.start.next();
    assert_eq!(lease.write_timestamp(below, TXN, &[put(b"k")]), Ok(below));
    assert_eq!(
        lease.write_timestamp(below, OTHER, &[put(b"k")]),
        Ok(read.next())
    );
    assert_eq!(
        lease.write_timestamp(below, None, &[put(b"k")]),
        Ok(read.next())
    );
}

/// A transaction's intents move above the floor (its coordinator follows
/// and refreshes); a one-phase commit cannot move (its commit would land
/// above reads nobody checked), so it is refused.
#[test]
fn a_transactional_write_below_the_floor_moves_a_one_phase_commit_is_refused() {
    let mut lease = lease_at(1, 1_000);
    let requested = ts(1_000);
    assert_eq!(
        lease.write_timestamp(requested, TXN, &[put(b"k")]),
        Ok(lease.start.next())
    );
    let commit = Request::EndTxn {
        key: b"k".to_vec(),
        commit: true,
        lock_spans: vec![(b"k".to_vec(), b"k\0".to_vec())],
        in_flight_writes: Vec::new(),
        one_phase: true,
    };
    assert_eq!(
        lease.write_timestamp(requested, TXN, &[put(b"k"), commit]),
        Err(KvError::WriteTooOld {
            requested,
            existing: lease.start,
        })
    );
}

#[test]
fn a_read_the_leaseholder_timed_looks_up_to_the_lease_start_a_snapshot_not_at_all() {
    let at = ts(1_000_000_000);
    let start = at.add_duration(Duration::from_millis(100));
    assert_eq!(uncertainty_limit(at, true, None, at, start), Some(start));
    assert_eq!(uncertainty_limit(at, false, None, at, start), None);
}

#[test]
fn a_read_above_the_lease_start_has_no_uncertainty_at_the_leaseholder() {
    let at = ts(1_000_000_000);
    assert_eq!(uncertainty_limit(at, true, None, at, ts(5)), None);
}

/// A transaction reads at its timestamp with an interval up to its first
/// timestamp plus `max_offset`, narrowed by what the leaseholder's clock
/// says on arrival.
#[test]
fn a_transaction_s_interval_is_its_global_limit_narrowed_by_the_arrival_clock() {
    let read = ts(1_000_000_000);
    let global = read.add_duration(OFFSET);
    let arrival = read.add_duration(Duration::from_millis(100));
    assert_eq!(
        uncertainty_limit(read, false, Some(global), arrival, ts(5)),
        Some(arrival),
        "narrowed to the clock on arrival"
    );
    let late = read.add_duration(Duration::from_secs(5));
    assert_eq!(
        uncertainty_limit(read, false, Some(global), late, ts(5)),
        Some(global),
        "never wider than the global limit"
    );
    assert_eq!(
        uncertainty_limit(global, false, Some(global), late, ts(5)),
        None,
        "restarted at its limit: nothing left uncertain"
    );
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

/// The HLC ran `max_offset` ahead of the physical clock, and a new
/// lease's start is `max_offset` ahead of that: the wait covers the
/// whole distance, not just `max_offset`.
#[test]
fn commit_wait_lasts_until_the_clock_passes_the_write_however_far_ahead() {
    let now = 10_000_000_000;
    assert_eq!(commit_wait(ts(now), now), None, "not ahead");
    assert_eq!(commit_wait(ts(now - 1), now), None, "behind");
    assert_eq!(
        commit_wait(ts(now + 1_000), now),
        Some(Duration::from_nanos(1_000))
    );
    let two_offsets_ahead = ts(now).add_duration(OFFSET).add_duration(OFFSET);
    assert_eq!(commit_wait(two_offsets_ahead, now), Some(OFFSET * 2));
}

#[test]
fn only_non_transactional_writes_move_above_a_newer_version() {
    assert!(may_move_write_above(false, false, 0));
    assert!(!may_move_write_above(true, false, 0));
    assert!(may_move_write_above(true, true, 0));
    assert!(!may_move_write_above(
        false,
        false,
        MAX_UNCERTAINTY_RESTARTS
    ));
    assert!(!may_move_write_above(true, true, MAX_UNCERTAINTY_RESTARTS));
}

#[test]
fn a_restarted_node_withholds_votes_for_one_lease() {
    let started = Instant::now();
    let lease = Duration::from_millis(700);
    assert_eq!(votes_withheld_until(started, true, lease), started + lease);
    assert_eq!(votes_withheld_until(started, false, lease), started);
}

#[test]
fn every_profile_outlasts_its_offset_bound_and_a_short_lease_is_refused() {
    let offset = meridian_hlc::DEFAULT_MAX_OFFSET;
    for timeouts in [RaftTimeouts::LAN, RaftTimeouts::WAN] {
        assert!(timeouts.check_lease_covers_offset(offset).is_ok());
    }
    assert!(RaftTimeouts::TEST
        .check_lease_covers_offset(RaftTimeouts::TEST_MAX_OFFSET)
        .is_ok());
    assert!(matches!(
        RaftTimeouts::TEST.check_lease_covers_offset(offset),
        Err(crate::error::StoreError::LeaseTooShort { .. })
    ));
}
