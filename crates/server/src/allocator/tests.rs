//! Scenarios for [`decide`], written as a cluster in one line per node and
//! a range as its replicas:
//!
//! - a node: `"4 r2/z1 live"` (id, region/zone, verdict; `-` for no
//!   verdict at all);
//! - a range: `"v1 v2 l3"` (voters on nodes 1 and 2, a learner on 3).

use meridian_placement::ZoneConfig;
use meridian_transport::Locality;

use super::*;

fn cluster(lines: &[&str]) -> (Vec<NodeDescriptor>, Verdicts) {
    let mut nodes = Vec::new();
    let mut verdicts = Verdicts::default();
    for line in lines {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let [id, locality, verdict] = parts[..] else {
            panic!("bad node line {line:?}");
        };
        let node_id: NodeId = id.parse().expect("node id");
        let (region, zone) = locality.split_once('/').expect("region/zone");
        nodes.push(NodeDescriptor {
            node_id,
            address: format!("127.0.0.1:{}", 26256 + node_id),
            http_address: None,
            locality: Locality::new(region, zone),
        });
        let verdict = match verdict {
            "live" => LivenessStatus::Live,
            "suspect" => LivenessStatus::Suspect,
            "dead" => LivenessStatus::Dead,
            "-" => continue,
            other => panic!("bad verdict {other:?}"),
        };
        verdicts.0.insert(node_id, verdict);
    }
    nodes.sort_by_key(|n| n.node_id);
    (nodes, verdicts)
}

fn range(replicas: &str) -> Vec<ReplicaDescriptor> {
    replicas
        .split_whitespace()
        .map(|r| {
            let (kind, id) = r.split_at(1);
            let kind = match kind {
                "v" => ReplicaKind::Voter,
                "l" => ReplicaKind::NonVoter,
                other => panic!("bad replica kind {other:?}"),
            };
            ReplicaDescriptor::on_node(id.parse().expect("node id"), kind)
        })
        .collect()
}

/// The action for a range led by its first replica, under a config of
/// `factor` voters and nothing else.
fn decide_in(nodes: &[&str], replicas: &str, factor: usize) -> ReplicateAction {
    let (nodes, verdicts) = cluster(nodes);
    let replicas = range(replicas);
    let config = ZoneConfig {
        num_replicas: Some(factor as u32),
        ..ZoneConfig::default()
    }
    .effective();
    let infos = node_infos(&nodes, &verdicts, &BTreeMap::new());
    decide(&replicas, replicas[0].node_id, &infos, &config, None).action
}

use ReplicateAction::*;

#[test]
fn a_fully_replicated_diverse_range_is_left_alone() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 live",
        "4 r1/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2 v3", 3), Nothing);
}

/// Diversity across regions wins over staying put: three voters in one
/// region, with another region available, move one there (in one change,
/// never off the leaseholder).
#[test]
fn a_conforming_range_spreads_to_a_region_it_lacks() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 live",
        "4 r2/z1 live",
    ];
    assert!(matches!(
        decide_in(&nodes, "v1 v2 v3", 3),
        Move {
            kind: ReplicaKind::Voter,
            from: 2 | 3,
            to: 4
        }
    ));
}

#[test]
fn prefers_a_region_it_lacks() {
    // Node 3 brings a new zone, node 4 a new region: the region wins,
    // whatever the order of the directory.
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 live",
        "4 r2/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), AddVoters(vec![4]));
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r2/z1 live",
        "4 r1/z3 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), AddVoters(vec![3]));
}

#[test]
fn then_a_zone_it_lacks() {
    // One region only: node 3 shares node 1's zone, node 2 has its own.
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z1 live",
        "4 r1/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v4", 3), AddVoters(vec![2]));
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z1 live",
        "3 r1/z2 live",
        "4 r1/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v4", 3), AddVoters(vec![3]));
}

#[test]
fn equally_diverse_candidates_go_to_the_lowest_id() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 live",
        "4 r1/z4 live",
    ];
    assert_eq!(decide_in(&nodes, "v1", 3), AddVoters(vec![2, 3]));
}

/// One voter to three in one change, never through a two-voter group that
/// one failure stalls (issue: a cluster wedged on a dead second voter).
#[test]
fn missing_voters_are_added_in_one_change() {
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 live"];
    assert_eq!(decide_in(&nodes, "v1", 3), AddVoters(vec![2, 3]));
    // A live learner left behind is part of the change, promoted with the
    // new voter.
    assert_eq!(decide_in(&nodes, "v1 l2", 3), AddVoters(vec![2, 3]));
}

/// With one voter and one other live node, the range stays at one voter:
/// two voters stall on either failure. A third node makes it three.
#[test]
fn never_up_to_an_even_number_below_the_factor() {
    let nodes = ["1 r1/z1 live", "2 r1/z2 live"];
    assert_eq!(decide_in(&nodes, "v1", 3), Nothing);
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 suspect"];
    // Three nodes not dead, but only one can take a voter: adding it alone
    // would make two.
    assert_eq!(decide_in(&nodes, "v1", 3), Nothing);
    // A factor of 2 asks for two voters.
    let nodes = ["1 r1/z1 live", "2 r1/z2 live"];
    assert_eq!(decide_in(&nodes, "v1", 2), AddVoters(vec![2]));
}

