//! The kv workload behind `meridian bench kv`, modelled on `cockroach
//! workload run kv`.
//!
//! This module owns the workload's shape and its driver: the config, the key
//! of each row ([`kv_key`]) and the split points that pre-split the key space
//! ([`split_points`]), and [`run`], which keeps `concurrency` requests in
//! flight until the deadline and reports as it goes. It does not own how a
//! request reaches the cluster ([`KvTarget`], implemented by the CLI), nor
//! splitting ranges (the caller splits at [`split_points`] before running).
//!
//! # Keys and values
//!
//! Row `i` of the `keys` rows has the key `table_prefix(KV_TABLE_ID)`
//! `int(i)` (see [`meridian_keys::space`]): keys sort by `i` and lie in the
//! user key space, so a run can be pre-split into equal ranges. Each op picks
//! `i` uniformly; a read is a get, a write a put of `value_bytes` random bytes.
//! A read of a row never written is a miss, not an error.
//!
//! # Recording without a global lock
//!
//! Workers record into stats shards, `min(concurrency, 64)` of them, worker
//! `w` into shard `w % shards`; a shard's mutex is held for one histogram
//! increment, so workers rarely contend. Shards rather than one histogram per
//! worker: a histogram costs tens of kilobytes, which thousands of workers
//! would multiply. Each tick the reporter swaps every shard for an empty one
//! (the lock is held for a pointer swap) and merges outside the lock.
//!
//! # Stopping
//!
//! A worker checks the deadline before each op, so the run stops within one
//! op's latency of the deadline; an op in flight finishes and is counted. A
//! target that never answers therefore holds the run open: targets are
//! expected to time their calls out. Dropping the future returned by [`run`]
//! aborts every worker.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::stats::{OpKind, Stats};

pub use crate::report::{KvSummary, OpSummary, ProgressLine};
pub use crate::WorkloadError;

/// The table id of the workload's rows: above any id the system reserves,
/// and fixed so that reruns address the same rows.
pub const KV_TABLE_ID: u64 = 100;

/// How often [`run`] reports progress.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Beyond this many workers, more shards only cost memory.
const MAX_SHARDS: usize = 64;

/// Row numbers are encoded as signed integers, so `keys` stops here.
const MAX_KEYS: u64 = i64::MAX as u64 + 1;

/// The shape of a kv run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvConfig {
    /// Workers, each with one request in flight.
    pub concurrency: usize,
    /// How long workers start new ops.
    pub duration: Duration,
    /// Percentage of ops that are reads, `0..=100`; the rest are writes.
    pub read_percent: u8,
    /// Rows in the key space: ops pick keys uniformly from `[0, keys)`.
    pub keys: u64,
    /// Size of each written value.
    pub value_bytes: usize,
    /// Worker `w` draws its ops from a generator seeded with `seed + w`.
    pub seed: u64,
}

impl KvConfig {
    /// Checks that the config can run.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.concurrency == 0 {
            return Err(WorkloadError::ZeroConcurrency);
        }
        if self.read_percent > 100 {
            return Err(WorkloadError::ReadPercentOutOfRange(self.read_percent));
        }
        if self.keys == 0 {
            return Err(WorkloadError::ZeroKeys);
        }
        if self.keys > MAX_KEYS {
            return Err(WorkloadError::TooManyKeys {
                keys: self.keys,
                max: MAX_KEYS,
            });
        }
        if self.duration.is_zero() {
            return Err(WorkloadError::ZeroDuration);
        }
        if self.value_bytes > meridian_keys::MAX_VALUE_BYTES {
            return Err(WorkloadError::ValueTooLarge {
                bytes: self.value_bytes,
                max: meridian_keys::MAX_VALUE_BYTES,
            });
        }
        Ok(())
    }
}

/// What the workload drives. Implemented by the CLI over Meridian's
/// DistSender; an `Err` is counted as a failed op, and its message may be
/// shown in the summary.
pub trait KvTarget: Clone + Send + Sync + 'static {
    fn put(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send;

    fn get(
        &self,
        key: Vec<u8>,
    ) -> impl std::future::Future<Output = Result<Option<Vec<u8>>, String>> + Send;
}

/// The key of row `i`: the workload table's prefix, then `i` in the
/// ascending integer encoding, so that keys sort by `i`.
///
/// # Panics
///
/// If `i` exceeds `i64::MAX` (a validated config never asks for one).
pub fn kv_key(i: u64) -> Vec<u8> {
    let row = i64::try_from(i).expect("kv row numbers fit in an i64");
    let mut key = meridian_keys::space::table_prefix(KV_TABLE_ID);
    meridian_keys::encoding::encode_int_asc(&mut key, row);
    key
}

/// Split points that cut the rows `[0, keys)` into `ranges` parts whose
/// sizes differ by at most one: `ranges - 1` keys in ascending order, empty
/// when `ranges <= 1`. Asking for more ranges than rows gives one range per
/// row (`keys - 1` points), since a split point can be used only once.
pub fn split_points(keys: u64, ranges: usize) -> Vec<Vec<u8>> {
    let ranges = (ranges as u64).min(keys);
    // Multiplying in u128: `part * keys` overflows u64 for large key spaces.
    (1..ranges)
        .map(|part| kv_key((u128::from(part) * u128::from(keys) / u128::from(ranges)) as u64))
        .collect()
}

/// Runs the kv workload against `target` and returns its summary, calling
/// `on_progress` every [`PROGRESS_INTERVAL`]. Must be called within a tokio
/// runtime. Fails only on an invalid config; the target's errors are
/// counted in the summary.
pub async fn run<T: KvTarget>(
    target: T,
    config: &KvConfig,
    on_progress: impl FnMut(&ProgressLine) + Send,
) -> Result<KvSummary, WorkloadError> {
    run_with_interval(target, config, PROGRESS_INTERVAL, on_progress).await
}

