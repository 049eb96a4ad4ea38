//! Interleavings the replicated KV core must get right before transactions
//! stand on it (one test per interleaving, named after it).

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, Request, Response};
use meridian_testkit::{ClusterConfig, TestCluster};

const WAIT: Duration = Duration::from_secs(30);

fn put(range_id: u64, ts: Timestamp, key: &[u8], value: &[u8]) -> BatchRequest {
    BatchRequest {
        range_id,
        timestamp: Some(ts),
        txn: None,
        requests: vec![Request::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        }],
    }
}

/// A non-transactional write whose timestamp is below the key's newest
/// version (as after a lease move to a node whose clock lags the version its
/// predecessor wrote) is written above that version, not refused with
/// `WriteTooOld`, and reports the timestamp it was written at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_transactional_write_below_a_newer_version_moves_above_it() {
    let cluster = TestCluster::start(ClusterConfig::new(1)).await.unwrap();
    cluster.create_range(1, b"a", b"z", &[1]).await.unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let node = cluster.node(leader).unwrap();
    let store = &node.store;

    // The lease may move the first write up (a new lease writes above what
    // its predecessor could have served): the version is where it landed.
    let first = store
        .send(put(1, node.clock.now(), b"k", b"newer"))
        .await
        .unwrap();
    let newer = first.timestamp;
    let older = Timestamp::new(newer.wall_nanos - 1_000_000, 0);

    let second = store
        .send(put(1, older, b"k", b"written-later"))
        .await
        .expect("a non-transactional write moves above the newer version");
    assert!(
        second.timestamp > newer,
        "written at {} under the version at {newer}",
        second.timestamp
    );

    let read = store
        .send(BatchRequest {
            range_id: 1,
            timestamp: None,
            txn: None,
            requests: vec![Request::Get { key: b"k".to_vec() }],
        })
        .await
        .unwrap();
    match &read.responses[..] {
        [Response::Get { value: Some(v) }] => assert_eq!(v, b"written-later"),
        other => panic!("unexpected read {other:?}"),
    }
    cluster.shutdown().await;
}
