//! The [`Transport`]: one quinn endpoint per node that listens and dials.
//! This file holds its configuration, public API, address book and
//! shutdown; the calling side lives in `transport/outbound.rs` (dialing,
//! calls, one-way sends, retries, the network model on the way there and
//! back) and the serving side in `transport/inbound.rs` (accepting, reading
//! frames, refusing bad ones, clock checks, running handlers).
//!
//! Does not own: the wire format ([`crate::frame`]), handler typing
//! ([`crate::rpc`]), TLS ([`crate::tls`]) or the model's rules
//! ([`crate::network_model`]).
//!
//! Connections: each node dials its own connection to each peer it calls
//! and serves the connections its peers dialed, so a pair of nodes that talk
//! both ways holds two connections, one per direction (CockroachDB does the
//! same). All calls from one node to another share that node's connection, as
//! streams: one bidirectional stream per call, one unidirectional stream per
//! one-way message. Opening a stream costs no round trip.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use meridian_hlc::{ClockOffsetError, HybridClock};
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::certs::NodeIdentity;
use crate::error::TransportError;
use crate::frame::{
    decode_frame, encode_header, read_frame, Envelope, FrameError, ReadFrameError, WireError,
    DEFAULT_MAX_FRAME_SIZE, LENGTH_PREFIX_LEN,
};
use crate::metrics::{PeerStats, PeerStatsSnapshot, StatsRegistry};
use crate::network_model::{NetworkModel, Verdict};
use crate::rpc::{run_handler, Handlers, Ping, RequestContext, Rpc};
use crate::tls::{self, QuicParams};
use meridian_topology::{Locality, NodeId};

mod inbound;
mod outbound;

/// The id under which calls to a node of unknown id are counted.
const UNKNOWN_NODE: NodeId = 0;

/// Application error code of a connection closed by [`Transport::shutdown`].
const CLOSE_SHUTDOWN: u32 = 0;
/// Application error code of a connection replaced after a peer moved.
const CLOSE_PEER_MOVED: u32 = 2;

/// How a node's transport is set up. [`TransportConfig::new`] fills in the
/// defaults; change fields as needed before [`Transport::start`].
#[derive(Debug, Clone)]
pub struct TransportConfig {
    pub node_id: NodeId,
    /// Where to listen (UDP). Port 0 picks a free port; see
    /// [`Transport::local_addr`].
    pub listen_addr: SocketAddr,
    pub locality: Locality,
    /// Largest frame sent or accepted (default 64 MiB).
    pub max_frame_size: u32,
    /// A peer that sent nothing for this long is declared dead and its
    /// connection closed (QUIC idle timeout; keep-alives go out every
    /// quarter of it, so a live but quiet peer never hits it). The smaller
    /// value of the two ends applies. Default 6 s.
    pub peer_timeout: Duration,
    /// Bound on dialing plus writing a one-way message (default 5 s). Calls
    /// use their own timeout.
    pub send_timeout: Duration,
    /// Concurrent streams a peer may open, each of bidirectional and
    /// unidirectional (default 10,000; quinn's default is 100).
    pub max_concurrent_streams: u32,
    /// Flow-control windows, sized for 150 ms round trips at about 1 Gbit/s.
    pub stream_receive_window: u32,
    pub connection_receive_window: u32,
    pub send_window: u64,
    /// The injected network model; `None` (the default) costs nothing.
    pub network: Option<NetworkModel>,
}

impl TransportConfig {
    pub fn new(node_id: NodeId, listen_addr: SocketAddr, locality: Locality) -> Self {
        TransportConfig {
            node_id,
            listen_addr,
            locality,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            peer_timeout: Duration::from_secs(6),
            send_timeout: Duration::from_secs(5),
            max_concurrent_streams: 10_000,
            stream_receive_window: 16 << 20,
            connection_receive_window: 32 << 20,
            send_window: 32 << 20,
            network: None,
        }
    }

    fn quic_params(&self) -> QuicParams {
        QuicParams {
            max_concurrent_streams: self.max_concurrent_streams,
            stream_receive_window: self.stream_receive_window,
            connection_receive_window: self.connection_receive_window,
            send_window: self.send_window,
            idle_timeout: self.peer_timeout,
            keep_alive_interval: self.peer_timeout / 4,
        }
    }
}

