//! Quiescing: idle ranges stop ticking, so thousands of them cost nothing.
//!
//! openraft runs a timer per group: the leader heartbeats every follower,
//! followers count down to an election. Multiplied by thousands of ranges
//! that is a steady load for no work. So:
//!
//! 1. **Quiesce.** Every [`QUIESCE_CHECK`] the store looks at the ranges it
//!    leads. One that served nothing for [`IDLE_BEFORE_QUIESCE`], whose
//!    followers all hold the leader's last log entry, is quiesced: its
//!    followers are told ([`QuiesceRpc`], naming leader and term) and stop
//!    their timers, then the leader stops its own.
//! 2. **Wake.** Any request at a quiesced leader restarts its timers, tells
//!    the followers to do the same ([`WakeRpc`]), and renews the lease with
//!    one read-index round before serving. A quiesced follower asked to serve
//!    stays quiet and redirects to the leader.
//! 3. **Failure detection while quiet.** A quiesced follower no longer
//!    notices a dead leader by missing heartbeats. Instead the store pings
//!    each node that leads one of its quiesced ranges (one ping per node, not
//!    per range); when a node does not answer within the election timeout,
//!    every quiesced range it led wakes up here and elects a new leader.
//!
//! A quiesced leader holds no valid lease (its lease ran out without
//! heartbeats), so it cannot serve a stale read; waking costs one round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt;
use meridian_transport::Rpc;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::store::Store;

/// How often the store looks for ranges to quiesce and pings the leaders of
/// its quiesced ranges.
pub const QUIESCE_CHECK: Duration = Duration::from_millis(500);
/// How long a range must have been idle before it quiesces.
pub const IDLE_BEFORE_QUIESCE: Duration = Duration::from_secs(2);

/// The leader of `range_id` in `term` asks a follower to stop its timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuiesceRequest {
    pub range_id: u64,
    pub leader: u64,
    pub term: u64,
}

pub struct QuiesceRpc;
impl Rpc for QuiesceRpc {
    const KIND: u16 = 113;
    const NAME: &'static str = "Quiesce";
    const IDEMPOTENT: bool = true;
    type Request = QuiesceRequest;
    /// Whether the follower quiesced (it refuses if it sees another leader
    /// or term, or lags behind).
    type Response = bool;
}

/// Restart the timers of these ranges.
pub struct WakeRpc;
impl Rpc for WakeRpc {
    const KIND: u16 = 114;
    const NAME: &'static str = "Wake";
    const IDEMPOTENT: bool = true;
    type Request = Vec<u64>;
    type Response = ();
}

/// How many ranges one pass tries to quiesce at once.
const CONCURRENT_QUIESCES: usize = 64;

/// Runs the store's quiesce loop and, in its own task, the leader watch,
/// until the store stops. They are separate so that slow quiesce attempts
/// (a dead follower times out) never delay noticing a dead leader.
pub(crate) async fn run(store: Store, election_timeout: Duration) {
    tokio::spawn(run_leader_watch(store.clone(), election_timeout));
    let mut ticker = tokio::time::interval(QUIESCE_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for pass in 0u64.. {
        ticker.tick().await;
        if store.is_stopped() {
            return;
        }
        // Reading every quiet replica's Raft metrics is the loop's main
        // cost with thousands of ranges, so the check is every 4th pass.
        let check_leaders = pass % 4 == 0;
        let candidates: Vec<_> = store
            .replicas()
            .into_iter()
            .filter(|replica| {
                // A replica that quiesced under a leader it no longer
                // follows (an election happened while it was quiet) must
                // tick again.
                if let Some(leader) = replica.quiesced_leader().filter(|_| check_leaders) {
                    if replica.leader() != Some(leader) {
                        replica.wake_local();
                    }
                }
                replica.should_quiesce(IDLE_BEFORE_QUIESCE)
            })
            .collect();
        futures_util::stream::iter(candidates)
            .for_each_concurrent(CONCURRENT_QUIESCES, |replica| {
                let store = store.clone();
                async move { quiesce(&store, &replica).await }
            })
            .await;
    }
}

async fn run_leader_watch(store: Store, election_timeout: Duration) {
    let mut unreachable_since: BTreeMap<u64, tokio::time::Instant> = BTreeMap::new();
    let mut ticker = tokio::time::interval(QUIESCE_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if store.is_stopped() {
            return;
        }
        watch_leaders(&store, election_timeout, &mut unreachable_since).await;
    }
}

async fn quiesce(store: &Store, replica: &crate::Replica) {
    let status = replica.raft_status();
    let request = QuiesceRequest {
        range_id: replica.range_id(),
        leader: store.node_id(),
        term: status.term,
    };
    let followers: Vec<u64> = replica
        .descriptor()
        .replicas
        .iter()
        .map(|r| r.node_id)
        .filter(|&n| n != store.node_id())
        .collect();
    let answers = futures_util::future::join_all(followers.iter().map(|&node| {
        let request = &request;
        async move {
            store
                .transport()
                .call::<QuiesceRpc>(node, request, QUIESCE_CHECK)
                .await
                .unwrap_or(false)
        }
    }))
    .await;
    if answers.iter().all(|&agreed| agreed) {
        replica.quiesce_under(store.node_id());
        debug!(range_id = replica.range_id(), "range quiesced");
    } else {
        // Wake those that already stopped; try again later.
        replica.wake_followers().await;
    }
}

/// Pings every node that leads a range quiesced here; wakes the ranges of a
/// node silent for longer than the election timeout.
async fn watch_leaders(
    store: &Store,
    election_timeout: Duration,
    unreachable_since: &mut BTreeMap<u64, tokio::time::Instant>,
) {
    let mut by_leader: BTreeMap<u64, Vec<std::sync::Arc<crate::Replica>>> = BTreeMap::new();
    for replica in store.replicas() {
        if let Some(leader) = replica.quiesced_leader().filter(|&l| l != store.node_id()) {
            by_leader.entry(leader).or_default().push(replica);
        }
    }
    let watched: BTreeSet<u64> = by_leader.keys().copied().collect();
    unreachable_since.retain(|node, _| watched.contains(node));
    for (leader, replicas) in by_leader {
        let answered = store.transport().ping(leader, QUIESCE_CHECK).await.is_ok();
        if answered {
            unreachable_since.remove(&leader);
            continue;
        }
        let since = *unreachable_since
            .entry(leader)
            .or_insert_with(tokio::time::Instant::now);
        if since.elapsed() >= election_timeout {
            debug!(
                leader,
                ranges = replicas.len(),
                "leader unreachable: waking its quiesced ranges"
            );
            for replica in replicas {
                replica.wake_local();
            }
            unreachable_since.remove(&leader);
        }
    }
}
