//! A client of a running cluster: a QUIC endpoint of its own (node id 0,
//! any CA-signed certificate) and a DistSender that learns the cluster
//! from the `--host` node.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use futures_util::future::BoxFuture;
use meridian_hlc::HybridClock;
use meridian_kvapi::RangeDescriptor;
use meridian_kvclient::{ClusterView, DistSender, DistSenderConfig};
use meridian_server::rpc::{ClusterInfo, ClusterInfoRpc};
use meridian_transport::{Locality, Rpc, Transport, TransportConfig};

/// The id under which the `--host` node is dialed before its id is known.
const HOST_PEER: u64 = u64::MAX;

#[derive(Clone)]
pub struct Client {
    pub transport: Transport,
    pub ds: DistSender,
}

struct HostView {
    transport: Transport,
    /// Nodes learned from `--host`: where to ask when it is down.
    known: parking_lot::Mutex<Vec<u64>>,
}

impl HostView {
    /// Asks `--host` first, then the nodes learned from it.
    async fn first_range(&self) -> Option<RangeDescriptor> {
        let mut ask = vec![HOST_PEER];
        ask.extend(self.known.lock().iter().copied());
        for peer in ask {
            let info = self
                .transport
                .call::<ClusterInfoRpc>(peer, &(), Duration::from_secs(2))
                .await;
            if let Ok(info) = info {
                self.learn(&info);
                if info.first_range.is_some() {
                    return info.first_range;
                }
            }
        }
        None
    }

    fn learn(&self, info: &ClusterInfo) {
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
    }
}

impl ClusterView for HostView {
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(HostView::first_range(self))
    }
}

impl Client {
    /// Connects to the node at `host` and learns the cluster from it.
    pub async fn connect(host: SocketAddr, certs_dir: &Path) -> Result<Client> {
        let transport = connect_transport(host, certs_dir).await?;
        let info = transport
            .call::<ClusterInfoRpc>(HOST_PEER, &(), Duration::from_secs(5))
            .await
            .with_context(|| format!("cannot reach a Meridian node at {host}"))?;
        if info.cluster_id.is_none() {
            return Err(anyhow!(
                "the node at {host} is not part of an initialized cluster (run `meridian init`)"
            ));
        }
        let view = Arc::new(HostView {
            transport: transport.clone(),
            known: parking_lot::Mutex::new(Vec::new()),
        });
        view.learn(&info);
        let ds = DistSender::new(transport.clone(), view, DistSenderConfig::default());
        Ok(Client { transport, ds })
    }

    /// Calls `R` on the `--host` node.
    pub async fn call_host<R: Rpc>(
        &self,
        request: &R::Request,
        timeout: Duration,
    ) -> Result<R::Response> {
        call_host::<R>(&self.transport, request, timeout).await
    }
}

/// A client endpoint with `host` in its address book.
pub async fn connect_transport(host: SocketAddr, certs_dir: &Path) -> Result<Transport> {
    meridian_transport::install_crypto_provider();
    let identity = meridian_transport::load_node_identity(certs_dir)
        .with_context(|| format!("loading certificates from {}", certs_dir.display()))?;
    let listen: SocketAddr = if host.is_ipv4() {
        "0.0.0.0:0".parse().expect("valid")
    } else {
        "[::]:0".parse().expect("valid")
    };
    let clock = Arc::new(HybridClock::system());
    let transport = Transport::start(
        TransportConfig::new(0, listen, Locality::default()),
        &identity,
        clock,
    )
    .await
    .context("starting the client endpoint")?;
    transport.set_peer(HOST_PEER, host, Locality::default());
    Ok(transport)
}

pub async fn call_host<R: Rpc>(
    transport: &Transport,
    request: &R::Request,
    timeout: Duration,
) -> Result<R::Response> {
    transport
        .call::<R>(HOST_PEER, request, timeout)
        .await
        .map_err(|e| anyhow!("{e}"))
}