/// A node's endpoint for talking to other nodes. Cheap to clone; clones share
/// the endpoint. Call [`Transport::shutdown`] to close it cleanly (dropping
/// the last clone closes it abruptly).
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("node_id", &self.inner.node_id())
            .field("local_addr", &self.inner.local_addr)
            .field("locality", &self.inner.locality)
            .finish_non_exhaustive()
    }
}

struct Inner {
    /// 0 until a joining node learns its id (see [`Transport::set_node_id`]).
    node_id: AtomicU64,
    locality: Locality,
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    clock: Arc<HybridClock>,
    handlers: Handlers,
    peers: RwLock<HashMap<NodeId, Arc<Peer>>>,
    stats: StatsRegistry,
    network: Option<NetworkModel>,
    max_frame_size: u32,
    send_timeout: Duration,
    closed: AtomicBool,
    /// Inbound frames refused before their sender was known.
    malformed_frames: AtomicU64,
}

impl Inner {
    fn node_id(&self) -> NodeId {
        self.node_id.load(Relaxed)
    }
}

/// An address-book entry and its cached outbound connection.
struct Peer {
    id: NodeId,
    addr: SocketAddr,
    locality: Locality,
    conn: Mutex<Option<quinn::Connection>>,
    /// Held while dialing, so concurrent callers share one dial.
    dial: tokio::sync::Mutex<()>,
    stats: Arc<PeerStats>,
}

impl Peer {
    fn cached(&self) -> Option<quinn::Connection> {
        let conn = self.conn.lock();
        conn.as_ref()
            .filter(|c| c.close_reason().is_none())
            .cloned()
    }

    /// Drops the cached connection if it is still `conn`.
    fn forget(&self, conn: &quinn::Connection) {
        let mut cached = self.conn.lock();
        if cached.as_ref().map(|c| c.stable_id()) == Some(conn.stable_id()) {
            *cached = None;
        }
    }
}

impl Transport {
    /// Binds the endpoint and starts serving. Must run inside a tokio
    /// runtime.
    pub async fn start(
        config: TransportConfig,
        identity: &NodeIdentity,
        clock: Arc<HybridClock>,
    ) -> Result<Transport, TransportError> {
        if config.max_frame_size < 1024 {
            return Err(TransportError::Config(
                "max_frame_size below 1 KiB".to_string(),
            ));
        }
        if config.peer_timeout < Duration::from_millis(100) {
            return Err(TransportError::Config(
                "peer_timeout below 100 ms".to_string(),
            ));
        }
        let params = config.quic_params();
        let server = tls::server_config(identity, &params)?;
        let client = tls::client_config(identity, &params)?;
        let socket = std::net::UdpSocket::bind(config.listen_addr)
            .map_err(|e| TransportError::io(format!("binding UDP {}", config.listen_addr), e))?;
        let mut endpoint = quinn::Endpoint::new(
            tls::endpoint_config(identity),
            Some(server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| TransportError::io("starting the QUIC endpoint", e))?;
        endpoint.set_default_client_config(client);
        let local_addr = endpoint
            .local_addr()
            .map_err(|e| TransportError::io("reading the local address", e))?;

        let inner = Arc::new(Inner {
            node_id: AtomicU64::new(config.node_id),
            locality: config.locality,
            endpoint: endpoint.clone(),
            local_addr,
            clock,
            handlers: Handlers::default(),
            peers: RwLock::new(HashMap::new()),
            stats: StatsRegistry::default(),
            network: config.network,
            max_frame_size: config.max_frame_size,
            send_timeout: config.send_timeout,
            closed: AtomicBool::new(false),
            malformed_frames: AtomicU64::new(0),
        });
        inner
            .handlers
            .register_reserved::<Ping, _, _>(|_, ()| async {})?;
        tokio::spawn(inbound::accept_loop(Arc::downgrade(&inner), endpoint));
        debug!(node = inner.node_id(), addr = %local_addr, "transport started");
        Ok(Transport { inner })
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id()
    }

    /// Names this node in the frames it sends from now on. A node that joins
    /// a cluster starts its transport as node 0 (to ask for an id) and sets
    /// the id it was given.
    pub fn set_node_id(&self, node_id: NodeId) {
        self.inner.node_id.store(node_id, Relaxed);
    }

    pub fn locality(&self) -> &Locality {
        &self.inner.locality
    }

    /// The address the endpoint is bound to (with the real port if the
    /// configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.inner.clock
    }

    pub fn network(&self) -> Option<&NetworkModel> {
        self.inner.network.as_ref()
    }

