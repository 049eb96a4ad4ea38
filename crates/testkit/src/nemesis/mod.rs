//! The nemesis: seeded fault schedules applied to a [`TestCluster`] while
//! a workload runs, histories of what the workload's clients saw, and
//! checkers that say whether those histories are allowed (issue 14,
//! deliverables 1 and 2, first slice; docs/reliability.md).
//!
//! Owns:
//! - [`rng`]: a deterministic generator and the seeds a test runs
//!   (`MERIDIAN_NEMESIS_SEED` replays one);
//! - [`schedule`]: faults (kill and restart, isolation, one-way
//!   partition, clock skew within `max_offset`, lease transfer, and the
//!   ranges' own changes: splits and replica moves) drawn from a seed, one
//!   at a time;
//! - [`Nemesis::run`] (here): applying a schedule to a cluster, waiting
//!   after each fault until every range has a leader again, and recording
//!   what ran;
//! - [`history`]: operations with invocation and completion instants and
//!   ok / fail / ambiguous outcomes;
//! - [`linearizable`]: a linearizability checker and a register model;
//! - the workloads with their checkers: [`register`] (per-key
//!   linearizability of get, put and conditional put through the
//!   DistSender), [`bank`] (transfers in transactions keep the total; every
//!   read-only sum is exact), [`set`] (every acknowledged insert is there
//!   at the end, and no definitely failed one is).
//!
//! Does not own: the cluster ([`TestCluster`] kills, restarts, skews and
//! partitions; the nemesis only decides when), process-level faults
//! (`kill -9` of `meridian start`, SIGSTOP), slow fsync, skew beyond
//! `max_offset`, SQL workloads, the list-append checker: later slices of
//! issue 14.
//!
//! How a test uses it ([`Stage`] does the first steps): start a cluster,
//! start a workload on a DistSender of its own
//! ([`TestCluster::dist_sender_with`]) until a [`Stop`] is raised, run the
//! nemesis beside it with `tokio::join!` and raise the stop when it is
//! done, then check the history and fail with [`failure_report`], which
//! names the seed.

pub mod bank;
pub mod campaign;
pub mod history;
pub mod linearizable;
pub mod register;
pub mod rng;
pub mod schedule;
pub mod set;
pub mod stage;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_transport::NodeId;

pub use campaign::{Campaign, ScheduleReport, Workload};
pub use history::{Entry, History, Outcome};
pub use rng::{seeds, Rng, SEED_ENV};
pub use schedule::{Fault, FaultKind, NemesisConfig, Schedule, Step, Target};
pub use stage::Stage;

use crate::TestCluster;

/// How long the cluster may take, after a fault is undone, until every
/// range named in the config has a leader again. Longer is a liveness
/// failure the nemesis reports.
pub const RECOVERY: Duration = Duration::from_secs(20);

/// Tells workload clients to stop (after their operation in flight):
/// [`Stage::run`] raises it when the nemesis is done. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// One fault as it ran.
#[derive(Debug, Clone)]
pub struct FaultRecord {
    pub step: usize,
    pub fault: Fault,
    /// The node it hit (a leader target resolved when it started).
    pub node: NodeId,
    pub started: Instant,
    /// When it was undone.
    pub healed: Instant,
    /// When every range had a leader again afterwards.
    pub recovered: Instant,
    /// What the step saw, when there is something to say (a transfer
    /// refused, or already done).
    pub note: String,
}

/// What a nemesis run did.
#[derive(Debug, Clone)]
pub struct NemesisLog {
    pub seed: u64,
    pub records: Vec<FaultRecord>,
}

impl NemesisLog {
    /// One line per fault, times from `origin` (a history's start).
    pub fn render(&self, origin: Instant) -> String {
        let at = |t: Instant| history::secs(t.saturating_duration_since(origin));
        let mut text = String::new();
        for r in &self.records {
            let note = if r.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.note)
            };
            let _ = writeln!(
                text,
                "  [{} .. {}] step {}: {} (n{}){note}, leaders back at {}",
                at(r.started),
                at(r.healed),
                r.step,
                r.fault,
                r.node,
                at(r.recovered)
            );
        }
        text
    }

    /// How many faults of `kind` ran.
    pub fn count(&self, kind: FaultKind) -> usize {
        self.records
            .iter()
            .filter(|r| {
                matches!(
                    (kind, r.fault),
                    (FaultKind::Kill, Fault::Kill(_))
                        | (FaultKind::Isolate, Fault::Isolate(_))
                        | (FaultKind::Mute, Fault::Mute(_))
                        | (FaultKind::Skew, Fault::Skew { .. })
                        | (FaultKind::Transfer, Fault::Transfer { .. })
                        | (FaultKind::Split, Fault::Split { .. })
                        | (FaultKind::Move, Fault::Move { .. })
                )
            })
            .count()
    }
}

