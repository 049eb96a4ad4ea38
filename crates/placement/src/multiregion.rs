//! The zone config CockroachDB derives from multi-region SQL settings, as
//! a pure function: database regions, primary region, survival goal,
//! placement and a table's locality in; the zone config out.
//!
//! The config returned is the one `SHOW ZONE CONFIGURATION` shows for the
//! table (or, for REGIONAL BY ROW, the partition of one home region): the
//! database's multi-region fields with the table's or partition's
//! overrides applied. CockroachDB writes the database fields and the
//! table/partition fields separately (`pkg/sql/regions/region_util.go`:
//! `ZoneConfigForMultiRegionTable`, `ZoneConfigForMultiRegionPartition`);
//! the merged result is what a range obeys and what the docs print.
//!
//! The rules (CockroachDB's `GetNumVotersAndNumReplicas`,
//! `SynthesizeReplicaConstraints`, `SynthesizeVoterConstraints`,
//! `SynthesizeLeasePreferences`), with `n` database regions and `home` the
//! table's region (the primary region for GLOBAL tables and for REGIONAL
//! BY TABLE without `IN`):
//!
//! | field | ZONE survival | REGION survival |
//! |---|---|---|
//! | `num_voters` | 3 | 5 |
//! | `num_replicas` | DEFAULT: 3 + (n - 1); RESTRICTED: 3 | max(5, 2 + (n - 1)) |
//! | `constraints` | DEFAULT: `{+region=r: 1}` for every region; RESTRICTED: none | as ZONE/DEFAULT |
//! | `voter_constraints` | `[+region=home]` | `{+region=home: 2}` |
//! | `lease_preferences` | `[[+region=home]]` | `[[+region=home]]` |
//!
//! GLOBAL tables add `global_reads = true` and always use DEFAULT placement
//! (they want a replica in every region even under RESTRICTED). REGION
//! survival needs at least 3 regions and refuses RESTRICTED placement, as
//! CockroachDB does. Regions are listed in name order, as CockroachDB
//! prints them.
//!
//! Not here: secondary regions, super regions, zone config extensions
//! (CockroachDB has them; Meridian does not yet), and the SQL that names
//! these settings.

use serde::{Deserialize, Serialize};

use crate::config::ZoneConfig;
use crate::constraint::{Conjunction, Constraint, Constraints, LeasePreferences};
use crate::error::PlacementError;

/// `SURVIVE ZONE FAILURE` or `SURVIVE REGION FAILURE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SurvivalGoal {
    Zone,
    Region,
}

/// `PLACEMENT DEFAULT` or `PLACEMENT RESTRICTED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataPlacement {
    Default,
    Restricted,
}

/// A table's locality, or for REGIONAL BY ROW, one partition's home.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TableLocality {
    /// `LOCALITY GLOBAL`.
    Global,
    /// `LOCALITY REGIONAL BY TABLE [IN r]`; `None` is the primary region.
    RegionalByTable(Option<String>),
    /// The partition of a `REGIONAL BY ROW` table whose rows live in this
    /// region.
    RegionalByRow(String),
}

/// A multi-region database's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegionSettings {
    pub regions: Vec<String>,
    pub primary_region: String,
    pub survival: SurvivalGoal,
    pub placement: DataPlacement,
}

/// Voters under ZONE survival: all in the home region.
const ZONE_SURVIVAL_VOTERS: u32 = 3;
/// Voters under REGION survival: 2 in the home region, 3 elsewhere.
const REGION_SURVIVAL_VOTERS: u32 = 5;

/// Failures `voters` voters survive: `(voters + 1) / 2 - 1`.
fn max_failures(voters: u32) -> u32 {
    voters.div_ceil(2) - 1
}

/// The zone config of a table (or REGIONAL BY ROW partition) with
/// `locality` in a database with `settings`.
pub fn synthesize(
    settings: &MultiRegionSettings,
    locality: &TableLocality,
) -> Result<ZoneConfig, PlacementError> {
    let mut regions = settings.regions.clone();
    regions.sort();
    regions.dedup();
    let err = |m: String| Err(PlacementError::MultiRegion(m));
    if regions.is_empty() {
        return err("a multi-region database needs at least one region".into());
    }
    let known = |r: &str| regions.iter().any(|x| x == r);
    if !known(&settings.primary_region) {
        return err(format!(
            "primary region {:?} is not a region of the database ({})",
            settings.primary_region,
            regions.join(", ")
        ));
    }
    if settings.survival == SurvivalGoal::Region {
        if regions.len() < 3 {
            return err("at least 3 regions are required for surviving a region failure".into());
        }
        if settings.placement == DataPlacement::Restricted {
            return err(
                "a region-survivable database cannot also have a restricted placement policy"
                    .into(),
            );
        }
    }
    let (home, placement, global) = match locality {
        TableLocality::Global => (&settings.primary_region, DataPlacement::Default, true),
        TableLocality::RegionalByTable(None) => {
            (&settings.primary_region, settings.placement, false)
        }
        TableLocality::RegionalByTable(Some(r)) | TableLocality::RegionalByRow(r) => {
            (r, settings.placement, false)
        }
    };
    if !known(home) {
        return err(format!(
            "region {home:?} is not a region of the database ({})",
            regions.join(", ")
        ));
    }
    let n = regions.len() as u32;
    let (num_voters, num_replicas) = match (settings.survival, placement) {
        (SurvivalGoal::Zone, DataPlacement::Default) => {
            (ZONE_SURVIVAL_VOTERS, ZONE_SURVIVAL_VOTERS + (n - 1))
        }
        (SurvivalGoal::Zone, DataPlacement::Restricted) => {
            (ZONE_SURVIVAL_VOTERS, ZONE_SURVIVAL_VOTERS)
        }
        (SurvivalGoal::Region, _) => (
            REGION_SURVIVAL_VOTERS,
            (max_failures(REGION_SURVIVAL_VOTERS) + (n - 1)).max(REGION_SURVIVAL_VOTERS),
        ),
    };
    let constraints = match placement {
        DataPlacement::Default => Constraints(
            regions
                .iter()
                .map(|r| Conjunction {
                    num_replicas: 1,
                    constraints: vec![Constraint::required_region(r)],
                })
                .collect(),
        ),
        DataPlacement::Restricted => Constraints::default(),
    };
    let voter_constraints = match settings.survival {
        SurvivalGoal::Zone => Constraints::all(vec![Constraint::required_region(home)]),
        SurvivalGoal::Region => Constraints(vec![Conjunction {
            num_replicas: max_failures(REGION_SURVIVAL_VOTERS),
            constraints: vec![Constraint::required_region(home)],
        }]),
    };
    Ok(ZoneConfig {
        num_replicas: Some(num_replicas),
        num_voters: Some(num_voters),
        constraints: Some(constraints),
        voter_constraints: Some(voter_constraints),
        lease_preferences: Some(LeasePreferences(vec![vec![Constraint::required_region(
            home,
        )]])),
        global_reads: global.then_some(true),
        ..ZoneConfig::default()
    })
}
