//! The golden scenarios of `testdata/` (one test per file, listed in
//! `mod golden` below; a new file fails `all_files_listed` until listed).
//!
//! Commands (one state per file: a cluster, round trips, a current config,
//! a range):
//! - `cluster REGION:ZONE,ZONE.. REGION:..`: nodes n1, n2, .. in order,
//!   all live, holding no replicas
//! - `rtt A B MS`: the measured round trip between two regions; `rtt
//!   clear` forgets every measurement
//! - `dead N`, `suspect N`, `live N`: a node's liveness
//! - `mr regions=A,B,C primary=A survival=zone|region
//!   placement=default|restricted locality=global|table|table:R|row:R`:
//!   synthesize, print and keep the config
//! - `zone TEXT`: parse `CONFIGURE ZONE USING` text, print and keep it
//! - `effective`: the kept config with every field inherited
//! - `validate`: the kept config against the cluster's localities
//! - `replicas voters=1,2 [non_voters=3] [lease=1]`: set the range
//! - `decide`: one allocator decision on the range, not applied
//! - `place`: decide and apply until nothing is left to do (at most 40
//!   steps), printing each action, then where everything ended up

use std::fmt::Write as _;

use meridian_topology::{Locality, NodeId};

use crate::allocator::{self, Action, Liveness, NodeInfo, RangeState, ReplicaKind, RoundTrips};
use crate::config::ZoneConfig;
use crate::multiregion::{
    synthesize, DataPlacement, MultiRegionSettings, SurvivalGoal, TableLocality,
};
use crate::parse::parse_using;
use crate::validate::validate_for_cluster;

#[derive(Default)]
pub(crate) struct Scenario {
    nodes: Vec<NodeInfo>,
    rtt: RoundTrips,
    has_rtt: bool,
    config: ZoneConfig,
    range: RangeState,
}

fn args(rest: &str) -> Vec<(&str, &str)> {
    rest.split_whitespace()
        .map(|a| {
            a.split_once('=')
                .unwrap_or_else(|| panic!("argument {a:?} is not k=v"))
        })
        .collect()
}

fn arg<'a>(args: &[(&str, &'a str)], key: &str) -> Option<&'a str> {
    args.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn ids(list: Option<&str>) -> Vec<NodeId> {
    list.filter(|l| !l.is_empty())
        .map(|l| {
            l.split(',')
                .map(|n| n.trim_start_matches('n').parse().expect("node id"))
                .collect()
        })
        .unwrap_or_default()
}

fn kind_name(kind: ReplicaKind) -> &'static str {
    match kind {
        ReplicaKind::Voter => "voter",
        ReplicaKind::NonVoter => "non-voter",
    }
}

pub(crate) fn describe(action: &Action) -> String {
    match action {
        Action::Nothing => "nothing".into(),
        Action::Add { kind, node } => format!("add {} n{node}", kind_name(*kind)),
        Action::Remove { kind, node } => format!("remove {} n{node}", kind_name(*kind)),
        Action::Move { kind, from, to } => format!("move {} n{from} -> n{to}", kind_name(*kind)),
        Action::Promote(n) => format!("promote n{n}"),
        Action::Demote(n) => format!("demote n{n}"),
        Action::Swap { promote, demote } => format!("swap: promote n{promote}, demote n{demote}"),
    }
}

impl Scenario {
    pub(crate) fn new() -> Self {
        Scenario::default()
    }

    fn node(&mut self, id: &str) -> &mut NodeInfo {
        let id: NodeId = id.trim_start_matches('n').parse().expect("node id");
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("known node")
    }

    fn localities(&self) -> Vec<Locality> {
        self.nodes.iter().map(|n| n.locality.clone()).collect()
    }

    fn rtt(&self) -> Option<&RoundTrips> {
        self.has_rtt.then_some(&self.rtt)
    }

