//! `meridian bench kv`: the kv workload against an external cluster
//! (`--host`) or a 3-node cluster this process starts on loopback.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use clap::Args;
use meridian_hlc::HybridClock;
use meridian_kvclient::{DistSender, DistSenderConfig};
use meridian_server::client::Client;
use meridian_server::rpc::DebugSplitRpc;
use meridian_server::split_queue::{self, SplitAt};
use meridian_server::Node;
use meridian_transport::Locality;
use meridian_workload::kv::{self, KvConfig, KvTarget, ProgressLine};

#[derive(Args, Debug)]
pub struct KvArgs {
    /// A node of the cluster to load; without it, a 3-node cluster is
    /// started in this process (stores in a temporary directory).
    #[arg(long)]
    host: Option<SocketAddr>,
    #[arg(long, requires = "host")]
    certs_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Percentage of operations that are reads.
    #[arg(long, default_value_t = 0)]
    read_percent: u8,
    /// Size of the key space.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    #[arg(long, default_value_t = 256)]
    value_bytes: usize,
    /// Pre-split the key space into this many ranges.
    #[arg(long, default_value_t = 1)]
    ranges: usize,
    /// Print the summary as JSON (progress lines go to stderr).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Clone)]
struct Target(DistSender);

impl KvTarget for Target {
    async fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
        self.0.put(&key, &value).await.map_err(|e| e.to_string())
    }

    async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, String> {
        self.0.get(&key).await.map_err(|e| e.to_string())
    }
}

pub async fn run_kv(args: KvArgs) -> Result<()> {
    let config = KvConfig {
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.duration),
        read_percent: args.read_percent,
        keys: args.keys,
        value_bytes: args.value_bytes,
        seed: args.seed,
    };
    config.validate().map_err(|e| anyhow!("{e}"))?;
    let splits = kv::split_points(args.keys, args.ranges);
    against_cluster(
        args.host,
        args.certs_dir,
        &splits,
        |ds, _clock| async move { drive(Target(ds), &config, args.json).await },
    )
    .await
}

/// Runs `workload` against the cluster of `host` (with the certificates in
/// `certs_dir`), or against a 3-node cluster started in this process for
/// the run, after pre-splitting at `splits`; the workload gets a gateway's
/// DistSender and clock.
pub async fn against_cluster<F, Fut>(
    host: Option<SocketAddr>,
    certs_dir: Option<PathBuf>,
    splits: &[Vec<u8>],
    workload: F,
) -> Result<()>
where
    F: FnOnce(DistSender, Arc<HybridClock>) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    match host {
        Some(host) => {
            let certs = certs_dir.context("--certs-dir is required with --host")?;
            let client = Client::connect(&certs, &[host], DistSenderConfig::default()).await?;
            for key in splits {
                client
                    .call_host::<DebugSplitRpc>(key, Duration::from_secs(60))
                    .await?
                    .context("pre-splitting")?;
            }
            workload(client.ds.clone(), client.transport.clock().clone()).await
        }
        None => {
            let cluster = LocalCluster::start(3).await?;
            let result = async {
                let gateway = cluster.nodes()[0].wait_member().await;
                for key in splits {
                    split_queue::split(&gateway, SplitAt::Key(key))
                        .await
                        .context("pre-splitting")?;
                }
                cluster.wait_replicated(3).await?;
                workload(gateway.ds.clone(), cluster.nodes()[0].clock().clone()).await
            }
            .await;
            cluster.shutdown().await;
            result
        }
    }
}

async fn drive(target: Target, config: &KvConfig, json: bool) -> Result<()> {
    eprintln!("{}", ProgressLine::header());
    let summary = kv::run(target, config, |line| eprintln!("{line}"))
        .await
        .map_err(|e| anyhow!("{e}"))?;
    if json {
        println!("{}", summary.to_json());
    } else {
        println!("{}", summary.render_text());
    }
    Ok(())
}

/// Nodes on loopback in this process (localities `region=local,zone=zone1`,
/// `zone2`, ...), with certificates and stores in a temporary directory
/// that goes away with it.
pub struct LocalCluster {
    cluster: meridian_server::LocalCluster,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    pub async fn start(n: usize) -> Result<LocalCluster> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let localities: Vec<Locality> = (0..n)
            .map(|i| Locality::new("local", format!("zone{}", i + 1)))
            .collect();
        let cluster = meridian_server::LocalCluster::start(
            dir.path(),
            &localities,
            |_, _| {},
            Duration::from_secs(60),
        )
        .await?;
        Ok(LocalCluster { cluster, _dir: dir })
    }

    pub fn nodes(&self) -> &[Node] {
        self.cluster.nodes()
    }

    /// Waits until every range has `voters` voters.
    pub async fn wait_replicated(&self, voters: usize) -> Result<()> {
        Ok(self
            .cluster
            .wait_replicated(voters, Duration::from_secs(120))
            .await?)
    }

    pub async fn shutdown(self) {
        for node in self.cluster.nodes() {
            node.shutdown(Duration::from_secs(1)).await;
        }
    }
}
