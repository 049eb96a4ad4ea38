//! Replicated writes on a 3-node in-process cluster (real RocksDB with
//! fsync, real QUIC on loopback): ops/s and latency percentiles for 1, 16
//! and 64 concurrent writers, on 1 range and on 100 ranges.
//!
//! Run: `cargo bench -p meridian-cluster-tests --bench replicated_writes`
//! (`-- --seconds N` to change the measuring time per case, default 5).
//! The peer figure (etcd 3.4, 3 members, same machine) comes from
//! `shared/peers/etcd/peer-etcd.sh`; see docs/benchmarks.md.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_kvapi::Request;
use meridian_testkit::TestCluster;

mod support;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run_case(cluster: &Arc<TestCluster>, ranges: u64, writers: usize, seconds: u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let cluster = cluster.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            let value = vec![7u8; 256];
            while !stop.load(Ordering::Relaxed) {
                let range_id = 1 + (w as u64 + i) % ranges;
                let key = format!("{}w{w:03}-{i:08}", support::range_prefix(range_id)).into_bytes();
                let started = Instant::now();
                let request = Request::Put {
                    key,
                    value: value.clone(),
                };
                cluster
                    .send(range_id, vec![request], Duration::from_secs(10))
                    .await
                    .expect("write failed");
                latencies.push(started.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    println!(
        "ranges={ranges:<4} writers={writers:<3} ops/s={:>8.0} p50={:>7.2}ms p99={:>7.2}ms max={:>7.2}ms",
        all.len() as f64 / seconds as f64,
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let seconds = support::flag("--seconds", 5);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let cluster = Arc::new(support::cluster_with_ranges(100).await);
        for range_id in 1..=100u64 {
            // First write of a lease waits out the clock offset once; do it here.
            let warm = Request::Put {
                key: format!("{}warm", support::range_prefix(range_id)).into_bytes(),
                value: vec![],
            };
            cluster
                .send(range_id, vec![warm], Duration::from_secs(30))
                .await
                .unwrap();
        }
        for ranges in [1, 100] {
            for writers in [1, 16, 64] {
                run_case(&cluster, ranges, writers, seconds).await;
            }
        }
    });
}
