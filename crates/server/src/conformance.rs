//! How the ranges this node leads stand against their zone configs, for
//! the metrics: the replicate queue files a [`RangeReport`] for each range
//! it looks at, and [`Conformance::totals`] sums the latest pass.
//!
//! The counts follow CockroachDB's replication reports: under-replicated
//! (fewer voters or non-voters than wanted), over-replicated (more),
//! unavailable (live voters short of a quorum), nonconforming (any of
//! those, an unmet per-count constraint or a replica outside its
//! constraints), and replicas outside their constraints, which must stay 0
//! (residency).
//!
//! Not here: the cluster-wide view with reasons per range (`status`), the
//! decisions (`allocator`).

use std::collections::BTreeMap;

use meridian_kvapi::{RangeId, ReplicaDescriptor, ReplicaKind};
use meridian_placement::allocator::{nonconformities, Liveness, NodeInfo};
use meridian_placement::EffectiveConfig;
use parking_lot::Mutex;

use crate::allocator::range_state;

/// One range's standing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RangeReport {
    pub under_replicated: bool,
    pub over_replicated: bool,
    pub unavailable: bool,
    pub nonconforming: bool,
    /// Replicas on nodes the config's constraints do not allow.
    pub replicas_outside_constraints: u64,
}

impl RangeReport {
    pub fn of(
        replicas: &[ReplicaDescriptor],
        nodes: &[NodeInfo],
        config: &EffectiveConfig,
    ) -> Self {
        let node = |id| nodes.iter().find(|n| n.id == id);
        let voters: Vec<_> = replicas
            .iter()
            .filter(|r| r.kind == ReplicaKind::Voter)
            .collect();
        let non_voters = replicas.len() - voters.len();
        let live_voters = voters
            .iter()
            .filter(|r| node(r.node_id).is_some_and(|n| n.liveness != Liveness::Dead))
            .count();
        let outside = replicas
            .iter()
            .filter(|r| {
                node(r.node_id).is_some_and(|n| {
                    let voter_ok = r.kind != ReplicaKind::Voter
                        || config.voter_constraints.allows(&n.locality);
                    !(config.constraints.allows(&n.locality) && voter_ok)
                })
            })
            .count() as u64;
        let (want_voters, want_non_voters) =
            (config.num_voters as usize, config.num_non_voters() as usize);
        let state = range_state(replicas, None);
        RangeReport {
            under_replicated: live_voters < want_voters || non_voters < want_non_voters,
            over_replicated: voters.len() > want_voters || non_voters > want_non_voters,
            unavailable: live_voters <= voters.len() / 2,
            nonconforming: outside > 0 || !nonconformities(nodes, &state, config).is_empty(),
            replicas_outside_constraints: outside,
        }
    }
}

/// Sums over the ranges one pass looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub under_replicated: u64,
    pub over_replicated: u64,
    pub unavailable: u64,
    pub nonconforming: u64,
    pub replicas_outside_constraints: u64,
}

/// The latest report of each range this node led in the last pass.
#[derive(Default)]
pub struct Conformance {
    reports: Mutex<BTreeMap<RangeId, RangeReport>>,
}

impl Conformance {
    /// Replaces every report with one pass's.
    pub fn replace(&self, reports: BTreeMap<RangeId, RangeReport>) {
        *self.reports.lock() = reports;
    }

    pub fn totals(&self) -> Totals {
        let reports = self.reports.lock();
        let mut t = Totals::default();
        for r in reports.values() {
            t.under_replicated += u64::from(r.under_replicated);
            t.over_replicated += u64::from(r.over_replicated);
            t.unavailable += u64::from(r.unavailable);
            t.nonconforming += u64::from(r.nonconforming);
            t.replicas_outside_constraints += r.replicas_outside_constraints;
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use meridian_placement::ZoneConfig;
    use meridian_transport::Locality;

    use super::*;

    fn nodes() -> Vec<NodeInfo> {
        [
            (1, "east", Liveness::Live),
            (2, "east", Liveness::Live),
            (3, "west", Liveness::Dead),
        ]
        .into_iter()
        .map(|(id, region, liveness)| NodeInfo {
            id,
            locality: Locality::new(region, format!("{region}-{id}")),
            liveness,
            replicas: 0,
        })
        .collect()
    }

    fn voters(ids: &[u64]) -> Vec<ReplicaDescriptor> {
        ids.iter()
            .map(|&id| ReplicaDescriptor::on_node(id, ReplicaKind::Voter))
            .collect()
    }

    #[test]
    fn a_dead_voter_under_replicates_and_a_replica_outside_is_counted() {
        let config = ZoneConfig {
            num_replicas: Some(3),
            constraints: Some(meridian_placement::Constraints::parse("[+region=east]").unwrap()),
            ..ZoneConfig::default()
        }
        .effective();
        let report = RangeReport::of(&voters(&[1, 2, 3]), &nodes(), &config);
        assert!(report.under_replicated && report.nonconforming);
        assert!(!report.over_replicated && !report.unavailable);
        assert_eq!(report.replicas_outside_constraints, 1);

        let report = RangeReport::of(&voters(&[1, 3]), &nodes(), &config);
        assert!(report.unavailable, "one live voter of two is no quorum");
    }

    #[test]
    fn a_conforming_range_reports_nothing_and_totals_add_up() {
        let config = ZoneConfig {
            num_replicas: Some(2),
            ..ZoneConfig::default()
        }
        .effective();
        let fine = RangeReport::of(&voters(&[1, 2]), &nodes(), &config);
        assert_eq!(fine, RangeReport::default());
        let over = RangeReport::of(&voters(&[1, 2, 3]), &nodes(), &config);
        assert!(over.over_replicated);
        let conformance = Conformance::default();
        conformance.replace(BTreeMap::from([(1, fine), (2, over)]));
        let totals = conformance.totals();
        assert_eq!(totals.over_replicated, 1);
        assert_eq!(totals.nonconforming, 1);
        assert_eq!(totals.replicas_outside_constraints, 0);
    }
}
