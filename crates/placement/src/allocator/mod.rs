//! The allocator: given the live nodes, a range's replicas and its
//! effective zone config, the ONE next change to make, and where the
//! lease should be. Pure: the caller (a replicate queue, later) gathers
//! the inputs, carries out the action, and asks again.
//!
//! [`decide`] tries, in order, and returns the first thing it can do:
//! 1. **Too few good voters** (a voter is good on a node not dead that
//!    meets `constraints` and `voter_constraints`): promote a non-voter
//!    that could be a voter (a `Swap` with the worst bad voter when the
//!    voters are not short in number: the group never grows beside a
//!    voter that may be dead); else put a voter on the best candidate node
//!    (see `score.rs` for the ranking), as a `Move` off a bad voter if
//!    there is one, else an `Add`.
//! 2. **Too many voters**: a bad one goes first (demoted if it may be a
//!    non-voter and non-voters are short), even with too few good ones:
//!    the count stays at `num_voters`;
//!    else the worst-ranked voter no met per-count conjunction
//!    needs, demoted to a non-voter when non-voters are short; if every
//!    one is needed, one that holds up only replica (not voter)
//!    conjunctions is demoted, keeping its replica.
//! 3. **Too few good non-voters**: `Move` off a bad non-voter or `Add` on
//!    the best candidate; a bad non-voter with no replacement is removed
//!    anyway (a replica outside its constraints is worse than one fewer).
//! 4. **Too many non-voters**: remove a bad one, else the worst-ranked
//!    unneeded one; if every one is needed, swap one with a voter no
//!    conjunction needs (that voter is then the surplus), or move such a
//!    voter to where the non-voters are needed.
//! 5. **Counts right but a per-count conjunction short**: swap a matching
//!    non-voter in for an unneeded voter, or move an unneeded replica to a
//!    matching node (for a voter conjunction, when no voter may move, an
//!    unneeded non-voter moves there to be swapped in next; failing that,
//!    a voter is added there and rule 2 demotes the surplus one).
//! 6. **Conforming but crowded**: a voter moves where it has strictly
//!    fewer voters beside it, by region then zone (CockroachDB's
//!    diversity rebalancing, for voters only).
//! 7. **Conforming and spread but unbalanced**: a replica other than the
//!    leaseholder's moves from a node with at least 3 more replicas than
//!    another node where it would be exactly as diverse.
//!
//! Invariants the property tests check (`allocator/tests.rs`): no action
//! puts a replica of a kind on a node that is not live or breaks a
//! constraint for that kind; no action makes a met per-count conjunction
//! short; applying decisions converges to [`nonconformities`] being empty
//! on any cluster the config validates against; under a synthesized
//! REGION-survival config no region ends with 3 of the 5 voters.
//!
//! Residency: when nowhere qualifies, the range stays under-replicated and
//! the [`Decision`] says so in `problems`; nothing is placed outside the
//! constraints to make up the count. A *voter* already outside its
//! constraints with no replacement is kept while it is needed to make up
//! `num_voters` (removing it costs quorum) and reported.
//!
//! Does not own: carrying out changes (learners, joint configs, moving
//! the lease off a voter before it is removed or moved), the liveness
//! verdicts, measuring round trips, rebalancing by load across conforming
//! placements (not done yet).

mod repair;
pub(crate) mod score;

use std::collections::BTreeMap;

use meridian_topology::{Locality, NodeId};
use serde::{Deserialize, Serialize};

use crate::config::EffectiveConfig;
use repair::choose;
use score::View;

/// A node's liveness verdict as the allocator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liveness {
    /// Takes new replicas and keeps its own.
    Live,
    /// Keeps its replicas (it may come back) but takes no new ones and
    /// no promotion; a voter there may still be demoted.
    Suspect,
    /// Its replicas count for nothing and are replaced.
    Dead,
}

/// A node as the allocator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    pub locality: Locality,
    pub liveness: Liveness,
    /// Replicas the node holds over all ranges (balance tie-break).
    pub replicas: u32,
}

/// A range's replicas now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeState {
    pub voters: Vec<NodeId>,
    pub non_voters: Vec<NodeId>,
    /// Kept where it qualifies; never removed while another choice exists.
    pub leaseholder: Option<NodeId>,
}

/// Voter or non-voter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReplicaKind {
    Voter,
    NonVoter,
}

/// Measured round trips between regions, in microseconds. Symmetric; a
/// region to itself is 0.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundTrips(BTreeMap<String, BTreeMap<String, u64>>);

impl RoundTrips {
    pub fn set(&mut self, a: &str, b: &str, micros: u64) {
        self.0
            .entry(a.to_string())
            .or_default()
            .insert(b.to_string(), micros);
        self.0
            .entry(b.to_string())
            .or_default()
            .insert(a.to_string(), micros);
    }

