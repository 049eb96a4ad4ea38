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
/// most `timeout`; the rows, or a panic naming the last error.
async fn eventually(
    client: &Client,
    sql: &str,
    timeout: Duration,
    accept: impl Fn(&[Vec<String>]) -> bool,
) -> Vec<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match query(client, sql).await {
            Ok(rows) if accept(&rows) => return rows,
            Ok(rows) => format!("rows {rows:?}"),
            Err(e) => format!("{e:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "{sql} did not succeed within {timeout:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until no range of the cluster is outside its zone config, as the
/// status of node `via` reports it.
async fn wait_for_placement(cluster: &NodeCluster, via: usize) {
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
                if off.is_empty() {
                    return;
                }
                format!("{off:?}")
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
/// for placement.
async fn create_database(cluster: &NodeCluster, via: usize, name: &str, survival: &str) -> Client {
    // The gateway checks a zone config against the nodes it knows: all
    // nine, once its directory has heard of them.
    let deadline = Instant::now() + CONVERGE;
    while cluster.node(via).directory().len() < 9 {
        assert!(Instant::now() < deadline, "node {via} never knew all nodes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    wait_for_placement(cluster, via).await;
    client
}

/// Asserts that losing the nodes `lost` (ids) leaves every range of the
/// cluster a majority of its voters: what surviving that loss needs of
/// each range, the system's included.
async fn assert_quorums_survive(cluster: &NodeCluster, via: usize, lost: &[u64]) {
    let status = cluster.node(via).cluster_status().await.expect("status");
    let at_risk: Vec<_> = status
        .ranges
        .iter()
        .filter(|r| {
            let gone = r.voters.iter().filter(|v| lost.contains(v)).count();
            gone * 2 >= r.voters.len()
        })
        .map(|r| (r.range_id, r.start_key.clone(), r.voters.clone()))
        .collect();
    assert!(
        at_risk.is_empty(),
        "ranges that would lose their quorum with nodes {lost:?}: {at_risk:?}"
    );
}

/// Every row readable, and a write homed in each region taken.
async fn serves_every_region(client: &Client, first_new_key: i64) {
    let rows = eventually(
        client,
        "SELECT k, v, region FROM kv ORDER BY k",
        RECOVER,
        |r| r.len() >= 3,
    )
    .await;
    assert_eq!(rows[0], ["1", "east", "us-east1"]);
    assert_eq!(rows[1], ["2", "west", "us-west1"]);
    assert_eq!(rows[2], ["3", "europe", "europe-west1"]);
    for (i, region) in REGIONS.iter().enumerate() {
        let k = first_new_key + i as i64;
        let insert = format!("INSERT INTO kv (k, v, region) VALUES ({k}, 'after', '{region}')");
        eventually(client, &insert, RECOVER, |_| true).await;
        let read = format!("SELECT v, region FROM kv WHERE k = {k}");
        let rows = eventually(client, &read, RECOVER, |r| r.len() == 1).await;
        assert_eq!(rows[0], ["after", *region]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_survival_database_serves_every_region_after_its_primary_region_stops() {
    let cluster = nine_nodes().await;
    // The client's gateway is in europe-west1 (nodes 6 to 8).
    let client = create_database(&cluster, 6, "app", "REGION").await;
    assert_quorums_survive(&cluster, 6, &[1, 2, 3]).await;
    for node in 0..3 {
        cluster.stop(node).await;
    }
    serves_every_region(&client, 10).await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_zone_survival_database_serves_every_region_after_a_primary_zone_stops() {
    let cluster = nine_nodes().await;
    let client = create_database(&cluster, 6, "app", "ZONE").await;
    assert_quorums_survive(&cluster, 6, &[1]).await;
    // us-east1-a, where node 1 (which bootstrapped the cluster) runs.
    cluster.stop(0).await;
    serves_every_region(&client, 10).await;
    cluster.shutdown().await;
}
