//! Size-based splits under load, with a node killed while ranges split.

mod support;

use meridian_kvapi::KvError;
use meridian_kvclient::ClientError;
use meridian_server::split_queue::SplitError;
use meridian_server::status::RangeStatus;
use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_split_under_load_and_every_key_stays_readable() {
    let mut cluster = ProcCluster::start(3, &["--range-max-bytes", "65536"]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let hosts: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let client = connect_client(&cluster.certs, &hosts, Duration::from_secs(60)).await;

    let value = vec![b'v'; 1024];
    let mut written = Vec::new();
    let mut killed = false;
    for i in 0..1200u32 {
        let key = format!("split/{i:06}").into_bytes();
        // A put whose leaseholder is killed under it is ambiguous (it may
        // have applied); this test's puts write the same value again, so
        // here, and only here, sending it once more is safe.
        loop {
            match client.ds.put(&key, &value).await {
                Ok(()) => break,
                Err(ClientError::Kv(KvError::AmbiguousResult { .. })) => continue,
                Err(e) => panic!("put: {e:?}"),
            }
        }
        written.push(key);
        // Once splits have begun, kill a node while they go on.
        if !killed && i % 100 == 99 {
            let ranges = cluster.ranges(0).unwrap_or_default();
            if ranges.len() >= 4 {
                cluster.nodes[2].kill();
                killed = true;
            }
        }
    }
    assert!(killed, "splits never started");
    cluster.nodes[2].start();

    // Several size splits happen (the queue splits about once a second per
    // range, so they may trail the writes), each range gets back to 3
    // voters, and the meta records tile the key space again: each range
    // starts where the previous ended. (A split writes its two records one
    // after the other, and one whose second write failed while node 3 was
    // down is repaired by the meta queue, so a moment's gap is expected;
    // one that lasts two minutes is a bug.)
    let tiled = |ranges: &[RangeStatus]| {
        ranges
            .windows(2)
            .all(|pair| pair[0].end_key == pair[1].start_key)
    };
    let ranges = wait_for(Duration::from_secs(120), || {
        let ranges = cluster.ranges(0)?;
        (ranges.len() >= 7
            && ranges
                .iter()
                .all(|r| r.voters.len() == 3 && r.leaseholder.is_some())
            && tiled(&ranges))
        .then_some(ranges)
    });
    assert!(tiled(&ranges), "a gap or overlap in meta");

    for key in &written {
        let got = client.ds.get(key).await.expect("get");
        assert_eq!(
            got.as_deref(),
            Some(&value[..]),
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
    let rows = client
        .ds
        .scan(b"split/", b"split0", 0)
        .await
        .expect("scan across ranges");
    assert_eq!(rows.len(), written.len());
    assert!(
        rows.windows(2).all(|w| w[0].0 < w[1].0),
        "scan out of order"
    );
    let reverse = client
        .ds
        .send(vec![meridian_kvapi::Request::ReverseScan {
            start: b"split/".to_vec(),
            end: b"split0".to_vec(),
            max_rows: 10,
        }])
        .await
        .expect("reverse scan");
    match &reverse[0] {
        meridian_kvapi::Response::Scan { rows, .. } => {
            assert_eq!(rows.len(), 10);
            assert_eq!(rows[0].0, *written.last().unwrap());
        }
        other => panic!("unexpected {other:?}"),
    }
    client.transport.shutdown().await;
}

#[test]
fn debug_split_splits_where_asked() {
    let cluster = ProcCluster::start(3, &[]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let host = cluster.nodes[1].addr.to_string();
    let certs = cluster.certs_arg();
    let put = meridian(&[
        "debug",
        "kv",
        "put",
        "--host",
        &host,
        "--certs-dir",
        certs,
        "n1",
        "x",
    ]);
    assert!(put.status.success());
    let split = meridian(&["debug", "split", "--host", &host, "--certs-dir", certs, "m"]);
    assert!(
        split.status.success(),
        "{}",
        String::from_utf8_lossy(&split.stderr)
    );
    let ranges = cluster.wait_replicated(0, 3, Duration::from_secs(60));
    assert!(ranges.iter().any(|r| r.start_key == "m"), "{ranges:?}");
    let get = meridian(&[
        "debug",
        "kv",
        "get",
        "--host",
        &host,
        "--certs-dir",
        certs,
        "n1",
    ]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "x");
    let refused = meridian(&[
        "debug",
        "split",
        "--host",
        &host,
        "--certs-dir",
        certs,
        "\u{1}a",
    ]);
    assert_clean_failure(&refused, "reserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_refuse_to_split_the_system_ranges() {
    // The CLI refuses such keys before sending; a node must too.
    let cluster = ProcCluster::start(1, &["--replication-factor", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 1, Duration::from_secs(60));
    let client = connect_client(
        &cluster.certs,
        &[cluster.nodes[0].addr],
        Duration::from_secs(30),
    )
    .await;
    // Learn the node's id and address through a first request.
    client.ds.put(b"k", b"v").await.expect("put");
    for key in [vec![], vec![0x01, b'a'], vec![0x03]] {
        let answer = client
            .transport
            .call::<meridian_server::rpc::DebugSplitRpc>(1, &key, Duration::from_secs(10))
            .await
            .expect("the node answers");
        let refusal = answer.expect_err("a split of the system ranges is refused");
        assert_eq!(refusal, SplitError::SystemRange);
    }
    let ranges = cluster.ranges(0).expect("ranges");
    assert_eq!(ranges.len(), 3, "{ranges:?}");
    client.transport.shutdown().await;
}
