//! A campaign: one seeded schedule of faults against a fresh stage while
//! one or more workloads run, then every check: the workloads' own, that
//! the cluster takes writes again, that every range's replicas agree, and
//! that the workloads made progress. What the nemesis tests and
//! `meridian bench chaos` run, so both hold the cluster to the same rules.
//!
//! Owns: choosing the workloads' keys and clients, the split keys of the
//! topology faults, and turning one run into a [`ScheduleReport`]. Does not
//! own the faults ([`super::schedule`]), the workloads and their checkers
//! ([`super::register`], [`super::set`], [`super::bank`]) nor the stage.

use std::fmt;
use std::time::Duration;

use super::history::{self, Counts};
use super::{bank, failure_report, register, set, FaultKind, NemesisConfig, Stage, Stop};
use crate::nemesis::Nemesis;

/// A workload a campaign runs (all of them through the KV API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Gets, puts and conditional puts on 4 keys: linearizable per key.
    Register,
    /// Unique inserts: every acknowledged one present at the end.
    Set,
    /// Transfers in transactions and read-only sums: the total holds.
    Bank,
}

impl Workload {
    pub const ALL: [Workload; 3] = [Workload::Register, Workload::Set, Workload::Bank];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Set => "set",
            Workload::Bank => "bank",
        }
    }

    /// Keys inside the workload's own, where splits and moves hurt.
    fn split_keys(self) -> &'static [&'static [u8]] {
        match self {
            Workload::Register => &[b"e/1", b"r/1"],
            Workload::Set => &[b"f/5", b"s/5"],
            Workload::Bank => &[b"b1", b"n1"],
        }
    }
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(name: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == name)
            .ok_or_else(|| {
                format!("no workload {name:?}: there are register, set and bank (append is not built yet)")
            })
    }
}

/// What a campaign runs.
#[derive(Debug, Clone)]
pub struct Campaign {
    pub workloads: Vec<Workload>,
    pub kinds: Vec<FaultKind>,
    /// At least 3; a move needs more than 3.
    pub nodes: usize,
    /// How long faults are applied.
    pub duration: Duration,
    /// Steps of 0.1 to 0.4 s wait and 0.2 to 0.8 s hold instead of the
    /// nemesis's defaults: more steps, for topology changes to pile up.
    pub short_steps: bool,
    /// How a failure report says to replay a seed (`{seed}` stands for
    /// it): [`super::test_replay`] for a test.
    pub replay: String,
}

/// What one schedule did and found.
#[derive(Debug, Clone)]
pub struct ScheduleReport {
    pub seed: u64,
    pub faults: usize,
    pub splits: usize,
    pub moves: usize,
    pub register: Option<register::Summary>,
    pub set: Option<set::Summary>,
    pub bank: Option<bank::Summary>,
    /// Ranges whose replicas were compared and agreed.
    pub ranges_consistent: usize,
    /// The first thing wrong (a checker's violation, a liveness failure,
    /// too little progress), with the seed, the replay command, the faults
    /// and where the whole history was saved.
    pub violation: Option<String>,
    /// The faults as they ran, one line each.
    pub fault_log: String,
}

impl ScheduleReport {
    /// Operations of every workload.
    pub fn operations(&self) -> usize {
        self.counts()
            .iter()
            .map(|c| c.ok + c.fail + c.ambiguous)
            .sum()
    }

    /// Operations whose outcome the client could not know.
    pub fn ambiguous(&self) -> usize {
        self.counts().iter().map(|c| c.ambiguous).sum()
    }

    fn counts(&self) -> Vec<&Counts> {
        let mut counts = Vec::new();
        counts.extend(self.register.as_ref().map(|s| &s.outcomes));
        counts.extend(self.set.as_ref().map(|s| &s.inserts));
        if let Some(bank) = &self.bank {
            counts.push(&bank.transfers);
            counts.push(&bank.reads);
        }
        counts
    }
}

