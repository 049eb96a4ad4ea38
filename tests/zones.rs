//! Zone configs at work on whole nodes (issue 11): a config set on a key
//! span splits the span into ranges of its own, moves their replicas and
//! lease where the config says, and keeps them there (residency) while a
//! node of the region is dead; a lease preference alone brings the lease
//! into its region; bad configs are refused and change nothing.
//!
//! Six nodes in two regions of three zones, with liveness that declares a
//! stopped node dead within seconds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_kvapi::NodeId;
use meridian_placement::ZoneConfig;
use meridian_server::liveness::LivenessStatus;
use meridian_server::status::{ClusterStatus, RangeStatus};
use meridian_server::system;
use meridian_server::zones::{self, ZoneTarget};
use meridian_server::Node;
use meridian_testkit::NodeCluster;
use meridian_transport::Locality;

const CONVERGE: Duration = Duration::from_secs(90);

fn span(start: &str, end: &str) -> ZoneTarget {
    ZoneTarget::Span {
        start: start.as_bytes().to_vec(),
        end: end.as_bytes().to_vec(),
    }
}

async fn six_nodes_in_two_regions() -> NodeCluster {
    let localities: Vec<Locality> = ["east", "west"]
        .iter()
        .flat_map(|r| (1..=3).map(move |z| Locality::new(*r, format!("{r}-{z}"))))
        .collect();
    NodeCluster::start_with(&localities, |_, config| {
        config.liveness_ttl = Duration::from_secs(2);
        config.time_until_dead = Duration::from_secs(2);
    })
    .await
    .expect("cluster starts")
}

