//! `meridian bench bank`: the bank workload (transfers between accounts in
//! serializable transactions) against an external cluster (`--host`) or a
//! 3-node cluster this process starts on loopback; exits with status 1 when
//! the money does not add up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use clap::Args;
use meridian_hlc::HybridClock;
use meridian_kvapi::{Request, Response};
use meridian_kvclient::txn::{run_txn, Txn, TxnError};
use meridian_kvclient::DistSender;
use meridian_workload::bank::{self, BankConfig, BankTarget, INITIAL_BALANCE};

use crate::bench::against_cluster;

#[derive(Args, Debug)]
pub struct BankArgs {
    /// A node of the cluster to load; without it, a 3-node cluster is
    /// started in this process (stores in a temporary directory).
    #[arg(long)]
    host: Option<SocketAddr>,
    #[arg(long, requires = "host")]
    certs_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    accounts: u64,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Pre-split the accounts into this many ranges.
    #[arg(long, default_value_t = 1)]
    ranges: usize,
    /// Percentage of transactions that only read (sum 10 accounts).
    #[arg(long, default_value_t = 0)]
    read_percent: u8,
    /// Print the summary as JSON (progress lines go to stderr).
    #[arg(long)]
    json: bool,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Runs the bank's transactions through Meridian's coordinator.
#[derive(Clone)]
struct Target {
    ds: DistSender,
    clock: Arc<HybridClock>,
}

fn invalid(reason: String) -> TxnError {
    TxnError::Client(meridian_kvclient::ClientError::InvalidRequest(reason))
}

fn balance(value: Option<Vec<u8>>) -> Result<i64, TxnError> {
    let value = value.unwrap_or_default();
    std::str::from_utf8(&value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("an account holds {value:?}, not a balance")))
}

async fn read(txn: &Txn, account: u64) -> Result<i64, TxnError> {
    balance(txn.get(&bank::account_key(account)).await?)
}

impl Target {
    /// Runs `body` until it commits; counts its attempts.
    async fn attempts<T, F, Fut>(&self, mut body: F) -> Result<(T, u32), String>
    where
        F: FnMut(Txn) -> Fut,
        Fut: std::future::Future<Output = Result<T, TxnError>>,
    {
        let mut attempts = 0;
        let value = run_txn(&self.ds, &self.clock, |txn| {
            attempts += 1;
            body(txn)
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok((value, attempts))
    }
}

impl BankTarget for Target {
    async fn create(&self, accounts: u64) -> Result<(), String> {
        let initial = INITIAL_BALANCE.to_string();
        for chunk in (0..accounts).collect::<Vec<_>>().chunks(100) {
            let initial = initial.clone();
            self.attempts(|txn| {
                let (chunk, initial) = (chunk.to_vec(), initial.clone());
                async move {
                    for account in chunk {
                        txn.put(&bank::account_key(account), initial.as_bytes())
                            .await?;
                    }
                    Ok(())
                }
            })
            .await?;
        }
        Ok(())
    }

    async fn transfer(&self, from: u64, to: u64, amount: i64) -> Result<u32, String> {
        // Both reads in one batch, both writes with the commit: one round
        // to read, one consensus round to commit (in one phase when the
        // two accounts share a range, in parallel when they do not).
        self.attempts(|txn| async move {
            let (from_key, to_key) = (bank::account_key(from), bank::account_key(to));
            let gets = vec![
                Request::Get {
                    key: from_key.clone(),
                },
                Request::Get {
                    key: to_key.clone(),
                },
            ];
            let mut balances = Vec::with_capacity(2);
            for response in txn.read_batch(gets).await? {
                match response {
                    Response::Get { value } => balances.push(balance(value)?),
                    other => return Err(invalid(format!("a read answered {other:?}"))),
                }
            }
            let [a, b] = balances[..] else {
                return Err(invalid(format!("two reads answered {}", balances.len())));
            };
            let writes = vec![
                Request::Put {
                    key: from_key,
                    value: (a - amount).to_string().into_bytes(),
                },
                Request::Put {
                    key: to_key,
                    value: (b + amount).to_string().into_bytes(),
                },
            ];
            txn.write_batch_and_commit(writes).await.map(|_| ())
        })
        .await
        .map(|((), attempts)| attempts)
    }

    async fn sum(&self, accounts: Vec<u64>) -> Result<(i64, u32), String> {
        self.attempts(|txn| {
            let accounts = accounts.clone();
            async move {
                let mut sum = 0;
                for account in accounts {
                    sum += read(&txn, account).await?;
                }
                Ok(sum)
            }
        })
        .await
    }

    async fn total(&self) -> Result<i64, String> {
        let (start, end) = bank::account_span();
        self.attempts(|txn| {
            let (start, end) = (start.clone(), end.clone());
            async move {
                let mut total = 0;
                for (_, value) in txn.scan(&start, &end, 0).await? {
                    total += balance(Some(value))?;
                }
                Ok(total)
            }
        })
        .await
        .map(|(total, _)| total)
    }
}

pub async fn run_bank(args: BankArgs) -> Result<()> {
    let config = BankConfig {
        accounts: args.accounts,
        concurrency: args.concurrency,
        duration: Duration::from_secs(args.duration),
        read_percent: args.read_percent,
        seed: args.seed,
    };
    config.validate().map_err(|e| anyhow!("{e}"))?;
    let splits = bank::split_points(args.accounts, args.ranges);
    against_cluster(args.host, args.certs_dir, &splits, |ds, clock| async move {
        drive(Target { ds, clock }, &config, args.json).await
    })
    .await
}

async fn drive(target: Target, config: &BankConfig, json: bool) -> Result<()> {
    let summary = bank::run(target, config, |committed, elapsed| {
        eprintln!(
            "{:>6.1}s  {committed:>8} committed  {:>8.1} txn/s",
            elapsed.as_secs_f64(),
            committed as f64 / elapsed.as_secs_f64().max(f64::EPSILON)
        )
    })
    .await
    .map_err(|e| anyhow!("{e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{}", summary.render_text());
        for error in &summary.first_errors {
            println!("error: {error}");
        }
    }
    if !summary.consistent() {
        bail!(
            "the bank lost money: total {} (expected {}), {} wrong read-only sums",
            summary.total,
            summary.expected_total,
            summary.wrong_sums
        );
    }
    Ok(())
}
