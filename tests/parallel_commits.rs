//! Parallel commits (issue 10, item 3b) on a real 3-node cluster with two
//! ranges: a transaction's last writes go in the same round as its STAGING
//! record, and a STAGING record whose coordinator went away is recovered
//! by whoever meets its intents: committed if and only if every in-flight
//! write landed at or below the record's timestamp. A coordinator that
//! "died" is played by raw requests: the staging batch is sent, and the
//! explicit commit and resolution that a live coordinator sends next are
//! not.

mod common;

use common::{record_of, two_ranges, WAIT};
use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, Request, Response, TxnMeta, TxnStatus};
use meridian_kvclient::txn::{run_txn, Txn};
use meridian_testkit::{BatchHeader, ClientError, DistSender, TestCluster};

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

fn point(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    (key.to_vec(), [key, &[0u8][..]].concat())
}

/// What `txn`'s coordinator sends to end it, as `commit` says, naming its
/// writes of `b` and `n` (none in flight).
fn end(txn: &TxnMeta, commit: bool) -> Request {
    Request::EndTxn {
        key: txn.anchor_key.clone(),
        commit,
        lock_spans: vec![point(b"b"), point(b"n")],
        in_flight_writes: Vec::new(),
        one_phase: false,
    }
}

/// Sends `requests` as `txn` at its write timestamp; answers the responses
/// and the highest timestamp a range served them at.
async fn send_as(
    ds: &DistSender,
    txn: &TxnMeta,
    requests: Vec<Request>,
) -> Result<(Vec<Response>, Timestamp), KvError> {
    let header = BatchHeader {
        timestamp: Some(txn.write_timestamp),
        txn: Some(txn.clone()),
        ..Default::default()
    };
    match ds.send_with_timestamp(&header, requests).await {
        Ok(answer) => Ok(answer),
        Err(ClientError::Kv(e)) => Err(e),
        Err(e) => panic!("the batch was not served: {e}"),
    }
}

/// Writes `b` (range 1) and `n` (range 2) once, and waits until both
/// leases have passed their start, so a write at the clock's present lands
/// exactly there (a new lease moves earlier writes above its start).
async fn settled_cluster() -> TestCluster {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    cluster
        .wait_for("writes to land at their own timestamp", WAIT, || {
            let (ds, clock) = (ds.clone(), clock.clone());
            async move {
                let now = clock.now();
                let header = BatchHeader {
                    timestamp: Some(now),
                    ..Default::default()
                };
                let writes = vec![put(b"c", b"0"), put(b"p", b"0")];
                let (_, at) = ds.send_with_timestamp(&header, writes).await.ok()?;
                (at == now).then_some(())
            }
        })
        .await
        .unwrap();
    cluster
}

/// A transaction of priority 1 at the clock's present, anchored at `b`,
/// whose writes are its first (sequence 1).
fn staging_txn(cluster: &TestCluster) -> TxnMeta {
    let mut txn = TxnMeta::new(b"b".to_vec(), cluster.node(1).unwrap().clock.now());
    txn.sequence = 1;
    txn
}

/// The STAGING commit of `txn` naming `b` and `n` in flight, sent with the
/// writes of `landed` only; answers the timestamp they landed at.
async fn stage(ds: &DistSender, txn: &TxnMeta, landed: &[&[u8]], value: &[u8]) -> Timestamp {
    let mut batch: Vec<Request> = landed.iter().map(|k| put(k, value)).collect();
    let mut stage = end(txn, true);
    if let Request::EndTxn {
        in_flight_writes, ..
    } = &mut stage
    {
        *in_flight_writes = vec![(b"b".to_vec(), 1), (b"n".to_vec(), 1)];
    }
    batch.push(stage);
    let (responses, at) = send_as(ds, txn, batch).await.unwrap();
    match responses.last() {
        Some(Response::EndTxn { record }) => assert_eq!(record.status, TxnStatus::Staging),
        other => panic!("the commit answered {other:?}"),
    }
    at
}

/// Reads `key` in a transaction of priority 10, which pushes (and so
/// recovers) a STAGING holder of priority 1 at once.
async fn read_pushing(cluster: &TestCluster, key: &[u8]) -> Option<Vec<u8>> {
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let txn = Txn::begin(ds, clock, 10);
    let value = txn.get(key).await.unwrap();
    txn.commit().await.unwrap();
    value
}

