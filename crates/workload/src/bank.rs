//! The bank workload (`meridian bench bank`): accounts `bank/` + the
//! account number as 8 zero-padded decimal digits, each holding its
//! balance as ASCII decimal, [`INITIAL_BALANCE`] to start. Each write
//! transaction moves a random amount between two random accounts (it reads
//! both and writes both); a share of the transactions (`read_percent`)
//! only read and sum 10 random accounts (all of them, and then the sum is
//! checked, when there are at most 10). At the end one transaction reads
//! every account, and the total must equal accounts × [`INITIAL_BALANCE`].
//!
//! This module owns the key layout, the driver and its summary. It does not
//! run transactions itself: a [`BankTarget`] does (the CLI's, over
//! Meridian's transaction coordinator).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::WorkloadError;

/// Every account's balance at the start.
pub const INITIAL_BALANCE: i64 = 1000;

/// How many accounts a read-only transaction sums.
pub const SUMMED_ACCOUNTS: usize = 10;

/// The key of account `n`.
pub fn account_key(n: u64) -> Vec<u8> {
    format!("bank/{n:08}").into_bytes()
}

/// Where the accounts' keys start and end: `[bank/, bank0)`.
pub fn account_span() -> (Vec<u8>, Vec<u8>) {
    (b"bank/".to_vec(), b"bank0".to_vec())
}

/// `ranges - 1` keys that cut the accounts into `ranges` parts.
pub fn split_points(accounts: u64, ranges: usize) -> Vec<Vec<u8>> {
    let ranges = (ranges as u64).clamp(1, accounts);
    (1..ranges)
        .map(|part| account_key(part * accounts / ranges))
        .collect()
}

#[derive(Debug, Clone)]
pub struct BankConfig {
    pub accounts: u64,
    pub concurrency: usize,
    pub duration: Duration,
    pub read_percent: u8,
    pub seed: u64,
}

impl BankConfig {
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.accounts < 2 {
            return Err(WorkloadError::TooFewAccounts(self.accounts));
        }
        if self.concurrency == 0 {
            return Err(WorkloadError::ZeroConcurrency);
        }
        if self.read_percent > 100 {
            return Err(WorkloadError::ReadPercentOutOfRange(self.read_percent));
        }
        if self.duration.is_zero() {
            return Err(WorkloadError::ZeroDuration);
        }
        Ok(())
    }
}

/// What the bank drives: each call is one transaction, retried by the
/// target until it commits; `Ok` carries how many attempts it took.
pub trait BankTarget: Clone + Send + Sync + 'static {
    /// Writes every account with [`INITIAL_BALANCE`] (in as many
    /// transactions as the target likes).
    fn create(&self, accounts: u64)
        -> impl std::future::Future<Output = Result<(), String>> + Send;

    /// Moves `amount` from account `from` to account `to`.
    fn transfer(
        &self,
        from: u64,
        to: u64,
        amount: i64,
    ) -> impl std::future::Future<Output = Result<u32, String>> + Send;

    /// The sum of `accounts`' balances, read in one transaction.
    fn sum(
        &self,
        accounts: Vec<u64>,
    ) -> impl std::future::Future<Output = Result<(i64, u32), String>> + Send;

    /// The sum of every account, read in one transaction.
    fn total(&self) -> impl std::future::Future<Output = Result<i64, String>> + Send;
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct BankSummary {
    pub seconds: f64,
    pub committed: u64,
    /// Attempts beyond the first, over all committed transactions.
    pub retries: u64,
    /// Transactions that never committed (the target gave up).
    pub failed: u64,
    pub txn_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Read-only sums that could not exist. Only a sum of every account
    /// has a known right answer (transfers move money in and out of any
    /// subset), so read-only transactions are checked when there are at
    /// most [`SUMMED_ACCOUNTS`] accounts and they read them all.
    pub wrong_sums: u64,
    pub total: i64,
    pub expected_total: i64,
    pub first_errors: Vec<String>,
}

impl BankSummary {
    /// Whether the run kept the money: the total and every full sum right.
    pub fn consistent(&self) -> bool {
        self.total == self.expected_total && self.wrong_sums == 0
    }

    pub fn render_text(&self) -> String {
        format!(
            "committed {} in {:.1}s ({:.1} txn/s), retries {}, failed {}\n\
             commit latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             total {} (expected {}){}",
            self.committed,
            self.seconds,
            self.txn_per_sec,
            self.retries,
            self.failed,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.total,
            self.expected_total,
            if self.wrong_sums > 0 {
                format!(", {} wrong read-only sums", self.wrong_sums)
            } else {
                String::new()
            }
        )
    }
}

