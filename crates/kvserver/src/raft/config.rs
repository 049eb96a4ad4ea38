//! The Raft timing of a node's groups ([`RaftTimeouts`]) and the openraft
//! configuration every group of the node shares.
//!
//! It does not own what the timings imply for leases (see
//! [`crate::lease`]) or for quiescing (see [`crate::quiesce`]).

use openraft::ConfigError;
use openraft::SnapshotPolicy;
use serde::{Deserialize, Serialize};

/// Raft timing of every group on a node. Heartbeats must arrive well within
/// the election timeout across the slowest link; the leader lease lasts
/// `election_timeout_max`, and a failover takes about twice that.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftTimeouts {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl RaftTimeouts {
    /// For one data center or loopback: failover in about 2 s.
    pub const LAN: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 150,
        election_min_ms: 750,
        election_max_ms: 1_000,
    };
    /// For regions up to ~150 ms round trip apart (the demo's profile).
    pub const WAN: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 400,
        election_min_ms: 2_000,
        election_max_ms: 3_000,
    };
    /// For in-process tests: fast failover on loopback, with room for
    /// debug builds on two busy cores. Its lease is too short for the
    /// default clock offset bound: use it with [`Self::TEST_MAX_OFFSET`].
    pub const TEST: RaftTimeouts = RaftTimeouts {
        heartbeat_ms: 100,
        election_min_ms: 400,
        election_max_ms: 700,
    };
    /// The clock offset bound that goes with [`Self::TEST`]: a lease must
    /// outlast it plus a heartbeat round
    /// ([`Self::check_lease_covers_offset`]).
    pub const TEST_MAX_OFFSET: std::time::Duration = std::time::Duration::from_millis(250);
}

impl Default for RaftTimeouts {
    fn default() -> Self {
        Self::LAN
    }
}

/// The openraft configuration of every group on a node.
pub(crate) fn raft_config(timeouts: RaftTimeouts) -> Result<openraft::Config, ConfigError> {
    openraft::Config {
        cluster_name: "meridian".into(),
        heartbeat_interval: timeouts.heartbeat_ms,
        election_timeout_min: timeouts.election_min_ms,
        election_timeout_max: timeouts.election_max_ms,
        install_snapshot_timeout: 30_000,
        max_payload_entries: 256,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(10_000),
        // A purge can no longer overtake a queued apply (openraft issue
        // 2116): the log store deletes only applied entries
        // (`LogStore::with_applied`). The tail stays long so a follower a
        // few thousand entries behind catches up from the log, not by
        // snapshot.
        max_in_snapshot_log_to_keep: 5_000,
        enable_pre_vote: Some(true),
        ..Default::default()
    }
    .validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_is_a_valid_openraft_configuration() {
        for timeouts in [RaftTimeouts::LAN, RaftTimeouts::WAN, RaftTimeouts::TEST] {
            let config = raft_config(timeouts).expect("valid");
            assert_eq!(config.heartbeat_interval, timeouts.heartbeat_ms);
            assert_eq!(config.election_timeout_max, timeouts.election_max_ms);
        }
    }

    #[test]
    fn an_election_timeout_below_the_heartbeat_is_refused() {
        let timeouts = RaftTimeouts {
            heartbeat_ms: 500,
            election_min_ms: 100,
            election_max_ms: 200,
        };
        assert!(raft_config(timeouts).is_err());
    }
}
