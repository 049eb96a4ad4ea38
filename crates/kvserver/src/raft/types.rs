//! The openraft type configuration every range's group shares, and the
//! command a range replicates.

use std::fmt;

use meridian_hlc::Timestamp;
use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use meridian_storage::{MvccStats, RangeData, WriteSet};
use serde::{Deserialize, Serialize};

/// What a group member is, as openraft stores it in the membership: the
/// node the replica lives on. openraft's member id is the *replica* id,
/// fresh for every addition of a node to the range, so a node removed and
/// added again is a new member with empty state (never an old member with
/// forgotten votes). Routing uses the node id; the rest is for humans.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaNode {
    pub node_id: NodeId,
    pub addr: String,
    pub region: String,
}

/// A command in a range's Raft log: the effects of a request the
/// leaseholder evaluated, applied identically by every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RaftCommand {
    /// Data writes and the statistics delta they cause, evaluated by the
    /// leaseholder of Raft term `term`. Applied only if the entry was
    /// proposed in that same term: an evaluation from an earlier lease must
    /// not land on state a later leader changed.
    Write {
        writes: WriteSet,
        stats: MvccStats,
        term: u64,
    },
    /// Splits the range at `split_key`: the range keeps `[start,
    /// split_key)`, and `[split_key, end)` becomes range `right_range_id`
    /// with the same replicas. Applied only in the term it was proposed in
    /// and only if `split_key` still lies strictly inside the range.
    Split {
        split_key: Vec<u8>,
        right_range_id: RangeId,
        term: u64,
        /// The leaseholder's clock when it evaluated the split: at or above
        /// every timestamp it served on the range. No lease of the new
        /// range starts at or below it (see [`crate::lease`]).
        lease_floor: Timestamp,
    },
    /// Garbage collection: deletes versions no read above `threshold` can
    /// see (`writes`, with their stats delta) and raises the range's GC
    /// threshold to `threshold` (never lowers it), in one apply, so every
    /// replica removes the same versions and refuses the same reads.
    /// Applied only in the term it was evaluated in, like a write.
    Gc {
        writes: WriteSet,
        stats: MvccStats,
        threshold: Timestamp,
        term: u64,
    },
    /// Raises the range's lease floor (never lowers it): no later lease
    /// starts at or below `floor`. A leaseholder hands its lease over with
    /// this when it closed timestamps ahead of the present (global reads),
    /// which a new lease's usual start does not reach. Applied in any term:
    /// raising the floor only pushes later writes higher.
    LeaseFloor { floor: Timestamp },
}

impl fmt::Display for RaftCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaftCommand::Write { writes, .. } => {
                write!(
                    f,
                    "write({} keys, {} bytes)",
                    writes.writes.len(),
                    writes.size_in_bytes()
                )
            }
            RaftCommand::Split { right_range_id, .. } => {
                write!(f, "split(right range {right_range_id})")
            }
            RaftCommand::Gc {
                writes, threshold, ..
            } => {
                write!(f, "gc(below {threshold}, {} versions)", writes.writes.len())
            }
            RaftCommand::LeaseFloor { floor } => write!(f, "lease floor({floor})"),
        }
    }
}

/// What applying a command returns to its proposer: whether it was applied
/// (evaluation already produced a write's response), and for a split the
/// left and right descriptors as of the split's own log index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub applied: bool,
    pub split: Option<Box<(RangeDescriptor, RangeDescriptor)>>,
}

openraft::declare_raft_types!(
    /// Types of every range's Raft group.
    pub TypeConfig:
        D = RaftCommand,
        R = CommandResult,
        NodeId = u64, // the replica id (see `ReplicaNode`)
        Node = ReplicaNode,
        AsyncRuntime = openraft_rt_tokio::TokioRuntime,
);

/// A snapshot's data: the range's whole state, read at one point.
pub type RangeSnapshot = RangeData;

pub type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot = openraft::alias::SnapshotOf<TypeConfig, RangeSnapshot>;
