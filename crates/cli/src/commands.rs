//! The command line and what each command does.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use meridian_keys::space::TABLE_PREFIX;
use meridian_server::rpc::{ClusterInfoRpc, DebugSplitRpc, InitRpc};
use meridian_server::status::{pretty_key, ClusterStatus, ClusterStatusRpc};
use meridian_server::Node;
use meridian_transport::Locality;

use meridian_kvclient::DistSenderConfig;
use meridian_server::client::{self, Client};

#[derive(Parser, Debug)]
#[command(
    name = "meridian",
    version,
    about = "A geo-partitioned, strongly consistent SQL database"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Start(_))
    }

    /// `meridian demo`, `drill`, `bench regions` and `bench chaos` set up
    /// their own logging (a file).
    pub fn logs_itself(&self) -> bool {
        matches!(
            self.command,
            Command::Demo(_)
                | Command::Drill(_)
                | Command::Bench(BenchCommand::Regions(_))
                | Command::Bench(BenchCommand::Chaos(_))
        )
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a node.
    Start(Box<StartArgs>),
    /// Bootstrap a new cluster on a started node (once per cluster).
    Init(ConnArgs),
    /// Create the cluster CA and node certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Node commands.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Inspect and poke at the KV layer.
    #[command(subcommand)]
    Debug(DebugCommand),
    /// Zone configs: how many replicas a key span keeps, where, and where
    /// its lease goes.
    #[command(subcommand)]
    Zone(crate::zone::ZoneCommand),
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// A SQL shell: interactive on a terminal, or run statements from
    /// -e, -f or standard input and exit.
    Sql(Box<crate::sql_shell::SqlArgs>),
    /// A multi-region cluster in this process (9 nodes in 3 regions with
    /// their round trips injected) and a SQL shell on it; everything is
    /// removed at exit.
    Demo(Box<crate::demo::DemoArgs>),
    /// A failover drill on a demo cluster in this process: writers in
    /// every region while a zone or region stops and comes back; prints
    /// each writer's recovery time, the writes lost (must be none) and
    /// when the leases were home again.
    Drill(Box<crate::drill::DrillArgs>),
}

