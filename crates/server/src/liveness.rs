//! Node liveness: every node renews a record in the first range; everyone
//! reads all records to judge who is live.
//!
//! A node's record is valid until `now + liveness_ttl` as of its last
//! heartbeat, renewed every `liveness_interval`. Verdicts, by the reader's
//! clock:
//! - **live**: the record has not expired;
//! - **suspect**: it expired less than `time_until_dead` ago;
//! - **dead**: it expired longer ago; its replicas are replaced.
//!
//! So a node that stops is seen as suspect at most `liveness_ttl` plus one
//! `liveness_interval` (the readers' refresh) after its last heartbeat, and
//! as dead `time_until_dead` after that. The epoch grows at every restart.
//!
//! [`run`] takes what it needs (the membership, weakly; this `Liveness`;
//! the clock; the timings), not the node.
//!
//! Not here: what is done with the verdicts (`allocator`, `status`), the
//! record's key and encoding (`system`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_kvapi::NodeId;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::member::Member;
use crate::system::{self, LivenessRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LivenessStatus {
    Live,
    Suspect,
    Dead,
    /// No record seen yet.
    Unknown,
}

impl fmt::Display for LivenessStatus {
    /// Lowercase, as in JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LivenessStatus::Live => "live",
            LivenessStatus::Suspect => "suspect",
            LivenessStatus::Dead => "dead",
            LivenessStatus::Unknown => "unknown",
        })
    }
}

/// How often a node renews its record, and for how long a renewal counts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeartbeatTiming {
    pub interval: Duration,
    pub ttl: Duration,
}

/// The records this node last read, and the verdicts drawn from them.
pub struct Liveness {
    records: RwLock<BTreeMap<NodeId, LivenessRecord>>,
    time_until_dead: Duration,
    /// Physical time since which this node's own heartbeats have succeeded
    /// without a gap; `None` while they fail.
    live_since: RwLock<Option<u64>>,
}

impl Liveness {
    pub(crate) fn new(time_until_dead: Duration) -> Self {
        Liveness {
            records: RwLock::new(BTreeMap::new()),
            time_until_dead,
            live_since: RwLock::new(None),
        }
    }

    pub fn record(&self, node: NodeId) -> Option<LivenessRecord> {
        self.records.read().get(&node).copied()
    }

    /// The verdict on `node` at physical time `now_nanos`.
    ///
    /// Death is judged only against time this node has watched: a record
    /// counts as expired for `time_until_dead` from the later of its expiry
    /// and the moment our own heartbeats last started succeeding. So after
    /// a restart of the whole cluster, or an outage of the first range, old
    /// records do not make live nodes look dead.
    pub fn status(&self, node: NodeId, now_nanos: u64) -> LivenessStatus {
        let Some(record) = self.record(node) else {
            return LivenessStatus::Unknown;
        };
        if record.expiration_nanos > now_nanos {
            return LivenessStatus::Live;
        }
        let Some(live_since) = *self.live_since.read() else {
            return LivenessStatus::Suspect;
        };
        let expired_at = record.expiration_nanos.max(live_since);
        if now_nanos.saturating_sub(expired_at) < self.time_until_dead.as_nanos() as u64 {
            LivenessStatus::Suspect
        } else {
            LivenessStatus::Dead
        }
    }

    fn own_heartbeat(&self, succeeded: bool, now_nanos: u64) {
        let mut since = self.live_since.write();
        match (succeeded, *since) {
            (true, None) => *since = Some(now_nanos),
            (false, _) => *since = None,
            (true, Some(_)) => {}
        }
    }

    fn replace(&self, records: Vec<LivenessRecord>) {
        let mut map = self.records.write();
        for record in records {
            map.insert(record.node_id, record);
        }
    }
}

/// Heartbeats this node's record and refreshes everyone's, for as long
/// as the node's membership lives.
pub(crate) async fn run(
    member: Weak<Member>,
    liveness: Arc<Liveness>,
    clock: Arc<HybridClock>,
    timing: HeartbeatTiming,
) {
    let mut last: Option<Vec<u8>> = None;
    let mut epoch = None;
    loop {
        let Some(member) = member.upgrade() else {
            return;
        };
        let ds = &member.ds;
        let me = member.ident.node_id;
        let key = system::liveness_key(me);
        let result = async {
            if epoch.is_none() {
                // First beat since start: a new epoch.
                let current = ds.get(&key).await?;
                let previous = current
                    .as_deref()
                    .and_then(|b| serde_json::from_slice::<LivenessRecord>(b).ok());
                epoch = Some(previous.map_or(1, |r| r.epoch + 1));
                last = current;
            }
            let record = LivenessRecord {
                node_id: me,
                epoch: epoch.expect("set above"),
                expiration_nanos: clock.physical_now() + timing.ttl.as_nanos() as u64,
            };
            let value = serde_json::to_vec(&record).expect("records serialize");
            if system::cput_json(ds, key.clone(), &record, last.clone()).await? {
                last = Some(value);
            } else {
                // Someone else wrote it (we restarted quickly): re-read.
                epoch = None;
            }
            let all = system::scan_json::<LivenessRecord>(ds, &system::liveness_prefix()).await?;
            liveness.replace(all);
            Ok::<(), meridian_kvclient::ClientError>(())
        }
        .await;
        liveness.own_heartbeat(result.is_ok(), clock.physical_now());
        if let Err(e) = result {
            warn!("liveness heartbeat failed: {e}");
        }
        drop(member);
        tokio::time::sleep(timing.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_expiration() {
        let liveness = Liveness::new(Duration::from_secs(10));
        assert_eq!(liveness.status(1, 100), LivenessStatus::Unknown);
        liveness.replace(vec![LivenessRecord {
            node_id: 1,
            epoch: 1,
            expiration_nanos: 1_000,
        }]);
        assert_eq!(liveness.status(1, 999), LivenessStatus::Live);
        // Until our own heartbeats succeed, nobody is judged dead.
        assert_eq!(liveness.status(1, u64::MAX / 2), LivenessStatus::Suspect);
        liveness.own_heartbeat(true, 0);
        assert_eq!(liveness.status(1, 1_000), LivenessStatus::Suspect);
        assert_eq!(
            liveness.status(1, 1_000 + 9_999_999_999),
            LivenessStatus::Suspect
        );
        assert_eq!(
            liveness.status(1, 1_000 + 10_000_000_000),
            LivenessStatus::Dead
        );
    }

    #[test]
    fn old_records_count_from_when_we_started_watching() {
        let liveness = Liveness::new(Duration::from_secs(10));
        liveness.replace(vec![LivenessRecord {
            node_id: 2,
            epoch: 1,
            expiration_nanos: 1_000,
        }]);
        // We came up long after node 2's record expired (a cluster restart).
        let started = 100_000_000_000;
        liveness.own_heartbeat(true, started);
        assert_eq!(liveness.status(2, started + 1), LivenessStatus::Suspect);
        assert_eq!(
            liveness.status(2, started + 10_000_000_000),
            LivenessStatus::Dead
        );
        // A failed heartbeat of our own suspends verdicts of death.
        liveness.own_heartbeat(false, started + 10_000_000_000);
        assert_eq!(
            liveness.status(2, started + 20_000_000_000),
            LivenessStatus::Suspect
        );
    }
}
