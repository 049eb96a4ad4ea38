//! The injected network model: region-to-region latency and faults, applied
//! by the transport itself (this kernel has no netem).
//!
//! A [`NetworkModel`] is a cheap-to-clone handle. An in-process test cluster
//! gives one to all its nodes and flips faults on it; a single node process
//! loads a latency profile from TOML ([`NetworkModel::from_file`]). It holds:
//!
//! - a [`LatencyMatrix`]: the one-way delay between two regions (half the
//!   round trip listed in the profile) and a small delay inside a region;
//! - faults: blocked directed pairs of nodes (partitions, one-way or both
//!   ways), isolated nodes, and a probability of dropping any message.
//!
//! **Where it applies.** The *sender* asks the model (`NetworkModel::on_send`) before
//! it writes a message: drop it, or deliver it after a delay. For a call the
//! caller also asks for the way back when the response arrives, so a call
//! pays the full round trip and a one-way partition blocks it too. The
//! *receiver* checks [`NetworkModel::is_blocked`] again on every frame, so a
//! single process that isolates itself refuses traffic from peers that do
//! not share its model. Random drops are decided by the sender only.
//!
//! **Semantics.** Faults act on messages, not packets: a QUIC connection
//! stays up through a partition, and a blocked call fails the way it would
//! on a real partition, by timing out. Delays are timer sleeps (tokio's
//! timer has a 1 ms resolution, so a delay is rounded up to the next
//! millisecond tick); one message's delay never reorders a stream, because
//! every stream carries one message and it is delayed whole.
//!
//! **Cost when off.** A transport without a model does nothing; with a model
//! that has no latency and no fault, one relaxed atomic load per message.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;

use crate::error::TransportError;
use meridian_topology::{Locality, NodeId};

/// The shipped profile: CockroachDB's `demo --global` round trips.
pub const DEMO_3_REGION_TOML: &str = include_str!("../profiles/demo-3-region.toml");

/// One-way delays between regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencyMatrix {
    name: String,
    intra_region: Duration,
    one_way: HashMap<(String, String), Duration>,
    /// Every region named by a link, in the order first named.
    listed: Vec<String>,
}

impl LatencyMatrix {
    /// An empty matrix: `intra_region` one way inside a region, and no delay
    /// between regions until links are added.
    pub fn new(name: impl Into<String>, intra_region: Duration) -> Self {
        LatencyMatrix {
            name: name.into(),
            intra_region,
            one_way: HashMap::new(),
            listed: Vec::new(),
        }
    }

    /// Adds a symmetric link whose round trip is `rtt` (half of it each way).
    pub fn with_round_trip(mut self, a: &str, b: &str, rtt: Duration) -> Self {
        self.set_one_way(a, b, rtt / 2);
        self.set_one_way(b, a, rtt / 2);
        self
    }

