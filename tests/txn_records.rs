//! The server side of a transaction's outcome, with raw KV requests sent
//! through the DistSender with the transaction in the batch header (the
//! coordinator that will send them is not built yet): intents on two
//! ranges, the record at the anchor, and resolution after commit or abort.
//! Real 3-node cluster (testkit).

mod common;

use std::time::Duration;

use common::{two_ranges, WAIT};
use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, PushKind, Request, Response, TxnMeta, TxnRecord, TxnStatus};
use meridian_testkit::{BatchHeader, ClientError, TestCluster};

/// Sends `requests` as `txn` (if any, at its write timestamp) through the
/// DistSender, routed by key (`range` is only for the reader's benefit).
async fn send(
    cluster: &TestCluster,
    _range: u64,
    txn: Option<&TxnMeta>,
    requests: Vec<Request>,
) -> Result<Vec<Response>, KvError> {
    let header = BatchHeader {
        timestamp: txn.map(|t| t.write_timestamp),
        txn: txn.cloned(),
        ..Default::default()
    };
    match cluster.dist_sender().send_with(&header, requests).await {
        Ok(responses) => Ok(responses),
        Err(ClientError::Kv(e)) => Err(e),
        Err(e) => panic!("the batch was not served: {e}"),
    }
}

/// Writes `txn`'s intents `b = value` (range 1) and `n = value` (range 2)
/// in one batch, which the DistSender splits between the two ranges. A
/// write under a newer lease's start is moved above it by the leaseholder
/// (the batch answers the timestamp its intents lie at), and a write
/// refused as too old moves the transaction up: either way the transaction
/// follows, as its coordinator does before it has read anything.
async fn write_intents(cluster: &TestCluster, txn: &mut TxnMeta, value: &[u8]) {
    loop {
        let puts = [b"b", b"n"]
            .map(|key| Request::Put {
                key: key.to_vec(),
                value: value.to_vec(),
            })
            .to_vec();
        let header = BatchHeader {
            timestamp: Some(txn.write_timestamp),
            txn: Some(txn.clone()),
            ..Default::default()
        };
        match cluster
            .dist_sender()
            .send_with_timestamp(&header, puts)
            .await
        {
            Ok((_, at)) => {
                txn.write_timestamp = txn.write_timestamp.max(at);
                return;
            }
            Err(ClientError::Kv(KvError::WriteTooOld { existing, .. })) => {
                txn.write_timestamp = existing.next()
            }
            Err(e) => panic!("intents: {e}"),
        }
    }
}

async fn read(cluster: &TestCluster, range: u64, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
    let get = Request::Get { key: key.to_vec() };
    match &send(cluster, range, None, vec![get]).await?[..] {
        [Response::Get { value }] => Ok(value.clone()),
        other => panic!("unexpected read {other:?}"),
    }
}

fn record_of(responses: Vec<Response>) -> TxnRecord {
    match responses.into_iter().next() {
        Some(Response::HeartbeatTxn { record })
        | Some(Response::EndTxn { record })
        | Some(Response::PushTxn { record }) => *record,
        Some(Response::QueryTxn {
            record: Some(record),
        }) => *record,
        other => panic!("no record in {other:?}"),
    }
}

async fn end(cluster: &TestCluster, txn: &TxnMeta, commit: bool) -> Result<TxnRecord, KvError> {
    let end = Request::EndTxn {
        key: txn.anchor_key.clone(),
        commit,
        lock_spans: vec![
            (b"b".to_vec(), b"b\0".to_vec()),
            (b"n".to_vec(), b"n\0".to_vec()),
        ],
        in_flight_writes: Vec::new(),
        one_phase: false,
    };
    send(cluster, 1, Some(txn), vec![end]).await.map(record_of)
}

async fn resolve(cluster: &TestCluster, txn: &TxnMeta, status: TxnStatus) {
    for (range, key) in [(1, &b"b"[..]), (2, b"n")] {
        let resolve = Request::ResolveIntent {
            key: key.to_vec(),
            txn: Box::new(txn.clone()),
            status,
        };
        let responses = send(cluster, range, None, vec![resolve]).await.unwrap();
        assert_eq!(responses, vec![Response::ResolveIntent { resolved: true }]);
    }
}

