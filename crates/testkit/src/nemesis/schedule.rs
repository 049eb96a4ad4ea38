//! Fault schedules: which fault, on which node, when and for how long,
//! drawn from one seed.
//!
//! Owns: the vocabulary of faults ([`Fault`]) and turning a seed and a
//! [`NemesisConfig`] into a [`Schedule`], a list of steps each of which
//! waits, applies one fault, holds it, and undoes it. Steps never overlap,
//! so in a 3-node cluster at most one node is down, cut off or skewed at a
//! time and a quorum always holds. Does not own: applying faults to a
//! cluster (`mod.rs`) nor the workloads.
//!
//! A seed replays the schedule exactly (kinds, targets, waits, holds,
//! skews); it cannot replay thread interleavings, election outcomes or
//! which node leads a range when a "leader of range r" target is resolved,
//! so a replay reproduces the fault pattern, and usually the bug.

use std::fmt;
use std::time::Duration;

use meridian_kvapi::RangeId;
use meridian_transport::NodeId;

use super::rng::Rng;

/// A kind of fault a schedule may draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Stop a node (replicas stopped, endpoint closed, data kept) and
    /// restart it after the hold.
    Kill,
    /// Block every message to and from a node, then heal.
    Isolate,
    /// Block every message a node sends (it still hears the others: a
    /// leader that cannot be answered, a follower that cannot vote), then
    /// heal.
    Mute,
    /// Move a node's physical clock ahead or behind by less than the
    /// cluster's `max_offset`, then back.
    Skew,
    /// Transfer a range's leadership (and so its lease) to a node, then
    /// hold (nothing to undo).
    Transfer,
    /// Split the range holding one of the config's split keys there, then
    /// hold (a split is not undone: ranges only multiply).
    Split,
    /// Move a replica of the range holding one of the split keys to a node
    /// that has none (a learner caught up, then one joint change replacing
    /// a voter other than the leader), then hold.
    Move,
}

impl FaultKind {
    /// The faults of nodes, networks and clocks, and lease transfers.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Kill,
        FaultKind::Isolate,
        FaultKind::Mute,
        FaultKind::Skew,
        FaultKind::Transfer,
    ];
    /// Changes of the ranges themselves: where they split and which nodes
    /// hold them. A move needs more nodes than a range has replicas.
    pub const TOPOLOGY: [FaultKind; 2] = [FaultKind::Split, FaultKind::Move];
}

/// Which node a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Node(NodeId),
    /// Whichever node leads this range when the fault starts (a
    /// leaseholder kill or isolation is what hurts).
    LeaderOf(RangeId),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(n) => write!(f, "n{n}"),
            Target::LeaderOf(r) => write!(f, "the leader of r{r}"),
        }
    }
}

/// One fault, as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Kill(Target),
    Isolate(Target),
    Mute(Target),
    /// Skew node's clock by `nanos` (negative: behind).
    Skew {
        node: NodeId,
        nanos: i64,
    },
    /// Transfer `range`'s leadership to `to` (nothing if it leads already).
    Transfer {
        range: RangeId,
        to: NodeId,
    },
    /// Split at the config's split key number `key`.
    Split {
        key: usize,
    },
    /// Move a replica of the range holding split key number `key` to `to`.
    Move {
        key: usize,
        to: NodeId,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Kill(t) => write!(f, "kill {t}"),
            Fault::Isolate(t) => write!(f, "isolate {t}"),
            Fault::Mute(t) => write!(f, "mute {t}"),
            Fault::Skew { node, nanos } => {
                write!(f, "skew n{node}'s clock by {:+} ms", nanos / 1_000_000)
            }
            Fault::Transfer { range, to } => write!(f, "transfer r{range}'s lease to n{to}"),
            Fault::Split { key } => write!(f, "split at split key {key}"),
            Fault::Move { key, to } => {
                write!(f, "move a replica of split key {key}'s range to n{to} (or the next node without one)")
            }
        }
    }
}

/// One step of a schedule: wait, apply the fault, hold it, undo it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    pub wait: Duration,
    pub fault: Fault,
    pub hold: Duration,
}

