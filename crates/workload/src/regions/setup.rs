//! The benchmark's databases, tables and rows: the SQL that creates and
//! loads them, and which row ids a cell cycles through.
//!
//! Owns: statements and ids. Does not own: waiting for placement
//! (`converge`) or running the statements in order (`driver`).

use super::{Cell, Locality, Survival, Topology};

/// The tables, each `(id INT PRIMARY KEY, v TEXT)`, with their locality
/// clause.
pub const TABLES: [(&str, &str); 3] = [
    ("rbr", "LOCALITY REGIONAL BY ROW"),
    ("rbt", "LOCALITY REGIONAL BY TABLE IN PRIMARY REGION"),
    ("global", "LOCALITY GLOBAL"),
];

/// REGIONAL BY ROW ids of the `i`-th region start at `i * ID_STRIDE`.
pub const ID_STRIDE: u64 = 1000;

/// Quotes an identifier-like region name as a SQL string or identifier.
fn quoted(region: &str) -> String {
    format!("\"{}\"", region.replace('"', "\"\""))
}

/// Statements run on the primary region's gateway, in any database:
/// drop what an earlier run left, create database `db`.
pub fn database_statements(topology: &Topology, survival: Survival, db: &str) -> Vec<String> {
    let others: Vec<String> = topology.regions[1..].iter().map(|r| quoted(r)).collect();
    let regions = if others.is_empty() {
        String::new()
    } else {
        format!(" REGIONS {}", others.join(", "))
    };
    vec![
        format!("DROP DATABASE IF EXISTS {db}"),
        format!(
            "CREATE DATABASE {db} PRIMARY REGION {}{regions} SURVIVE {} FAILURE",
            quoted(topology.primary()),
            survival.name().to_uppercase()
        ),
    ]
}

/// Statements run in the database: the tables.
pub fn table_statements() -> Vec<String> {
    TABLES
        .iter()
        .map(|(t, locality)| format!("CREATE TABLE {t} (id INT PRIMARY KEY, v TEXT) {locality}"))
        .collect()
}

/// The REGIONAL BY ROW ids homed in `region`.
pub fn rbr_ids(topology: &Topology, region: &str, rows: u64) -> Vec<u64> {
    let i = topology
        .regions
        .iter()
        .position(|r| r == region)
        .unwrap_or(0) as u64;
    (0..rows).map(|j| i * ID_STRIDE + j).collect()
}

/// The insert of `region`'s REGIONAL BY ROW rows (run from a gateway in
/// that region, though the region column says it anyway).
pub fn rbr_insert(topology: &Topology, region: &str, rows: u64) -> String {
    let values: Vec<String> = rbr_ids(topology, region, rows)
        .into_iter()
        .map(|id| format!("({id}, 'row {id}', '{region}')"))
        .collect();
    format!(
        "INSERT INTO rbr (id, v, region) VALUES {}",
        values.join(", ")
    )
}

/// The insert of the rows of `rbt` or `global`.
pub fn table_insert(table: &str, rows: u64) -> String {
    let values: Vec<String> = (0..rows).map(|id| format!("({id}, 'row {id}')")).collect();
    format!("INSERT INTO {table} (id, v) VALUES {}", values.join(", "))
}

/// The ids a cell cycles through.
pub fn cell_ids(topology: &Topology, cell: &Cell, rows: u64) -> Vec<u64> {
    match &cell.locality {
        Locality::RbrHome => rbr_ids(topology, &cell.client_region, rows),
        Locality::RbrRemote(home) => rbr_ids(topology, home, rows),
        Locality::Rbt | Locality::Global => (0..rows).collect(),
    }
}

/// The statement of one op of `cell` on row `id`; `seq` makes each
/// written value new.
pub fn op_statement(cell: &Cell, id: u64, seq: u64) -> String {
    let table = cell.locality.table();
    match cell.op {
        super::Op::Read => format!("SELECT v FROM {table} WHERE id = {id}"),
        super::Op::Write => format!("UPDATE {table} SET v = 'w{seq}' WHERE id = {id}"),
    }
}