/// A transaction writes on two ranges, heartbeats its record, commits it
/// and resolves its intents: until the commit its writes are intents a
/// reader runs into, afterwards both values are there, and the record says
/// COMMITTED on every replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_committed_transaction_s_writes_appear_on_both_ranges_after_resolution() {
    let cluster = two_ranges().await;
    let node = cluster.node(1).unwrap();
    let mut txn = TxnMeta::new(b"b".to_vec(), node.clock.now());
    write_intents(&cluster, &mut txn, b"1").await;

    let heartbeat = Request::HeartbeatTxn {
        key: b"b".to_vec(),
        now: node.clock.now(),
    };
    let record = record_of(
        send(&cluster, 1, Some(&txn), vec![heartbeat])
            .await
            .unwrap(),
    );
    assert_eq!(record.status, TxnStatus::Pending);
    // What an operator sees (`meridian debug txn n`).
    let report = cluster
        .dist_sender()
        .describe_intent(b"n")
        .await
        .unwrap()
        .expect("an intent on n");
    assert_eq!(report.intent.id, txn.id);
    assert_eq!(report.record.map(|r| r.status), Some(TxnStatus::Pending));
    match read(&cluster, 2, b"n").await {
        Err(KvError::WriteIntent { txn: owner, .. }) => assert_eq!(owner.id, txn.id),
        other => panic!("a reader got past a pending intent: {other:?}"),
    }

    let record = end(&cluster, &txn, true).await.unwrap();
    assert_eq!(record.status, TxnStatus::Committed);
    assert_eq!(
        end(&cluster, &txn, true).await.unwrap(),
        record,
        "ending twice answers the same"
    );
    assert!(matches!(
        end(&cluster, &txn, false).await,
        Err(KvError::TransactionInvalid { .. })
    ));
    resolve(&cluster, &txn, TxnStatus::Committed).await;
    assert_eq!(
        cluster.dist_sender().describe_intent(b"n").await.unwrap(),
        None
    );
    assert_eq!(
        read(&cluster, 1, b"b").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        read(&cluster, 2, b"n").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );

    // The record is replicated state: every replica holds it.
    for id in 1..=3 {
        let engine = cluster.node(id).unwrap().engine.clone();
        cluster
            .wait_for("the record on every replica", WAIT, || {
                let engine = engine.clone();
                async move {
                    engine
                        .txn_record(b"b", txn.id)
                        .unwrap()
                        .filter(|r| r.status == TxnStatus::Committed)
                }
            })
            .await
            .unwrap();
    }
    cluster.shutdown().await;
}

/// An aborted transaction's intents go away, the values before it stay,
/// and its coordinator learns the abort from its next heartbeat or commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_aborted_transaction_leaves_nothing_and_cannot_commit() {
    let cluster = two_ranges().await;
    let node = cluster.node(1).unwrap();
    let mut first = TxnMeta::new(b"b".to_vec(), node.clock.now());
    write_intents(&cluster, &mut first, b"before").await;
    end(&cluster, &first, true).await.unwrap();
    resolve(&cluster, &first, TxnStatus::Committed).await;

    let mut txn = TxnMeta::new(b"b".to_vec(), node.clock.now());
    write_intents(&cluster, &mut txn, b"after").await;
    assert_eq!(
        end(&cluster, &txn, false).await.unwrap().status,
        TxnStatus::Aborted
    );
    resolve(&cluster, &txn, TxnStatus::Aborted).await;
    for (range, key) in [(1, &b"b"[..]), (2, b"n")] {
        assert_eq!(
            read(&cluster, range, key).await.unwrap().as_deref(),
            Some(&b"before"[..])
        );
    }
    assert_eq!(
        end(&cluster, &txn, true).await,
        Err(KvError::TransactionAborted { txn_id: txn.id })
    );
    let heartbeat = Request::HeartbeatTxn {
        key: b"b".to_vec(),
        now: Timestamp::new(node.clock.now().wall_nanos, 0),
    };
    assert_eq!(
        send(&cluster, 1, Some(&txn), vec![heartbeat])
            .await
            .map(|_| ()),
        Err(KvError::TransactionAborted { txn_id: txn.id })
    );
    // A record request at another key than the anchor is refused.
    let elsewhere = Request::EndTxn {
        key: b"c".to_vec(),
        commit: true,
        lock_spans: Vec::new(),
        in_flight_writes: Vec::new(),
        one_phase: false,
    };
    assert!(matches!(
        send(&cluster, 1, Some(&txn), vec![elsewhere]).await,
        Err(KvError::TransactionInvalid { .. })
    ));
    cluster.shutdown().await;
}