impl fmt::Display for ScheduleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {}: {} faults ({} splits, {} moves), {} ranges consistent",
            self.seed, self.faults, self.splits, self.moves, self.ranges_consistent
        )?;
        if let Some(s) = &self.register {
            write!(f, "; register: {s}")?;
        }
        if let Some(s) = &self.set {
            write!(f, "; set: {s}")?;
        }
        if let Some(s) = &self.bank {
            write!(f, "; bank: {s}")?;
        }
        Ok(())
    }
}

/// What one schedule's workloads saw (empty for a workload not run).
#[derive(Default)]
struct Histories {
    registers: register::RegisterHistory,
    inserts: set::SetHistory,
    transfers: bank::BankHistory,
}

/// Register keys on both ranges of the stage.
const REGISTER_KEYS: [&[u8]; 4] = [b"e/0", b"e/1", b"r/0", b"r/1"];
/// Set prefixes on both ranges.
const SET_PREFIXES: [&[u8]; 2] = [b"f/", b"s/"];
/// Bank accounts on both ranges.
const ACCOUNTS: [&[u8]; 6] = [b"b0", b"b1", b"b2", b"n0", b"n1", b"n2"];
/// How long the cluster has to take writes and come to rest after the
/// faults, and the final reads to answer.
const SETTLE: Duration = Duration::from_secs(30);

impl Campaign {
    /// Runs one schedule of `seed`. An error is a stage that did not start;
    /// everything the cluster did wrong is in the report's `violation`.
    pub async fn run(&self, seed: u64) -> Result<ScheduleReport, String> {
        let topology = self.kinds.iter().any(|k| FaultKind::TOPOLOGY.contains(k));
        let split_keys = if topology {
            self.workloads
                .iter()
                .flat_map(|w| w.split_keys().iter().map(|k| k.to_vec()))
                .collect()
        } else {
            Vec::new()
        };
        let mut stage = Stage::start_with(seed, &self.kinds, self.nodes, split_keys)
            .await
            .map_err(|e| format!("seed {seed}: the cluster did not start: {e}"))?;
        if self.short_steps {
            stage.nemesis = Nemesis::new(NemesisConfig {
                wait: (Duration::from_millis(100), Duration::from_millis(400)),
                hold: (Duration::from_millis(200), Duration::from_millis(800)),
                ..stage.nemesis.config().clone()
            });
        }
        let report = self.run_on(&mut stage, seed).await;
        stage.shutdown().await;
        report
    }

    async fn run_on(&self, stage: &mut Stage, seed: u64) -> Result<ScheduleReport, String> {
        let runs = |w| self.workloads.contains(&w);
        let register_config = register::RegisterConfig {
            keys: REGISTER_KEYS.iter().map(|k| k.to_vec()).collect(),
            clients: 5,
            op_timeout: Duration::from_secs(8),
        };
        let set_config = set::SetConfig {
            prefixes: SET_PREFIXES.iter().map(|k| k.to_vec()).collect(),
            clients: 2,
            op_timeout: Duration::from_secs(8),
        };
        let bank_config = bank::BankConfig {
            accounts: ACCOUNTS.iter().map(|k| k.to_vec()).collect(),
            initial: 100,
            transfer_clients: 4,
            reader_clients: 2,
            txn_timeout: Duration::from_secs(15),
        };
        let clocks = stage.clocks();
        if runs(Workload::Bank) {
            bank::setup(&stage.dist_sender(), &clocks[0], &bank_config)
                .await
                .map_err(|e| format!("seed {seed}: the accounts were not set up: {e}"))?;
        }
        let histories = Histories::default();
        let (registers, inserts, transfers) = (
            &histories.registers,
            &histories.inserts,
            &histories.transfers,
        );
        let origin = registers.start();
        let stop = Stop::new();
        let (ds_registers, ds_inserts, ds_bank) = (
            stage.dist_sender(),
            stage.dist_sender(),
            stage.dist_sender(),
        );
        let workload = async {
            tokio::join!(
                async {
                    if runs(Workload::Register) {
                        let history = registers.clone();
                        register::run(ds_registers, history, seed, stop.clone(), register_config)
                            .await
                    }
                },
                async {
                    if runs(Workload::Set) {
                        let config = set_config.clone();
                        set::run(ds_inserts, inserts.clone(), seed, stop.clone(), config).await
                    }
                },
                async {
                    if runs(Workload::Bank) {
                        let (history, config) = (transfers.clone(), bank_config.clone());
                        bank::run(ds_bank, clocks.clone(), history, seed, stop.clone(), config)
                            .await
                    }
                },
            )
        };
        let (log, _) = stage.run(self.duration, &stop, workload).await;
        let mut report = ScheduleReport {
            seed,
            faults: 0,
            splits: 0,
            moves: 0,
            register: None,
            set: None,
            bank: None,
            ranges_consistent: 0,
            violation: None,
            fault_log: String::new(),
        };
        let log = match log {
            Ok(log) => log,
            Err(e) => {
                report.violation = Some(e);
                return Ok(report);
            }
        };
        report.faults = log.records.len();
        report.splits = log.count(FaultKind::Split);
        report.moves = log.count(FaultKind::Move);
        report.fault_log = log.render(origin);
        let violation =
            |what: &str| Some(failure_report(seed, &self.replay, what, Some(&log), origin));
        if let Err(e) = stage.wait_until_writable(SETTLE).await {
            report.violation = violation(&e);
            return Ok(report);
        }
        match stage.cluster.check_replica_consistency(SETTLE).await {
            Ok(ranges) => report.ranges_consistent = ranges,
            Err(e) => {
                report.violation = violation(&e);
                return Ok(report);
            }
        }
        let checked = self
            .check(stage, &histories, (&set_config, &bank_config), &mut report)
            .await;
        if let Err(e) = checked.and_then(|()| self.check_progress(&report)) {
            report.violation = violation(&e);
        }
        Ok(report)
    }

