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
//!
//! This module owns a replica's quiesce state (`QuiesceState`, with the
//! `impl Replica` methods that read and change it), the two RPCs, the
//! quiesce loop and the leader watch. It does not own the store: the loops
//! see the node's replicas through `ReplicaSource`, and the store
//! registers the RPC handlers, which call `Replica::quiesce_if_led_by` and
//! `Replica::wake_local`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meridian_kvapi::{NodeId, RangeId, ReplicaId};
use meridian_transport::{Rpc, Transport};
use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tracing::debug;

use crate::replica::Replica;

/// How often the store looks for ranges to quiesce and pings the leaders of
/// its quiesced ranges.
pub const QUIESCE_CHECK: Duration = Duration::from_millis(500);
/// How long a range must have been idle before it quiesces.
pub const IDLE_BEFORE_QUIESCE: Duration = Duration::from_secs(2);

/// The leader of `range_id` in `term` asks a follower to stop its timers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuiesceRequest {
    pub range_id: RangeId,
    pub leader: NodeId,
    pub term: u64,
}

pub struct QuiesceRpc;
impl Rpc for QuiesceRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::QUIESCE;
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
    const KIND: u16 = meridian_kvapi::wire::kinds::WAKE;
    const NAME: &'static str = "Wake";
    const IDEMPOTENT: bool = true;
    type Request = Vec<RangeId>;
    type Response = ();
}

/// How many ranges one pass tries to quiesce at once.
const CONCURRENT_QUIESCES: usize = 64;

/// A replica's activity and timer state.
#[derive(Debug)]
pub(crate) struct QuiesceState {
    /// When the replica last served or was asked to serve a request.
    last_activity: Mutex<Instant>,
    /// Whether this replica's Raft timers are stopped.
    quiesced: AtomicBool,
    /// The leader when the replica quiesced: what the leader watch pings.
    /// 0 (no node has that id) while none is known.
    leader: AtomicU64,
}

impl Default for QuiesceState {
    fn default() -> Self {
        QuiesceState {
            last_activity: Mutex::new(Instant::now()),
            quiesced: AtomicBool::new(false),
            leader: AtomicU64::new(0),
        }
    }
}

impl Replica {
    pub fn is_quiesced(&self) -> bool {
        self.quiesce.quiesced.load(Ordering::Relaxed)
    }

    /// The leader this replica quiesced under, while it is quiesced.
    pub(crate) fn quiesced_leader(&self) -> Option<NodeId> {
        let leader = self.quiesce.leader.load(Ordering::Relaxed);
        (self.is_quiesced() && leader != 0).then_some(leader)
    }

    /// Stops this replica's Raft timers; `leader` leads the quiet group.
    pub(crate) fn quiesce_under(&self, leader: NodeId) {
        self.quiesce.leader.store(leader, Ordering::Relaxed);
        if !self.quiesce.quiesced.swap(true, Ordering::Relaxed) {
            self.raft.runtime_config().tick(false);
        }
    }

    /// A follower's answer to [`QuiesceRpc`]: it stops its timers only if
    /// it sees the same leader in the same term as the asking leader.
    pub(crate) fn quiesce_if_led_by(&self, leader: NodeId, term: u64) -> bool {
        let status = self.raft_status();
        let agrees = status.leader == Some(leader) && status.term == term;
        if agrees {
            self.quiesce_under(leader);
        }
        agrees
    }

    /// Restarts this replica's timers.
    pub(crate) fn wake_local(&self) {
        if self.quiesce.quiesced.swap(false, Ordering::Relaxed) {
            self.raft.runtime_config().tick(true);
        }
    }

    /// Asks every other replica of the range to restart its timers.
    pub(crate) async fn wake_followers(&self) {
        let others: Vec<NodeId> = self
            .descriptor()
            .replicas
            .iter()
            .map(|r| r.node_id)
            .filter(|&n| n != self.node_id)
            .collect();
        // Best effort: a follower that misses it is woken when it sees the
        // leader change, and follows a live leader either way.
        let ranges = vec![self.range_id];
        futures_util::future::join_all(others.into_iter().map(|node| {
            self.transport
                .call::<WakeRpc>(node, &ranges, Duration::from_millis(500))
        }))
        .await;
    }

    /// Whether this replica leads, has been idle for `idle`, and every
    /// follower holds its last log entry: then its group can stop ticking.
    pub(crate) fn should_quiesce(&self, idle: Duration) -> bool {
        if self.is_quiesced() || self.quiesce.last_activity.lock().elapsed() < idle {
            return false;
        }
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let Some(replication) = &m.replication else {
            return false;
        };
        let matched = replication
            .iter()
            .map(|(&node, matched)| (node, matched.as_ref().map(|id| id.index)));
        group_is_caught_up(self.replica_id, m.current_leader, m.last_log_index, matched)
    }

