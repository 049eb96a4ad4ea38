//! What the allocator knows about one range at one moment, and how it
//! ranks nodes: which replicas are good, which per-count conjunctions are
//! met, which replica a conjunction needs, and the sort keys for adding
//! and removing.
//!
//! Owns: [`View`] and its questions. Does not own: choosing the action
//! (`allocator/mod.rs`).
//!
//! Ranking, for a node to receive a replica (best first):
//! 1. it helps an unmet per-count voter conjunction (voters only), then
//!    an unmet per-count replica conjunction;
//! 2. diversity: fewest replicas of that kind already in its region, then
//!    in its zone (voters count voters; non-voters count every replica);
//! 3. voters only, with measured round trips: smallest round trip from its
//!    region to the home region (the region of the first lease
//!    preference). Under REGION survival this sends the voters outside the
//!    home region to the nearest regions once diversity ties;
//! 4. fewest replicas on the node, then lowest node id.
//!
//! For removal the order is the reverse, after two keys that come first:
//! a bad replica (dead node or constraint broken) goes first, a replica a
//! met conjunction needs goes never, and the leaseholder goes last.

use std::collections::BTreeMap;

use meridian_topology::{Locality, NodeId};

use super::{Liveness, NodeInfo, RangeState, ReplicaKind, RoundTrips};
use crate::config::EffectiveConfig;
use crate::constraint::{matches_all, Conjunction, ConstraintKind, Tier};

/// Round trip assumed between regions with no measurement (sorts last).
const UNKNOWN_RTT: u64 = u64::MAX / 2;

pub(crate) struct View<'a> {
    pub nodes: BTreeMap<NodeId, &'a NodeInfo>,
    pub config: &'a EffectiveConfig,
    pub rtt: Option<&'a RoundTrips>,
    pub range: &'a RangeState,
    pub home: Option<String>,
}

impl<'a> View<'a> {
    pub fn new(
        nodes: &'a [NodeInfo],
        range: &'a RangeState,
        config: &'a EffectiveConfig,
        rtt: Option<&'a RoundTrips>,
    ) -> Self {
        let home = config.lease_preferences.0.first().and_then(|p| {
            p.iter()
                .find(|c| c.kind == ConstraintKind::Required && c.tier == Tier::Region)
                .map(|c| c.value.clone())
        });
        View {
            nodes: nodes.iter().map(|n| (n.id, n)).collect(),
            config,
            rtt,
            range,
            home,
        }
    }

