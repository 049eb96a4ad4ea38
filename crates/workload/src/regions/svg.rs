//! The chart of `bench regions --svg FILE`: one horizontal bar per cell
//! (its p50), a thin line to its p99, and its floor marked by a red tick.
//! Hand-written SVG 1.1, no dependency.
//!
//! Owns: the drawing. Does not own: the figures (`report`).

use super::report::CellResult;

const LABEL_WIDTH: f64 = 330.0;
const PLOT_WIDTH: f64 = 560.0;
const ROW: f64 = 18.0;
const TOP: f64 = 40.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG document of `results`.
pub fn render(results: &[CellResult], title: &str) -> String {
    let max = results
        .iter()
        .flat_map(|r| [r.p50_ms, r.p99_ms, r.floor_ms])
        .fold(1.0_f64, f64::max);
    let x = |ms: f64| LABEL_WIDTH + ms / max * PLOT_WIDTH;
    let height = TOP + ROW * results.len() as f64 + 40.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 60.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"18\" font-size=\"14\">{}</text>\n\
         <text x=\"10\" y=\"32\" fill=\"#555\">bar: p50; line: to p99; red tick: floor (ms, scale 0 to {:.0} ms)</text>\n",
        escape(title),
        max
    );
    for (i, r) in results.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let colour = match r.op.as_str() {
            "read" => "#4e79a7",
            _ => "#f28e2b",
        };
        let label = format!(
            "{} {} {} ({})",
            r.client_region,
            r.label(),
            r.op,
            r.survival
        );
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LABEL_WIDTH - 6.0,
            y + 12.0,
            escape(&label)
        ));
        out.push_str(&format!(
            "<rect x=\"{LABEL_WIDTH}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\n",
            y + 3.0,
            (x(r.p50_ms) - LABEL_WIDTH).max(0.5),
            ROW - 6.0
        ));
        out.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#333\"/>\n",
            x(r.p50_ms),
            y + ROW / 2.0,
            x(r.p99_ms),
            y + ROW / 2.0
        ));
        out.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"red\" stroke-width=\"2\"/>\n",
            x(r.floor_ms),
            y + 1.0,
            x(r.floor_ms),
            y + ROW - 1.0
        ));
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{:.1}</text>\n",
            x(r.p50_ms.max(r.p99_ms)) + 4.0,
            y + 12.0,
            r.p50_ms
        ));
    }
    out.push_str("</svg>\n");
    out
}
