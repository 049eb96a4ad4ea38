//! The allocator: given the live nodes, a range's replicas and its
//! effective zone config, the ONE next change to make, and where the
//! lease should be. Pure: the caller (a replicate queue, later) gathers
//! the inputs, carries out the action, and asks again.
//!
//! [`decide`] tries, in order, and returns the first thing it can do:
//! 1. **Too few good voters** (a voter is good on a node not dead that
//!    meets `constraints` and `voter_constraints`): promote a non-voter
//!    that could be a voter; else put a voter on the best candidate node
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

pub(crate) mod score;

use std::collections::BTreeMap;

use meridian_topology::{Locality, NodeId};
use serde::{Deserialize, Serialize};

use crate::config::EffectiveConfig;
use crate::constraint::Conjunction;
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

type Choice = Option<(Action, String)>;

fn choose(view: &View<'_>, problems: &mut Vec<String>) -> Choice {
    use ReplicaKind::{NonVoter, Voter};
    let want_voters = view.config.num_voters as usize;
    let want_non_voters = view.config.num_non_voters() as usize;
    let voters = view.of_kind(Voter);
    let non_voters = view.of_kind(NonVoter);
    let good_voters = view.good_count(Voter);
    let good_non_voters = view.good_count(NonVoter);
    let worst_bad = |kind: ReplicaKind| {
        view.of_kind(kind)
            .iter()
            .copied()
            .filter(|&id| !view.good(kind, id))
            .max_by_key(|&id| view.remove_key(kind, id))
    };

    // 1. Too few good voters.
    if good_voters < want_voters {
        let mut promotable: Vec<NodeId> = non_voters
            .iter()
            .copied()
            .filter(|&id| view.live(id) && view.good(Voter, id))
            .collect();
        promotable.sort_by_cached_key(|&id| view.add_key(Voter, view.nodes[&id]));
        if let Some(&node) = promotable.first() {
            return Some((
                Action::Promote(node),
                format!("{good_voters} good voters of {want_voters}: promote a non-voter"),
            ));
        }
        if let Some(best) = view.candidates(Voter, None).first() {
            let reason = format!("{good_voters} good voters of {want_voters}");
            return Some(match worst_bad(Voter) {
                Some(from) => (
                    Action::Move {
                        kind: Voter,
                        from,
                        to: best.id,
                    },
                    format!("{reason}: replace a bad voter"),
                ),
                None => (
                    Action::Add {
                        kind: Voter,
                        node: best.id,
                    },
                    format!("{reason}: add one"),
                ),
            });
        }
        problems.push(format!(
            "under-replicated: {good_voters} good voters of {want_voters} and no live node without a replica meets the voter constraints"
        ));
        if let Some(bad) = worst_bad(Voter).filter(|&id| !view.dead(id)) {
            problems.push(format!(
                "voter on n{bad} breaks its constraints and has no replacement"
            ));
        }
    }

    // 2. Too many voters.
    if voters.len() > want_voters {
        if let Some(bad) = worst_bad(Voter) {
            if good_non_voters < want_non_voters && view.good(NonVoter, bad) {
                return Some((
                    Action::Demote(bad),
                    "voter outside its voter constraints, non-voters short".to_string(),
                ));
            }
            return Some((
                Action::Remove {
                    kind: Voter,
                    node: bad,
                },
                "bad voter, enough good ones".to_string(),
            ));
        }
        if good_voters > want_voters {
            let demote = good_non_voters < want_non_voters;
            let pick = voters
                .iter()
                .copied()
                .filter(|&id| view.good(Voter, id))
                .filter(|&id| {
                    let keeps = demote && view.good(NonVoter, id);
                    !view.needed(Voter, id, keeps)
                })
                .max_by_key(|&id| view.remove_key(Voter, id));
            match pick {
                Some(id) if demote && view.good(NonVoter, id) => {
                    return Some((
                        Action::Demote(id),
                        "too many voters, too few non-voters".to_string(),
                    ));
                }
                Some(id) => {
                    return Some((
                        Action::Remove {
                            kind: Voter,
                            node: id,
                        },
                        "too many voters".to_string(),
                    ));
                }
                None => {
                    // Each holds a replica conjunction up: one becomes a
                    // non-voter (keeping its replica); a non-voter that
                    // holds up nothing is then the surplus.
                    let keep = voters
                        .iter()
                        .copied()
                        .filter(|&id| view.good(NonVoter, id))
                        .filter(|&id| !view.needed(Voter, id, true))
                        .max_by_key(|&id| view.remove_key(Voter, id));
                    if let Some(id) = keep {
                        return Some((
                            Action::Demote(id),
                            "too many voters, each holding up a constraint".to_string(),
                        ));
                    }
                    problems.push("too many voters, but each is needed by a constraint".to_string())
                }
            }
        }
    }

    // 3. Too few good non-voters.
    if good_non_voters < want_non_voters {
        let reason = format!("{good_non_voters} good non-voters of {want_non_voters}");
        if let Some(best) = view.candidates(NonVoter, None).first() {
            return Some(match worst_bad(NonVoter) {
                Some(from) => (
                    Action::Move {
                        kind: NonVoter,
                        from,
                        to: best.id,
                    },
                    format!("{reason}: replace a bad non-voter"),
                ),
                None => (
                    Action::Add {
                        kind: NonVoter,
                        node: best.id,
                    },
                    format!("{reason}: add one"),
                ),
            });
        }
        problems.push(format!(
            "under-replicated: {reason} and no live node without a replica meets the constraints"
        ));
    }

    // 4. Bad or surplus non-voters.
    if let Some(bad) = worst_bad(NonVoter) {
        return Some((
            Action::Remove {
                kind: NonVoter,
                node: bad,
            },
            "bad non-voter".to_string(),
        ));
    }
    if non_voters.len() > want_non_voters {
        let pick = non_voters
            .iter()
            .copied()
            .filter(|&id| !view.needed(NonVoter, id, false))
            .max_by_key(|&id| view.remove_key(NonVoter, id));
        match pick {
            Some(id) => {
                return Some((
                    Action::Remove {
                        kind: NonVoter,
                        node: id,
                    },
                    "too many non-voters".to_string(),
                ))
            }
            None => {
                // Each non-voter holds a per-count conjunction up; one may
                // take the place of a voter that holds up none, which is
                // then the surplus non-voter.
                let promote = non_voters
                    .iter()
                    .copied()
                    .find(|&id| view.live(id) && view.good(Voter, id));
                // The voter must hold up nothing at all, or it would be
                // needed again as a non-voter and the two would trade back.
                let demote = voters
                    .iter()
                    .copied()
                    .filter(|&id| view.good(NonVoter, id) && !view.needed(Voter, id, false))
                    .max_by_key(|&id| view.remove_key(Voter, id));
                if let (Some(promote), Some(demote)) = (promote, demote) {
                    return Some((
                        Action::Swap { promote, demote },
                        "too many non-voters, each needed: trade places with a voter".to_string(),
                    ));
                }
                // Or a voter that holds up nothing moves to where the
                // non-voters are needed, which frees one of them.
                let spare_voter = voters
                    .iter()
                    .copied()
                    .filter(|&id| !view.needed(Voter, id, false))
                    .max_by_key(|&id| view.remove_key(Voter, id));
                let wanted: Vec<&Conjunction> = view
                    .config
                    .constraints
                    .per_count()
                    .filter(|c| view.replicas_matching(c) == c.num_replicas)
                    .collect();
                if let Some(from) = spare_voter {
                    for conj in wanted {
                        if let Some(to) = view.candidates(Voter, Some(conj)).first() {
                            return Some((
                                Action::Move {
                                    kind: Voter,
                                    from,
                                    to: to.id,
                                },
                                "too many non-voters, each needed: a voter takes over".to_string(),
                            ));
                        }
                    }
                }
                problems.push("too many non-voters, but each is needed by a constraint".to_string())
            }
        }
    }

    // 5. Per-count conjunctions short with the counts right.
    for conj in view.unmet_voter_conjunctions() {
        let reason = format!("voter_constraints {} short", conj.describe());
        let demotable = voters
            .iter()
            .copied()
            .filter(|&id| view.good(NonVoter, id) && !view.needed(Voter, id, true))
            .max_by_key(|&id| view.remove_key(Voter, id));
        let promotable = non_voters
            .iter()
            .copied()
            .filter(|&id| view.live(id) && view.good(Voter, id))
            .find(|&id| view.locality(id).is_some_and(|l| conj.matches(l)));
        if let (Some(promote), Some(demote)) = (promotable, demotable) {
            return Some((Action::Swap { promote, demote }, reason));
        }
        let source = voters
            .iter()
            .copied()
            .filter(|&id| !view.needed(Voter, id, false))
            .max_by_key(|&id| view.remove_key(Voter, id));
        if let (Some(from), Some(to)) = (source, view.candidates(Voter, Some(conj)).first()) {
            return Some((
                Action::Move {
                    kind: Voter,
                    from,
                    to: to.id,
                },
                reason,
            ));
        }
        // No voter may move: bring a non-voter there first; the swap
        // above then applies on the next decision.
        let spare = non_voters
            .iter()
            .copied()
            .filter(|&id| !view.needed(NonVoter, id, false))
            .max_by_key(|&id| view.remove_key(NonVoter, id));
        if let (Some(from), Some(to)) = (spare, view.candidates(Voter, Some(conj)).first()) {
            return Some((
                Action::Move {
                    kind: NonVoter,
                    from,
                    to: to.id,
                },
                format!("{reason}: a non-voter moves there to be promoted"),
            ));
        }
        // Nothing may move (each replica holds up a conjunction): one voter
        // more where it is short; rule 2 then demotes the one it replaces.
        if let Some(to) = view.candidates(Voter, Some(conj)).first() {
            return Some((
                Action::Add {
                    kind: Voter,
                    node: to.id,
                },
                format!("{reason}: add a voter there, another steps down next"),
            ));
        }
        problems.push(format!("{reason} and no move fixes it"));
    }
    for conj in view.unmet_replica_conjunctions() {
        let reason = format!("constraints {} short", conj.describe());
        for kind in [NonVoter, Voter] {
            let source = view
                .of_kind(kind)
                .iter()
                .copied()
                .filter(|&id| !view.needed(kind, id, false))
                .max_by_key(|&id| view.remove_key(kind, id));
            if let (Some(from), Some(to)) = (source, view.candidates(kind, Some(conj)).first()) {
                return Some((
                    Action::Move {
                        kind,
                        from,
                        to: to.id,
                    },
                    reason,
                ));
            }
        }
        problems.push(format!("{reason} and no move fixes it"));
    }
    // 6. Diversity: a voter moves to a region (else zone) with fewer
    // voters, if that strictly spreads them.
    if problems.is_empty() {
        if let Some(change) = spread_voters(view) {
            return Some(change);
        }
    }
    None
}

