//! How a test cluster's [`DistSender`](meridian_kvclient::DistSender)
//! reaches its nodes: [`InProcess`], the running stores by node id, is
//! both the DistSender's [`NodeTransport`] and its [`ClusterView`].
//!
//! Owns: calling a store in process (no QUIC, so the network model's
//! latency and partitions apply between nodes, not between the test and a
//! node, as before the DistSender was used here) and locating a key's range
//! from the replicas themselves, since a test cluster has no meta range.
//! Does not own: routing, redirects, retries and the range cache, which
//! are the product's DistSender's.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_kvapi::wire::{AdminSplitRequest, AdminSplitResult};
use meridian_kvapi::{BatchRequest, BatchResult, RangeDescriptor};
use meridian_kvclient::{ClusterView, NodeTransport};
use meridian_kvserver::Store;
use meridian_transport::{NodeId, TransportError};

/// The running stores of a test cluster, shared with its DistSender.
#[derive(Clone, Default)]
pub struct InProcess {
    stores: Arc<RwLock<BTreeMap<NodeId, Store>>>,
}

impl InProcess {
    pub(crate) fn insert(&self, id: NodeId, store: Store) {
        self.stores.write().expect("stores lock").insert(id, store);
    }

    pub(crate) fn remove(&self, id: NodeId) {
        self.stores.write().expect("stores lock").remove(&id);
    }

    fn store(&self, node: NodeId) -> Result<Store, TransportError> {
        self.stores
            .read()
            .expect("stores lock")
            .get(&node)
            .cloned()
            .ok_or(TransportError::Connect {
                to: node,
                reason: "the node is not running".into(),
            })
    }
}

/// Runs a call on a store as the transport would: an answer within
/// `timeout`, else a timeout the DistSender treats as a possible delivery.
async fn within<T>(
    node: NodeId,
    rpc: &'static str,
    timeout: Duration,
    call: impl std::future::Future<Output = T>,
) -> Result<T, TransportError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| TransportError::Timeout {
            to: node,
            rpc,
            timeout,
        })
}

impl NodeTransport for InProcess {
    fn batch<'a>(
        &'a self,
        node: NodeId,
        request: &'a BatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<BatchResult, TransportError>> {
        Box::pin(async move {
            let store = self.store(node)?;
            within(node, "Batch", timeout, store.send(request.clone())).await
        })
    }

    fn admin_split<'a>(
        &'a self,
        node: NodeId,
        request: &'a AdminSplitRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdminSplitResult, TransportError>> {
        Box::pin(async move {
            let store = self.store(node)?;
            let split =
                store.split_range(request.range_id, &request.split_key, request.right_range_id);
            within(node, "AdminSplit", timeout, split).await
        })
    }
}

impl ClusterView for InProcess {
    /// A test cluster has no meta range: every range is found by
    /// [`ClusterView::locate`].
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(async { None })
    }

    /// The newest descriptor (highest generation) among the running
    /// replicas whose span holds the key: a replica that has not applied a
    /// split yet still claims the keys of the range split off, with an
    /// older generation.
    fn locate(&self, key: &[u8], before: bool) -> Option<RangeDescriptor> {
        let stores = self.stores.read().expect("stores lock");
        stores
            .values()
            .flat_map(|store| store.replicas())
            .map(|replica| replica.descriptor())
            .filter(|d| {
                if before {
                    d.contains_key_before(key)
                } else {
                    d.contains_key(key)
                }
            })
            .max_by_key(|d| d.generation)
    }
}
