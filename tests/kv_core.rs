//! Interleavings the replicated KV core must get right before transactions
//! stand on it (one test per interleaving, named after it).

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_kvapi::{BatchRequest, BatchResponse, KvError, Request, Response};
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

fn get(range_id: u64, key: &[u8]) -> BatchRequest {
    BatchRequest {
        range_id,
        timestamp: None,
        txn: None,
        requests: vec![Request::Get { key: key.to_vec() }],
    }
}

/// Writes `k = value` through whichever of `rivals` accepts it first (the
/// one that took over the range), retrying for up to 15 s.
async fn write_through_first_rival(cluster: &TestCluster, rivals: &[u64], value: &[u8]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no rival ever accepted a write"
        );
        for &rival in rivals {
            let now = cluster.node(rival).unwrap().clock.now();
            let store = cluster.store(rival).unwrap();
            if store.send(put(1, now, b"k", value)).await.is_ok() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A read of `k` through a replica that lost the lease must see `expected`
/// (the new leaseholder's acknowledged write) or be refused, retryably.
fn assert_sees_or_refused(read: Result<BatchResponse, KvError>, expected: &[u8], who: &str) {
    match read {
        Err(e) => assert!(e.is_retryable(), "unexpected error {e}"),
        Ok(response) => match &response.responses[..] {
            [Response::Get { value: Some(v) }] => assert_eq!(
                v.as_slice(),
                expected,
                "{who} served a read that misses a write the new leaseholder acknowledged"
            ),
            other => panic!("unexpected read {other:?}"),
        },
    }
}

/// Leaseholder A's messages to B and C are lost from now on; B, which had
/// acknowledged A's heartbeats and so promised its vote to nobody else
/// while A's lease runs, restarts at once; C, which stopped hearing A,
/// campaigns. A restarted B that forgot its promise elects C inside A's
/// lease: a write through C is then missed by a read A still serves. A read
/// through A after a write through the new leader must see the write or be
/// refused. (The race is narrow: with the vote rule switched off this test
/// passed 4 runs of 4 here, so it guards the property rather than
/// reproducing the bug.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_inside_a_lease_elects_no_rival() {
    let mut cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    cluster.put(1, b"k", b"old").await.unwrap();
    let a = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let others: Vec<u64> = (1..=3).filter(|&n| n != a).collect();
    let (b, c) = (others[0], others[1]);

    cluster.network().partition_one_way(&[a], &[b, c]);
    cluster.kill(b).await.unwrap();
    cluster.restart(b).await.unwrap();

    write_through_first_rival(&cluster, &[b, c], b"new").await;
    let read = cluster.store(a).unwrap().send(get(1, b"k")).await;
    assert_sees_or_refused(read, b"new", "the old leaseholder");
    cluster.network().heal();
    cluster.shutdown().await;
}

/// Leaseholder A checks its lease for a read and then stalls (a descheduled
/// thread, a long pause) past the lease's end; meanwhile A is cut off, B or
/// C takes over and acknowledges a write. When A wakes, the read must see
/// the write or be refused: A may not pick a timestamp its lease no longer
/// covers and serve its stale data there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leaseholder_paused_past_its_lease_serves_no_stale_read() {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    cluster.put(1, b"k", b"old").await.unwrap();
    let a = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let others: Vec<u64> = (1..=3).filter(|&n| n != a).collect();

    let replica = cluster.store(a).unwrap().replica(1).unwrap();
    let (paused, resume) = replica.pause_next_batch_after_lease_check();
    let store_a = cluster.store(a).unwrap().clone();
    let read = tokio::spawn(async move { store_a.send(get(1, b"k")).await });
    paused.await.expect("the read reached its lease check");

    cluster.network().partition(&[a], &others);
    write_through_first_rival(&cluster, &others, b"new").await;
    resume.send(()).unwrap();
    assert_sees_or_refused(read.await.unwrap(), b"new", "the paused ex-leaseholder");
    cluster.network().heal();
    cluster.shutdown().await;
}

