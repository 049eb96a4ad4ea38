//! Raft per range on a real 3-node cluster (testkit: real RocksDB, real
//! QUIC on loopback): many ranges, leaseholder reads, failover, catch-up,
//! non-voters, leadership transfer, and leases under partition.

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, KvError, ReplicaKind, Request};
use meridian_storage::mvcc::{mvcc_get, ReadOptions};
use meridian_testkit::{ClusterConfig, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

fn range_span(range_id: u64) -> (Vec<u8>, Vec<u8>) {
    (
        format!("r{range_id:03}/").into_bytes(),
        format!("r{range_id:03}0").into_bytes(),
    )
}

fn key(range_id: u64, i: u32) -> Vec<u8> {
    format!("r{range_id:03}/k{i:05}").into_bytes()
}

/// What node `node`'s own engine holds for `key` (no lease, no Raft): shows
/// that a replica has the data, not only that the leaseholder serves it.
fn local_value(cluster: &TestCluster, node: u64, key: &[u8]) -> Option<Vec<u8>> {
    let engine = &cluster.node(node).unwrap().engine;
    mvcc_get(engine, key, Timestamp::MAX, &ReadOptions::default())
        .unwrap()
        .map(|v| v.value)
}

async fn three_nodes_with_range(range_id: u64) -> TestCluster {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    let (start, end) = range_span(range_id);
    cluster
        .create_range(range_id, &start, &end, &[1, 2, 3])
        .await
        .unwrap();
    cluster.wait_for_leader(range_id, WAIT).await.unwrap();
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_ranges_replicate_writes_and_serve_reads_at_the_leaseholder() {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    for range_id in 1..=50 {
        let (start, end) = range_span(range_id);
        cluster
            .create_range(range_id, &start, &end, &[1, 2, 3])
            .await
            .unwrap();
    }
    for range_id in 1..=50 {
        cluster.wait_for_leader(range_id, WAIT).await.unwrap();
        for i in 0..3 {
            cluster
                .put(range_id, &key(range_id, i), format!("v{i}").as_bytes())
                .await
                .unwrap();
        }
    }
    for range_id in 1..=50 {
        for i in 0..3 {
            let got = cluster.get(range_id, &key(range_id, i)).await.unwrap();
            assert_eq!(
                got,
                Some(format!("v{i}").into_bytes()),
                "range {range_id} key {i}"
            );
        }
    }
    // Every replica applied every write.
    for range_id in [1, 25, 50] {
        for node in 1..=3 {
            let k = key(range_id, 2);
            cluster
                .wait_for("replica to apply", WAIT, || async {
                    local_value(&cluster, node, &k)
                })
                .await
                .unwrap();
        }
    }
    // A follower refuses to serve and names the leaseholder.
    let leader = cluster.leader(7).unwrap();
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let request = BatchRequest {
        range_id: 7,
        timestamp: None,
        txn: None,
        requests: vec![Request::Get { key: key(7, 0) }],
    };
    match cluster.store(follower).unwrap().send(request).await {
        Err(KvError::NotLeaseholder { leaseholder, .. }) => {
            assert_eq!(leaseholder.map(|r| r.node_id), Some(leader))
        }
        other => panic!("follower answered {other:?}"),
    }
    // Keys outside a range are refused with the range's descriptor.
    let request = BatchRequest {
        range_id: 7,
        timestamp: None,
        txn: None,
        requests: vec![Request::Get { key: key(8, 0) }],
    };
    match cluster.store(leader).unwrap().send(request).await {
        Err(KvError::RangeKeyMismatch { descriptor, .. }) => {
            assert_eq!(descriptor.unwrap().range_id, 7)
        }
        other => panic!("out-of-range key answered {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_leader_is_replaced_and_catches_up_on_restart() {
    let mut cluster = three_nodes_with_range(1).await;
    for i in 0..20 {
        cluster.put(1, &key(1, i), b"before").await.unwrap();
    }
    let old_leader = cluster.leader(1).unwrap();
    cluster.kill(old_leader).await.unwrap();

    let new_leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    assert_ne!(new_leader, old_leader);
    for i in 0..20 {
        assert_eq!(
            cluster.get(1, &key(1, i)).await.unwrap(),
            Some(b"before".to_vec())
        );
    }
    for i in 20..40 {
        cluster.put(1, &key(1, i), b"after").await.unwrap();
    }

    cluster.restart(old_leader).await.unwrap();
    let last = key(1, 39);
    cluster
        .wait_for("restarted node to catch up by log", WAIT, || async {
            local_value(&cluster, old_leader, &last)
        })
        .await
        .unwrap();
    for i in 0..40 {
        assert!(
            local_value(&cluster, old_leader, &key(1, i)).is_some(),
            "key {i} missing"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lagging_node_catches_up_by_snapshot_after_log_truncation() {
    let mut cluster = three_nodes_with_range(1).await;
    let leader = cluster.leader(1).unwrap();
    let lagging = (1..=3).find(|&n| n != leader).unwrap();
    cluster.kill(lagging).await.unwrap();
    // About 5 MiB: the snapshot crosses the wire in several chunks.
    let big = vec![b'x'; 100 << 10];
    for i in 0..50 {
        cluster.put(1, &key(1, i), &big).await.unwrap();
    }
    // Snapshot and truncate the log on every live replica, so the lagging
    // one can only be caught up by a snapshot.
    for node in (1..=3).filter(|&n| n != lagging) {
        cluster.snapshot_and_truncate(node, 1).await.unwrap();
    }
    cluster.restart(lagging).await.unwrap();
    let last = key(1, 49);
    // The state machine holds the data before openraft publishes the
    // snapshot in its metrics, so wait for both. Catching up by log would
    // never set a snapshot index (the policy builds one every 10,000
    // entries), and this wait would time out.
    cluster
        .wait_for("lagging node to install the snapshot", WAIT, || async {
            let replica = cluster.store(lagging).ok()?.replica(1)?;
            replica.raft_status().snapshot_index?;
            local_value(&cluster, lagging, &last)
        })
        .await
        .expect("the lagging node caught up by a snapshot");
    for i in 0..50 {
        assert!(
            local_value(&cluster, lagging, &key(1, i)).is_some(),
            "key {i} missing"
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn non_voter_receives_the_data_and_can_be_promoted_demoted_removed() {
    let cluster = TestCluster::start(ClusterConfig::new(4)).await.unwrap();
    let (start, end) = range_span(1);
    cluster
        .create_range(1, &start, &end, &[1, 2, 3])
        .await
        .unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    for i in 0..10 {
        cluster.put(1, &key(1, i), b"v").await.unwrap();
    }
    let store = cluster.store(leader).unwrap();
    store
        .add_replica(1, 4, ReplicaKind::NonVoter)
        .await
        .unwrap();
    let k = key(1, 9);
    cluster
        .wait_for("non-voter to receive the data", WAIT, || async {
            local_value(&cluster, 4, &k)
        })
        .await
        .unwrap();
    let descriptor = store.replica(1).unwrap().descriptor();
    assert_eq!(
        descriptor.replica_on(4).unwrap().kind,
        ReplicaKind::NonVoter
    );
    assert_eq!(descriptor.voters().count(), 3);

    store.promote_replica(1, 4).await.unwrap();
    let descriptor = store.replica(1).unwrap().descriptor();
    assert_eq!(descriptor.replica_on(4).unwrap().kind, ReplicaKind::Voter);

    let demoted = (1..=3).find(|&n| n != leader).unwrap();
    store.demote_replica(1, demoted).await.unwrap();
    let descriptor = store.replica(1).unwrap().descriptor();
    assert_eq!(
        descriptor.replica_on(demoted).unwrap().kind,
        ReplicaKind::NonVoter
    );

    let removed = cluster.store(demoted).unwrap().replica(1).unwrap();
    store.remove_replica(1, demoted).await.unwrap();
    // Its data is deleted only once nothing can apply to it any more.
    assert!(
        removed.state_machine_stopped(),
        "removed replica's state machine still running"
    );
    assert!(store
        .replica(1)
        .unwrap()
        .descriptor()
        .replica_on(demoted)
        .is_none());
    assert!(
        cluster.store(demoted).unwrap().replica(1).is_none(),
        "removed replica still open"
    );
    assert_eq!(
        local_value(&cluster, demoted, &key(1, 0)),
        None,
        "removed replica kept its data"
    );
    // The range still serves with its new members.
    cluster
        .put(1, &key(1, 100), b"after changes")
        .await
        .unwrap();
    assert_eq!(
        cluster.get(1, &key(1, 100)).await.unwrap(),
        Some(b"after changes".to_vec())
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leadership_moves_to_the_chosen_node() {
    let cluster = three_nodes_with_range(1).await;
    cluster.put(1, &key(1, 0), b"v").await.unwrap();
    let leader = cluster.leader(1).unwrap();
    let target = (1..=3).find(|&n| n != leader).unwrap();
    cluster.move_lease(1, target, WAIT).await.unwrap();
    assert_eq!(
        cluster.get(1, &key(1, 0)).await.unwrap(),
        Some(b"v".to_vec())
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_old_leader_never_serves_a_stale_read() {
    let cluster = three_nodes_with_range(1).await;
    let k = key(1, 0);
    cluster.put(1, &k, b"old").await.unwrap();
    let old_leader = cluster.leader(1).unwrap();
    let others: Vec<u64> = (1..=3).filter(|&n| n != old_leader).collect();
    cluster.network().partition(&[old_leader], &others);

    // The majority elects a new leader and accepts a new value.
    let new_leader = cluster
        .wait_for("majority to elect a leader", WAIT, || async {
            others.iter().copied().find(|&n| {
                let replica = cluster.store(n).unwrap().replica(1).unwrap();
                replica.leader() == Some(n)
            })
        })
        .await
        .unwrap();
    let request = |requests| BatchRequest {
        range_id: 1,
        timestamp: None,
        txn: None,
        requests,
    };
    let put = Request::Put {
        key: k.clone(),
        value: b"new".to_vec(),
    };
    cluster
        .wait_for("new leader to accept a write", WAIT, || async {
            cluster
                .store(new_leader)
                .unwrap()
                .send(request(vec![put.clone()]))
                .await
                .ok()
        })
        .await
        .unwrap();

    // The old leader, still believing it leads, must refuse rather than
    // answer "old".
    for _ in 0..5 {
        let answer = cluster
            .store(old_leader)
            .unwrap()
            .send(request(vec![Request::Get { key: k.clone() }]))
            .await;
        match answer {
            Err(e) => assert!(e.is_retryable(), "unexpected error {e}"),
            Ok(response) => panic!("partitioned old leader served a read: {response:?}"),
        }
    }
    cluster.network().heal();
    assert_eq!(cluster.get(1, &k).await.unwrap(), Some(b"new".to_vec()));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_range_quiesces_wakes_on_request_and_survives_leader_loss() {
    let mut cluster = three_nodes_with_range(1).await;
    cluster.put(1, &key(1, 0), b"before").await.unwrap();
    cluster
        .wait_for("the idle range to quiesce everywhere", WAIT, || async {
            cluster.quiesced_everywhere(1).then_some(())
        })
        .await
        .unwrap();

    // A request wakes it and is served.
    cluster.put(1, &key(1, 1), b"woken").await.unwrap();
    assert_eq!(
        cluster.get(1, &key(1, 1)).await.unwrap(),
        Some(b"woken".to_vec())
    );
    let leader = cluster.leader(1).unwrap();
    assert!(!cluster
        .store(leader)
        .unwrap()
        .replica(1)
        .unwrap()
        .is_quiesced());

    // Quiet again, then lose the leader: the followers notice without
    // heartbeats and elect a new one.
    cluster
        .wait_for("the range to quiesce again", WAIT, || async {
            cluster.quiesced_everywhere(1).then_some(())
        })
        .await
        .unwrap();
    let leader = cluster.leader(1).unwrap();
    cluster.kill(leader).await.unwrap();
    let new_leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    assert_ne!(new_leader, leader);
    assert_eq!(
        cluster.get(1, &key(1, 1)).await.unwrap(),
        Some(b"woken".to_vec())
    );
    cluster.shutdown().await;
}

/// Node 3 is removed from a range while it is down; it restarts and is
/// added back at once, while replica GC runs on it during the catch-up.
/// The re-added replica is a new member (a fresh replica id, empty state,
/// never the old member with its votes and log wiped), GC keeps it even
/// before the membership naming it is applied, and it ends up with the
/// data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_removed_while_down_and_re_added_at_once_keeps_its_new_replica_through_gc() {
    let mut cluster = TestCluster::start(ClusterConfig::new(4)).await.unwrap();
    let (start, end) = range_span(1);
    cluster
        .create_range(1, &start, &end, &[1, 2, 3])
        .await
        .unwrap();
    let mut leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    if leader == 3 {
        cluster.move_lease(1, 1, WAIT).await.unwrap();
        leader = 1;
    }
    for i in 0..20 {
        cluster.put(1, &key(1, i), b"v").await.unwrap();
    }
    let old_id = cluster.store(3).unwrap().replica(1).unwrap().replica_id();

    cluster.kill(3).await.unwrap();
    // The destroy cannot reach the dead node: the removal stands anyway.
    let _ = cluster.store(leader).unwrap().remove_replica(1, 3).await;
    assert!(cluster
        .store(leader)
        .unwrap()
        .replica(1)
        .unwrap()
        .descriptor()
        .replica_on(3)
        .is_none());
    cluster.restart(3).await.unwrap();

    let store = cluster.store(leader).unwrap().clone();
    let add = tokio::spawn(async move { store.add_replica(1, 3, ReplicaKind::Voter).await });
    while !add.is_finished() {
        cluster
            .store(3)
            .unwrap()
            .gc_replica(1, &[1, 2, 4])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    add.await.unwrap().expect("node 3 was added back");
    // GC after the add, too: the new replica is named by the range.
    assert!(!cluster
        .store(3)
        .unwrap()
        .gc_replica(1, &[1, 2, 4])
        .await
        .unwrap());

    let replica = cluster
        .store(3)
        .unwrap()
        .replica(1)
        .expect("node 3 holds the range");
    let new_id = replica.replica_id();
    assert!(
        new_id > old_id,
        "re-added as replica {new_id}, was {old_id}"
    );
    let named = cluster
        .store(leader)
        .unwrap()
        .replica(1)
        .unwrap()
        .descriptor()
        .replica_on(3)
        .map(|r| (r.replica_id, r.kind));
    assert_eq!(named, Some((new_id, ReplicaKind::Voter)));
    let last = key(1, 19);
    cluster
        .wait_for("the re-added replica to hold the data", WAIT, || async {
            local_value(&cluster, 3, &last)
        })
        .await
        .unwrap();
    for i in 0..20 {
        assert!(
            local_value(&cluster, 3, &key(1, i)).is_some(),
            "key {i} missing"
        );
    }
    cluster.shutdown().await;
}
