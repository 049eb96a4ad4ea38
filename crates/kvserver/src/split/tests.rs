//! The split's decisions and its apply step, on a real engine in a
//! temporary directory, without Raft or a cluster.

use std::collections::{BTreeMap, BTreeSet};

use meridian_hlc::Timestamp;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{NodeId, ReplicaDescriptor};
use meridian_storage::mvcc::mvcc_put;
use meridian_storage::{compute_stats, Engine, EngineOptions, MvccStats};

use super::apply::split_first_log_id;
use super::*;
use crate::raft::state_machine::AppliedState;
use crate::raft::types::{ReplicaNode, StoredMembership};

const RANGE: RangeId = 5;
const RIGHT: RangeId = 6;

fn key(s: &str) -> Vec<u8> {
    let mut k = vec![TABLE_PREFIX];
    k.extend_from_slice(s.as_bytes());
    k
}

fn span() -> (Vec<u8>, Vec<u8>) {
    (key("a"), key("z"))
}

fn membership(voters: &[NodeId], learners: &[NodeId]) -> openraft::Membership<NodeId, ReplicaNode> {
    let nodes: BTreeMap<NodeId, ReplicaNode> = voters
        .iter()
        .chain(learners)
        .map(|&n| (n, node(n)))
        .collect();
    openraft::Membership::new(vec![voters.iter().copied().collect()], nodes).unwrap()
}

/// The member record of a replica on node `n`.
fn node(n: NodeId) -> ReplicaNode {
    ReplicaNode {
        node_id: n,
        ..ReplicaNode::default()
    }
}

/// Voters whose replica ids equal their node ids.
fn members(ids: &[u64]) -> BTreeMap<u64, ReplicaNode> {
    ids.iter().map(|&n| (n, node(n))).collect()
}

/// An engine holding one version of each key in `keys`, and the applied
/// state of range [`RANGE`] over [`span`] with those keys' stats.
fn engine_with(keys: &[&str]) -> (tempfile::TempDir, Engine, AppliedState) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
    let mut batch = engine.batch();
    let mut stats = MvccStats::default();
    for k in keys {
        let ts = Timestamp::new(1_000, 0);
        mvcc_put(&mut batch, &key(k), ts, None, Some(b"value"), &mut stats).unwrap();
    }
    engine.commit(batch, false).unwrap();
    let applied = AppliedState {
        log_id: None,
        membership: StoredMembership::new(None, membership(&[1, 2, 3], &[])),
        stats,
        span: Some(span()),
        generation: 4,
        gc_threshold: Timestamp::new(500, 0),
        next_replica_id: 4,
        lease_floor: Timestamp::ZERO,
    };
    (dir, engine, applied)
}

fn command(split_key: Vec<u8>, evaluated_term: u64, entry_term: u64) -> SplitCommand {
    SplitCommand {
        split_key,
        right_range_id: RIGHT,
        evaluated_term,
        entry_term,
        lease_floor: Timestamp::new(5_000, 0),
    }
}

/// Applies `command` on `node`'s replica of `RANGE` and commits what it
/// wrote, as the state machine does.
fn apply(
    engine: &Engine,
    node: NodeId,
    next: &mut AppliedState,
    command: SplitCommand,
) -> SplitApply {
    let mut batch = engine.batch();
    let outcome = apply_split_command(engine, RANGE, node, &mut batch, next, command).unwrap();
    engine.commit(batch, false).unwrap();
    outcome
}

#[test]
fn only_keys_strictly_inside_the_span_split_it() {
    let span = span();
    assert!(key_splits_span(&span, &key("m")));
    assert!(!key_splits_span(&span, &key("a")), "the start: empty left");
    assert!(!key_splits_span(&span, &key("z")), "the end");
    assert!(!key_splits_span(&span, &key("0")), "before the range");
}

