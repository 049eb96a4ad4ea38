//! MVCC garbage collection on a replicated range (issue 9 item 7): versions
//! of a key updated for ever do not pile up, every replica removes the same
//! ones with exact statistics, and the GC threshold that refuses reads of
//! what was removed is replicated state: it survives restarts, splits and
//! snapshots.
//!
//! GC runs here through kvserver's entry point (`Store::gc_range`) with a
//! short ttl; the server's queue that decides when to call it has its own
//! unit tests, and a process test runs it with `--gc-ttl-secs`.

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::encode_intent_key;
use meridian_keys::space::prefix_end;
use meridian_kvapi::{BatchRequest, BatchResponse, KvError, RangeId, ReplicaKind, Request};
use meridian_kvserver::gc::GcOutcome;
use meridian_storage::{compute_stats, Engine, Reader};
use meridian_testkit::{ClusterConfig, NodeId, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

/// The ttl the tests collect with: short, so that versions written a
/// moment ago are already collectable.
const TTL: Duration = Duration::from_millis(50);

/// The versions (not intents) `engine` holds of `key`, counted record by
/// record rather than from statistics.
fn raw_versions(engine: &Engine, key: &[u8]) -> usize {
    let prefix = encode_intent_key(key);
    let upper = prefix_end(&prefix).expect("intent keys end in 0x01");
    let mut cursor = engine.cursor(Some(&prefix), Some(&upper));
    cursor.seek(&prefix);
    let mut versions = 0;
    while cursor.valid() {
        if cursor.key().len() > prefix.len() {
            versions += 1;
        }
        cursor.next();
    }
    cursor.status().unwrap();
    versions
}

/// Runs GC of `range_id` at its leaseholder, retrying while the lease moves.
async fn gc(cluster: &TestCluster, range_id: RangeId, ttl: Duration) -> GcOutcome {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let leader = cluster.wait_for_leader(range_id, WAIT).await.unwrap();
        match cluster.store(leader).unwrap().gc_range(range_id, ttl).await {
            Ok(outcome) => return outcome,
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("GC of range {range_id} failed: {e}"),
        }
    }
}

/// Sends `requests` at `timestamp` to the leaseholder of `range_id`,
/// retrying while the lease moves.
async fn send_at(
    cluster: &TestCluster,
    range_id: RangeId,
    timestamp: Option<Timestamp>,
    requests: Vec<Request>,
) -> Result<BatchResponse, KvError> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let leader = cluster.wait_for_leader(range_id, WAIT).await.unwrap();
        let batch = BatchRequest {
            range_id,
            timestamp,
            txn: None,
            requests: requests.clone(),
        };
        match cluster.store(leader).unwrap().send(batch).await {
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            other => return other,
        }
    }
}

fn get(key: &[u8]) -> Vec<Request> {
    vec![Request::Get { key: key.to_vec() }]
}

/// Asserts that a read of `key` at `at` in `range_id` is refused with
/// `BelowGcThreshold` naming `threshold`.
async fn assert_refused_below(
    cluster: &TestCluster,
    range_id: RangeId,
    key: &[u8],
    at: Timestamp,
    threshold: Timestamp,
) {
    match send_at(cluster, range_id, Some(at), get(key)).await {
        Err(
            e @ KvError::BelowGcThreshold {
                range_id: r,
                timestamp,
                threshold: t,
            },
        ) => {
            assert_eq!((r, timestamp, t), (range_id, at, threshold), "{e}");
            assert!(!e.is_retryable());
        }
        other => {
            panic!("a read at {at}, below the threshold {threshold}, was not refused: {other:?}")
        }
    }
}

