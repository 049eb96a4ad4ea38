//! Survival goals at work (issue 13): nine whole nodes in three regions of
//! three zones, clients over pgwire. A `SURVIVE REGION FAILURE` database
//! keeps answering reads of every row, and taking writes homed in every
//! region (the lost one's too), once its primary region's three nodes have
//! stopped; a `SURVIVE ZONE FAILURE` one does so after a zone of its
//! primary region stopped. The system ranges (meta, liveness, descriptors)
//! must survive the same loss, or nothing else would.
//!
//! Liveness declares a stopped node dead within seconds, so replicas are
//! replaced while the test runs; the assertions are what a client sees,
//! retried until a deadline (a lease takes an election to move).

use std::time::{Duration, Instant};

use meridian_server::status::ClusterStatus;
use meridian_testkit::NodeCluster;
use meridian_transport::Locality;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// How long placement may take to converge, and the cluster to serve
/// again after the loss.
const CONVERGE: Duration = Duration::from_secs(120);
const RECOVER: Duration = Duration::from_secs(60);
const REGIONS: [&str; 3] = ["us-east1", "us-west1", "europe-west1"];

async fn nine_nodes() -> NodeCluster {
    let localities: Vec<Locality> = REGIONS
        .iter()
        .flat_map(|r| ["a", "b", "c"].map(|z| Locality::new(*r, format!("{r}-{z}"))))
        .collect();
    NodeCluster::start_with(&localities, |_, config| {
        config.liveness_ttl = Duration::from_secs(2);
        config.time_until_dead = Duration::from_secs(2);
    })
    .await
    .expect("cluster starts")
}

async fn connect(cluster: &NodeCluster, node: usize, database: &str) -> Client {
    let addr = cluster.sql_addr(node);
    let config = format!(
        "host={} port={} user=root dbname={database}",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The rows of `sql`'s result, each column as text.
async fn query(client: &Client, sql: &str) -> Result<Vec<Vec<String>>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect(),
            ),
            _ => None,
        })
        .collect())
}

