//! `meridian bench chaos`: seeded fault schedules against a cluster this
//! process starts (real stores on RocksDB, QUIC on loopback, Raft; in a
//! temporary directory) while workloads run through the KV API. Each
//! schedule is a [`Campaign`] run: the workloads' checkers, the cluster
//! taking writes again, every range's replicas agreeing, and progress.
//! Prints one line per schedule (or, with `--json`, a summary); exits 1 on
//! any violation, whose whole history goes to a file the report names.
//!
//! Not here: the faults and checkers (the testkit's nemesis); schedules
//! against a cluster of `meridian start` processes, SIGSTOP pauses and the
//! append workload (not built).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use meridian_testkit::nemesis::{Campaign, FaultKind, ScheduleReport, Workload};
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ChaosArgs {
    /// Workloads run side by side, comma-separated: register (linearizable
    /// gets, puts and conditional puts), set (acknowledged inserts stay),
    /// bank (transfers keep the total).
    #[arg(long, default_value = "register,set", value_delimiter = ',')]
    workload: Vec<String>,
    /// Fault kinds, comma-separated: kill, isolate (or partition), mute,
    /// skew, transfer, split, move.
    #[arg(
        long,
        default_value = "kill,isolate,mute,skew,transfer",
        value_delimiter = ','
    )]
    nemesis: Vec<String>,
    /// How many schedules to run.
    #[arg(long, default_value_t = 3)]
    schedules: u64,
    /// The first schedule's seed; schedule i runs seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds of faults per schedule.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Nodes in the cluster (3 to 7; `move` needs 4 or more).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Print a JSON summary (schedules, operations, violations) on stdout.
    #[arg(long)]
    json: bool,
}

/// One schedule in the JSON summary.
#[derive(Serialize)]
struct ScheduleJson {
    seed: u64,
    faults: usize,
    splits: usize,
    moves: usize,
    operations: usize,
    ambiguous: usize,
    ranges_consistent: usize,
    violation: Option<String>,
}

#[derive(Serialize)]
struct SummaryJson {
    schedules: usize,
    operations: usize,
    ambiguous: usize,
    violations: usize,
    results: Vec<ScheduleJson>,
}

/// A fault kind by its command-line name.
fn fault_kind(name: &str) -> Result<FaultKind> {
    Ok(match name {
        "kill" => FaultKind::Kill,
        "isolate" | "partition" => FaultKind::Isolate,
        "mute" => FaultKind::Mute,
        "skew" => FaultKind::Skew,
        "transfer" => FaultKind::Transfer,
        "split" => FaultKind::Split,
        "move" => FaultKind::Move,
        "pause" => bail!("the pause fault (SIGSTOP of a process) is not built yet"),
        other => bail!(
            "no fault kind {other:?}: there are kill, isolate (or partition), mute, skew, \
             transfer, split and move"
        ),
    })
}

impl ChaosArgs {
    fn campaign(&self) -> Result<Campaign> {
        let workloads = self
            .workload
            .iter()
            .map(|w| w.trim().parse::<Workload>().map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let kinds = self
            .nemesis
            .iter()
            .map(|k| fault_kind(k.trim()))
            .collect::<Result<Vec<_>>>()?;
        if workloads.is_empty() || kinds.is_empty() {
            bail!("--workload and --nemesis each need at least one name");
        }
        if !(3..=7).contains(&self.nodes) {
            bail!("--nodes must be 3 to 7, not {}", self.nodes);
        }
        if kinds.contains(&FaultKind::Move) && self.nodes < 4 {
            bail!("the move fault needs a node without a replica: give --nodes 4 or more");
        }
        if self.schedules == 0 || self.duration == 0 {
            bail!("--schedules and --duration must be at least 1");
        }
        if self.seed.checked_add(self.schedules).is_none() {
            bail!("--seed plus --schedules must stay below 2^64");
        }
        let topology = kinds.iter().any(|k| FaultKind::TOPOLOGY.contains(k));
        Ok(Campaign {
            workloads,
            kinds,
            nodes: self.nodes,
            duration: Duration::from_secs(self.duration),
            short_steps: topology,
            replay: format!(
                "meridian bench chaos --seed {{seed}} --schedules 1 --workload {} --nemesis {} \
                 --duration {} --nodes {}",
                self.workload.join(","),
                self.nemesis.join(","),
                self.duration,
                self.nodes
            ),
        })
    }
}

pub async fn run_chaos(args: ChaosArgs) -> Result<()> {
    let campaign = args.campaign()?;
    let log = std::env::temp_dir().join(format!("meridian-chaos-{}.log", std::process::id()));
    crate::demo::init_logging_to(&log)?;
    eprintln!(
        "{} schedule(s) of {} s on {} nodes, seeds {}..={}; logs: {}",
        args.schedules,
        args.duration,
        args.nodes,
        args.seed,
        args.seed + args.schedules - 1,
        log.display()
    );
    let mut reports = Vec::new();
    for seed in args.seed..args.seed + args.schedules {
        let started = Instant::now();
        let report = campaign.run(seed).await.map_err(anyhow::Error::msg)?;
        print_schedule(&report, started.elapsed(), args.json);
        reports.push(report);
    }
    let violations = reports.iter().filter(|r| r.violation.is_some()).count();
    if args.json {
        let summary = SummaryJson {
            schedules: reports.len(),
            operations: reports.iter().map(ScheduleReport::operations).sum(),
            ambiguous: reports.iter().map(ScheduleReport::ambiguous).sum(),
            violations,
            results: reports.iter().map(schedule_json).collect(),
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "{} schedule(s), {} operations ({} ambiguous), {violations} violation(s)",
            reports.len(),
            reports
                .iter()
                .map(ScheduleReport::operations)
                .sum::<usize>(),
            reports.iter().map(ScheduleReport::ambiguous).sum::<usize>(),
        );
    }
    if violations > 0 {
        bail!(
            "{violations} of {} schedule(s) found a violation",
            reports.len()
        );
    }
    Ok(())
}

/// One schedule's result: on stdout in text mode, on stderr with `--json`
/// (stdout then holds only the summary).
fn print_schedule(report: &ScheduleReport, took: Duration, json: bool) {
    let mut text = format!(
        "{report} [{} operations, {} ambiguous, {:.1} s]\n",
        report.operations(),
        report.ambiguous(),
        took.as_secs_f64()
    );
    if let Some(violation) = &report.violation {
        text.push_str(&format!("VIOLATION: {violation}\n"));
    }
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
}

fn schedule_json(report: &ScheduleReport) -> ScheduleJson {
    ScheduleJson {
        seed: report.seed,
        faults: report.faults,
        splits: report.splits,
        moves: report.moves,
        operations: report.operations(),
        ambiguous: report.ambiguous(),
        ranges_consistent: report.ranges_consistent,
        violation: report.violation.clone(),
    }
}