/// What a schedule may do.
#[derive(Debug, Clone)]
pub struct NemesisConfig {
    pub seed: u64,
    /// The nodes faults may hit.
    pub nodes: Vec<NodeId>,
    /// Ranges whose leader a kill or an isolation may target; after each
    /// fault the nemesis waits for each of them to have a leader again.
    pub ranges: Vec<RangeId>,
    /// The kinds to draw from.
    pub kinds: Vec<FaultKind>,
    /// The cluster's clock offset bound: skews stay strictly inside it.
    pub max_offset: Duration,
    /// Keys splits happen at and moves pick their range by (inside the
    /// workload's keys, where a split or a move hurts).
    pub split_keys: Vec<Vec<u8>>,
    /// Bounds of the quiet time before each fault.
    pub wait: (Duration, Duration),
    /// Bounds of how long each fault is held.
    pub hold: (Duration, Duration),
}

impl NemesisConfig {
    /// Every fault kind on nodes 1..=n, leader targets on `ranges`, waits
    /// of 0.2 to 1 s and holds of 0.5 to 2.5 s.
    pub fn new(seed: u64, n: usize, ranges: &[RangeId], max_offset: Duration) -> Self {
        NemesisConfig {
            seed,
            nodes: (1..=n as NodeId).collect(),
            ranges: ranges.to_vec(),
            kinds: FaultKind::ALL.to_vec(),
            max_offset,
            split_keys: Vec::new(),
            wait: (Duration::from_millis(200), Duration::from_millis(1000)),
            hold: (Duration::from_millis(500), Duration::from_millis(2500)),
        }
    }
}

/// The steps of one run, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub seed: u64,
    pub steps: Vec<Step>,
}

impl Schedule {
    /// Draws steps from `config.seed` until their waits and holds add up
    /// to `duration` (the last one may end a little after it).
    pub fn generate(config: &NemesisConfig, duration: Duration) -> Schedule {
        assert!(!config.nodes.is_empty() && !config.kinds.is_empty());
        let mut rng = Rng::new(config.seed);
        let mut steps = Vec::new();
        let mut total = Duration::ZERO;
        while total < duration {
            let wait = rng.duration(config.wait.0, config.wait.1);
            let hold = rng.duration(config.hold.0, config.hold.1);
            let fault = Self::draw(config, &mut rng);
            total += wait + hold;
            steps.push(Step { wait, fault, hold });
        }
        Schedule {
            seed: config.seed,
            steps,
        }
    }

    fn draw(config: &NemesisConfig, rng: &mut Rng) -> Fault {
        let target = |rng: &mut Rng| {
            if !config.ranges.is_empty() && rng.chance(50) {
                Target::LeaderOf(*rng.pick(&config.ranges))
            } else {
                Target::Node(*rng.pick(&config.nodes))
            }
        };
        match rng.pick(&config.kinds) {
            FaultKind::Kill => Fault::Kill(target(rng)),
            FaultKind::Isolate => Fault::Isolate(target(rng)),
            FaultKind::Mute => Fault::Mute(target(rng)),
            FaultKind::Skew => {
                // Between a fifth and four fifths of max_offset, either way:
                // inside the bound the cluster promises to tolerate.
                let max = config.max_offset.as_nanos() as u64;
                let magnitude = rng.range(max / 5, max * 4 / 5) as i64;
                let nanos = if rng.chance(50) {
                    magnitude
                } else {
                    -magnitude
                };
                Fault::Skew {
                    node: *rng.pick(&config.nodes),
                    nanos,
                }
            }
            // Without ranges to move or keys to split at, a skew of zero:
            // a quiet step.
            FaultKind::Transfer if config.ranges.is_empty() => quiet(config, rng),
            FaultKind::Split | FaultKind::Move if config.split_keys.is_empty() => {
                quiet(config, rng)
            }
            FaultKind::Split => Fault::Split {
                key: rng.range(0, config.split_keys.len() as u64 - 1) as usize,
            },
            FaultKind::Move => Fault::Move {
                key: rng.range(0, config.split_keys.len() as u64 - 1) as usize,
                to: *rng.pick(&config.nodes),
            },
            FaultKind::Transfer => Fault::Transfer {
                range: *rng.pick(&config.ranges),
                to: *rng.pick(&config.nodes),
            },
        }
    }
}

