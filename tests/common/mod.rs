//! What several cluster test files start from.

// Each test file uses some of these.
#![allow(dead_code)]

pub mod pg;

use std::time::Duration;

use meridian_kvapi::{Request, Response, TxnMeta, TxnRecord};
use meridian_testkit::{ClusterConfig, DistSender, TestCluster};

pub const WAIT: Duration = Duration::from_secs(30);

/// Three nodes; range 1 holds `[a, m)`, range 2 `[m, z)`, both on nodes 1
/// to 3, each with a leader.
pub async fn two_ranges() -> TestCluster {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster
        .create_range(1, b"a", b"m", &[1, 2, 3])
        .await
        .unwrap();
    cluster
        .create_range(2, b"m", b"z", &[1, 2, 3])
        .await
        .unwrap();
    for range in [1, 2] {
        cluster.wait_for_leader(range, WAIT).await.unwrap();
    }
    cluster
}

/// The record of `txn` at its anchor, if there is one.
pub async fn record_of(ds: &DistSender, txn: &TxnMeta) -> Option<TxnRecord> {
    let query = Request::QueryTxn {
        key: txn.anchor_key.clone(),
        txn_id: txn.id,
    };
    match ds.send(vec![query]).await.unwrap().pop() {
        Some(Response::QueryTxn { record }) => record.map(|r| *r),
        other => panic!("a query answered {other:?}"),
    }
}

/// Requests waiting for a row lock or an intent, on every node's replicas.
pub fn lock_waiters(cluster: &TestCluster) -> usize {
    cluster
        .node_ids()
        .into_iter()
        .flat_map(|id| cluster.store(id).unwrap().replicas())
        .map(|r| r.locks().waiters())
        .sum()
}

/// Keys locked on every node's replicas.
pub fn locks_held(cluster: &TestCluster) -> usize {
    cluster
        .node_ids()
        .into_iter()
        .flat_map(|id| cluster.store(id).unwrap().replicas())
        .map(|r| r.locks().held().len())
        .sum()
}