/// `meridian start`: every setting may also come from `--config FILE`
/// (TOML, the same names with underscores); a flag given on the command
/// line wins over the file.
#[derive(Args, Debug, Default)]
pub struct StartArgs {
    /// A TOML file with any of the settings below.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Store directory (created if missing).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// UDP address to listen on for other nodes and clients [default: 127.0.0.1:26257].
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Address other nodes should dial (default: the listen address).
    #[arg(long)]
    pub advertise: Option<SocketAddr>,
    /// Admin HTTP address (health, metrics, status).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// TCP address for SQL clients (PostgreSQL wire protocol) [default: the --listen address, on TCP].
    #[arg(long)]
    pub sql_listen: Option<SocketAddr>,
    /// This node's locality, e.g. region=us-east1,zone=us-east1-b [default: region=local,zone=local].
    #[arg(long)]
    pub locality: Option<Locality>,
    /// Nodes to join, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub join: Option<Vec<SocketAddr>>,
    /// A new node that can reach none of --join for this many seconds
    /// exits with an error [default: 60].
    #[arg(long)]
    pub join_timeout_secs: Option<u64>,
    /// Directory with ca.crt, node.crt and node.key.
    #[arg(long)]
    pub certs_dir: Option<PathBuf>,
    /// Split ranges larger than this many bytes [default: 536870912]. Like
    /// --replication-factor and --gc-ttl-secs, it goes into the cluster's
    /// default zone config when this node bootstraps the cluster; after
    /// that, `meridian zone set --default` changes it.
    #[arg(long)]
    pub range_max_bytes: Option<u64>,
    /// Seconds after its liveness expired that a node counts as dead and
    /// its replicas are replaced [default: 60].
    #[arg(long)]
    pub time_until_dead_secs: Option<u64>,
    /// Replicas per range [default: 3].
    #[arg(long)]
    pub replication_factor: Option<usize>,
    /// Seconds old versions stay readable: older ones a newer version
    /// replaced are garbage collected, and reads further back are refused
    /// [default: 14400, 4 hours]. The default zone config's gc.ttlseconds
    /// at bootstrap; zone configs set it per span.
    #[arg(long)]
    pub gc_ttl_secs: Option<u64>,
    /// The most any node's clock may be off from another's, in
    /// milliseconds; give every node the same [default: 500]. Reads carry
    /// an uncertainty interval this long, GLOBAL tables' writes wait about
    /// this long more, and the Raft lease must outlast it.
    #[arg(long)]
    pub max_offset_ms: Option<u64>,
    /// How far behind the present leaseholders close timestamps, in
    /// milliseconds [default: 3000]: follower reads (`AS OF SYSTEM TIME`)
    /// at or below it are served by any replica. `follower_read_timestamp()`
    /// on this node goes back this plus 1.8 s.
    #[arg(long)]
    pub closed_timestamp_target_ms: Option<u64>,
    /// Raft timing: `lan` (one data center) or `wan` (regions up to ~150 ms apart) [default: wan with --latency, else lan].
    #[arg(long)]
    pub raft_profile: Option<String>,
    /// Inject the round trips of a latency profile (TOML: `name`,
    /// `intra_region_rtt_ms`, `[[links]]` of `regions` and `rtt_ms`, as in
    /// profiles/demo-3-region.toml) into this node's messages, by region;
    /// the profile must list this node's region. Give every node of the
    /// cluster the same profile.
    #[arg(long, value_name = "FILE")]
    pub latency: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ConnArgs {
    /// A node's address.
    #[arg(long, default_value = "127.0.0.1:26257")]
    pub host: SocketAddr,
    #[arg(long)]
    pub certs_dir: PathBuf,
}

impl ConnArgs {
    /// A client of the cluster `--host` belongs to.
    pub async fn connect(&self) -> Result<Client> {
        Ok(Client::connect(&self.certs_dir, &[self.host], DistSenderConfig::default()).await?)
    }
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// Create ca.crt and ca.key in the directory.
    CreateCa {
        #[arg(long)]
        certs_dir: PathBuf,
    },
    /// Create node.crt and node.key, signed by the directory's CA, valid
    /// for the given host names and IP addresses.
    CreateNode {
        #[arg(long)]
        certs_dir: PathBuf,
        #[arg(required = true)]
        hosts: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// Nodes, localities, liveness, replica and lease counts.
    Status {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum DebugCommand {
    /// Range descriptors, replicas and leaseholders.
    Ranges {
        #[command(flatten)]
        conn: ConnArgs,
        #[arg(long)]
        json: bool,
        /// Only the ranges that do not conform to their zone config, and
        /// why.
        #[arg(long)]
        nonconforming: bool,
    },
    /// Read and write keys through the DistSender.
    #[command(subcommand)]
    Kv(KvCommand),
    /// Split the range holding KEY at KEY.
    Split {
        #[command(flatten)]
        conn: ConnArgs,
        key: String,
    },
    /// The intent on KEY and its transaction's record.
    Txn {
        #[command(flatten)]
        conn: ConnArgs,
        key: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum KvCommand {
    Put {
        #[command(flatten)]
        conn: ConnArgs,
        key: String,
        value: String,
    },
    Get {
        #[command(flatten)]
        conn: ConnArgs,
        key: String,
    },
    /// Keys in [START, END), at most --limit.
    Scan {
        #[command(flatten)]
        conn: ConnArgs,
        start: String,
        end: String,
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// A key-value workload, like `cockroach workload run kv`.
    Kv(crate::bench::KvArgs),
    /// Transfers between accounts in serializable transactions; fails when
    /// the total changes.
    Bank(crate::bench_bank::BankArgs),
    /// Point reads and writes from a gateway in each region on REGIONAL BY
    /// ROW, REGIONAL BY TABLE and GLOBAL tables, under ZONE and REGION
    /// survival, next to the floor the latency matrix allows.
    Regions(Box<crate::bench_regions::RegionsArgs>),
    /// Seeded fault schedules (kills, partitions, clock skews, lease
    /// transfers, splits, replica moves) against a cluster in this process
    /// while checked workloads run; exits 1 on any violation.
    Chaos(crate::bench_chaos::ChaosArgs),
}

/// Keys typed by users must stay out of the meta and system key spaces.
pub(crate) fn user_key(key: &str) -> Result<Vec<u8>> {
    match key.as_bytes().first() {
        None => bail!("a key must not be empty"),
        Some(&b) if b < TABLE_PREFIX => bail!(
            "keys starting with a byte below 0x10 are reserved for the system; got {}",
            pretty_key(key.as_bytes())
        ),
        Some(_) => Ok(key.as_bytes().to_vec()),
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Start(args) => start(*args).await,
        Command::Init(conn) => {
            let transport = client::endpoint(&conn.certs_dir, conn.host).await?;
            let unreachable = || format!("cannot reach a Meridian node at {}", conn.host);
            // A short probe first: an unreachable host fails fast, while a
            // bootstrap itself may take a while.
            transport
                .call_addr::<ClusterInfoRpc>(conn.host, &(), Duration::from_secs(5))
                .await
                .with_context(unreachable)?;
            let info = transport
                .call_addr::<InitRpc>(conn.host, &(), Duration::from_secs(60))
                .await
                .with_context(unreachable)??;
            println!(
                "cluster {} initialized",
                info.cluster_id.unwrap_or_default()
            );
            transport.shutdown().await;
            Ok(())
        }
        Command::Cert(CertCommand::CreateCa { certs_dir }) => {
            meridian_transport::create_ca(&certs_dir)?;
            println!("wrote {}", certs_dir.join("ca.crt").display());
            Ok(())
        }
        Command::Cert(CertCommand::CreateNode { certs_dir, hosts }) => {
            let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
            meridian_transport::create_node_cert(&certs_dir, &hosts)?;
            println!("wrote {}", certs_dir.join("node.crt").display());
            Ok(())
        }
        Command::Node(NodeCommand::Status { conn, json }) => {
            let status = cluster_status(&conn).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status.nodes)?);
            } else {
                print_nodes(&status);
            }
            Ok(())
        }
        Command::Debug(DebugCommand::Ranges {
            conn,
            json,
            nonconforming,
        }) => {
            let mut status = cluster_status(&conn).await?;
            if nonconforming {
                status.ranges.retain(|r| !r.nonconforming.is_empty());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&status.ranges)?);
            } else {
                print_ranges(&status);
            }
            Ok(())
        }
        Command::Debug(DebugCommand::Split { conn, key }) => {
            let key = user_key(&key)?;
            let client = conn.connect().await?;
            client
                .call_host::<DebugSplitRpc>(&key, Duration::from_secs(60))
                .await??;
            println!("split at {}", pretty_key(&key));
            Ok(())
        }
        Command::Debug(DebugCommand::Kv(kv)) => debug_kv(kv).await,
        Command::Debug(DebugCommand::Txn { conn, key, json }) => {
            let key = user_key(&key)?;
            let client = conn.connect().await?;
            let report = client.ds.describe_intent(&key).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_intent(&key, report.as_ref());
            }
            Ok(())
        }
        Command::Zone(command) => crate::zone::run(command).await,
        Command::Bench(BenchCommand::Kv(args)) => crate::bench::run_kv(args).await,
        Command::Bench(BenchCommand::Bank(args)) => crate::bench_bank::run_bank(args).await,
        Command::Bench(BenchCommand::Regions(args)) => {
            crate::bench_regions::run_regions(*args).await
        }
        Command::Bench(BenchCommand::Chaos(args)) => crate::bench_chaos::run_chaos(args).await,
        Command::Sql(args) => crate::sql_shell::run(*args).await,
        Command::Demo(args) => crate::demo::run(*args).await,
        Command::Drill(args) => crate::drill::run_drill(*args).await,
    }
}

async fn cluster_status(conn: &ConnArgs) -> Result<ClusterStatus> {
    let client = conn.connect().await?;
    client
        .call_host::<ClusterStatusRpc>(&(), Duration::from_secs(30))
        .await?
        .map_err(Into::into)
}

fn print_nodes(status: &ClusterStatus) {
    println!(
        "{:>4}  {:<22} {:<28} {:<8} {:>5} {:>8} {:>12}",
        "id", "address", "locality", "liveness", "epoch", "replicas", "leaseholders"
    );
    for n in &status.nodes {
        let count = |c: Option<usize>| c.map_or("?".to_string(), |c| c.to_string());
        println!(
            "{:>4}  {:<22} {:<28} {:<8} {:>5} {:>8} {:>12}",
            n.node_id,
            n.address,
            n.locality.to_string(),
            n.liveness.to_string(),
            n.epoch,
            count(n.replicas),
            count(n.leaseholders)
        );
    }
}

fn print_ranges(status: &ClusterStatus) {
    println!(
        "{:>6}  {:<24} {:<24} {:>4} {:<12} {:<10} {:>11} {:>12}  conformance",
        "range", "start", "end", "gen", "voters", "non-voters", "leaseholder", "bytes"
    );
    let ids = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    for r in &status.ranges {
        let conformance = match r.nonconforming.is_empty() {
            true => "ok".to_string(),
            false => r.nonconforming.join("; "),
        };
        println!(
            "{:>6}  {:<24} {:<24} {:>4} {:<12} {:<10} {:>11} {:>12}  {}",
            r.range_id,
            r.start_key,
            r.end_key,
            r.generation,
            ids(&r.voters),
            ids(&r.non_voters),
            r.leaseholder.map_or("?".into(), |l| l.to_string()),
            r.bytes.map_or("?".into(), |b| b.to_string()),
            conformance
        );
    }
}

fn print_intent(key: &[u8], report: Option<&meridian_kvclient::IntentReport>) {
    let Some(report) = report else {
        println!("no intent on {}", pretty_key(key));
        return;
    };
    let txn = &report.intent;
    println!(
        "intent on {}: txn {:?} epoch {} write timestamp {} priority {} anchor {}",
        pretty_key(key),
        txn.id,
        txn.epoch,
        txn.write_timestamp,
        txn.priority,
        pretty_key(&txn.anchor_key)
    );
    match &report.record {
        None => println!("record: none (not written yet, or already cleaned up)"),
        Some(record) => {
            println!(
                "record: {:?}, last heartbeat {}, commit timestamp {}",
                record.status, record.last_heartbeat, record.meta.write_timestamp
            );
            for (start, end) in &record.lock_spans {
                println!("  intents in [{}, {})", pretty_key(start), pretty_key(end));
            }
        }
    }
}

async fn debug_kv(command: KvCommand) -> Result<()> {
    match command {
        KvCommand::Put { conn, key, value } => {
            let key = user_key(&key)?;
            let client = conn.connect().await?;
            client.ds.put(&key, value.as_bytes()).await?;
            println!("OK");
        }
        KvCommand::Get { conn, key } => {
            let key = user_key(&key)?;
            let client = conn.connect().await?;
            match client.ds.get(&key).await? {
                Some(value) => println!("{}", pretty_key(&value)),
                None => bail!("key {} not found", pretty_key(&key)),
            }
        }
        KvCommand::Scan {
            conn,
            start,
            end,
            limit,
        } => {
            let (start, end) = (user_key(&start)?, user_key(&end)?);
            let client = conn.connect().await?;
            for (k, v) in client.ds.scan(&start, &end, limit).await? {
                println!("{}\t{}", pretty_key(&k), pretty_key(&v));
            }
        }
    }
    Ok(())
}

async fn start(args: StartArgs) -> Result<()> {
    let config = crate::start_config::resolve(args)?;
    let node = Node::start(config).await?;
    println!(
        "node started: listening on {}, SQL on {}{}{}",
        node.advertise_addr(),
        node.sql_addr(),
        node.config()
            .http
            .map(|h| format!(", admin HTTP on http://{h}"))
            .unwrap_or_default(),
        node.config()
            .network
            .as_ref()
            .and_then(|n| n.latency())
            .map(|m| format!(", latency profile {:?}", m.name()))
            .unwrap_or_default()
    );
    let mut fatal = node.fatal();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let outcome = tokio::select! {
        _ = terminate.recv() => Ok(()),
        _ = tokio::signal::ctrl_c() => Ok(()),
        reason = fatal.wait_for(|r| r.is_some()) => {
            let reason = reason.ok().and_then(|r| r.clone());
            Err(anyhow!("{}", reason.map(|e| e.to_string()).unwrap_or_default()))
        }
    };
    eprintln!("shutting down");
    node.shutdown(Duration::from_secs(5)).await;
    outcome
}
