//! `meridian demo`: a multi-region cluster in this process and a SQL shell
//! on it.
//!
//! 1. The regions come from a latency profile (the shipped
//!    `demo-3-region`: us-east1, us-west1, europe-west1, or `--latency
//!    FILE`), in the order it names them; node `i` (0-based) goes to region
//!    `i mod R`, zone `<region>-a`, `-b` or `-c` (`(i / R) mod 3`).
//! 2. The nodes are whole `meridian_server::Node`s
//!    ([`meridian_server::LocalCluster`]) with their stores and a throwaway
//!    CA in a temporary directory, all sharing one `NetworkModel` that
//!    injects the profile's round trips (`--no-latency`: none) and, with
//!    latency, Raft's WAN timings.
//! 3. Once every node is a member, the sample database `movr` is created
//!    and loaded from a gateway in each region ([`movr`]; not with
//!    `--empty`).
//! 4. A banner: one line per node (id, region, zone, SQL URL), a URL per
//!    region on `movr`, statements to try; then the SQL shell of `meridian
//!    sql` on the first node (us-east1), on `movr`: interactive on a
//!    terminal, else `-e`/`-f`/standard input. With `--no-shell`, no shell:
//!    the cluster serves until SIGINT, SIGTERM or SIGHUP (for scripts).
//! 5. When the shell ends (`\q`, Ctrl-D, the end of a script, an error),
//!    on SIGTERM or SIGHUP, and on Ctrl-C outside the interactive shell
//!    (where Ctrl-C cancels a statement): every node stops at once,
//!    without handing leases over, and the directory is removed. After a
//!    signal the process exits with 128 + its number (0 with
//!    `--no-shell`, where a signal is the way to stop).
//!
//! Logs go to `demo.log` in that directory (removed with it), so they do
//! not interleave with the shell; `MERIDIAN_LOG` sends them to stderr
//! instead.
//!
//! Not here: the sample database's schema and rows ([`movr`]), `--global`
//! (CockroachDB's flag; our demo always has the regions and latency).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use meridian_server::config::RaftTimeouts;
use meridian_server::{LocalCluster, Node};
use meridian_transport::{LatencyMatrix, Locality, NetworkModel};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinHandle;

use crate::sql_shell::{self, ConnFlags, ScriptArgs, Target};

pub mod movr;

/// How long the nodes may take to become members.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(60);

/// `meridian demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Nodes to start, spread over the profile's regions round-robin
    /// (zones <region>-a, -b, -c).
    #[arg(long, default_value_t = 9)]
    pub nodes: usize,
    /// A latency profile (TOML, the format of the shipped
    /// profiles/demo-3-region.toml) instead of the demo's; its regions, in
    /// the order it names them, are the cluster's.
    #[arg(long, value_name = "FILE")]
    pub latency: Option<PathBuf>,
    /// Inject no latency (the nodes keep the profile's regions).
    #[arg(long)]
    pub no_latency: bool,
    /// No SQL shell: keep the cluster running until SIGINT, SIGTERM or
    /// SIGHUP (for scripts; connect with the URLs of the banner).
    #[arg(long, conflicts_with_all = ["execute", "file"])]
    pub no_shell: bool,
    /// The first node's (us-east1's) SQL address [default: a free port].
    #[arg(long, value_name = "ADDR")]
    pub sql_listen: Option<std::net::SocketAddr>,
    /// Skip the sample database `movr`.
    #[arg(long)]
    pub empty: bool,
    /// The nodes' maximum clock offset in milliseconds [default: 500]. The
    /// demo's nodes share one clock, so a smaller bound is safe here; it
    /// shortens the wait of every write to a GLOBAL table (its lead is
    /// this plus half the farthest round trip plus 220 ms).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_offset_ms: Option<u64>,
    #[command(flatten)]
    pub script: ScriptArgs,
}

impl DemoArgs {
    /// Whether the demo prints its banner for a person (stdout) or keeps
    /// stdout for a script's results (banner on stderr).
    fn interactive(&self) -> bool {
        !self.no_shell && self.script.is_interactive()
    }

    /// The database of the shell and of the banner's URLs.
    fn database(&self) -> &'static str {
        if self.empty {
            "defaultdb"
        } else {
            movr::DATABASE
        }
    }
}

/// The plan of a demo cluster: where each node goes and the latency.
#[derive(Debug)]
pub struct Layout {
    pub profile: LatencyMatrix,
    pub localities: Vec<Locality>,
    pub network: Option<NetworkModel>,
}

