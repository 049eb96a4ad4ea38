//! `meridian drill zone|region`: a failover drill with its recovery time
//! (RTO) and data loss (RPO) measured, not promised.
//!
//! This module owns the drill's shape: the database and rows it writes,
//! the writers, the phases, and what is measured. It does not own how SQL
//! reaches the cluster, nor how a failure domain is stopped and brought
//! back: the CLI implements [`DrillTarget`] (stopping the nodes of the
//! demo cluster in its own process).
//!
//! One drill, step by step:
//!
//! 1. A database `drill` (`PRIMARY REGION` the first region, `REGIONS` the
//!    others) surviving the failure drilled (`SURVIVE ZONE FAILURE` for a
//!    zone, `SURVIVE REGION FAILURE` for a region), with the tables and
//!    rows of `bench regions` (REGIONAL BY ROW, REGIONAL BY TABLE IN
//!    PRIMARY REGION, GLOBAL), and placement converged.
//! 2. One writer per (client region, table locality), each on its own
//!    connection to a gateway in its region outside the failure domain,
//!    updating its own row over and over, one statement at a time
//!    (`UPDATE t SET v = 'd<seq>' WHERE id = <its row>`), each with a
//!    timeout. A region drill has no client in the lost region, and adds
//!    writers of the rows homed there. Every write's start, end and
//!    outcome is kept.
//! 3. `before` of healthy writes; then the failure domain's nodes stop
//!    (as a crash: no lease handover); `outage` later they start again;
//!    the writers go on until every lease is back where its locality says
//!    (`lease_return`), or `lease_timeout` passes.
//! 4. Each writer's row is read back and compared with its acknowledged
//!    writes ([`report`]): RTO is the time from the failure to the
//!    acknowledgement of the first write begun after it; a lost write is
//!    an acknowledged write whose value was overwritten by an older one.

pub mod report;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::regions::{self, setup, Locality, RegionsTarget, SqlConn, Survival, Topology};
pub use report::{DrillReport, WriteEvent, WriteOutcome, WriterReport};

/// The database a drill writes.
pub const DATABASE: &str = "drill";

/// How long a writer waits before it connects again after an error.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// How often placement is polled while waiting for it.
const POLL: Duration = Duration::from_millis(500);

/// What fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// Every node of the zone named.
    Zone(String),
    /// Every node of the region named.
    Region(String),
}

impl Domain {
    pub fn kind(&self) -> &'static str {
        match self {
            Domain::Zone(_) => "zone",
            Domain::Region(_) => "region",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Domain::Zone(name) | Domain::Region(name) => name,
        }
    }

    /// The survival goal that must keep the database available through
    /// this failure.
    pub fn survival(&self) -> Survival {
        match self {
            Domain::Zone(_) => Survival::Zone,
            Domain::Region(_) => Survival::Region,
        }
    }

    /// Whether a node of `region` and `zone` is in the domain.
    pub fn contains(&self, region: &str, zone: &str) -> bool {
        match self {
            Domain::Zone(z) => z == zone,
            Domain::Region(r) => r == region,
        }
    }
}

/// The shape of a drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillConfig {
    /// Regions and latency; `topology.regions[0]` is the primary region.
    pub topology: Topology,
    pub domain: Domain,
    /// Rows per region (REGIONAL BY ROW) and per table (the others); at
    /// least one per region.
    pub rows: u64,
    pub before: Duration,
    pub outage: Duration,
    pub lease_timeout: Duration,
    pub converge_timeout: Duration,
    /// A write not answered within this counts as failed (its outcome
    /// unknown) and its writer connects again.
    pub op_timeout: Duration,
}

