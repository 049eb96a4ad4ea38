//! `meridian drill zone|region --target NAME`: the failover drill
//! ([`meridian_workload::drill`]) on a demo cluster started in this
//! process, as `meridian demo` lays it out (`--nodes` nodes over the
//! latency profile's regions, its round trips injected, Raft's WAN
//! timings), in a temporary directory removed at the end; logs go to
//! `demo.log` there (or stderr with `MERIDIAN_LOG`).
//!
//! The failure domain's nodes stop as a crash would (no lease handover)
//! and start again on their stores. Each region's clients connect to a
//! gateway in their region outside the domain. Placement is read from the
//! cluster's own range status, through a node outside the domain.
//!
//! Not here: drills against a cluster of `meridian start` processes (it
//! would need a hook command to stop a locality's nodes), and an SVG
//! timeline; both are listed in docs/reliability.md.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, ValueEnum};
use meridian_server::{LocalCluster, Node};
use meridian_workload::drill::{self, Domain, DrillConfig, DrillTarget};
use meridian_workload::regions::{RangePlacement, RegionsTarget};
use tokio::sync::RwLock;

use crate::bench_regions::{connect_pg, show_ranges, topology, PgConn};
use crate::demo::Layout;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DrillKind {
    /// Stop every node of one zone (the database survives ZONE failure).
    Zone,
    /// Stop every node of one region (the database survives REGION
    /// failure).
    Region,
}

#[derive(Args, Debug)]
pub struct DrillArgs {
    /// What fails.
    #[arg(value_enum)]
    kind: DrillKind,
    /// The zone or region to stop, e.g. `us-east1-b` or `europe-west1`.
    #[arg(long)]
    target: String,
    /// Nodes of the cluster (round-robin over the regions, 3 zones each).
    #[arg(long, default_value_t = 9)]
    nodes: usize,
    /// The latency profile [default: the shipped demo-3-region].
    #[arg(long, value_name = "FILE")]
    latency: Option<PathBuf>,
    /// Seconds of writes before the failure.
    #[arg(long, default_value_t = 5.0)]
    before: f64,
    /// Seconds the failure domain stays down.
    #[arg(long, default_value_t = 15.0)]
    outage: f64,
    /// Seconds to wait, after the restore, for every lease to be home.
    #[arg(long, default_value_t = 60)]
    lease_timeout: u64,
    /// Seconds to wait for placement to converge before the drill.
    #[arg(long, default_value_t = 120)]
    converge_timeout: u64,
    /// Seconds a write may take before it counts as failed.
    #[arg(long, default_value_t = 10)]
    op_timeout: u64,
    /// Rows per region (REGIONAL BY ROW) and per table (the others).
    #[arg(long, default_value_t = 10)]
    rows: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run_drill(args: DrillArgs) -> Result<()> {
    let layout = Layout::build(args.nodes, args.latency.clone(), false)?;
    let domain = match args.kind {
        DrillKind::Zone => Domain::Zone(args.target.clone()),
        DrillKind::Region => Domain::Region(args.target.clone()),
    };
    let in_domain: Vec<usize> = layout
        .localities
        .iter()
        .enumerate()
        .filter(|(_, l)| domain.contains(&l.region, &l.zone))
        .map(|(i, _)| i)
        .collect();
    if in_domain.is_empty() {
        let mut names: Vec<&str> = layout
            .localities
            .iter()
            .map(|l| match args.kind {
                DrillKind::Zone => l.zone.as_str(),
                DrillKind::Region => l.region.as_str(),
            })
            .collect();
        names.sort();
        names.dedup();
        bail!(
            "--target {}: no node is in that {}; the cluster's are {}",
            args.target,
            domain.kind(),
            names.join(", ")
        );
    }
    let regions: Vec<String> = layout
        .profile
        .listed_regions()
        .iter()
        .map(|r| r.to_string())
        .collect();
    let survivors_everywhere = regions.iter().all(|r| {
        layout
            .localities
            .iter()
            .any(|l| &l.region == r && !domain.contains(&l.region, &l.zone))
    });
    if matches!(domain, Domain::Zone(_)) && !survivors_everywhere {
        bail!(
            "--target {}: it holds every node of its region; drill the region instead",
            args.target
        );
    }
    let config = DrillConfig {
        topology: topology(&layout.profile, regions, None),
        domain,
        rows: args.rows,
        before: Duration::from_secs_f64(args.before.max(0.0)),
        outage: Duration::from_secs_f64(args.outage.max(0.0)),
        lease_timeout: Duration::from_secs(args.lease_timeout),
        converge_timeout: Duration::from_secs(args.converge_timeout),
        op_timeout: Duration::from_secs(args.op_timeout.max(1)),
    };
    config.validate().map_err(anyhow::Error::msg)?;

    let (dir, cluster) = layout.start_in_temp_dir("meridian-drill-", None).await?;
    let target = DrillCluster {
        cluster: RwLock::new(cluster),
        domain: config.domain.clone(),
        in_domain,
        failed: AtomicBool::new(false),
    };
    let outcome = drill::run(&target, &config, |step| eprintln!("{step}")).await;
    target.cluster.into_inner().shutdown(Duration::ZERO).await;
    crate::demo::remove_dir(dir.keep()).await?;
    let report = outcome.map_err(anyhow::Error::msg)?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.render_text());
    }
    if !report.passed() {
        bail!("the drill failed: a writer never recovered, or an acknowledged write was lost");
    }
    Ok(())
}

