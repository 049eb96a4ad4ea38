//! GLOBAL tables on 5 whole nodes in 3 regions (three in the primary
//! region, where the voters are, and one in each other region, holding a
//! non-voter), over pgwire: once the
//! table's range closes ahead of the present, a present-time read from
//! every region is served by the gateway's own replica; a write is visible
//! from every region as soon as it is acknowledged; and a transaction that
//! reads a GLOBAL table and writes a regional one stays serializable
//! against a concurrent writer of the GLOBAL row.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meridian_testkit::NodeCluster;
use meridian_transport::Locality;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const REGIONS: [&str; 3] = ["us-east1", "us-west1", "europe-west1"];

async fn connect(addr: SocketAddr) -> Client {
    let config = format!(
        "host={} port={} user=root dbname=movr",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn column(client: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect())
}

fn follower_reads(cluster: &NodeCluster, i: usize) -> u64 {
    cluster
        .node(i)
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix("meridian_follower_reads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The node index of the gateway in each of [`REGIONS`].
const GATEWAYS: [usize; 3] = [0, 3, 4];

async fn start() -> NodeCluster {
    let localities: Vec<Locality> = [
        ("us-east1", "a"),
        ("us-east1", "b"),
        ("us-east1", "c"),
        ("us-west1", "a"),
        ("europe-west1", "a"),
    ]
    .iter()
    .map(|(r, z)| Locality::new(*r, format!("{r}-{z}")))
    .collect();
    // A small offset keeps the lead (and so each GLOBAL write) short.
    let cluster = NodeCluster::start_with(&localities, |_, config| {
        config.max_offset = Duration::from_millis(100);
    })
    .await
    .unwrap();
    let setup = connect(cluster.sql_addr(0)).await;
    setup
        .batch_execute(
            "CREATE DATABASE movr PRIMARY REGION \"us-east1\" REGIONS \"us-west1\", \"europe-west1\"",
        )
        .await
        .unwrap();
    let client = connect(cluster.sql_addr(0)).await;
    client
        .batch_execute(
            "CREATE TABLE promo (code STRING PRIMARY KEY, pct INT) LOCALITY GLOBAL;
             INSERT INTO promo VALUES ('a', 1);
             CREATE TABLE orders (id INT PRIMARY KEY, pct INT) LOCALITY REGIONAL BY TABLE",
        )
        .await
        .unwrap();
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_region_reads_a_global_table_locally_and_sees_each_acknowledged_write() {
    let cluster = start().await;
    let gateways = [
        connect(cluster.sql_addr(GATEWAYS[0])).await,
        connect(cluster.sql_addr(GATEWAYS[1])).await,
        connect(cluster.sql_addr(GATEWAYS[2])).await,
    ];
    let read = "SELECT pct FROM promo WHERE code = 'a'";
    // The table gets its own range and its config; then its leaseholder
    // closes ahead of the present and every replica serves the present.
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, gateway) in gateways.iter().enumerate() {
        loop {
            let before = follower_reads(&cluster, GATEWAYS[i]);
            assert_eq!(column(gateway, read).await.unwrap(), ["1"]);
            if follower_reads(&cluster, GATEWAYS[i]) > before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} ({}) never served the GLOBAL read itself",
                REGIONS[i]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // A write, once acknowledged, is seen from every region, locally.
    for (value, writer) in [(2, 1), (3, 2), (4, 0)] {
        gateways[writer]
            .batch_execute(&format!("UPDATE promo SET pct = {value} WHERE code = 'a'"))
            .await
            .unwrap();
        for (i, gateway) in gateways.iter().enumerate() {
            assert_eq!(
                column(gateway, read).await.unwrap(),
                [value.to_string()],
                "region {} after the write from {}",
                REGIONS[i],
                REGIONS[writer]
            );
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_over_a_global_and_a_regional_table_stays_serializable() {
    let cluster = start().await;
    let a = connect(cluster.sql_addr(GATEWAYS[1])).await;
    let b = connect(cluster.sql_addr(GATEWAYS[2])).await;
    // Two transactions each read the GLOBAL row and write from it; one
    // also changes the row. Whatever order they commit in, the order they
    // wrote must be one in which each saw the other's writes or none.
    for round in 0..4 {
        a.batch_execute("BEGIN").await.unwrap();
        let seen: i64 = column(&a, "SELECT pct FROM promo WHERE code = 'a'")
            .await
            .unwrap()[0]
            .parse()
            .unwrap();
        let bumped = b
            .batch_execute("UPDATE promo SET pct = pct + 1 WHERE code = 'a'")
            .await;
        let wrote = a
            .batch_execute(&format!("INSERT INTO orders VALUES ({round}, {seen})"))
            .await;
        let committed = match wrote {
            Ok(()) => a.batch_execute("COMMIT").await,
            Err(e) => Err(e),
        };
        if committed.is_err() {
            let _ = a.batch_execute("ROLLBACK").await;
        }
        bumped.unwrap();
        if committed.is_ok() {
            // a's transaction read `seen`, so it serializes before b's
            // update: the order row holds the value before the bump.
            let now: i64 = column(&a, "SELECT pct FROM promo WHERE code = 'a'")
                .await
                .unwrap()[0]
                .parse()
                .unwrap();
            assert_eq!(seen + 1, now, "round {round}");
        }
    }
    let orders = column(&a, "SELECT count(*) FROM orders").await.unwrap();
    assert!(orders[0].parse::<u32>().unwrap() <= 4);
    cluster.shutdown().await;
}
