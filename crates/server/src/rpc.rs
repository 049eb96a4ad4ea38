//! Node-level RPCs: bootstrap a cluster, join it, learn where its first
//! range and nodes are, and split a range by hand. The CLI uses them too.
//! Their errors are enums that cross the wire (postcard), so a caller
//! tells a refusal from a failure by its variant, not by its text.
//!
//! Not here: the status RPCs (`status`), the KV RPCs (kvserver), answering
//! them (`node`, `bootstrap`, `join`).

use meridian_kvapi::wire::kinds;
use meridian_kvapi::{NodeId, RangeDescriptor};
use meridian_transport::Rpc;
use serde::{Deserialize, Serialize};

use crate::split_queue::SplitError;
use crate::system::NodeDescriptor;

/// What a node knows of its cluster without a KV read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// `None` while the node is not serving as a member of a cluster: it
    /// belongs to none yet, or it is `starting`.
    pub cluster_id: Option<String>,
    /// The node has an identity (a node id of a cluster) but has not loaded
    /// its store and membership yet, right after a restart: ask again or ask
    /// another node. Never a reason to run `meridian init`.
    pub starting: bool,
    pub node_id: NodeId,
    /// The first range's descriptor as this node knows it.
    pub first_range: Option<RangeDescriptor>,
    pub nodes: Vec<NodeDescriptor>,
}

impl ClusterInfo {
    /// The first range, if the answering node holds a replica of it (its
    /// own replica's descriptor names it). A node without one answers with
    /// the descriptor it remembered, which may name only nodes that are
    /// gone: it is no guide to where the range is now.
    pub fn first_range_from_holder(&self) -> Option<&RangeDescriptor> {
        self.first_range
            .as_ref()
            .filter(|first| first.replica_on(self.node_id).is_some())
    }
}

/// Bootstraps a new cluster on the receiving node.
pub struct InitRpc;
impl Rpc for InitRpc {
    const KIND: u16 = kinds::INIT;
    const NAME: &'static str = "Init";
    type Request = ();
    type Response = Result<ClusterInfo, InitError>;
}

/// Why `meridian init` did not bootstrap a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum InitError {
    /// This node is a member already.
    #[error("cluster {cluster_id} is already initialized")]
    AlreadyInitialized { cluster_id: String },
    /// A `--join` node belongs to a cluster: this node will join it.
    #[error(
        "cluster {cluster_id} is already initialized (node at {addr} belongs to it); \
         this node will join it"
    )]
    JoinNodeInitialized { cluster_id: String, addr: String },
    /// The store has an identity the node did not start with.
    #[error("this store already belongs to cluster {cluster_id}")]
    StoreInitialized { cluster_id: String },
    /// The bootstrap itself failed (store, KV); the message says why.
    #[error("{0}")]
    Failed(String),
    #[error("node stopping")]
    Stopping,
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
    const KIND: u16 = kinds::JOIN;
    const NAME: &'static str = "Join";
    const IDEMPOTENT: bool = false;
    type Request = JoinRequest;
    type Response = Result<ClusterInfo, JoinError>;
}

/// Why a member did not take a joining node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum JoinError {
    /// Not yet: the member has no initialized cluster; ask again.
    #[error("this node is not part of an initialized cluster yet")]
    NotInitialized,
    /// For good: the joining store belongs to another cluster.
    #[error(
        "the store of node {node_id} belongs to cluster {cluster_id}, \
         not to this cluster ({this_cluster})"
    )]
    OtherCluster {
        node_id: NodeId,
        cluster_id: String,
        this_cluster: String,
    },
    #[error("allocating a node id: {0}")]
    AllocateId(String),
    #[error("recording node {node_id}: {reason}")]
    Record { node_id: NodeId, reason: String },
    #[error("node stopping")]
    Stopping,
}

impl JoinError {
    /// Whether the joining node must give up instead of asking again.
    pub fn is_permanent(&self) -> bool {
        matches!(self, JoinError::OtherCluster { .. })
    }
}

/// What the receiving node knows of the cluster (local knowledge only).
pub struct ClusterInfoRpc;
impl Rpc for ClusterInfoRpc {
    const KIND: u16 = kinds::CLUSTER_INFO;
    const NAME: &'static str = "ClusterInfo";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = ClusterInfo;
}

/// Splits the range holding a key there (`meridian debug split`).
pub struct DebugSplitRpc;
impl Rpc for DebugSplitRpc {
    const KIND: u16 = kinds::DEBUG_SPLIT;
    const NAME: &'static str = "DebugSplit";
    type Request = Vec<u8>;
    type Response = Result<(), SplitError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(value: &T) -> T {
        let bytes = postcard::to_allocvec(value).expect("encodes");
        postcard::from_bytes(&bytes).expect("decodes")
    }

    #[test]
    fn only_a_holder_of_the_first_range_says_where_it_is() {
        use meridian_kvapi::{ReplicaDescriptor, ReplicaKind};
        let on = |nodes: &[NodeId]| RangeDescriptor {
            range_id: 1,
            start_key: Vec::new(),
            end_key: vec![0xff],
            replicas: nodes
                .iter()
                .map(|&n| ReplicaDescriptor {
                    node_id: n,
                    store_id: n,
                    replica_id: n,
                    kind: ReplicaKind::Voter,
                })
                .collect(),
            generation: 1,
        };
        let answer = |node_id, first| ClusterInfo {
            node_id,
            first_range: Some(first),
            ..ClusterInfo::default()
        };
        // Node 5 remembers the bootstrap's descriptor; node 9 holds the range.
        assert_eq!(answer(5, on(&[1, 2, 3])).first_range_from_holder(), None);
        let holder = answer(9, on(&[1, 9, 6]));
        assert_eq!(holder.first_range_from_holder(), Some(&on(&[1, 9, 6])));
        assert_eq!(ClusterInfo::default().first_range_from_holder(), None);
    }

    #[test]
    fn refusals_cross_the_wire_as_variants() {
        let refusal = JoinError::OtherCluster {
            node_id: 4,
            cluster_id: "abc".into(),
            this_cluster: "def".into(),
        };
        let back = round_trip(&refusal);
        assert!(back.is_permanent());
        assert_eq!(back, refusal);
        assert!(back.to_string().contains("belongs to cluster abc"));
        assert!(!round_trip(&JoinError::NotInitialized).is_permanent());
        let init = InitError::AlreadyInitialized {
            cluster_id: "abc".into(),
        };
        assert_eq!(round_trip(&init), init);
        assert_eq!(init.to_string(), "cluster abc is already initialized");
    }
}