impl DrillConfig {
    /// Why the drill cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        let regions = &self.topology.regions;
        if let Domain::Region(r) = &self.domain {
            if regions.len() < 3 {
                return Err(format!(
                    "a region drill needs at least 3 regions (SURVIVE REGION FAILURE); the topology has {}",
                    regions.len()
                ));
            }
            if !regions.contains(r) {
                return Err(format!(
                    "region {r:?} is not one of the regions ({})",
                    regions.join(", ")
                ));
            }
        }
        if self.rows < regions.len() as u64 {
            return Err(format!(
                "--rows must be at least the number of regions ({})",
                regions.len()
            ));
        }
        if self.outage.is_zero() {
            return Err("the outage must last longer than zero".into());
        }
        Ok(())
    }

    /// The writers: (client region, locality), in report order.
    pub fn writers(&self) -> Vec<(String, Locality)> {
        let lost_region = match &self.domain {
            Domain::Region(r) => Some(r.clone()),
            Domain::Zone(_) => None,
        };
        let mut writers = Vec::new();
        for client in &self.topology.regions {
            if lost_region.as_ref() == Some(client) {
                continue;
            }
            let mut localities = vec![Locality::RbrHome];
            localities.extend(lost_region.clone().map(Locality::RbrRemote));
            localities.extend([Locality::Rbt, Locality::Global]);
            for locality in localities {
                writers.push((client.clone(), locality));
            }
        }
        writers
    }

    /// The row writer `(client, locality)` updates: its own, so its
    /// writes are the only ones on it.
    pub fn row(&self, client: &str, locality: &Locality) -> u64 {
        let index = self
            .topology
            .regions
            .iter()
            .position(|r| r == client)
            .unwrap_or(0) as u64;
        match locality {
            Locality::RbrHome => index * setup::ID_STRIDE,
            // Rows of the lost region: one per client region.
            Locality::RbrRemote(home) => {
                setup::rbr_ids(&self.topology, home, self.rows)[index as usize]
            }
            Locality::Rbt | Locality::Global => index,
        }
    }
}

/// A cluster the drill can break: a gateway per region outside the
/// failure domain, and the failure itself.
pub trait DrillTarget: RegionsTarget {
    /// Stops every node of the failure domain, as a crash would.
    fn fail(&self) -> impl Future<Output = Result<(), String>>;
    /// Starts them again.
    fn restore(&self) -> impl Future<Output = Result<(), String>>;
}