/// A step that changes nothing: a skew of zero.
fn quiet(config: &NemesisConfig, rng: &mut Rng) -> Fault {
    Fault::Skew {
        node: *rng.pick(&config.nodes),
        nanos: 0,
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule of seed {}:", self.seed)?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(
                f,
                "  {i:>2}: after {} ms, {} for {} ms",
                s.wait.as_millis(),
                s.fault,
                s.hold.as_millis()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64) -> NemesisConfig {
        NemesisConfig::new(seed, 3, &[1, 2], Duration::from_millis(250))
    }

    #[test]
    fn one_seed_one_schedule() {
        let d = Duration::from_secs(15);
        assert_eq!(
            Schedule::generate(&config(9), d),
            Schedule::generate(&config(9), d)
        );
        assert_ne!(
            Schedule::generate(&config(9), d),
            Schedule::generate(&config(10), d)
        );
    }

    #[test]
    fn a_schedule_fills_its_duration_within_the_bounds_it_was_given() {
        let c = config(3);
        let d = Duration::from_secs(15);
        let s = Schedule::generate(&c, d);
        let total: Duration = s.steps.iter().map(|s| s.wait + s.hold).sum();
        assert!(total >= d && total < d + c.wait.1 + c.hold.1, "{total:?}");
        for step in &s.steps {
            assert!(step.wait >= c.wait.0 && step.wait <= c.wait.1);
            assert!(step.hold >= c.hold.0 && step.hold <= c.hold.1);
            match step.fault {
                Fault::Kill(Target::Node(n))
                | Fault::Isolate(Target::Node(n))
                | Fault::Mute(Target::Node(n)) => {
                    assert!(c.nodes.contains(&n))
                }
                Fault::Kill(Target::LeaderOf(r))
                | Fault::Isolate(Target::LeaderOf(r))
                | Fault::Mute(Target::LeaderOf(r)) => {
                    assert!(c.ranges.contains(&r))
                }
                Fault::Skew { node, nanos } => {
                    assert!(c.nodes.contains(&node));
                    assert!(nanos.unsigned_abs() < c.max_offset.as_nanos() as u64);
                    assert!(nanos != 0);
                }
                Fault::Transfer { range, to } => {
                    assert!(c.ranges.contains(&range) && c.nodes.contains(&to))
                }
                Fault::Split { .. } | Fault::Move { .. } => {
                    panic!("no split keys, yet {:?}", step.fault)
                }
            }
        }
    }

    #[test]
    fn over_many_seeds_every_kind_and_target_shows_up() {
        let mut text = String::new();
        for seed in 0..10 {
            text.push_str(&Schedule::generate(&config(seed), Duration::from_secs(15)).to_string());
        }
        for needle in [
            "kill n",
            "kill the leader",
            "isolate n",
            "isolate the leader",
            "skew n",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        let topology = NemesisConfig {
            kinds: FaultKind::TOPOLOGY.to_vec(),
            split_keys: vec![b"c".to_vec(), b"k".to_vec()],
            ..config(2)
        };
        let s = Schedule::generate(&topology, Duration::from_secs(15));
        for step in &s.steps {
            match step.fault {
                Fault::Split { key } => assert!(key < 2),
                Fault::Move { key, to } => assert!(key < 2 && topology.nodes.contains(&to)),
                other => panic!("not a topology fault: {other:?}"),
            }
        }
        assert!(s
            .steps
            .iter()
            .any(|s| matches!(s.fault, Fault::Split { .. })));
        assert!(s
            .steps
            .iter()
            .any(|s| matches!(s.fault, Fault::Move { .. })));
        let only_kills = NemesisConfig {
            kinds: vec![FaultKind::Kill],
            ..config(1)
        };
        let s = Schedule::generate(&only_kills, Duration::from_secs(15));
        assert!(s.steps.iter().all(|s| matches!(s.fault, Fault::Kill(_))));
    }
}