impl Layout {
    pub fn new(args: &DemoArgs) -> Result<Layout> {
        Self::build(args.nodes, args.latency.clone(), args.no_latency)
    }

    /// `nodes` nodes over the regions of the profile at `latency` (else
    /// the shipped demo-3-region), with its latency unless `no_latency`.
    pub fn build(nodes: usize, latency: Option<PathBuf>, no_latency: bool) -> Result<Layout> {
        if nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        let profile = match &latency {
            Some(path) => LatencyMatrix::from_file(path)
                .with_context(|| format!("--latency {}", path.display()))?,
            None => LatencyMatrix::demo_3_region(),
        };
        let regions = profile.listed_regions();
        if regions.is_empty() {
            bail!(
                "the latency profile {:?} names no region: it needs [[links]] between regions",
                profile.name()
            );
        }
        let localities = (0..nodes)
            .map(|i| {
                let region = regions[i % regions.len()];
                let zone = (b'a' + ((i / regions.len()) % 3) as u8) as char;
                Locality::new(region, format!("{region}-{zone}"))
            })
            .collect();
        let network = (!no_latency).then(|| NetworkModel::with_latency(profile.clone()));
        Ok(Layout {
            profile,
            localities,
            network,
        })
    }
}

impl Layout {
    /// For the commands that run against a cluster of their own (`bench
    /// regions`, `drill`): a temporary directory named after `prefix`
    /// with the logs in it (see [`init_logging`]), and the layout's nodes
    /// started there with Raft's WAN timings and, if given, `max_offset`.
    /// The caller shuts the cluster down and removes the directory.
    pub async fn start_in_temp_dir(
        &self,
        prefix: &str,
        max_offset: Option<Duration>,
    ) -> Result<(tempfile::TempDir, LocalCluster)> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("creating a temporary directory")?;
        init_logging(dir.path())?;
        let regions: Vec<&str> = self.profile.listed_regions();
        eprintln!(
            "starting {} nodes in {} in this process",
            self.localities.len(),
            regions.join(", ")
        );
        let network = self.network.clone();
        let cluster = LocalCluster::start(
            dir.path(),
            &self.localities,
            |_, node| {
                node.network = network.clone();
                node.raft = RaftTimeouts::WAN;
                if let Some(max_offset) = max_offset {
                    node.max_offset = max_offset;
                }
            },
            Duration::from_secs(60),
        )
        .await
        .context("starting the cluster")?;
        Ok((dir, cluster))
    }
}

/// The logs of a demo: a file in its directory unless `MERIDIAN_LOG` is
/// set (then stderr, as every command).
pub fn init_logging(dir: &Path) -> Result<()> {
    init_logging_to(&dir.join("demo.log"))
}

/// Logs warnings (and openraft's errors) to the file at `path`, or to
/// stderr under the filter `MERIDIAN_LOG` names if it is set.
pub fn init_logging_to(path: &Path) -> Result<()> {
    let filter = match tracing_subscriber::EnvFilter::try_from_env("MERIDIAN_LOG") {
        Ok(filter) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
            return Ok(());
        }
        Err(_) => tracing_subscriber::EnvFilter::new("warn,openraft=error"),
    };
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Arc::new(file))
        .try_init();
    Ok(())
}

