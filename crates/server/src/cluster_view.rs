//! How this node's DistSender finds the first range (the one that holds
//! the meta records, from which it learns every other range).
//!
//! In order: the node's own replica of the first range (while it is a
//! member); else a peer of the directory that holds one (`ClusterInfoRpc`,
//! answered from the peer's own replica), asked again on every cache miss
//! because the first range's replicas move; else the descriptor last
//! remembered (from the bootstrap, a join answer, or a peer).
//! [`local_first_range`] is the one place that reads the local replica;
//! `ClusterInfo` answers use it too.
//!
//! Not here: routing itself (`kvclient`), the client's view of a cluster
//! it is not part of (`client`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use meridian_kvapi::RangeDescriptor;
use meridian_kvclient::ClusterView;
use meridian_kvserver::store::Store;
use meridian_transport::Transport;
use parking_lot::RwLock;

use crate::directory::Directory;
use crate::member::Member;
use crate::rpc::{ClusterInfo, ClusterInfoRpc};
use crate::system::FIRST_RANGE_ID;

/// The first range's descriptor as this node's own replica has it, if
/// that replica is still a member: one removed and not yet collected
/// keeps a descriptor that may name only nodes that are gone.
pub(crate) fn local_first_range(store: &Store) -> Option<RangeDescriptor> {
    store
        .replica(FIRST_RANGE_ID)
        .map(|r| r.descriptor())
        .filter(|d| d.replica_on(store.node_id()).is_some())
}

/// The first range's descriptor last learned from elsewhere (bootstrap,
/// a join answer, a peer): the fallback when no fresher one is at hand.
#[derive(Default)]
pub(crate) struct RememberedFirstRange(RwLock<Option<RangeDescriptor>>);

impl RememberedFirstRange {
    pub fn get(&self) -> Option<RangeDescriptor> {
        self.0.read().clone()
    }

    pub fn set(&self, descriptor: Option<RangeDescriptor>) {
        *self.0.write() = descriptor;
    }
}

/// The DistSender's view of the cluster from this node. It holds the
/// membership weakly: the membership holds the DistSender, which holds
/// this view.
pub(crate) struct NodeView {
    pub member: Weak<Member>,
    pub directory: Arc<Directory>,
    pub transport: Transport,
    pub remembered: Arc<RememberedFirstRange>,
}

impl NodeView {
    async fn first_range(&self) -> Option<RangeDescriptor> {
        let member = self.member.upgrade()?;
        if let Some(first) = local_first_range(&member.store) {
            return Some(first);
        }
        // Asked again on every cache miss: the first range's replicas
        // move, and a remembered descriptor would go stale.
        let me = member.ident.node_id;
        for peer in self.directory.nodes() {
            if peer.node_id == me {
                continue;
            }
            let info = self
                .transport
                .call::<ClusterInfoRpc>(peer.node_id, &(), Duration::from_secs(1))
                .await;
            // A peer without a replica answers with what it remembers,
            // which may name only nodes that are gone (the bootstrap's,
            // after their region failed); it would be asked again on every
            // miss.
            if let Some(first) = info
                .ok()
                .as_ref()
                .and_then(ClusterInfo::first_range_from_holder)
            {
                self.remembered.set(Some(first.clone()));
                return Some(first.clone());
            }
        }
        self.remembered.get()
    }
}

impl ClusterView for NodeView {
    fn first_range(&self) -> BoxFuture<'_, Option<RangeDescriptor>> {
        Box::pin(NodeView::first_range(self))
    }
}
