//! What a drill measured: each writer's recovery time and lost writes,
//! computed from its events and its row's final value, in text and JSON.
//!
//! Owns the two definitions the drill reports:
//! - **RTO** of a writer: from the failure to the acknowledgement of the
//!   first write it began at or after the failure (a write begun before
//!   that hangs through the failure does not count as recovery; its
//!   successor does). `None`: no write begun after the failure was
//!   acknowledged during the drill.
//! - **Lost writes** of a writer: its writes are serial on a row only it
//!   writes, so the row's final value must be that of its last
//!   acknowledged write, or of a later write whose outcome it does not
//!   know (it failed or timed out, and may have landed). A final value
//!   from an earlier write means every acknowledged write after that one
//!   was lost. RPO is zero when no writer lost any.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::json;

use super::Domain;
use crate::regions::{Locality, Survival};

/// How one write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    Acknowledged,
    /// An error or no answer in time: it may or may not have landed.
    Failed(String),
}

/// One write of a writer, its times from the writers' start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEvent {
    /// The write's number; it wrote the value `d<seq>`.
    pub seq: u64,
    pub started: Duration,
    pub ended: Duration,
    pub outcome: WriteOutcome,
}

/// One writer's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct WriterReport {
    pub client_region: String,
    pub locality: Locality,
    pub row: u64,
    pub rto: Option<Duration>,
    pub acknowledged: u64,
    pub failed: u64,
    pub lost: u64,
    /// The first error, if any.
    pub first_error: Option<String>,
}

impl WriterReport {
    /// The figures of a writer of `row` from its `events`, the failure at
    /// `failed_at`, and the row's `final_value` read after the drill.
    pub fn new(
        client_region: String,
        locality: Locality,
        row: u64,
        events: &[WriteEvent],
        failed_at: Duration,
        final_value: Option<&str>,
    ) -> WriterReport {
        let acked = |e: &&WriteEvent| e.outcome == WriteOutcome::Acknowledged;
        let rto = events
            .iter()
            .filter(acked)
            .find(|e| e.started >= failed_at)
            .map(|e| e.ended - failed_at);
        let acknowledged = events.iter().filter(acked).count() as u64;
        let first_error = events.iter().find_map(|e| match &e.outcome {
            WriteOutcome::Failed(why) => Some(why.clone()),
            WriteOutcome::Acknowledged => None,
        });
        // The write whose value the row holds (0: none of the drill's).
        let final_seq = final_value
            .and_then(|v| v.strip_prefix('d'))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        let lost = events
            .iter()
            .filter(acked)
            .filter(|e| e.seq > final_seq)
            .count() as u64;
        WriterReport {
            client_region,
            locality,
            row,
            rto,
            acknowledged,
            failed: events.len() as u64 - acknowledged,
            lost,
            first_error,
        }
    }
}

/// A whole drill.
#[derive(Debug, Clone, PartialEq)]
pub struct DrillReport {
    pub domain: Domain,
    pub survival: Survival,
    /// Whether placement had converged before the failure.
    pub converged: bool,
    pub failed_at: Duration,
    pub restored_at: Duration,
    /// From the restore until every lease was home; `None`: not in time.
    pub lease_return: Option<Duration>,
    pub writers: Vec<WriterReport>,
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 10.0).round() / 10.0
}

impl DrillReport {
    pub fn acknowledged_writes(&self) -> u64 {
        self.writers.iter().map(|w| w.acknowledged).sum()
    }

    pub fn lost_writes(&self) -> u64 {
        self.writers.iter().map(|w| w.lost).sum()
    }

    /// The longest RTO; `None` if some writer never recovered.
    pub fn worst_rto(&self) -> Option<Duration> {
        self.writers
            .iter()
            .map(|w| w.rto)
            .collect::<Option<Vec<_>>>()
            .and_then(|rtos| rtos.into_iter().max())
    }