/// A range whose only voter is its leader gets no heartbeat
/// acknowledgements (it sends none), so openraft's quorum-acknowledged time
/// stays where the election left it. After an idle spell longer than a
/// lease, the range must still serve: no rival can be elected while it is
/// the sole voter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_voter_serves_after_idling_past_a_lease() {
    let config = ClusterConfig::new(1);
    let idle = Duration::from_millis(config.timeouts.election_max_ms * 2);
    let cluster = TestCluster::start(config).await.unwrap();
    cluster.create_range(1, b"a", b"z", &[1]).await.unwrap();
    cluster.wait_for_leader(1, WAIT).await.unwrap();
    cluster.put(1, b"k", b"first").await.unwrap();
    // The idle spell is the point of the test: nothing to wait for instead.
    tokio::time::sleep(idle).await;
    cluster.put(1, b"k", b"second").await.unwrap();
    assert_eq!(
        cluster.get(1, b"k").await.unwrap().as_deref(),
        Some(&b"second"[..])
    );
    cluster.shutdown().await;
}

/// A gateway's conditional put reaches the leaseholder and applies, but
/// its reply is lost (the network model drops everything from the
/// leaseholder to the gateway); while the gateway waits, another client
/// overwrites the key and the lease moves. The gateway must answer "the
/// write may have applied" (`AmbiguousResult`) or success: never
/// `ConditionFailed` showing its own value (a resend that met its own
/// write), and the key must keep the later value (a resent blind write
/// would bring back the old one: a, b, a).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_whose_reply_was_lost_is_ambiguous_never_resent() {
    use meridian_testkit::{ClientError, DistSenderConfig};

    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"z", &[1, 2, 3])
        .await
        .unwrap();
    let leaseholder = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let others: Vec<u64> = (1..=3).filter(|&n| n != leaseholder).collect();
    let (gateway, successor) = (others[0], others[1]);
    let ds = cluster
        .gateway_dist_sender(
            gateway,
            DistSenderConfig {
                rpc_timeout: Duration::from_secs(2),
                deadline: Duration::from_secs(20),
            },
        )
        .unwrap();
    // Warm the gateway's range cache while the network is whole.
    ds.send(vec![Request::Get { key: b"k".to_vec() }])
        .await
        .unwrap();

    cluster
        .network()
        .partition_one_way(&[leaseholder], &[gateway]);
    let cput = tokio::spawn(async move {
        ds.send(vec![Request::ConditionalPut {
            key: b"k".to_vec(),
            value: b"a".to_vec(),
            expected: None,
        }])
        .await
    });
    // The write applied at the leaseholder; its reply is on the floor.
    cluster
        .wait_for("the conditional put to apply", WAIT, || async {
            let read = cluster
                .store(leaseholder)
                .ok()?
                .send(get(1, b"k"))
                .await
                .ok()?;
            matches!(&read.responses[..], [Response::Get { value: Some(_) }]).then_some(())
        })
        .await
        .unwrap();
    let now = cluster.node(leaseholder).unwrap().clock.now();
    cluster
        .store(leaseholder)
        .unwrap()
        .send(put(1, now, b"k", b"b"))
        .await
        .unwrap();
    cluster
        .store(leaseholder)
        .unwrap()
        .transfer_leadership(1, successor)
        .await
        .unwrap();

    match cput.await.unwrap() {
        Ok(_) | Err(ClientError::Kv(KvError::AmbiguousResult { .. })) => {}
        Err(e) => panic!("the lost-reply write came back as {e}"),
    }
    cluster.network().heal();
    assert_eq!(
        cluster.get(1, b"k").await.unwrap().as_deref(),
        Some(&b"b"[..]),
        "a resent write overwrote the later one"
    );
    cluster.shutdown().await;
}

