//! The replicate queue's decision, as a pure function: the placement
//! crate's allocator, fed with what a node knows (a range's descriptor,
//! the node directory, liveness verdicts, replica counts and the range's
//! effective zone config), and its answer turned into one change the
//! store can make.
//!
//! [`decide`] reads no clock, store or network, so it is tested with plain
//! values (see `allocator/tests.rs`); `replicate_queue` carries out what it
//! returns. What it adds to `meridian_placement::allocator::decide`:
//! 1. **Verdicts**: a node with no liveness record yet counts as suspect
//!    (it takes no new replica and loses none).
//! 2. **Up-replication in one change**: consecutive voter additions the
//!    allocator would make one by one are made together, so going from one
//!    voter to three never passes through a two-voter group that one
//!    failure stalls (each new voter is first a learner that has caught
//!    up). A batch that would end at an even number of voters below the
//!    config's count drops its last voter: two voters stop on the failure
//!    of either, twice as likely as one voter stopping (CockroachDB's rule
//!    too).
//! 3. **The leaseholder is never removed from under itself**: a change
//!    that removes, moves or demotes the leaseholder's replica becomes a
//!    lease transfer to the preferred voter (or any other live voter); the
//!    new leaseholder's queue then makes the change. A lone voter in the
//!    wrong place (no other voter to take its lease) first gets the voters
//!    the config wants added around it, in one change.
//! 4. **Learners** in our descriptors are non-voters: a learner an
//!    interrupted change left behind is a surplus non-voter, and the
//!    allocator removes it.
//!
//! Not here: whether this node's verdicts can be trusted at all (the
//! queue asks only while its own record is live), carrying out the change
//! (`replicate_queue`), the verdicts themselves (`liveness`), the zone
//! configs (`zones`).

use std::collections::BTreeMap;

use meridian_kvapi::{NodeId, ReplicaDescriptor, ReplicaKind};
use meridian_placement::allocator::{
    self as placement, Action, Liveness, NodeInfo, RangeState, ReplicaKind as Kind, RoundTrips,
};
use meridian_placement::EffectiveConfig;

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
    /// Add a non-voter on this node.
    AddNonVoter(NodeId),
    /// Remove the replica (voter or not) on this node.
    Remove(NodeId),
    /// Add a replica of this kind on `to` and remove the one on `from` in
    /// one change.
    Move {
        kind: ReplicaKind,
        from: NodeId,
        to: NodeId,
    },
    Promote(NodeId),
    Demote(NodeId),
    /// Promote one non-voter and demote one voter.
    Swap {
        promote: NodeId,
        demote: NodeId,
    },
    /// Hand the lease to this voter first: the change needed next would
    /// remove or demote the leaseholder's own replica.
    TransferLease(NodeId),
}

/// What [`decide`] answers for one range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub action: ReplicateAction,
    /// The voter the lease should move to, when it is not the
    /// leaseholder's (the first lease preference some live voter meets).
    pub lease: Option<NodeId>,
    /// Why this action.
    pub reason: String,
    /// What is wrong and cannot be fixed now (under-replication, a replica
    /// outside its constraints with no replacement).
    pub problems: Vec<String>,
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

/// The nodes as the placement allocator sees them. `counts` is how many
/// replicas each node holds over all ranges (missing: 0).
pub fn node_infos(
    nodes: &[NodeDescriptor],
    verdicts: &Verdicts,
    counts: &BTreeMap<NodeId, u32>,
) -> Vec<NodeInfo> {
    nodes
        .iter()
        .map(|n| NodeInfo {
            id: n.node_id,
            locality: n.locality.clone(),
            liveness: match verdicts.of(n.node_id) {
                LivenessStatus::Live => Liveness::Live,
                LivenessStatus::Dead => Liveness::Dead,
                LivenessStatus::Suspect | LivenessStatus::Unknown => Liveness::Suspect,
            },
            replicas: counts.get(&n.node_id).copied().unwrap_or(0),
        })
        .collect()
}

/// A descriptor's replicas as the placement allocator sees them.
pub fn range_state(replicas: &[ReplicaDescriptor], leaseholder: Option<NodeId>) -> RangeState {
    let of = |kind: ReplicaKind| {
        replicas
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.node_id)
            .collect()
    };
    RangeState {
        voters: of(ReplicaKind::Voter),
        non_voters: of(ReplicaKind::NonVoter),
        leaseholder,
    }
}

