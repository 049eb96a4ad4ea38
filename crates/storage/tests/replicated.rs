//! Write sets and range data: what replication moves between replicas.

use meridian_hlc::Timestamp;
use meridian_keys::RangeLocalKind;
use meridian_storage::mvcc::{mvcc_get, mvcc_put, mvcc_scan, ReadOptions, ScanOptions};
use meridian_storage::{compute_stats, Engine, EngineOptions, MvccStats};

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), &EngineOptions::default()).unwrap();
    (dir, engine)
}

fn put(engine: &Engine, key: &str, ts: u64) {
    let mut batch = engine.batch();
    let mut stats = MvccStats::default();
    mvcc_put(
        &mut batch,
        key.as_bytes(),
        Timestamp::new(ts, 0),
        None,
        Some(key.as_bytes()),
        &mut stats,
    )
    .unwrap();
    engine.commit(batch, false).unwrap();
}

#[test]
fn a_write_set_applied_elsewhere_reproduces_the_writes() {
    let (_a, leader) = engine();
    let (_b, follower) = engine();
    let mut batch = leader.batch();
    let mut stats = MvccStats::default();
    for key in ["a", "b", "c"] {
        mvcc_put(
            &mut batch,
            key.as_bytes(),
            Timestamp::new(5, 0),
            None,
            Some(b"v"),
            &mut stats,
        )
        .unwrap();
    }
    let set = batch.into_write_set();
    assert_eq!(set.writes.len(), 3);
    let mut apply = follower.batch();
    apply.apply_write_set(&set);
    follower.commit(apply, true).unwrap();
    assert_eq!(compute_stats(&follower, b"", b"z").unwrap(), stats);
    let got = mvcc_get(
        &follower,
        b"b",
        Timestamp::new(6, 0),
        &ReadOptions::default(),
    )
    .unwrap();
    assert_eq!(got.unwrap().value, b"v");
}

#[test]
fn range_data_exports_the_whole_span_and_installs_over_old_state() {
    let (_a, source) = engine();
    for (i, key) in ["r1/a", "r1/b", "r1/c", "r2/a"].iter().enumerate() {
        put(&source, key, 10 + i as u64);
    }
    let mut batch = source.batch();
    batch.put_range_local(1, RangeLocalKind::AppliedState, b"applied");
    batch.put_range_local(2, RangeLocalKind::AppliedState, b"other range");
    source.commit(batch, false).unwrap();

    let data = source.export_range_data(1, b"r1/", b"r1/\xff").unwrap();
    assert_eq!(
        data.data.len(),
        3,
        "every key of the span, none outside: {data:?}"
    );
    assert_eq!(
        data.local,
        vec![(RangeLocalKind::AppliedState, b"applied".to_vec())]
    );

    // The target has stale data of the same range and data of another.
    let (_b, target) = engine();
    put(&target, "r1/stale", 1);
    put(&target, "r2/keep", 1);
    let mut batch = target.batch();
    batch.install_range_data(1, b"r1/", b"r1/\xff", &data);
    target.commit(batch, true).unwrap();

    let rows = mvcc_scan(
        &target,
        b"r",
        b"s",
        Timestamp::MAX,
        &ReadOptions::default(),
        ScanOptions::default(),
    )
    .unwrap();
    let keys: Vec<_> = rows
        .rows
        .iter()
        .map(|(k, _)| String::from_utf8(k.clone()).unwrap())
        .collect();
    assert_eq!(keys, ["r1/a", "r1/b", "r1/c", "r2/keep"]);
    assert_eq!(
        target
            .range_local(1, RangeLocalKind::AppliedState)
            .unwrap()
            .unwrap(),
        b"applied"
    );
}