pub async fn run(args: DemoArgs) -> Result<()> {
    let layout = Layout::new(&args)?;
    let dir = tempfile::Builder::new()
        .prefix("meridian-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    init_logging(dir.path())?;
    let mut signals = Signals::install()?;
    let interactive = args.interactive();

    let latency = layout.network.is_some();
    let network = layout.network.clone();
    let sql_listen = args.sql_listen;
    let max_offset = args.max_offset_ms.map(Duration::from_millis);
    let mut database = args.database();
    let starting = async {
        let cluster = LocalCluster::start(
            dir.path(),
            &layout.localities,
            |i, config| {
                config.network = network.clone();
                if latency {
                    config.raft = RaftTimeouts::WAN;
                }
                if i == 0 && sql_listen.is_some() {
                    config.sql_listen = sql_listen;
                }
                if let Some(offset) = max_offset {
                    config.max_offset = offset;
                }
            },
            MEMBER_TIMEOUT,
        )
        .await
        .context("starting the demo cluster")?;
        if !args.empty {
            let started = std::time::Instant::now();
            eprintln!("# Loading the sample database {}...", movr::DATABASE);
            let gateways: Vec<(String, String)> = gateways(&cluster, "defaultdb");
            match movr::load(&gateways, with_database).await {
                Ok(()) => eprintln!(
                    "# Loaded {} in {:.1} s.",
                    movr::DATABASE,
                    started.elapsed().as_secs_f64()
                ),
                // Too few nodes for its zone configs (it needs 5 with the
                // demo's regions): the demo goes on without it.
                Err(e) => {
                    eprintln!("# No sample database: {e:#}");
                    return anyhow::Ok((cluster, "defaultdb"));
                }
            }
        }
        anyhow::Ok((cluster, database))
    };
    let cluster = tokio::select! {
        started = starting => {
            let (cluster, loaded) = started?;
            database = loaded;
            cluster
        }
        _ = tokio::signal::ctrl_c() => bail!("interrupted while the cluster was starting"),
        _ = signals.recv() => bail!("stopped by a signal while the cluster was starting"),
    };

    let banner = banner(&layout, &cluster, dir.path(), latency, database);
    if interactive {
        print!("{banner}");
    } else {
        eprint!("{banner}");
    }

    let ending = if args.no_shell {
        eprintln!("# No shell (--no-shell): the cluster runs until SIGINT or SIGTERM.");
        let _ = std::io::Write::flush(&mut std::io::stderr());
        let never = tokio::spawn(std::future::pending::<Result<()>>());
        match until_signal(never, &mut signals, true).await {
            Ending::Signal(_) => Ending::Shell(Ok(())),
            shell => shell,
        }
    } else {
        let target = Target::from_flags(&ConnFlags {
            url: Some(sql_url_on(cluster.node(0), database)),
            ..ConnFlags::default()
        })?;
        // The shell runs as a task of its own: it blocks its thread on the
        // terminal or on standard input, and signals must still be heard.
        let script = args.script;
        let shell = tokio::spawn(async move { sql_shell::run_on(target, &script).await });
        // In the interactive shell Ctrl-C cancels the running statement.
        until_signal(shell, &mut signals, !interactive).await
    };

    let stopping = std::time::Instant::now();
    cluster.shutdown(Duration::ZERO).await;
    let path = dir.path().display().to_string();
    remove_dir(dir.keep()).await?;
    if interactive {
        eprintln!(
            "demo cluster stopped in {:.1} s; {path} removed",
            stopping.elapsed().as_secs_f64()
        );
    }
    match ending {
        Ending::Shell(outcome) => outcome,
        // The shell's thread may be blocked reading input: leave without
        // waiting for it.
        Ending::Signal(status) => std::process::exit(status),
    }
}

/// Removes the demo's directory. RocksDB closes a store when the last
/// handle on it goes, which can be a moment after its node stopped, and
/// may write a file meanwhile: a removal that meets one tries again.
pub(crate) async fn remove_dir(path: PathBuf) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::remove_dir_all(&path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if tokio::time::Instant::now() > deadline => {
                return Err(e)
                    .with_context(|| format!("removing the demo directory {}", path.display()))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// How a demo ends.
enum Ending {
    /// The shell returned (`\q`, Ctrl-D, the end of a script, an error).
    Shell(Result<()>),
    /// A signal; the process exits with this status.
    Signal(i32),
}

/// SIGTERM and SIGHUP, which end a demo at any time.
struct Signals {
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("installing a SIGTERM handler")?,
            hangup: signal(SignalKind::hangup()).context("installing a SIGHUP handler")?,
        })
    }

    /// The exit status of the first of them to come.
    async fn recv(&mut self) -> i32 {
        tokio::select! {
            _ = self.terminate.recv() => 128 + 15,
            _ = self.hangup.recv() => 128 + 1,
        }
    }
}

/// Waits for `shell` to end, or for SIGTERM, SIGHUP or (with `ctrl_c`)
/// SIGINT.
async fn until_signal(
    shell: JoinHandle<Result<()>>,
    signals: &mut Signals,
    ctrl_c: bool,
) -> Ending {
    let interrupt = async {
        if ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        joined = shell => Ending::Shell(match joined {
            Ok(outcome) => outcome,
            Err(e) => Err(anyhow!("the SQL shell failed: {e}")),
        }),
        _ = interrupt => {
            eprintln!("interrupted; stopping the demo cluster");
            Ending::Signal(128 + 2)
        }
        status = signals.recv() => {
            eprintln!("stopping the demo cluster");
            Ending::Signal(status)
        }
    }
}