/// [`run`] with a chosen progress interval, so tests see progress within a
/// short run.
pub(crate) async fn run_with_interval<T: KvTarget>(
    target: T,
    config: &KvConfig,
    progress_interval: Duration,
    mut on_progress: impl FnMut(&ProgressLine) + Send,
) -> Result<KvSummary, WorkloadError> {
    config.validate()?;
    let shards: Vec<Arc<Mutex<Stats>>> = (0..config.concurrency.min(MAX_SHARDS))
        .map(|_| Arc::new(Mutex::new(Stats::new())))
        .collect();
    let start = Instant::now();
    let deadline = start + config.duration;

    let mut workers = JoinSet::new();
    for w in 0..config.concurrency {
        let shard = Arc::clone(&shards[w % shards.len()]);
        workers.spawn(worker(
            target.clone(),
            OpPicker::new(config, w),
            shard,
            deadline,
        ));
    }

    let mut reporter = Reporter::new(start);
    let mut ticker = tokio::time::interval_at(start + progress_interval, progress_interval);
    // After a stall, report once rather than in a burst of near-empty lines.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = workers.join_next() => match joined {
                None => break,
                Some(Ok(())) => {}
                // A panicking target is a bug: surface it rather than report
                // figures missing a worker.
                Some(Err(err)) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                // Cancelled: only when the runtime shuts down under us.
                Some(Err(_)) => {}
            },
            _ = ticker.tick() => on_progress(&reporter.tick(&shards, Instant::now())),
        }
    }
    let elapsed = start.elapsed();
    Ok(reporter.finish(&shards, config, elapsed))
}

/// One worker: ops back to back until the deadline.
async fn worker<T: KvTarget>(
    target: T,
    mut picker: OpPicker,
    shard: Arc<Mutex<Stats>>,
    deadline: Instant,
) {
    while Instant::now() < deadline {
        let op = picker.next_op();
        let kind = op.kind();
        let started = Instant::now();
        let outcome = match op {
            Op::Read { key } => target.get(key).await.map(|_| ()),
            Op::Write { key, value } => target.put(key, value).await,
        };
        let latency = started.elapsed();
        lock(&shard).record(kind, latency, outcome);
        // A target that answers without ever waiting (a cache, an in-memory
        // store) would otherwise keep this thread until the deadline,
        // starving the reporter and, on one thread, every other worker.
        tokio::task::yield_now().await;
    }
}

/// A shard's stats stay consistent even if a holder panicked: every update
/// is a single increment.
fn lock(shard: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    shard.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One operation to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Read { key: Vec<u8> },
    Write { key: Vec<u8>, value: Vec<u8> },
}

impl Op {
    fn kind(&self) -> OpKind {
        match self {
            Op::Read { .. } => OpKind::Read,
            Op::Write { .. } => OpKind::Write,
        }
    }
}

/// One worker's stream of ops, reproducible from its seed.
struct OpPicker {
    rng: SmallRng,
    keys: u64,
    read_percent: u8,
    value_bytes: usize,
}

impl OpPicker {
    fn new(config: &KvConfig, worker: usize) -> Self {
        Self {
            rng: SmallRng::seed_from_u64(config.seed.wrapping_add(worker as u64)),
            keys: config.keys,
            read_percent: config.read_percent,
            value_bytes: config.value_bytes,
        }
    }

    fn next_op(&mut self) -> Op {
        let key = kv_key(self.rng.random_range(0..self.keys));
        if self.rng.random_range(0..100u8) < self.read_percent {
            Op::Read { key }
        } else {
            let mut value = vec![0; self.value_bytes];
            self.rng.fill_bytes(&mut value);
            Op::Write { key, value }
        }
    }
}

/// Collects the shards' stats into interval and cumulative figures.
struct Reporter {
    start: Instant,
    last_tick: Instant,
    /// Since the last tick.
    interval: Stats,
    /// From the start to the last tick.
    cumulative: Stats,
    /// Swapped into a shard in exchange for its stats, so a shard's lock is
    /// held only for the swap.
    spare: Stats,
}

impl Reporter {
    fn new(start: Instant) -> Self {
        Self {
            start,
            last_tick: start,
            interval: Stats::new(),
            cumulative: Stats::new(),
            spare: Stats::new(),
        }
    }

    /// Moves what the shards recorded into the interval.
    fn collect(&mut self, shards: &[Arc<Mutex<Stats>>]) {
        for shard in shards {
            std::mem::swap(&mut *lock(shard), &mut self.spare);
            self.interval.merge(&self.spare);
            self.spare.reset();
        }
    }

    /// Ends the interval at `now`: its progress line, then its stats folded
    /// into the cumulative ones.
    fn tick(&mut self, shards: &[Arc<Mutex<Stats>>], now: Instant) -> ProgressLine {
        self.collect(shards);
        let line = ProgressLine::new(
            now - self.start,
            now - self.last_tick,
            &self.interval,
            &self.cumulative,
        );
        self.cumulative.merge(&self.interval);
        self.interval.reset();
        self.last_tick = now;
        line
    }

    /// The summary of everything recorded, including the unreported tail.
    fn finish(
        mut self,
        shards: &[Arc<Mutex<Stats>>],
        config: &KvConfig,
        elapsed: Duration,
    ) -> KvSummary {
        self.collect(shards);
        self.cumulative.merge(&self.interval);
        KvSummary::new(config, elapsed, &self.cumulative)
    }
}

#[cfg(test)]
mod tests;
