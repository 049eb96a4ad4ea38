//! Range and replica descriptors: which keys a range holds and where its
//! replicas live.

use serde::{Deserialize, Serialize};

pub use meridian_topology::NodeId;
pub type StoreId = u64;
pub type RangeId = u64;
pub type ReplicaId = u64;

/// Whether a replica votes in its range's Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplicaKind {
    Voter,
    /// A Raft learner: receives the log, never votes, may serve follower reads.
    NonVoter,
}

/// One replica of a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaDescriptor {
    pub node_id: NodeId,
    pub store_id: StoreId,
    pub replica_id: ReplicaId,
    pub kind: ReplicaKind,
}

impl ReplicaDescriptor {
    /// The replica on node `node_id`. Each node has one store, and a
    /// range has at most one replica per node: both ids are the node's.
    pub fn on_node(node_id: NodeId, kind: ReplicaKind) -> Self {
        ReplicaDescriptor {
            node_id,
            store_id: node_id,
            replica_id: node_id,
            kind,
        }
    }

    pub fn voter(node_id: NodeId) -> Self {
        Self::on_node(node_id, ReplicaKind::Voter)
    }
}

/// A range: the half-open key span `[start_key, end_key)` and its replicas.
/// `generation` increases on every split, merge or replica change, so the
/// newer of two descriptors of one range is the one with the higher generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RangeDescriptor {
    pub range_id: RangeId,
    pub start_key: Vec<u8>,
    pub end_key: Vec<u8>,
    pub replicas: Vec<ReplicaDescriptor>,
    pub generation: u64,
}

impl RangeDescriptor {
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.start_key.as_slice() <= key && key < self.end_key.as_slice()
    }

    /// Whether the range holds the keys just below `key` (reverse scans
    /// address a range by its exclusive end): `start < key <= end`.
    pub fn contains_key_before(&self, key: &[u8]) -> bool {
        self.start_key.as_slice() < key && key <= self.end_key.as_slice()
    }

    /// Whether `[start, end)` lies within the range.
    pub fn contains_span(&self, start: &[u8], end: &[u8]) -> bool {
        self.start_key.as_slice() <= start && end <= self.end_key.as_slice() && start <= end
    }

    pub fn replica_on(&self, node_id: NodeId) -> Option<&ReplicaDescriptor> {
        self.replicas.iter().find(|r| r.node_id == node_id)
    }

    pub fn voters(&self) -> impl Iterator<Item = &ReplicaDescriptor> {
        self.replicas
            .iter()
            .filter(|r| r.kind == ReplicaKind::Voter)
    }
}
