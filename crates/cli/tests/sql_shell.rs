//! `meridian sql` against a `meridian start` process, through the node's
//! SQL listener (its --listen address, on TCP): statements from -e and
//! from a file print like psql, and a failing statement exits non-zero
//! with the server's message and SQLSTATE on stderr.

mod support;

use std::process::Output;
use std::time::{Duration, Instant};

use support::*;

/// One node, initialized, its ranges up.
fn one_node() -> ProcCluster {
    let cluster = ProcCluster::start(1, &["--replication-factor", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 1, Duration::from_secs(60));
    cluster
}

/// `meridian sql --host NODE ARGS...`.
fn sql(cluster: &ProcCluster, args: &[&str]) -> Output {
    let host = cluster.nodes[0].addr.to_string();
    let mut all = vec!["sql", "--host", &host];
    all.extend_from_slice(args);
    meridian(&all)
}

/// Waits until the node answers `SELECT 1` over SQL (the listener opens
/// as the node starts; the first statement may wait for the cluster).
fn wait_for_sql(cluster: &ProcCluster) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = sql(cluster, &["-e", "SELECT 1"]);
        if out.status.success() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn select_1_prints_a_table() {
    let cluster = one_node();
    let out = wait_for_sql(&cluster);
    assert!(
        out.status.success(),
        "meridian sql -e 'SELECT 1' failed: {}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        " ?column?\n----------\n        1\n(1 row)\n\n"
    );

    // A file: DDL and DML tags, rows, NULL as an empty cell, and CSV.
    let script = cluster.dir.path().join("script.sql");
    std::fs::write(
        &script,
        "CREATE TABLE accounts (id INT PRIMARY KEY, owner TEXT);\n\
         INSERT INTO accounts VALUES (1, 'alice'), (2, NULL);\n\
         -- a comment; with a semicolon\n\
         SELECT id, owner FROM accounts\n  ORDER BY id\n",
    )
    .unwrap();
    let out = sql(&cluster, &["-f", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        concat!(
            "CREATE TABLE\n",
            "INSERT 0 2\n",
            " id | owner\n",
            "----+-------\n",
            "  1 | alice\n",
            "  2 |\n",
            "(2 rows)\n",
            "\n"
        )
    );
    let out = sql(
        &cluster,
        &[
            "--format",
            "csv",
            "-e",
            "SELECT owner, id FROM accounts ORDER BY id",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "owner,id\nalice,1\n,2\n");
}

#[test]
fn a_failing_statement_exits_non_zero_with_its_sqlstate() {
    let cluster = one_node();
    let ready = wait_for_sql(&cluster);
    assert!(ready.status.success(), "{}", text(&ready.stderr));

    // An unknown table: 42P01, and the statements after it do not run.
    let out = sql(
        &cluster,
        &[
            "-e",
            "SELECT * FROM no_such_table",
            "-e",
            "SELECT 'not reached'",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {stderr}");
    assert!(stderr.contains("ERROR: "), "{stderr}");
    assert!(stderr.contains("SQLSTATE: 42P01"), "{stderr}");
    assert!(!text(&out.stdout).contains("not reached"));
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A syntax error: 42601.
    let out = sql(&cluster, &["-e", "SELEC 1"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "expected a failure: {stderr}");
    assert!(stderr.contains("SQLSTATE: 42601"), "{stderr}");
}

#[test]
fn no_listener_is_a_clear_error() {
    let (port, _) = free_ports();
    let out = meridian(&[
        "sql",
        "--host",
        &format!("127.0.0.1:{port}"),
        "-e",
        "SELECT 1",
    ]);
    assert_clean_failure(&out, "cannot connect to the SQL listener");
}
