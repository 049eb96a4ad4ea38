//! Node-level RPCs: bootstrap a cluster, join it, and learn where its
//! first range and nodes are. The CLI uses them too.

use meridian_kvapi::{NodeId, RangeDescriptor};
use meridian_transport::Rpc;
use serde::{Deserialize, Serialize};

use crate::system::NodeDescriptor;

/// What a node knows of its cluster without a KV read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// `None` while the node is not part of an initialized cluster.
    pub cluster_id: Option<String>,
    pub node_id: NodeId,
    /// The first range's descriptor as this node knows it.
    pub first_range: Option<RangeDescriptor>,
    pub nodes: Vec<NodeDescriptor>,
}

/// Bootstraps a new cluster on the receiving node.
pub struct InitRpc;
impl Rpc for InitRpc {
    const KIND: u16 = 130;
    const NAME: &'static str = "Init";
    type Request = ();
    type Response = Result<ClusterInfo, String>;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Set when a node that already belongs to a cluster restarts.
    pub existing: Option<(String, NodeId)>,
    pub descriptor: NodeDescriptor,
}

/// Asks a cluster member for a node id (new node) or announces a restarted
/// node's address; answers with the cluster as the member knows it.
pub struct JoinRpc;
impl Rpc for JoinRpc {
    const KIND: u16 = 131;
    const NAME: &'static str = "Join";
    const IDEMPOTENT: bool = false;
    type Request = JoinRequest;
    type Response = Result<ClusterInfo, String>;
}

/// What the receiving node knows of the cluster (local knowledge only).
pub struct ClusterInfoRpc;
impl Rpc for ClusterInfoRpc {
    const KIND: u16 = 132;
    const NAME: &'static str = "ClusterInfo";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = ClusterInfo;
}