/// A write lands 100 ms above a transaction's read timestamp (a node whose
/// clock runs ahead wrote it) and is acknowledged before the read arrives.
/// The read cannot tell whether the write happened before it, so it is
/// refused as uncertain (its coordinator restarts above the value), never
/// served without the write. A transaction that began more than
/// `max_offset` before the write is certain: it reads the older value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_read_below_a_value_within_max_offset_is_uncertain() {
    let cluster = two_ranges().await;
    // A first write lands above the new lease's start and moves the clock
    // past it, so the write below keeps the timestamp it asks for.
    cluster.put(1, b"a", b"warm").await.unwrap();
    let leaseholder = cluster.wait_for_leader(1, WAIT).await.unwrap();
    let clock = cluster.node(leaseholder).unwrap().clock.clone();
    let old = TxnMeta::new(
        b"b".to_vec(),
        clock.now().sub_duration(Duration::from_secs(2)),
    );
    let txn = TxnMeta::new(b"b".to_vec(), clock.now());
    let ahead = txn.write_timestamp.add_duration(Duration::from_millis(100));
    let write = Request::Put {
        key: b"c".to_vec(),
        value: b"new".to_vec(),
    };
    let header = BatchHeader {
        timestamp: Some(ahead),
        txn: None,
        ..Default::default()
    };
    cluster
        .dist_sender()
        .send_with(&header, vec![write])
        .await
        .unwrap();

    let get = || vec![Request::Get { key: b"c".to_vec() }];
    match send(&cluster, 1, Some(&txn), get()).await {
        Err(KvError::ReadWithinUncertainty { value_ts, .. }) => assert_eq!(value_ts, ahead),
        other => panic!("a read within the uncertainty interval answered {other:?}"),
    }
    assert_eq!(
        send(&cluster, 1, Some(&old), get()).await.unwrap(),
        vec![Response::Get { value: None }],
        "a transaction that began long before the write is certain"
    );
    cluster.shutdown().await;
}

/// Transaction A holds an intent on `b`; B, of higher priority, writes `b`,
/// meets the intent, pushes A at its record (aborting it), resolves A's
/// intent and writes. A learns at its commit that it was aborted. A third
/// transaction C, pushed to a later timestamp by a reader, may not commit
/// at its old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_higher_priority_writer_pushes_a_live_holder_out_of_its_way() {
    let cluster = two_ranges().await;
    let clock = cluster.node(1).unwrap().clock.clone();
    let mut a = TxnMeta::new(b"b".to_vec(), clock.now());
    write_intents(&cluster, &mut a, b"from a").await;
    let heartbeat = Request::HeartbeatTxn {
        key: b"b".to_vec(),
        now: clock.now(),
    };
    send(&cluster, 1, Some(&a), vec![heartbeat]).await.unwrap();

    let mut b = TxnMeta::new(b"n".to_vec(), clock.now());
    b.priority = a.priority + 1;
    let put = || {
        vec![Request::Put {
            key: b"b".to_vec(),
            value: b"from b".to_vec(),
        }]
    };
    let holder = match send(&cluster, 1, Some(&b), put()).await {
        Err(KvError::WriteIntent { txn, .. }) => *txn,
        other => panic!("B got past A's intent: {other:?}"),
    };
    assert_eq!(holder.id, a.id);
    let push = |pusher_priority| Request::PushTxn {
        key: holder.anchor_key.clone(),
        pushee: Box::new(holder.clone()),
        kind: PushKind::Abort,
        pusher_priority,
        now: clock.now(),
    };
    assert_eq!(
        send(&cluster, 1, Some(&b), vec![push(a.priority)]).await,
        Err(KvError::TransactionPushFailed { pushee: a.id }),
        "a live holder of equal priority holds"
    );
    let pushed = record_of(
        send(&cluster, 1, Some(&b), vec![push(b.priority)])
            .await
            .unwrap(),
    );
    assert_eq!(pushed.status, TxnStatus::Aborted);
    let resolve = Request::ResolveIntent {
        key: b"b".to_vec(),
        txn: Box::new(pushed.meta.clone()),
        status: TxnStatus::Aborted,
    };
    send(&cluster, 1, None, vec![resolve]).await.unwrap();
    loop {
        match send(&cluster, 1, Some(&b), put()).await {
            Ok(_) => break,
            Err(KvError::WriteTooOld { existing, .. }) => b.write_timestamp = existing.next(),
            Err(e) => panic!("B could not write after the push: {e}"),
        }
    }
    assert_eq!(
        end(&cluster, &a, true).await,
        Err(KvError::TransactionAborted { txn_id: a.id })
    );

    // C is pushed to a later timestamp; its commit at the old one is refused.
    let mut c = TxnMeta::new(b"c".to_vec(), clock.now());
    c.priority = 0;
    let heartbeat = Request::HeartbeatTxn {
        key: b"c".to_vec(),
        now: clock.now(),
    };
    send(&cluster, 1, Some(&c), vec![heartbeat]).await.unwrap();
    let later = clock.now().add_duration(Duration::from_millis(100));
    let push_ts = Request::PushTxn {
        key: b"c".to_vec(),
        pushee: Box::new(c.clone()),
        kind: PushKind::Timestamp(later),
        pusher_priority: 1,
        now: clock.now(),
    };
    let moved = record_of(send(&cluster, 1, None, vec![push_ts]).await.unwrap());
    assert_eq!(moved.meta.write_timestamp, later);
    let commit = Request::EndTxn {
        key: b"c".to_vec(),
        commit: true,
        lock_spans: Vec::new(),
        in_flight_writes: Vec::new(),
        one_phase: false,
    };
    assert_eq!(
        send(&cluster, 1, Some(&c), vec![commit]).await,
        Err(KvError::TransactionPushed {
            txn_id: c.id,
            pushed_to: later
        })
    );
    cluster.shutdown().await;
}