/// The next change to make to a range with `replicas` whose lease is on
/// `leaseholder` (see the module documentation), with the leaseholder's
/// measured round trips to other regions when known.
pub fn decide(
    replicas: &[ReplicaDescriptor],
    leaseholder: NodeId,
    nodes: &[NodeInfo],
    config: &EffectiveConfig,
    round_trips: Option<&RoundTrips>,
) -> Plan {
    let mut range = range_state(replicas, Some(leaseholder));
    let first = placement::decide(nodes, &range, config, round_trips);
    let lease = first
        .lease
        .map(|(_, node)| node)
        .filter(|&n| n != leaseholder);
    let mut plan = Plan {
        action: ReplicateAction::Nothing,
        lease,
        reason: first.reason.clone(),
        problems: first.problems.clone(),
    };
    let live_voter_besides_leaseholder = range.voters.iter().any(|&id| {
        id != leaseholder
            && nodes
                .iter()
                .any(|n| n.id == id && n.liveness == Liveness::Live)
    });
    // A move off a leaseholder that has no live voter to hand its lease to
    // (a lone voter outside its constraints) cannot start with a lease
    // transfer: the voters it needs are added first, and the lease then
    // leaves it before it goes.
    let grow_around_leaseholder = !live_voter_besides_leaseholder
        && matches!(first.action, Action::Move { kind: Kind::Voter, from, .. } if from == leaseholder);
    plan.action = match first.action {
        Action::Nothing => ReplicateAction::Nothing,
        Action::Add {
            kind: Kind::Voter, ..
        }
        | Action::Promote(_) => add_voters_batch(
            nodes,
            &mut range,
            config,
            round_trips,
            first.action.clone(),
            None,
            &mut plan,
        ),
        Action::Move {
            kind: Kind::Voter, ..
        } if grow_around_leaseholder => add_voters_batch(
            nodes,
            &mut range,
            config,
            round_trips,
            first.action.clone(),
            Some(leaseholder),
            &mut plan,
        ),
        Action::Add {
            kind: Kind::NonVoter,
            node,
        } => ReplicateAction::AddNonVoter(node),
        Action::Remove { node, .. } => ReplicateAction::Remove(node),
        Action::Move { kind, from, to } => ReplicateAction::Move {
            kind: match kind {
                Kind::Voter => ReplicaKind::Voter,
                Kind::NonVoter => ReplicaKind::NonVoter,
            },
            from,
            to,
        },
        Action::Demote(node) => ReplicateAction::Demote(node),
        Action::Swap { promote, demote } => ReplicateAction::Swap { promote, demote },
    };
    let removes_leaseholder = match plan.action {
        ReplicateAction::Remove(node) | ReplicateAction::Demote(node) => node == leaseholder,
        ReplicateAction::Move { from, .. } => from == leaseholder,
        ReplicateAction::Swap { demote, .. } => demote == leaseholder,
        _ => false,
    };
    if removes_leaseholder {
        let live_voter = |id: &NodeId| {
            *id != leaseholder
                && nodes
                    .iter()
                    .any(|n| n.id == *id && n.liveness == Liveness::Live)
        };
        let other = plan
            .lease
            .or_else(|| range.voters.iter().copied().find(live_voter));
        plan.action = match other {
            Some(to) => ReplicateAction::TransferLease(to),
            None => ReplicateAction::Nothing,
        };
    }
    plan
}

/// Voter additions made in one change: `first` and the additions (or
/// promotions) the allocator asks for next, with moves off `grow_around`
/// counted as additions; a batch that would end at an even number of
/// voters below the config's drops its last voter.
fn add_voters_batch(
    nodes: &[NodeInfo],
    range: &mut RangeState,
    config: &EffectiveConfig,
    round_trips: Option<&RoundTrips>,
    first: Action,
    grow_around: Option<NodeId>,
    plan: &mut Plan,
) -> ReplicateAction {
    let voters_before = range.voters.len();
    let mut picks = Vec::new();
    let mut next = first;
    loop {
        let node = match next {
            Action::Add {
                kind: Kind::Voter,
                node,
            }
            | Action::Promote(node) => {
                placement::apply(range, &next);
                node
            }
            Action::Move {
                kind: Kind::Voter,
                from,
                to,
            } if Some(from) == grow_around => {
                let add = Action::Add {
                    kind: Kind::Voter,
                    node: to,
                };
                placement::apply(range, &add);
                to
            }
            _ => break,
        };
        picks.push(node);
        next = placement::decide(nodes, range, config, round_trips).action;
    }
    let after = voters_before + picks.len();
    if after < config.num_voters as usize && after.is_multiple_of(2) {
        picks.pop();
    }
    if picks.is_empty() {
        plan.reason = "an even number of voters stalls as easily as one fewer".into();
        ReplicateAction::Nothing
    } else {
        ReplicateAction::AddVoters(picks)
    }
}

#[cfg(test)]
mod tests;
