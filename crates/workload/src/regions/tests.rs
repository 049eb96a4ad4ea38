//! The regions benchmark against an in-memory target: floors, the
//! conformance rule, the driver's cells and routing, and the report forms.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::*;

fn demo() -> Topology {
    let mut rtt_ms = BTreeMap::new();
    for (a, b, ms) in [
        ("us-east1", "us-west1", 66.0),
        ("us-east1", "europe-west1", 64.0),
        ("us-west1", "europe-west1", 146.0),
    ] {
        rtt_ms.insert((a.to_string(), b.to_string()), ms);
    }
    Topology {
        regions: vec!["us-east1".into(), "us-west1".into(), "europe-west1".into()],
        intra_region_rtt_ms: 1.0,
        rtt_ms,
        max_offset_ms: 500.0,
    }
}

fn cell(survival: Survival, client: &str, locality: Locality, op: Op) -> Cell {
    Cell {
        survival,
        client_region: client.into(),
        locality,
        op,
    }
}

#[test]
fn floors_follow_the_matrix_and_the_zone_configs() {
    let t = demo();
    let f = |s, c, l, o| t.floor(&cell(s, c, l, o)).ms;
    use Locality::*;
    use Op::*;
    use Survival::*;
    // Home rows: local reads, a local quorum under ZONE, the nearest other
    // region under REGION (us-west1's nearest is us-east1, 66 ms).
    assert_eq!(f(Zone, "us-west1", RbrHome, Read), 0.0);
    assert_eq!(f(Zone, "us-west1", RbrHome, Write), 1.0);
    assert_eq!(f(Region, "us-west1", RbrHome, Write), 66.0);
    assert_eq!(f(Region, "us-east1", RbrHome, Write), 64.0);
    // Remote rows: a round trip to read, two to update.
    let remote = RbrRemote("europe-west1".into());
    assert_eq!(f(Zone, "us-west1", remote.clone(), Read), 146.0);
    assert_eq!(f(Zone, "us-west1", remote.clone(), Write), 293.0);
    assert_eq!(f(Region, "us-west1", remote, Write), 2.0 * 146.0 + 64.0);
    // REGIONAL BY TABLE in the primary region.
    assert_eq!(f(Zone, "europe-west1", Rbt, Read), 64.0);
    assert_eq!(f(Zone, "us-east1", Rbt, Read), 0.0);
    // GLOBAL: local reads, writes that wait out the lead.
    assert_eq!(f(Zone, "us-west1", Global, Read), 0.0);
    let g = t.floor(&cell(Zone, "us-west1", Global, Read));
    assert_eq!(g.built_ms, 0.0);
    let w = t.floor(&cell(Zone, "us-west1", Global, Write));
    assert_eq!(w.ms, 2.0 * 66.0 + 500.0 + 66.0);
    assert_eq!(w.built_ms, w.ms);
    assert!(w.terms.contains("commit wait"), "{}", w.terms);
}

fn range(start: &str, replicas: &[&str], voters: Option<&[&str]>, lh: &str) -> RangePlacement {
    let regions = |rs: &[&str]| rs.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    RangePlacement {
        range_id: 7,
        start_key: start.into(),
        replicas: regions(replicas),
        voters: voters.map(regions),
        leaseholder: Some(lh.into()),
    }
}

#[test]
fn conformance_follows_partitions_and_survival() {
    let t = demo();
    let (e, w, eu) = ("us-east1", "us-west1", "europe-west1");
    let west = "/Table/104/1/String(\"us-west1\")";
    let zone = range(west, &[w, w, w, e, eu], Some(&[w, w, w]), w);
    assert_eq!(converge::home_region(&t, &zone), w);
    assert!(converge::problems(&t, Survival::Zone, &zone).is_empty());
    // The lease elsewhere, a voter outside the home region.
    let bad = range(west, &[w, w, w, e, eu], Some(&[w, w, e]), e);
    let problems = converge::problems(&t, Survival::Zone, &bad);
    assert_eq!(problems.len(), 2, "{problems:?}");
    // REGION survival: 2 at home, 5 voters; a table span is homed in the
    // primary region.
    let region = range("/Table/105", &[e, e, w, w, eu], Some(&[e, e, w, w, eu]), e);
    assert!(converge::problems(&t, Survival::Region, &region).is_empty());
    assert!(!converge::problems(&t, Survival::Zone, &region).is_empty());
    // What SHOW RANGES gives (no voters) is still checked by counts.
    let unknown = range("/Table/105", &[e, e, w], None, e);
    assert_eq!(converge::problems(&t, Survival::Region, &unknown).len(), 2);
    assert_eq!(converge::table_problems(&t, Survival::Zone, &[]).len(), 1);
}

/// Statements by (gateway region, database).
type Log = Rc<RefCell<Vec<(String, String, String)>>>;

struct FakeConn {
    region: String,
    database: String,
    log: Log,
}

