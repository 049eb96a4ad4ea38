//! The bank workload: transfers between accounts in transactions
//! (`kvclient::txn::run_txn`), with read-only transactions summing every
//! account along the way.
//!
//! Owns: setting the accounts up, driving transfer and reader clients
//! (choices from the seed), classifying each transaction, and the checks:
//! every read-only transaction that committed saw exactly the starting
//! total, and so does a final read once the faults are over. An ambiguous
//! transfer may or may not have happened; either way the total holds,
//! since a transfer moves money and creates none. Does not own: the
//! coordinator (`kvclient::txn`, under test) nor the faults.
//!
//! Balances are ASCII decimal, as `meridian bench bank` keeps them; they
//! may go negative (the test is about atomicity and isolation, not
//! overdrafts).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_kvapi::Request;
use meridian_kvclient::txn::{run_txn, Txn, TxnError};

use super::history::{counts, excerpt, Counts, Entry, History, Outcome};
use super::rng::Rng;
use super::Stop;
use crate::{ClientError, DistSender};

#[derive(Debug, Clone)]
pub struct BankConfig {
    pub accounts: Vec<Vec<u8>>,
    /// Each account's starting balance.
    pub initial: i64,
    pub transfer_clients: usize,
    pub reader_clients: usize,
    /// A client gives up on a transaction (all its attempts) after this.
    pub txn_timeout: Duration,
}