    /// Marks activity and, at a quiesced leader, wakes the group and renews
    /// the lease with one quorum round.
    pub(crate) async fn activate(&self) {
        *self.quiesce.last_activity.lock() = Instant::now();
        // A follower stays quiet: it answers NotLeaseholder, and waking its
        // election timer beside a quiet leader would only start an election.
        if !self.is_quiesced() || self.leader() != Some(self.node_id) {
            return;
        }
        self.wake_local();
        self.wake_followers().await;
        // The lease ran out while quiet: renew it with a read-index round,
        // which heartbeats a quorum.
        let _ = self.raft.ensure_linearizable(ReadPolicy::ReadIndex).await;
    }
}

/// What the quiesce loop and the leader watch need of the node: its
/// replicas, and whether it is stopping. The store provides it.
pub(crate) trait ReplicaSource: Clone + Send + Sync + 'static {
    fn replicas(&self) -> Vec<Arc<Replica>>;
    fn is_stopped(&self) -> bool;
}

/// The node the loops run on.
#[derive(Clone)]
pub(crate) struct QuiesceNode<S> {
    pub node_id: NodeId,
    pub transport: Transport,
    pub replicas: S,
}

/// Whether the group `me` belongs to may quiesce, as far as Raft goes: `me`
/// leads it and every follower's matched index (`matched`, by replica id;
/// `me` may be among them) is the leader's last log index.
fn group_is_caught_up(
    me: ReplicaId,
    leader: Option<ReplicaId>,
    last_log_index: Option<u64>,
    matched: impl IntoIterator<Item = (ReplicaId, Option<u64>)>,
) -> bool {
    leader == Some(me)
        && matched
            .into_iter()
            .filter(|&(replica, _)| replica != me)
            .all(|(_, index)| index == last_log_index)
}

/// The leader watch's memory: since when each leader it pings has been
/// silent.
#[derive(Debug, Default)]
struct LeaderWatch {
    unreachable_since: BTreeMap<NodeId, Instant>,
}

impl LeaderWatch {
    /// Forgets leaders no longer watched (none of their ranges is quiet here).
    fn retain(&mut self, watched: &BTreeSet<NodeId>) {
        self.unreachable_since
            .retain(|node, _| watched.contains(node));
    }

    /// Records whether `leader` answered a ping at `now`; returns whether
    /// its ranges must wake: it has been silent for `election_timeout`.
    /// After a wake the leader is watched afresh.
    fn observe(
        &mut self,
        leader: NodeId,
        answered: bool,
        now: Instant,
        election_timeout: Duration,
    ) -> bool {
        if answered {
            self.unreachable_since.remove(&leader);
            return false;
        }
        let since = *self.unreachable_since.entry(leader).or_insert(now);
        let wake = now.duration_since(since) >= election_timeout;
        if wake {
            self.unreachable_since.remove(&leader);
        }
        wake
    }
}

/// Runs the store's quiesce loop and, in its own task, the leader watch,
/// until the store stops. They are separate so that slow quiesce attempts
/// (a dead follower times out) never delay noticing a dead leader.
pub(crate) async fn run<S: ReplicaSource>(node: QuiesceNode<S>, election_timeout: Duration) {
    tokio::spawn(run_leader_watch(node.clone(), election_timeout));
    let mut ticker = tokio::time::interval(QUIESCE_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for pass in 0u64.. {
        ticker.tick().await;
        if node.replicas.is_stopped() {
            return;
        }
        // Reading every quiet replica's Raft metrics is the loop's main
        // cost with thousands of ranges, so the check is every 4th pass.
        let check_leaders = pass % 4 == 0;
        let candidates: Vec<_> = node
            .replicas
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
                let node = node.clone();
                async move { quiesce(&node, &replica).await }
            })
            .await;
    }
}

async fn run_leader_watch<S: ReplicaSource>(node: QuiesceNode<S>, election_timeout: Duration) {
    let mut watch = LeaderWatch::default();
    let mut ticker = tokio::time::interval(QUIESCE_CHECK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if node.replicas.is_stopped() {
            return;
        }
        watch_leaders(&node, election_timeout, &mut watch).await;
    }
}