/// The timestamp cache is per key span. A read of `a` at a timestamp the
/// client chose ahead of the clock pushes a later write of `a` asked for
/// below it above the read, and leaves a write of `b`, on the same range,
/// where it asked to be (a single watermark per range pushed every write
/// of the range above every read of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_pushes_later_writes_of_its_key_and_of_no_other() {
    let cluster = TestCluster::start(ClusterConfig::new(1)).await.unwrap();
    cluster.create_range(1, b"a", b"z", &[1]).await.unwrap();
    let leader = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let node = cluster.node(leader).unwrap();
    let store = &node.store;

    // A new lease writes above its start (up to max_offset ahead), and the
    // acknowledgement waits until the clock passed the write: from here on
    // the clock is above the lease's start.
    store
        .send(put(1, node.clock.now(), b"m", b"first"))
        .await
        .unwrap();
    let now = node.clock.now();
    let read_at = now.add_duration(Duration::from_millis(100));
    let read = store
        .send(BatchRequest {
            range_id: 1,
            timestamp: Some(read_at),
            txn: None,
            requests: vec![Request::Get { key: b"a".to_vec() }],
        })
        .await
        .unwrap();
    assert_eq!(read.timestamp, read_at);

    let other_key = store.send(put(1, now, b"b", b"v")).await.unwrap();
    assert_eq!(
        other_key.timestamp, now,
        "a write of b was pushed by a read of a"
    );
    let same_key = store.send(put(1, now, b"a", b"v")).await.unwrap();
    assert!(
        same_key.timestamp > read_at,
        "a write of a at {} went under its read at {read_at}",
        same_key.timestamp
    );

    // A conditional put that failed still read its key (and said it was
    // absent): a later write of the key goes above it too.
    let failed = store
        .send(BatchRequest {
            range_id: 1,
            timestamp: Some(read_at),
            txn: None,
            requests: vec![Request::ConditionalPut {
                key: b"c".to_vec(),
                value: b"v".to_vec(),
                expected: Some(b"something".to_vec()),
            }],
        })
        .await;
    assert!(
        matches!(
            failed,
            Err(meridian_kvapi::KvError::ConditionFailed { actual: None })
        ),
        "{failed:?}"
    );
    let after_condition = store.send(put(1, now, b"c", b"v")).await.unwrap();
    assert!(
        after_condition.timestamp > read_at,
        "a write of c at {} went under the failed condition's read at {read_at}",
        after_condition.timestamp
    );
    cluster.shutdown().await;
}

/// A write stalls after its lease check, holding its latches. A read at a
/// timestamp below the write's does not wait for it (it could not see the
/// write anyway); a read at a later timestamp waits, and then sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_below_a_pending_write_does_not_wait_for_its_latch() {
    let cluster = TestCluster::start(ClusterConfig::new(1)).await.unwrap();
    cluster.create_range(1, b"a", b"z", &[1]).await.unwrap();
    cluster.wait_for_leader(1, WAIT).await.unwrap();
    cluster.put(1, b"k", b"old").await.unwrap();
    let node = cluster.node(1).unwrap();
    let store = node.store.clone();
    let read_at = |ts: Timestamp| BatchRequest {
        range_id: 1,
        timestamp: Some(ts),
        txn: None,
        requests: vec![Request::Get { key: b"k".to_vec() }],
    };
    let value = |response: BatchResponse| match &response.responses[..] {
        [Response::Get { value }] => value.clone(),
        other => panic!("unexpected read {other:?}"),
    };

    let below = node.clock.now();
    let replica = store.replica(1).unwrap();
    let (paused, resume) = replica.pause_next_batch_after_lease_check();
    let write = {
        let store = store.clone();
        let at = node.clock.now();
        tokio::spawn(async move { store.send(put(1, at, b"k", b"new")).await })
    };
    paused.await.expect("the write reached its lease check");

    let read_below = tokio::time::timeout(Duration::from_secs(5), store.send(read_at(below)))
        .await
        .expect("a read below the pending write waited for its latch")
        .unwrap();
    assert_eq!(value(read_below).as_deref(), Some(&b"old"[..]));

    let later = {
        let store = store.clone();
        let at = node.clock.now().add_duration(Duration::from_millis(50));
        tokio::spawn(async move { store.send(read_at(at)).await })
    };
    // The negative can only be shown over some time: the later read is
    // still waiting for the write's latch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !later.is_finished(),
        "a read above the pending write did not wait"
    );
    resume.send(()).unwrap();
    write.await.unwrap().unwrap();
    assert_eq!(
        value(later.await.unwrap().unwrap()).as_deref(),
        Some(&b"new"[..])
    );
    cluster.shutdown().await;
}
