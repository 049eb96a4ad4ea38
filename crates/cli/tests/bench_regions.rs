//! `meridian bench regions` in a small configuration: its own 9-node
//! demo cluster, one client region (us-west1), ZONE survival only, a few
//! ops per cell. Asserts what the injected latency makes certain (orderings
//! tens of milliseconds apart) and the report's shape, never a time.

mod support;

use std::process::Command;

use support::*;

#[test]
fn from_us_west1_home_rows_are_faster_than_remote_rows_and_every_cell_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let svg = tmp.path().join("chart.svg");
    let out = Command::new(BIN)
        .args([
            "bench",
            "regions",
            "--client-regions",
            "us-west1",
            "--survival",
            "zone",
            "--ops",
            "5",
            "--rows",
            "3",
            "--converge-timeout",
            "30",
            "--json",
            "--svg",
            svg.to_str().unwrap(),
        ])
        .env("TMPDIR", tmp.path())
        .env_remove("MERIDIAN_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!("{stderr}");
    let cells: Vec<serde_json::Value> = serde_json::from_str(&stdout).expect(&stdout);
    // rbr home, rbr remote in us-east1 and europe-west1, rbt, global; read
    // and write each.
    assert_eq!(cells.len(), 10, "{stdout}");
    let find = |locality: &str, row_region: Option<&str>, op: &str| {
        cells
            .iter()
            .find(|c| {
                c["locality"] == locality
                    && c["op"] == op
                    && row_region.is_none_or(|r| c["row_region"] == r)
            })
            .unwrap_or_else(|| panic!("no cell {locality} {row_region:?} {op}: {stdout}"))
    };
    for c in &cells {
        assert_eq!(c["client_region"], "us-west1");
        assert_eq!(c["survival"], "zone");
        assert_eq!(c["errors"], 0, "{c}");
        for key in ["p50_ms", "p99_ms", "floor_ms"] {
            assert!(c[key].is_number(), "{key} in {c}");
        }
    }
    let p50 = |c: &serde_json::Value| c["p50_ms"].as_f64().unwrap();
    // A home-row write against one of a row homed in europe-west1 (146 ms
    // away). Not yet against us-east1 (66 ms away): today every statement
    // from us-west1 also pays round trips to the primary region, us-east1,
    // whatever rows it touches (a home-row read takes about 200 ms in a
    // debug build, where its floor is 0), so those two cost about the same.
    let home = find("regional_by_row_home", None, "write");
    let far = find("regional_by_row_remote", Some("europe-west1"), "write");
    assert!(p50(home) < p50(far), "home {home} vs remote {far}");
    // Floors: a home read is local, a GLOBAL read is local by design, a
    // remote read costs at least the 66 ms round trip.
    assert_eq!(find("regional_by_row_home", None, "read")["floor_ms"], 0.0);
    assert_eq!(find("global", None, "read")["floor_ms"], 0.0);
    assert_eq!(find("regional_by_table", None, "read")["floor_ms"], 66.0);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(chart.matches("<rect x=").count(), 10, "{chart}");
    assert!(stderr.contains("[10/10]"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "chart.svg")
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