async fn quiesce<S: ReplicaSource>(node: &QuiesceNode<S>, replica: &Replica) {
    let status = replica.raft_status();
    let request = QuiesceRequest {
        range_id: replica.range_id(),
        leader: node.node_id,
        term: status.term,
    };
    let followers: Vec<NodeId> = replica
        .descriptor()
        .replicas
        .iter()
        .map(|r| r.node_id)
        .filter(|&n| n != node.node_id)
        .collect();
    let answers = futures_util::future::join_all(followers.iter().map(|&follower| {
        let request = &request;
        async move {
            node.transport
                .call::<QuiesceRpc>(follower, request, QUIESCE_CHECK)
                .await
                .unwrap_or(false)
        }
    }))
    .await;
    if answers.iter().all(|&agreed| agreed) {
        replica.quiesce_under(node.node_id);
        debug!(range_id = replica.range_id(), "range quiesced");
    } else {
        // Wake those that already stopped; try again later.
        replica.wake_followers().await;
    }
}

/// Pings every node that leads a range quiesced here; wakes the ranges of a
/// node silent for longer than the election timeout.
async fn watch_leaders<S: ReplicaSource>(
    node: &QuiesceNode<S>,
    election_timeout: Duration,
    watch: &mut LeaderWatch,
) {
    let mut by_leader: BTreeMap<NodeId, Vec<Arc<Replica>>> = BTreeMap::new();
    for replica in node.replicas.replicas() {
        if let Some(leader) = replica.quiesced_leader().filter(|&l| l != node.node_id) {
            by_leader.entry(leader).or_default().push(replica);
        }
    }
    watch.retain(&by_leader.keys().copied().collect());
    for (leader, replicas) in by_leader {
        let answered = node.transport.ping(leader, QUIESCE_CHECK).await.is_ok();
        if watch.observe(leader, answered, Instant::now(), election_timeout) {
            debug!(
                leader,
                ranges = replicas.len(),
                "leader unreachable: waking its quiesced ranges"
            );
            for replica in replicas {
                replica.wake_local();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ELECTION: Duration = Duration::from_secs(1);

    #[test]
    fn a_leader_whose_followers_hold_its_last_entry_may_quiesce() {
        let matched = [(1, Some(9)), (2, Some(9)), (3, Some(9))];
        assert!(group_is_caught_up(1, Some(1), Some(9), matched));
    }

    #[test]
    fn a_lagging_or_unknown_follower_keeps_the_group_ticking() {
        assert!(!group_is_caught_up(
            1,
            Some(1),
            Some(9),
            [(2, Some(9)), (3, Some(8))]
        ));
        assert!(!group_is_caught_up(
            1,
            Some(1),
            Some(9),
            [(2, Some(9)), (3, None)]
        ));
    }

    #[test]
    fn only_the_leader_quiesces_its_group() {
        let matched = [(1, Some(9)), (2, Some(9))];
        assert!(!group_is_caught_up(2, Some(1), Some(9), matched));
        assert!(!group_is_caught_up(1, None, Some(9), matched));
    }

    #[test]
    fn the_leaders_own_progress_does_not_count() {
        // openraft lists the leader itself in its replication progress.
        assert!(group_is_caught_up(
            1,
            Some(1),
            Some(9),
            [(1, None), (2, Some(9))]
        ));
    }

    #[test]
    fn a_silent_leader_wakes_its_ranges_after_an_election_timeout() {
        let mut watch = LeaderWatch::default();
        let start = Instant::now();
        assert!(!watch.observe(7, false, start, ELECTION), "first silence");
        assert!(!watch.observe(7, false, start + ELECTION / 2, ELECTION));
        assert!(watch.observe(7, false, start + ELECTION, ELECTION));
        // Watched afresh after the wake.
        assert!(!watch.observe(7, false, start + ELECTION * 2, ELECTION));
    }

    #[test]
    fn an_answer_resets_the_silence() {
        let mut watch = LeaderWatch::default();
        let start = Instant::now();
        watch.observe(7, false, start, ELECTION);
        assert!(!watch.observe(7, true, start + ELECTION / 2, ELECTION));
        assert!(
            !watch.observe(7, false, start + ELECTION, ELECTION),
            "silence counted from before the answer"
        );
        assert!(watch.observe(7, false, start + ELECTION * 2, ELECTION));
    }

    #[test]
    fn leaders_no_longer_watched_are_forgotten() {
        let mut watch = LeaderWatch::default();
        let start = Instant::now();
        watch.observe(7, false, start, ELECTION);
        watch.observe(8, false, start, ELECTION);
        watch.retain(&BTreeSet::from([8]));
        assert!(
            !watch.observe(7, false, start + ELECTION, ELECTION),
            "a forgotten leader's silence starts again"
        );
        assert!(watch.observe(8, false, start + ELECTION, ELECTION));
    }
}