#[test]
fn never_picks_a_node_that_is_not_live() {
    // The most diverse candidates are dead, suspect, or without a verdict.
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z1 live",
        "3 r2/z1 dead",
        "4 r3/z1 suspect",
        "5 r4/z1 -",
        "6 r1/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), AddVoters(vec![6]));
    // With no live candidate at all, nothing happens.
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r2/z1 suspect"];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), Nothing);
}

#[test]
fn never_adds_to_a_node_that_already_holds_a_replica() {
    let nodes = ["1 r1/z1 live", "2 r2/z1 live", "3 r3/z1 live"];
    // Node 2 holds a voter already; node 3 is the only candidate.
    assert_eq!(decide_in(&nodes, "v1 v2", 3), AddVoters(vec![3]));
}

#[test]
fn a_dead_voter_is_replaced_in_the_change_that_removes_it() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 dead",
        "4 r1/z4 live",
    ];
    // The replacement comes in as the dead voter goes, in one change...
    assert_eq!(
        decide_in(&nodes, "v1 v2 v3", 3),
        Move {
            kind: ReplicaKind::Voter,
            from: 3,
            to: 4
        }
    );
    // ...and a replacement already in (an interrupted move) lets it go.
    assert_eq!(decide_in(&nodes, "v1 v2 v3 v4", 3), Remove(3));
}

#[test]
fn a_dead_voter_with_nowhere_to_go_stays() {
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 dead"];
    assert_eq!(decide_in(&nodes, "v1 v2 v3", 3), Nothing);
}

#[test]
fn suspect_voters_are_neither_replaced_nor_removed() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 suspect",
        "4 r1/z4 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2 v3", 3), Nothing);
}

#[test]
fn the_target_is_capped_by_the_nodes_not_dead() {
    // Two nodes for a factor of 3: the odd target below is one voter; a
    // range that has two keeps them.
    let nodes = ["1 r1/z1 live", "2 r1/z2 live"];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), Nothing);
    assert_eq!(decide_in(&nodes, "v1", 3), Nothing);
    // A dead node does not count; a suspect one does (it may come back),
    // though it cannot take a replica.
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 dead"];
    assert_eq!(decide_in(&nodes, "v1 v2", 3), Nothing);
    // A lone node with an empty directory still counts as one.
    assert_eq!(decide_in(&[], "v1", 3), Nothing);
    // The factor wins when it is the smaller.
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 live"];
    assert_eq!(decide_in(&nodes, "v1", 1), Nothing);
}

#[test]
fn a_learner_is_promoted_when_a_voter_is_missing() {
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 live"];
    assert_eq!(decide_in(&nodes, "v1 v2 l3", 3), AddVoters(vec![3]));
}

#[test]
fn a_learner_is_removed_when_not_needed_or_not_live() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 live",
        "4 r2/z1 live",
    ];
    assert_eq!(decide_in(&nodes, "v1 v2 v3 l4", 3), Remove(4));
    let nodes = ["1 r1/z1 live", "2 r1/z2 live", "3 r1/z3 suspect"];
    assert_eq!(decide_in(&nodes, "v1 v2 l3", 3), Remove(3));
}

#[test]
fn a_dead_learner_goes_once_the_voters_are_in() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 dead",
        "4 r2/z1 live",
    ];
    // The missing voters first (the dead learner counts for no quorum)...
    assert_eq!(decide_in(&nodes, "v1 l3", 3), AddVoters(vec![4, 2]));
    // ...then the learner.
    assert_eq!(decide_in(&nodes, "v1 v2 v4 l3", 3), Remove(3));
}

/// A dead voter is replaced in the change that removes it; growing on from
/// three voters to four (even, below the five wanted) is not worth it.
#[test]
fn a_replacement_never_grows_the_group_to_an_even_size() {
    let nodes = [
        "1 r1/z1 live",
        "2 r1/z2 live",
        "3 r1/z3 dead",
        "4 r1/z4 live",
        "5 r1/z5 live",
    ];
    assert_eq!(
        decide_in(&nodes, "v1 v2 v3", 5),
        Move {
            kind: ReplicaKind::Voter,
            from: 3,
            to: 4
        }
    );
    assert_eq!(decide_in(&nodes, "v1 v2 v4", 5), Nothing);
}

/// A lone voter outside its constraints (say a new partition range left on
/// the primary region's node) cannot hand its lease to anyone: the voters
/// its config wants are added around it in one change, and it then moves
/// its lease to one of them before it goes.
#[test]
fn a_lone_voter_in_the_wrong_region_is_grown_around_then_leaves() {
    let (nodes, verdicts) = cluster(&[
        "1 east/e1 live",
        "2 west/w1 live",
        "3 west/w2 live",
        "4 west/w3 live",
    ]);
    let infos = node_infos(&nodes, &verdicts, &BTreeMap::new());
    let config = ZoneConfig {
        num_replicas: Some(3),
        constraints: Some(meridian_placement::Constraints::parse("[+region=west]").unwrap()),
        ..ZoneConfig::default()
    }
    .effective();
    let plan = decide(&range("v1"), 1, &infos, &config, None);
    assert_eq!(plan.action, AddVoters(vec![2, 3, 4]), "{}", plan.reason);
    let plan = decide(&range("v1 v2 v3 v4"), 1, &infos, &config, None);
    assert!(
        matches!(plan.action, TransferLease(2..=4)),
        "{:?}",
        plan.action
    );
    let plan = decide(&range("v1 v2 v3 v4"), 2, &infos, &config, None);
    assert_eq!(plan.action, Remove(1));
}
