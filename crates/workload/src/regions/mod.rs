//! `meridian bench regions`: what multi-region placement costs, per
//! client region, table locality, operation and survival goal, next to the
//! floor the topology allows.
//!
//! This module owns the benchmark's shape: the databases and tables it
//! creates ([`setup`]), when placement counts as converged ([`converge`]),
//! the cells it measures and how ([`driver`]), the floors ([`floor`]) and
//! the report in text, JSON and SVG ([`report`], [`svg`]). It does not own
//! how SQL reaches a cluster nor where replicas are: the CLI implements
//! [`RegionsTarget`] (pgwire connections, one gateway per region, and the
//! cluster's range status), and tests implement it in memory.
//!
//! One run, step by step:
//!
//! 1. For each survival goal, a database `bench_zone` / `bench_region`
//!    (`PRIMARY REGION` the first region, `REGIONS` the others) with three
//!    tables of `(id INT PRIMARY KEY, v TEXT)`: `rbr` (REGIONAL BY ROW),
//!    `rbt` (REGIONAL BY TABLE IN PRIMARY REGION) and `global` (GLOBAL).
//!    `rbr` gets `rows` rows homed in each region (ids `1000 * i + j` for
//!    the `i`-th region, written with their region column); `rbt` and
//!    `global` get `rows` rows.
//! 2. Until every range of those tables has its replicas and lease where
//!    the locality says, or `converge_timeout` passes (the run goes on and
//!    says so).
//! 3. For each cell (survival, client region, locality, op), on a
//!    connection to a gateway in the client region: one warm-up op, then
//!    `ops` ops or ops for `duration`, one at a time (latency, not
//!    throughput), cycling through the rows; each op's latency goes to an
//!    HDR histogram. Reads are `SELECT v FROM t WHERE id = k`; writes are
//!    `UPDATE t SET v = .. WHERE id = k`.
//! 4. A [`CellResult`] per cell: p50, p99, errors, the floor.

pub mod converge;
pub mod driver;
pub mod floor;
pub mod report;
pub mod setup;
pub mod svg;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::Duration;

pub use driver::run;
pub use floor::{Floor, Topology};
pub use report::CellResult;

/// A database's survival goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Survival {
    Zone,
    Region,
}

impl Survival {
    pub const ALL: [Survival; 2] = [Survival::Zone, Survival::Region];

    pub fn name(self) -> &'static str {
        match self {
            Survival::Zone => "zone",
            Survival::Region => "region",
        }
    }

    pub fn parse(text: &str) -> Option<Survival> {
        match text.to_ascii_lowercase().as_str() {
            "zone" => Some(Survival::Zone),
            "region" => Some(Survival::Region),
            _ => None,
        }
    }

    /// The benchmark's database for this goal.
    pub fn database(self) -> String {
        format!("bench_{}", self.name())
    }
}

/// Which rows of which table a cell touches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Locality {
    /// REGIONAL BY ROW rows homed in the client's region.
    RbrHome,
    /// REGIONAL BY ROW rows homed in this other region.
    RbrRemote(String),
    /// REGIONAL BY TABLE IN PRIMARY REGION.
    Rbt,
    Global,
}

impl Locality {
    /// The name in JSON: `regional_by_row_home`, `regional_by_row_remote`,
    /// `regional_by_table`, `global`.
    pub fn name(&self) -> &'static str {
        match self {
            Locality::RbrHome => "regional_by_row_home",
            Locality::RbrRemote(_) => "regional_by_row_remote",
            Locality::Rbt => "regional_by_table",
            Locality::Global => "global",
        }
    }

    /// A short label: `rbr home`, `rbr remote (europe-west1)`, `rbt`,
    /// `global`.
    pub fn label(&self) -> String {
        match self {
            Locality::RbrHome => "rbr home".into(),
            Locality::RbrRemote(r) => format!("rbr remote ({r})"),
            Locality::Rbt => "rbt".into(),
            Locality::Global => "global".into(),
        }
    }

    pub fn table(&self) -> &'static str {
        match self {
            Locality::RbrHome | Locality::RbrRemote(_) => "rbr",
            Locality::Rbt => "rbt",
            Locality::Global => "global",
        }
    }

    pub fn is_global(&self) -> bool {
        matches!(self, Locality::Global)
    }
}

