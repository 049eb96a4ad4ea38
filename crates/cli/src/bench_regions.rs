//! `meridian bench regions`: the region latency benchmark
//! ([`meridian_workload::regions`]) against a cluster with a gateway in
//! each region.
//!
//! 1. Without `--url`, a demo cluster starts in this process, as `meridian
//!    demo` lays it out ([`crate::demo::Layout`]: `--nodes` nodes over the
//!    profile's regions, the profile's round trips injected, Raft's WAN
//!    timings) in a temporary directory removed at the end; each region's
//!    gateway is its first node; logs go to `demo.log` there (or stderr
//!    with `MERIDIAN_LOG`). With `--url REGION=URL` (one per region,
//!    the first is the primary region), that cluster is used instead.
//! 2. The floors come from the latency profile (`--latency`, else the
//!    shipped demo-3-region) and `--max-offset-ms`.
//! 3. Placement is read with `SHOW RANGES FROM TABLE`; in-process, each
//!    range's voters, non-voters and leaseholder come from the cluster's
//!    own range status instead, because `SHOW RANGES` answers from the
//!    gateway's range cache, which can be stale.
//! 4. A progress line on stderr while it runs (redrawn in place on a
//!    terminal); the matrix (or `--json`) on stdout; `--svg FILE` writes
//!    the chart.
//!
//! Not here: the cells, floors and report forms (the workload crate).

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use meridian_server::LocalCluster;
use meridian_transport::LatencyMatrix;
use meridian_workload::regions::{
    self, report, svg, CellLength, Progress, RangePlacement, RegionsConfig, RegionsTarget, Rows,
    SqlConn, Survival, Topology,
};
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::demo::Layout;

#[derive(Args, Debug)]
pub struct RegionsArgs {
    /// A gateway per region, `REGION=postgres://...` (repeat; the first is
    /// the primary region). Without it, a demo cluster is started in this
    /// process.
    #[arg(long, value_name = "REGION=URL")]
    url: Vec<String>,
    /// Nodes of the in-process cluster (round-robin over the regions).
    #[arg(long, default_value_t = 9)]
    nodes: usize,
    /// The latency profile: injected into the in-process cluster, and the
    /// floors' round trips [default: the shipped demo-3-region].
    #[arg(long, value_name = "FILE")]
    latency: Option<PathBuf>,
    /// Regions with a client [default: every region].
    #[arg(long, value_delimiter = ',')]
    client_regions: Vec<String>,
    /// Survival goals to measure: zone, region [default: both].
    #[arg(long, value_delimiter = ',')]
    survival: Vec<String>,
    /// Seconds of ops per cell.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Ops per cell instead of --duration.
    #[arg(long)]
    ops: Option<u64>,
    /// Rows per region (REGIONAL BY ROW) and per table (the others).
    #[arg(long, default_value_t = 10)]
    rows: u64,
    /// Seconds to wait for placement to converge before measuring anyway.
    #[arg(long, default_value_t = 120)]
    converge_timeout: u64,
    /// The clock offset bound in GLOBAL writes' floor, and, for the
    /// cluster it starts itself, the nodes' maximum clock offset [default:
    /// the nodes' default, 500].
    #[arg(long)]
    max_offset_ms: Option<f64>,
    /// Print one JSON object per cell (an array) instead of the matrix.
    #[arg(long)]
    json: bool,
    /// Write the chart (bars per cell, the floor marked) to this file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
}

pub async fn run_regions(args: RegionsArgs) -> Result<()> {
    let profile = match &args.latency {
        Some(path) => LatencyMatrix::from_file(path)
            .with_context(|| format!("--latency {}", path.display()))?,
        None => LatencyMatrix::demo_3_region(),
    };
    let urls = parse_urls(&args.url)?;
    let regions: Vec<String> = match urls.is_empty() {
        true => profile
            .listed_regions()
            .iter()
            .map(|r| r.to_string())
            .collect(),
        false => urls.iter().map(|(r, _)| r.clone()).collect(),
    };
    let config = config(&args, &profile, regions)?;
    config.validate().map_err(|e| anyhow!("{e}"))?;
    if !urls.is_empty() {
        let target = PgTarget {
            urls: urls.into_iter().collect(),
            cluster: None,
        };
        return drive(&target, &config, &args).await;
    }

    let layout = Layout::build(args.nodes, args.latency.clone(), false)?;
    let max_offset = Duration::from_secs_f64(config.topology.max_offset_ms / 1000.0);
    let (dir, cluster) = layout
        .start_in_temp_dir("meridian-bench-regions-", Some(max_offset))
        .await?;
    let mut gateways = BTreeMap::new();
    for node in cluster.nodes() {
        let region = node.config().locality.region.clone();
        gateways
            .entry(region)
            .or_insert_with(|| crate::demo::sql_url(node));
    }
    let target = PgTarget {
        urls: gateways,
        cluster: Some(&cluster),
    };
    let outcome = drive(&target, &config, &args).await;
    cluster.shutdown(Duration::ZERO).await;
    crate::demo::remove_dir(dir.keep()).await?;
    outcome
}

