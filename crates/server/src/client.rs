//! A client of a running cluster, for the CLI, benchmarks and tests: a
//! QUIC endpoint of its own (node id 0, any certificate of the cluster CA)
//! and a DistSender that learns the cluster from the nodes it was given,
//! then from the nodes they told it about.
//!
//! Not here: a node's own view of its cluster (`cluster_view`), the
//! commands that use the client (`cli`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_hlc::HybridClock;
use meridian_kvapi::{NodeId, RangeDescriptor};
use meridian_kvclient::{ClusterView, DistSender, DistSenderConfig};
use meridian_transport::{Locality, Rpc, Transport, TransportConfig, TransportError};
use parking_lot::Mutex;

use crate::error::ServerError;
use crate::rpc::{ClusterInfo, ClusterInfoRpc};

/// Cheap to clone.
#[derive(Clone)]
pub struct Client {
    pub transport: Transport,
    pub ds: DistSender,
    hosts: Vec<SocketAddr>,
}

/// A client endpoint: listens on an ephemeral port of the family of `host`.
pub async fn endpoint(certs_dir: &Path, host: SocketAddr) -> Result<Transport, ServerError> {
    meridian_transport::install_crypto_provider();
    let identity = meridian_transport::load_node_identity(certs_dir)?;
    let listen: SocketAddr = if host.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid")
    } else {
        "[::]:0".parse().expect("valid")
    };
    let config = TransportConfig::new(0, listen, Locality::default());
    Ok(Transport::start(config, &identity, Arc::new(HybridClock::system())).await?)
}

impl Client {
    /// Connects to the cluster that the nodes at `hosts` belong to.
    pub async fn connect(
        certs_dir: &Path,
        hosts: &[SocketAddr],
        config: DistSenderConfig,
    ) -> Result<Client, ServerError> {
        let first = *hosts
            .first()
            .ok_or_else(|| ServerError::Config("no host to connect to".into()))?;
        let transport = endpoint(certs_dir, first).await?;
        let view = Arc::new(HostView {
            transport: transport.clone(),
            hosts: hosts.to_vec(),
            known: Mutex::new(Vec::new()),
        });
        let info = member_info(&transport, hosts).await?;
        view.learn(&info);
        let ds = DistSender::new(transport.clone(), view, config);
        Ok(Client {
            transport,
            ds,
            hosts: hosts.to_vec(),
        })
    }

    /// Calls `R` on the first node this client was given.
    pub async fn call_host<R: Rpc>(
        &self,
        request: &R::Request,
        timeout: Duration,
    ) -> Result<R::Response, TransportError> {
        self.transport
            .call_addr::<R>(self.hosts[0], request, timeout)
            .await
    }
}

/// How long a client waits for a restarting node to finish starting.
const STARTING_WAIT: Duration = Duration::from_secs(10);

/// What the first node of `hosts` that serves as a cluster member knows of
/// its cluster. A node that is restarting answers `starting`: the client
/// asks the other hosts, then asks again for up to [`STARTING_WAIT`]. Only a
/// node with no identity at all is reported as not initialized.
async fn member_info(
    transport: &Transport,
    hosts: &[SocketAddr],
) -> Result<ClusterInfo, ServerError> {
    let deadline = tokio::time::Instant::now() + STARTING_WAIT;
    loop {
        let mut verdict = None;
        for &host in hosts {
            let answer = transport
                .call_addr::<ClusterInfoRpc>(host, &(), Duration::from_secs(5))
                .await;
            let addr = host.to_string();
            let error = match answer {
                Ok(info) if info.cluster_id.is_some() => return Ok(info),
                Ok(info) if info.starting => ServerError::Starting { addr },
                Ok(_) => ServerError::NotInitialized { addr },
                Err(e) => ServerError::Unreachable {
                    addr,
                    reason: e.to_string(),
                },
            };
            // Report the most hopeful answer: starting, then not
            // initialized, then unreachable.
            let rank = |e: &ServerError| match e {
                ServerError::Starting { .. } => 0,
                ServerError::NotInitialized { .. } => 1,
                _ => 2,
            };
            if verdict.as_ref().is_none_or(|v| rank(&error) < rank(v)) {
                verdict = Some(error);
            }
        }
        let verdict = verdict.ok_or_else(|| ServerError::Config("no host to connect to".into()))?;
        let retry = matches!(verdict, ServerError::Starting { .. });
        if !retry || tokio::time::Instant::now() >= deadline {
            return Err(verdict);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where the client's DistSender finds the first range: the given hosts,
/// then every node they named.
struct HostView {
    transport: Transport,
    hosts: Vec<SocketAddr>,
    known: Mutex<Vec<NodeId>>,
}

impl HostView {
    /// The first range from a node that holds it (it answers from its own
    /// replica); failing that, the first descriptor a node remembered,
    /// which may name only nodes that are gone.
    async fn first_range(&self) -> Option<RangeDescriptor> {
        let mut remembered = None;
        for &host in &self.hosts {
            let info = self
                .transport
                .call_addr::<ClusterInfoRpc>(host, &(), Duration::from_secs(2))
                .await;
            if let Some(first) = info
                .ok()
                .and_then(|i| self.holders_first_range(&i, &mut remembered))
            {
                return Some(first);
            }
        }
        let known = self.known.lock().clone();
        for node in known {
            let info = self
                .transport
                .call::<ClusterInfoRpc>(node, &(), Duration::from_secs(2))
                .await;
            if let Some(first) = info
                .ok()
                .and_then(|i| self.holders_first_range(&i, &mut remembered))
            {
                return Some(first);
            }
        }
        remembered
    }

    /// `info`'s first range if the answering node holds it; else `None`,
    /// keeping what it remembered in `remembered` if none is kept yet.
    fn holders_first_range(
        &self,
        info: &ClusterInfo,
        remembered: &mut Option<RangeDescriptor>,
    ) -> Option<RangeDescriptor> {
        let first = self.learn(info);
        if let Some(held) = info.first_range_from_holder() {
            return Some(held.clone());
        }
        *remembered = remembered.take().or(first);
        None
    }

    /// Puts the nodes `info` names in the address book; returns its first
    /// range.
    fn learn(&self, info: &ClusterInfo) -> Option<RangeDescriptor> {
        let mut known = self.known.lock();
        for node in &info.nodes {
            if let Ok(addr) = node.address.parse() {
                self.transport
                    .set_peer(node.node_id, addr, node.locality.clone());
                if !known.contains(&node.node_id) {
                    known.push(node.node_id);
                }
            }
        }
        info.first_range.clone()
    }
}

impl ClusterView for HostView {
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(HostView::first_range(self))
    }
}
