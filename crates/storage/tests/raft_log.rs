//! Raft log primitives per range: append, read, truncate, purge, state.

use meridian_keys::RangeLocalKind;
use meridian_storage::raft_log::RaftStateKind;
use meridian_storage::{Engine, EngineOptions};

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
    (dir, engine)
}

fn append(engine: &Engine, range_id: u64, indexes: std::ops::RangeInclusive<u64>) {
    let mut batch = engine.batch();
    for i in indexes {
        batch.put_log_entry(range_id, i, format!("r{range_id}e{i}").as_bytes());
    }
    engine.commit(batch, true).unwrap();
}

fn indexes(engine: &Engine, range_id: u64, lo: u64, hi: u64) -> Vec<u64> {
    engine
        .log_entries(range_id, lo, hi)
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn ranges_have_separate_logs() {
    let (_dir, engine) = engine();
    append(&engine, 1, 1..=10);
    append(&engine, 2, 5..=7);
    append(&engine, u64::MAX, 1..=2);
    assert_eq!(indexes(&engine, 1, 0, 100), (1..=10).collect::<Vec<_>>());
    assert_eq!(indexes(&engine, 2, 0, 100), vec![5, 6, 7]);
    assert_eq!(indexes(&engine, 1, 3, 6), vec![3, 4, 5]);
    assert_eq!(
        engine.log_entries(2, 6, 7).unwrap(),
        vec![(6, b"r2e6".to_vec())]
    );
    assert_eq!(engine.log_bounds(1).unwrap(), Some((1, 10)));
    assert_eq!(engine.log_bounds(2).unwrap(), Some((5, 7)));
    assert_eq!(engine.log_bounds(u64::MAX).unwrap(), Some((1, 2)));
    assert_eq!(engine.log_bounds(3).unwrap(), None);
}

#[test]
fn truncate_suffix_and_purge_prefix() {
    let (_dir, engine) = engine();
    append(&engine, 1, 1..=10);
    append(&engine, 2, 1..=10);
    let mut batch = engine.batch();
    batch.truncate_log_from(1, 8);
    batch.purge_log_upto(1, 3);
    engine.commit(batch, true).unwrap();
    assert_eq!(indexes(&engine, 1, 0, 100), vec![4, 5, 6, 7]);
    assert_eq!(
        indexes(&engine, 2, 0, 100).len(),
        10,
        "other ranges untouched"
    );
    // Overwrite a suffix, as a follower does when the leader's log differs.
    append(&engine, 1, 6..=9);
    assert_eq!(engine.log_bounds(1).unwrap(), Some((4, 9)));
    let mut batch = engine.batch();
    batch.clear_raft(1);
    engine.commit(batch, true).unwrap();
    assert_eq!(engine.log_bounds(1).unwrap(), None);
    assert_eq!(engine.log_bounds(2).unwrap(), Some((1, 10)));
}

#[test]
fn raft_state_and_range_local_records() {
    let (dir, engine) = engine();
    let mut batch = engine.batch();
    batch.put_raft_state(7, RaftStateKind::Vote, b"term 3 voted 2");
    batch.put_raft_state(8, RaftStateKind::Vote, b"term 1");
    batch.put_range_local(7, RangeLocalKind::AppliedState, b"applied 12");
    batch.put_range_local(8, RangeLocalKind::Descriptor, b"descriptor");
    engine.commit(batch, true).unwrap();
    drop(engine);

    let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
    assert_eq!(
        engine
            .raft_state(7, RaftStateKind::Vote)
            .unwrap()
            .as_deref(),
        Some(&b"term 3 voted 2"[..])
    );
    assert_eq!(
        engine.raft_state(7, RaftStateKind::Committed).unwrap(),
        None
    );
    assert_eq!(
        engine
            .range_local(7, RangeLocalKind::AppliedState)
            .unwrap()
            .as_deref(),
        Some(&b"applied 12"[..])
    );

    let mut batch = engine.batch();
    batch.clear_raft(7);
    batch.clear_range_local(7);
    engine.commit(batch, true).unwrap();
    assert_eq!(engine.raft_state(7, RaftStateKind::Vote).unwrap(), None);
    assert_eq!(
        engine.range_local(7, RangeLocalKind::AppliedState).unwrap(),
        None
    );
    assert!(engine.raft_state(8, RaftStateKind::Vote).unwrap().is_some());
    assert!(engine
        .range_local(8, RangeLocalKind::Descriptor)
        .unwrap()
        .is_some());
}