    /// Sets the delay of one direction only.
    pub fn set_one_way(&mut self, from: &str, to: &str, delay: Duration) {
        for region in [from, to] {
            if !self.listed.iter().any(|r| r == region) {
                self.listed.push(region.to_string());
            }
        }
        self.one_way
            .insert((from.to_string(), to.to_string()), delay);
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The one-way delay from `from` to `to`, or `None` for two different
    /// regions the matrix does not list.
    pub fn one_way(&self, from: &str, to: &str) -> Option<Duration> {
        if from == to {
            return Some(self.intra_region);
        }
        self.one_way
            .get(&(from.to_string(), to.to_string()))
            .copied()
    }

    /// The round trip between two regions, if both directions are listed.
    pub fn round_trip(&self, a: &str, b: &str) -> Option<Duration> {
        Some(self.one_way(a, b)? + self.one_way(b, a)?)
    }

    /// Every region named by a link.
    pub fn regions(&self) -> BTreeSet<&str> {
        self.one_way
            .keys()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .collect()
    }

    /// Every region named by a link, in the order the profile first names
    /// them (for the demo profile: us-east1, us-west1, europe-west1).
    pub fn listed_regions(&self) -> Vec<&str> {
        self.listed.iter().map(String::as_str).collect()
    }

    /// CockroachDB's three demo regions: us-east1, us-west1, europe-west1.
    pub fn demo_3_region() -> Self {
        // The shipped file is checked by a unit test.
        Self::from_toml_str(DEMO_3_REGION_TOML).expect("shipped profile parses")
    }

    /// Parses a profile (the format of `profiles/demo-3-region.toml`).
    pub fn from_toml_str(text: &str) -> Result<Self, TransportError> {
        let file: ProfileFile = toml::from_str(text)
            .map_err(|e| TransportError::Config(format!("network profile: {e}")))?;
        let intra = millis(
            file.intra_region_rtt_ms.unwrap_or(0.0),
            "intra_region_rtt_ms",
        )? / 2;
        let mut matrix = LatencyMatrix::new(file.name.unwrap_or_default(), intra);
        for link in file.links {
            let [a, b] = &link.regions;
            if a == b {
                return Err(TransportError::Config(format!(
                    "network profile: link from {a} to itself (use intra_region_rtt_ms)"
                )));
            }
            if matrix.one_way(a, b).is_some() {
                return Err(TransportError::Config(format!(
                    "network profile: link {a} <-> {b} listed twice"
                )));
            }
            let rtt = millis(link.rtt_ms, "rtt_ms")?;
            matrix = matrix.with_round_trip(a, b, rtt);
        }
        Ok(matrix)
    }

    /// Reads a profile from a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, TransportError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TransportError::io(format!("reading {}", path.display()), e))?;
        Self::from_toml_str(&text)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: Option<String>,
    intra_region_rtt_ms: Option<f64>,
    #[serde(default)]
    links: Vec<LinkFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    regions: [String; 2],
    rtt_ms: f64,
}

fn millis(ms: f64, field: &str) -> Result<Duration, TransportError> {
    if !ms.is_finite() || !(0.0..=3_600_000.0).contains(&ms) {
        return Err(TransportError::Config(format!(
            "network profile: {field} = {ms} is not a duration in milliseconds"
        )));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

/// What the model decided for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Deliver(Duration),
    Drop,
}

/// A shared handle on latency and faults. Clones share state.
#[derive(Clone)]
pub struct NetworkModel {
    inner: Arc<ModelInner>,
}

struct ModelInner {
    /// True when there is latency or a fault: the only thing the hot path
    /// reads when the model is idle.
    active: AtomicBool,
    state: RwLock<ModelState>,
    rng: Mutex<(u64, StdRng)>,
    warned_pairs: Mutex<HashSet<(String, String)>>,
}

#[derive(Default)]
struct ModelState {
    latency: Option<LatencyMatrix>,
    blocked: HashSet<(NodeId, NodeId)>,
    isolated: HashSet<NodeId>,
    drop_probability: f64,
}

impl ModelState {
    fn is_active(&self) -> bool {
        self.latency.is_some()
            || !self.blocked.is_empty()
            || !self.isolated.is_empty()
            || self.drop_probability > 0.0
    }

    fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        from != to
            && (self.isolated.contains(&from)
                || self.isolated.contains(&to)
                || self.blocked.contains(&(from, to)))
    }
}

impl Default for NetworkModel {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for NetworkModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.inner.state.read();
        f.debug_struct("NetworkModel")
            .field("latency", &s.latency.as_ref().map(|m| m.name.clone()))
            .field("blocked", &s.blocked.len())
            .field("isolated", &s.isolated)
            .field("drop_probability", &s.drop_probability)
            .finish()
    }
}

impl NetworkModel {
    /// A model with no latency and no faults: messages pass untouched.
    pub fn new() -> Self {
        let seed: u64 = rand::random();
        NetworkModel {
            inner: Arc::new(ModelInner {
                active: AtomicBool::new(false),
                state: RwLock::new(ModelState::default()),
                rng: Mutex::new((seed, StdRng::seed_from_u64(seed))),
                warned_pairs: Mutex::new(HashSet::new()),
            }),
        }
    }

    /// A model injecting `matrix`'s latencies.
    pub fn with_latency(matrix: LatencyMatrix) -> Self {
        let model = Self::new();
        model.set_latency(Some(matrix));
        model
    }

    /// The shipped three-region profile ([`LatencyMatrix::demo_3_region`]).
    pub fn demo_3_region() -> Self {
        Self::with_latency(LatencyMatrix::demo_3_region())
    }

    /// A model with the latencies of a TOML profile.
    pub fn from_toml_str(text: &str) -> Result<Self, TransportError> {
        Ok(Self::with_latency(LatencyMatrix::from_toml_str(text)?))
    }

    /// A model with the latencies of a TOML profile file.
    pub fn from_file(path: &Path) -> Result<Self, TransportError> {
        Ok(Self::with_latency(LatencyMatrix::from_file(path)?))
    }

