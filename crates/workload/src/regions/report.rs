//! The results of `bench regions`: one [`CellResult`] per cell, and the
//! text matrix and JSON they render as.
//!
//! Owns: figures and their forms. Does not own: the SVG chart (`svg`),
//! measuring (`driver`), floors (`floor`).
//!
//! `ratio` is p50 over the floor, left out where the floor is under 1 ms
//! (a local read's floor is 0: any figure over it is local work, not a
//! ratio). `within_target` is issue 13's target: p50 <= 1.1 x floor + 2 ms.

use serde::Serialize;

use super::floor::fmt;
use super::{Cell, Floor};

/// The figures of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellResult {
    pub client_region: String,
    /// `regional_by_row_home`, `regional_by_row_remote`,
    /// `regional_by_table`, `global`.
    pub locality: String,
    /// For REGIONAL BY ROW: where the touched rows are homed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_region: Option<String>,
    /// `read` or `write`.
    pub op: String,
    /// `zone` or `region`.
    pub survival: String,
    /// Successful ops measured (the warm-up op is not counted).
    pub ops: u64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub floor_ms: f64,
    /// The floor of what is built today (the same as `floor_ms` since
    /// GLOBAL tables were built).
    pub built_floor_ms: f64,
    pub floor_terms: String,
    pub ratio: Option<f64>,
    pub within_target: bool,
    /// Whether the database's placement converged before measuring.
    pub converged: bool,
}

impl CellResult {
    /// The result of `cell`, from its figures.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cell: &Cell,
        floor: &Floor,
        ops: u64,
        errors: u64,
        first_error: Option<String>,
        p50_ms: f64,
        p99_ms: f64,
        converged: bool,
    ) -> CellResult {
        let ratio = (floor.ms >= 1.0 && ops > 0).then(|| round2(p50_ms / floor.ms));
        CellResult {
            client_region: cell.client_region.clone(),
            locality: cell.locality.name().to_string(),
            row_region: cell.row_region().map(str::to_string),
            op: cell.op.name().to_string(),
            survival: cell.survival.name().to_string(),
            ops,
            errors,
            first_error,
            p50_ms: round2(p50_ms),
            p99_ms: round2(p99_ms),
            floor_ms: round2(floor.ms),
            built_floor_ms: round2(floor.built_ms),
            floor_terms: floor.terms.clone(),
            ratio,
            within_target: ops > 0 && p50_ms <= 1.1 * floor.ms + 2.0,
            converged,
        }
    }

    /// `rbr home`, `rbr remote (r)`, `rbt`, `global`.
    pub fn label(&self) -> String {
        match (self.locality.as_str(), &self.row_region) {
            ("regional_by_row_home", _) => "rbr home".into(),
            ("regional_by_row_remote", Some(r)) => format!("rbr remote ({r})"),
            ("regional_by_table", _) => "rbt".into(),
            (other, _) => other.into(),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The matrix as text, with a legend.
pub fn render_text(results: &[CellResult]) -> String {
    let mut out = format!(
        "{:<14} {:<26} {:<5} {:<8} {:>9} {:>9} {:>9} {:>7} {:>6}\n",
        "client_region",
        "locality",
        "op",
        "survival",
        "p50_ms",
        "p99_ms",
        "floor_ms",
        "ratio",
        "errors"
    );
    for r in results {
        let ratio = r.ratio.map_or("-".to_string(), |x| format!("{x:.2}"));
        let mark = if r.ops == 0 {
            "  (no successful op)"
        } else if r.within_target {
            ""
        } else {
            "  *"
        };
        out.push_str(&format!(
            "{:<14} {:<26} {:<5} {:<8} {:>9.1} {:>9.1} {:>9} {:>7} {:>6}{mark}\n",
            r.client_region,
            r.label(),
            r.op,
            r.survival,
            r.p50_ms,
            r.p99_ms,
            fmt(r.floor_ms),
            ratio,
            r.errors
        ));
    }
    out.push_str(
        "\nfloor: the least latency the topology allows (see floor_terms in --json).\n\
         ratio: p50 / floor (\"-\" where the floor is under 1 ms). *: p50 above 1.1 x floor + 2 ms.\n\
         reads: SELECT v FROM t WHERE id = k; writes: UPDATE t SET v = .. WHERE id = k (read, then write).\n\
         GLOBAL: reads at present time from a local replica; writes at a future timestamp, acknowledged\n\
         once the clock passed it (the lead: max offset + half the farthest round trip + 220 ms).\n",
    );
    if let Some(r) = results.iter().find(|r| !r.converged) {
        out.push_str(&format!(
            "WARNING: placement of the {} survival database had not converged when it was measured.\n",
            r.survival
        ));
    }
    for r in results.iter().filter(|r| r.first_error.is_some()) {
        out.push_str(&format!(
            "error in {} {} {} {}: {}\n",
            r.client_region,
            r.label(),
            r.op,
            r.survival,
            r.first_error.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// The results as a JSON array, one object per cell.
pub fn to_json(results: &[CellResult]) -> String {
    serde_json::to_string_pretty(results).expect("results serialize")
}
