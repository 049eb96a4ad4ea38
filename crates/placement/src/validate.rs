//! Whether a zone config makes sense, alone and on a given cluster.
//!
//! [`validate`] checks a config by itself: counts at least 1, voters not
//! above replicas, per-count sums within their totals, sizes ordered.
//! [`validate_for_cluster`] adds the cluster's localities (one per node)
//! and refuses what its nodes cannot hold, saying why:
//! - "5 voters required but only 3 nodes in region eu" (a list-form
//!   constraint leaves too few nodes);
//! - a per-count conjunction with fewer matching nodes than its count;
//! - a lease preference that no node allowed to hold a voter meets;
//! - finally, a dry run of the allocator from an empty range on the
//!   cluster (all nodes live): if it cannot reach a conforming placement,
//!   the constraints conflict in a way the checks above do not name, and
//!   the allocator's own report is the reason.
//!
//! Owns: the checks and their messages. Does not own: liveness (a config
//! is validated against the nodes that exist, dead or not).

use meridian_topology::{Locality, NodeId};

use crate::allocator::{self, Action, Liveness, NodeInfo, RangeState};
use crate::config::EffectiveConfig;
use crate::constraint::{describe_place, matches_all, Constraints};
use crate::error::PlacementError;

/// Checks `config` by itself.
pub fn validate(config: &EffectiveConfig) -> Result<(), PlacementError> {
    let invalid = |m: String| Err(PlacementError::Invalid(m));
    if config.num_replicas == 0 {
        return invalid("num_replicas must be at least 1".into());
    }
    if config.num_voters == 0 {
        return invalid("num_voters must be at least 1".into());
    }
    if config.num_voters > config.num_replicas {
        return invalid(format!(
            "num_voters ({}) exceeds num_replicas ({})",
            config.num_voters, config.num_replicas
        ));
    }
    for (name, constraints, total, what) in [
        (
            "constraints",
            &config.constraints,
            config.num_replicas,
            "num_replicas",
        ),
        (
            "voter_constraints",
            &config.voter_constraints,
            config.num_voters,
            "num_voters",
        ),
    ] {
        let list_forms = constraints.0.iter().filter(|c| c.num_replicas == 0).count();
        if list_forms > 0 && constraints.0.len() > list_forms {
            return invalid(format!("{name} mixes the list form and the per-count form"));
        }
        if constraints.counted() > total {
            return invalid(format!(
                "{name} ask for {} replicas in total but {what} is {total}",
                constraints.counted()
            ));
        }
    }
    if config.range_min_bytes >= config.range_max_bytes {
        return invalid(format!(
            "range_min_bytes ({}) must be below range_max_bytes ({})",
            config.range_min_bytes, config.range_max_bytes
        ));
    }
    Ok(())
}

/// Checks `config` against a cluster whose nodes are at `localities`.
pub fn validate_for_cluster(
    config: &EffectiveConfig,
    localities: &[Locality],
) -> Result<(), PlacementError> {
    validate(config)?;
    let unsat = |m: String| Err(PlacementError::Unsatisfiable(m));
    let nodes = localities.len() as u32;
    if config.num_replicas > nodes {
        return unsat(format!(
            "{} replicas required but the cluster has only {nodes} nodes",
            config.num_replicas
        ));
    }
    let replica_ok = |l: &Locality| config.constraints.allows(l);
    let voter_ok = |l: &Locality| replica_ok(l) && config.voter_constraints.allows(l);
    let count = |f: &dyn Fn(&Locality) -> bool| localities.iter().filter(|l| f(l)).count() as u32;
    let replica_nodes = count(&replica_ok);
    if replica_nodes < config.num_replicas {
        return unsat(format!(
            "{} replicas required but only {replica_nodes} nodes {}",
            config.num_replicas,
            place(&config.constraints)
        ));
    }
    let voter_nodes = count(&voter_ok);
    if voter_nodes < config.num_voters {
        return unsat(format!(
            "{} voters required but only {voter_nodes} nodes {}",
            config.num_voters,
            place(&merged(&config.constraints, &config.voter_constraints))
        ));
    }
    for (kind, constraints, ok) in [
        (
            "replicas",
            &config.constraints,
            &replica_ok as &dyn Fn(&Locality) -> bool,
        ),
        ("voters", &config.voter_constraints, &voter_ok),
    ] {
        for conj in constraints.per_count() {
            let have = count(&|l| ok(l) && conj.matches(l));
            if have < conj.num_replicas {
                return unsat(format!(
                    "{} {kind} required {} but only {have} {} there",
                    conj.num_replicas,
                    describe_place(&conj.constraints),
                    if have == 1 { "node" } else { "nodes" }
                ));
            }
        }
    }
    for preference in &config.lease_preferences.0 {
        if !localities
            .iter()
            .any(|l| voter_ok(l) && matches_all(preference, l))
        {
            return unsat(format!(
                "lease preference [{}] cannot be met: no node {} may hold a voter",
                preference
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                describe_place(preference)
            ));
        }
    }
    dry_run(config, localities)
}

/// Places a range from nothing on an all-live cluster and checks that it
/// conforms in the end.
fn dry_run(config: &EffectiveConfig, localities: &[Locality]) -> Result<(), PlacementError> {
    let nodes: Vec<NodeInfo> = localities
        .iter()
        .enumerate()
        .map(|(i, l)| NodeInfo {
            id: i as NodeId + 1,
            locality: l.clone(),
            liveness: Liveness::Live,
            replicas: 0,
        })
        .collect();
    let mut range = RangeState::default();
    let bound = 4 * (config.num_replicas as usize + 2) + 8;
    let mut last = None;
    for _ in 0..bound {
        let decision = allocator::decide(&nodes, &range, config, None);
        if decision.action == Action::Nothing {
            last = Some(decision);
            break;
        }
        allocator::apply(&mut range, &decision.action);
    }
    let left = allocator::nonconformities(&nodes, &range, config);
    if left.is_empty() {
        return Ok(());
    }
    let mut why = left.join("; ");
    if let Some(d) = last.filter(|d| !d.problems.is_empty()) {
        why = format!("{why} ({})", d.problems.join("; "));
    }
    Err(PlacementError::Unsatisfiable(format!(
        "no placement meets every constraint at once: {why}"
    )))
}

/// The list-form constraints of both fields, for wording.
fn merged(a: &Constraints, b: &Constraints) -> Constraints {
    let all =
        a.0.iter()
            .chain(&b.0)
            .filter(|c| c.num_replicas == 0)
            .flat_map(|c| c.constraints.clone())
            .collect();
    Constraints::all(all)
}

fn place(constraints: &Constraints) -> String {
    match constraints.0.iter().find(|c| c.num_replicas == 0) {
        Some(list) => describe_place(&list.constraints),
        None => "in the cluster".to_string(),
    }
}
