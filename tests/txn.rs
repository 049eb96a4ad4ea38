//! Transactions through the coordinator (`kvclient::txn`) on a real
//! 3-node cluster with two ranges: atomic commits across ranges, no lost
//! update under contention, and transfers that keep the total.

mod common;

use std::sync::Arc;

use common::two_ranges;
use meridian_kvclient::txn::{run_txn, Txn, TxnError};

fn number(value: Option<Vec<u8>>) -> i64 {
    value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
}

async fn read_number(txn: &Txn, key: &[u8]) -> Result<i64, TxnError> {
    Ok(number(txn.get(key).await?))
}

/// Writes on two ranges commit together: a transaction that reads both
/// sees both or neither, and after the commit both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_s_writes_on_two_ranges_appear_together() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    run_txn(&ds, &clock, |txn| async move {
        txn.put(b"b", b"1").await?;
        txn.put(b"n", b"1").await
    })
    .await
    .unwrap();
    let (b, n) = run_txn(&ds, &clock, |txn| async move {
        Ok((txn.get(b"b").await?, txn.get(b"n").await?))
    })
    .await
    .unwrap();
    assert_eq!(
        (b.as_deref(), n.as_deref()),
        (Some(&b"1"[..]), Some(&b"1"[..]))
    );

    // A rolled-back transaction leaves nothing.
    let txn = Txn::begin(ds.clone(), clock.clone(), 1);
    txn.put(b"b", b"2").await.unwrap();
    txn.put(b"n", b"2").await.unwrap();
    txn.rollback().await.unwrap();
    let b = run_txn(&ds, &clock, |txn| async move { txn.get(b"b").await })
        .await
        .unwrap();
    assert_eq!(b.as_deref(), Some(&b"1"[..]));
    cluster.shutdown().await;
}

/// Sixteen transactions increment one counter at once: every increment
/// counts (no lost update), whatever restarts and pushes it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_lose_no_update() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let increments = 16;
    let mut tasks = Vec::new();
    for _ in 0..increments {
        let (ds, clock) = (ds.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            run_txn(&ds, &clock, |txn| async move {
                let n = read_number(&txn, b"counter").await?;
                txn.put(b"counter", (n + 1).to_string().as_bytes()).await
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("an increment gave up");
    }
    let total = run_txn(&ds, &clock, |txn| async move {
        read_number(&txn, b"counter").await
    })
    .await
    .unwrap();
    assert_eq!(total, increments);
    cluster.shutdown().await;
}

/// Four clients move money between four accounts on two ranges, each
/// transfer reading both accounts and writing both; the total never
/// changes, and every read-only sum along the way is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_across_ranges_keep_the_total() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock: Arc<_> = cluster.node(1).unwrap().clock.clone();
    let accounts: [&[u8]; 4] = [b"b0", b"b1", b"n0", b"n1"];
    run_txn(&ds, &clock, |txn| async move {
        for account in accounts {
            txn.put(account, b"100").await?;
        }
        Ok(())
    })
    .await
    .unwrap();

    let mut clients = Vec::new();
    for client in 0..4usize {
        let (ds, clock) = (ds.clone(), clock.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..8usize {
                let from = accounts[(client + i) % 4];
                let to = accounts[(client + i + 1 + i % 2) % 4];
                run_txn(&ds, &clock, |txn| async move {
                    let a = read_number(&txn, from).await?;
                    let b = read_number(&txn, to).await?;
                    txn.put(from, (a - 7).to_string().as_bytes()).await?;
                    txn.put(to, (b + 7).to_string().as_bytes()).await
                })
                .await?;
                let sum = run_txn(&ds, &clock, |txn| async move {
                    let mut sum = 0;
                    for account in accounts {
                        sum += read_number(&txn, account).await?;
                    }
                    Ok(sum)
                })
                .await?;
                assert_eq!(sum, 400, "a read-only transaction saw a wrong total");
            }
            Ok::<_, TxnError>(())
        }));
    }
    for client in clients {
        client.await.unwrap().expect("a transfer gave up");
    }
    cluster.shutdown().await;
}

/// A transaction pushed above a later read of the key it writes checks
/// its own reads at the new timestamp and carries on when they are
/// unchanged; when one changed in between, it must restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_transaction_refreshes_its_reads_instead_of_restarting() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();

    let pushed = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(pushed.get(b"b").await.unwrap(), None);
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    reader.get(b"n").await.unwrap();
    reader.commit().await.unwrap();
    // At its own timestamp this write would land under the reader's read.
    pushed.put(b"n", b"1").await.unwrap();
    assert!(pushed.meta().write_timestamp > reader.meta().write_timestamp);
    pushed.commit().await.unwrap();

    let stale = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(stale.get(b"c").await.unwrap(), None);
    let writer = Txn::begin(ds.clone(), clock.clone(), 1);
    writer.put(b"c", b"x").await.unwrap();
    writer.commit().await.unwrap();
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    reader.get(b"o").await.unwrap();
    reader.commit().await.unwrap();
    match stale.put(b"o", b"2").await {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("a refresh over a changed read must fail: {other:?}"),
    }
    stale.rollback().await.unwrap();
    cluster.shutdown().await;
}

/// A refresh does not take a key's earlier read as checked because the
/// transaction is writing that key: the write that was refused as too old
/// laid no intent, so a value written in between must fail the refresh
/// (else the update would be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_catches_a_write_to_a_key_the_transaction_read_and_now_writes() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let slow = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(slow.get(b"d").await.unwrap(), None);
    let fast = Txn::begin(ds.clone(), clock.clone(), 1);
    fast.put(b"d", b"fast").await.unwrap();
    fast.commit().await.unwrap();
    match slow.put(b"d", b"slow").await {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("the read of d changed: the refresh must fail, got {other:?}"),
    }
    slow.rollback().await.unwrap();
    cluster.shutdown().await;
}
