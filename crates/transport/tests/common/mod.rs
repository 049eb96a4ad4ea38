//! Helpers shared by the integration tests: certificates in a temporary
//! directory, nodes on ephemeral loopback ports, a few RPC types.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_transport::{
    create_ca, create_node_cert, load_node_identity, Locality, NetworkModel, NodeId, Rpc,
    Transport, TransportConfig, TransportError,
};
use tempfile::TempDir;

/// Echoes its string back. Not idempotent (the default).
pub struct Echo;
impl Rpc for Echo {
    const KIND: u16 = 100;
    const NAME: &'static str = "echo";
    type Request = String;
    type Response = String;
}

/// Like Echo, but declared idempotent, so the transport may retry it.
pub struct IdempotentEcho;
impl Rpc for IdempotentEcho {
    const KIND: u16 = 101;
    const NAME: &'static str = "idempotent_echo";
    const IDEMPOTENT: bool = true;
    type Request = String;
    type Response = String;
}

/// A one-way message carrying a number.
pub struct Note;
impl Rpc for Note {
    const KIND: u16 = 102;
    const NAME: &'static str = "note";
    type Request = u64;
    type Response = ();
}

pub const SHORT: Duration = Duration::from_millis(300);
pub const LONG: Duration = Duration::from_secs(10);

/// A certs directory with a CA and one node certificate shared by every node
/// of a test.
pub fn certs() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    create_ca(dir.path()).expect("create CA");
    create_node_cert(dir.path(), &["localhost", "127.0.0.1"]).expect("create node cert");
    dir
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

pub fn config(id: NodeId, region: &str) -> TransportConfig {
    TransportConfig::new(id, loopback(), Locality::new(region, format!("{region}-a")))
}

/// Starts a node with the system clock and registers Echo, IdempotentEcho
/// (both counted in `calls`) and Note (summed into `notes`).
pub async fn start(certs: &Path, config: TransportConfig) -> Node {
    start_with_clock(certs, config, Arc::new(HybridClock::system())).await
}

pub async fn start_with_clock(
    certs: &Path,
    config: TransportConfig,
    clock: Arc<HybridClock>,
) -> Node {
    let identity = load_node_identity(certs).expect("load identity");
    let transport = start_retrying_bind(config, &identity, clock).await;
    let calls = Arc::new(AtomicU64::new(0));
    let notes = Arc::new(AtomicU64::new(0));
    let c = calls.clone();
    transport
        .register::<Echo, _, _>(move |_, s: String| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { s }
        })
        .unwrap();
    let c = calls.clone();
    transport
        .register::<IdempotentEcho, _, _>(move |_, s: String| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { s }
        })
        .unwrap();
    let n = notes.clone();
    transport
        .register::<Note, _, _>(move |_, v: u64| {
            n.fetch_add(v, Ordering::SeqCst);
            async {}
        })
        .unwrap();
    Node {
        transport,
        calls,
        notes,
    }
}

/// Binds, retrying for a while if the address is still held by a node that
/// was just stopped (restart tests reuse the port).
async fn start_retrying_bind(
    config: TransportConfig,
    identity: &meridian_transport::NodeIdentity,
    clock: Arc<HybridClock>,
) -> Transport {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Transport::start(config.clone(), identity, clock.clone()).await {
            Ok(t) => return t,
            Err(TransportError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("start transport: {e}"),
        }
    }
}

pub struct Node {
    pub transport: Transport,
    pub calls: Arc<AtomicU64>,
    pub notes: Arc<AtomicU64>,
}

impl Node {
    pub fn id(&self) -> NodeId {
        self.transport.node_id()
    }

    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn notes(&self) -> u64 {
        self.notes.load(Ordering::SeqCst)
    }
}

/// Puts every node in every other node's address book.
pub fn introduce(nodes: &[&Node]) {
    for a in nodes {
        for b in nodes {
            if a.id() != b.id() {
                a.transport.set_peer(
                    b.id(),
                    b.transport.local_addr(),
                    b.transport.locality().clone(),
                );
            }
        }
    }
}

pub async fn echo(
    from: &Node,
    to: &Node,
    text: &str,
    timeout: Duration,
) -> Result<String, TransportError> {
    from.transport
        .call::<Echo>(to.id(), &text.to_string(), timeout)
        .await
}

/// Waits until `cond` holds, polling; panics after `limit`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn model() -> NetworkModel {
    let m = NetworkModel::new();
    eprintln!("network model seed: {}", m.seed());
    m
}