/// Every write of a STAGING record landed, and its coordinator is gone: a
/// reader that meets one of its intents recovers it as committed and reads
/// its writes, on both ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staging_transaction_whose_writes_all_landed_is_recovered_as_committed() {
    let cluster = settled_cluster().await;
    let ds = cluster.dist_sender().clone();
    let txn = staging_txn(&cluster);
    let at = stage(&ds, &txn, &[b"b", b"n"], b"1").await;
    assert_eq!(at, txn.write_timestamp, "the writes landed where staged");

    assert_eq!(
        read_pushing(&cluster, b"n").await.as_deref(),
        Some(&b"1"[..])
    );
    let record = record_of(&ds, &txn).await.expect("a record");
    assert_eq!(record.status, TxnStatus::Committed);
    assert!(record.in_flight_writes.is_empty());
    assert_eq!(
        read_pushing(&cluster, b"b").await.as_deref(),
        Some(&b"1"[..])
    );
    // What the coordinator would have sent next answers the same outcome.
    let commit = end(&txn, true);
    send_as(&ds, &txn, vec![commit]).await.unwrap();
    cluster.shutdown().await;
}

/// A STAGING record one of whose writes never arrived is recovered as
/// aborted: the reader sees neither write, and the missing write, if it
/// arrives late, lands above the record's timestamp, where it can no
/// longer complete the commit; the coordinator's commit is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staging_transaction_missing_a_write_is_recovered_as_aborted() {
    let cluster = settled_cluster().await;
    let ds = cluster.dist_sender().clone();
    let txn = staging_txn(&cluster);
    stage(&ds, &txn, &[b"b"], b"1").await;

    assert_eq!(read_pushing(&cluster, b"b").await, None);
    let record = record_of(&ds, &txn).await.expect("a record");
    assert_eq!(record.status, TxnStatus::Aborted);

    // The write that was "in flight" arrives now, at the staged timestamp:
    // the recovery's query of its key keeps it above.
    let (_, at) = send_as(&ds, &txn, vec![put(b"n", b"1")]).await.unwrap();
    assert!(
        at > txn.write_timestamp,
        "a late in-flight write landed at {at}, at or below the record's {}",
        txn.write_timestamp
    );
    let commit = end(&txn, true);
    assert!(matches!(
        send_as(&ds, &txn, vec![commit]).await,
        Err(KvError::TransactionAborted { .. })
    ));
    assert_eq!(read_pushing(&cluster, b"n").await, None);
    cluster.shutdown().await;
}

/// A STAGING record is never aborted by its own coordinator (it may have
/// committed) nor moved by a push: only a recovery ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_staging_record_refuses_an_abort() {
    let cluster = settled_cluster().await;
    let ds = cluster.dist_sender().clone();
    let txn = staging_txn(&cluster);
    stage(&ds, &txn, &[b"b", b"n"], b"1").await;
    let abort = end(&txn, false);
    assert!(matches!(
        send_as(&ds, &txn, vec![abort]).await,
        Err(KvError::TransactionStaging { .. })
    ));
    assert_eq!(
        record_of(&ds, &txn).await.map(|r| r.status),
        Some(TxnStatus::Staging)
    );
    cluster.shutdown().await;
}

/// Through the coordinator: a two-range `write_batch_and_commit` whose
/// write on one range is moved above a read served there commits at the
/// moved timestamp (explicitly, after refreshing), so the read, repeated,
/// still sees the old value; and the record ends COMMITTED there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parallel_commit_whose_write_was_moved_commits_above_the_read() {
    let cluster = settled_cluster().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let txn = Txn::begin(ds.clone(), clock.clone(), 1);
    let began = txn.meta().write_timestamp;
    // A read of `n` after the transaction began.
    let read_at = clock.now();
    let header = BatchHeader {
        timestamp: Some(read_at),
        ..Default::default()
    };
    ds.send_with(&header, vec![Request::Get { key: b"n".to_vec() }])
        .await
        .unwrap();
    assert!(read_at > began);

    txn.write_batch_and_commit(vec![put(b"b", b"2"), put(b"n", b"2")])
        .await
        .unwrap();
    let committed_at = txn.meta().write_timestamp;
    assert!(committed_at > read_at, "committed at {committed_at}");
    let record = cluster
        .wait_for("the record to be COMMITTED", WAIT, || {
            let (ds, meta) = (ds.clone(), txn.meta());
            async move {
                record_of(&ds, &meta)
                    .await
                    .filter(|r| r.status == TxnStatus::Committed)
            }
        })
        .await
        .unwrap();
    assert_eq!(record.meta.write_timestamp, committed_at);
    let old = ds
        .send_with(&header, vec![Request::Get { key: b"n".to_vec() }])
        .await
        .unwrap();
    assert_eq!(old, vec![Response::Get { value: None }]);
    let (b, n) = run_txn(&ds, &clock, |txn| async move {
        Ok((txn.get(b"b").await?, txn.get(b"n").await?))
    })
    .await
    .unwrap();
    assert_eq!(
        (b.as_deref(), n.as_deref()),
        (Some(&b"2"[..]), Some(&b"2"[..]))
    );
    cluster.shutdown().await;
}
