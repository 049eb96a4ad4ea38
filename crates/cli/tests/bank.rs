//! `meridian bench bank` against three `meridian start` processes: the
//! accounts split over two ranges, concurrent transfers and read-only sums
//! in serializable transactions, and the total intact at the end.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn bench_bank_keeps_the_total_across_ranges() {
    let cluster = ProcCluster::start(3, &[]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let host = cluster.nodes[1].addr.to_string();
    let out = meridian(&[
        "bench",
        "bank",
        "--host",
        &host,
        "--certs-dir",
        cluster.certs_arg(),
        "--accounts",
        "10",
        "--ranges",
        "2",
        "--concurrency",
        "4",
        "--duration",
        "3",
        "--read-percent",
        "25",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench bank failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("a JSON summary");
    assert_eq!(summary["total"], 10_000);
    assert_eq!(summary["expected_total"], 10_000);
    assert_eq!(summary["wrong_sums"], 0);
    assert!(summary["committed"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn bench_bank_refuses_a_bad_config() {
    let out = meridian(&["bench", "bank", "--accounts", "1"]);
    assert_clean_failure(&out, "at least 2 accounts");
}