    /// Adds or updates a peer in the address book. A changed address or
    /// locality closes the cached connection; the next call dials anew.
    pub fn set_peer(&self, node: NodeId, addr: SocketAddr, locality: Locality) {
        let mut peers = self.inner.peers.write();
        if let Some(old) = peers.get(&node) {
            if old.addr == addr && old.locality == locality {
                return;
            }
            if let Some(conn) = old.conn.lock().take() {
                conn.close(CLOSE_PEER_MOVED.into(), b"peer moved");
            }
        }
        let peer = Peer {
            id: node,
            addr,
            locality,
            conn: Mutex::new(None),
            dial: tokio::sync::Mutex::new(()),
            stats: self.inner.stats.get(node),
        };
        peers.insert(node, Arc::new(peer));
    }

    /// Removes a peer from the address book and closes its connection.
    pub fn remove_peer(&self, node: NodeId) {
        if let Some(peer) = self.inner.peers.write().remove(&node) {
            if let Some(conn) = peer.conn.lock().take() {
                conn.close(CLOSE_PEER_MOVED.into(), b"peer removed");
            }
        }
    }

    /// Registers the handler of RPC `R`. The handler runs on its own task
    /// for every request; its panics are caught and reported to the caller.
    pub fn register<R, F, Fut>(&self, handler: F) -> Result<(), TransportError>
    where
        R: Rpc,
        F: Fn(RequestContext, R::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        self.inner.handlers.register::<R, F, Fut>(handler)
    }

    /// Registers a handler that takes and returns raw body bytes.
    pub fn register_raw<F, Fut>(
        &self,
        kind: u16,
        name: &'static str,
        handler: F,
    ) -> Result<(), TransportError>
    where
        F: Fn(RequestContext, Bytes) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Bytes> + Send + 'static,
    {
        self.inner.handlers.register_raw(kind, name, handler)
    }

    /// Calls RPC `R` on node `to` and waits at most `timeout` for its
    /// response.
    pub async fn call<R: Rpc>(
        &self,
        to: NodeId,
        request: &R::Request,
        timeout: Duration,
    ) -> Result<R::Response, TransportError> {
        let body = encode_body(request, R::NAME)?;
        let response = self
            .inner
            .call(to, R::KIND, R::NAME, R::IDEMPOTENT, body, timeout)
            .await?;
        postcard::from_bytes(&response)
            .map_err(|e| TransportError::Decode(format!("{} response: {e}", R::NAME)))
    }

    /// Calls RPC `R` on whatever node listens at `addr`: for nodes whose id
    /// is not known yet (a `--join` address, a CLI's `--host`). The
    /// connection lasts for this call only, and a lost request is not
    /// retried.
    pub async fn call_addr<R: Rpc>(
        &self,
        addr: SocketAddr,
        request: &R::Request,
        timeout: Duration,
    ) -> Result<R::Response, TransportError> {
        let body = encode_body(request, R::NAME)?;
        let response = self
            .inner
            .call_addr(addr, R::KIND, R::NAME, body, timeout)
            .await?;
        postcard::from_bytes(&response)
            .map_err(|e| TransportError::Decode(format!("{} response: {e}", R::NAME)))
    }

    /// Sends RPC `R`'s request to `to` without waiting for anything but the
    /// local hand-off to QUIC (and the dial, if there is no connection yet,
    /// bounded by [`TransportConfig::send_timeout`]). The handler's response
    /// is discarded. Delivery is not confirmed: a message the network model
    /// drops, or delays (it is then sent by a background task), returns `Ok`.
    pub async fn send<R: Rpc>(
        &self,
        to: NodeId,
        message: &R::Request,
    ) -> Result<(), TransportError> {
        let body = encode_body(message, R::NAME)?;
        self.inner.send(to, R::KIND, R::NAME, body).await
    }

