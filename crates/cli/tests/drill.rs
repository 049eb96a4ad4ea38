//! `meridian drill region` on its own 9-node demo cluster: europe-west1
//! stops for a few seconds under a database that survives REGION failure.
//! Asserts what the survival goal promises (every writer recovers while
//! the region is down, no acknowledged write is lost) and the report's
//! shape; the recovery times themselves are figures, not assertions.

mod support;

use std::process::Command;

use support::*;

#[test]
fn a_region_drill_recovers_every_writer_and_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "drill",
            "region",
            "--target",
            "europe-west1",
            "--before",
            "2",
            "--outage",
            "12",
            "--rows",
            "3",
            "--converge-timeout",
            "60",
            "--lease-timeout",
            "60",
            "--json",
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("MERIDIAN_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(report["drill"], "region");
    assert_eq!(report["target"], "europe-west1");
    assert_eq!(report["survival"], "region");
    assert_eq!(report["lost_writes"], 0, "{stdout}");
    assert!(report["acknowledged_writes"].as_u64().unwrap() > 0);
    // Two client regions (none in the lost one), each writing four kinds
    // of rows: its own REGIONAL BY ROW rows, rows homed in the lost
    // region, the REGIONAL BY TABLE table and the GLOBAL table.
    let writers = report["rto_ms"].as_array().unwrap();
    assert_eq!(writers.len(), 8, "{stdout}");
    for w in writers {
        assert_ne!(w["client_region"], "europe-west1");
        assert!(w["rto_ms"].is_number(), "a writer never recovered: {w}");
        assert_eq!(w["lost"], 0, "{w}");
    }
    assert!(writers
        .iter()
        .any(|w| w["locality"] == "regional_by_row_remote"
            && w["label"] == "rbr remote (europe-west1)"));
    // The temporary directory is gone.
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
