//! placement: where a range's replicas and lease should be. Pure logic, no
//! I/O, no async: the queues that act on it (replicate, lease, split,
//! merge) and the CLI that sets configs come later (issue 11).
//!
//! The pieces, bottom-up:
//! 1. [`constraint`]: `+region=eu` / `-zone=eu-1`, the list form
//!    `[..]` (every replica) and the per-count form `{..: n}`, lease
//!    preferences `[[..], [..]]`; matching against a node's
//!    [`Locality`](meridian_topology::Locality).
//! 2. [`config`]: [`ZoneConfig`] (every field optional, inherited from the
//!    parent) and [`EffectiveConfig`] (nothing left to inherit).
//! 3. [`parse`]: CockroachDB's `CONFIGURE ZONE USING` text, both ways.
//! 4. [`mod@validate`]: a config alone, then against a cluster's localities,
//!    refusing what cannot be satisfied with a reason.
//! 5. [`spans`]: [`ZoneConfigs`], configs by key span with inheritance
//!    and the split keys a range must respect.
//! 6. [`multiregion`]: the zone config CockroachDB derives from a
//!    database's regions, survival goal and placement and a table's
//!    locality.
//! 7. [`records`]: how configs are stored in the system key space.
//!    [`catalog`]: the catalog range's config in a multi-region cluster
//!    (a replica in every region, global reads), unless the user set one.
//! 8. [`allocator`]: one next action for a range (add, remove, move,
//!    promote, demote a replica) and where its lease should be, with
//!    diversity across regions then zones, and under REGION survival the
//!    voters outside the home region in the regions nearest to it by
//!    measured round trip.
//!
//! A walk: `meridian zone set --using "num_voters = 5, ..."` (later) calls
//! [`parse_using`], stores the result with [`ZoneConfigs::set_validated`]
//! (refused if the cluster cannot hold it); the split queue splits ranges
//! at [`ZoneConfigs::split_keys_within`]; the replicate queue reads
//! [`ZoneConfigs::effective`] for a range's start key and asks
//! [`allocator::decide`] for the next change until it answers `Nothing`.
//!
//! Errors: one enum, [`PlacementError`].

pub mod allocator;
pub mod catalog;
pub mod config;
pub mod constraint;
pub mod error;
pub mod multiregion;
pub mod parse;
pub mod records;
pub mod spans;
pub mod validate;

pub use catalog::catalog_config;
pub use config::{EffectiveConfig, ZoneConfig};
pub use constraint::{Conjunction, Constraint, Constraints, LeasePreferences};
pub use error::PlacementError;
pub use multiregion::{
    synthesize, DataPlacement, MultiRegionSettings, SurvivalGoal, TableLocality,
};
pub use parse::parse_using;
pub use records::{
    default_zone_key, span_zone_key, zone_records_end, zone_records_start, ZoneRecord,
};
pub use spans::{SpanConfig, ZoneConfigs};
pub use validate::{validate, validate_for_cluster};

#[cfg(test)]
mod scenario;
#[cfg(test)]
mod tests;
