//! Savepoints through the transaction coordinator on a real 3-node
//! cluster with two ranges: a rollback to a savepoint undoes the writes
//! made since on both ranges, for the transaction's own reads and at
//! commit (one ordinary, one parallel), and leaves no intent behind.

mod common;

use common::two_ranges;
use meridian_kvapi::Request;
use meridian_kvclient::txn::{run_txn, Txn};

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_to_a_savepoint_undoes_later_writes_on_every_range() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    ds.put(b"c", b"old").await.unwrap();

    for parallel in [false, true] {
        let txn = Txn::begin(ds.clone(), clock.clone(), 1);
        txn.put(b"b", b"1").await.unwrap();
        let savepoint = txn.savepoint();
        txn.put(b"b", b"2").await.unwrap();
        txn.put(b"n", b"2").await.unwrap();
        txn.delete(b"c").await.unwrap();
        assert_eq!(txn.get(b"c").await.unwrap(), None);
        txn.rollback_to(savepoint).unwrap();
        assert_eq!(txn.get(b"b").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(txn.get(b"n").await.unwrap(), None);
        assert_eq!(txn.get(b"c").await.unwrap().as_deref(), Some(&b"old"[..]));
        if parallel {
            // The last writes and the commit in one round, on both ranges.
            txn.write_batch_and_commit(vec![put(b"o", b"3"), put(b"d", b"3")])
                .await
                .unwrap();
        } else {
            txn.commit().await.unwrap();
        }
        let seen = run_txn(&ds, &clock, |txn| async move {
            let mut seen = Vec::new();
            for key in [&b"b"[..], b"c", b"d", b"n", b"o"] {
                seen.push(txn.get(key).await?);
            }
            Ok(seen)
        })
        .await
        .unwrap();
        let expected_d_o = parallel.then(|| b"3".to_vec());
        assert_eq!(
            seen,
            vec![
                Some(b"1".to_vec()),
                Some(b"old".to_vec()),
                expected_d_o.clone(),
                None,
                expected_d_o
            ],
            "after the commit (parallel: {parallel})"
        );
        // Resolution is in the background: wait for every intent to go.
        cluster
            .wait_for("the intents to be resolved", common::WAIT, || {
                let ds = ds.clone();
                async move {
                    for key in [&b"b"[..], b"c", b"d", b"n", b"o"] {
                        if ds.describe_intent(key).await.ok()?.is_some() {
                            return None;
                        }
                    }
                    Some(())
                }
            })
            .await
            .unwrap();
    }
    cluster.shutdown().await;
}