/// Runs `sql` until it succeeds (and `accept` takes its rows), for at
/// most [`RECOVER`]; the rows, or a panic naming the last error and the
/// ranges as node `via` of `cluster` sees them.
async fn eventually(
    (cluster, via): (&NodeCluster, usize),
    client: &Client,
    sql: &str,
    accept: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let deadline = Instant::now() + RECOVER;
    loop {
        let last = match query(client, sql).await {
            Ok(rows) if accept(&rows) => return rows,
            Ok(rows) => format!("rows {rows:?}"),
            Err(e) => format!("{e:?}"),
        };
        if Instant::now() >= deadline {
            let ranges = ranges_now(cluster, via).await;
            panic!("{sql} did not succeed within {RECOVER:?}; last: {last}; ranges:{ranges}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The ranges (id, start key, voters) that losing the nodes `lost` (ids)
/// would leave without a majority of their voters: what surviving that
/// loss needs of each range, the system's included.
fn quorums_lost(status: &ClusterStatus, lost: &[u64]) -> Vec<(u64, String, Vec<u64>)> {
    status
        .ranges
        .iter()
        .filter(|r| {
            let gone = r.voters.iter().filter(|v| lost.contains(v)).count();
            gone * 2 >= r.voters.len()
        })
        .map(|r| (r.range_id, r.start_key.clone(), r.voters.clone()))
        .collect()
}

/// The cluster's ranges as node `via` sees them, for a failure message.
async fn ranges_now(cluster: &NodeCluster, via: usize) -> String {
    // The status reads the meta records; each running node's own view of
    // its replicas follows, which holds even without them.
    let mut out = match cluster.node(via).cluster_status().await {
        Ok(status) => status
            .ranges
            .iter()
            .map(|r| {
                format!(
                    "\n  r{} [{}, {}) voters {:?} non-voters {:?} leaseholder {:?}",
                    r.range_id, r.start_key, r.end_key, r.voters, r.non_voters, r.leaseholder
                )
            })
            .collect(),
        Err(e) => format!(" no status ({e})"),
    };
    out.push_str("; the nodes' replicas:");
    for node in cluster.nodes() {
        let Some(member) = node.member() else {
            continue;
        };
        for r in member.store.replicas() {
            let s = r.raft_status();
            out.push_str(&format!(
                "\n  n{} r{}: leader {:?} term {} applied {:?} voters {:?}",
                node.node_id(),
                r.range_id(),
                s.leader,
                s.term,
                s.applied_index,
                r.descriptor()
                    .voters()
                    .map(|v| v.node_id)
                    .collect::<Vec<_>>()
            ));
        }
    }
    out
}

/// Waits until no range of the cluster is outside its zone config and
/// none would lose its quorum with the nodes `lost` (ids) gone, as the
/// status of node `via` reports it. Both: the status once called a range
/// conforming whose voters put a quorum in the home region.
async fn wait_for_placement(cluster: &NodeCluster, via: usize, lost: &[u64]) {
    let deadline = Instant::now() + CONVERGE;
    loop {
        let last = match cluster.node(via).cluster_status().await {
            Ok(status) => {
                let off: Vec<_> = status
                    .ranges
                    .iter()
                    .filter(|r| !r.nonconforming.is_empty())
                    .map(|r| (r.range_id, r.nonconforming.clone()))
                    .collect();
                let at_risk = quorums_lost(&status, lost);
                if off.is_empty() && at_risk.is_empty() {
                    return;
                }
                format!("nonconforming {off:?}; quorums lost without nodes {lost:?}: {at_risk:?}")
            }
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "placement did not converge in {CONVERGE:?}: {last}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Creates database `name` with `survival`, a REGIONAL BY ROW table with
/// a row homed in each region, through the client on node `via`, and waits
/// for a placement that survives losing the nodes `lost`.
async fn create_database(
    cluster: &NodeCluster,
    via: usize,
    (name, survival): (&str, &str),
    lost: &[u64],
) -> Client {
    // No wait for the gateway to hear of all nine nodes: before refusing a
    // zone config for want of nodes, it reads the node records again.
    let admin = connect(cluster, via, "defaultdb").await;
    query(
        &admin,
        &format!(
            "CREATE DATABASE {name} PRIMARY REGION \"us-east1\" REGIONS \"us-west1\", \
             \"europe-west1\" SURVIVE {survival} FAILURE"
        ),
    )
    .await
    .expect("database created");
    let client = connect(cluster, via, name).await;
    for sql in [
        "CREATE TABLE kv (k INT PRIMARY KEY, v TEXT) LOCALITY REGIONAL BY ROW",
        "INSERT INTO kv (k, v, region) VALUES (1, 'east', 'us-east1'), \
         (2, 'west', 'us-west1'), (3, 'europe', 'europe-west1')",
    ] {
        query(&client, sql).await.expect(sql);
    }
    wait_for_placement(cluster, via, lost).await;
    client
}

/// Every row readable, and a write homed in each region taken, through
/// `client` on node `via`.
async fn serves_every_region(cluster: &NodeCluster, via: usize, client: &Client) {
    let at = (cluster, via);
    let all = "SELECT k, v, region FROM kv ORDER BY k";
    let rows = eventually(at, client, all, |r| r.len() >= 3).await;
    assert_eq!(rows[0], ["1", "east", "us-east1"]);
    assert_eq!(rows[1], ["2", "west", "us-west1"]);
    assert_eq!(rows[2], ["3", "europe", "europe-west1"]);
    for (i, region) in REGIONS.iter().enumerate() {
        let k = 10 + i;
        let insert = format!("INSERT INTO kv (k, v, region) VALUES ({k}, 'after', '{region}')");
        eventually(at, client, &insert, |_| true).await;
        let read = format!("SELECT v, region FROM kv WHERE k = {k}");
        let rows = eventually(at, client, &read, |r| r.len() == 1).await;
        assert_eq!(rows[0], ["after", *region]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_survival_database_serves_every_region_after_its_primary_region_stops() {
    let cluster = nine_nodes().await;
    // The client's gateway is in europe-west1 (nodes 6 to 8, ids 7 to 9);
    // us-east1 is nodes 0 to 2, ids 1 to 3.
    let client = create_database(&cluster, 6, ("app", "REGION"), &[1, 2, 3]).await;
    for node in 0..3 {
        cluster.stop(node).await;
    }
    serves_every_region(&cluster, 6, &client).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_survival_database_serves_every_region_after_a_primary_zone_stops() {
    let cluster = nine_nodes().await;
    let client = create_database(&cluster, 6, ("app", "ZONE"), &[1]).await;
    // us-east1-a, where node 1 (which bootstrapped the cluster) runs.
    cluster.stop(0).await;
    serves_every_region(&cluster, 6, &client).await;
    cluster.shutdown().await;
}
