//! The zone config of the catalog range (the SQL descriptors), when the
//! user set none: every SQL statement reads descriptors before it touches
//! a row, so in a cluster of several regions the catalog is placed like a
//! GLOBAL table: a replica in every region (a non-voter where no voter
//! is) and global reads, so that the replica in the gateway's region
//! serves the present and no statement pays a cross-region round trip
//! for its descriptors. The price is on schema changes, which write there
//! and wait out the lead like any GLOBAL write.
//!
//! The regions are the cluster's, not a database's: the catalog serves
//! every database, so it follows whichever regions have nodes. In a
//! cluster of one region nothing changes (the default config governs and
//! reads go to the leaseholder, which is near anyway).
//!
//! Not here: knowing the cluster's regions (the server's queues pass them
//! from the node directory), where the catalog's keys are (`keys`).

use std::collections::BTreeSet;

use crate::config::{EffectiveConfig, ZoneConfig};
use crate::constraint::{Conjunction, Constraint, Constraints};

/// The catalog range's config over `parent` (the default config) in a
/// cluster whose live nodes are in `regions`, or `None` to leave it to
/// `parent`: fewer than two regions, or a default that constrains
/// placement itself (the user's constraints win over this placement).
/// Voters stay as many as `parent` asks; replicas are at least one per
/// region.
pub fn catalog_config(parent: &EffectiveConfig, regions: &BTreeSet<String>) -> Option<ZoneConfig> {
    if regions.len() < 2 || !parent.constraints.is_empty() {
        return None;
    }
    let per_region = regions
        .iter()
        .map(|region| Conjunction {
            num_replicas: 1,
            constraints: vec![Constraint::required_region(region)],
        })
        .collect();
    Some(ZoneConfig {
        num_replicas: Some(parent.num_replicas.max(regions.len() as u32)),
        num_voters: Some(parent.num_voters),
        constraints: Some(Constraints(per_region)),
        global_reads: Some(true),
        ..ZoneConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{validate, validate_for_cluster};
    use meridian_topology::Locality;

    fn regions(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|r| r.to_string()).collect()
    }

    fn default_with(using: &str) -> EffectiveConfig {
        crate::parse_using(using).unwrap().effective()
    }

    #[test]
    fn one_region_keeps_the_default() {
        let parent = ZoneConfig::default_config().effective();
        assert_eq!(catalog_config(&parent, &regions(&[])), None);
        assert_eq!(catalog_config(&parent, &regions(&["us-east1"])), None);
    }

    #[test]
    fn every_region_gets_a_replica_and_reads_are_global() {
        let parent = ZoneConfig::default_config().effective();
        let three = regions(&["europe-west1", "us-east1", "us-west1"]);
        let config = catalog_config(&parent, &three)
            .unwrap()
            .inherit(&parent.to_zone_config());
        let effective = config.effective();
        assert_eq!((effective.num_voters, effective.num_replicas), (3, 3));
        assert!(effective.global_reads);
        let localities: Vec<Locality> = three
            .iter()
            .map(|r| Locality::new(r.clone(), format!("{r}-a")))
            .collect();
        validate(&effective).unwrap();
        validate_for_cluster(&effective, &localities).unwrap();
        for region in &three {
            assert!(effective
                .constraints
                .per_count()
                .any(|c| c.num_replicas == 1 && c.matches(&Locality::new(region.clone(), "z"))));
        }
    }

    #[test]
    fn regions_beyond_the_voters_get_non_voters() {
        let parent = default_with("num_replicas = 5");
        let seven = regions(&["a", "b", "c", "d", "e", "f", "g"]);
        let config = catalog_config(&parent, &seven).unwrap();
        assert_eq!(config.num_voters, Some(5));
        assert_eq!(config.num_replicas, Some(7));
        let effective = config.inherit(&parent.to_zone_config()).effective();
        assert_eq!(effective.num_non_voters(), 2);
    }

    #[test]
    fn the_users_own_constraints_win() {
        let parent = default_with("constraints = '[+region=us-east1]'");
        assert_eq!(
            catalog_config(&parent, &regions(&["us-east1", "us-west1"])),
            None
        );
    }
}