/// `REGION=URL` pairs, in order.
fn parse_urls(urls: &[String]) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for u in urls {
        let Some((region, url)) = u.split_once('=') else {
            bail!("--url {u}: expected REGION=postgres://...");
        };
        if out.iter().any(|(r, _)| r == region) {
            bail!("--url: region {region} given twice");
        }
        Config::from_str(url).with_context(|| format!("--url {u}"))?;
        out.push((region.to_string(), url.to_string()));
    }
    Ok(out)
}

/// The topology of `regions` (the primary first) as `profile` gives
/// its round trips, with clock offset bound `max_offset_ms`.
pub(crate) fn topology(
    profile: &LatencyMatrix,
    regions: Vec<String>,
    max_offset_ms: Option<f64>,
) -> Topology {
    let mut rtt_ms = BTreeMap::new();
    for (i, a) in regions.iter().enumerate() {
        for b in &regions[i + 1..] {
            if let Some(rtt) = profile.round_trip(a, b) {
                rtt_ms.insert((a.clone(), b.clone()), rtt.as_secs_f64() * 1000.0);
            }
        }
    }
    let intra = profile
        .round_trip(&regions[0], &regions[0])
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0;
    Topology {
        regions,
        intra_region_rtt_ms: intra,
        rtt_ms,
        max_offset_ms: max_offset_ms
            .unwrap_or(meridian_hlc::DEFAULT_MAX_OFFSET.as_secs_f64() * 1000.0),
    }
}

fn config(
    args: &RegionsArgs,
    profile: &LatencyMatrix,
    regions: Vec<String>,
) -> Result<RegionsConfig> {
    let survivals = match args.survival.is_empty() {
        true => Survival::ALL.to_vec(),
        false => args
            .survival
            .iter()
            .map(|s| Survival::parse(s).ok_or_else(|| anyhow!("--survival {s}: zone or region")))
            .collect::<Result<_>>()?,
    };
    let length = match args.ops {
        Some(n) => CellLength::Ops(n),
        None if args.duration > 0.0 => CellLength::Duration(Duration::from_secs_f64(args.duration)),
        None => bail!("--duration must be positive"),
    };
    if args
        .max_offset_ms
        .is_some_and(|ms| !(1.0..=60_000.0).contains(&ms))
    {
        bail!("--max-offset-ms must be between 1 and 60000");
    }
    Ok(RegionsConfig {
        client_regions: match args.client_regions.is_empty() {
            true => regions.clone(),
            false => args.client_regions.clone(),
        },
        topology: topology(profile, regions, args.max_offset_ms),
        survivals,
        length,
        rows: args.rows,
        converge_timeout: Duration::from_secs(args.converge_timeout),
    })
}