/// Waits until every node of `nodes` applied what the leader of `range_id`
/// has, then checks that each replica's statistics equal a recount of its
/// data.
async fn assert_replicas_agree_and_stats_exact(
    cluster: &TestCluster,
    range_id: RangeId,
    nodes: &[NodeId],
) {
    let leader = cluster.wait_for_leader(range_id, WAIT).await.unwrap();
    let target = cluster
        .store(leader)
        .unwrap()
        .replica(range_id)
        .unwrap()
        .applied_index();
    cluster
        .wait_for("every replica to apply the GC", WAIT, || async {
            nodes
                .iter()
                .all(|&n| {
                    cluster
                        .store(n)
                        .ok()
                        .and_then(|s| s.replica(range_id))
                        .is_some_and(|r| r.applied_index() >= target)
                })
                .then_some(())
        })
        .await
        .unwrap();
    for &n in nodes {
        let replica = cluster.store(n).unwrap().replica(range_id).unwrap();
        let span = replica.span();
        let engine = &cluster.node(n).unwrap().engine;
        assert_eq!(
            replica.stats(),
            compute_stats(engine, &span.0, &span.1).unwrap(),
            "node {n}: range {range_id}'s statistics differ from a recount"
        );
    }
}

/// Waits until every node's clock has passed `ts + TTL`: then a GC with
/// `TTL`, wherever the lease is, collects everything written at or before
/// `ts`.
async fn wait_until_older_than_ttl(cluster: &TestCluster, ts: Timestamp) {
    cluster
        .wait_for("the writes to age past the ttl", WAIT, || async {
            cluster
                .node_ids()
                .into_iter()
                .filter_map(|n| cluster.node(n).ok())
                .all(|node| node.clock.now().sub_duration(TTL) > ts)
                .then_some(())
        })
        .await
        .unwrap();
}

