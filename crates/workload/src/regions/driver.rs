//! Running `bench regions`: set up, wait for placement, measure each cell.
//!
//! Owns: the order of steps and the measuring loop. Does not own: the SQL
//! text (`setup`), the conformance rule (`converge`), the floors
//! (`floor`), or how SQL reaches the cluster ([`RegionsTarget`]).
//!
//! Ops run one at a time per cell, so a latency is one statement's round
//! trip through the gateway and nothing queues behind it. The first op of
//! each cell is a warm-up, not recorded: it fills the gateway's caches
//! (range locations, descriptors) as a running application's would be.
//! A failed op is counted, not timed (see `stats`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::report::CellResult;
use super::setup;
use super::{
    converge, CellLength, Progress, RegionsConfig, RegionsTarget, SqlConn, Survival, Topology,
};
use crate::stats::OpStats;

/// How often placement is polled while waiting for it.
const POLL: Duration = Duration::from_millis(500);

/// Runs the benchmark; `progress` hears each step and each op.
pub async fn run<T: RegionsTarget>(
    target: &T,
    config: &RegionsConfig,
    mut progress: impl FnMut(Progress),
) -> Result<Vec<CellResult>, String> {
    config.validate()?;
    let topology = &config.topology;
    let primary = topology.primary().to_string();
    for &survival in &config.survivals {
        progress(Progress::Step(format!(
            "creating {} (SURVIVE {} FAILURE)",
            survival.database(),
            survival.name().to_uppercase()
        )));
        let mut admin = target.connect(&primary, "defaultdb").await?;
        let db = survival.database();
        for sql in setup::database_statements(topology, survival, &db) {
            admin.query(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
        }
        load(target, topology, &db, config.rows, &mut |step| {
            progress(Progress::Step(step))
        })
        .await?;
    }
    let mut converged = BTreeMap::new();
    for &survival in &config.survivals {
        let ok = wait_converged(target, config, survival, &mut progress).await?;
        converged.insert(survival, ok);
    }

    let cells = config.cells();
    let total = cells.len();
    let mut conns: BTreeMap<(String, Survival), T::Conn> = BTreeMap::new();
    let mut results = Vec::with_capacity(total);
    for (index, cell) in cells.into_iter().enumerate() {
        let key = (cell.client_region.clone(), cell.survival);
        if !conns.contains_key(&key) {
            let conn = target
                .connect(&cell.client_region, &cell.survival.database())
                .await?;
            conns.insert(key.clone(), conn);
        }
        let conn = conns.get_mut(&key).expect("inserted above");
        let ids = setup::cell_ids(topology, &cell, config.rows);
        let mut stats = OpStats::new();
        let mut first_error = None;
        let started = Instant::now();
        let mut seq = 0u64;
        loop {
            let done = match config.length {
                CellLength::Ops(n) => stats.ops() + stats.errors >= n,
                CellLength::Duration(d) => seq > 1 && started.elapsed() >= d,
            };
            if done {
                break;
            }
            let id = ids[(seq as usize) % ids.len()];
            let sql = setup::op_statement(&cell, id, seq);
            let began = Instant::now();
            let outcome = conn.query(&sql).await;
            let took = began.elapsed();
            seq += 1;
            if seq == 1 {
                continue; // the warm-up
            }
            match outcome {
                Ok(_) => stats.record_latency(took),
                Err(e) => {
                    stats.errors += 1;
                    first_error.get_or_insert(format!("{sql}: {e}"));
                }
            }
            progress(Progress::Measuring {
                index,
                total,
                cell: cell.clone(),
                ops: stats.ops(),
                last_ms: took.as_secs_f64() * 1000.0,
            });
        }
        let ms = |q: f64| stats.latency.value_at_quantile(q) as f64 / 1000.0;
        let (p50, p99) = if stats.ops() > 0 {
            (ms(0.50), ms(0.99))
        } else {
            (0.0, 0.0)
        };
        results.push(CellResult::new(
            &cell,
            &topology.floor(&cell),
            stats.ops(),
            stats.errors,
            first_error,
            p50,
            p99,
            converged[&cell.survival],
        ));
    }
    Ok(results)
}

/// Creates the tables of database `db` and writes `rows` rows in each
/// (per region in REGIONAL BY ROW), each region's REGIONAL BY ROW rows
/// from a gateway in that region.
pub(crate) async fn load<T: RegionsTarget>(
    target: &T,
    topology: &Topology,
    db: &str,
    rows: u64,
    progress: &mut impl FnMut(String),
) -> Result<(), String> {
    let mut conn = target.connect(topology.primary(), db).await?;
    for sql in setup::table_statements() {
        conn.query(&sql).await.map_err(|e| format!("{sql}: {e}"))?;
    }
    progress(format!("loading {db}"));
    for table in ["rbt", "global"] {
        let sql = setup::table_insert(table, rows);
        conn.query(&sql)
            .await
            .map_err(|e| format!("loading {table}: {e}"))?;
    }
    for region in &topology.regions {
        let mut conn = target.connect(region, db).await?;
        let sql = setup::rbr_insert(topology, region, rows);
        conn.query(&sql)
            .await
            .map_err(|e| format!("loading rbr rows of {region}: {e}"))?;
    }
    Ok(())
}

/// What is wrong with the placement of the tables of the database `conn`
/// is on (empty: it conforms); `Err` when placement could not be read.
pub(crate) async fn placement_problems<T: RegionsTarget>(
    target: &T,
    conn: &mut T::Conn,
    topology: &Topology,
    survival: Survival,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (table, _) in setup::TABLES {
        let ranges = target
            .placement(conn, table)
            .await
            .map_err(|e| format!("{table}: {e}"))?;
        problems.extend(
            converge::table_problems(topology, survival, &ranges)
                .into_iter()
                .map(|p| format!("{table}: {p}")),
        );
    }
    Ok(problems)
}

/// Polls placement until every table of `survival`'s database conforms
/// (true) or the timeout passes (false, with the problems reported).
async fn wait_converged<T: RegionsTarget>(
    target: &T,
    config: &RegionsConfig,
    survival: Survival,
    progress: &mut impl FnMut(Progress),
) -> Result<bool, String> {
    let topology = &config.topology;
    let db = survival.database();
    let mut conn = target.connect(topology.primary(), &db).await?;
    let started = Instant::now();
    let mut last = Vec::new();
    loop {
        let problems = placement_problems(target, &mut conn, topology, survival)
            .await
            .unwrap_or_else(|e| vec![e]);
        if problems.is_empty() {
            progress(Progress::Step(format!(
                "placement of {db} converged in {:.1} s",
                started.elapsed().as_secs_f64()
            )));
            return Ok(true);
        }
        if started.elapsed() >= config.converge_timeout {
            let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
            progress(Progress::Step(format!(
                "placement of {db} did NOT converge within {:?} ({} problems, e.g. {}); measuring anyway",
                config.converge_timeout,
                problems.len(),
                shown.join("; ")
            )));
            return Ok(false);
        }
        if problems != last {
            progress(Progress::Step(format!(
                "waiting for placement of {db}: {} problems, e.g. {}",
                problems.len(),
                problems[0]
            )));
            last = problems;
        }
        tokio::time::sleep(POLL).await;
    }
}
