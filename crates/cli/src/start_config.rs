//! Settings of `meridian start`: flags, else the `--config` TOML file,
//! else defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use meridian_server::config::RaftTimeouts;
use meridian_server::NodeConfig;
use meridian_transport::{Locality, NetworkModel};
use serde::Deserialize;

use crate::commands::StartArgs;

/// The config file: the flags' names with underscores, all optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartFile {
    store: Option<PathBuf>,
    listen: Option<SocketAddr>,
    advertise: Option<SocketAddr>,
    http: Option<SocketAddr>,
    sql_listen: Option<SocketAddr>,
    locality: Option<String>,
    join: Option<Vec<SocketAddr>>,
    join_timeout_secs: Option<u64>,
    certs_dir: Option<PathBuf>,
    range_max_bytes: Option<u64>,
    time_until_dead_secs: Option<u64>,
    replication_factor: Option<usize>,
    raft_profile: Option<String>,
    gc_ttl_secs: Option<u64>,
    max_offset_ms: Option<u64>,
    closed_timestamp_target_ms: Option<u64>,
    latency: Option<PathBuf>,
}

fn read_file(path: &Path) -> Result<StartFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow!("config file {}: {e}", path.display()))
}

/// Merges flags over the file over defaults.
pub fn resolve(args: StartArgs) -> Result<NodeConfig> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => StartFile::default(),
    };
    let store = args
        .store
        .or(file.store)
        .ok_or_else(|| anyhow!("--store is required (or `store` in the config file)"))?;
    let certs_dir = args
        .certs_dir
        .or(file.certs_dir)
        .ok_or_else(|| anyhow!("--certs-dir is required (or `certs_dir` in the config file)"))?;
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:26257".parse().expect("valid"));
    let locality = match (args.locality, file.locality) {
        (Some(l), _) => l,
        (None, Some(text)) => text
            .parse()
            .map_err(|e| anyhow!("config file: locality: {e}"))?,
        (None, None) => Locality::new("local", "local"),
    };
    let latency = args.latency.or(file.latency);
    let network = match &latency {
        Some(path) => Some(
            NetworkModel::from_file(path)
                .with_context(|| format!("--latency {}", path.display()))?,
        ),
        None => None,
    };
    let default_raft = if network.is_some() { "wan" } else { "lan" };
    let raft = match args
        .raft_profile
        .or(file.raft_profile)
        .as_deref()
        .unwrap_or(default_raft)
    {
        "lan" => RaftTimeouts::LAN,
        "wan" => RaftTimeouts::WAN,
        other => bail!("unknown raft profile {other:?}: use lan or wan"),
    };
    let mut config = NodeConfig::new(store, listen, certs_dir);
    config.advertise = args.advertise.or(file.advertise);
    config.http = args.http.or(file.http);
    config.sql_listen = args.sql_listen.or(file.sql_listen);
    config.locality = locality;
    config.join = args.join.or(file.join).unwrap_or_default();
    config.join_timeout = Duration::from_secs(
        args.join_timeout_secs
            .or(file.join_timeout_secs)
            .unwrap_or(60),
    );
    config.raft = raft;
    config.network = network;
    if let Some(bytes) = args.range_max_bytes.or(file.range_max_bytes) {
        config.range_max_bytes = bytes;
    }
    if let Some(secs) = args.time_until_dead_secs.or(file.time_until_dead_secs) {
        config.time_until_dead = Duration::from_secs(secs);
    }
    if let Some(n) = args.replication_factor.or(file.replication_factor) {
        config.replication_factor = n;
    }
    if let Some(secs) = args.gc_ttl_secs.or(file.gc_ttl_secs) {
        if secs == 0 {
            bail!("--gc-ttl-secs must be at least 1");
        }
        config.gc_ttl = Duration::from_secs(secs);
    }
    if let Some(ms) = args.max_offset_ms.or(file.max_offset_ms) {
        if ms == 0 {
            bail!("--max-offset-ms must be at least 1");
        }
        config.max_offset = Duration::from_millis(ms);
    }
    if let Some(ms) = args
        .closed_timestamp_target_ms
        .or(file.closed_timestamp_target_ms)
    {
        config.closed_timestamp_target = Duration::from_millis(ms);
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args_with_file(text: &str) -> (tempfile::TempDir, StartArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        let args = StartArgs {
            config: Some(path),
            ..StartArgs::default()
        };
        (dir, args)
    }

    #[test]
    fn the_file_fills_what_flags_leave_out_and_flags_win() {
        let (_dir, mut args) = args_with_file(
            r#"
store = "/data/n1"
certs_dir = "/certs"
listen = "127.0.0.1:7001"
locality = "region=eu,zone=eu-a"
join = ["127.0.0.1:7001", "127.0.0.1:7002"]
range_max_bytes = 1024
raft_profile = "wan"
gc_ttl_secs = 600
sql_listen = "127.0.0.1:7100"
"#,
        );
        args.listen = Some("127.0.0.1:9000".parse().unwrap());
        let config = resolve(args).unwrap();
        assert_eq!(config.store, PathBuf::from("/data/n1"));
        assert_eq!(config.listen.port(), 9000, "the flag wins");
        assert_eq!(config.locality, Locality::new("eu", "eu-a"));
        assert_eq!(config.join.len(), 2);
        assert_eq!(config.range_max_bytes, 1024);
        assert_eq!(config.raft, RaftTimeouts::WAN);
        assert_eq!(config.join_timeout, Duration::from_secs(60));
        assert_eq!(config.gc_ttl, Duration::from_secs(600));
        assert_eq!(config.sql_listen, Some("127.0.0.1:7100".parse().unwrap()));
    }

    #[test]
    fn the_gc_ttl_defaults_to_four_hours_and_must_be_positive() {
        let (_dir, args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        assert_eq!(
            resolve(args).unwrap().gc_ttl,
            Duration::from_secs(4 * 60 * 60)
        );
        let (_dir, mut args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        args.gc_ttl_secs = Some(0);
        let e = resolve(args).unwrap_err().to_string();
        assert!(e.contains("--gc-ttl-secs must be at least 1"), "{e}");
    }

    #[test]
    fn the_clock_offset_and_closed_timestamp_target_come_from_flags_or_the_file() {
        let (_dir, args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        let config = resolve(args).unwrap();
        assert_eq!(config.max_offset, Duration::from_millis(500));
        assert_eq!(config.closed_timestamp_target, Duration::from_secs(3));
        let (_dir, mut args) = args_with_file(
            "store = \"/s\"\ncerts_dir = \"/c\"\nmax_offset_ms = 250\nclosed_timestamp_target_ms = 1000\n",
        );
        args.max_offset_ms = Some(100);
        let config = resolve(args).unwrap();
        assert_eq!(
            config.max_offset,
            Duration::from_millis(100),
            "the flag wins"
        );
        assert_eq!(config.closed_timestamp_target, Duration::from_secs(1));
        let (_dir, mut args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        args.max_offset_ms = Some(0);
        let e = resolve(args).unwrap_err().to_string();
        assert!(e.contains("--max-offset-ms must be at least 1"), "{e}");
    }

    #[test]
    fn a_latency_profile_loads_and_defaults_raft_to_wan() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("p.toml");
        std::fs::write(
            &profile,
            "name = \"p\"\n[[links]]\nregions = [\"eu\", \"us\"]\nrtt_ms = 80.0\n",
        )
        .unwrap();
        let (_dir, args) = args_with_file(&format!(
            "store = \"/s\"\ncerts_dir = \"/c\"\nlatency = {:?}\n",
            profile.display().to_string()
        ));
        let config = resolve(args).unwrap();
        let matrix = config.network.expect("a network model").latency().unwrap();
        assert_eq!(
            matrix.round_trip("eu", "us"),
            Some(Duration::from_millis(80))
        );
        assert_eq!(config.raft, RaftTimeouts::WAN);

        let (_dir, mut args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        args.latency = Some(profile);
        args.raft_profile = Some("lan".into());
        assert_eq!(
            resolve(args).unwrap().raft,
            RaftTimeouts::LAN,
            "the flag wins"
        );

        let (_dir, mut args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        args.latency = Some(dir.path().join("none.toml"));
        let e = format!("{:#}", resolve(args).unwrap_err());
        assert!(e.contains("--latency") && e.contains("none.toml"), "{e}");
        let (_dir, args) = args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\n");
        assert!(resolve(args).unwrap().network.is_none());
    }

    #[test]
    fn bad_files_and_missing_settings_are_explained() {
        let (_dir, args) = args_with_file("stor = \"/x\"\n");
        let e = resolve(args).unwrap_err().to_string();
        assert!(e.contains("unknown field"), "{e}");
        let (_dir, args) = args_with_file("certs_dir = \"/c\"\n");
        let e = resolve(args).unwrap_err().to_string();
        assert!(e.contains("--store is required"), "{e}");
        let (_dir, args) =
            args_with_file("store = \"/s\"\ncerts_dir = \"/c\"\nraft_profile = \"x\"\n");
        let e = resolve(args).unwrap_err().to_string();
        assert!(e.contains("unknown raft profile"), "{e}");
        let missing = StartArgs {
            config: Some(PathBuf::from("/nonexistent/node.toml")),
            ..StartArgs::default()
        };
        assert!(resolve(missing)
            .unwrap_err()
            .to_string()
            .contains("reading the config file"));
    }
}
