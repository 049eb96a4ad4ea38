//! When the benchmark's placement has converged: every range of a table
//! has its replicas and lease where the table's locality and the
//! database's survival goal say (the table in ARCHITECTURE.md section 5).
//!
//! Owns: the expected placement and the comparison, as plain functions.
//! Does not own: reading placement (the target) or polling (`driver`).
//!
//! A range's home region is the region its REGIONAL BY ROW partition is
//! named after (the partition's start key names it in quotes), else the
//! primary region (REGIONAL BY TABLE IN PRIMARY REGION, GLOBAL, and the
//! spans of a REGIONAL BY ROW table between its partitions). Then:
//!
//! | survival | replicas | in the home region | voters (when known) | lease |
//! |---|---|---|---|---|
//! | ZONE | 5 | 3 | 3, all home | home |
//! | REGION | 5 | 2 | 5 | home |
//!
//! and every database region holds at least one replica.

use super::{RangePlacement, Survival, Topology};

/// The home region of `range`.
pub fn home_region<'a>(topology: &'a Topology, range: &RangePlacement) -> &'a str {
    topology
        .regions
        .iter()
        .find(|r| range.start_key.contains(&format!("\"{r}\"")))
        .map(String::as_str)
        .unwrap_or(topology.primary())
}

/// What is wrong with `range`, empty when it conforms.
pub fn problems(topology: &Topology, survival: Survival, range: &RangePlacement) -> Vec<String> {
    let home = home_region(topology, range);
    let (replicas, at_home, voters) = match survival {
        Survival::Zone => (5, 3, 3),
        Survival::Region => (5, 2, 5),
    };
    let mut out = Vec::new();
    let id = range.range_id;
    if range.replicas.len() != replicas {
        out.push(format!(
            "range {id}: {} replicas, want {replicas}",
            range.replicas.len()
        ));
    }
    let home_count = range.replicas.iter().filter(|r| *r == home).count();
    if home_count != at_home {
        out.push(format!(
            "range {id}: {home_count} replicas in {home}, want {at_home}"
        ));
    }
    for region in &topology.regions {
        if !range.replicas.contains(region) {
            out.push(format!("range {id}: no replica in {region}"));
        }
    }
    if let Some(v) = &range.voters {
        let home_voters = v.iter().filter(|r| *r == home).count();
        let wrong = match survival {
            Survival::Zone => v.len() != voters || home_voters != voters,
            Survival::Region => v.len() != voters,
        };
        if wrong {
            out.push(format!(
                "range {id}: voters in {}, want {voters}{}",
                v.join(","),
                if survival == Survival::Zone {
                    format!(" in {home}")
                } else {
                    String::new()
                }
            ));
        }
    }
    if range.leaseholder.as_deref() != Some(home) {
        out.push(format!(
            "range {id}: lease in {}, want {home}",
            range.leaseholder.as_deref().unwrap_or("(unknown)")
        ));
    }
    out
}

/// The problems of every range of a table, empty when the table conforms.
pub fn table_problems(
    topology: &Topology,
    survival: Survival,
    ranges: &[RangePlacement],
) -> Vec<String> {
    if ranges.is_empty() {
        return vec!["no ranges".into()];
    }
    ranges
        .iter()
        .flat_map(|r| problems(topology, survival, r))
        .collect()
}