    fn where_(&self, ids: &[NodeId]) -> String {
        let mut sorted = ids.to_vec();
        sorted.sort();
        let parts: Vec<String> = sorted
            .iter()
            .map(|id| match self.nodes.iter().find(|n| n.id == *id) {
                Some(n) => format!("n{id}({}/{})", n.locality.region, n.locality.zone),
                None => format!("n{id}(unknown)"),
            })
            .collect();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        }
    }

    fn decision_text(&self, d: &allocator::Decision) -> String {
        let mut out = format!("{} ({})", describe(&d.action), d.reason);
        match d.lease {
            Some((pref, node)) => {
                write!(out, "\nlease: n{node} (preference {})", pref + 1).unwrap()
            }
            None if self.config.effective().lease_preferences.0.is_empty() => {
                out.push_str("\nlease: no preference set")
            }
            None => out.push_str("\nlease: no preference met"),
        }
        for p in &d.problems {
            write!(out, "\nproblem: {p}").unwrap();
        }
        out
    }

    fn apply(&mut self, action: &Action) {
        let mut bump = |id: NodeId, by: i64| {
            if let Some(n) = self.nodes.iter_mut().find(|n| n.id == id) {
                n.replicas = (n.replicas as i64 + by) as u32;
            }
        };
        match *action {
            Action::Add { node, .. } => bump(node, 1),
            Action::Remove { node, .. } => bump(node, -1),
            Action::Move { from, to, .. } => {
                bump(from, -1);
                bump(to, 1);
            }
            _ => {}
        }
        allocator::apply(&mut self.range, action);
    }

    fn place(&mut self) -> String {
        let config = self.config.effective();
        let mut out = String::new();
        let mut last = None;
        for _ in 0..40 {
            let d = allocator::decide(&self.nodes, &self.range, &config, self.rtt());
            if d.action == Action::Nothing {
                last = Some(d);
                break;
            }
            writeln!(out, "{}", describe(&d.action)).unwrap();
            self.apply(&d.action);
        }
        let d = last
            .unwrap_or_else(|| allocator::decide(&self.nodes, &self.range, &config, self.rtt()));
        writeln!(out, "voters: {}", self.where_(&self.range.voters)).unwrap();
        writeln!(out, "non-voters: {}", self.where_(&self.range.non_voters)).unwrap();
        let text = self.decision_text(&d);
        for line in text.lines().skip(1) {
            writeln!(out, "{line}").unwrap();
        }
        let left = allocator::nonconformities(&self.nodes, &self.range, &config);
        if left.is_empty() {
            out.push_str("conforming");
        } else {
            write!(out, "nonconforming: {}", left.join("; ")).unwrap();
        }
        out
    }

    fn mr(&mut self, rest: &str) -> String {
        let a = args(rest);
        let settings = MultiRegionSettings {
            regions: arg(&a, "regions")
                .expect("regions=")
                .split(',')
                .map(String::from)
                .collect(),
            primary_region: arg(&a, "primary").expect("primary=").to_string(),
            survival: match arg(&a, "survival").expect("survival=") {
                "zone" => SurvivalGoal::Zone,
                "region" => SurvivalGoal::Region,
                other => panic!("survival {other:?}"),
            },
            placement: match arg(&a, "placement").unwrap_or("default") {
                "default" => DataPlacement::Default,
                "restricted" => DataPlacement::Restricted,
                other => panic!("placement {other:?}"),
            },
        };
        let locality = match arg(&a, "locality").expect("locality=") {
            "global" => TableLocality::Global,
            "table" => TableLocality::RegionalByTable(None),
            other => match other.split_once(':') {
                Some(("table", r)) => TableLocality::RegionalByTable(Some(r.to_string())),
                Some(("row", r)) => TableLocality::RegionalByRow(r.to_string()),
                _ => panic!("locality {other:?}"),
            },
        };
        match synthesize(&settings, &locality) {
            Ok(config) => {
                self.config = config;
                self.config.to_string()
            }
            Err(e) => format!("error: {e}"),
        }
    }
}

impl meridian_golden::Runner for Scenario {
    fn run(&mut self, command: &str) -> String {
        let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
        match verb {
            "cluster" => {
                self.nodes.clear();
                for group in rest.split_whitespace() {
                    let (region, zones) = group.split_once(':').expect("REGION:ZONES");
                    for zone in zones.split(',') {
                        let id = self.nodes.len() as NodeId + 1;
                        self.nodes.push(NodeInfo {
                            id,
                            locality: Locality::new(region, zone),
                            liveness: Liveness::Live,
                            replicas: 0,
                        });
                    }
                }
                let ids: Vec<NodeId> = self.nodes.iter().map(|n| n.id).collect();
                self.where_(&ids)
            }
            "rtt" => {
                if rest.trim() == "clear" {
                    self.rtt = RoundTrips::default();
                    self.has_rtt = false;
                    return "ok".into();
                }
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let [a, b, ms] = parts[..] else {
                    panic!("rtt A B MS")
                };
                self.rtt.set(a, b, ms.parse::<u64>().expect("ms") * 1000);
                self.has_rtt = true;
                "ok".into()
            }
            "dead" | "suspect" | "live" => {
                let liveness = match verb {
                    "dead" => Liveness::Dead,
                    "suspect" => Liveness::Suspect,
                    _ => Liveness::Live,
                };
                self.node(rest.trim()).liveness = liveness;
                "ok".into()
            }
            "mr" => self.mr(rest),
            "zone" => match parse_using(rest) {
                Ok(config) => {
                    self.config = config;
                    self.config.to_string()
                }
                Err(e) => format!("error: {e}"),
            },
            "effective" => self.config.effective().to_zone_config().to_string(),
            "validate" => {
                match validate_for_cluster(&self.config.effective(), &self.localities()) {
                    Ok(()) => "ok".into(),
                    Err(e) => format!("error: {e}"),
                }
            }
            "replicas" => {
                let a = args(rest);
                self.range = RangeState {
                    voters: ids(arg(&a, "voters")),
                    non_voters: ids(arg(&a, "non_voters")),
                    leaseholder: ids(arg(&a, "lease")).first().copied(),
                };
                for n in &mut self.nodes {
                    n.replicas = u32::from(
                        self.range.voters.contains(&n.id) || self.range.non_voters.contains(&n.id),
                    );
                }
                "ok".into()
            }
            "decide" => {
                let d = allocator::decide(
                    &self.nodes,
                    &self.range,
                    &self.config.effective(),
                    self.rtt(),
                );
                self.decision_text(&d)
            }
            "place" => self.place(),
            other => panic!("unknown command {other:?}"),
        }
    }
}

mod golden {
    meridian_golden::test_each_file! {
        dir: "testdata",
        runner: super::Scenario::new,
        files: [
            allocator_region_survival,
            allocator_repair,
            allocator_residency,
            multiregion_five_regions,
            multiregion_region_default,
            multiregion_region_restricted,
            multiregion_zone_default,
            multiregion_zone_restricted,
            parse,
            validate,
        ],
    }
}