    /// The workloads' checkers, each filling its summary in `report`.
    async fn check(
        &self,
        stage: &Stage,
        histories: &Histories,
        (set_config, bank_config): (&set::SetConfig, &bank::BankConfig),
        report: &mut ScheduleReport,
    ) -> Result<(), String> {
        let Histories {
            registers,
            inserts,
            transfers,
        } = histories;
        let seed = report.seed;
        let saved_with =
            |what: String, name: &str, text: String| format!("{what}\n{text} ({name})");
        if self.workloads.contains(&Workload::Register) {
            let entries = registers.entries();
            report.register = Some(register::check(&entries).map_err(|v| {
                saved_with(v, "register", history::save("register", seed, &entries))
            })?);
        }
        if self.workloads.contains(&Workload::Set) {
            let present =
                set::read_final(&stage.dist_sender(), &set_config.prefixes, SETTLE).await?;
            let entries = inserts.entries();
            report.set = Some(
                set::check(&entries, &present)
                    .map_err(|v| saved_with(v, "set", history::save("set", seed, &entries)))?,
            );
        }
        if self.workloads.contains(&Workload::Bank) {
            let ds = stage.dist_sender();
            let balances = tokio::time::timeout(
                SETTLE,
                bank::read_all(&ds, &stage.clocks()[0], &bank_config.accounts),
            )
            .await
            .map_err(|_| format!("the final read of the accounts took over {SETTLE:?}"))?
            .map_err(|e| format!("the final read of the accounts failed: {e}"))?;
            let entries = transfers.entries();
            report.bank = Some(
                bank::check(&entries, bank_config, &balances)
                    .map_err(|v| saved_with(v, "bank", history::save("bank", seed, &entries)))?,
            );
        }
        Ok(())
    }

    /// Quorum held throughout, so every workload must have got work done.
    fn check_progress(&self, report: &ScheduleReport) -> Result<(), String> {
        let too_little = report.register.as_ref().is_some_and(|s| s.outcomes.ok < 20)
            || report.set.as_ref().is_some_and(|s| s.inserts.ok < 5)
            || report
                .bank
                .as_ref()
                .is_some_and(|s| s.transfers.ok < 5 || s.reads.ok < 3);
        if too_little {
            return Err(format!("too little progress: {report}"));
        }
        if report.faults == 0 {
            return Err("no fault ran".into());
        }
        Ok(())
    }
}