    /// Replaces (or with `None` removes) the latency matrix.
    pub fn set_latency(&self, matrix: Option<LatencyMatrix>) {
        self.update(|s| s.latency = matrix);
    }

    pub fn latency(&self) -> Option<LatencyMatrix> {
        self.inner.state.read().latency.clone()
    }

    /// Blocks messages both ways between every node of `a` and every node of
    /// `b`.
    pub fn partition(&self, a: &[NodeId], b: &[NodeId]) {
        self.update(|s| {
            for &x in a {
                for &y in b {
                    s.blocked.insert((x, y));
                    s.blocked.insert((y, x));
                }
            }
        });
    }

    /// Blocks messages from every node of `from` to every node of `to`, and
    /// not the other way.
    pub fn partition_one_way(&self, from: &[NodeId], to: &[NodeId]) {
        self.update(|s| {
            for &x in from {
                for &y in to {
                    s.blocked.insert((x, y));
                }
            }
        });
    }

    /// Blocks every message to and from `node`.
    pub fn isolate(&self, node: NodeId) {
        self.update(|s| {
            s.isolated.insert(node);
        });
    }

    /// Drops each message with probability `p` (clamped to `[0, 1]`).
    pub fn set_drop_probability(&self, p: f64) {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.update(|s| s.drop_probability = p);
    }

    /// Removes every fault (partitions, isolation, drops); latency stays.
    pub fn heal(&self) {
        self.update(|s| {
            s.blocked.clear();
            s.isolated.clear();
            s.drop_probability = 0.0;
        });
    }

    /// Reseeds the drop decisions, to replay a run.
    pub fn set_seed(&self, seed: u64) {
        *self.inner.rng.lock() = (seed, StdRng::seed_from_u64(seed));
    }

    /// The seed of the drop decisions (print it when a test fails).
    pub fn seed(&self) -> u64 {
        self.inner.rng.lock().0
    }

