//! Three `meridian` processes: init, load, kill -9, restart, and nothing
//! acknowledged is lost.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_server::liveness::LivenessStatus::{Dead, Live};
use meridian_server::status::RangeStatus;
use parking_lot::Mutex;
use support::*;

/// What one writer got acknowledged, and when writes failed.
#[derive(Default)]
struct Ledger {
    acked: Vec<(Vec<u8>, Vec<u8>)>,
    acked_at: Vec<Instant>,
    failures: Vec<Instant>,
}

fn spawn_writers(
    client: Arc<Client>,
    writers: usize,
    stop: Arc<AtomicBool>,
    ledger: Arc<Mutex<Ledger>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..writers)
        .map(|w| {
            let (client, stop, ledger) = (client.clone(), stop.clone(), ledger.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("load/{w:02}/{i:08}").into_bytes();
                    let value = format!("value-{w}-{i}").into_bytes();
                    match client.ds.put(&key, &value).await {
                        Ok(()) => {
                            let mut l = ledger.lock();
                            l.acked.push((key, value));
                            l.acked_at.push(Instant::now());
                            i += 1;
                        }
                        Err(_) => ledger.lock().failures.push(Instant::now()),
                    }
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_survive_kill_9_and_lose_nothing() {
    let mut cluster = ProcCluster::start(3, &["--time-until-dead-secs", "300"]);
    cluster.init();
    let ranges = cluster.wait_replicated(0, 3, Duration::from_secs(60));
    assert!(
        ranges.len() >= 3,
        "the first range, the catalog and the data range"
    );

    // Node status shows every node live, with its locality.
    let status = wait_for(Duration::from_secs(30), || {
        let nodes = cluster.node_status(1)?;
        (nodes.len() == 3 && nodes.iter().all(|n| n.liveness == Live)).then_some(nodes)
    });
    assert!(status.iter().any(|n| n.locality.zone == "z2"));

    // `meridian bench kv` runs against the cluster at the same time.
    let bench = ChildGuard::new(
        std::process::Command::new(BIN)
            .args([
                "bench",
                "kv",
                "--host",
                &cluster.nodes[1].addr.to_string(),
                "--certs-dir",
                cluster.certs_arg(),
                "--concurrency",
                "4",
                "--duration",
                "12",
                "--read-percent",
                "50",
                "--keys",
                "500",
                "--json",
            ])
            .env("MERIDIAN_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("bench kv"),
    );

    let hosts: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let client = Arc::new(connect_client(&cluster.certs, &hosts, Duration::from_secs(60)).await);
    let stop = Arc::new(AtomicBool::new(false));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let writers = spawn_writers(client.clone(), 4, stop.clone(), ledger.clone());

    // The load is running before the kill.
    let acked = |ledger: &Mutex<Ledger>| ledger.lock().acked.len();
    wait_for_async(Duration::from_secs(30), || {
        (acked(&ledger) >= 50).then_some(())
    })
    .await;
    // Kill the leaseholder of the range the writers write to.
    let data_range = |ranges: &[RangeStatus]| {
        ranges
            .iter()
            .find(|r| r.start_key == "\\x10")
            .and_then(|r| r.leaseholder)
    };
    let holder = wait_for(Duration::from_secs(30), || data_range(&cluster.ranges(0)?));
    let victim = cluster.index_of(holder);
    let killed_at = Instant::now();
    cluster.nodes[victim].kill();
    // The load goes on: writes are acknowledged again, after a bounded stall.
    wait_for(Duration::from_secs(30), || {
        let l = ledger.lock();
        l.acked_at
            .iter()
            .any(|t| *t > killed_at + Duration::from_secs(1))
            .then_some(())
    });
    let stall = {
        let l = ledger.lock();
        let mut times: Vec<Instant> = l
            .acked_at
            .iter()
            .copied()
            .filter(|t| *t >= killed_at)
            .collect();
        times.insert(0, killed_at);
        times
            .windows(2)
            .map(|w| w[1] - w[0])
            .max()
            .unwrap_or_default()
    };
    eprintln!("longest gap between acknowledged writes after the kill: {stall:?}");
    assert!(
        stall < Duration::from_secs(15),
        "writes stalled for {stall:?}"
    );
    // More writes while it is down: what it will have to catch up on.
    let before = acked(&ledger);
    wait_for_async(Duration::from_secs(30), || {
        (acked(&ledger) >= before + 100).then_some(())
    })
    .await;

    // Restart it: same store, same identity (a new epoch); it catches up.
    let epoch_before = cluster
        .node_status(if victim == 0 { 1 } else { 0 })
        .and_then(|nodes| nodes.iter().find(|n| n.node_id == holder).map(|n| n.epoch))
        .unwrap_or(0);
    cluster.nodes[victim].start();
    wait_for(Duration::from_secs(60), || {
        let via = if victim == 0 { 1 } else { 0 };
        let nodes = cluster.node_status(via)?;
        let n = nodes.iter().find(|n| n.node_id == holder)?;
        (n.liveness == Live && n.epoch > epoch_before).then_some(())
    });
    // It has its replicas of every range back, and the writers go on with
    // it in the cluster.
    let before = acked(&ledger);
    let via = if victim == 0 { 1 } else { 0 };
    wait_for(Duration::from_secs(60), || {
        let ranges = cluster.ranges(via)?.len();
        let nodes = cluster.node_status(via)?;
        let n = nodes.iter().find(|n| n.node_id == holder)?;
        (n.replicas == Some(ranges)).then_some(())
    });
    wait_for_async(Duration::from_secs(30), || {
        (acked(&ledger) >= before + 100).then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    // Now kill another node: every range must run on the restarted node
    // and the third, which only works if the restarted node caught up.
    let other = (0..3).find(|&i| i != victim).unwrap();
    cluster.nodes[other].kill();
    let acked = std::mem::take(&mut ledger.lock().acked);
    assert!(
        acked.len() > 100,
        "only {} writes acknowledged",
        acked.len()
    );
    let mut missing = 0;
    for (key, value) in &acked {
        match client.ds.get(key).await {
            Ok(Some(v)) if v == *value => {}
            other => {
                missing += 1;
                eprintln!("key {:?}: {other:?}", String::from_utf8_lossy(key));
            }
        }
    }
    if missing > 0 {
        cluster.dump_logs();
    }
    assert_eq!(missing, 0, "acknowledged writes lost");
    client
        .ds
        .put(b"after/all", b"done")
        .await
        .expect("a write with node 2 down");

    let output = bench.wait_with_output();
    assert!(
        output.status.success(),
        "bench kv failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("bench --json prints JSON");
    assert!(summary["total"]["ops"].as_u64().unwrap() > 0);
    client.transport.shutdown().await;
}

#[test]
fn a_second_init_is_refused_and_sigterm_stops_a_node() {
    let mut cluster = ProcCluster::start(3, &[]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    for node in [0, 2] {
        let host = cluster.nodes[node].addr.to_string();
        let again = meridian(&["init", "--host", &host, "--certs-dir", cluster.certs_arg()]);
        assert_clean_failure(&again, "already initialized");
    }
    // The admin endpoint: readiness, metrics, status JSON.
    let http = cluster.nodes[0].http;
    let (status, _) = wait_for(Duration::from_secs(30), || {
        let answer = http_get(http, "/health?ready=1");
        answer.0.contains("200").then_some(answer)
    });
    assert!(status.contains("200"));
    let (status, metrics) = http_get(http, "/metrics");
    assert!(status.contains("200"), "{status}");
    for name in [
        "meridian_replicas",
        "meridian_leaseholders",
        "meridian_raft_proposals_total",
        "meridian_batch_seconds_bucket",
        "meridian_wal_sync_seconds_count",
        "meridian_rpc_calls_total",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    let (_, nodes) = http_get(http, "/_status/nodes");
    let nodes: serde_json::Value = serde_json::from_str(&nodes).expect("nodes JSON");
    assert_eq!(nodes.as_array().map(Vec::len), Some(3));
    let (_, ranges) = http_get(http, "/_status/ranges");
    let ranges: serde_json::Value = serde_json::from_str(&ranges).expect("ranges JSON");
    assert!(ranges.as_array().is_some_and(|r| r.len() >= 2));

    let status = cluster.nodes[2].terminate();
    assert!(
        status.success(),
        "SIGTERM ends the node cleanly: {status:?}"
    );
    assert!(cluster.nodes[2].log_text().contains("node stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_of_a_dead_node_are_replaced_elsewhere() {
    let mut cluster = ProcCluster::start(4, &["--time-until-dead-secs", "3"]);
    cluster.init();
    let ranges = cluster.wait_replicated(0, 3, Duration::from_secs(90));
    let hosts: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    let client = connect_client(&cluster.certs, &hosts, Duration::from_secs(60)).await;
    for i in 0..50 {
        client
            .ds
            .put(format!("dead/{i:03}").as_bytes(), b"v")
            .await
            .expect("put");
    }
    // A node other than the first that holds a replica of the data range.
    let data = ranges
        .iter()
        .find(|r| r.start_key == "\\x10")
        .expect("data range");
    let victim = *data
        .voters
        .iter()
        .find(|&&n| n != 1)
        .expect("a second voter");
    let index = cluster.index_of(victim);
    cluster.nodes[index].kill();

    // It is declared dead, and every range gets back to 3 voters without it.
    let nodes = wait_for(Duration::from_secs(60), || {
        let nodes = cluster.node_status(0)?;
        let v = nodes.iter().find(|n| n.node_id == victim)?;
        (v.liveness == Dead).then_some(nodes)
    });
    assert_eq!(nodes.len(), 4);
    let ranges = wait_for(Duration::from_secs(90), || {
        let ranges = cluster.ranges(0)?;
        ranges
            .iter()
            .all(|r| r.voters.len() == 3 && !r.voters.contains(&victim) && r.leaseholder.is_some())
            .then_some(ranges)
    });
    assert!(ranges.len() >= 3);
    for i in 0..50 {
        let got = client
            .ds
            .get(format!("dead/{i:03}").as_bytes())
            .await
            .expect("get");
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
    }

    // The node comes back: its stale replicas are garbage-collected. It
    // may get new ones (with three ranges on four nodes, it holds 3 fewer
    // than the others, and balancing by count moves one to it): what it
    // holds is then exactly what the meta records place there.
    cluster.nodes[index].start();
    wait_for(Duration::from_secs(60), || {
        let nodes = cluster.node_status(0)?;
        let v = nodes.iter().find(|n| n.node_id == victim)?;
        let placed = cluster
            .ranges(0)?
            .iter()
            .filter(|r| r.voters.contains(&victim) || r.non_voters.contains(&victim))
            .count();
        (v.liveness == Live && v.replicas == Some(placed)).then_some(())
    });
    client.transport.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_cluster_restart_keeps_every_replica_and_key() {
    // Down for longer than the time until dead: old liveness records must
    // not make the restarted nodes remove each other's replicas.
    let mut cluster = ProcCluster::start(3, &["--time-until-dead-secs", "2"]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let hosts: Vec<_> = cluster.nodes.iter().map(|n| n.addr).collect();
    {
        let client = connect_client(&cluster.certs, &hosts, Duration::from_secs(60)).await;
        for i in 0..20 {
            client
                .ds
                .put(format!("restart/{i:02}").as_bytes(), b"v")
                .await
                .expect("put");
        }
        client.transport.shutdown().await;
    }
    // Stay down until every liveness record has been expired for longer
    // than the time until dead. Nothing runs that could be watched, so the
    // condition is time itself: no record outlives the kill by more than
    // the liveness TTL (5 s, the default), and death comes 2 s after that.
    const LIVENESS_TTL: Duration = Duration::from_secs(5);
    const TIME_UNTIL_DEAD: Duration = Duration::from_secs(2);
    for node in &mut cluster.nodes {
        node.kill();
    }
    let all_dead_at = Instant::now() + LIVENESS_TTL + TIME_UNTIL_DEAD + Duration::from_secs(1);
    tokio::time::sleep_until(all_dead_at.into()).await;
    for node in &mut cluster.nodes {
        node.start();
    }
    let nodes = wait_for(Duration::from_secs(60), || {
        let nodes = cluster.node_status(0)?;
        (nodes.len() == 3 && nodes.iter().all(|n| n.liveness == Live)).then_some(nodes)
    });
    assert!(nodes.iter().all(|n| n.epoch >= 2), "{nodes:?}");
    // Through several queue passes, no range loses a voter.
    holds_for(
        Duration::from_secs(5),
        "every range keeps its three voters",
        || {
            let ranges = cluster.ranges(0)?;
            Some(ranges.iter().all(|r| r.voters.len() == 3))
        },
    );
    let ranges = cluster.wait_replicated(0, 3, Duration::from_secs(30));
    assert!(ranges.iter().all(|r| r.voters.len() == 3), "{ranges:?}");
    let client = connect_client(&cluster.certs, &hosts, Duration::from_secs(60)).await;
    for i in 0..20 {
        let got = client
            .ds
            .get(format!("restart/{i:02}").as_bytes())
            .await
            .expect("get");
        assert_eq!(got.as_deref(), Some(&b"v"[..]));
    }
    client.transport.shutdown().await;
}
