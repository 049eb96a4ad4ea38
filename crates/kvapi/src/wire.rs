//! The wire contract of the KV RPCs: message kinds and their request and
//! response types. Servers and clients each declare their transport RPC
//! from these, so both sides agree without depending on each other.

use serde::{Deserialize, Serialize};

use crate::{KvError, RangeDescriptor, RangeId};

/// Every message kind a Meridian node sends or answers, in one table, so
/// that no two RPCs of different crates ever share a number. Each crate
/// declares its RPC types beside its handlers and takes the number from here.
/// Kinds below 16 are the transport's own (kind 0 is its round-trip ping).
pub mod kinds {
    // Raft, per range (kvserver::raft::network). Idempotent: Raft tolerates
    // duplicated and reordered messages.
    pub const RAFT_APPEND: u16 = 100;
    pub const RAFT_VOTE: u16 = 101;
    pub const RAFT_PRE_VOTE: u16 = 102;
    pub const RAFT_SNAPSHOT: u16 = 103;
    pub const RAFT_TRANSFER_LEADER: u16 = 104;

    // A node's store (kvserver).
    /// A [`crate::BatchRequest`] to a range's leaseholder; answered with a
    /// [`crate::BatchResult`].
    pub const BATCH: u16 = 110;
    /// Asks a node to create an empty replica a leader is about to add.
    pub const CREATE_REPLICA: u16 = 111;
    /// Asks a node to destroy a replica removed from its range.
    pub const DESTROY_REPLICA: u16 = 112;
    /// A leader asks its followers to stop their Raft timers.
    pub const QUIESCE: u16 = 113;
    /// Restarts the timers of a quiesced range.
    pub const WAKE: u16 = 114;
    /// Asks a range's leaseholder to split it
    /// ([`super::AdminSplitRequest`] -> [`super::AdminSplitResult`]).
    pub const ADMIN_SPLIT: u16 = 115;
    /// Asks a range's leaseholder for the range's current descriptor, to
    /// decide whether a replica elsewhere may be collected.
    pub const RANGE_STATUS: u16 = 117;
    /// What a node's leaseholders closed, for the other replicas of their
    /// ranges (follower reads).
    pub const CLOSED_TIMESTAMPS: u16 = 118;

    // A node's membership in the cluster (server).
    pub const INIT: u16 = 130;
    pub const JOIN: u16 = 131;
    pub const CLUSTER_INFO: u16 = 132;

    // Status and debugging (server, for the CLI).
    pub const LOCAL_REPLICAS: u16 = 133;
    pub const CLUSTER_STATUS: u16 = 134;
    pub const DEBUG_SPLIT: u16 = 135;

    /// Every kind above, for the uniqueness test.
    pub const ALL: &[u16] = &[
        RAFT_APPEND,
        RAFT_VOTE,
        RAFT_PRE_VOTE,
        RAFT_SNAPSHOT,
        RAFT_TRANSFER_LEADER,
        BATCH,
        CREATE_REPLICA,
        DESTROY_REPLICA,
        QUIESCE,
        WAKE,
        ADMIN_SPLIT,
        RANGE_STATUS,
        CLOSED_TIMESTAMPS,
        INIT,
        JOIN,
        CLUSTER_INFO,
        LOCAL_REPLICAS,
        CLUSTER_STATUS,
        DEBUG_SPLIT,
    ];
}

/// Splits range `range_id` at `split_key`; the right-hand side becomes
/// range `right_range_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSplitRequest {
    pub range_id: RangeId,
    pub split_key: Vec<u8>,
    pub right_range_id: RangeId,
}

/// The left and right descriptors after a split.
pub type AdminSplitResult = Result<(RangeDescriptor, RangeDescriptor), KvError>;

/// The value stored at a range's meta key: its descriptor.
pub fn encode_meta_value(descriptor: &RangeDescriptor) -> Vec<u8> {
    postcard::to_stdvec(descriptor).expect("descriptors serialize")
}

/// Decodes a meta value; `None` if it is not a descriptor.
pub fn decode_meta_value(bytes: &[u8]) -> Option<RangeDescriptor> {
    postcard::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::kinds;

    #[test]
    fn kinds_are_unique_and_above_the_transports_own() {
        let mut seen = std::collections::BTreeSet::new();
        for &kind in kinds::ALL {
            assert!(kind >= 16, "kind {kind} is reserved for the transport");
            assert!(seen.insert(kind), "kind {kind} used twice");
        }
    }
}
