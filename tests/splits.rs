//! Splits at the Store level: every replica applies them; a replica added
//! to the new range afterwards gets the range's data by snapshot.

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_kvapi::ReplicaKind;
use meridian_storage::mvcc::{mvcc_get, ReadOptions};
use meridian_testkit::{ClusterConfig, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

fn key(i: u32) -> Vec<u8> {
    format!("s/{i:05}").into_bytes()
}

/// Splits `range_id` at `at` through its leaseholder, retrying while the
/// lease moves (as the DistSender would).
async fn split(
    cluster: &TestCluster,
    range_id: u64,
    at: &[u8],
    right: u64,
) -> (
    meridian_kvapi::RangeDescriptor,
    meridian_kvapi::RangeDescriptor,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let leader = cluster.wait_for_leader(range_id, WAIT).await.unwrap();
        match cluster
            .store(leader)
            .unwrap()
            .split_range(range_id, at, right)
            .await
        {
            Ok(sides) => return sides,
            Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("split of range {range_id} failed: {e}"),
        }
    }
}

fn local_value(cluster: &TestCluster, node: u64, key: &[u8]) -> Option<Vec<u8>> {
    let engine = &cluster.node(node).unwrap().engine;
    mvcc_get(engine, key, Timestamp::MAX, &ReadOptions::default())
        .unwrap()
        .map(|v| v.value)
}

/// Four nodes, range 1 `[s/, s0)` on nodes 1 to 3 holding rows 0 to 199
/// ("before"); the cluster and range 1's leader.
async fn four_nodes_with_200_rows() -> (TestCluster, u64) {
    let cluster = TestCluster::start(ClusterConfig::new(4)).await.unwrap();
    cluster
        .create_range(1, b"s/", b"s0", &[1, 2, 3])
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    for i in 0..200 {
        cluster.put(1, &key(i), b"before").await.unwrap();
    }
    (cluster, leader)
}

