//! Idle cost of many ranges: a 3-node in-process cluster with N ranges, all
//! replicated 3 ways and quiet; reports the CPU the whole process uses while
//! nothing is written, as a percentage of one core.
//!
//! Run: `cargo bench -p meridian-cluster-tests --bench idle_ranges -- --ranges 1000`

use std::time::{Duration, Instant};

mod support;

/// User plus system CPU time of this process, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = 100; // USER_HZ on Linux
    Duration::from_millis(ticks * 1000 / hz)
}

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn main() {
    let ranges = support::flag("--ranges", 1000);
    let seconds = support::flag("--seconds", 10);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = Instant::now();
        let cluster = support::cluster_with_ranges(ranges).await;
        println!(
            "created {ranges} ranges in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        // Let elections and initial replication settle.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cpu_before = cpu_time();
        let wall_before = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let cpu = cpu_time() - cpu_before;
        let wall = wall_before.elapsed();
        println!(
            "ranges={ranges} idle CPU={:.1}% of one core over {:.0}s, RSS={} MiB",
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
            wall.as_secs_f64(),
            rss_mib()
        );
        cluster.shutdown().await;
    });
}
