//! The floor of each cell: the least latency the topology allows for an
//! operation, given the round trips between regions and what the zone
//! configs of a table's locality and database's survival goal imply.
//!
//! Owns: the arithmetic and the words explaining it. Does not own: the
//! latency matrix itself (the caller passes the round trips, e.g. from the
//! transport's `LatencyMatrix`) nor measuring (`driver`).
//!
//! For a client in region `c` and a leaseholder in region `l`:
//!
//! - **access** = RTT(c, l), 0 when `c == l` (the gateway may hold the
//!   lease; local work is not in the floor);
//! - **quorum** = under ZONE survival the voters are 3 in `l`: one
//!   intra-region round trip; under REGION survival they are 5, 2 in `l`,
//!   so a quorum needs the nearest other region: RTT(l, nearest);
//! - **read** (`SELECT v FROM t WHERE id = k`) = access: a leaseholder read
//!   needs no consensus;
//! - **write** (`UPDATE t SET v = .. WHERE id = k`) = 2 x access + quorum:
//!   an UPDATE reads the row at the leaseholder, then writes it there and
//!   replicates (a blind write would be 1 x access + quorum; UPSERT into a
//!   REGIONAL BY ROW table is not blind, it reads every partition for
//!   uniqueness, so the benchmark writes with UPDATE everywhere);
//! - **GLOBAL** tables (CockroachDB's non-blocking transactions): reads
//!   are served by a local replica at present time (floor 0); writes are
//!   at a future timestamp and wait it out: 2 x access + lead, the lead
//!   being max clock offset + the round trip to the farthest replica
//!   (which covers the quorum). Meridian's lead adds its close interval
//!   (200 ms) and a slack (20 ms) and takes half the round trip
//!   (kvserver's `closedts::global_reads_lead`), so its GLOBAL writes sit
//!   above this floor by design.

use std::collections::BTreeMap;

use super::{Cell, Locality, Op, Survival};

/// Round trips between the regions, and the clock offset bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The database regions, the primary first.
    pub regions: Vec<String>,
    /// Between two nodes of one region.
    pub intra_region_rtt_ms: f64,
    /// By unordered pair of regions (both orders are looked up).
    pub rtt_ms: BTreeMap<(String, String), f64>,
    /// The cluster's maximum clock offset (GLOBAL writes' lead).
    pub max_offset_ms: f64,
}

/// The floor of one cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Floor {
    /// What the design allows.
    pub ms: f64,
    /// What the design allows for what is built today (the same as `ms`
    /// since GLOBAL tables were built; kept for the JSON's readers).
    pub built_ms: f64,
    /// How `ms` is made, e.g. `2 x rtt(us-west1,us-east1) 66 + quorum 1`.
    pub terms: String,
}

impl Topology {
    pub fn primary(&self) -> &str {
        &self.regions[0]
    }

    /// The round trip between two regions (the intra-region one for a
    /// region with itself); 0 when the matrix does not list the pair.
    pub fn rtt(&self, a: &str, b: &str) -> f64 {
        if a == b {
            return self.intra_region_rtt_ms;
        }
        let pair = |x: &str, y: &str| self.rtt_ms.get(&(x.to_string(), y.to_string())).copied();
        pair(a, b).or_else(|| pair(b, a)).unwrap_or(0.0)
    }

    /// A client's cost of reaching a leaseholder: 0 in its own region.
    fn access(&self, client: &str, leaseholder: &str) -> f64 {
        if client == leaseholder {
            0.0
        } else {
            self.rtt(client, leaseholder)
        }
    }

    /// The round trip a leaseholder in `region` waits for a quorum.
    pub fn quorum(&self, region: &str, survival: Survival) -> f64 {
        let nearest = self
            .regions
            .iter()
            .filter(|r| r.as_str() != region)
            .map(|r| self.rtt(region, r))
            .fold(f64::INFINITY, f64::min);
        match survival {
            Survival::Region if nearest.is_finite() => nearest,
            _ => self.intra_region_rtt_ms,
        }
    }

    /// The farthest round trip from `region` to another database region.
    fn farthest(&self, region: &str) -> f64 {
        self.regions
            .iter()
            .map(|r| self.rtt(region, r))
            .fold(0.0, f64::max)
    }

    /// The region of the leaseholder serving `cell`.
    pub fn leaseholder_region<'a>(&'a self, cell: &'a Cell) -> &'a str {
        match &cell.locality {
            Locality::RbrHome => &cell.client_region,
            Locality::RbrRemote(home) => home,
            Locality::Rbt | Locality::Global => self.primary(),
        }
    }

    /// The floor of `cell`.
    pub fn floor(&self, cell: &Cell) -> Floor {
        let client = cell.client_region.as_str();
        let lh = self.leaseholder_region(cell);
        let access = self.access(client, lh);
        let quorum = self.quorum(lh, cell.survival);
        let access_text = if client == lh {
            "local".to_string()
        } else {
            format!("rtt({client},{lh}) {}", fmt(access))
        };
        let regional_read = access;
        let regional_write = 2.0 * access + quorum;
        let write_terms = format!("2 x {access_text} + quorum {}", fmt(quorum));
        match (cell.locality.is_global(), cell.op) {
            (false, Op::Read) => Floor {
                ms: regional_read,
                built_ms: regional_read,
                terms: format!("read at leaseholder: {access_text}"),
            },
            (false, Op::Write) => Floor {
                ms: regional_write,
                built_ms: regional_write,
                terms: write_terms,
            },
            (true, Op::Read) => Floor {
                ms: 0.0,
                built_ms: 0.0,
                terms: "local read at present time (every replica has it closed)".to_string(),
            },
            (true, Op::Write) => {
                let lead = self.max_offset_ms + self.farthest(lh);
                let ms = 2.0 * access + lead.max(quorum);
                Floor {
                    ms,
                    built_ms: ms,
                    terms: format!(
                        "2 x {access_text} + commit wait (max offset {} + farthest rtt {})",
                        fmt(self.max_offset_ms),
                        fmt(self.farthest(lh))
                    ),
                }
            }
        }
    }
}

/// A millisecond figure as the report prints it.
pub fn fmt(ms: f64) -> String {
    if ms.fract() == 0.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}
