//! The zone config of the catalog range (the SQL descriptors), when the
//! user set none: every SQL statement reads descriptors before it touches
//! a row, so in a cluster of several regions the catalog gets a replica
//! on every node (non-voters beyond the default's voters) and global
//! reads, so that the gateway's own
//! replica serves the present and no statement pays a round trip, within
//! its region or across, for its descriptors. It stands in for
//! CockroachDB's descriptor leases (a copy cached on every node); the
//! price is on schema changes, which write there and wait out the lead
//! like any GLOBAL write, and one non-voter per node, which costs the
//! leaseholder a log stream per node for a range written only by DDL.
//!
//! The regions are the cluster's, not a database's: the catalog serves
//! every database, so it follows whichever regions have nodes. In a
//! cluster of one region nothing changes (the default config governs and
//! reads go to the leaseholder, which is near anyway).
//!
//! Not here: knowing the cluster's regions (the server's queues pass them
//! from the node directory), where the catalog's keys are (`keys`).

use std::collections::BTreeSet;

use meridian_topology::Locality;

use crate::config::{EffectiveConfig, ZoneConfig};

/// The catalog range's config over `parent` (the default config) in a
/// cluster whose live nodes are at `localities`, or `None` to leave it to
/// `parent`: fewer than two regions, or a default that constrains
/// placement itself (the user's constraints win over this placement).
/// Voters stay as many as `parent` asks, spread by diversity as any
/// range's; replicas are one per node, so every region has some. No
/// per-region constraint says so: with one, the allocator counted a
/// region's non-voter as its presence and let two of three voters share
/// a region (a survival test lost the catalog's quorum with that region).
pub fn catalog_config(parent: &EffectiveConfig, localities: &[Locality]) -> Option<ZoneConfig> {
    let regions: BTreeSet<&str> = localities.iter().map(|l| l.region.as_str()).collect();
    if regions.len() < 2 || !parent.constraints.is_empty() {
        return None;
    }
    Some(ZoneConfig {
        num_replicas: Some(parent.num_replicas.max(localities.len() as u32)),
        num_voters: Some(parent.num_voters),
        global_reads: Some(true),
        ..ZoneConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate, validate_for_cluster};

    /// One node in each of `regions`.
    fn nodes(regions: &[&str]) -> Vec<Locality> {
        regions
            .iter()
            .map(|r| Locality::new(*r, format!("{r}-a")))
            .collect()
    }

    fn default_with(using: &str) -> EffectiveConfig {
        crate::parse_using(using).unwrap().effective()
    }

    #[test]
    fn one_region_keeps_the_default() {
        let parent = ZoneConfig::default_config().effective();
        assert_eq!(catalog_config(&parent, &nodes(&[])), None);
        let one_region = nodes(&["us-east1", "us-east1", "us-east1"]);
        assert_eq!(catalog_config(&parent, &one_region), None);
    }

    #[test]
    fn every_node_gets_a_replica_and_reads_are_global() {
        let parent = ZoneConfig::default_config().effective();
        let three = nodes(&["europe-west1", "us-east1", "us-west1"]);
        let config = catalog_config(&parent, &three).unwrap();
        let effective = config.inherit(&parent.to_zone_config()).effective();
        assert_eq!((effective.num_voters, effective.num_replicas), (3, 3));
        assert!(effective.global_reads);
        assert!(effective.constraints.is_empty());
        validate(&effective).unwrap();
        validate_for_cluster(&effective, &three).unwrap();
    }

    #[test]
    fn every_node_beyond_the_voters_gets_a_non_voter() {
        let parent = default_with("num_replicas = 5");
        let nine = nodes(&["a", "a", "a", "b", "b", "b", "c", "c", "c"]);
        let config = catalog_config(&parent, &nine).unwrap();
        assert_eq!(config.num_voters, Some(5));
        assert_eq!(config.num_replicas, Some(9));
        let effective = config.inherit(&parent.to_zone_config()).effective();
        assert_eq!(effective.num_non_voters(), 4);
        validate_for_cluster(&effective, &nine).unwrap();
    }

    #[test]
    fn the_users_own_constraints_win() {
        let parent = default_with("constraints = '[+region=us-east1]'");
        let two = nodes(&["us-east1", "us-west1"]);
        assert_eq!(catalog_config(&parent, &two), None);
    }
}
