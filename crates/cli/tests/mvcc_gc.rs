//! MVCC GC at the process level: `meridian start --gc-ttl-secs 1`, one key
//! rewritten with `meridian debug kv put`, and the range's bytes fall back
//! to about one version once the GC queue has run.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn a_key_rewritten_many_times_keeps_about_one_version_with_a_short_gc_ttl() {
    let cluster = ProcCluster::start(3, &["--gc-ttl-secs", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let host = cluster.nodes[1].addr.to_string();
    let certs = cluster.certs_arg();

    const VALUE_BYTES: usize = 4096;
    const PUTS: usize = 30;
    for i in 0..PUTS {
        // Each value differs, so no layer below can collapse them.
        let value = format!("{i:04}").repeat(VALUE_BYTES / 4);
        let put = meridian(&[
            "debug",
            "kv",
            "put",
            "--host",
            &host,
            "--certs-dir",
            certs,
            "gc/key",
            &value,
        ]);
        assert!(
            put.status.success(),
            "{}",
            String::from_utf8_lossy(&put.stderr)
        );
    }

    // Without GC the data range holds all PUTS versions (over 120 KB);
    // with a 1 s ttl the queue brings it back to the last version or two.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let bytes = loop {
        let ranges = cluster.ranges(0);
        let bytes = ranges
            .as_ref()
            .and_then(|ranges| ranges.iter().find(|r| r.range_id == 2)?.bytes);
        if let Some(b) = bytes.filter(|&b| b < 3 * VALUE_BYTES as i64) {
            break b;
        }
        if std::time::Instant::now() > deadline {
            cluster.dump_logs();
            panic!("the data range still holds {bytes:?} bytes: {ranges:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        bytes >= VALUE_BYTES as i64,
        "the last value is gone: {bytes}"
    );

    let get = meridian(&[
        "debug",
        "kv",
        "get",
        "--host",
        &host,
        "--certs-dir",
        certs,
        "gc/key",
    ]);
    assert!(get.status.success());
    let last = format!("{:04}", PUTS - 1).repeat(VALUE_BYTES / 4);
    assert!(
        String::from_utf8_lossy(&get.stdout).contains(&last),
        "the newest value survives GC"
    );
}
