//! Process-level test harness: real `meridian` processes (the binary of
//! this build), certificates from `meridian cert`, and a KV client built
//! from the same crates the CLI uses.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use meridian_kvclient::DistSenderConfig;
pub use meridian_server::client::Client;
use meridian_server::status::{NodeStatus, RangeStatus};

pub const BIN: &str = env!("CARGO_BIN_EXE_meridian");

pub fn meridian(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("MERIDIAN_LOG", "warn")
        .output()
        .expect("running meridian")
}

/// A UDP and a TCP port that were free a moment ago. The UDP port (a
/// node's `--listen`) is free on TCP too, since a node serves SQL on the
/// same port over TCP by default.
pub fn free_ports() -> (u16, u16) {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("udp port");
        let port = udp.local_addr().unwrap().port();
        let Ok(_sql) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp port");
        return (port, tcp.local_addr().unwrap().port());
    }
}

pub fn assert_clean_failure(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a failure, got success; stderr: {stderr}"
    );
    assert!(
        stderr.contains(expected),
        "stderr should mention {expected:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "a panic: {stderr}");
}

pub fn create_certs(dir: &Path) {
    let d = dir.to_str().unwrap();
    assert!(meridian(&["cert", "create-ca", "--certs-dir", d])
        .status
        .success());
    assert!(meridian(&[
        "cert",
        "create-node",
        "--certs-dir",
        d,
        "127.0.0.1",
        "localhost"
    ])
    .status
    .success());
}

/// One `meridian start` process.
pub struct NodeProc {
    pub index: usize,
    pub store: PathBuf,
    pub addr: SocketAddr,
    pub http: SocketAddr,
    pub log: PathBuf,
    pub args: Vec<String>,
    child: Option<Child>,
}

