//! Bad input gets a clear message and a non-zero exit, never a panic.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn unknown_flags_and_missing_arguments() {
    assert_clean_failure(&meridian(&["start", "--bogus"]), "unexpected argument");
    assert_clean_failure(&meridian(&["start"]), "--store");
    assert_clean_failure(&meridian(&["frobnicate"]), "unrecognized subcommand");
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let out = meridian(&[
        "start",
        "--store",
        store.to_str().unwrap(),
        "--certs-dir",
        "/nonexistent",
        "--locality",
        "zone=only",
    ]);
    assert_clean_failure(&out, "region");
    let out = meridian(&[
        "start",
        "--store",
        store.to_str().unwrap(),
        "--listen",
        "0.0.0.0:0",
        "--certs-dir",
        "/nonexistent",
    ]);
    assert_clean_failure(&out, "set --advertise");
}

#[test]
fn missing_certificates_and_unreachable_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s");
    let (port, _) = free_ports();
    let out = meridian(&[
        "start",
        "--store",
        store.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--certs-dir",
        dir.path().join("none").to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "ca.crt");

    let certs = dir.path().join("certs");
    create_certs(&certs);
    let out = meridian(&[
        "init",
        "--host",
        &format!("127.0.0.1:{port}"),
        "--certs-dir",
        certs.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "cannot reach");

    // A new node whose --join nodes never answer gives up.
    let (port2, _) = free_ports();
    let out = meridian(&[
        "start",
        "--store",
        store.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port2}"),
        "--join",
        &format!("127.0.0.1:{port}"),
        "--join-timeout-secs",
        "2",
        "--certs-dir",
        certs.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "cannot reach any node of --join");
}

#[test]
fn wrong_certificates_occupied_ports_and_corrupt_stores() {
    let mut cluster = ProcCluster::start(1, &["--replication-factor", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 1, Duration::from_secs(60));
    let host = cluster.nodes[0].addr.to_string();

    // Certificates of another cluster's CA are refused at the handshake.
    let other = cluster.dir.path().join("other-certs");
    create_certs(&other);
    let out = meridian(&[
        "node",
        "status",
        "--host",
        &host,
        "--certs-dir",
        other.to_str().unwrap(),
    ]);
    assert_clean_failure(&out, "cannot reach");

    // A second node on the first node's port.
    let store2 = cluster.dir.path().join("second");
    let out = meridian(&[
        "start",
        "--store",
        store2.to_str().unwrap(),
        "--listen",
        &host,
        "--certs-dir",
        cluster.certs_arg(),
    ]);
    assert_clean_failure(&out, "in use");

    // The same store opened twice: RocksDB's lock.
    let (port, _) = free_ports();
    let out = meridian(&[
        "start",
        "--store",
        cluster.nodes[0].store.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--certs-dir",
        cluster.certs_arg(),
    ]);
    assert_clean_failure(&out, "cannot open the database");

    // A corrupted identity file and a corrupted database.
    cluster.nodes[0].kill();
    let store = cluster.nodes[0].store.clone();
    std::fs::write(store.join("IDENT.json"), b"{not json").unwrap();
    let run = |store: &std::path::Path| {
        meridian(&[
            "start",
            "--store",
            store.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--certs-dir",
            cluster.certs_arg(),
        ])
    };
    assert_clean_failure(&run(&store), "IDENT.json is corrupt");
    std::fs::remove_file(store.join("IDENT.json")).unwrap();
    std::fs::write(store.join("CURRENT"), b"garbage\n").unwrap();
    assert_clean_failure(&run(&store), "cannot open the database");
}

#[test]
fn a_store_of_another_cluster_is_refused() {
    let cluster = ProcCluster::start(1, &["--replication-factor", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 1, Duration::from_secs(60));
    // A second, separate cluster of one node, sharing the CA.
    let mut other = ProcCluster::start(1, &["--replication-factor", "1"]);
    std::fs::remove_dir_all(&other.certs).unwrap();
    copy_dir(&cluster.certs, &other.certs);
    other.nodes[0].kill();
    other.nodes[0].start();
    other.init();
    other.nodes[0].kill();
    // Restart the other cluster's node with --join pointing at the first cluster.
    let (port, _) = free_ports();
    let out = meridian(&[
        "start",
        "--store",
        other.nodes[0].store.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--join",
        &cluster.nodes[0].addr.to_string(),
        "--certs-dir",
        cluster.certs_arg(),
    ]);
    assert_clean_failure(&out, "belongs to cluster");
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A node killed with `kill -9` and started again answers clients from the
/// moment its port opens. While it loads its membership it says it is
/// starting, and the client asks again; it never claims to be outside an
/// initialized cluster or advises `meridian init` on a live one.
#[test]
fn a_restarting_node_says_starting_never_run_init() {
    let mut cluster = ProcCluster::start(1, &["--replication-factor", "1"]);
    cluster.init();
    cluster.wait_replicated(0, 1, Duration::from_secs(60));
    let host = cluster.nodes[0].addr.to_string();
    let certs = cluster.certs_arg().to_string();
    let kv = |args: &[&str]| {
        let mut all = vec!["debug", "kv"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--host", &host, "--certs-dir", &certs]);
        meridian(&all)
    };
    let put = kv(&["put", "k", "v"]);
    assert!(put.status.success(), "{put:?}");

    cluster.nodes[0].kill();
    cluster.nodes[0].start();
    // From the restart on, as fast as the CLI goes: every answer is the
    // value, or a failure that never advises an init.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let get = kv(&["get", "k"]);
        let stderr = String::from_utf8_lossy(&get.stderr);
        assert!(
            !stderr.contains("meridian init") && !stderr.contains("not part of"),
            "a restarting node advised an init: {stderr}"
        );
        if get.status.success() {
            assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted node never served: {stderr}"
        );
    }
    // No transaction holds the key: `debug txn` says so.
    let txn = meridian(&["debug", "txn", "k", "--host", &host, "--certs-dir", &certs]);
    assert!(txn.status.success(), "{txn:?}");
    assert_eq!(
        String::from_utf8_lossy(&txn.stdout).trim(),
        "no intent on k"
    );
}
