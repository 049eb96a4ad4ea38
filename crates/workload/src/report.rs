//! What a run reports: a progress line each second and a summary at the end.
//!
//! This module owns the figures (ops per second, percentiles in
//! milliseconds) computed from recorded stats, and their text and JSON forms.
//! It does not own the recording ([`crate::stats`]) nor the timing of
//! reports ([`crate::kv::run`]).
//!
//! The text forms follow `cockroach workload run kv` column for column, so
//! output from the two reads side by side: fixed-width columns under a header
//! whose underscores mark the column edges.
//!
//! Ops are successful ops; failed ones are counted as errors only (see
//! [`crate::stats`]). Rates divide by wall-clock time.

use std::fmt::{self, Write as _};
use std::time::Duration;

use serde::Serialize;

use crate::kv::KvConfig;
use crate::stats::{OpStats, Stats};

/// One progress report: the last interval's rate and latencies, with the
/// cumulative op and error counts.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressLine {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Failed ops since the run started (cumulative, as cockroach prints).
    pub errors: u64,
    /// Successful ops per second over the last interval.
    pub interval_ops_per_sec: f64,
    /// Successful ops since the run started.
    pub cumulative_ops: u64,
    /// Latency percentiles of the last interval's successful ops, reads and
    /// writes together; zero when the interval had none.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl ProgressLine {
    /// The column header printed above progress lines.
    pub fn header() -> &'static str {
        "_elapsed___errors__ops/sec(inst)___ops/sec(cum)__p50(ms)__p95(ms)__p99(ms)_pMax(ms)"
    }

    /// Successful ops per second since the run started.
    pub fn cumulative_ops_per_sec(&self) -> f64 {
        per_sec(self.cumulative_ops, self.elapsed)
    }

    /// The line for an interval `interval_elapsed` long that ended at
    /// `elapsed`, whose stats are `interval`, after `cumulative` (which does
    /// not yet include the interval).
    pub(crate) fn new(
        elapsed: Duration,
        interval_elapsed: Duration,
        interval: &Stats,
        cumulative: &Stats,
    ) -> Self {
        let total = interval.total();
        let ops = total.ops();
        let latencies = Latencies::of(&total);
        Self {
            elapsed,
            errors: cumulative.errors() + interval.errors(),
            interval_ops_per_sec: per_sec(ops, interval_elapsed),
            cumulative_ops: cumulative.total().ops() + ops,
            p50_ms: latencies.p50_ms,
            p95_ms: latencies.p95_ms,
            p99_ms: latencies.p99_ms,
            max_ms: latencies.max_ms,
        }
    }
}

/// One row under [`ProgressLine::header`], same width.
impl fmt::Display for ProgressLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:7.1}s {:8} {:14.1} {:14.1} {:8.1} {:8.1} {:8.1} {:8.1}",
            self.elapsed.as_secs_f64(),
            self.errors,
            self.interval_ops_per_sec,
            self.cumulative_ops_per_sec(),
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.max_ms,
        )
    }
}

/// The figures of one op kind (or of all) over a whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpSummary {
    /// Successful ops.
    pub ops: u64,
    /// Failed ops.
    pub errors: u64,
    /// Successful ops per second of the run's elapsed time.
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl OpSummary {
    pub(crate) fn new(stats: &OpStats, elapsed: Duration) -> Self {
        let latencies = Latencies::of(stats);
        Self {
            ops: stats.ops(),
            errors: stats.errors,
            ops_per_sec: per_sec(stats.ops(), elapsed),
            p50_ms: latencies.p50_ms,
            p95_ms: latencies.p95_ms,
            p99_ms: latencies.p99_ms,
            max_ms: latencies.max_ms,
            mean_ms: latencies.mean_ms,
        }
    }
}

/// The result of a kv run: its config, and figures per op kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvSummary {
    pub concurrency: usize,
    pub duration_secs: f64,
    pub read_percent: u8,
    pub keys: u64,
    pub value_bytes: usize,
    /// Printed so a run's op stream can be replayed.
    pub seed: u64,
    /// From the start until the last worker stopped; a little more than
    /// `duration_secs`, since ops in flight at the deadline finish.
    pub elapsed_secs: f64,
    pub read: OpSummary,
    pub write: OpSummary,
    pub total: OpSummary,
    /// The first few distinct error messages, in the order first seen.
    pub first_errors: Vec<String>,
}

impl KvSummary {
    pub(crate) fn new(config: &KvConfig, elapsed: Duration, stats: &Stats) -> Self {
        Self {
            concurrency: config.concurrency,
            duration_secs: config.duration.as_secs_f64(),
            read_percent: config.read_percent,
            keys: config.keys,
            value_bytes: config.value_bytes,
            seed: config.seed,
            elapsed_secs: elapsed.as_secs_f64(),
            read: OpSummary::new(&stats.read, elapsed),
            write: OpSummary::new(&stats.write, elapsed),
            total: OpSummary::new(&stats.total(), elapsed),
            first_errors: stats.first_errors.clone(),
        }
    }

