//! The zone config: how many replicas a span keeps, where, where its lease
//! goes, how big its ranges grow and how long old versions live.
//!
//! Every field is optional: a config set on a span says only what it
//! changes, and inherits the rest from its parent (the enclosing span's
//! config, and at the top [`ZoneConfig::default_config`], which sets every
//! field). [`ZoneConfig::inherit`] fills the gaps; [`ZoneConfig::effective`]
//! turns a fully inherited config into an [`EffectiveConfig`] with plain
//! fields, which is what the allocator reads.
//!
//! Owns: the two types, the defaults (CockroachDB's: 3 replicas, 512 MiB
//! max, 128 MiB min, gc.ttlseconds 14400), inheritance. Does not own: the
//! text form (`parse`), checks (`validate`), which span has which config
//! (`spans`).
//!
//! Serialized with serde in field order, postcard-friendly (no maps keyed
//! by non-strings, no untagged enums), for the system keyspace later.

use serde::{Deserialize, Serialize};

use crate::constraint::{Constraints, LeasePreferences};

/// 128 MiB: below this a range is a merge candidate.
pub const DEFAULT_RANGE_MIN_BYTES: u64 = 128 << 20;
/// 512 MiB: above this a range splits.
pub const DEFAULT_RANGE_MAX_BYTES: u64 = 512 << 20;
/// 4 hours, in seconds.
pub const DEFAULT_GC_TTL_SECONDS: u64 = 4 * 60 * 60;
/// Replicas of a range under the default config.
pub const DEFAULT_NUM_REPLICAS: u32 = 3;

/// A zone config as set on a span: `None` means "inherit".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneConfig {
    /// Replicas of every kind (voters plus non-voters).
    pub num_replicas: Option<u32>,
    /// Voters; the rest of `num_replicas` are non-voters. Inherited from
    /// the parent like the others; unset everywhere means all voters.
    pub num_voters: Option<u32>,
    /// Where any replica (voter or not) may or must go.
    pub constraints: Option<Constraints>,
    /// Where voters may or must go, on top of `constraints`.
    pub voter_constraints: Option<Constraints>,
    /// Where the lease should be, in order of preference.
    pub lease_preferences: Option<LeasePreferences>,
    pub range_min_bytes: Option<u64>,
    pub range_max_bytes: Option<u64>,
    /// How long overwritten versions are kept, in seconds
    /// (`gc.ttlseconds`).
    pub gc_ttl_seconds: Option<u64>,
    /// Whether the span serves non-blocking, present-time reads from every
    /// replica (CockroachDB's GLOBAL tables).
    pub global_reads: Option<bool>,
}

impl ZoneConfig {
    /// The root of inheritance: every field set, CockroachDB's defaults
    /// (`num_voters` is left unset: it then equals `num_replicas`).
    pub fn default_config() -> Self {
        ZoneConfig {
            num_replicas: Some(DEFAULT_NUM_REPLICAS),
            num_voters: None,
            constraints: Some(Constraints::default()),
            voter_constraints: Some(Constraints::default()),
            lease_preferences: Some(LeasePreferences::default()),
            range_min_bytes: Some(DEFAULT_RANGE_MIN_BYTES),
            range_max_bytes: Some(DEFAULT_RANGE_MAX_BYTES),
            gc_ttl_seconds: Some(DEFAULT_GC_TTL_SECONDS),
            global_reads: Some(false),
        }
    }

    /// This config with every unset field taken from `parent`.
    pub fn inherit(&self, parent: &ZoneConfig) -> ZoneConfig {
        fn pick<T: Clone>(own: &Option<T>, parent: &Option<T>) -> Option<T> {
            own.clone().or_else(|| parent.clone())
        }
        ZoneConfig {
            num_replicas: pick(&self.num_replicas, &parent.num_replicas),
            num_voters: pick(&self.num_voters, &parent.num_voters),
            constraints: pick(&self.constraints, &parent.constraints),
            voter_constraints: pick(&self.voter_constraints, &parent.voter_constraints),
            lease_preferences: pick(&self.lease_preferences, &parent.lease_preferences),
            range_min_bytes: pick(&self.range_min_bytes, &parent.range_min_bytes),
            range_max_bytes: pick(&self.range_max_bytes, &parent.range_max_bytes),
            gc_ttl_seconds: pick(&self.gc_ttl_seconds, &parent.gc_ttl_seconds),
            global_reads: pick(&self.global_reads, &parent.global_reads),
        }
    }

    /// The plain values, after inheriting from the default config for
    /// anything still unset.
    pub fn effective(&self) -> EffectiveConfig {
        let full = self.inherit(&ZoneConfig::default_config());
        let num_replicas = full.num_replicas.unwrap_or(DEFAULT_NUM_REPLICAS);
        EffectiveConfig {
            num_replicas,
            num_voters: full.num_voters.unwrap_or(num_replicas),
            constraints: full.constraints.unwrap_or_default(),
            voter_constraints: full.voter_constraints.unwrap_or_default(),
            lease_preferences: full.lease_preferences.unwrap_or_default(),
            range_min_bytes: full.range_min_bytes.unwrap_or(DEFAULT_RANGE_MIN_BYTES),
            range_max_bytes: full.range_max_bytes.unwrap_or(DEFAULT_RANGE_MAX_BYTES),
            gc_ttl_seconds: full.gc_ttl_seconds.unwrap_or(DEFAULT_GC_TTL_SECONDS),
            global_reads: full.global_reads.unwrap_or(false),
        }
    }
}

/// A zone config with nothing left to inherit: what a range obeys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveConfig {
    pub num_replicas: u32,
    pub num_voters: u32,
    pub constraints: Constraints,
    pub voter_constraints: Constraints,
    pub lease_preferences: LeasePreferences,
    pub range_min_bytes: u64,
    pub range_max_bytes: u64,
    pub gc_ttl_seconds: u64,
    pub global_reads: bool,
}

impl EffectiveConfig {
    /// Non-voters wanted (`num_replicas - num_voters`, never negative).
    pub fn num_non_voters(&self) -> u32 {
        self.num_replicas.saturating_sub(self.num_voters)
    }

    /// Back to a [`ZoneConfig`] with every field set.
    pub fn to_zone_config(&self) -> ZoneConfig {
        ZoneConfig {
            num_replicas: Some(self.num_replicas),
            num_voters: Some(self.num_voters),
            constraints: Some(self.constraints.clone()),
            voter_constraints: Some(self.voter_constraints.clone()),
            lease_preferences: Some(self.lease_preferences.clone()),
            range_min_bytes: Some(self.range_min_bytes),
            range_max_bytes: Some(self.range_max_bytes),
            gc_ttl_seconds: Some(self.gc_ttl_seconds),
            global_reads: Some(self.global_reads),
        }
    }
}
