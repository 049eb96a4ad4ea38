//! Who the nodes of a cluster are and where they run: the numeric
//! [`NodeId`] and the [`Locality`] (`region`, `zone`) a node declares when it
//! starts.
//!
//! This is the bottom of the placement vocabulary: the transport (latency
//! between localities), the KV descriptors (which node holds a replica) and
//! the placement logic all speak it, and none of them should need QUIC or
//! RocksDB to do so. No I/O.
//!
//! Owns: the two types, the `region=R,zone=Z` text form and its parser.
//! Does not own: what localities mean for placement nor the latency between
//! them (the transport's network model).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A node's id, assigned when it joins the cluster (node 1 bootstraps it).
/// Certificates do not carry it: a node names itself in every frame it
/// sends.
pub type NodeId = u64;
/// Where a node runs. Written and parsed as `region=us-east1,zone=us-east1-b`
/// (the order of the two keys is free; `zone` may be omitted, `region` may
/// not).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Locality {
    pub region: String,
    pub zone: String,
}

impl Locality {
    pub fn new(region: impl Into<String>, zone: impl Into<String>) -> Self {
        Locality {
            region: region.into(),
            zone: zone.into(),
        }
    }
}

impl fmt::Display for Locality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "region={}", self.region)?;
        if !self.zone.is_empty() {
            write!(f, ",zone={}", self.zone)?;
        }
        Ok(())
    }
}

/// Why a locality string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid locality {input:?}: {reason} (expected region=R,zone=Z)")]
pub struct ParseLocalityError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Locality {
    type Err = ParseLocalityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseLocalityError {
            input: s.to_string(),
            reason,
        };
        let mut region = None;
        let mut zone = None;
        for part in s.split(',') {
            let (key, value) = part.split_once('=').ok_or(err("a tier lacks '='"))?;
            let value = value.trim();
            if value.is_empty() {
                return Err(err("empty value"));
            }
            let slot = match key.trim() {
                "region" => &mut region,
                "zone" => &mut zone,
                _ => return Err(err("unknown tier (only region and zone)")),
            };
            if slot.replace(value.to_string()).is_some() {
                return Err(err("tier given twice"));
            }
        }
        Ok(Locality {
            region: region.ok_or(err("missing region"))?,
            zone: zone.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let l: Locality = "region=us-east1,zone=us-east1-b".parse().unwrap();
        assert_eq!(l, Locality::new("us-east1", "us-east1-b"));
        assert_eq!(l.to_string(), "region=us-east1,zone=us-east1-b");
        let l: Locality = " zone=z1 , region=eu ".parse().unwrap();
        assert_eq!(l, Locality::new("eu", "z1"));
        let l: Locality = "region=eu".parse().unwrap();
        assert_eq!(l.to_string(), "region=eu");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "us-east1",
            "zone=z",
            "region=",
            "region=a,region=b",
            "region=a,rack=3",
        ] {
            assert!(bad.parse::<Locality>().is_err(), "{bad:?} parsed");
        }
    }
}