/// The URL a PostgreSQL client uses for `node`, on `defaultdb`.
pub fn sql_url(node: &Node) -> String {
    sql_url_on(node, "defaultdb")
}

/// The URL a PostgreSQL client uses for `node`, on `database`.
pub fn sql_url_on(node: &Node, database: &str) -> String {
    format!(
        "postgres://root@{}:{}/{database}?sslmode=disable",
        node.sql_addr().ip(),
        node.sql_addr().port()
    )
}

/// A URL of [`sql_url_on`]'s form on another database.
fn with_database(url: &str, database: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, tail)) => {
            let query = tail.split_once('?').map(|(_, q)| q).unwrap_or_default();
            format!("{head}/{database}?{query}")
        }
        None => url.to_string(),
    }
}

/// The first node of each region, in the order of the regions' first
/// nodes (the profile's order), with its URL on `database`.
fn gateways(cluster: &LocalCluster, database: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for node in cluster.nodes() {
        let region = &node.config().locality.region;
        if !out.iter().any(|(r, _)| r == region) {
            out.push((region.clone(), sql_url_on(node, database)));
        }
    }
    out
}

fn banner(
    layout: &Layout,
    cluster: &LocalCluster,
    dir: &Path,
    latency: bool,
    database: &str,
) -> String {
    let regions = layout.profile.listed_regions();
    let mut out = format!(
        "# Meridian demo: {} nodes in {} regions ({}), in this process.\n",
        cluster.nodes().len(),
        regions.len(),
        regions.join(", ")
    );
    out.push_str(&format!(
        "# {:>4}  {:<14} {:<16} {}\n",
        "node", "region", "zone", "SQL"
    ));
    for node in cluster.nodes() {
        let locality = &node.config().locality;
        out.push_str(&format!(
            "# {:>4}  {:<14} {:<16} {}\n",
            node.node_id(),
            locality.region,
            locality.zone,
            sql_url_on(node, database)
        ));
    }
    out.push_str("#\n");
    if latency {
        let pairs: Vec<String> = regions
            .iter()
            .enumerate()
            .flat_map(|(i, a)| regions[i + 1..].iter().map(move |b| (*a, *b)))
            .filter_map(|(a, b)| {
                let rtt = layout.profile.round_trip(a, b)?;
                Some(format!("{a}-{b} {} ms", rtt.as_millis()))
            })
            .collect();
        out.push_str(&format!(
            "# Round trips between regions are injected (profile {:?}): {}.\n",
            layout.profile.name(),
            if pairs.is_empty() {
                "none between regions".to_string()
            } else {
                pairs.join(", ")
            }
        ));
    } else {
        out.push_str("# No latency is injected (--no-latency).\n");
    }
    out.push_str("#\n# Connect from each region (psql takes these URLs too):\n");
    for (region, url) in gateways(cluster, database) {
        out.push_str(&format!("#   {region:<14} {url}\n"));
    }
    if database == movr::DATABASE {
        out.push_str(
            "#\n# The sample database movr: users, vehicles and rides are REGIONAL BY ROW (each row\n\
             # homed in the region it was written from), promo_codes is GLOBAL. Try:\n\
             #   SHOW REGIONS;\n\
             #   SELECT gateway_region();\n\
             #   SHOW RANGES FROM TABLE users;\n\
             #   SELECT region, count(*) FROM users GROUP BY region;\n\
             #   SHOW ZONE CONFIGURATION FOR TABLE promo_codes;\n\
             #   \\timing, then SELECT * FROM users WHERE id = '...' from a gateway in another region.\n\
             #   EXPLAIN SELECT * FROM promo_codes;   -- GLOBAL: read from this region's own replica\n\
             #   SELECT count(*) FROM rides AS OF SYSTEM TIME follower_read_timestamp();   -- a local read of 4.8 s ago\n",
        );
    } else {
        out.push_str(
            "#\n# No sample database (--empty). Try CREATE DATABASE d PRIMARY REGION \"us-east1\" REGIONS ...\n",
        );
    }
    out.push_str("#\n");
    out.push_str(&format!(
        "# Data and logs: {} (removed at exit). \\q or Ctrl-D stops the cluster.\n",
        dir.display()
    ));
    out
}

#[cfg(test)]
mod tests;
