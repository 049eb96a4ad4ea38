//! `meridian zone`: set, show, list and remove zone configs by key span,
//! with CockroachDB's `CONFIGURE ZONE USING` syntax.
//!
//! Keys are typed as in `debug kv` (plain strings, at or above 0x10; the
//! system ranges keep the default config). The changes themselves,
//! validated against the cluster's localities in one transaction, are the
//! server's ([`meridian_server::zones`]).

use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use meridian_hlc::HybridClock;
use meridian_placement::{ZoneConfig, ZoneConfigs};
use meridian_server::status::pretty_key;
use meridian_server::zones::{self, ZoneTarget};

use crate::commands::{user_key, ConnArgs};

#[derive(Subcommand, Debug)]
pub enum ZoneCommand {
    /// Change the config of a key span (only the fields named; the others
    /// keep their value, or go on inheriting), or of the cluster default.
    Set {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        target: TargetArgs,
        /// E.g. "num_replicas = 5, constraints = '{+region=eu: 2}',
        /// lease_preferences = '[[+region=eu]]'".
        #[arg(long)]
        using: String,
    },
    /// The config in force for a span (or the default), every field
    /// resolved through inheritance.
    Get {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Every config set, the default first.
    Ls {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Remove the config set on exactly a span: its ranges follow the
    /// enclosing span's config again.
    Rm {
        #[command(flatten)]
        conn: ConnArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
}

/// `--default`, or `--start KEY --end KEY`.
#[derive(Args, Debug)]
pub struct TargetArgs {
    /// The cluster's default config, which every span inherits from.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    default: bool,
    /// First key of the span.
    #[arg(long, requires = "end")]
    start: Option<String>,
    /// The key after the span.
    #[arg(long, requires = "start")]
    end: Option<String>,
}

impl TargetArgs {
    fn target(&self) -> Result<ZoneTarget> {
        match (self.default, &self.start, &self.end) {
            (true, _, _) => Ok(ZoneTarget::Default),
            (false, Some(start), Some(end)) => {
                let (start, end) = (user_key(start)?, user_key(end)?);
                if start >= end {
                    bail!(
                        "--start {} must sort before --end {}",
                        pretty_key(&start),
                        pretty_key(&end)
                    );
                }
                Ok(ZoneTarget::Span { start, end })
            }
            _ => bail!("say which config: --default, or --start KEY --end KEY"),
        }
    }
}

pub async fn run(command: ZoneCommand) -> Result<()> {
    // The default record, written at bootstrap, sets every field; the
    // root only fills what a cluster from before zone configs lacks.
    let root = ZoneConfig::default_config();
    let clock = Arc::new(HybridClock::system());
    match command {
        ZoneCommand::Set {
            conn,
            target,
            using,
        } => {
            let target = target.target()?;
            let client = conn.connect().await?;
            let stored = zones::set(&client.ds, &clock, &root, &target, &using).await?;
            println!("{}: {}", describe(&target), one_line(&stored));
        }
        ZoneCommand::Get { conn, target } => {
            let target = target.target()?;
            let client = conn.connect().await?;
            let configs = zones::load(&client.ds, &clock, &root).await?;
            let resolved = match &target {
                ZoneTarget::Default => configs.default_config().clone(),
                ZoneTarget::Span { start, .. } => configs.resolved(start),
            };
            println!("{}", resolved.effective().to_zone_config());
        }
        ZoneCommand::Ls { conn } => {
            let client = conn.connect().await?;
            let configs = zones::load(&client.ds, &clock, &root).await?;
            print_configs(&configs);
        }
        ZoneCommand::Rm { conn, target } => {
            let target = target.target()?;
            let client = conn.connect().await?;
            zones::remove(&client.ds, &clock, &target).await?;
            println!("removed the zone config of {}", describe(&target));
        }
    }
    Ok(())
}

fn describe(target: &ZoneTarget) -> String {
    match target {
        ZoneTarget::Default => "default".into(),
        ZoneTarget::Span { start, end } => format!("[{}, {})", pretty_key(start), pretty_key(end)),
    }
}

/// The `CONFIGURE ZONE USING` text on one line.
fn one_line(config: &ZoneConfig) -> String {
    config
        .to_string()
        .lines()
        .map(|l| l.trim().trim_end_matches(','))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_configs(configs: &ZoneConfigs) {
    println!("default: {}", one_line(configs.default_config()));
    for span in configs.spans() {
        let target = ZoneTarget::Span {
            start: span.start.clone(),
            end: span.end.clone(),
        };
        println!("{}: {}", describe(&target), one_line(&span.config));
    }
}
