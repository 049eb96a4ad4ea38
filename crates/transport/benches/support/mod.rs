//! Shared by `benches/rpc.rs` and `examples/rpc_throughput.rs`: two
//! transports on loopback, and the plain TCP request/response baseline they
//! are compared with.
//!
//! The baseline does what the transport does minus QUIC and TLS: the same
//! postcard-encoded request, a 4-byte length prefix, one response per
//! request on a TCP connection with `TCP_NODELAY`, and the server decodes
//! and re-encodes the body as the transport's typed handler does.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_transport::{
    create_ca, create_node_cert, load_node_identity, Locality, Rpc, Transport, TransportConfig,
};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// The RPC measured: echo a small byte string.
pub struct BenchEcho;
impl Rpc for BenchEcho {
    const KIND: u16 = 1000;
    const NAME: &'static str = "bench_echo";
    type Request = Vec<u8>;
    type Response = Vec<u8>;
}

/// Bytes of the request and response payload.
pub const PAYLOAD: usize = 32;
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn payload() -> Vec<u8> {
    (0..PAYLOAD as u8).collect()
}

/// A multi-threaded tokio runtime with `workers` worker threads.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs `fut` on `on` (the server's runtime) if given, else here.
async fn spawn_on<F>(on: Option<&Handle>, fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match on {
        Some(handle) => handle.spawn(fut).await.expect("server task"),
        None => fut.await,
    }
}

/// Two nodes on loopback; node 1 knows node 2, which serves `BenchEcho`.
/// Node 1 runs on the current runtime, node 2 on `server_rt` if given (to
/// model two processes), else on the current runtime too.
pub struct QuicPair {
    pub client: Transport,
    pub server: Transport,
    _certs: TempDir,
}

impl QuicPair {
    pub async fn start(server_rt: Option<&Handle>) -> QuicPair {
        let certs = tempfile::tempdir().unwrap();
        create_ca(certs.path()).unwrap();
        create_node_cert(certs.path(), &["127.0.0.1"]).unwrap();
        let id = load_node_identity(certs.path()).unwrap();
        let client = start_node(1, id.clone()).await;
        let server = spawn_on(server_rt, async move {
            let server = start_node(2, id).await;
            server
                .register::<BenchEcho, _, _>(|_, req: Vec<u8>| async move { req })
                .unwrap();
            server
        })
        .await;
        client.set_peer(2, server.local_addr(), server.locality().clone());
        QuicPair {
            client,
            server,
            _certs: certs,
        }
    }

    pub async fn call(&self, req: &Vec<u8>) -> Vec<u8> {
        self.client
            .call::<BenchEcho>(2, req, TIMEOUT)
            .await
            .expect("bench call")
    }

    pub async fn shutdown(self) {
        self.client.shutdown().await;
        self.server.shutdown().await;
    }
}

async fn start_node(node: u64, id: meridian_transport::NodeIdentity) -> Transport {
    let config = TransportConfig::new(
        node,
        "127.0.0.1:0".parse().unwrap(),
        Locality::new("local", "a"),
    );
    Transport::start(config, &id, Arc::new(HybridClock::system()))
        .await
        .unwrap()
}

/// A TCP echo server speaking length-prefixed postcard frames, on
/// `server_rt` if given.
pub async fn tcp_server(server_rt: Option<&Handle>) -> SocketAddr {
    spawn_on(server_rt, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                tokio::spawn(serve_tcp(stream));
            }
        });
        addr
    })
    .await
}

async fn serve_tcp(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Ok(len) = stream.read_u32().await else {
            return;
        };
        buf.resize(len as usize, 0);
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let req: Vec<u8> = postcard::from_bytes(&buf).unwrap();
        let out = frame(&postcard::to_allocvec(&req).unwrap());
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// One TCP connection doing one request/response at a time.
pub struct TcpClient {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpClient {
    pub async fn connect(addr: SocketAddr) -> TcpClient {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        TcpClient {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn call(&mut self, req: &Vec<u8>) -> Vec<u8> {
        let out = frame(&postcard::to_allocvec(req).unwrap());
        self.stream.write_all(&out).await.unwrap();
        let len = self.stream.read_u32().await.unwrap();
        self.buf.resize(len as usize, 0);
        self.stream.read_exact(&mut self.buf).await.unwrap();
        postcard::from_bytes(&self.buf).unwrap()
    }
}