async fn drive(target: &PgTarget<'_>, config: &RegionsConfig, args: &RegionsArgs) -> Result<()> {
    let mut line = ProgressLine::new();
    let results = regions::run(target, config, |p| line.show(p))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    line.finish();
    if args.json {
        println!("{}", report::to_json(&results));
    } else {
        print!("{}", report::render_text(&results));
    }
    if let Some(path) = &args.svg {
        let title = format!(
            "meridian bench regions: p50 per cell against its floor ({})",
            config.topology.regions.join(", ")
        );
        std::fs::write(path, svg::render(&results, &title))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The progress line on stderr: redrawn in place on a terminal, else one
/// line per step and per cell.
struct ProgressLine {
    terminal: bool,
    drawn: Option<Instant>,
    cell: Option<usize>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            drawn: None,
            cell: None,
        }
    }

    fn show(&mut self, progress: Progress) {
        let mut err = std::io::stderr();
        match progress {
            Progress::Step(step) => {
                if self.terminal && self.drawn.is_some() {
                    let _ = write!(err, "\r\x1b[2K");
                }
                let _ = writeln!(err, "{step}");
                self.drawn = None;
            }
            Progress::Measuring {
                index,
                total,
                cell,
                ops,
                last_ms,
            } => {
                let text = format!(
                    "[{}/{}] {} {} {} ({}): {ops} ops, last {last_ms:.1} ms",
                    index + 1,
                    total,
                    cell.client_region,
                    cell.locality.label(),
                    cell.op.name(),
                    cell.survival.name()
                );
                if self.terminal {
                    if self
                        .drawn
                        .is_none_or(|t| t.elapsed() > Duration::from_millis(100))
                    {
                        let _ = write!(err, "\r\x1b[2K{text}");
                        self.drawn = Some(Instant::now());
                    }
                } else if self.cell != Some(index) {
                    let _ = writeln!(err, "{text}");
                }
                self.cell = Some(index);
            }
        }
    }

    fn finish(&mut self) {
        if self.terminal && self.drawn.is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Gateways by region, and the in-process cluster when there is one.
struct PgTarget<'a> {
    urls: BTreeMap<String, String>,
    cluster: Option<&'a LocalCluster>,
}

pub(crate) struct PgConn(Client);

/// A connection to the gateway at `url` (in `region`, for messages), on
/// `database`.
pub(crate) async fn connect_pg(url: &str, region: &str, database: &str) -> Result<PgConn, String> {
    let mut config = Config::from_str(url).map_err(|e| e.to_string())?;
    config.dbname(database);
    config.connect_timeout(Duration::from_secs(10));
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| format!("connecting to {region} ({url}): {e}"))?;
    tokio::spawn(connection);
    Ok(PgConn(client))
}

/// The ranges of `table` by `SHOW RANGES` through `conn`; with `status`
/// (a node of the in-process cluster), each range's voters, non-voters
/// and leaseholder from the cluster's own range status instead, because
/// `SHOW RANGES` answers from the gateway's range cache, which can be
/// stale.
pub(crate) async fn show_ranges(
    conn: &mut PgConn,
    table: &str,
    status: Option<&meridian_server::Node>,
) -> Result<Vec<RangePlacement>, String> {
    let rows = conn
        .query(&format!("SHOW RANGES FROM TABLE {table}"))
        .await?;
    let cell =
        |row: &Vec<Option<String>>, i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let mut ranges: Vec<RangePlacement> = rows
        .iter()
        .map(|row| RangePlacement {
            range_id: cell(row, 0).parse().unwrap_or(0),
            start_key: cell(row, 1),
            replicas: cell(row, 5)
                .trim_matches(|c| c == '{' || c == '}')
                .split("\",\"")
                .filter_map(region_of)
                .collect(),
            voters: None,
            leaseholder: region_of(&cell(row, 6)),
        })
        .collect();
    let Some(node) = status else {
        return Ok(ranges);
    };
    let status = node.cluster_status().await.map_err(|e| e.to_string())?;
    let region = |id| {
        status
            .nodes
            .iter()
            .find(|n| n.node_id == id)
            .map(|n| n.locality.region.clone())
            .unwrap_or_default()
    };
    for range in &mut ranges {
        let Some(s) = status.ranges.iter().find(|s| s.range_id == range.range_id) else {
            range.replicas.clear();
            continue;
        };
        let voters: Vec<String> = s.voters.iter().map(|n| region(*n)).collect();
        range.replicas = voters.clone();
        range
            .replicas
            .extend(s.non_voters.iter().map(|n| region(*n)));
        range.voters = Some(voters);
        range.leaseholder = s.leaseholder.map(region);
    }
    Ok(ranges)
}

impl SqlConn for PgConn {
    async fn query(&mut self, sql: &str) -> Result<Rows, String> {
        let messages = self
            .0
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => format!("{} ({})", db.message(), db.code().code()),
                None => e.to_string(),
            })?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }
}

/// The region in a locality's text (`region=us-east1,zone=us-east1-a`).
fn region_of(locality: &str) -> Option<String> {
    locality
        .trim_matches('"')
        .split(',')
        .find_map(|kv| kv.strip_prefix("region="))
        .map(str::to_string)
}

impl RegionsTarget for PgTarget<'_> {
    type Conn = PgConn;

    async fn connect(&self, region: &str, database: &str) -> Result<PgConn, String> {
        let url = self
            .urls
            .get(region)
            .ok_or_else(|| format!("no gateway in region {region}"))?;
        connect_pg(url, region, database).await
    }

    async fn placement(
        &self,
        conn: &mut PgConn,
        table: &str,
    ) -> Result<Vec<RangePlacement>, String> {
        show_ranges(conn, table, self.cluster.map(|c| c.node(0))).await
    }
}
