//! Latency and error accounting of a running workload.
//!
//! This module owns how one op's outcome is recorded and how the records of
//! many workers are merged. It does not own when to record (the driver in
//! [`crate::kv`]) nor how figures are computed and printed
//! ([`crate::report`]).
//!
//! Latencies live in HDR histograms, in microseconds, with three significant
//! digits: a percentile read back is within 0.1% of the true value at any
//! scale, and merging two histograms is exact (counts add bucket by bucket).
//! So percentiles are only ever taken from merged histograms, never averaged
//! across workers.
//!
//! An op either succeeds, and its latency is recorded, or fails, and only an
//! error is counted: a failed call's latency says nothing about the system's
//! speed (it may be a timeout, or an immediate refusal). The ops of an
//! [`OpStats`] are therefore its successful ops.

use std::time::Duration;

use hdrhistogram::Histogram;

/// Precision of every latency histogram.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Latencies above this (one hour) are recorded as this, so a stuck call
/// cannot make a histogram grow without bound.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// How many distinct error messages a run keeps. A failing cluster tends to
/// fail the same way millions of times; the first few kinds are what a reader
/// needs.
pub(crate) const MAX_FIRST_ERRORS: usize = 5;

/// The kinds of operation a workload issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpKind {
    Read,
    Write,
}

/// Latencies of the successful ops of one kind, and the count of failed ones.
#[derive(Debug, Clone)]
pub(crate) struct OpStats {
    /// Microseconds per successful op.
    pub(crate) latency: Histogram<u64>,
    pub(crate) errors: u64,
}

impl OpStats {
    pub(crate) fn new() -> Self {
        // Auto-resizing: the histogram starts small and grows to the largest
        // latency seen, so idle shards cost little memory.
        let latency =
            Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits is a valid precision");
        Self { latency, errors: 0 }
    }

    /// Successful ops recorded.
    pub(crate) fn ops(&self) -> u64 {
        self.latency.len()
    }

    pub(crate) fn record_latency(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_LATENCY_US);
        self.latency
            .record(us)
            .expect("auto-resizing histograms hold any value up to an hour");
    }

    pub(crate) fn merge(&mut self, other: &OpStats) {
        self.latency
            .add(&other.latency)
            .expect("auto-resizing histograms accept any other");
        self.errors += other.errors;
    }

    pub(crate) fn reset(&mut self) {
        self.latency.reset();
        self.errors = 0;
    }
}

/// Everything recorded by some workers over some time: per op kind stats and
/// the first distinct error messages.
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    pub(crate) read: OpStats,
    pub(crate) write: OpStats,
    /// Distinct messages in the order first seen, at most [`MAX_FIRST_ERRORS`].
    pub(crate) first_errors: Vec<String>,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            read: OpStats::new(),
            write: OpStats::new(),
            first_errors: Vec::new(),
        }
    }

    fn op_mut(&mut self, kind: OpKind) -> &mut OpStats {
        match kind {
            OpKind::Read => &mut self.read,
            OpKind::Write => &mut self.write,
        }
    }

    /// Records one op: its latency when it succeeded, an error otherwise.
    pub(crate) fn record(&mut self, kind: OpKind, latency: Duration, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.op_mut(kind).record_latency(latency),
            Err(message) => {
                self.op_mut(kind).errors += 1;
                note_error(&mut self.first_errors, message);
            }
        }
    }

    /// Adds everything in `other` to this.
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.read.merge(&other.read);
        self.write.merge(&other.write);
        for message in &other.first_errors {
            if self.first_errors.len() == MAX_FIRST_ERRORS {
                break;
            }
            note_error(&mut self.first_errors, message.clone());
        }
    }

    /// Empties this, keeping the histograms' allocations.
    pub(crate) fn reset(&mut self) {
        self.read.reset();
        self.write.reset();
        self.first_errors.clear();
    }

    /// Reads and writes together.
    pub(crate) fn total(&self) -> OpStats {
        let mut total = self.read.clone();
        total.merge(&self.write);
        total
    }

    /// Failed ops of every kind.
    pub(crate) fn errors(&self) -> u64 {
        self.read.errors + self.write.errors
    }
}

fn note_error(first_errors: &mut Vec<String>, message: String) {
    if first_errors.len() < MAX_FIRST_ERRORS && !first_errors.contains(&message) {
        first_errors.push(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn success_records_latency_and_failure_counts_error() {
        let mut stats = Stats::new();
        stats.record(OpKind::Read, ms(2), Ok(()));
        stats.record(OpKind::Write, ms(3), Err("boom".into()));
        assert_eq!(stats.read.ops(), 1);
        assert_eq!(stats.read.errors, 0);
        assert_eq!(
            stats.write.ops(),
            0,
            "a failed op's latency is not recorded"
        );
        assert_eq!(stats.write.errors, 1);
        assert_eq!(stats.errors(), 1);
        assert_eq!(stats.first_errors, vec!["boom".to_string()]);
    }

    #[test]
    fn first_errors_are_distinct_in_order_and_capped() {
        let mut stats = Stats::new();
        for i in 0..20 {
            stats.record(OpKind::Write, ms(1), Err(format!("error {}", i % 8)));
        }
        let expected: Vec<String> = (0..MAX_FIRST_ERRORS)
            .map(|i| format!("error {i}"))
            .collect();
        assert_eq!(stats.first_errors, expected);
        assert_eq!(
            stats.write.errors, 20,
            "every error is counted, kept or not"
        );

        let mut merged = Stats::new();
        merged.record(OpKind::Read, ms(1), Err("error 3".into()));
        merged.merge(&stats);
        assert_eq!(merged.first_errors.len(), MAX_FIRST_ERRORS);
        assert_eq!(merged.first_errors[0], "error 3");
        assert_eq!(merged.first_errors[1], "error 0");
        assert_eq!(merged.errors(), 21);
    }

    #[test]
    fn merging_split_records_equals_recording_once() {
        let mut whole = Stats::new();
        let mut odd = Stats::new();
        let mut even = Stats::new();
        for n in 1..=1000 {
            whole.record(OpKind::Read, Duration::from_micros(n * 37), Ok(()));
            let half = if n % 2 == 0 { &mut even } else { &mut odd };
            half.record(OpKind::Read, Duration::from_micros(n * 37), Ok(()));
        }
        let mut merged = Stats::new();
        merged.merge(&odd);
        merged.merge(&even);
        assert_eq!(merged.read.latency, whole.read.latency);
        assert_eq!(merged.read.ops(), 1000);
    }

    #[test]
    fn total_adds_reads_and_writes_and_reset_empties() {
        let mut stats = Stats::new();
        stats.record(OpKind::Read, ms(1), Ok(()));
        stats.record(OpKind::Write, ms(9), Ok(()));
        stats.record(OpKind::Write, ms(9), Err("x".into()));
        let total = stats.total();
        assert_eq!(total.ops(), 2);
        assert_eq!(total.errors, 1);
        assert_eq!(total.latency.max(), stats.write.latency.max());

        stats.reset();
        assert_eq!(stats.total().ops(), 0);
        assert_eq!(stats.errors(), 0);
        assert!(stats.first_errors.is_empty());
    }

    #[test]
    fn huge_latencies_are_clamped() {
        let mut stats = Stats::new();
        stats.record(OpKind::Read, Duration::from_secs(1_000_000), Ok(()));
        assert!(stats.read.latency.max() <= MAX_LATENCY_US * 1001 / 1000);
    }
}