#[test]
fn the_meta_and_system_keys_never_split() {
    assert!(!splittable_key(b""));
    assert!(!splittable_key(&[0x01, b'a']));
    assert!(!splittable_key(&[TABLE_PREFIX - 1, 0xff]));
    assert!(splittable_key(&[TABLE_PREFIX]));
    assert!(splittable_key(&key("k")));
}

#[test]
fn splits_wait_for_joint_configurations_and_learners() {
    assert!(!membership_change_in_progress(&membership(&[1, 2, 3], &[])));
    assert!(membership_change_in_progress(&membership(&[1, 2, 3], &[4])));
    let nodes: BTreeMap<NodeId, ReplicaNode> =
        (1..=4).map(|n| (n, ReplicaNode::default())).collect();
    let joint = openraft::Membership::new(
        vec![BTreeSet::from([1, 2, 3]), BTreeSet::from([2, 3, 4])],
        nodes,
    )
    .unwrap();
    assert!(membership_change_in_progress(&joint));
}

#[test]
fn the_right_hand_side_takes_the_upper_span_and_the_voters() {
    let right = right_hand_descriptor(RIGHT, &key("m"), &key("z"), &members(&[3, 1]), 5);
    assert_eq!(
        right,
        RangeDescriptor {
            range_id: RIGHT,
            start_key: key("m"),
            end_key: key("z"),
            replicas: vec![ReplicaDescriptor::voter(1), ReplicaDescriptor::voter(3)],
            generation: 5,
        }
    );
}

#[test]
fn the_right_hand_side_keeps_the_parent_replica_ids() {
    let voters = BTreeMap::from([(7, node(1)), (12, node(3))]);
    let right = right_hand_descriptor(RIGHT, &key("m"), &key("z"), &voters, 5);
    let ids: Vec<(NodeId, u64)> = right
        .replicas
        .iter()
        .map(|r| (r.node_id, r.replica_id))
        .collect();
    assert_eq!(ids, vec![(1, 7), (3, 12)]);
}

#[test]
fn applying_a_split_shrinks_the_left_and_creates_the_right() {
    let (_dir, engine, mut next) = engine_with(&["b", "c", "m", "n", "x"]);
    let before = next.stats;
    let outcome = apply(&engine, 1, &mut next, command(key("m"), 7, 7));

    let expected_right =
        right_hand_descriptor(RIGHT, &key("m"), &key("z"), &members(&[1, 2, 3]), 5);
    let expected_left = next.descriptor(RANGE);
    assert_eq!(expected_left.end_key, key("m"));
    assert_eq!(
        outcome,
        SplitApply::Applied {
            open: Some(expected_right.clone()),
            left: expected_left,
            right: expected_right.clone(),
        }
    );
    // The left-hand side keeps [a, m), one generation later.
    assert_eq!(next.span, Some((key("a"), key("m"))));
    assert_eq!(next.generation, 5);
    // The statistics are divided between the two sides.
    let left_stats = compute_stats(&engine, &key("a"), &key("m")).unwrap();
    let right_stats = compute_stats(&engine, &key("m"), &key("z")).unwrap();
    assert_eq!(next.stats, left_stats);
    assert_eq!(left_stats.live_count, 2);
    assert_eq!(right_stats.live_count, 3);
    let mut sum = left_stats;
    sum.add(&right_stats);
    assert_eq!(sum, before);

    // The right-hand range's first records: its record, and an applied
    // state initialized with the right-hand stats and span.
    let record = engine
        .range_local(RIGHT, RangeLocalKind::Descriptor)
        .unwrap()
        .expect("replica record written");
    assert_eq!(
        crate::replica_record::ReplicaRecord::decode(&record)
            .unwrap()
            .descriptor,
        expected_right
    );
    let state = engine
        .range_local(RIGHT, RangeLocalKind::AppliedState)
        .unwrap()
        .expect("applied state written");
    let state: AppliedState = postcard::from_bytes(&state).unwrap();
    assert_eq!(state.stats, right_stats);
    assert_eq!(
        state.lease_floor,
        Timestamp::new(5_000, 0),
        "the new range's leases start above what the parent served"
    );
    assert_eq!(state.span, Some((key("m"), key("z"))));
    assert_eq!(state.generation, 5);
    assert_eq!(state.log_id, Some(split_first_log_id()));
    assert_eq!(
        state.gc_threshold, next.gc_threshold,
        "the right-hand side refuses the reads its parent refused"
    );
    assert_eq!(state.gc_threshold, Timestamp::new(500, 0));
    let voters: BTreeSet<NodeId> = state.membership.membership().voter_ids().collect();
    assert_eq!(voters, BTreeSet::from([1, 2, 3]));
}

