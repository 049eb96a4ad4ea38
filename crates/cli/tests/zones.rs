//! `meridian zone` against three processes: a config set through the CLI
//! splits its span off and moves the span's replica and lease where it
//! says; `zone get`, `zone ls` and `zone rm` show and undo it;
//! `debug ranges --nonconforming` lists what is not there yet; bad configs
//! fail with a message and change nothing.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_config_set_from_the_cli_moves_its_span_where_it_says() {
    let cluster = ProcCluster::start(3, &[]);
    cluster.init();
    cluster.wait_replicated(0, 3, Duration::from_secs(60));
    let host = cluster.nodes[0].addr.to_string();
    let conn = ["--host", host.as_str(), "--certs-dir", cluster.certs_arg()];
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(conn);
        meridian(&all)
    };
    let out = run(&["debug", "kv", "put", "p1", "v"]);
    assert!(out.status.success(), "{out:?}");

    // Bad input: a clear message, a failure, and nothing stored.
    for (using, expected) in [
        (
            "num_replicas = 1, constraints = '[+zone=z9]'",
            "unsatisfiable",
        ),
        ("num_replica = 1", "unknown zone config field"),
        ("constraints = '[zone=z3]'", "malformed constraint"),
    ] {
        let out = run(&[
            "zone", "set", "--start", "p", "--end", "q", "--using", using,
        ]);
        assert_clean_failure(&out, expected);
    }
    let out = run(&[
        "zone",
        "set",
        "--start",
        "q",
        "--end",
        "p",
        "--using",
        "num_replicas = 1",
    ]);
    assert_clean_failure(&out, "must sort before");
    let out = run(&["zone", "set", "--using", "num_replicas = 1"]);
    assert_clean_failure(&out, "--default, or --start KEY --end KEY");
    let out = run(&["zone", "ls"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && listed.lines().count() == 1,
        "{listed}"
    );
    assert!(listed.starts_with("default: num_replicas = 3"), "{listed}");

    let using = "num_replicas = 1, constraints = '[+zone=z3]', lease_preferences = '[[+zone=z3]]'";
    let out = run(&[
        "zone", "set", "--start", "p", "--end", "q", "--using", using,
    ]);
    assert!(out.status.success(), "{out:?}");
    let z3 = cluster
        .node_status(0)
        .expect("node status")
        .iter()
        .find(|n| n.locality.zone == "z3")
        .expect("a node in z3")
        .node_id;
    let range = wait_for(Duration::from_secs(90), || {
        let ranges = cluster.ranges(0)?;
        let range = ranges
            .into_iter()
            .find(|r| r.start_key == "p" && r.end_key == "q")?;
        (range.voters == [z3] && range.leaseholder == Some(z3)).then_some(range)
    });
    assert!(range.nonconforming.is_empty(), "{range:?}");
    let out = run(&["debug", "ranges", "--nonconforming", "--json"]);
    let nonconforming: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(nonconforming.is_empty(), "{nonconforming:?}");
    let out = run(&["debug", "kv", "get", "p1"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");

    // The config in force, resolved, and the list of what is set.
    let out = run(&["zone", "get", "--start", "p", "--end", "q"]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(shown.contains("num_replicas = 1"), "{shown}");
    assert!(shown.contains("constraints = '[+zone=z3]'"), "{shown}");
    assert!(shown.contains("gc.ttlseconds = 14400"), "{shown}");
    let out = run(&["zone", "ls"]);
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains("[p, q): num_replicas = 1"), "{listed}");

    // Removed, the span follows the default again: three replicas.
    let out = run(&["zone", "rm", "--start", "p", "--end", "q"]);
    assert!(out.status.success(), "{out:?}");
    let out = run(&["zone", "rm", "--start", "p", "--end", "q"]);
    assert_clean_failure(&out, "no zone config");
    wait_for(Duration::from_secs(90), || {
        let ranges = cluster.ranges(0)?;
        let range = ranges.into_iter().find(|r| r.start_key == "p")?;
        (range.voters.len() == 3).then_some(())
    });
}