/// Rule 6: move a voter no conjunction needs from a crowded region (or
/// zone) to a candidate where, after the move, it has strictly fewer
/// voters beside it than it had. Each such move lowers the sum of squared
/// voters per region (or keeps it and lowers it per zone), so repeated
/// moves stop. Under REGION survival this undoes 3 voters in one region,
/// which constraints alone allow; the 2-2-1 the round trips chose is left
/// alone (moving one of a pair would only make another pair).
fn spread_voters(view: &View<'_>) -> Choice {
    use ReplicaKind::Voter;
    let mut sources: Vec<NodeId> = view
        .of_kind(Voter)
        .iter()
        .copied()
        .filter(|&id| view.good(Voter, id) && !view.needed(Voter, id, false))
        .collect();
    sources.sort_by_cached_key(|&id| std::cmp::Reverse(view.remove_key(Voter, id)));
    let candidates = view.candidates(Voter, None);
    for from in sources {
        let here = view.crowding(Voter, view.locality(from)?, None);
        let best = candidates
            .iter()
            .map(|n| (view.crowding(Voter, &n.locality, Some(from)), n.id))
            .filter(|&((region, zone), _)| (region + 1, zone + 1) < here)
            .min();
        if let Some((_, to)) = best {
            return Some((
                Action::Move {
                    kind: Voter,
                    from,
                    to,
                },
                "spread voters across regions and zones".to_string(),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests;