    /// The column header of [`KvSummary::render_text`].
    pub fn header() -> &'static str {
        "_elapsed___errors_____ops(total)___ops/sec(cum)__avg(ms)__p50(ms)__p95(ms)__p99(ms)_pMax(ms)__result"
    }

    /// The final block: a header, a row for reads and one for writes (each
    /// left out when that kind had neither ops nor errors), a row for the
    /// total, and the first error messages if any.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(Self::header());
        out.push('\n');
        for (name, op) in [("read", &self.read), ("write", &self.write)] {
            // A kind with errors but no ops still gets a row: its errors are
            // the news.
            if op.ops > 0 || op.errors > 0 {
                self.render_row(&mut out, name, op);
            }
        }
        self.render_row(&mut out, "total", &self.total);
        if !self.first_errors.is_empty() {
            out.push_str("\nfirst errors:\n");
            for message in &self.first_errors {
                let _ = writeln!(out, "  {message}");
            }
        }
        out
    }

    fn render_row(&self, out: &mut String, name: &str, op: &OpSummary) {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{:7.1}s {:8} {:14} {:14.1} {:8.1} {:8.1} {:8.1} {:8.1} {:8.1}  {}",
            self.elapsed_secs,
            op.errors,
            op.ops,
            op.ops_per_sec,
            op.mean_ms,
            op.p50_ms,
            op.p95_ms,
            op.p99_ms,
            op.max_ms,
            name,
        );
    }

    /// The summary as pretty-printed JSON, for scripts that compare runs.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a summary has only numbers and strings")
    }
}

/// Percentiles and mean of a histogram, in milliseconds; zeros when empty.
struct Latencies {
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

impl Latencies {
    fn of(stats: &OpStats) -> Self {
        let h = &stats.latency;
        if h.is_empty() {
            return Self {
                p50_ms: 0.0,
                p95_ms: 0.0,
                p99_ms: 0.0,
                max_ms: 0.0,
                mean_ms: 0.0,
            };
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// `ops` per second of `elapsed`; zero for no time at all, so a report never
/// carries NaN or infinity.
fn per_sec(ops: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        ops as f64 / secs
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::OpKind;

    /// Within HDR's three significant digits (0.1%), plus float noise.
    fn assert_close(actual: f64, expected: f64, what: &str) {
        let tolerance = expected.abs() * 0.001 + 1e-9;
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual}, expected {expected} within 0.1%"
        );
    }

    fn config() -> KvConfig {
        KvConfig {
            concurrency: 4,
            duration: Duration::from_secs(10),
            read_percent: 95,
            keys: 1000,
            value_bytes: 16,
            seed: 7,
        }
    }

    /// Reads of 1..=100 ms, writes of 200 ms and 300 ms, and 3 write errors,
    /// over 10 s.
    fn known_stats() -> Stats {
        let mut stats = Stats::new();
        for n in 1..=100 {
            stats.record(OpKind::Read, Duration::from_millis(n), Ok(()));
        }
        stats.record(OpKind::Write, Duration::from_millis(200), Ok(()));
        stats.record(OpKind::Write, Duration::from_millis(300), Ok(()));
        for _ in 0..3 {
            stats.record(
                OpKind::Write,
                Duration::from_millis(1),
                Err("range unavailable".into()),
            );
        }
        stats
    }

    #[test]
    fn op_summary_math() {
        let summary = KvSummary::new(&config(), Duration::from_secs(10), &known_stats());

        let read = &summary.read;
        assert_eq!((read.ops, read.errors), (100, 0));
        assert_close(read.ops_per_sec, 10.0, "read ops/sec");
        assert_close(read.p50_ms, 50.0, "read p50");
        assert_close(read.p95_ms, 95.0, "read p95");
        assert_close(read.p99_ms, 99.0, "read p99");
        assert_close(read.max_ms, 100.0, "read max");
        assert_close(read.mean_ms, 50.5, "read mean");

        let write = &summary.write;
        assert_eq!((write.ops, write.errors), (2, 3));
        assert_close(write.ops_per_sec, 0.2, "write ops/sec");
        assert_close(write.p50_ms, 200.0, "write p50");
        assert_close(write.max_ms, 300.0, "write max");
        assert_close(write.mean_ms, 250.0, "write mean");

        let total = &summary.total;
        assert_eq!((total.ops, total.errors), (102, 3));
        assert_close(total.ops_per_sec, 10.2, "total ops/sec");
        assert_close(total.p50_ms, 51.0, "total p50");
        assert_close(total.p99_ms, 200.0, "total p99");
        assert_close(total.max_ms, 300.0, "total max");
        assert_close(total.mean_ms, (5050.0 + 500.0) / 102.0, "total mean");

        assert_eq!(summary.first_errors, vec!["range unavailable".to_string()]);
        assert_eq!(summary.elapsed_secs, 10.0);
        assert_eq!(
            (summary.concurrency, summary.read_percent, summary.seed),
            (4, 95, 7)
        );
    }

    #[test]
    fn empty_stats_give_zeros_not_nan() {
        let summary = KvSummary::new(&config(), Duration::ZERO, &Stats::new());
        for op in [&summary.read, &summary.write, &summary.total] {
            assert_eq!(op.ops, 0);
            for value in [
                op.ops_per_sec,
                op.p50_ms,
                op.p95_ms,
                op.p99_ms,
                op.max_ms,
                op.mean_ms,
            ] {
                assert_eq!(value, 0.0);
            }
        }
    }

    #[test]
    fn progress_line_figures_and_width() {
        let mut cumulative = Stats::new();
        for _ in 0..10 {
            cumulative.record(OpKind::Write, Duration::from_millis(5), Ok(()));
        }
        cumulative.record(OpKind::Write, Duration::from_millis(5), Err("a".into()));
        let mut interval = Stats::new();
        for n in 1..=4 {
            interval.record(OpKind::Read, Duration::from_millis(n), Ok(()));
        }
        interval.record(OpKind::Read, Duration::from_millis(5), Err("b".into()));

        let line = ProgressLine::new(
            Duration::from_secs(2),
            Duration::from_millis(500),
            &interval,
            &cumulative,
        );
        assert_eq!(line.errors, 2, "errors are cumulative");
        assert_eq!(line.cumulative_ops, 14);
        assert_close(line.interval_ops_per_sec, 8.0, "interval ops/sec");
        assert_close(line.cumulative_ops_per_sec(), 7.0, "cumulative ops/sec");
        assert_close(line.p50_ms, 2.0, "p50");
        assert_close(line.max_ms, 4.0, "max");

        let text = line.to_string();
        assert_eq!(
            text,
            "    2.0s        2            8.0            7.0      2.0      4.0      4.0      4.0"
        );
        assert_eq!(text.len(), ProgressLine::header().len());
    }

    #[test]
    fn text_has_header_and_a_row_per_kind_with_ops() {
        let text = KvSummary::new(&config(), Duration::from_secs(10), &known_stats()).render_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], KvSummary::header());
        assert!(lines[1].ends_with("  read"), "{text}");
        assert!(lines[2].ends_with("  write"), "{text}");
        assert!(lines[3].ends_with("  total"), "{text}");
        let name_column = KvSummary::header().len() - "__result".len();
        for row in &lines[1..=3] {
            assert_eq!(
                row.rfind("  "),
                Some(name_column),
                "columns line up: {text}"
            );
        }
        // p99 is 200 ms read back at HDR precision: 200.063 ms.
        assert_eq!(
            lines[3],
            "   10.0s        3            102           10.2     54.4     51.0     97.0    200.1    300.0  total"
        );
        assert!(
            text.contains("first errors:\n  range unavailable\n"),
            "{text}"
        );
    }