impl SqlConn for FakeConn {
    async fn query(&mut self, sql: &str) -> Result<Rows, String> {
        self.log
            .borrow_mut()
            .push((self.region.clone(), self.database.clone(), sql.to_string()));
        if sql.contains("WHERE id = 1001") && sql.starts_with("UPDATE") {
            return Err("injected failure".into());
        }
        Ok(vec![vec![Some("v".into())]])
    }
}

struct Fake {
    log: Log,
    converged: bool,
}

impl RegionsTarget for Fake {
    type Conn = FakeConn;

    async fn connect(&self, region: &str, database: &str) -> Result<FakeConn, String> {
        Ok(FakeConn {
            region: region.into(),
            database: database.into(),
            log: self.log.clone(),
        })
    }

    async fn placement(
        &self,
        _conn: &mut FakeConn,
        _table: &str,
    ) -> Result<Vec<RangePlacement>, String> {
        let (e, w, eu) = ("us-east1", "us-west1", "europe-west1");
        let lh = if self.converged { e } else { w };
        Ok(vec![range("/Table/104", &[e, e, e, w, eu], None, lh)])
    }
}

fn config(survivals: Vec<Survival>, clients: &[&str]) -> RegionsConfig {
    RegionsConfig {
        topology: demo(),
        client_regions: clients.iter().map(|c| c.to_string()).collect(),
        survivals,
        length: CellLength::Ops(3),
        rows: 2,
        converge_timeout: Duration::from_millis(600),
    }
}

#[tokio::test]
async fn the_driver_measures_every_cell_from_its_region() {
    let log: Log = Rc::default();
    let fake = Fake {
        log: log.clone(),
        converged: true,
    };
    let cfg = config(vec![Survival::Zone], &["us-west1"]);
    let mut steps = Vec::new();
    let results = run(&fake, &cfg, |p| {
        if let Progress::Step(s) = p {
            steps.push(s)
        }
    })
    .await
    .unwrap();
    // rbr home, 2 remote, rbt, global; read and write each.
    assert_eq!(results.len(), 10);
    assert!(results.iter().all(|r| r.converged && r.survival == "zone"));
    assert!(steps.iter().any(|s| s.contains("converged")), "{steps:?}");
    let log = log.borrow();
    // Each region's rows are loaded from its own gateway.
    for (i, region) in ["us-east1", "us-west1", "europe-west1"].iter().enumerate() {
        assert!(log.iter().any(|(r, db, sql)| r == region
            && db == "bench_zone"
            && sql.starts_with("INSERT INTO rbr")
            && sql.contains(&format!("({}, 'row", i * 1000))));
    }
    // Measured ops run on the us-west1 gateway only; home rows are 1000+.
    let ops: Vec<&String> = log
        .iter()
        .filter(|(_, _, sql)| sql.starts_with("SELECT v") || sql.starts_with("UPDATE"))
        .map(|(r, _, sql)| {
            assert_eq!(r, "us-west1");
            sql
        })
        .collect();
    // 3 counted ops and 1 warm-up per cell.
    assert_eq!(ops.len(), 40);
    assert!(ops[0].contains("FROM rbr WHERE id = 1000"), "{}", ops[0]);
    // The failing home-row write: counted as errors, not timed.
    let home_write = &results[1];
    assert_eq!(
        (home_write.locality.as_str(), home_write.op.as_str()),
        ("regional_by_row_home", "write")
    );
    assert!(home_write.errors > 0 && home_write.first_error.is_some());
    let json: serde_json::Value = serde_json::from_str(&report::to_json(&results)).unwrap();
    for cell in json.as_array().unwrap() {
        for key in [
            "client_region",
            "locality",
            "op",
            "survival",
            "p50_ms",
            "p99_ms",
            "floor_ms",
        ] {
            assert!(cell.get(key).is_some(), "{key} missing in {cell}");
        }
    }
    let text = report::render_text(&results);
    assert!(text.contains("rbr remote (europe-west1)"), "{text}");
    let svg = svg::render(&results, "test");
    assert_eq!(svg.matches("<rect x=").count(), results.len());
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
}

#[tokio::test]
async fn placement_that_does_not_converge_is_reported_and_measured_anyway() {
    let fake = Fake {
        log: Rc::default(),
        converged: false,
    };
    let cfg = config(vec![Survival::Zone, Survival::Region], &["us-east1"]);
    let mut steps = Vec::new();
    let results = run(&fake, &cfg, |p| {
        if let Progress::Step(s) = p {
            steps.push(s)
        }
    })
    .await
    .unwrap();
    assert_eq!(results.len(), 20);
    assert!(results.iter().all(|r| !r.converged));
    assert!(
        steps.iter().any(|s| s.contains("did NOT converge")),
        "{steps:?}"
    );
    assert!(report::render_text(&results).contains("WARNING"));
}

#[test]
fn bad_configs_are_refused() {
    let mut cfg = config(vec![Survival::Zone], &["mars-north1"]);
    assert!(cfg.validate().unwrap_err().contains("mars-north1"));
    cfg.client_regions = vec!["us-east1".into()];
    cfg.topology.regions.truncate(2);
    cfg.survivals = vec![Survival::Region];
    assert!(cfg.validate().unwrap_err().contains("3 regions"));
}
