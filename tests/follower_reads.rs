//! Closed timestamps and follower reads on a real 3-node cluster: a
//! follower serves exactly the value as of a closed timestamp, and nothing
//! above what it knows to be closed; no write lands at or below a closed
//! timestamp; an idle, quiesced range keeps closing; a read that meets an
//! intent is left to the leaseholder; a historical transaction reads a
//! snapshot and writes nothing.

mod common;

use std::time::Duration;

use common::{two_ranges, WAIT};
use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, KvError, Request, Response};
use meridian_kvclient::txn::{Txn, TxnError};
use meridian_testkit::{BatchHeader, TestCluster};

/// Short, so the tests wait little for timestamps to close.
const TARGET: Duration = Duration::from_millis(300);

async fn cluster() -> TestCluster {
    let cluster = two_ranges().await;
    for node in cluster.node_ids() {
        cluster
            .store(node)
            .unwrap()
            .set_closed_timestamp_target(TARGET);
    }
    cluster
}

/// Writes `key = value` without a transaction; the timestamp it landed at.
async fn put(cluster: &TestCluster, key: &[u8], value: &[u8]) -> Timestamp {
    let put = Request::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    };
    let (_, ts) = cluster
        .dist_sender()
        .send_with_timestamp(&BatchHeader::default(), vec![put])
        .await
        .unwrap();
    ts
}

/// A node holding a replica of range 1 other than its leader.
fn follower(cluster: &TestCluster) -> u64 {
    let leader = cluster.leader(1).unwrap();
    cluster
        .node_ids()
        .into_iter()
        .find(|&n| n != leader)
        .unwrap()
}

async fn wait_closed(cluster: &TestCluster, node: u64, above: Timestamp) {
    cluster
        .wait_for("the follower to know a closed timestamp", WAIT, || async {
            let closed = cluster.store(node).ok()?.replica(1)?.closed_timestamp();
            (closed > above).then_some(())
        })
        .await
        .unwrap();
}