/// Runs the drill; `progress` hears each step.
pub async fn run<T: DrillTarget>(
    target: &T,
    config: &DrillConfig,
    mut progress: impl FnMut(String),
) -> Result<DrillReport, String> {
    config.validate()?;
    let topology = &config.topology;
    let survival = config.domain.survival();
    progress(format!(
        "creating {DATABASE} (SURVIVE {} FAILURE)",
        survival.name().to_uppercase()
    ));
    let mut admin = target.connect(topology.primary(), "defaultdb").await?;
    for sql in setup::database_statements(topology, survival, DATABASE) {
        admin.query(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    regions::driver::load(target, topology, DATABASE, config.rows, &mut |step| {
        progress(step)
    })
    .await?;
    let started = Instant::now();
    let converged = converged_within(target, topology, survival, config.converge_timeout).await;
    progress(match &converged {
        Ok(()) => format!(
            "placement converged in {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(problems) => format!(
            "placement did NOT converge within {:?} ({}); drilling anyway",
            config.converge_timeout,
            some_of(problems)
        ),
    });
    let converged = converged.is_ok();

    let writers = config.writers();
    let mut conns = Vec::with_capacity(writers.len());
    for (client, _) in &writers {
        conns.push(target.connect(client, DATABASE).await?);
    }
    let stop = AtomicBool::new(false);
    let epoch = Instant::now();
    let writing = join_all(writers.iter().zip(conns).map(|((client, locality), conn)| {
        let row = config.row(client, locality);
        write_until(target, conn, client, locality, row, config, epoch, &stop)
    }));
    let drilling = async {
        let outcome = phases(target, config, epoch, &mut progress).await;
        stop.store(true, Ordering::Relaxed);
        outcome
    };
    let (events, phases) = tokio::join!(writing, drilling);
    let phases = phases?;

    progress("reading every writer's row back".into());
    let mut check = target.connect(topology.primary(), DATABASE).await?;
    let mut reports = Vec::with_capacity(writers.len());
    for ((client, locality), events) in writers.into_iter().zip(events) {
        let row = config.row(&client, &locality);
        let sql = format!("SELECT v FROM {} WHERE id = {row}", locality.table());
        let rows = check.query(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
        let value = rows.first().and_then(|r| r.first().cloned().flatten());
        reports.push(WriterReport::new(
            client,
            locality,
            row,
            &events,
            phases.failed_at,
            value.as_deref(),
        ));
    }
    Ok(DrillReport {
        domain: config.domain.clone(),
        survival,
        converged,
        failed_at: phases.failed_at,
        restored_at: phases.restored_at,
        lease_return: phases.lease_return,
        writers: reports,
    })
}

/// When the drill's phases happened, from the writers' start.
struct Phases {
    failed_at: Duration,
    restored_at: Duration,
    /// From the restore until every lease was home; `None`: not within
    /// the timeout.
    lease_return: Option<Duration>,
}

async fn phases<T: DrillTarget>(
    target: &T,
    config: &DrillConfig,
    epoch: Instant,
    progress: &mut impl FnMut(String),
) -> Result<Phases, String> {
    progress(format!(
        "writing for {:?} before the failure",
        config.before
    ));
    tokio::time::sleep(config.before).await;
    progress(format!(
        "stopping {} {}",
        config.domain.kind(),
        config.domain.name()
    ));
    let failed_at = epoch.elapsed();
    target.fail().await?;
    tokio::time::sleep(config.outage.saturating_sub(epoch.elapsed() - failed_at)).await;
    progress(format!(
        "starting {} {} again",
        config.domain.kind(),
        config.domain.name()
    ));
    let restoring = epoch.elapsed();
    target.restore().await?;
    let restored_at = restoring;
    progress("waiting for every lease to return home".into());
    let survival = config.domain.survival();
    let home = converged_within(target, &config.topology, survival, config.lease_timeout).await;
    if let Err(problems) = &home {
        progress(format!(
            "placement was not back within {:?}: {}",
            config.lease_timeout,
            some_of(problems)
        ));
    }
    let lease_return = home.ok().map(|()| epoch.elapsed() - restored_at);
    Ok(Phases {
        failed_at,
        restored_at,
        lease_return,
    })
}

/// Polls placement until every table of the drill's database conforms
/// (`Ok(())`) or `timeout` passes (`Err` with what was still wrong).
async fn converged_within<T: RegionsTarget>(
    target: &T,
    topology: &Topology,
    survival: Survival,
    timeout: Duration,
) -> Result<(), Vec<String>> {
    let started = Instant::now();
    let mut conn = None;
    loop {
        let mut problems = Vec::new();
        if conn.is_none() {
            match target.connect(topology.primary(), DATABASE).await {
                Ok(c) => conn = Some(c),
                Err(e) => problems.push(e),
            }
        }
        if let Some(c) = conn.as_mut() {
            match regions::driver::placement_problems(target, c, topology, survival).await {
                Ok(found) => problems = found,
                Err(e) => {
                    // Its gateway may be down: connect again next time.
                    problems.push(e);
                    conn = None;
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(problems);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The first few of `problems`, for a progress line.
fn some_of(problems: &[String]) -> String {
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    format!("{} problems, e.g. {}", problems.len(), shown.join("; "))
}

/// One writer: updates `row` until `stop`, one statement at a time,
/// connecting again after an error. Its events, in order.
#[allow(clippy::too_many_arguments)]
async fn write_until<T: RegionsTarget>(
    target: &T,
    conn: T::Conn,
    client: &str,
    locality: &Locality,
    row: u64,
    config: &DrillConfig,
    epoch: Instant,
    stop: &AtomicBool,
) -> Vec<WriteEvent> {
    let mut conn = Some(conn);
    let mut events = Vec::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            tokio::time::sleep(RECONNECT_PAUSE).await;
            conn = target.connect(client, DATABASE).await.ok();
            continue;
        };
        seq += 1;
        let sql = format!(
            "UPDATE {} SET v = 'd{seq}' WHERE id = {row}",
            locality.table()
        );
        let started = epoch.elapsed();
        let outcome = match tokio::time::timeout(config.op_timeout, c.query(&sql)).await {
            Ok(Ok(_)) => WriteOutcome::Acknowledged,
            Ok(Err(e)) => WriteOutcome::Failed(e),
            Err(_) => WriteOutcome::Failed(format!("no answer within {:?}", config.op_timeout)),
        };
        if !matches!(outcome, WriteOutcome::Acknowledged) {
            conn = None;
        }
        events.push(WriteEvent {
            seq,
            started,
            ended: epoch.elapsed(),
            outcome,
        });
    }
    events
}
