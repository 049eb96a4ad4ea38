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
//!    replicas it cannot hold; and odd when it falls short of the factor. A
//!    group of two voters stops on the failure of either, twice as likely
//!    as one voter stopping, so a range with one voter and one other node
//!    stays at one (CockroachDB's rule too).
//! 2. **Too few healthy voters** (not dead): the missing voters are added
//!    *all in one change*, live learners first, then live nodes holding no
//!    replica, each chosen for a region, then a zone, no voter has yet (ties
//!    go to the highest node id). Going from one voter to three never
//!    passes through a two-voter group that one failure stalls; each new
//!    voter is first a learner that has caught up. If only some can be
//!    added, the change still never ends at an even number below the
//!    factor.
//! 3. **A learner** not needed by rule 2 (left behind by an interrupted
//!    change, or on a node no longer live) is removed: it would block
//!    splits.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicateAction {
    /// The range is as it should be, or nothing can be done now.
    Nothing,
    /// Make voters of these nodes in one membership change: learners
    /// already there are promoted, the others are first added as learners
    /// and caught up.
    AddVoters(Vec<NodeId>),
    /// Remove the learner on this node.
    RemoveLearner(NodeId),
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
    let mut target = replication_factor.min(available.max(1));
    if target < replication_factor && target.is_multiple_of(2) {
        target -= 1;
    }
    let voters: Vec<NodeId> = replicas
        .iter()
        .filter(|r| r.kind == ReplicaKind::Voter)
        .map(|r| r.node_id)
        .collect();
    let learners: Vec<NodeId> = replicas
        .iter()
        .filter(|r| r.kind == ReplicaKind::NonVoter)
        .map(|r| r.node_id)
        .collect();
    let healthy = voters.iter().filter(|&&id| !dead(id)).count();

    if healthy < target {
        let need = target - healthy;
        let mut picks: Vec<NodeId> = learners
            .iter()
            .copied()
            .filter(|&id| live(id))
            .take(need)
            .collect();
        let mut used: Vec<Locality> = nodes
            .iter()
            .filter(|n| voters.contains(&n.node_id) || picks.contains(&n.node_id))
            .map(|n| n.locality.clone())
            .collect();
        // An even count below the factor stalls as easily as one voter
        // fewer: go one further where a node can take it, else one less.
        let mut want = need;
        if (voters.len() + want) < replication_factor && (voters.len() + want).is_multiple_of(2) {
            want += 1;
        }
        while picks.len() < want {
            let holds_replica = |id: NodeId| replicas.iter().any(|r| r.node_id == id);
            let diversity = |l: &Locality| {
                let new_region = !used.iter().any(|u| u.region == l.region);
                let new_zone = !used.contains(l);
                (new_region, new_zone)
            };
            let best = nodes
                .iter()
                .filter(|n| {
                    live(n.node_id) && !holds_replica(n.node_id) && !picks.contains(&n.node_id)
                })
                .max_by_key(|n| diversity(&n.locality));
            let Some(best) = best else { break };
            picks.push(best.node_id);
            used.push(best.locality.clone());
        }
        let after = voters.len() + picks.len();
        if after < replication_factor && after.is_multiple_of(2) {
            picks.pop();
        }
        if !picks.is_empty() {
            return ReplicateAction::AddVoters(picks);
        }
    }

    // A learner on a node that is not live goes first: a live one may
    // still be promoted once enough nodes are there.
    if let Some(&learner) = learners.iter().find(|&&id| !live(id)).or(learners.first()) {
        return ReplicateAction::RemoveLearner(learner);
    }

    match voters.iter().find(|&&id| dead(id)) {
        Some(&gone) if voters.len() > replication_factor => ReplicateAction::RemoveDeadVoter(gone),
        _ => ReplicateAction::Nothing,
    }
}

#[cfg(test)]
mod tests;