/// Waits until nodes 1 to 3 opened range 2 and it has a leader; the
/// leader.
async fn range_2_opened_with_a_leader(cluster: &TestCluster) -> u64 {
    cluster
        .wait_for("range 2 on every replica", WAIT, || async {
            [1, 2, 3]
                .iter()
                .all(|&n| cluster.store(n).unwrap().replica(2).is_some())
                .then_some(())
        })
        .await
        .unwrap();
    cluster.wait_for_leader(2, WAIT).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_added_after_a_split_receives_the_data_from_before_it() {
    let (cluster, leader) = four_nodes_with_200_rows().await;

    let split_key = key(100);
    let (left, right) = split(&cluster, 1, &split_key, 2).await;
    assert_eq!(left.end_key, split_key);
    assert_eq!(right.start_key, split_key);
    assert_eq!(right.generation, left.generation);

    // Every replica opens the new range.
    let right_leader = range_2_opened_with_a_leader(&cluster).await;
    // Requests for the right-hand keys are refused by the left range.
    let refused = cluster
        .store(leader)
        .unwrap()
        .send(meridian_kvapi::BatchRequest {
            range_id: 1,
            timestamp: None,
            txn: None,
            requests: vec![meridian_kvapi::Request::Get { key: key(150) }],
        })
        .await;
    assert!(
        matches!(
            refused,
            Err(meridian_kvapi::KvError::RangeKeyMismatch { .. })
        ),
        "{refused:?}"
    );
    cluster.put(2, &key(150), b"after").await.unwrap();
    assert_eq!(
        cluster.get(1, &key(50)).await.unwrap().as_deref(),
        Some(&b"before"[..])
    );

    // Node 4 joins the right-hand range: it must get the pre-split rows.
    cluster
        .store(right_leader)
        .unwrap()
        .add_replica(2, 4, ReplicaKind::Voter)
        .await
        .unwrap();
    cluster
        .wait_for("node 4 has the pre-split rows", WAIT, || async {
            (local_value(&cluster, 4, &key(199)).as_deref() == Some(&b"before"[..])
                && local_value(&cluster, 4, &key(150)).as_deref() == Some(&b"after"[..]))
            .then_some(())
        })
        .await
        .unwrap();
    for i in 100..200 {
        assert!(
            local_value(&cluster, 4, &key(i)).is_some(),
            "row {i} missing on node 4"
        );
    }
    // And none of the left-hand rows.
    assert!(local_value(&cluster, 4, &key(0)).is_none());
    // The right-hand side's statistics add up with the left's to the rows.
    let right = cluster.store(4).unwrap().replica(2).unwrap().stats();
    let left = cluster.store(leader).unwrap().replica(1).unwrap().stats();
    assert_eq!(left.live_count, 100);
    assert_eq!(right.live_count, 100);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_node_reopens_ranges_created_by_splits() {
    let mut cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"s/", b"s0", &[1, 2, 3])
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    for i in 0..50 {
        cluster.put(1, &key(i), b"v").await.unwrap();
    }
    for (n, at) in [(2u64, 10u32), (3, 20), (4, 30)] {
        split(&cluster, n - 1, &key(at), n).await;
    }
    let victim = if leader == 3 { 2 } else { 3 };
    cluster
        .wait_for("all ranges on the victim", WAIT, || async {
            (1..=4)
                .all(|r| cluster.store(victim).unwrap().replica(r).is_some())
                .then_some(())
        })
        .await
        .unwrap();
    cluster.kill(victim).await.unwrap();
    cluster.restart(victim).await.unwrap();
    for r in 1..=4u64 {
        let replica = cluster.store(victim).unwrap().replica(r).expect("reopened");
        let span = replica.span();
        let expected_start = if r == 1 {
            b"s/".to_vec()
        } else {
            key([0, 0, 10, 20, 30][r as usize])
        };
        assert_eq!(span.0, expected_start, "range {r}");
    }
    for i in 0..50 {
        let range = match i {
            0..=9 => 1,
            10..=19 => 2,
            20..=29 => 3,
            _ => 4,
        };
        cluster.wait_for_leader(range, WAIT).await.unwrap();
        assert_eq!(
            cluster.get(range, &key(i)).await.unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
    cluster.shutdown().await;
}

/// A snapshot of the left-hand range built before the split covers the
/// right-hand range's keys too. Sent later to a node that meanwhile got the
/// right-hand range, it must not replace that range's newer data there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_from_before_a_split_never_overwrites_the_right_hand_range() {
    let (cluster, leader) = four_nodes_with_200_rows().await;
    // The leader keeps a snapshot of the whole span, and a node joining
    // later can only catch up from a snapshot.
    cluster.snapshot_and_truncate(leader, 1).await.unwrap();

    split(&cluster, 1, &key(100), 2).await;
    let right_leader = range_2_opened_with_a_leader(&cluster).await;
    cluster.put(2, &key(150), b"after").await.unwrap();
    cluster
        .store(right_leader)
        .unwrap()
        .add_replica(2, 4, ReplicaKind::Voter)
        .await
        .unwrap();
    cluster
        .wait_for("node 4 has the right-hand range's write", WAIT, || async {
            (local_value(&cluster, 4, &key(150)).as_deref() == Some(&b"after"[..])).then_some(())
        })
        .await
        .unwrap();

    // Now node 4 joins the left-hand range too.
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let leader_store = cluster.store(leader).unwrap();
    leader_store
        .add_replica(1, 4, ReplicaKind::Voter)
        .await
        .unwrap();
    let leader_applied = leader_store.replica(1).unwrap().applied_index();
    cluster
        .wait_for("node 4 caught up on range 1", WAIT, || async {
            cluster
                .store(4)
                .unwrap()
                .replica(1)
                .filter(|r| r.applied_index() >= leader_applied)
                .map(|_| ())
        })
        .await
        .unwrap();
    cluster
        .check_replica_consistency(WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        local_value(&cluster, 4, &key(150)).as_deref(),
        Some(&b"after"[..]),
        "node 4's copy of range 2 lost a write"
    );
    for i in 0..200 {
        assert!(
            local_value(&cluster, 4, &key(i)).is_some(),
            "row {i} missing on node 4"
        );
    }
    let left = cluster.store(4).unwrap().replica(1).unwrap();
    assert_eq!(left.span().1, key(100));
    cluster.shutdown().await;
}