    /// [`Transport::call`] with the body already encoded; returns the raw
    /// response body. Not retried after an ambiguous connection loss.
    pub async fn call_raw(
        &self,
        to: NodeId,
        kind: u16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, TransportError> {
        self.inner.call(to, kind, "raw", false, body, timeout).await
    }

    /// [`Transport::send`] with the body already encoded.
    pub async fn send_raw(&self, to: NodeId, kind: u16, body: Bytes) -> Result<(), TransportError> {
        self.inner.send(to, kind, "raw", body).await
    }

    /// Measures one round trip to `to` (network model delays included) and
    /// folds it into the peer's RTT estimate.
    pub async fn ping(&self, to: NodeId, timeout: Duration) -> Result<Duration, TransportError> {
        let start = Instant::now();
        self.call::<Ping>(to, &(), timeout).await?;
        let rtt = start.elapsed();
        self.inner.stats.get(to).record_rtt(rtt);
        Ok(rtt)
    }

    /// Counters of every peer this node has exchanged messages with.
    /// The moving average of the round trips measured to `node` (pings,
    /// injected latency included), if any was measured.
    pub fn round_trip(&self, node: NodeId) -> Option<Duration> {
        self.inner.stats.rtt(node)
    }

    pub fn peer_stats(&self) -> BTreeMap<NodeId, PeerStatsSnapshot> {
        let mut snapshot = self.inner.stats.snapshot();
        for (id, peer) in self.inner.peers.read().iter() {
            if let Some(s) = snapshot.get_mut(id) {
                if let Some(conn) = peer.cached() {
                    s.connected = true;
                    s.quic_rtt = Some(conn.rtt());
                }
            }
        }
        snapshot
    }

    /// Open QUIC connections of this endpoint, inbound and outbound.
    pub fn open_connections(&self) -> usize {
        self.inner.endpoint.open_connections()
    }

    /// Inbound frames refused before their sender could be read (garbage,
    /// wrong version, oversized).
    pub fn malformed_frames(&self) -> u64 {
        self.inner.malformed_frames.load(Relaxed)
    }

    /// Closes every connection, stops accepting, and waits until the
    /// endpoint is idle. Calls made afterwards fail with
    /// [`TransportError::Closed`].
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Relaxed);
        self.inner
            .endpoint
            .close(CLOSE_SHUTDOWN.into(), b"shutdown");
        for peer in self.inner.peers.read().values() {
            peer.conn.lock().take();
        }
        self.inner.endpoint.wait_idle().await;
        self.inner.handlers.clear();
        debug!(node = self.inner.node_id(), "transport shut down");
    }

    /// Writes `bytes` verbatim on a new stream to `to` and returns whatever
    /// comes back. For tests that need to send malformed frames.
    #[doc(hidden)]
    pub async fn exchange_raw_bytes(
        &self,
        to: NodeId,
        bytes: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let inner = &self.inner;
        let peer = inner.peer(to)?;
        let io = |e: &dyn std::fmt::Display| TransportError::ConnectionLost {
            to,
            rpc: "raw bytes",
            reason: e.to_string(),
        };
        let run = async {
            let conn = inner.connection(&peer).await?;
            let (mut send, mut recv) = conn.open_bi().await.map_err(|e| io(&e))?;
            // The peer may stop reading early (oversized frame): read anyway.
            let _ = send.write_all(bytes).await;
            let _ = send.finish();
            recv.read_to_end(inner.max_frame_size as usize + LENGTH_PREFIX_LEN)
                .await
                .map_err(|e| io(&e))
        };
        tokio::time::timeout(timeout, run)
            .await
            .map_err(|_| TransportError::Timeout {
                to,
                rpc: "raw bytes",
                timeout,
            })?
    }
}

fn encode_body<T: serde::Serialize>(value: &T, rpc: &str) -> Result<Bytes, TransportError> {
    postcard::to_allocvec(value)
        .map(Bytes::from)
        .map_err(|e| TransportError::Encode(format!("{rpc}: {e}")))
}

impl Inner {
    fn peer(&self, node: NodeId) -> Result<Arc<Peer>, TransportError> {
        if self.closed.load(Relaxed) {
            return Err(TransportError::Closed);
        }
        self.peers
            .read()
            .get(&node)
            .cloned()
            .ok_or(TransportError::UnknownNode(node))
    }

    #[inline]
    fn active_network(&self) -> Option<&NetworkModel> {
        self.network.as_ref().filter(|n| n.is_active())
    }

    fn header(&self, kind: u16, body_len: usize) -> Result<Bytes, TransportError> {
        let env = Envelope {
            kind,
            from: self.node_id(),
            timestamp: self.clock.now(),
            error: None,
        };
        encode_header(&env, body_len, self.max_frame_size).map_err(frame_error)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle went away without shutdown(): close abruptly.
        self.endpoint.close(CLOSE_SHUTDOWN.into(), b"dropped");
    }
}

fn frame_error(e: FrameError) -> TransportError {
    match e {
        FrameError::TooLarge { len, max } => TransportError::FrameTooLarge { len, max },
        other => TransportError::Decode(other.to_string()),
    }
}