#[derive(Default)]
struct Tally {
    latency: Option<Histogram<u64>>,
    committed: u64,
    retries: u64,
    failed: u64,
    wrong_sums: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn record(&mut self, started: Instant, outcome: Result<u32, String>) {
        match outcome {
            Ok(attempts) => {
                let us = started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
                // Bounded at an hour: a stuck transaction is recorded as that.
                self.latency
                    .get_or_insert_with(|| {
                        Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
                    })
                    .saturating_record(us);
                self.committed += 1;
                self.retries += u64::from(attempts.saturating_sub(1));
            }
            Err(e) => {
                self.failed += 1;
                if self.first_errors.len() < 5 && !self.first_errors.contains(&e) {
                    self.first_errors.push(e);
                }
            }
        }
    }
}

/// Creates the accounts, runs the workload for the configured duration
/// (calling `on_progress` with the committed count about every second),
/// then reads the total.
pub async fn run<T: BankTarget>(
    target: T,
    config: &BankConfig,
    mut on_progress: impl FnMut(u64, Duration) + Send,
) -> Result<BankSummary, WorkloadError> {
    config.validate()?;
    let expected_total = config.accounts as i64 * INITIAL_BALANCE;
    let mut tally = Tally::default();
    if let Err(e) = target.create(config.accounts).await {
        tally.failed += 1;
        tally
            .first_errors
            .push(format!("creating the accounts: {e}"));
    }
    let tally = Arc::new(Mutex::new(tally));
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..config.concurrency {
        let (target, tally, config) = (target.clone(), tally.clone(), config.clone());
        workers.spawn(async move {
            let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(w as u64));
            while Instant::now() < deadline {
                let started = Instant::now();
                if rng.random_range(0..100u8) < config.read_percent {
                    let all = config.accounts <= SUMMED_ACCOUNTS as u64;
                    let accounts: Vec<u64> = if all {
                        (0..config.accounts).collect()
                    } else {
                        (0..SUMMED_ACCOUNTS)
                            .map(|_| rng.random_range(0..config.accounts))
                            .collect()
                    };
                    let outcome = target.sum(accounts).await;
                    let mut tally = tally.lock().await;
                    if let Ok((sum, _)) = &outcome {
                        if all && *sum != config.accounts as i64 * INITIAL_BALANCE {
                            tally.wrong_sums += 1;
                        }
                    }
                    tally.record(started, outcome.map(|(_, attempts)| attempts));
                } else {
                    let from = rng.random_range(0..config.accounts);
                    let to = (from + rng.random_range(1..config.accounts)) % config.accounts;
                    let amount = rng.random_range(1..=100);
                    let outcome = target.transfer(from, to, amount).await;
                    tally.lock().await.record(started, outcome);
                }
            }
        });
    }
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(_) => {}
            },
            _ = ticker.tick() => {
                let committed = tally.lock().await.committed;
                on_progress(committed, start.elapsed());
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let mut tally = tally.lock().await;
    let total = match target.total().await {
        Ok(total) => total,
        Err(e) => {
            tally.first_errors.push(format!("reading the total: {e}"));
            i64::MIN
        }
    };
    let ms = |h: &Option<Histogram<u64>>, q: f64| {
        h.as_ref()
            .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
    };
    Ok(BankSummary {
        seconds,
        committed: tally.committed,
        retries: tally.retries,
        failed: tally.failed,
        txn_per_sec: tally.committed as f64 / seconds.max(f64::EPSILON),
        p50_ms: ms(&tally.latency, 0.5),
        p99_ms: ms(&tally.latency, 0.99),
        max_ms: tally
            .latency
            .as_ref()
            .map_or(0.0, |h| h.max() as f64 / 1000.0),
        wrong_sums: tally.wrong_sums,
        total,
        expected_total,
        first_errors: tally.first_errors.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_sort_by_number_and_fit_the_span() {
        let (start, end) = account_span();
        let keys: Vec<Vec<u8>> = [0, 7, 10, 99_999_999].map(account_key).to_vec();
        assert_eq!(keys[0], b"bank/00000000");
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert!(keys.iter().all(|k| start <= *k && *k < end));
    }

    #[test]
    fn split_points_cut_the_accounts_evenly() {
        assert_eq!(split_points(100, 1), Vec::<Vec<u8>>::new());
        assert_eq!(split_points(100, 4), [25, 50, 75].map(account_key).to_vec());
        assert_eq!(
            split_points(2, 10),
            vec![account_key(1)],
            "one range per account at most"
        );
    }

    #[test]
    fn a_bad_config_is_refused() {
        let good = BankConfig {
            accounts: 10,
            concurrency: 1,
            duration: Duration::from_secs(1),
            read_percent: 10,
            seed: 1,
        };
        assert!(good.validate().is_ok());
        let one = BankConfig {
            accounts: 1,
            ..good.clone()
        };
        assert!(matches!(
            one.validate(),
            Err(WorkloadError::TooFewAccounts(1))
        ));
        let reads = BankConfig {
            read_percent: 101,
            ..good
        };
        assert!(reads.validate().is_err());
    }
}
