//! The replicate queue's decision, as a pure function: given a range's
//! replicas, the node directory with localities, the liveness verdicts and
//! the replication factor, what one change (if any) should be made next.
//!
//! [`decide`] reads no clock, store or network, so it is tested with plain
//! values (see `allocator/tests.rs`); `replicate_queue` carries out what it
//! returns. It is the seam where the placement crate's allocator, which
//! will follow zone configs, replaces this simple choice for diversity.
//!
//! The rules, in order:
//! 1. **Target**: the replication factor, capped by the number of nodes not
//!    dead (at least 1), so a small or shrinking cluster is not asked for
//!    replicas it cannot hold.
//! 2. **A learner** (left behind by an interrupted up-replication) is
//!    promoted if a voter is missing and it is live, else removed: it would
//!    block splits.
//! 3. **Too few healthy voters** (not dead): add a voter on a live node
//!    that holds no replica of the range, preferring one whose region, then
//!    whose zone, no voter has yet (ties go to the highest node id).
//! 4. **A dead voter** goes only once its replacement is in (more voters
//!    than the replication factor): with nowhere to put a replacement it
//!    stays, since the node may come back and the quorum is the same
//!    either way.
//!
//! Not here: whether this node's verdicts can be trusted at all (the
//! queue asks only while its own record is live), carrying out the change
//! (`replicate_queue`), the verdicts themselves (`liveness`).

use std::collections::BTreeMap;

use meridian_kvapi::{NodeId, ReplicaDescriptor, ReplicaKind};
use meridian_transport::Locality;

use crate::liveness::LivenessStatus;
use crate::system::NodeDescriptor;

/// One change to a range's replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicateAction {
    /// The range is as it should be, or nothing can be done now.
    Nothing,
    /// Make the learner on this node a voter.
    PromoteLearner(NodeId),
    /// Remove the learner on this node.
    RemoveLearner(NodeId),
    /// Add a voter on this node.
    AddVoter(NodeId),
    /// Remove the voter on this dead node (its replacement is in).
    RemoveDeadVoter(NodeId),
}

/// Liveness verdicts by node; a node without one is
/// [`LivenessStatus::Unknown`].
#[derive(Debug, Clone, Default)]
pub struct Verdicts(pub BTreeMap<NodeId, LivenessStatus>);

impl Verdicts {
    pub fn of(&self, node: NodeId) -> LivenessStatus {
        self.0
            .get(&node)
            .copied()
            .unwrap_or(LivenessStatus::Unknown)
    }
}

impl FromIterator<(NodeId, LivenessStatus)> for Verdicts {
    fn from_iter<I: IntoIterator<Item = (NodeId, LivenessStatus)>>(iter: I) -> Self {
        Verdicts(iter.into_iter().collect())
    }
}

/// The next change to make to a range with `replicas` (see the module
/// documentation for the rules). `nodes` is the directory in node id order.
pub fn decide(
    replicas: &[ReplicaDescriptor],
    nodes: &[NodeDescriptor],
    verdicts: &Verdicts,
    replication_factor: usize,
) -> ReplicateAction {
    let live = |id: NodeId| verdicts.of(id) == LivenessStatus::Live;
    let dead = |id: NodeId| verdicts.of(id) == LivenessStatus::Dead;
    let available = nodes.iter().filter(|n| !dead(n.node_id)).count();
    let target = replication_factor.min(available.max(1));
    let voters: Vec<NodeId> = replicas
        .iter()
        .filter(|r| r.kind == ReplicaKind::Voter)
        .map(|r| r.node_id)
        .collect();
    let healthy = voters.iter().filter(|&&id| !dead(id)).count();

    if let Some(learner) = replicas.iter().find(|r| r.kind == ReplicaKind::NonVoter) {
        return if healthy < target && live(learner.node_id) {
            ReplicateAction::PromoteLearner(learner.node_id)
        } else {
            ReplicateAction::RemoveLearner(learner.node_id)
        };
    }

    if healthy < target {
        let holds_replica = |id: NodeId| replicas.iter().any(|r| r.node_id == id);
        let used: Vec<&Locality> = nodes
            .iter()
            .filter(|n| voters.contains(&n.node_id))
            .map(|n| &n.locality)
            .collect();
        let diversity = |l: &Locality| {
            let new_region = !used.iter().any(|u| u.region == l.region);
            let new_zone = !used.contains(&l);
            (new_region, new_zone)
        };
        let best = nodes
            .iter()
            .filter(|n| live(n.node_id) && !holds_replica(n.node_id))
            .max_by_key(|n| diversity(&n.locality));
        if let Some(best) = best {
            return ReplicateAction::AddVoter(best.node_id);
        }
    }

    match voters.iter().find(|&&id| dead(id)) {
        Some(&gone) if voters.len() > replication_factor => ReplicateAction::RemoveDeadVoter(gone),
        _ => ReplicateAction::Nothing,
    }
}

#[cfg(test)]
mod tests;