/// The newest timestamp any running node's clock has given out: at or
/// above every write acknowledged so far.
fn latest(cluster: &TestCluster) -> Timestamp {
    cluster
        .node_ids()
        .into_iter()
        .filter_map(|n| cluster.node(n).ok().map(|node| node.clock.now()))
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_of_a_key_updated_many_times_are_collected_with_exact_stats() {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    cluster.wait_for_leader(1, WAIT).await.unwrap();
    cluster.put(1, b"live", b"once").await.unwrap();

    let mut version_counts = Vec::new();
    let mut last_threshold = Timestamp::ZERO;
    for round in 0..3 {
        let before_round = latest(&cluster);
        for i in 0..150 {
            cluster
                .put(1, b"k", format!("r{round}-{i}").as_bytes())
                .await
                .unwrap();
        }
        // A key deleted in this round: its tombstone and value go too.
        cluster.put(1, b"gone", b"x").await.unwrap();
        cluster
            .send(
                1,
                vec![Request::Delete {
                    key: b"gone".to_vec(),
                }],
                WAIT,
            )
            .await
            .unwrap();
        let written = latest(&cluster);
        for n in 1..=3 {
            let engine = &cluster.node(n).unwrap().engine;
            cluster
                .wait_for("the round's writes on every node", WAIT, || async {
                    (raw_versions(engine, b"k") >= 150).then_some(())
                })
                .await
                .unwrap();
        }

        wait_until_older_than_ttl(&cluster, written).await;
        // Writes to other keys while GC runs: the latch keeps them apart,
        // and the statistics must stay exact anyway.
        let writer = async {
            for i in 0..20 {
                cluster
                    .put(1, format!("w{}", i % 5).as_bytes(), b"concurrent")
                    .await
                    .unwrap();
            }
        };
        let (outcome, ()) = tokio::join!(gc(&cluster, 1, TTL), writer);
        assert!(outcome.removed >= 150, "round {round}: {outcome:?}");
        assert!(outcome.threshold > written, "round {round}: {outcome:?}");
        assert!(outcome.threshold > last_threshold, "the threshold moves up");
        last_threshold = outcome.threshold;

        assert_replicas_agree_and_stats_exact(&cluster, 1, &[1, 2, 3]).await;
        for n in 1..=3 {
            let engine = &cluster.node(n).unwrap().engine;
            assert_eq!(raw_versions(engine, b"k"), 1, "node {n}, round {round}");
            assert_eq!(raw_versions(engine, b"gone"), 0, "node {n}, round {round}");
            let replica = cluster.store(n).unwrap().replica(1).unwrap();
            assert_eq!(replica.gc_threshold(), outcome.threshold);
        }
        let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
        version_counts.push(
            cluster
                .store(leader)
                .unwrap()
                .replica(1)
                .unwrap()
                .stats()
                .version_count,
        );

        // The latest value is there; history older than the threshold is
        // refused, not answered wrongly.
        assert_eq!(
            cluster.get(1, b"k").await.unwrap().as_deref(),
            Some(format!("r{round}-149").as_bytes())
        );
        // A read exactly at the threshold would still be right (GC keeps
        // the newest version at or below it) but is refused too: one rule.
        assert_refused_below(&cluster, 1, b"k", before_round, outcome.threshold).await;
        assert_refused_below(&cluster, 1, b"k", outcome.threshold, outcome.threshold).await;
        // A write asking for an old timestamp never changes the history
        // below the threshold: the leaseholder moves a non-transactional
        // one above what it served (evaluation would refuse it at or below
        // the threshold, see eval's tests).
        let old_write = send_at(
            &cluster,
            1,
            Some(before_round),
            vec![Request::Put {
                key: b"k".to_vec(),
                value: b"rewritten".to_vec(),
            }],
        )
        .await;
        match old_write {
            Ok(written) => assert!(written.timestamp > outcome.threshold, "{written:?}"),
            Err(KvError::BelowGcThreshold { .. }) => {}
            Err(e) => panic!("a write at an old timestamp: {e}"),
        }
    }
    // Each round wrote over 150 versions; what stays is one version of
    // `live` and `k`, one of each of the five concurrently written keys
    // from earlier rounds, and at most the 20 versions written while this
    // round's GC ran: bounded, however many rounds run.
    assert!(
        version_counts.iter().all(|&v| v <= 2 + 5 + 20),
        "versions kept after each round: {version_counts:?}"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gc_threshold_survives_restarts_splits_and_snapshots() {
    let mut cluster = TestCluster::start(ClusterConfig::new(4)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    cluster.wait_for_leader(1, WAIT).await.unwrap();
    let before = latest(&cluster);
    // More garbage than one GC command takes (1 MiB), spread over keys on
    // both sides of the split to come.
    let big = vec![b'x'; 16 << 10];
    for key in [&b"c"[..], b"d", b"e", b"f", b"p", b"q", b"r", b"s"] {
        for _ in 0..12 {
            cluster.put(1, key, &big).await.unwrap();
        }
    }
    let written = latest(&cluster);
    wait_until_older_than_ttl(&cluster, written).await;
    let outcome = gc(&cluster, 1, TTL).await;
    assert!(
        outcome.commands >= 2,
        "one bounded pass at a time: {outcome:?}"
    );
    assert_eq!(outcome.removed, 8 * 11);
    let threshold = outcome.threshold;
    assert_replicas_agree_and_stats_exact(&cluster, 1, &[1, 2, 3]).await;

    // A split: the right-hand side refuses what its parent refused.
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    cluster
        .store(leader)
        .unwrap()
        .split_range(1, b"m", 2)
        .await
        .unwrap();
    cluster
        .wait_for("range 2 on every replica", WAIT, || async {
            (1..=3)
                .all(|n| cluster.store(n).unwrap().replica(2).is_some())
                .then_some(())
        })
        .await
        .unwrap();
    for n in 1..=3 {
        let right = cluster.store(n).unwrap().replica(2).unwrap();
        assert_eq!(right.gc_threshold(), threshold, "node {n}");
    }
    assert_refused_below(&cluster, 2, b"p", before, threshold).await;
    assert_eq!(
        cluster.get(2, b"p").await.unwrap().as_deref(),
        Some(&big[..])
    );

    // A snapshot: node 4 joins range 1 after its log was truncated.
    for n in 1..=3 {
        cluster.snapshot_and_truncate(n, 1).await.unwrap();
    }
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    cluster
        .store(leader)
        .unwrap()
        .add_replica(1, 4, ReplicaKind::NonVoter)
        .await
        .unwrap();
    cluster
        .wait_for("node 4 to install the snapshot", WAIT, || async {
            let replica = cluster.store(4).ok()?.replica(1)?;
            replica.raft_status().snapshot_index?;
            (replica.gc_threshold() == threshold).then_some(())
        })
        .await
        .unwrap();
    assert_replicas_agree_and_stats_exact(&cluster, 1, &[1, 2, 3, 4]).await;
    assert_eq!(raw_versions(&cluster.node(4).unwrap().engine, b"c"), 1);

    // Restarts: the whole group goes down and comes back.
    for n in 1..=4 {
        cluster.kill(n).await.unwrap();
    }
    for n in 1..=4 {
        cluster.restart(n).await.unwrap();
    }
    for (range, key) in [(1, &b"c"[..]), (2, b"p")] {
        assert_refused_below(&cluster, range, key, before, threshold).await;
    }
    for n in 1..=3 {
        for range in [1, 2] {
            let replica = cluster.store(n).unwrap().replica(range).unwrap();
            assert_eq!(replica.gc_threshold(), threshold);
        }
    }
    cluster.shutdown().await;
}

/// The server's GC queue, one pass at a time on a real range: a range with
/// garbage is collected once its versions are older than the ttl, not
/// again until half the ttl passed since (read off the replicated
/// threshold), and then again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gc_queue_collects_when_due_and_not_in_between() {
    const QUEUE_TTL: Duration = Duration::from_secs(1);
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    cluster.wait_for_leader(1, WAIT).await.unwrap();
    // One pass at the leaseholder, as the scheduler runs it.
    let pass = || async {
        let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
        let node = cluster.node(leader).unwrap();
        let replica = node.store.replica(1).unwrap();
        meridian_server::mvcc_gc_queue::maybe_collect(&node.store, &replica, &node.clock, QUEUE_TTL)
            .await
            .unwrap()
    };
    let versions_on_leader = || {
        let leader = cluster.leader(1).unwrap();
        raw_versions(&cluster.node(leader).unwrap().engine, b"k")
    };

    for i in 0..40 {
        cluster
            .put(1, b"k", format!("v{i}").as_bytes())
            .await
            .unwrap();
    }
    // Never collected and with garbage: the first pass collects, whatever
    // it finds old enough; polling passes until the versions aged past the
    // ttl is what the scheduler does once a second.
    let first = pass().await.expect("a range never collected is due");
    cluster
        .wait_for("the queue to collect the aged versions", WAIT, || async {
            pass().await;
            (versions_on_leader() == 1).then_some(())
        })
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let threshold = cluster
        .store(leader)
        .unwrap()
        .replica(1)
        .unwrap()
        .gc_threshold();
    assert!(
        threshold > first.threshold,
        "collected again after the first pass"
    );

    // New garbage right after a collection: not due until half the ttl
    // passed since it (the queue reads that off the threshold).
    for i in 0..10 {
        cluster
            .put(1, b"k", format!("w{i}").as_bytes())
            .await
            .unwrap();
    }
    let since_last = |now: Timestamp| {
        now.sub_duration(QUEUE_TTL)
            .wall_nanos
            .saturating_sub(threshold.wall_nanos)
    };
    let before = since_last(cluster.node(leader).unwrap().clock.now());
    let early = pass().await;
    // A machine slow enough to take 400 ms for ten writes cannot check this.
    if before < 400_000_000 {
        assert_eq!(early, None, "collected again {before} ns after the last GC");
        assert!(versions_on_leader() > 1);
    }
    // Half the ttl later and once the new versions aged: collected again.
    cluster
        .wait_for("the queue to collect the new garbage", WAIT, || async {
            pass().await;
            (versions_on_leader() == 1).then_some(())
        })
        .await
        .unwrap();
    assert_replicas_agree_and_stats_exact(&cluster, 1, &[1, 2, 3]).await;
    cluster.shutdown().await;
}
