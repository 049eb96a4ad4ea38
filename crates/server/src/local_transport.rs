//! How a node's own DistSender reaches the nodes: batches for this node's
//! own replicas go straight to its store, without encoding, QUIC or a
//! second task; everything else goes over the transport. A SQL gateway
//! that holds the lease of the rows it reads or writes (the common case
//! for a REGIONAL BY ROW table read from its home region) pays no network
//! stack at all.
//!
//! The store answers a local batch exactly as it answers the `Batch` RPC
//! (the handler only calls [`Store::send`]); the clock is the node's own,
//! so there is no remote timestamp to fold in. A local call gets the same
//! timeout as a remote one.
//!
//! Not here: routing (the DistSender's), the RPC itself (kvserver's
//! handlers).

use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_kvapi::wire::{AdminSplitRequest, AdminSplitResult};
use meridian_kvapi::{BatchRequest, BatchResult, NodeId, RangeId};
use meridian_kvclient::NodeTransport;
use meridian_kvserver::store::Store;
use meridian_transport::{Transport, TransportError};

/// This node's store for its own replicas, the transport for the rest.
pub(crate) struct LocalFirst {
    pub me: NodeId,
    pub store: Store,
    pub transport: Transport,
}

impl NodeTransport for LocalFirst {
    fn batch<'a>(
        &'a self,
        node: NodeId,
        request: &'a BatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<BatchResult, TransportError>> {
        if node != self.me {
            return self.transport.batch(node, request, timeout);
        }
        Box::pin(async move {
            tokio::time::timeout(timeout, self.store.send(request.clone()))
                .await
                .map_err(|_| TransportError::Timeout {
                    to: node,
                    rpc: "Batch",
                    timeout,
                })
        })
    }

    fn admin_split<'a>(
        &'a self,
        node: NodeId,
        request: &'a AdminSplitRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdminSplitResult, TransportError>> {
        self.transport.admin_split(node, request, timeout)
    }

    fn local_replica(&self, range_id: RangeId) -> Option<NodeId> {
        self.store.replica(range_id).map(|_| self.me)
    }

    fn round_trip(&self, node: NodeId) -> Option<Duration> {
        if node == self.me {
            Some(Duration::ZERO)
        } else {
            NodeTransport::round_trip(&self.transport, node)
        }
    }
}