    /// Whether the drill met its bars: every writer recovered and no
    /// acknowledged write was lost.
    pub fn passed(&self) -> bool {
        self.lost_writes() == 0 && self.worst_rto().is_some()
    }

    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "drill: {} {} stopped at {:.1} s, back at {:.1} s (database SURVIVE {} FAILURE{})",
            self.domain.kind(),
            self.domain.name(),
            self.failed_at.as_secs_f64(),
            self.restored_at.as_secs_f64(),
            self.survival.name().to_uppercase(),
            if self.converged {
                ""
            } else {
                "; placement had NOT converged before the failure"
            }
        );
        let _ = writeln!(
            out,
            "{:<14} {:<26} {:>10} {:>7} {:>7} {:>5}",
            "client", "table", "RTO", "acked", "failed", "lost"
        );
        for w in &self.writers {
            let rto = w
                .rto
                .map_or("none".to_string(), |d| format!("{:.0} ms", ms(d)));
            let _ = writeln!(
                out,
                "{:<14} {:<26} {:>10} {:>7} {:>7} {:>5}",
                w.client_region,
                w.locality.label(),
                rto,
                w.acknowledged,
                w.failed,
                w.lost
            );
        }
        let _ = writeln!(
            out,
            "acknowledged writes {}, lost {} (RPO {}); worst RTO {}; leases home {}",
            self.acknowledged_writes(),
            self.lost_writes(),
            if self.lost_writes() == 0 {
                "0"
            } else {
                "NOT 0"
            },
            self.worst_rto()
                .map_or("none: a writer never recovered".into(), |d| format!(
                    "{:.0} ms",
                    ms(d)
                )),
            self.lease_return
                .map_or("not within the timeout".into(), |d| format!(
                    "{:.1} s after the restore",
                    d.as_secs_f64()
                )),
        );
        out
    }

    pub fn to_json(&self) -> String {
        let rto: Vec<serde_json::Value> = self
            .writers
            .iter()
            .map(|w| {
                json!({
                    "client_region": w.client_region,
                    "locality": w.locality.name(),
                    "label": w.locality.label(),
                    "row": w.row,
                    "rto_ms": w.rto.map(ms),
                    "acknowledged": w.acknowledged,
                    "failed": w.failed,
                    "lost": w.lost,
                    "first_error": w.first_error,
                })
            })
            .collect();
        serde_json::to_string_pretty(&json!({
            "drill": self.domain.kind(),
            "target": self.domain.name(),
            "survival": self.survival.name(),
            "converged_before": self.converged,
            "failed_at_ms": ms(self.failed_at),
            "restored_at_ms": ms(self.restored_at),
            "rto_ms": rto,
            "worst_rto_ms": self.worst_rto().map(ms),
            "acknowledged_writes": self.acknowledged_writes(),
            "lost_writes": self.lost_writes(),
            "lease_return_ms": self.lease_return.map(ms),
        }))
        .expect("a JSON value serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64, started_ms: u64, ended_ms: u64, acked: bool) -> WriteEvent {
        WriteEvent {
            seq,
            started: Duration::from_millis(started_ms),
            ended: Duration::from_millis(ended_ms),
            outcome: if acked {
                WriteOutcome::Acknowledged
            } else {
                WriteOutcome::Failed("timeout".into())
            },
        }
    }

    fn report(events: &[WriteEvent], final_value: Option<&str>) -> WriterReport {
        WriterReport::new(
            "us-east1".into(),
            Locality::Global,
            0,
            events,
            Duration::from_millis(1_000),
            final_value,
        )
    }

    /// The write in flight across the failure does not end the outage;
    /// the first one begun after it does.
    #[test]
    fn rto_counts_from_the_failure_to_the_first_write_begun_after_it() {
        let events = [
            event(1, 900, 950, true),
            event(2, 950, 3_000, true),
            event(3, 3_000, 3_050, false),
            event(4, 3_100, 3_200, true),
        ];
        let r = report(&events, Some("d4"));
        assert_eq!(r.rto, Some(Duration::from_millis(2_200)));
        assert_eq!((r.acknowledged, r.failed, r.lost), (3, 1, 0));
        assert_eq!(report(&events[..3], Some("d2")).rto, None);
    }

    /// A final value from a write after the last acknowledged one (whose
    /// outcome was unknown) loses nothing; one from before it loses every
    /// acknowledged write since.
    #[test]
    fn lost_writes_are_acknowledged_writes_after_the_final_value() {
        let events = [
            event(1, 0, 10, true),
            event(2, 10, 20, true),
            event(3, 20, 30, true),
            event(4, 30, 40, false),
        ];
        assert_eq!(report(&events, Some("d3")).lost, 0);
        assert_eq!(report(&events, Some("d4")).lost, 0);
        assert_eq!(report(&events, Some("d1")).lost, 2);
        assert_eq!(report(&events, Some("row 0")).lost, 3);
        assert_eq!(report(&events, None).lost, 3);
    }
}