    pub fn get(&self, a: &str, b: &str) -> Option<u64> {
        if a == b {
            return Some(0);
        }
        self.0.get(a)?.get(b).copied()
    }
}

/// One change to a range's replicas.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Nothing to do, or nothing that can be done now (see `problems`).
    Nothing,
    Add {
        kind: ReplicaKind,
        node: NodeId,
    },
    Remove {
        kind: ReplicaKind,
        node: NodeId,
    },
    /// Add on `to` and remove from `from` in one change.
    Move {
        kind: ReplicaKind,
        from: NodeId,
        to: NodeId,
    },
    /// A non-voter becomes a voter.
    Promote(NodeId),
    /// A voter becomes a non-voter.
    Demote(NodeId),
    /// Promote one non-voter and demote one voter in one change.
    Swap {
        promote: NodeId,
        demote: NodeId,
    },
}

/// The allocator's answer for one range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// Why this action (or why nothing).
    pub reason: String,
    /// Where the lease should be: (index of the lease preference met, the
    /// voter). `None`: no preference is set or none can be met now.
    pub lease: Option<(usize, NodeId)>,
    /// What is wrong and cannot be fixed now (under-replication, a voter
    /// outside its constraints with no replacement).
    pub problems: Vec<String>,
}

/// The next change for `range` under `config`; see the module docs.
pub fn decide(
    nodes: &[NodeInfo],
    range: &RangeState,
    config: &EffectiveConfig,
    rtt: Option<&RoundTrips>,
) -> Decision {
    let view = View::new(nodes, range, config, rtt);
    let mut problems = Vec::new();
    let action = choose(&view, &mut problems);
    let (action, reason) = action.unwrap_or((Action::Nothing, String::new()));
    let reason = if action == Action::Nothing && problems.is_empty() {
        "conforming".to_string()
    } else if action == Action::Nothing {
        "nothing can be done now".to_string()
    } else {
        reason
    };
    Decision {
        action,
        reason,
        lease: view.lease_target(),
        problems,
    }
}

/// What keeps `range` from conforming to `config`; empty when it does.
pub fn nonconformities(
    nodes: &[NodeInfo],
    range: &RangeState,
    config: &EffectiveConfig,
) -> Vec<String> {
    let view = View::new(nodes, range, config, None);
    let mut out = Vec::new();
    let want = [
        (ReplicaKind::Voter, config.num_voters as usize, "voters"),
        (
            ReplicaKind::NonVoter,
            config.num_non_voters() as usize,
            "non-voters",
        ),
    ];
    for (kind, want, name) in want {
        let all = view.of_kind(kind);
        let good = view.good_count(kind);
        if good != want || all.len() != want {
            out.push(format!("{good} good {name} of {} (want {want})", all.len()));
        }
    }
    for c in view.unmet_voter_conjunctions() {
        out.push(format!(
            "voter_constraints {}: {} short",
            c.describe(),
            c.num_replicas - view.voters_matching(c)
        ));
    }
    for c in view.unmet_replica_conjunctions() {
        out.push(format!(
            "constraints {}: {} short",
            c.describe(),
            c.num_replicas - view.replicas_matching(c)
        ));
    }
    // Constraints alone let a region hold a quorum of the voters (3 of a
    // REGION-survival config's 5): the range is not where it will stay,
    // nor where it survives the region, until rule 6 spread them.
    if out.is_empty() {
        if let Some((Action::Move { from, to, .. }, _)) = repair::spread_voters(&view) {
            out.push(format!(
                "voters crowded: one moves from n{from} to n{to} for diversity"
            ));
        }
    }
    out
}

/// Carries out `action` on `range` (what a replicate queue would do).
pub fn apply(range: &mut RangeState, action: &Action) {
    fn list(range: &mut RangeState, kind: ReplicaKind) -> &mut Vec<NodeId> {
        match kind {
            ReplicaKind::Voter => &mut range.voters,
            ReplicaKind::NonVoter => &mut range.non_voters,
        }
    }
    match *action {
        Action::Nothing => {}
        Action::Add { kind, node } => list(range, kind).push(node),
        Action::Remove { kind, node } => list(range, kind).retain(|&n| n != node),
        Action::Move { kind, from, to } => {
            let l = list(range, kind);
            l.retain(|&n| n != from);
            l.push(to);
        }
        Action::Promote(node) => {
            range.non_voters.retain(|&n| n != node);
            range.voters.push(node);
        }
        Action::Demote(node) => {
            range.voters.retain(|&n| n != node);
            range.non_voters.push(node);
        }
        Action::Swap { promote, demote } => {
            range.non_voters.retain(|&n| n != promote);
            range.voters.retain(|&n| n != demote);
            range.voters.push(promote);
            range.non_voters.push(demote);
        }
    }
}

#[cfg(test)]
mod tests;