    #[test]
    fn text_skips_idle_kinds() {
        let mut stats = Stats::new();
        stats.record(OpKind::Write, Duration::from_millis(1), Ok(()));
        let text = KvSummary::new(&config(), Duration::from_secs(1), &stats).render_text();
        assert!(!text.contains("read"), "{text}");
        assert!(text.contains("  write\n"), "{text}");
        assert!(text.contains("  total\n"), "{text}");
        assert!(!text.contains("first errors"), "{text}");

        let mut failing = Stats::new();
        failing.record(OpKind::Read, Duration::from_millis(1), Err("down".into()));
        let text = KvSummary::new(&config(), Duration::from_secs(1), &failing).render_text();
        assert!(
            text.contains("  read\n"),
            "a kind with only errors keeps its row: {text}"
        );
    }

    #[test]
    fn json_has_the_fields() {
        let summary = KvSummary::new(&config(), Duration::from_secs(10), &known_stats());
        let json: serde_json::Value = serde_json::from_str(&summary.to_json()).unwrap();
        for field in [
            "concurrency",
            "duration_secs",
            "read_percent",
            "keys",
            "value_bytes",
            "seed",
            "elapsed_secs",
            "first_errors",
        ] {
            assert!(json.get(field).is_some(), "missing {field} in {json}");
        }
        for kind in ["read", "write", "total"] {
            for field in [
                "ops",
                "errors",
                "ops_per_sec",
                "p50_ms",
                "p95_ms",
                "p99_ms",
                "max_ms",
                "mean_ms",
            ] {
                assert!(
                    json[kind].get(field).is_some(),
                    "missing {kind}.{field} in {json}"
                );
            }
        }
        assert_eq!(json["read"]["ops"], 100);
        assert_eq!(json["write"]["errors"], 3);
        assert_eq!(json["total"]["ops"], 102);
        assert_eq!(json["concurrency"], 4);
        assert_eq!(json["first_errors"][0], "range unavailable");
    }
}