/// Point reads or point writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    Read,
    Write,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
        }
    }
}

/// One measured combination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cell {
    pub survival: Survival,
    pub client_region: String,
    pub locality: Locality,
    pub op: Op,
}

impl Cell {
    /// The region the touched rows are homed in, for REGIONAL BY ROW.
    pub fn row_region(&self) -> Option<&str> {
        match &self.locality {
            Locality::RbrHome => Some(&self.client_region),
            Locality::RbrRemote(r) => Some(r),
            _ => None,
        }
    }
}

/// How long each cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellLength {
    Ops(u64),
    Duration(Duration),
}

/// The shape of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RegionsConfig {
    /// Regions, latency and clock offset; `topology.regions[0]` is the
    /// primary region.
    pub topology: Topology,
    /// Regions that get a client (each a subset of the regions).
    pub client_regions: Vec<String>,
    pub survivals: Vec<Survival>,
    pub length: CellLength,
    /// Rows per region (REGIONAL BY ROW) and per table (the others).
    pub rows: u64,
    pub converge_timeout: Duration,
}

impl RegionsConfig {
    /// Why the config cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        let regions = &self.topology.regions;
        if regions.len() < 3 && self.survivals.contains(&Survival::Region) {
            return Err(format!(
                "SURVIVE REGION FAILURE needs at least 3 regions; the topology has {}",
                regions.len()
            ));
        }
        if regions.is_empty() {
            return Err("no regions".into());
        }
        if let Some(c) = self.client_regions.iter().find(|c| !regions.contains(c)) {
            return Err(format!(
                "client region {c:?} is not one of the regions ({})",
                regions.join(", ")
            ));
        }
        if self.client_regions.is_empty() || self.survivals.is_empty() {
            return Err("nothing to measure: no client region or no survival goal".into());
        }
        if self.rows == 0 || matches!(self.length, CellLength::Ops(0)) {
            return Err("rows and ops must be at least 1".into());
        }
        Ok(())
    }

    /// Every cell, in the order they run and are reported.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for &survival in &self.survivals {
            for client in &self.client_regions {
                let mut localities = vec![Locality::RbrHome];
                localities.extend(
                    self.topology
                        .regions
                        .iter()
                        .filter(|r| *r != client)
                        .map(|r| Locality::RbrRemote(r.clone())),
                );
                localities.extend([Locality::Rbt, Locality::Global]);
                for locality in localities {
                    for op in [Op::Read, Op::Write] {
                        cells.push(Cell {
                            survival,
                            client_region: client.clone(),
                            locality: locality.clone(),
                            op,
                        });
                    }
                }
            }
        }
        cells
    }
}

/// The rows of one query's result, as text (`None` for NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// A SQL connection to one gateway, on one database.
pub trait SqlConn {
    /// Runs one statement (simple query protocol).
    fn query(&mut self, sql: &str) -> impl Future<Output = Result<Rows, String>>;
}

/// Where one range of a table is, as regions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangePlacement {
    pub range_id: u64,
    /// As `SHOW RANGES` prints it; a REGIONAL BY ROW partition's start
    /// key names its region in quotes.
    pub start_key: String,
    /// The region of every replica, voter or not.
    pub replicas: Vec<String>,
    /// The regions of the voters, when the target knows them apart.
    pub voters: Option<Vec<String>>,
    pub leaseholder: Option<String>,
}

/// A cluster with a gateway in each region.
pub trait RegionsTarget {
    type Conn: SqlConn;

    /// A connection to a gateway in `region`, on `database`.
    fn connect(
        &self,
        region: &str,
        database: &str,
    ) -> impl Future<Output = Result<Self::Conn, String>>;

    /// The ranges of `table`, through `conn` (on the table's database).
    fn placement(
        &self,
        conn: &mut Self::Conn,
        table: &str,
    ) -> impl Future<Output = Result<Vec<RangePlacement>, String>>;
}

/// What the driver tells its caller while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A setup step (creating, loading, waiting for placement).
    Step(String),
    /// Measuring cell `index` of `total`; `ops` done so far in it.
    Measuring {
        index: usize,
        total: usize,
        cell: Cell,
        ops: u64,
        last_ms: f64,
    },
}
