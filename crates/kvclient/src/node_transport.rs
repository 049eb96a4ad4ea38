//! The seam between the DistSender and the network: [`NodeTransport`], the
//! two calls the DistSender makes to one node, and its production
//! implementation on the QUIC [`Transport`].
//!
//! Owns: the RPC declarations the client sends (`BatchRpc`, `AdminSplitRpc`,
//! numbered from `meridian_kvapi::wire`) and the trait. Does not own: which
//! node to call, retries or the range cache (the DistSender's), nor the
//! server side of these RPCs (kvserver's). A test implements the trait with
//! a scripted cluster (`dist_sender/fake.rs`); the testkit implements it by
//! calling its in-process stores.

use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_kvapi::wire::{AdminSplitRequest, AdminSplitResult};
use meridian_kvapi::{BatchRequest, BatchResult, NodeId, RangeId};
use meridian_transport::{Rpc, Transport, TransportError};

/// How the DistSender reaches one node. An `Err` means the call did not
/// get an answer (unknown node, down, partitioned, timed out); the range's
/// own refusals travel inside the `Ok` value as a `KvError`.
pub trait NodeTransport: Send + Sync + 'static {
    /// Sends a batch to `node`'s replica of `request.range_id`.
    fn batch<'a>(
        &'a self,
        node: NodeId,
        request: &'a BatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<BatchResult, TransportError>>;

    /// Asks `node`'s replica of `request.range_id` to split the range.
    fn admin_split<'a>(
        &'a self,
        node: NodeId,
        request: &'a AdminSplitRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdminSplitResult, TransportError>>;

    /// How far `node` is: its measured round trip, zero for this node,
    /// `None` if unknown. Follower reads go to the nearest replica.
    fn round_trip(&self, _node: NodeId) -> Option<Duration> {
        None
    }

    /// The node calling, if it holds a replica of `range_id` itself: a
    /// follower read tries it first even when the cached descriptor
    /// predates that replica (a non-voter added since, say), since a
    /// leaseholder that answers never corrects the cache.
    fn local_replica(&self, _range_id: RangeId) -> Option<NodeId> {
        None
    }
}

/// A batch to a range's leaseholder.
pub struct BatchRpc;
impl Rpc for BatchRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::BATCH;
    const NAME: &'static str = "Batch";
    type Request = BatchRequest;
    type Response = BatchResult;
}

/// A split, asked of a range's leaseholder.
pub struct AdminSplitRpc;
impl Rpc for AdminSplitRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::ADMIN_SPLIT;
    const NAME: &'static str = "AdminSplit";
    type Request = AdminSplitRequest;
    type Response = AdminSplitResult;
}

/// Production: one QUIC call per attempt.
impl NodeTransport for Transport {
    fn batch<'a>(
        &'a self,
        node: NodeId,
        request: &'a BatchRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<BatchResult, TransportError>> {
        Box::pin(self.call::<BatchRpc>(node, request, timeout))
    }

    fn admin_split<'a>(
        &'a self,
        node: NodeId,
        request: &'a AdminSplitRequest,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AdminSplitResult, TransportError>> {
        Box::pin(self.call::<AdminSplitRpc>(node, request, timeout))
    }

    fn round_trip(&self, node: NodeId) -> Option<Duration> {
        Transport::round_trip(self, node)
    }
}