/// The in-process cluster, the failure domain and its nodes' indexes.
struct DrillCluster {
    cluster: RwLock<LocalCluster>,
    domain: Domain,
    in_domain: Vec<usize>,
    /// Whether the domain's nodes are stopped.
    failed: AtomicBool,
}

impl DrillCluster {
    /// A node of `region` (any region: `None`), outside the failure
    /// domain if there is one, else (the lost region's own rows are loaded
    /// before the failure) inside it while it is up.
    fn gateway<'a>(&self, cluster: &'a LocalCluster, region: Option<&str>) -> Option<&'a Node> {
        let in_region = |node: &&Node| region.is_none_or(|r| node.config().locality.region == r);
        let outside = |node: &&Node| {
            let locality = &node.config().locality;
            !self.domain.contains(&locality.region, &locality.zone)
        };
        let nodes = cluster.nodes();
        nodes.iter().filter(in_region).find(outside).or_else(|| {
            let up = !self.failed.load(Ordering::Relaxed);
            nodes.iter().filter(in_region).find(|_| up)
        })
    }
}

impl RegionsTarget for DrillCluster {
    type Conn = PgConn;

    async fn connect(&self, region: &str, database: &str) -> Result<PgConn, String> {
        let url = {
            let cluster = self.cluster.read().await;
            let node = self
                .gateway(&cluster, Some(region))
                .ok_or_else(|| format!("no gateway in {region} while the failure lasts"))?;
            crate::demo::sql_url(node)
        };
        connect_pg(&url, region, database).await
    }

    async fn placement(
        &self,
        conn: &mut PgConn,
        table: &str,
    ) -> Result<Vec<RangePlacement>, String> {
        let cluster = self.cluster.read().await;
        show_ranges(conn, table, self.gateway(&cluster, None)).await
    }
}

impl DrillTarget for DrillCluster {
    async fn fail(&self) -> Result<(), String> {
        let cluster = self.cluster.read().await;
        self.failed.store(true, Ordering::Relaxed);
        for &i in &self.in_domain {
            cluster.stop(i).await;
        }
        Ok(())
    }

    async fn restore(&self) -> Result<(), String> {
        let mut cluster = self.cluster.write().await;
        for &i in &self.in_domain {
            cluster.restart(i).await.map_err(|e| e.to_string())?;
        }
        self.failed.store(false, Ordering::Relaxed);
        Ok(())
    }
}