impl BankConfig {
    pub fn total(&self) -> i64 {
        self.initial * self.accounts.len() as i64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankOp {
    Transfer {
        from: String,
        to: String,
        amount: i64,
    },
    /// A read-only transaction reading every account.
    ReadAll,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankResult {
    Transferred,
    Balances(Vec<i64>),
}

pub type BankHistory = History<BankOp, BankResult>;

fn balance(value: Option<Vec<u8>>) -> Result<i64, TxnError> {
    let Some(bytes) = value else { return Ok(0) };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    text.parse().map_err(|_| {
        TxnError::Client(ClientError::InvalidRequest(format!(
            "balance {text:?} is not a number"
        )))
    })
}

async fn read(txn: &Txn, key: &[u8]) -> Result<i64, TxnError> {
    balance(txn.get(key).await?)
}

/// Writes every account's starting balance in one transaction.
pub async fn setup(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    config: &BankConfig,
) -> Result<(), TxnError> {
    let accounts = config.accounts.clone();
    let initial = config.initial.to_string();
    run_txn(ds, clock, |txn| {
        let (accounts, initial) = (accounts.clone(), initial.clone());
        async move {
            for account in &accounts {
                txn.put(account, initial.as_bytes()).await?;
            }
            Ok(())
        }
    })
    .await
}

/// Reads every account in one transaction.
pub async fn read_all(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    accounts: &[Vec<u8>],
) -> Result<Vec<i64>, TxnError> {
    run_txn(ds, clock, |txn| async move {
        let mut balances = Vec::with_capacity(accounts.len());
        for account in accounts {
            balances.push(read(&txn, account).await?);
        }
        Ok(balances)
    })
    .await
}

/// Runs the transfer and reader clients until `stop` is raised. Client `i` uses
/// `clocks[i % clocks.len()]` as its gateway clock.
pub async fn run(
    ds: DistSender,
    clocks: Vec<Arc<HybridClock>>,
    history: BankHistory,
    seed: u64,
    stop: Stop,
    config: BankConfig,
) {
    let mut tasks = Vec::new();
    for client in 0..config.transfer_clients + config.reader_clients {
        let reader = client >= config.transfer_clients;
        let clock = clocks[client % clocks.len()].clone();
        let (ds, history, config, stop) =
            (ds.clone(), history.clone(), config.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::fork(seed, 2000 + client as u64);
            let mut process = client as u64;
            let processes = (config.transfer_clients + config.reader_clients) as u64;
            while !stop.is_stopped() {
                let ambiguous = if reader {
                    read_once(&ds, &clock, &history, process, &config).await
                } else {
                    transfer_once(&ds, &clock, &history, process, &config, &mut rng).await
                };
                if ambiguous {
                    process += processes;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a bank client panicked");
    }
}

fn classify<T>(
    answer: Result<Result<T, TxnError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Outcome<T> {
    match answer {
        Ok(Ok(value)) => Outcome::Ok(value),
        Ok(Err(e @ (TxnError::Ambiguous(_) | TxnError::Client(ClientError::Timeout { .. })))) => {
            Outcome::Ambiguous(e.to_string())
        }
        Ok(Err(e)) => Outcome::Fail(e.to_string()),
        Err(_) => Outcome::Ambiguous(format!("no commit within {timeout:?}")),
    }
}

async fn transfer_once(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    history: &BankHistory,
    process: u64,
    config: &BankConfig,
    rng: &mut Rng,
) -> bool {
    let from = rng.below(config.accounts.len() as u64) as usize;
    let to =
        (from + 1 + rng.below(config.accounts.len() as u64 - 1) as usize) % config.accounts.len();
    let amount = rng.range(1, 20) as i64;
    let (from_key, to_key) = (&config.accounts[from], &config.accounts[to]);
    let op = BankOp::Transfer {
        from: String::from_utf8_lossy(from_key).into_owned(),
        to: String::from_utf8_lossy(to_key).into_owned(),
        amount,
    };
    // Half the transfers write with their commit (one phase on one range,
    // a parallel commit on two), half write first and commit after.
    let with_commit = rng.chance(50);
    let invoked = history.now();
    let body = run_txn(ds, clock, |txn| async move {
        let a = read(&txn, from_key).await?;
        let b = read(&txn, to_key).await?;
        let (a, b) = ((a - amount).to_string(), (b + amount).to_string());
        if with_commit {
            let writes = vec![put(from_key, a.as_bytes()), put(to_key, b.as_bytes())];
            txn.write_batch_and_commit(writes).await?;
        } else {
            txn.put(from_key, a.as_bytes()).await?;
            txn.put(to_key, b.as_bytes()).await?;
        }
        Ok(BankResult::Transferred)
    });
    let outcome = classify(
        tokio::time::timeout(config.txn_timeout, body).await,
        config.txn_timeout,
    );
    let ambiguous = outcome.is_ambiguous();
    history.record(process, op, invoked, outcome);
    ambiguous
}

async fn read_once(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    history: &BankHistory,
    process: u64,
    config: &BankConfig,
) -> bool {
    let invoked = history.now();
    let answer =
        tokio::time::timeout(config.txn_timeout, read_all(ds, clock, &config.accounts)).await;
    let outcome = classify(answer, config.txn_timeout);
    let outcome = match outcome {
        Outcome::Ok(balances) => Outcome::Ok(BankResult::Balances(balances)),
        Outcome::Fail(why) => Outcome::Fail(why),
        Outcome::Ambiguous(why) => Outcome::Ambiguous(why),
    };
    let ambiguous = outcome.is_ambiguous();
    history.record(process, BankOp::ReadAll, invoked, outcome);
    ambiguous
}

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub transfers: Counts,
    pub reads: Counts,
    /// Why transactions failed definitely (distinct reasons, at most 3).
    pub failures: Vec<String>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transfers: {}; read-only sums: {}",
            self.transfers, self.reads
        )?;
        if !self.failures.is_empty() {
            write!(f, "; failures: {}", self.failures.join(" | "))?;
        }
        Ok(())
    }
}

/// Checks that every committed read-only transaction, and the final read
/// (`final_balances`, after the faults), saw the starting total.
pub fn check(
    entries: &[Entry<BankOp, BankResult>],
    config: &BankConfig,
    final_balances: &[i64],
) -> Result<Summary, String> {
    let total = config.total();
    for e in entries {
        if let Outcome::Ok(BankResult::Balances(b)) = &e.outcome {
            let sum: i64 = b.iter().sum();
            if sum != total {
                return Err(format!(
                    "a read-only transaction saw a total of {sum}, not {total}: balances {b:?}\n  {e}\n\
                     the history around it:\n{}",
                    excerpt(
                        entries,
                        e.invoked.saturating_sub(Duration::from_secs(2)),
                        e.completed,
                        40
                    )
                ));
            }
        }
    }
    let sum: i64 = final_balances.iter().sum();
    if sum != total {
        let last = entries
            .iter()
            .map(|e| e.completed)
            .max()
            .unwrap_or_default();
        return Err(format!(
            "after the faults the accounts hold {sum}, not {total}: {final_balances:?}\n\
             the last operations:\n{}",
            excerpt(
                entries,
                last.saturating_sub(Duration::from_secs(3)),
                last,
                40
            )
        ));
    }
    let (transfers, reads): (Vec<_>, Vec<_>) = entries
        .iter()
        .cloned()
        .partition(|e| matches!(e.op, BankOp::Transfer { .. }));
    let mut failures: Vec<String> = Vec::new();
    for e in entries {
        if let Outcome::Fail(why) = &e.outcome {
            let why: String = why.chars().take(160).collect();
            if failures.len() < 3 && !failures.contains(&why) {
                failures.push(why);
            }
        }
    }
    Ok(Summary {
        transfers: counts(&transfers),
        reads: counts(&reads),
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BankConfig {
        BankConfig {
            accounts: vec![b"a".to_vec(), b"b".to_vec()],
            initial: 100,
            transfer_clients: 1,
            reader_clients: 1,
            txn_timeout: Duration::from_secs(1),
        }
    }

    fn read(at: u64, balances: Vec<i64>) -> Entry<BankOp, BankResult> {
        Entry {
            process: 1,
            op: BankOp::ReadAll,
            invoked: Duration::from_millis(at),
            completed: Duration::from_millis(at + 1),
            outcome: Outcome::Ok(BankResult::Balances(balances)),
        }
    }

    #[test]
    fn exact_sums_pass_and_a_wrong_sum_anywhere_fails() {
        let c = config();
        let good = vec![read(0, vec![100, 100]), read(5, vec![93, 107])];
        assert!(check(&good, &c, &[50, 150]).is_ok());
        let torn = vec![read(0, vec![100, 100]), read(5, vec![93, 100])];
        let e = check(&torn, &c, &[100, 100]).unwrap_err();
        assert!(e.contains("total of 193, not 200"), "{e}");
        let e = check(&good, &c, &[100, 99]).unwrap_err();
        assert!(e.contains("hold 199, not 200"), "{e}");
    }

    #[test]
    fn a_failed_read_only_transaction_is_not_held_to_the_total() {
        let mut failed = read(0, vec![1, 2]);
        failed.outcome = Outcome::Fail("gave up".into());
        assert!(check(&[failed], &config(), &[100, 100]).is_ok());
    }
}
