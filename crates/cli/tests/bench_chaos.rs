//! `meridian bench chaos`: one short schedule of every fault kind, moves
//! and splits included, on 4 nodes with all three workloads; its JSON
//! summary and exit status. And bad input: a clear message and a non-zero
//! exit before any cluster starts.

mod support;

use std::process::Command;

use support::*;

#[test]
fn a_schedule_of_every_fault_kind_reports_its_operations_and_no_violation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args([
            "bench",
            "chaos",
            "--workload",
            "register,set,bank",
            "--nemesis",
            "kill,isolate,mute,skew,transfer,split,move",
            "--schedules",
            "1",
            "--seed",
            "7",
            "--duration",
            "4",
            "--nodes",
            "4",
            "--json",
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("MERIDIAN_LOG")
        .env_remove("MERIDIAN_NEMESIS_SEED")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    assert_eq!(summary["schedules"], 1, "{summary}");
    assert_eq!(summary["violations"], 0, "{summary}");
    assert!(summary["operations"].as_u64().unwrap() > 0, "{summary}");
    let result = &summary["results"][0];
    assert_eq!(result["seed"], 7, "{summary}");
    assert!(result["faults"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        result["ranges_consistent"].as_u64().unwrap() >= 2,
        "{summary}"
    );
    assert!(result["violation"].is_null(), "{summary}");
    // The per-schedule line goes to stderr beside the JSON.
    assert!(stderr.contains("seed 7:"), "{stderr}");
}

#[test]
fn unknown_or_unbuilt_workloads_and_faults_are_refused_by_name() {
    for (args, expected) in [
        (&["--workload", "append"][..], "append is not built yet"),
        (&["--nemesis", "pause"][..], "pause fault"),
        (&["--nemesis", "flood"][..], "no fault kind \"flood\""),
        (
            &["--nemesis", "move", "--nodes", "3"][..],
            "--nodes 4 or more",
        ),
        (&["--nodes", "9"][..], "--nodes must be 3 to 7"),
        (
            &["--seed", "18446744073709551615", "--schedules", "2"][..],
            "below 2^64",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["bench", "chaos"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