    /// Whether the model currently changes anything.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.inner.active.load(Ordering::Relaxed)
    }

    /// Whether messages from `from` to `to` are blocked by a partition or
    /// isolation.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.is_active() && self.inner.state.read().is_blocked(from, to)
    }

    /// The one-way delay between two localities (zero without a matrix, and
    /// for region pairs the matrix does not list).
    pub fn one_way_delay(&self, from: &Locality, to: &Locality) -> Duration {
        let state = self.inner.state.read();
        self.delay_in(&state, from, to)
    }

    fn delay_in(&self, state: &ModelState, from: &Locality, to: &Locality) -> Duration {
        let Some(matrix) = &state.latency else {
            return Duration::ZERO;
        };
        match matrix.one_way(&from.region, &to.region) {
            Some(d) => d,
            None => {
                let pair = (from.region.clone(), to.region.clone());
                if self.inner.warned_pairs.lock().insert(pair) {
                    tracing::warn!(
                        from = %from.region, to = %to.region, profile = %matrix.name,
                        "network profile has no latency for this region pair; using none"
                    );
                }
                Duration::ZERO
            }
        }
    }

    /// The sender's decision for one message from `from` to `to`.
    pub(crate) fn on_send(
        &self,
        from: NodeId,
        from_locality: &Locality,
        to: NodeId,
        to_locality: &Locality,
    ) -> Verdict {
        if from == to {
            return Verdict::Deliver(Duration::ZERO);
        }
        let state = self.inner.state.read();
        if state.is_blocked(from, to) {
            return Verdict::Drop;
        }
        if state.drop_probability > 0.0 {
            let roll: f64 = self.inner.rng.lock().1.random();
            if roll < state.drop_probability {
                return Verdict::Drop;
            }
        }
        Verdict::Deliver(self.delay_in(&state, from_locality, to_locality))
    }

    fn update(&self, f: impl FnOnce(&mut ModelState)) {
        let mut state = self.inner.state.write();
        f(&mut state);
        self.inner
            .active
            .store(state.is_active(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(region: &str) -> Locality {
        Locality::new(region, format!("{region}-a"))
    }

    #[test]
    fn demo_profile_has_cockroach_numbers() {
        let m = LatencyMatrix::demo_3_region();
        assert_eq!(m.name(), "demo-3-region");
        let ms = Duration::from_millis;
        assert_eq!(m.round_trip("us-east1", "us-west1"), Some(ms(66)));
        assert_eq!(m.round_trip("us-east1", "europe-west1"), Some(ms(64)));
        assert_eq!(m.round_trip("us-west1", "europe-west1"), Some(ms(146)));
        assert_eq!(m.one_way("us-west1", "europe-west1"), Some(ms(73)));
        assert_eq!(
            m.one_way("us-east1", "us-east1"),
            Some(Duration::from_micros(500))
        );
        assert_eq!(
            m.regions().into_iter().collect::<Vec<_>>(),
            ["europe-west1", "us-east1", "us-west1"]
        );
        assert_eq!(m.listed_regions(), ["us-east1", "us-west1", "europe-west1"]);
    }

    #[test]
    fn profile_errors_are_reported() {
        for bad in [
            "links = 3",
            "[[links]]\nregions = [\"a\", \"a\"]\nrtt_ms = 1.0",
            "[[links]]\nregions = [\"a\", \"b\"]\nrtt_ms = -1.0",
            "[[links]]\nregions = [\"a\", \"b\"]\nrtt_ms = 1.0\n[[links]]\nregions = [\"b\", \"a\"]\nrtt_ms = 2.0",
            "unknown_field = 1",
        ] {
            assert!(
                matches!(LatencyMatrix::from_toml_str(bad), Err(TransportError::Config(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn off_by_default_and_delays_when_on() {
        let m = NetworkModel::new();
        assert!(!m.is_active());
        assert_eq!(
            m.on_send(1, &loc("a"), 2, &loc("b")),
            Verdict::Deliver(Duration::ZERO)
        );
        m.set_latency(Some(
            LatencyMatrix::new("t", Duration::from_millis(1)).with_round_trip(
                "a",
                "b",
                Duration::from_millis(40),
            ),
        ));
        assert!(m.is_active());
        assert_eq!(
            m.on_send(1, &loc("a"), 2, &loc("b")),
            Verdict::Deliver(Duration::from_millis(20))
        );
        assert_eq!(
            m.on_send(1, &loc("a"), 2, &loc("a")),
            Verdict::Deliver(Duration::from_millis(1))
        );
        // Unknown pair: no delay (and a warning).
        assert_eq!(
            m.on_send(1, &loc("a"), 2, &loc("zz")),
            Verdict::Deliver(Duration::ZERO)
        );
        m.set_latency(None);
        assert!(!m.is_active());
    }

    #[test]
    fn partitions_isolation_and_heal() {
        let m = NetworkModel::new();
        m.partition(&[1], &[2, 3]);
        assert!(m.is_blocked(1, 2) && m.is_blocked(3, 1) && !m.is_blocked(2, 3));
        m.heal();
        assert!(!m.is_active() && !m.is_blocked(1, 2));
        m.partition_one_way(&[1], &[2]);
        assert!(m.is_blocked(1, 2) && !m.is_blocked(2, 1));
        m.heal();
        m.isolate(4);
        assert!(m.is_blocked(4, 1) && m.is_blocked(1, 4) && !m.is_blocked(1, 2));
        assert!(!m.is_blocked(4, 4));
        assert_eq!(m.on_send(4, &loc("a"), 1, &loc("a")), Verdict::Drop);
        m.heal();
        assert!(!m.is_active());
    }

    #[test]
    fn drops_follow_probability_and_seed() {
        let m = NetworkModel::new();
        m.set_seed(7);
        m.set_drop_probability(0.25);
        let run = |m: &NetworkModel| {
            (0..4000)
                .map(|_| m.on_send(1, &loc("a"), 2, &loc("a")) == Verdict::Drop)
                .collect::<Vec<_>>()
        };
        let first = run(&m);
        let dropped = first.iter().filter(|d| **d).count();
        assert!(
            (800..1200).contains(&dropped),
            "seed {}: {dropped} of 4000 dropped",
            m.seed()
        );
        m.set_seed(7);
        assert_eq!(run(&m), first, "same seed, same decisions");
        m.set_drop_probability(1.0);
        assert_eq!(m.on_send(1, &loc("a"), 2, &loc("a")), Verdict::Drop);
        m.set_drop_probability(f64::NAN);
        assert!(!m.is_active());
    }

    #[test]
    fn clones_share_state() {
        let m = NetworkModel::new();
        let c = m.clone();
        c.isolate(9);
        assert!(m.is_blocked(9, 1));
    }
}