/// Sends a get of `key` at `ts` to `node`'s replica of range 1 only.
async fn get_at(
    cluster: &TestCluster,
    node: u64,
    key: &[u8],
    ts: Timestamp,
) -> Result<Option<Vec<u8>>, KvError> {
    let response = cluster
        .store(node)
        .unwrap()
        .send(BatchRequest {
            range_id: 1,
            timestamp: Some(ts),
            txn: None,
            requests: vec![Request::Get { key: key.to_vec() }],
        })
        .await?;
    match response.responses.into_iter().next() {
        Some(Response::Get { value }) => Ok(value),
        other => panic!("unexpected response {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_serves_exactly_the_value_as_of_a_closed_timestamp() {
    let cluster = cluster().await;
    let first = put(&cluster, b"k", b"v1").await;
    let second = put(&cluster, b"k", b"v2").await;
    let node = follower(&cluster);
    wait_closed(&cluster, node, second).await;

    let served = cluster.store(node).unwrap().metrics().follower_reads.get();
    let v = |s: &str| Some(s.as_bytes().to_vec());
    assert_eq!(get_at(&cluster, node, b"k", first.prev()).await, Ok(None));
    assert_eq!(get_at(&cluster, node, b"k", first).await, Ok(v("v1")));
    assert_eq!(
        get_at(&cluster, node, b"k", second.prev()).await,
        Ok(v("v1"))
    );
    assert_eq!(get_at(&cluster, node, b"k", second).await, Ok(v("v2")));
    assert_eq!(
        cluster.store(node).unwrap().metrics().follower_reads.get(),
        served + 4,
        "the follower served all four itself"
    );

    // Above what it knows to be closed, it sends the read to the leaseholder.
    let now = cluster.node(node).unwrap().clock.now();
    match get_at(&cluster, node, b"k", now).await {
        Err(KvError::NotLeaseholder { .. }) => {}
        other => panic!("a follower served a read above its closed timestamp: {other:?}"),
    }

    // After the lease moves, the new leaseholder closes too, and the old
    // leaseholder serves as a follower.
    let old = cluster.leader(1).unwrap();
    cluster.move_lease(1, node, WAIT).await.unwrap();
    let third = put(&cluster, b"k", b"v3").await;
    wait_closed(&cluster, old, third).await;
    assert_eq!(get_at(&cluster, old, b"k", second).await, Ok(v("v2")));
    assert_eq!(get_at(&cluster, old, b"k", third).await, Ok(v("v3")));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_write_lands_at_or_below_a_closed_timestamp() {
    let cluster = cluster().await;
    let leader = cluster.leader(1).unwrap();
    let clock = cluster.node(leader).unwrap().clock.clone();
    let old = clock.now();
    let before = put(&cluster, b"k", b"before").await;
    wait_closed(&cluster, leader, before).await;
    let closed = cluster
        .store(leader)
        .unwrap()
        .replica(1)
        .unwrap()
        .closed_timestamp();

    // A write that asks for the old timestamp goes above what was closed.
    let header = BatchHeader {
        timestamp: Some(old),
        ..Default::default()
    };
    let put_old = Request::Put {
        key: b"k".to_vec(),
        value: b"late".to_vec(),
    };
    let (_, landed) = cluster
        .dist_sender()
        .send_with_timestamp(&header, vec![put_old])
        .await
        .unwrap();
    assert!(landed > closed, "landed at {landed}, closed {closed}");

    // So does a transaction's intent; the transaction follows it.
    let txn = Txn::begin_at(cluster.dist_sender().clone(), clock.clone(), old, 1);
    txn.put(b"j", b"txn").await.unwrap();
    assert!(txn.meta().write_timestamp > closed);
    txn.commit().await.unwrap();

    // What a follower serves at the closed timestamp did not change.
    let node = follower(&cluster);
    wait_closed(&cluster, node, closed).await;
    assert_eq!(
        get_at(&cluster, node, b"k", closed).await,
        Ok(Some(b"before".to_vec()))
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_quiesced_range_keeps_closing() {
    let cluster = cluster().await;
    put(&cluster, b"k", b"v").await;
    cluster
        .wait_for("range 1 to quiesce everywhere", WAIT, || async {
            cluster.quiesced_everywhere(1).then_some(())
        })
        .await
        .unwrap();
    let node = follower(&cluster);
    let later = cluster.node(node).unwrap().clock.now();
    wait_closed(&cluster, node, later).await;
    assert!(
        cluster.quiesced_everywhere(1),
        "closing woke the range instead of renewing its lease quietly"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_read_that_meets_an_intent_is_left_to_the_leaseholder() {
    let cluster = cluster().await;
    let clock = cluster.node(1).unwrap().clock.clone();
    let txn = Txn::begin(cluster.dist_sender().clone(), clock, 1);
    txn.put(b"k", b"pending").await.unwrap();
    let intent_at = txn.meta().write_timestamp;
    let node = follower(&cluster);
    wait_closed(&cluster, node, intent_at).await;
    let served = cluster.store(node).unwrap().metrics().follower_reads.get();
    match get_at(&cluster, node, b"k", intent_at).await {
        Err(KvError::NotLeaseholder { .. }) => {}
        other => panic!("a follower answered over an intent: {other:?}"),
    }
    assert_eq!(
        cluster.store(node).unwrap().metrics().follower_reads.get(),
        served
    );
    txn.commit().await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_historical_transaction_reads_a_snapshot_and_writes_nothing() {
    let cluster = cluster().await;
    let first = put(&cluster, b"k", b"v1").await;
    put(&cluster, b"n", b"w1").await;
    put(&cluster, b"k", b"v2").await;
    let clock = cluster.node(1).unwrap().clock.clone();
    let txn = Txn::begin_historical(cluster.dist_sender().clone(), clock, first);
    assert_eq!(txn.get(b"k").await.unwrap(), Some(b"v1".to_vec()));
    assert_eq!(txn.get(b"n").await.unwrap(), None, "written after");
    assert!(matches!(
        txn.put(b"k", b"v3").await,
        Err(TxnError::ReadOnly)
    ));
    txn.commit().await.unwrap();
    cluster.shutdown().await;
}

/// Range 1 closes ahead of the present, as a GLOBAL table's range does.
fn close_ahead(cluster: &TestCluster) {
    for node in cluster.node_ids() {
        cluster
            .store(node)
            .unwrap()
            .replica(1)
            .unwrap()
            .set_global_reads(true);
    }
}

/// The highest closed timestamp any replica of range 1 knows.
fn highest_closed(cluster: &TestCluster) -> Timestamp {
    cluster
        .node_ids()
        .into_iter()
        .filter_map(|n| Some(cluster.store(n).ok()?.replica(1)?.closed_timestamp()))
        .max()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_range_closed_ahead_serves_the_present_everywhere_and_its_writes_wait_their_time() {
    let cluster = cluster().await;
    close_ahead(&cluster);
    let node = follower(&cluster);
    let clock = cluster.node(node).unwrap().clock.clone();
    let now = clock.now();
    wait_closed(&cluster, node, now.add_duration(Duration::from_millis(100))).await;

    // A write lands above what is closed, in the future, and is
    // acknowledged only once the writer's clock passed it.
    let closed = highest_closed(&cluster);
    let landed = put(&cluster, b"k", b"v").await;
    assert!(landed > closed, "landed at {landed}, closed {closed}");
    let leader = cluster.leader(1).unwrap();
    let leader_clock = &cluster.node(leader).unwrap().clock;
    assert!(leader_clock.physical_now() >= landed.wall_nanos);

    // So does a transaction's one-phase commit after a read (a SQL
    // UPDATE), from any gateway.
    for gateway in cluster.node_ids() {
        let closed = highest_closed(&cluster);
        let gateway_clock = cluster.node(gateway).unwrap().clock.clone();
        let txn = Txn::begin(cluster.dist_sender().clone(), gateway_clock, 1);
        txn.get(b"k").await.unwrap();
        txn.write_batch_and_commit(vec![Request::Put {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
        }])
        .await
        .unwrap();
        let committed = txn.meta().write_timestamp;
        assert!(
            committed > closed,
            "from node {gateway}: committed at {committed}, closed {closed}"
        );
        assert!(leader_clock.physical_now() >= committed.wall_nanos);
    }

    // A follower serves a read at its own present time.
    wait_closed(&cluster, node, landed).await;
    let served = cluster.store(node).unwrap().metrics().follower_reads.get();
    let present = clock.now();
    assert_eq!(
        get_at(&cluster, node, b"k", present).await,
        Ok(Some(b"v".to_vec()))
    );
    assert_eq!(
        cluster.store(node).unwrap().metrics().follower_reads.get(),
        served + 1
    );
    cluster.shutdown().await;
}

/// A new lease normally starts `max_offset` above its holder's clock, which
/// does not reach what a range closed ahead of the present: the old
/// leaseholder hands over by raising the lease floor, so the new one
/// writes above everything the old one closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_transfer_keeps_writes_above_what_was_closed_ahead() {
    let cluster = cluster().await;
    close_ahead(&cluster);
    let old = cluster.leader(1).unwrap();
    let new = follower(&cluster);
    let now = cluster.node(old).unwrap().clock.now();
    wait_closed(&cluster, new, now.add_duration(Duration::from_millis(100))).await;
    cluster.move_lease(1, new, WAIT).await.unwrap();
    // Everything the old lease closed is known here by now, or was never
    // published; the floor covers both.
    let closed = highest_closed(&cluster);
    let landed = put(&cluster, b"k", b"after").await;
    assert!(
        landed > closed,
        "the new leaseholder wrote at {landed}, under {closed} the old one closed"
    );
    cluster.shutdown().await;
}

/// Writes `count` increasing values of `h`, each acknowledged, into the
/// history (timestamp, value).
async fn write_history(cluster: &TestCluster, history: &mut Vec<(Timestamp, u64)>, count: u64) {
    for _ in 0..count {
        let value = history.last().map_or(1, |(_, v)| v + 1);
        let ts = put(cluster, b"h", value.to_string().as_bytes()).await;
        history.push((ts, value));
    }
}

/// The value of `h` as of `ts` by the history: the last acknowledged write
/// at or below it.
fn as_of(history: &[(Timestamp, u64)], ts: Timestamp) -> Option<u64> {
    history
        .iter()
        .filter(|(at, _)| *at <= ts)
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| *v)
}

/// Reads `h` on every running node at every timestamp of the history (and
/// just below each), and checks each read a node served against the
/// history; how many a node other than the leaseholder served.
async fn check_history(cluster: &TestCluster, history: &[(Timestamp, u64)]) -> u64 {
    let leader = cluster.leader(1);
    let mut by_followers = 0;
    for node in cluster.node_ids() {
        if !cluster.is_running(node) {
            continue;
        }
        let served_before = cluster.store(node).unwrap().metrics().follower_reads.get();
        for &(ts, _) in history {
            for at in [ts.prev(), ts] {
                match get_at(cluster, node, b"h", at).await {
                    Ok(value) => {
                        let value = value.map(|v| String::from_utf8(v).unwrap().parse().unwrap());
                        assert_eq!(
                            value,
                            as_of(history, at),
                            "node {node} read h as of {at} (leader {leader:?})"
                        );
                    }
                    Err(KvError::NotLeaseholder { .. }) => {}
                    Err(e) => panic!("node {node} as of {at}: {e}"),
                }
            }
        }
        if Some(node) != leader {
            by_followers +=
                cluster.store(node).unwrap().metrics().follower_reads.get() - served_before;
        }
    }
    by_followers
}

/// Reads `h` at the highest closed timestamp any running replica knows,
/// on that replica: (timestamp, node, value).
async fn read_closed_snapshot(cluster: &TestCluster) -> (Timestamp, u64, Option<Vec<u8>>) {
    let (at, node) = cluster
        .node_ids()
        .into_iter()
        .filter_map(|n| Some((cluster.store(n).ok()?.replica(1)?.closed_timestamp(), n)))
        .max()
        .unwrap();
    let value = get_at(cluster, node, b"h", at)
        .await
        .unwrap_or_else(|e| panic!("node {node} at its own closed {at}: {e}"));
    (at, node, value)
}

/// Follower reads against the acknowledged history while the lease moves
/// and a follower restarts: every read served, by any node, at any closed
/// timestamp, returns exactly the history's value as of then, and a read
/// at a closed timestamp taken before later writes (and a lease transfer)
/// returns the same after them. Once with
/// the range closing behind the present, once ahead of it (a GLOBAL
/// table's), where a lease transfer must hand over what was closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_reads_follow_the_history_across_lease_transfers_and_a_restart() {
    for ahead in [false, true] {
        let mut cluster = cluster().await;
        let mut history = Vec::new();
        let mut snapshots = Vec::new();
        let mut by_followers = 0;
        for round in 0..4 {
            if ahead {
                close_ahead(&cluster);
            }
            write_history(&cluster, &mut history, 5).await;
            let other = follower(&cluster);
            match round % 2 {
                0 => cluster.move_lease(1, other, WAIT).await.unwrap(),
                _ => {
                    cluster.kill(other).await.unwrap();
                    write_history(&cluster, &mut history, 3).await;
                    cluster.restart(other).await.unwrap();
                }
            }
            if ahead {
                close_ahead(&cluster);
            }
            // What is closed now is a snapshot that must never change:
            // read it before the next writes, and again after them.
            snapshots.push(read_closed_snapshot(&cluster).await);
            write_history(&cluster, &mut history, 3).await;
            for &(at, node, ref value) in &snapshots {
                if cluster.is_running(node) {
                    assert_eq!(
                        &get_at(&cluster, node, b"h", at).await.unwrap(),
                        value,
                        "node {node}: h as of the closed {at} changed (ahead: {ahead})"
                    );
                }
            }
            let last = history.last().unwrap().0;
            let reader = follower(&cluster);
            wait_closed(&cluster, reader, last).await;
            by_followers += check_history(&cluster, &history).await;
        }
        assert!(
            by_followers > 0,
            "no follower served a read (ahead: {ahead})"
        );
        cluster.shutdown().await;
    }
}