impl NodeProc {
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(BIN)
            .args(&self.args)
            .env("MERIDIAN_LOG", "info,openraft=warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning meridian start");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush or drain.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("waiting for the node")
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three (or more) processes on loopback, joined through the first two.
pub struct ProcCluster {
    pub dir: tempfile::TempDir,
    pub certs: PathBuf,
    pub nodes: Vec<NodeProc>,
}

impl ProcCluster {
    pub fn start(n: usize, extra: &[&str]) -> ProcCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        create_certs(&certs);
        let ports: Vec<(u16, u16)> = (0..n).map(|_| free_ports()).collect();
        let join: Vec<String> = ports
            .iter()
            .take(2)
            .map(|(p, _)| format!("127.0.0.1:{p}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, http)) in ports.iter().enumerate() {
            let store = dir.path().join(format!("n{}", i + 1));
            let mut args: Vec<String> = [
                "start",
                "--store",
                store.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--http",
                &format!("127.0.0.1:{http}"),
                "--join",
                &join.join(","),
                "--certs-dir",
                certs.to_str().unwrap(),
                "--locality",
                &format!("region=r1,zone=z{}", i + 1),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            args.extend(extra.iter().map(|s| s.to_string()));
            let mut node = NodeProc {
                index: i,
                store,
                addr: format!("127.0.0.1:{port}").parse().unwrap(),
                http: format!("127.0.0.1:{http}").parse().unwrap(),
                log: dir.path().join(format!("n{}.log", i + 1)),
                args,
                child: None,
            };
            node.start();
            nodes.push(node);
        }
        ProcCluster { dir, certs, nodes }
    }

    pub fn certs_arg(&self) -> &str {
        self.certs.to_str().unwrap()
    }

    /// `meridian init` on the first node, retried while it is not up yet.
    pub fn init(&self) {
        // The first node serves HTTP once its endpoint and handlers are up.
        let http = self.nodes[0].http;
        wait_for(Duration::from_secs(60), || {
            std::net::TcpStream::connect_timeout(&http, Duration::from_millis(200)).ok()
        });
        let host = self.nodes[0].addr.to_string();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = meridian(&["init", "--host", &host, "--certs-dir", self.certs_arg()]);
            if out.status.success() {
                assert!(String::from_utf8_lossy(&out.stdout).contains("initialized"));
                return;
            }
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            // Only an unreachable node is worth another try.
            if !stderr.contains("cannot reach") || Instant::now() > deadline {
                self.dump_logs();
                panic!("meridian init failed: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `meridian node status --json` through node `via`.
    pub fn node_status(&self, via: usize) -> Option<Vec<NodeStatus>> {
        self.json_command(via, &["node", "status"])
    }

    /// A `--json` command through node `via`, its output decoded.
    fn json_command<T: serde::de::DeserializeOwned>(
        &self,
        via: usize,
        command: &[&str],
    ) -> Option<T> {
        let host = self.nodes[via].addr.to_string();
        let mut args = command.to_vec();
        args.extend(["--json", "--host", &host, "--certs-dir", self.certs_arg()]);
        let out = meridian(&args);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// The index in `nodes` of the process that is node `node_id` (ids
    /// follow the order in which nodes joined, not the start order).
    pub fn index_of(&self, node_id: u64) -> usize {
        let nodes = wait_for(Duration::from_secs(30), || self.node_status(0));
        let address = &nodes
            .iter()
            .find(|n| n.node_id == node_id)
            .expect("a node with that id")
            .address;
        self.nodes
            .iter()
            .position(|p| p.addr.to_string() == *address)
            .expect("a process with that address")
    }

    /// `meridian debug ranges --json` through node `via`.
    pub fn ranges(&self, via: usize) -> Option<Vec<RangeStatus>> {
        self.json_command(via, &["debug", "ranges"])
    }

    /// Waits until every range has `voters` voters and a leaseholder.
    pub fn wait_replicated(
        &self,
        via: usize,
        voters: usize,
        timeout: Duration,
    ) -> Vec<RangeStatus> {
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Some(ranges) = self.ranges(via) {
                if ranges
                    .iter()
                    .all(|r| r.voters.len() == voters && r.leaseholder.is_some())
                {
                    return ranges;
                }
                last = Some(ranges);
            }
            if Instant::now() >= deadline {
                self.dump_logs();
                panic!("ranges not at {voters} voters with a leaseholder within {timeout:?}; last seen: {last:#?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn dump_logs(&self) {
        for node in &self.nodes {
            eprintln!(
                "----- node {} log -----\n{}",
                node.index + 1,
                node.log_text()
            );
        }
    }
}

/// A plain HTTP/1.1 GET; returns the status line and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("HTTP connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A child process killed if the test ends before it (a panic).
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    pub fn new(child: Child) -> Self {
        ChildGuard(Some(child))
    }

    pub fn wait_with_output(mut self) -> Output {
        self.0
            .take()
            .expect("not waited for yet")
            .wait_with_output()
            .expect("child output")
    }

    /// The exit status, if the child has exited.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.0
            .as_mut()
            .expect("not waited for yet")
            .try_wait()
            .expect("child status")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` every 200 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// [`wait_for`] for conditions on this process's own state (a ledger of
/// writes, say), polling every 100 ms without blocking the runtime.
pub async fn wait_for_async<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that something does *not* happen: polls `check` every 200 ms
/// for `duration` and panics the first time it answers `Some(false)`
/// (`None`: could not look this time, e.g. a command timed out).
pub fn holds_for(duration: Duration, what: &str, mut check: impl FnMut() -> Option<bool>) {
    let end = Instant::now() + duration;
    let mut looked = 0;
    while Instant::now() < end {
        match check() {
            Some(true) => looked += 1,
            Some(false) => panic!("{what}: no longer true"),
            None => {}
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(looked > 0, "{what}: never could be checked in {duration:?}");
}

/// A KV client of the cluster, the one `meridian debug kv` uses.
pub async fn connect_client(certs: &Path, hosts: &[SocketAddr], deadline: Duration) -> Client {
    let config = DistSenderConfig {
        rpc_timeout: Duration::from_secs(2),
        deadline,
    };
    Client::connect(certs, hosts, config)
        .await
        .expect("connecting a client")
}
