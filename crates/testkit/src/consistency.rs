//! Replica consistency: once a cluster is at rest, every member of every
//! range holds the same data (what CockroachDB's consistency checker
//! compares by checksum). A replica filled by a wrong snapshot, or whose
//! data another range's replica cleared, serves reads that miss or invent
//! rows only once it leads; this check finds it whoever leads.
//!
//! Owns the comparison of replicas' raw records (every MVCC version and
//! intent in the range's span, and the transaction records anchored
//! there) at one applied index. Does not own bringing the cluster to rest:
//! the caller stops its writers first.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use meridian_kvapi::RangeId;
use meridian_storage::RangeData;

use crate::TestCluster;

impl TestCluster {
    /// Checks every range some running node holds: waits (up to `timeout`
    /// in all) until the running members of its descriptor have applied
    /// the same index, then compares their data. Returns how many ranges
    /// were compared, or the first difference.
    pub async fn check_replica_consistency(&self, timeout: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + timeout;
        let ranges: BTreeSet<RangeId> = self
            .node_ids()
            .into_iter()
            .filter_map(|id| self.store(id).ok())
            .flat_map(|store| store.replicas().into_iter().map(|r| r.range_id()))
            .collect();
        for &range in &ranges {
            self.check_range(range, deadline).await?;
        }
        Ok(ranges.len())
    }

    async fn check_range(&self, range: RangeId, deadline: Instant) -> Result<(), String> {
        loop {
            match self.compare_once(range)? {
                Comparison::Equal => return Ok(()),
                Comparison::Differ(difference) if Instant::now() >= deadline => {
                    return Err(difference)
                }
                Comparison::NotAtRest(why) if Instant::now() >= deadline => {
                    return Err(format!("range {range} did not come to rest: {why}"))
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// One look at `range`: its leader's members, their applied indexes,
    /// and, if those agree before and after, their data.
    fn compare_once(&self, range: RangeId) -> Result<Comparison, String> {
        let Some(leader) = self.leader(range) else {
            return Ok(Comparison::NotAtRest("no leader".into()));
        };
        let Some(descriptor) = self
            .store(leader)
            .ok()
            .and_then(|s| s.replica(range))
            .map(|r| r.descriptor())
        else {
            return Ok(Comparison::NotAtRest("the leader let go of it".into()));
        };
        let members: Vec<_> = descriptor
            .replicas
            .iter()
            .map(|r| r.node_id)
            .filter(|&n| self.is_running(n))
            .collect();
        let applied = |n| {
            self.store(n)
                .ok()
                .and_then(|s| s.replica(range))
                .filter(|r| r.is_initialized())
                .map(|r| (r.applied_index(), r.span()))
        };
        let before: Vec<_> = members.iter().map(|&n| applied(n)).collect();
        if before.iter().any(|a| a.is_none()) || before.windows(2).any(|w| w[0] != w[1]) {
            return Ok(Comparison::NotAtRest(format!(
                "members {members:?} at {:?}",
                before
                    .iter()
                    .map(|a| a.as_ref().map(|a| a.0))
                    .collect::<Vec<_>>()
            )));
        }
        let span = before[0].as_ref().expect("checked above").1.clone();
        let mut copies = Vec::new();
        for &n in &members {
            let engine = &self.node(n).map_err(|e| e.to_string())?.engine;
            let data = engine
                .export_range_data(range, &span.0, &span.1)
                .map_err(|e| format!("reading range {range} on n{n}: {e}"))?;
            copies.push((n, data));
        }
        let after: Vec<_> = members.iter().map(|&n| applied(n)).collect();
        if after != before {
            return Ok(Comparison::NotAtRest("applied while being read".into()));
        }
        let (first, reference) = &copies[0];
        for (n, copy) in &copies[1..] {
            if let Some(difference) = first_difference(reference, copy) {
                return Ok(Comparison::Differ(format!(
                    "range {range} at index {}: n{first} and n{n} differ: {difference}",
                    before[0].as_ref().expect("checked above").0
                )));
            }
        }
        Ok(Comparison::Equal)
    }
}

enum Comparison {
    Equal,
    Differ(String),
    NotAtRest(String),
}

/// The first record two copies of a range disagree on, in words.
fn first_difference(a: &RangeData, b: &RangeData) -> Option<String> {
    for (what, a, b) in [
        ("data", &a.data, &b.data),
        ("transaction records", &a.txn_records, &b.txn_records),
    ] {
        if a == b {
            continue;
        }
        let at = a.iter().zip(b.iter()).position(|(x, y)| x != y);
        return Some(match at {
            Some(i) => format!(
                "{what}: record {i} is {:?} on one and {:?} on the other",
                String::from_utf8_lossy(&a[i].0),
                String::from_utf8_lossy(&b[i].0)
            ),
            None => format!("{what}: {} records against {}", a.len(), b.len()),
        });
    }
    None
}