    pub fn locality(&self, id: NodeId) -> Option<&'a Locality> {
        self.nodes.get(&id).map(|n| &n.locality)
    }

    /// Unknown nodes count as dead: nothing can be placed or kept there.
    pub fn dead(&self, id: NodeId) -> bool {
        self.nodes
            .get(&id)
            .is_none_or(|n| n.liveness == Liveness::Dead)
    }

    pub fn live(&self, id: NodeId) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.liveness == Liveness::Live)
    }

    /// Whether a node at this locality may hold a replica of `kind`.
    pub fn allowed(&self, kind: ReplicaKind, locality: &Locality) -> bool {
        self.config.constraints.allows(locality)
            && (kind == ReplicaKind::NonVoter || self.config.voter_constraints.allows(locality))
    }

    /// A replica that counts: on a node not dead, meeting its constraints.
    pub fn good(&self, kind: ReplicaKind, id: NodeId) -> bool {
        !self.dead(id) && self.locality(id).is_some_and(|l| self.allowed(kind, l))
    }

    pub fn of_kind(&self, kind: ReplicaKind) -> &'a [NodeId] {
        match kind {
            ReplicaKind::Voter => &self.range.voters,
            ReplicaKind::NonVoter => &self.range.non_voters,
        }
    }

    pub fn good_count(&self, kind: ReplicaKind) -> usize {
        self.of_kind(kind)
            .iter()
            .filter(|&&id| self.good(kind, id))
            .count()
    }

    pub fn holds(&self, id: NodeId) -> bool {
        self.range.voters.contains(&id) || self.range.non_voters.contains(&id)
    }

    fn good_matching(&self, conj: &Conjunction, ids: &[NodeId], kind: ReplicaKind) -> u32 {
        ids.iter()
            .filter(|&&id| self.good(kind, id))
            .filter(|&&id| self.locality(id).is_some_and(|l| conj.matches(l)))
            .count() as u32
    }

    /// Good replicas (of either kind) matching `conj`.
    pub fn replicas_matching(&self, conj: &Conjunction) -> u32 {
        self.good_matching(conj, &self.range.voters, ReplicaKind::Voter)
            + self.good_matching(conj, &self.range.non_voters, ReplicaKind::NonVoter)
    }

    pub fn voters_matching(&self, conj: &Conjunction) -> u32 {
        self.good_matching(conj, &self.range.voters, ReplicaKind::Voter)
    }

    pub fn unmet_voter_conjunctions(&self) -> Vec<&'a Conjunction> {
        self.config
            .voter_constraints
            .per_count()
            .filter(|c| self.voters_matching(c) < c.num_replicas)
            .collect()
    }

    pub fn unmet_replica_conjunctions(&self) -> Vec<&'a Conjunction> {
        self.config
            .constraints
            .per_count()
            .filter(|c| self.replicas_matching(c) < c.num_replicas)
            .collect()
    }

    /// Whether taking away the `kind` replica on `id` would leave a
    /// per-count conjunction it counts toward short. `keeps_replica`: the
    /// node keeps a replica of the other kind (a demotion), so only voter
    /// conjunctions matter.
    pub fn needed(&self, kind: ReplicaKind, id: NodeId, keeps_replica: bool) -> bool {
        if !self.good(kind, id) {
            return false;
        }
        let Some(locality) = self.locality(id) else {
            return false;
        };
        let voter_need = kind == ReplicaKind::Voter
            && self
                .config
                .voter_constraints
                .per_count()
                .any(|c| c.matches(locality) && self.voters_matching(c) <= c.num_replicas);
        let replica_need = !keeps_replica
            && self
                .config
                .constraints
                .per_count()
                .any(|c| c.matches(locality) && self.replicas_matching(c) <= c.num_replicas);
        voter_need || replica_need
    }

    /// Replicas of `kind` (or of every kind) in `locality`'s region and zone.
    pub fn crowding(
        &self,
        kind: ReplicaKind,
        locality: &Locality,
        skip: Option<NodeId>,
    ) -> (u32, u32) {
        let ids: Vec<NodeId> = match kind {
            ReplicaKind::Voter => self.range.voters.clone(),
            ReplicaKind::NonVoter => self
                .range
                .voters
                .iter()
                .chain(&self.range.non_voters)
                .copied()
                .collect(),
        };
        let (mut region, mut zone) = (0, 0);
        for id in ids {
            if Some(id) == skip || self.dead(id) {
                continue;
            }
            let Some(other) = self.locality(id) else {
                continue;
            };
            if other.region == locality.region {
                region += 1;
                if other.zone == locality.zone {
                    zone += 1;
                }
            }
        }
        (region, zone)
    }

    fn rtt_to_home(&self, kind: ReplicaKind, locality: &Locality) -> u64 {
        match (kind, self.rtt, &self.home) {
            (ReplicaKind::Voter, Some(rtt), Some(home)) => {
                rtt.get(home, &locality.region).unwrap_or(UNKNOWN_RTT)
            }
            _ => 0,
        }
    }

    /// Sort key for placing a `kind` replica on `node`: smaller is better.
    pub fn add_key(&self, kind: ReplicaKind, node: &NodeInfo) -> impl Ord {
        let l = &node.locality;
        let fixes_voter = kind == ReplicaKind::Voter
            && self.unmet_voter_conjunctions().iter().any(|c| c.matches(l));
        let fixes_replica = self
            .unmet_replica_conjunctions()
            .iter()
            .any(|c| c.matches(l));
        let (region, zone) = self.crowding(kind, l, None);
        (
            !fixes_voter,
            !fixes_replica,
            region,
            zone,
            self.rtt_to_home(kind, l),
            node.replicas,
            node.id,
        )
    }

    /// Sort key for taking the `kind` replica off `id`: larger goes first.
    pub fn remove_key(&self, kind: ReplicaKind, id: NodeId) -> impl Ord {
        let bad = !self.good(kind, id);
        let leaseholder = self.range.leaseholder == Some(id);
        let (region, zone, rtt, load) = match self.nodes.get(&id) {
            Some(n) => {
                let (r, z) = self.crowding(kind, &n.locality, None);
                (r, z, self.rtt_to_home(kind, &n.locality), n.replicas)
            }
            None => (0, 0, 0, 0),
        };
        (bad, !leaseholder, region, zone, rtt, load, id)
    }

    /// Live nodes holding no replica of the range where a `kind` replica
    /// may go, optionally also matching `conj`, best first.
    pub fn candidates(&self, kind: ReplicaKind, conj: Option<&Conjunction>) -> Vec<&'a NodeInfo> {
        let mut out: Vec<&NodeInfo> = self
            .nodes
            .values()
            .copied()
            .filter(|n| n.liveness == Liveness::Live && !self.holds(n.id))
            .filter(|n| self.allowed(kind, &n.locality))
            .filter(|n| conj.is_none_or(|c| c.matches(&n.locality)))
            .collect();
        out.sort_by_cached_key(|n| self.add_key(kind, n));
        out
    }

    /// The first lease preference some live, good voter meets, and the
    /// voter to hold the lease: the current leaseholder if it qualifies,
    /// else the qualifying voter with the fewest replicas (lowest id).
    pub fn lease_target(&self) -> Option<(usize, NodeId)> {
        for (index, preference) in self.config.lease_preferences.0.iter().enumerate() {
            let mut fits: Vec<&NodeInfo> = self
                .range
                .voters
                .iter()
                .filter(|&&id| self.live(id) && self.good(ReplicaKind::Voter, id))
                .filter_map(|id| self.nodes.get(id).copied())
                .filter(|n| matches_all(preference, &n.locality))
                .collect();
            if fits.is_empty() {
                continue;
            }
            if let Some(current) = self.range.leaseholder {
                if fits.iter().any(|n| n.id == current) {
                    return Some((index, current));
                }
            }
            fits.sort_by_key(|n| (n.replicas, n.id));
            return Some((index, fits[0].id));
        }
        None
    }
}
