//! The repair order of the allocator: given a view of a range and its
//! cluster ([`View`]), the one action that moves it nearest to its config
//! (too few voters, too many voters, too few non-voters, too many
//! non-voters, a per-count constraint short, then voters spread across
//! regions and zones, then replica counts balanced across equally good
//! nodes), or none. The public entry point and the types are
//! in [`super`]; how nodes are ranked is in [`super::score`].

use meridian_topology::{Locality, NodeId};

use crate::constraint::Conjunction;

use super::score::View;
use super::{Action, NodeInfo, ReplicaKind};

/// An action and why, or nothing to do.
pub(super) type Choice = Option<(Action, String)>;

pub(super) fn choose(view: &View<'_>, problems: &mut Vec<String>) -> Choice {
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
            let reason = format!("{good_voters} good voters of {want_voters}");
            // A bad voter is swapped out in the same joint change: a plain
            // promotion would add a voter beside it, and if the node it
            // is on died with the promoted one (both in a lost region, the
            // promoted one's death not yet known), the larger group has no
            // quorum and its unfinished change blocks every later one.
            return Some(match worst_bad(Voter) {
                Some(bad) if voters.len() >= want_voters => (
                    Action::Swap {
                        promote: node,
                        demote: bad,
                    },
                    format!("{reason}: swap a non-voter in for a bad voter"),
                ),
                _ => (
                    Action::Promote(node),
                    format!("{reason}: promote a non-voter"),
                ),
            });
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
        if let Some(change) = balance_counts(view) {
            return Some(change);
        }
    }
    None
}

/// Nodes whose replica counts differ by less than this are left alone, so
/// that counts a pass reads a moment out of date do not make replicas
/// bounce between two nodes.
const BALANCE_GAP: u32 = 3;

/// Rule 7: conforming and spread, a replica (not the leaseholder's; no
/// conjunction needing it) on a node with many more replicas moves to a
/// node with fewer where it is exactly as diverse (same crowding of its
/// region and zone after the move) and still allowed. Each move narrows
/// the gap between two nodes by two, so repeated moves stop; placing new
/// replicas already prefers the emptiest node (`add_key`), so this only
/// matters once nodes join a cluster that has data.
fn balance_counts(view: &View<'_>) -> Choice {
    for kind in [ReplicaKind::Voter, ReplicaKind::NonVoter] {
        let mut sources: Vec<&NodeInfo> = view
            .of_kind(kind)
            .iter()
            .filter(|&&id| Some(id) != view.range.leaseholder)
            .filter(|&&id| view.good(kind, id) && !view.needed(kind, id, false))
            .filter_map(|id| view.nodes.get(id).copied())
            .collect();
        sources.sort_by_key(|n| std::cmp::Reverse((n.replicas, n.id)));
        for from in sources {
            let here = view.crowding(kind, &from.locality, None);
            let to = view
                .candidates(kind, None)
                .into_iter()
                .filter(|n| n.replicas + BALANCE_GAP <= from.replicas)
                .filter(|n| {
                    let (region, zone) = view.crowding(kind, &n.locality, Some(from.id));
                    (region + 1, zone + 1) == here
                })
                .min_by_key(|n| (n.replicas, n.id));
            if let Some(to) = to {
                return Some((
                    Action::Move {
                        kind,
                        from: from.id,
                        to: to.id,
                    },
                    format!(
                        "balance replica counts ({} on node {}, {} on node {})",
                        from.replicas, from.id, to.replicas, to.id
                    ),
                ));
            }
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
pub(super) fn spread_voters(view: &View<'_>) -> Choice {
    use ReplicaKind::Voter;
    let mut sources: Vec<NodeId> = view
        .of_kind(Voter)
        .iter()
        .copied()
        .filter(|&id| view.good(Voter, id) && !view.needed(Voter, id, false))
        .collect();
    sources.sort_by_cached_key(|&id| std::cmp::Reverse(view.remove_key(Voter, id)));
    // Targets: nodes without a replica (the voter moves there), and the
    // range's own non-voters that could vote (swapped in for it: where
    // every node holds a replica, as the catalog's do, they are the only
    // targets).
    let mut targets: Vec<(&Locality, NodeId, bool)> = view
        .candidates(Voter, None)
        .iter()
        .map(|n| (&n.locality, n.id, false))
        .collect();
    for &id in view.of_kind(ReplicaKind::NonVoter) {
        if let (true, true, Some(locality)) =
            (view.live(id), view.good(Voter, id), view.locality(id))
        {
            targets.push((locality, id, true));
        }
    }
    for from in sources {
        let here = view.crowding(Voter, view.locality(from)?, None);
        let best = targets
            .iter()
            .map(|&(locality, id, swap)| (view.crowding(Voter, locality, Some(from)), id, swap))
            .filter(|&((region, zone), _, _)| (region + 1, zone + 1) < here)
            .min();
        if let Some((_, to, swap)) = best {
            let action = match swap {
                true => Action::Swap {
                    promote: to,
                    demote: from,
                },
                false => Action::Move {
                    kind: Voter,
                    from,
                    to,
                },
            };
            return Some((action, "spread voters across regions and zones".to_string()));
        }
    }
    None
}