#[test]
fn a_split_evaluated_in_another_term_is_skipped_unchanged() {
    let (_dir, engine, mut next) = engine_with(&["b", "m"]);
    let before = next.clone();
    let outcome = apply(&engine, 1, &mut next, command(key("m"), 6, 7));
    assert_eq!(outcome, SplitApply::Skipped);
    assert_eq!(next, before);
}

#[test]
fn a_split_key_no_longer_inside_the_range_is_skipped() {
    let (_dir, engine, mut next) = engine_with(&["b"]);
    next.span = Some((key("a"), key("k")));
    let outcome = apply(&engine, 1, &mut next, command(key("m"), 7, 7));
    assert_eq!(outcome, SplitApply::Skipped);
    assert_eq!(next.span, Some((key("a"), key("k"))));
}

#[test]
fn a_split_onto_the_ranges_own_id_is_skipped() {
    let (_dir, engine, mut next) = engine_with(&["b"]);
    let mut batch = engine.batch();
    let mut same_id = command(key("m"), 7, 7);
    same_id.right_range_id = RANGE;
    let outcome = apply_split_command(&engine, RANGE, 1, &mut batch, &mut next, same_id).unwrap();
    assert_eq!(outcome, SplitApply::Skipped);
}

#[test]
fn a_non_voter_drops_the_right_hand_keys_and_opens_nothing() {
    let (_dir, engine, mut next) = engine_with(&["b", "m", "n"]);
    next.membership = StoredMembership::new(None, membership(&[1, 2, 3], &[4]));
    let outcome = apply(&engine, 4, &mut next, command(key("m"), 7, 7));
    assert!(matches!(outcome, SplitApply::Applied { open: None, .. }));
    assert_eq!(next.span, Some((key("a"), key("m"))));
    let right = compute_stats(&engine, &key("m"), &key("z")).unwrap();
    assert_eq!(right.key_count, 0, "right-hand keys kept on a non-voter");
    assert!(
        !crate::replica_record::ReplicaRecord::exists(&engine, RIGHT).unwrap(),
        "a non-voter recorded a replica of the new range"
    );
}

#[test]
fn a_right_hand_range_already_here_is_not_created_again() {
    let (_dir, engine, mut next) = engine_with(&["b", "m"]);
    // The new range arrived by snapshot before this replica applied the split.
    let existing = right_hand_descriptor(RIGHT, &key("m"), &key("z"), &members(&[9]), 1);
    let mut batch = engine.batch();
    crate::replica_record::ReplicaRecord {
        descriptor: existing.clone(),
        replica_id: 9,
    }
    .put(&mut batch);
    engine.commit(batch, false).unwrap();

    let outcome = apply(&engine, 1, &mut next, command(key("m"), 7, 7));
    assert!(matches!(outcome, SplitApply::Applied { open: None, .. }));
    assert_eq!(
        next.span,
        Some((key("a"), key("m"))),
        "the left still shrinks"
    );
    let record = engine
        .range_local(RIGHT, RangeLocalKind::Descriptor)
        .unwrap()
        .unwrap();
    assert_eq!(
        crate::replica_record::ReplicaRecord::decode(&record)
            .unwrap()
            .descriptor,
        existing,
        "the existing record was overwritten"
    );
}
