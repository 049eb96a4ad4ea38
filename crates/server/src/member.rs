//! What a node has once it belongs to a cluster: its identity, its store
//! (the replicas it holds), its DistSender (its way into the KV layer) and
//! its SQL engine (the sessions of its SQL clients run on it).
//!
//! The node keeps its membership behind an `Arc`; the background loops
//! (liveness, queues, directory) hold it weakly and stop once the node is
//! gone, so a dropped node does not keep its RocksDB open.
//!
//! Not here: how a node becomes a member (`bootstrap`, `join`) or leaves
//! (`drain`).

use std::sync::Arc;

use meridian_kvclient::DistSender;
use meridian_kvserver::store::Store;
use meridian_sql::SqlEngine;

use crate::ident::StoreIdent;

/// A node's membership of a cluster. Cheap to clone.
#[derive(Clone)]
pub struct Member {
    pub ident: StoreIdent,
    pub store: Store,
    pub ds: DistSender,
    /// On the DistSender above; the pgwire listener opens sessions on it.
    pub sql: Arc<SqlEngine>,
}