/// The range id the nemesis gives its first split's right-hand side
/// (above the ranges a test creates by hand).
pub const FIRST_SPLIT_RANGE_ID: u64 = 1000;

/// Applies a seeded schedule of faults to a cluster.
pub struct Nemesis {
    config: NemesisConfig,
    next_range_id: std::sync::atomic::AtomicU64,
}

impl Nemesis {
    pub fn new(config: NemesisConfig) -> Nemesis {
        Nemesis {
            config,
            next_range_id: FIRST_SPLIT_RANGE_ID.into(),
        }
    }

    pub fn config(&self) -> &NemesisConfig {
        &self.config
    }

    /// The schedule [`Nemesis::run`] follows for `duration`.
    pub fn schedule(&self, duration: Duration) -> Schedule {
        Schedule::generate(&self.config, duration)
    }

    /// Runs the schedule for `duration` against `cluster`: for each step,
    /// waits, applies the fault, holds it, undoes it (restart, heal, skew
    /// back to zero) and waits until every configured range has a leader
    /// again. Returns what ran; an error (restart failed, no leader within
    /// [`RECOVERY`]) names the seed and what ran until then.
    pub async fn run(
        &self,
        cluster: &mut TestCluster,
        duration: Duration,
    ) -> Result<NemesisLog, String> {
        let schedule = self.schedule(duration);
        let mut log = NemesisLog {
            seed: self.config.seed,
            records: Vec::new(),
        };
        let origin = Instant::now();
        for (i, step) in schedule.steps.iter().enumerate() {
            tokio::time::sleep(step.wait).await;
            let started = Instant::now();
            let outcome = self.apply(cluster, step).await;
            let healed = Instant::now();
            let (node, note) = match outcome {
                Ok(done) => done,
                Err(e) => {
                    return Err(self.fail(&log, origin, &format!("step {i} ({}): {e}", step.fault)))
                }
            };
            for &range in &self.config.ranges {
                if let Err(e) = cluster.wait_for_leader(range, RECOVERY).await {
                    return Err(self.fail(
                        &log,
                        origin,
                        &format!("after step {i} ({}): {e}", step.fault),
                    ));
                }
            }
            log.records.push(FaultRecord {
                step: i,
                fault: step.fault,
                node,
                started,
                healed,
                recovered: Instant::now(),
                note,
            });
        }
        Ok(log)
    }

    fn fail(&self, log: &NemesisLog, origin: Instant, what: &str) -> String {
        format!(
            "nemesis seed {}: {what}\nfaults before it:\n{}",
            self.config.seed,
            log.render(origin)
        )
    }

    /// Applies one step's fault, holds it and undoes it; the node it hit.
    async fn apply(
        &self,
        cluster: &mut TestCluster,
        step: &Step,
    ) -> Result<(NodeId, String), String> {
        let resolve = |cluster: &TestCluster, target: Target| match target {
            Target::Node(n) => n,
            // No leader (an election in progress): a fixed node instead,
            // so the step still happens.
            Target::LeaderOf(r) => cluster
                .leader(r)
                .unwrap_or(self.config.nodes[r as usize % self.config.nodes.len()]),
        };
        match step.fault {
            Fault::Kill(target) => {
                let node = resolve(cluster, target);
                cluster
                    .kill(node)
                    .await
                    .map_err(|e| format!("kill n{node}: {e}"))?;
                tokio::time::sleep(step.hold).await;
                cluster
                    .restart(node)
                    .await
                    .map_err(|e| format!("restart n{node}: {e}"))?;
                Ok((node, String::new()))
            }
            Fault::Isolate(target) => {
                let node = resolve(cluster, target);
                cluster.network().isolate(node);
                tokio::time::sleep(step.hold).await;
                cluster.network().heal();
                Ok((node, String::new()))
            }
            Fault::Mute(target) => {
                let node = resolve(cluster, target);
                let others: Vec<NodeId> = cluster
                    .node_ids()
                    .into_iter()
                    .filter(|&n| n != node)
                    .collect();
                cluster.network().partition_one_way(&[node], &others);
                tokio::time::sleep(step.hold).await;
                cluster.network().heal();
                Ok((node, String::new()))
            }
            Fault::Skew { node, nanos } => {
                cluster.skew_clock(node, nanos);
                tokio::time::sleep(step.hold).await;
                cluster.skew_clock(node, 0);
                Ok((node, String::new()))
            }
            Fault::Transfer { range, to } => {
                // A transfer refused (an election under way, the target
                // behind) is not the cluster's failure: the step is
                // logged and the schedule goes on.
                let note = match cluster.leader(range) {
                    None => "no leader to move".to_string(),
                    Some(leader) if leader == to => format!("n{to} led already"),
                    Some(leader) => match cluster.store(leader) {
                        Err(e) => format!("the leader's store: {e}"),
                        Ok(store) => match store.transfer_leadership(range, to).await {
                            Err(e) => format!("refused: {e}"),
                            Ok(()) => format!("moved from n{leader}"),
                        },
                    },
                };
                tokio::time::sleep(step.hold).await;
                Ok((to, note))
            }
            // A split or a move refused (a leader changing, a split under
            // way) is logged too: the schedule goes on.
            Fault::Split { key } => {
                let key = &self.config.split_keys[key];
                let right = self.next_range_id.fetch_add(1, Ordering::SeqCst);
                let note = match cluster.dist_sender().admin_split(key, right).await {
                    Ok((left, right)) => format!("r{} | r{}", left.range_id, right.range_id),
                    Err(e) => format!("refused: {e}"),
                };
                tokio::time::sleep(step.hold).await;
                Ok((self.config.nodes[0], note))
            }
            Fault::Move { key, to } => {
                let (to, note) = self.move_replica(cluster, key, to).await;
                tokio::time::sleep(step.hold).await;
                Ok((to, note))
            }
        }
    }

