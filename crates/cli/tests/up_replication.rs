//! Up-replication with a node killed under it (issue: 3 processes, `init`,
//! writes in the first seconds, `kill -9` of node 3; the replicate queue had
//! made two-voter groups with the dead node in them and the cluster stopped
//! answering). The missing voters now join in one change, as caught-up
//! learners first, and a range never goes up to two voters.

mod support;

use std::time::{Duration, Instant};

use meridian_kvapi::KvError;
use meridian_kvclient::ClientError;
use support::*;

/// Writes `key`, sending it again only when the outcome was ambiguous (the
/// same value: safe for this test).
async fn put(client: &meridian_server::client::Client, key: &[u8]) {
    loop {
        match client.ds.put(key, key).await {
            Ok(()) => return,
            Err(ClientError::Kv(KvError::AmbiguousResult { .. })) => continue,
            Err(e) => panic!("put {:?}: {e:?}", String::from_utf8_lossy(key)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_during_up_replication_never_wedges_a_range() {
    let mut cluster = ProcCluster::start(3, &["--time-until-dead-secs", "300"]);
    cluster.init();
    let hosts: Vec<_> = cluster.nodes[..2].iter().map(|n| n.addr).collect();
    let client = connect_client(&cluster.certs, &hosts, Duration::from_secs(30)).await;

    // Writes right after init, while the ranges up-replicate; node 3 dies
    // two seconds in, whatever the replicate queue is doing then.
    let started = Instant::now();
    let mut written = Vec::new();
    let mut killed = false;
    // At least 400 writes, and on until the kill has happened (how long
    // 400 writes take depends on the machine).
    let mut i = 0u32;
    while i < 400 || !killed {
        let key = format!("up/{i:05}").into_bytes();
        put(&client, &key).await;
        written.push(key);
        i += 1;
        if !killed && started.elapsed() > Duration::from_secs(2) {
            cluster.nodes[2].kill();
            killed = true;
        }
    }

    // Every range stays available with node 3 dead: each write above had
    // its deadline, and a full scan and the status answer now.
    let rows = client
        .ds
        .scan(b"up/", b"up0", 0)
        .await
        .expect("scan with node 3 dead");
    assert_eq!(rows.len(), written.len());
    let ranges = wait_for(Duration::from_secs(30), || cluster.ranges(0));
    assert!(
        ranges.iter().all(|r| r.voters.len() != 2),
        "a range went up to two voters: {ranges:?}"
    );

    // Node 3 returns: every range reaches three voters.
    cluster.nodes[2].start();
    cluster.wait_replicated(0, 3, Duration::from_secs(90));
    for key in &written {
        assert_eq!(
            client.ds.get(key).await.expect("get").as_deref(),
            Some(&key[..])
        );
    }
}