/// Polls the cluster status from `node` until `check` accepts it.
async fn wait_status<T>(
    node: &Node,
    what: &str,
    mut check: impl FnMut(&ClusterStatus) -> Option<T>,
) -> T {
    let deadline = Instant::now() + CONVERGE;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(status) = node.cluster_status().await {
            if let Some(found) = check(&status) {
                return found;
            }
            last = Some(status.ranges);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}; last ranges: {last:#?}");
}

fn regions(node: &Node) -> BTreeMap<NodeId, String> {
    node.directory()
        .into_iter()
        .map(|n| (n.node_id, n.locality.region.clone()))
        .collect()
}

/// The ranges that tile `[start, end)` exactly, if they do (status keys
/// are printable strings, so the chain is followed by equality).
fn ranges_of<'a>(
    status: &'a ClusterStatus,
    start: &str,
    end: &str,
) -> Option<Vec<&'a RangeStatus>> {
    let mut chain = Vec::new();
    let mut at = start;
    while at != end {
        let next = status.ranges.iter().find(|r| r.start_key == at)?;
        chain.push(next);
        at = next.end_key.as_str();
    }
    Some(chain)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_span_config_places_replicas_and_lease_in_its_region_and_keeps_them_there() {
    let cluster = six_nodes_in_two_regions().await;
    let gateway = cluster.node(0);
    let member = gateway.wait_member().await;
    let ds = member.ds.clone();
    for i in 0..20 {
        ds.put(format!("p{i:02}").as_bytes(), b"v").await.unwrap();
    }
    let region_of = regions(gateway);
    let root = ZoneConfig::default_config();
    zones::set(
        &ds,
        gateway.clock(),
        &root,
        &span("p", "q"),
        "num_replicas = 3, constraints = '[+region=west]', lease_preferences = '[[+region=west]]'",
    )
    .await
    .expect("a satisfiable config is accepted");

    let in_west = |ids: &[NodeId]| ids.iter().all(|id| region_of[id] == "west");
    let range = wait_status(gateway, "[p, q) to live in west with its lease", |status| {
        let ranges = ranges_of(status, "p", "q")?;
        let [range] = ranges.as_slice() else {
            return None;
        };
        let placed = range.voters.len() == 3
            && range.non_voters.is_empty()
            && in_west(&range.voters)
            && range.leaseholder.is_some_and(|l| region_of[&l] == "west")
            && range.nonconforming.is_empty();
        placed.then(|| (*range).clone())
    })
    .await;

    // Residency: from now on no replica of the span is ever outside west,
    // even while one of its west nodes is dead and cannot be replaced.
    let violated = Arc::new(AtomicBool::new(false));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (ds, violated, sampling) = (ds.clone(), violated.clone(), sampling.clone());
        let region_of = region_of.clone();
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(descriptors) = system::all_meta(&ds).await {
                    for d in descriptors.iter().filter(|d| {
                        d.start_key.as_slice() >= b"p".as_slice()
                            && d.end_key.as_slice() <= b"q".as_slice()
                    }) {
                        if d.replicas.iter().any(|r| region_of[&r.node_id] != "west") {
                            violated.store(true, Ordering::Relaxed);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let victim = *range
        .voters
        .iter()
        .find(|&&v| Some(v) != range.leaseholder)
        .expect("a follower");
    let victim_node = cluster
        .nodes()
        .iter()
        .find(|n| n.node_id() == victim)
        .expect("victim");
    victim_node.shutdown(Duration::ZERO).await;
    let deadline = Instant::now() + CONVERGE;
    while gateway
        .liveness()
        .status(victim, gateway.clock().physical_now())
        != LivenessStatus::Dead
    {
        assert!(
            Instant::now() < deadline,
            "node {victim} never counted as dead"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The range is now under-replicated and says so, with nowhere in west
    // to go; give the queues several passes to (not) misbehave.
    wait_status(gateway, "[p, q) to report its dead voter", |status| {
        let ranges = ranges_of(status, "p", "q")?;
        (!ranges[0].nonconforming.is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The metrics say so too: under-replicated at the leaseholder, and
    // never a replica outside its constraints anywhere.
    let metric = |text: &str, name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("meridian_{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in the metrics"))
    };
    let mut under = 0;
    for node in cluster.nodes().iter().filter(|n| n.node_id() != victim) {
        let text = node.metrics_text();
        assert_eq!(metric(&text, "replicas_outside_constraints"), 0);
        under += metric(&text, "ranges_underreplicated");
    }
    assert!(under >= 1, "the range with a dead voter is not reported");
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    assert!(
        !violated.load(Ordering::Relaxed),
        "a replica of the west-only span was placed outside west"
    );
    assert_eq!(ds.get(b"p07").await.unwrap().as_deref(), Some(&b"v"[..]));
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lease_preference_brings_the_lease_into_its_region_and_bad_configs_change_nothing() {
    let cluster = six_nodes_in_two_regions().await;
    let gateway = cluster.node(0);
    let member = gateway.wait_member().await;
    let ds = member.ds.clone();
    ds.put(b"r1", b"v").await.unwrap();
    let region_of = regions(gateway);
    let root = ZoneConfig::default_config();
    for (preferred, other) in [("west", "east"), ("east", "west")] {
        let using = format!("lease_preferences = '[[+region={preferred}]]'");
        zones::set(&ds, gateway.clock(), &root, &span("r", "s"), &using)
            .await
            .unwrap();
        wait_status(
            gateway,
            &format!("the lease of [r, s) in {preferred}"),
            |status| {
                let ranges = ranges_of(status, "r", "s")?;
                let lease = ranges[0].leaseholder?;
                // Diversity keeps a voter in each region, so either
                // preference can be met.
                let both = ["east", "west"]
                    .iter()
                    .all(|r| ranges[0].voters.iter().any(|v| region_of[v] == *r));
                (both && region_of[&lease] == preferred && region_of[&lease] != other).then_some(())
            },
        )
        .await;
    }

    let before = zones::load(&ds, gateway.clock(), &root).await.unwrap();
    for (using, why) in [
        (
            "num_replicas = 5, constraints = '[+region=west]'",
            "unsatisfiable",
        ),
        (
            "num_replicas = 3, voter_constraints = '{+region=mars: 1}'",
            "unsatisfiable",
        ),
        ("num_replica = 3", "unknown zone config field"),
        ("constraints = '[region=west]'", "malformed constraint"),
        ("num_replicas = three", "expects"),
    ] {
        let err = zones::set(&ds, gateway.clock(), &root, &span("p", "q"), using)
            .await
            .expect_err(using)
            .to_string();
        assert!(err.contains(why), "{using}: {err}");
    }
    let err = zones::set(
        &ds,
        gateway.clock(),
        &root,
        &span("q", "rr"),
        "num_replicas = 3",
    )
    .await
    .expect_err("a span partly overlapping [r, s)")
    .to_string();
    assert!(err.contains("overlaps"), "{err}");
    let err = zones::remove(&ds, gateway.clock(), &span("x", "y"))
        .await
        .expect_err("no config on [x, y)")
        .to_string();
    assert!(err.contains("no zone config"), "{err}");
    assert_eq!(
        zones::load(&ds, gateway.clock(), &root).await.unwrap(),
        before
    );

    zones::remove(&ds, gateway.clock(), &span("r", "s"))
        .await
        .unwrap();
    assert!(zones::load(&ds, gateway.clock(), &root)
        .await
        .unwrap()
        .spans()
        .is_empty());
    cluster.shutdown().await;
}

/// Nodes measure their round trips to each other, injected latency
/// included: each region's figure is at least the matrix's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_measure_the_round_trips_between_regions() {
    let model = meridian_transport::NetworkModel::demo_3_region();
    let localities: Vec<Locality> = ["us-east1", "us-west1", "europe-west1"]
        .iter()
        .map(|r| Locality::new(*r, format!("{r}-a")))
        .collect();
    let cluster = NodeCluster::start_with(&localities, |_, config| {
        config.network = Some(model.clone());
    })
    .await
    .expect("cluster starts");
    let east = cluster
        .nodes()
        .iter()
        .find(|n| n.config().locality.region == "us-east1")
        .expect("a us-east1 node");
    let deadline = Instant::now() + CONVERGE;
    let latencies = loop {
        let latencies = east.latencies();
        if latencies.regions.len() == 2 {
            break latencies;
        }
        assert!(Instant::now() < deadline, "never measured: {latencies:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(latencies.region, "us-east1");
    assert!(latencies.regions["us-west1"] >= 66.0, "{latencies:?}");
    assert!(latencies.regions["europe-west1"] >= 64.0, "{latencies:?}");
    let rtt = latencies.round_trips();
    assert!(rtt.get("us-east1", "us-west1").unwrap() >= 66_000);
    cluster.shutdown().await;
}

/// A lease preference survives an outage of its region: the lease leaves
/// with the region's node and comes back once the node does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lease_returns_to_its_preferred_region_after_an_outage() {
    let localities: Vec<Locality> = ["a", "b", "c"]
        .iter()
        .map(|r| Locality::new(*r, format!("{r}-1")))
        .collect();
    let mut cluster = NodeCluster::start_with(&localities, |_, _| {})
        .await
        .expect("cluster starts");
    let gateway_index = 1;
    let home_index = 0;
    let ds = cluster.node(gateway_index).wait_member().await.ds.clone();
    ds.put(b"r1", b"before").await.unwrap();
    let root = ZoneConfig::default_config();
    let clock = cluster.node(gateway_index).clock().clone();
    zones::set(
        &ds,
        &clock,
        &root,
        &span("r", "s"),
        "lease_preferences = '[[+region=a]]'",
    )
    .await
    .unwrap();
    let home = cluster.node(home_index).node_id();
    let lease_on = |node: NodeId| {
        move |status: &ClusterStatus| {
            let ranges = ranges_of(status, "r", "s")?;
            (ranges.len() == 1 && ranges[0].leaseholder == Some(node)).then_some(())
        }
    };
    wait_status(
        cluster.node(gateway_index),
        "the lease of [r, s) in a",
        lease_on(home),
    )
    .await;

    cluster.stop(home_index).await;
    ds.put(b"r1", b"during")
        .await
        .expect("writable while a is down");
    wait_status(
        cluster.node(gateway_index),
        "the lease of [r, s) out of a",
        |status| {
            let ranges = ranges_of(status, "r", "s")?;
            ranges[0].leaseholder.filter(|&l| l != home).map(|_| ())
        },
    )
    .await;

    cluster.restart(home_index).await.expect("restart");
    let back = Instant::now();
    wait_status(
        cluster.node(gateway_index),
        "the lease of [r, s) back in a",
        lease_on(home),
    )
    .await;
    eprintln!(
        "the lease came back to region a {:?} after the restart",
        back.elapsed()
    );
    assert_eq!(
        ds.get(b"r1").await.unwrap().as_deref(),
        Some(&b"during"[..])
    );
    cluster.shutdown().await;
}