    /// Moves a replica of the range holding split key `key` to `to` (or
    /// the next node without one), from a voter that is not the leader;
    /// the node it went to, and what happened, in words.
    async fn move_replica(
        &self,
        cluster: &TestCluster,
        key: usize,
        to: NodeId,
    ) -> (NodeId, String) {
        let key = &self.config.split_keys[key];
        let range = match cluster.dist_sender().lookup_range(key).await {
            Ok(d) => d.range_id,
            Err(e) => return (to, format!("no range for the key: {e}")),
        };
        let Some(leader) = cluster.leader(range) else {
            return (to, format!("r{range} has no leader"));
        };
        // The leader's descriptor, not the range cache's: a move since
        // would make the cache name a replica that is gone.
        let store = match cluster.store(leader) {
            Ok(store) => store,
            Err(e) => return (to, format!("the leader's store: {e}")),
        };
        let Some(descriptor) = store.replica(range).map(|r| r.descriptor()) else {
            return (to, format!("n{leader} no longer holds r{range}"));
        };
        // The drawn node, or the next one after it without a replica.
        let nodes = &self.config.nodes;
        let drawn = nodes.iter().position(|&n| n == to).unwrap_or(0);
        let Some(to) = (0..nodes.len())
            .map(|i| nodes[(drawn + i) % nodes.len()])
            .find(|&n| descriptor.replica_on(n).is_none())
        else {
            return (to, format!("every node holds r{range}"));
        };
        let from = descriptor
            .voters()
            .map(|r| r.node_id)
            .find(|&n| n != leader && n != to);
        let Some(from) = from else {
            return (to, format!("r{range} has no voter to move but its leader"));
        };
        let note = match store
            .move_replica(range, meridian_kvapi::ReplicaKind::Voter, from, to)
            .await
        {
            Ok(()) => format!("r{range} from n{from}"),
            Err(e) => format!("r{range} from n{from} refused: {e}"),
        };
        (to, note)
    }
}

/// The message a nemesis run fails with: the seed, how to replay it
/// (`replay`, with `{seed}` standing for the seed), what was violated,
/// the faults that ran, and the history excerpt.
pub fn failure_report(
    seed: u64,
    replay: &str,
    violation: &str,
    log: Option<&NemesisLog>,
    origin: Instant,
) -> String {
    let faults = log.map_or_else(|| "  (none recorded)\n".to_string(), |l| l.render(origin));
    let replay = replay.replace("{seed}", &seed.to_string());
    format!(
        "nemesis seed {seed}: {violation}\n\
         replay: {replay}\n\
         faults (times since the history's start):\n{faults}"
    )
}

/// How a nemesis test's seed is replayed: the test binary run with the
/// seed in [`SEED_ENV`] (`{seed}` stands for the seed).
pub fn test_replay(test_binary: &str) -> String {
    format!("{SEED_ENV}={{seed}} cargo nextest run --workspace -E 'binary({test_binary})'")
}
