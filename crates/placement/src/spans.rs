//! Which zone config governs which keys: configs keyed by span
//! `[start, end)`, nested or disjoint, under one default.
//!
//! A span's config inherits every unset field from the smallest span that
//! encloses it, and the outermost from the default (itself filled from
//! [`ZoneConfig::default_config`]), like CockroachDB's cluster default ->
//! database -> table -> partition. Spans that partly overlap are refused:
//! "which parent?" would have no answer.
//!
//! A range never spans two configs: [`ZoneConfigs::split_keys_within`]
//! names every span boundary strictly inside a range's bounds, where the
//! split queue (later) must split it.
//!
//! Owns: the map, lookup of the effective config for a key, split points,
//! validated updates. Does not own: storing the map in the system
//! keyspace (the derive keeps it postcard-friendly: a sorted `Vec`, not a
//! map with byte-string keys), or any key encoding.

use meridian_topology::Locality;
use serde::{Deserialize, Serialize};

use crate::config::{EffectiveConfig, ZoneConfig};
use crate::error::PlacementError;
use crate::validate::validate_for_cluster;

/// One span's own config (only what it sets).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpanConfig {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
    pub config: ZoneConfig,
}

impl SpanConfig {
    fn contains_key(&self, key: &[u8]) -> bool {
        self.start.as_slice() <= key && key < self.end.as_slice()
    }

    fn encloses(&self, start: &[u8], end: &[u8]) -> bool {
        self.start.as_slice() <= start && end <= self.end.as_slice()
    }

    fn intersects(&self, start: &[u8], end: &[u8]) -> bool {
        self.start.as_slice() < end && start < self.end.as_slice()
    }
}

/// The zone configs of a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneConfigs {
    default: ZoneConfig,
    /// Sorted by start, then by end descending: an enclosing span comes
    /// before the spans it encloses.
    spans: Vec<SpanConfig>,
}

impl Default for ZoneConfigs {
    fn default() -> Self {
        ZoneConfigs {
            default: ZoneConfig::default_config(),
            spans: Vec::new(),
        }
    }
}

impl ZoneConfigs {
    pub fn new() -> Self {
        Self::default()
    }

    /// The default config, every field set.
    pub fn default_config(&self) -> &ZoneConfig {
        &self.default
    }

    /// Changes the default (unset fields keep CockroachDB's defaults).
    pub fn set_default(&mut self, config: ZoneConfig) {
        self.default = config.inherit(&ZoneConfig::default_config());
    }

    pub fn spans(&self) -> &[SpanConfig] {
        &self.spans
    }

    /// The config set on exactly `[start, end)`, if any.
    pub fn get(&self, start: &[u8], end: &[u8]) -> Option<&ZoneConfig> {
        self.spans
            .iter()
            .find(|s| s.start == start && s.end == end)
            .map(|s| &s.config)
    }

    /// Sets (or replaces) the config of `[start, end)`.
    pub fn set(
        &mut self,
        start: &[u8],
        end: &[u8],
        config: ZoneConfig,
    ) -> Result<(), PlacementError> {
        if start >= end {
            return Err(PlacementError::EmptySpan {
                start: start.to_vec(),
                end: end.to_vec(),
            });
        }
        if let Some(other) = self.spans.iter().find(|s| {
            s.intersects(start, end)
                && !s.encloses(start, end)
                && !(start <= s.start.as_slice() && s.end.as_slice() <= end)
        }) {
            return Err(PlacementError::OverlappingSpan {
                start: start.to_vec(),
                end: end.to_vec(),
                other_start: other.start.clone(),
                other_end: other.end.clone(),
            });
        }
        match self
            .spans
            .iter_mut()
            .find(|s| s.start == start && s.end == end)
        {
            Some(existing) => existing.config = config,
            None => {
                self.spans.push(SpanConfig {
                    start: start.to_vec(),
                    end: end.to_vec(),
                    config,
                });
                self.spans
                    .sort_by(|a, b| a.start.cmp(&b.start).then_with(|| b.end.cmp(&a.end)));
            }
        }
        Ok(())
    }

    /// Sets the config of `[start, end)` only if the effective config of
    /// that span and of every span nested in it (which may inherit from
    /// it) validates against `localities`; otherwise nothing changes.
    pub fn set_validated(
        &mut self,
        start: &[u8],
        end: &[u8],
        config: ZoneConfig,
        localities: &[Locality],
    ) -> Result<(), PlacementError> {
        let mut next = self.clone();
        next.set(start, end, config)?;
        for span in next
            .spans
            .iter()
            .filter(|s| s.start.as_slice() >= start && s.end.as_slice() <= end)
        {
            validate_for_cluster(&next.effective(&span.start), localities)?;
        }
        *self = next;
        Ok(())
    }

    /// Removes the config of exactly `[start, end)`; spans nested in it
    /// then inherit from the next enclosing one.
    pub fn remove(&mut self, start: &[u8], end: &[u8]) -> Result<ZoneConfig, PlacementError> {
        let at = self
            .spans
            .iter()
            .position(|s| s.start == start && s.end == end)
            .ok_or_else(|| PlacementError::NoSuchSpan {
                start: start.to_vec(),
                end: end.to_vec(),
            })?;
        Ok(self.spans.remove(at).config)
    }

    /// The config governing `key`, every field filled by inheritance.
    pub fn resolved(&self, key: &[u8]) -> ZoneConfig {
        // Spans containing a key form a chain, outermost first in `spans`.
        self.spans
            .iter()
            .filter(|s| s.contains_key(key))
            .fold(self.default.clone(), |parent, s| s.config.inherit(&parent))
    }

    /// The effective config for `key`.
    pub fn effective(&self, key: &[u8]) -> EffectiveConfig {
        self.resolved(key).effective()
    }

    /// Every span boundary strictly inside `(start, end)`, sorted: the
    /// keys where a range `[start, end)` must be split so that each piece
    /// has one config.
    pub fn split_keys_within(&self, start: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .spans
            .iter()
            .flat_map(|s| [&s.start, &s.end])
            .filter(|k| start < k.as_slice() && k.as_slice() < end)
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }
}
