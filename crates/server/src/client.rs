//! A client of a running cluster, for the CLI, benchmarks and tests: a
//! QUIC endpoint of its own (node id 0, any certificate of the cluster CA)
//! and a DistSender that learns the cluster from the nodes it was given,
//! then from the nodes they told it about.

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
        let info = transport
            .call_addr::<ClusterInfoRpc>(first, &(), Duration::from_secs(5))
            .await
            .map_err(|e| {
                ServerError::Refused(format!("cannot reach a Meridian node at {first}: {e}"))
            })?;
        if info.cluster_id.is_none() {
            return Err(ServerError::Refused(format!(
                "the node at {first} is not part of an initialized cluster (run `meridian init`)"
            )));
        }
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

/// Where the client's DistSender finds the first range: the given hosts,
/// then every node they named.
struct HostView {
    transport: Transport,
    hosts: Vec<SocketAddr>,
    known: Mutex<Vec<NodeId>>,
}

impl HostView {
    async fn first_range(&self) -> Option<RangeDescriptor> {
        for &host in &self.hosts {
            let info = self
                .transport
                .call_addr::<ClusterInfoRpc>(host, &(), Duration::from_secs(2))
                .await;
            if let Some(first) = info.ok().and_then(|info| self.learn(&info)) {
                return Some(first);
            }
        }
        let known = self.known.lock().clone();
        for node in known {
            let info = self
                .transport
                .call::<ClusterInfoRpc>(node, &(), Duration::from_secs(2))
                .await;
            if let Some(first) = info.ok().and_then(|info| self.learn(&info)) {
                return Some(first);
            }
        }
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
