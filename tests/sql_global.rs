//! GLOBAL tables on 5 whole nodes in 3 regions (three in the primary
//! region, where the voters are, and one in each other region, holding a
//! non-voter), over pgwire: once the table's range closes ahead of the
//! present, a present-time read from every region is served by the
//! gateway's own replica; so is a statement's read of its descriptors
//! (in a cluster of several regions the catalog range has a replica on
//! every node and global reads); a write is visible from every region as soon as
//! it is acknowledged; and transfers between a GLOBAL and a regional table
//! from two regions keep the total every read from a third region sees.

mod common;

use std::time::{Duration, Instant};

use common::pg::{column, connect, follower_reads};
use meridian_testkit::NodeCluster;
use meridian_transport::Locality;

const REGIONS: [&str; 3] = ["us-east1", "us-west1", "europe-west1"];

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
    let setup = connect(cluster.sql_addr(0), None).await;
    setup
        .batch_execute(
            "CREATE DATABASE movr PRIMARY REGION \"us-east1\" REGIONS \"us-west1\", \"europe-west1\"",
        )
        .await
        .unwrap();
    let client = connect(cluster.sql_addr(0), Some("movr")).await;
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
async fn every_region_reads_global_tables_and_descriptors_locally_and_sees_each_acknowledged_write()
{
    let cluster = start().await;
    let gateways = [
        connect(cluster.sql_addr(GATEWAYS[0]), Some("movr")).await,
        connect(cluster.sql_addr(GATEWAYS[1]), Some("movr")).await,
        connect(cluster.sql_addr(GATEWAYS[2]), Some("movr")).await,
    ];
    let read = "SELECT pct FROM promo WHERE code = 'a'";
    // The table gets its own range and its config; then its leaseholder
    // closes ahead of the present and every replica serves the present:
    // both the statement's descriptors (the catalog has a replica on
    // every node and global reads) and the row come from the gateway.
    let deadline = Instant::now() + Duration::from_secs(90);
    for (i, gateway) in gateways.iter().enumerate() {
        let node = GATEWAYS[i];
        served_locally(&cluster, node, gateway, read, "1", 2, deadline).await;
    }

    // A REGIONAL BY TABLE table homed in us-east1: from the other
    // regions the row is read at its leaseholder there, the descriptors
    // still by the gateway itself.
    gateways[0]
        .batch_execute("INSERT INTO orders VALUES (1, 10)")
        .await
        .unwrap();
    let regional = "SELECT pct FROM orders WHERE id = 1";
    for i in [1, 2] {
        let node = GATEWAYS[i];
        served_locally(&cluster, node, &gateways[i], regional, "10", 1, deadline).await;
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

/// Runs `sql` through `gateway` (on node `node`) until it answers `want`
/// with at least `local` of its KV batches served by the node's own
/// replicas without the lease (its `meridian_follower_reads_total`).
async fn served_locally(
    cluster: &NodeCluster,
    node: usize,
    gateway: &tokio_postgres::Client,
    sql: &str,
    want: &str,
    local: u64,
    deadline: Instant,
) {
    loop {
        let before = follower_reads(cluster, node);
        assert_eq!(column(gateway, sql).await.unwrap(), [want]);
        if follower_reads(cluster, node) >= before + local {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {node} never served {local} batches of {sql:?} itself"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Moves one unit from the GLOBAL account to the regional one, in one
/// explicit transaction, until it commits; how many attempts it took.
async fn transfer(client: &tokio_postgres::Client) -> u32 {
    for attempt in 1..=50 {
        let moved = async {
            client.batch_execute("BEGIN").await?;
            column(client, "SELECT bal FROM g_acct WHERE id = 1").await?;
            column(client, "SELECT bal FROM r_acct WHERE id = 1").await?;
            client
                .batch_execute(
                    "UPDATE g_acct SET bal = bal - 1 WHERE id = 1;
                     UPDATE r_acct SET bal = bal + 1 WHERE id = 1;
                     COMMIT",
                )
                .await
        }
        .await;
        match moved {
            Ok(()) => return attempt,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK").await;
                let retryable = e.code().is_some_and(|c| c.code() == "40001");
                assert!(retryable, "attempt {attempt}: {e}");
            }
        }
    }
    panic!("a transfer never committed in 50 attempts");
}

/// Transfers between a GLOBAL and a regional table from two regions at
/// once keep the total, and every read of both in one transaction, from a
/// third region, sees it: transactions whose writes land in the future
/// (the GLOBAL row's) and ones at the present stay serializable together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_between_a_global_and_a_regional_table_keep_the_total() {
    let cluster = start().await;
    let setup = connect(cluster.sql_addr(0), Some("movr")).await;
    setup
        .batch_execute(
            "CREATE TABLE g_acct (id INT PRIMARY KEY, bal INT) LOCALITY GLOBAL;
             CREATE TABLE r_acct (id INT PRIMARY KEY, bal INT) LOCALITY REGIONAL BY TABLE;
             INSERT INTO g_acct VALUES (1, 100);
             INSERT INTO r_acct VALUES (1, 100)",
        )
        .await
        .unwrap();
    let west = connect(cluster.sql_addr(GATEWAYS[1]), Some("movr")).await;
    let europe = connect(cluster.sql_addr(GATEWAYS[2]), Some("movr")).await;
    let east = connect(cluster.sql_addr(GATEWAYS[0]), Some("movr")).await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let writers = async {
        let both = tokio::join!(
            async {
                for _ in 0..4 {
                    transfer(&west).await;
                }
            },
            async {
                for _ in 0..4 {
                    transfer(&europe).await;
                }
            }
        );
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        both
    };
    let reader = async {
        let mut sums = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let sum = column(
                &east,
                "SELECT (SELECT bal FROM g_acct WHERE id = 1) + (SELECT bal FROM r_acct WHERE id = 1)",
            )
            .await;
            match sum {
                Ok(sum) => {
                    assert_eq!(sum, ["200"], "a read saw a transfer half done");
                    sums += 1;
                }
                Err(e) => assert_eq!(e.code().map(|c| c.code()), Some("40001"), "{e}"),
            }
        }
        sums
    };
    let (_, sums) = tokio::join!(writers, reader);
    assert!(sums > 0, "the reader never read");
    assert_eq!(
        column(&east, "SELECT bal FROM g_acct WHERE id = 1")
            .await
            .unwrap(),
        ["92"]
    );
    assert_eq!(
        column(&east, "SELECT bal FROM r_acct WHERE id = 1")
            .await
            .unwrap(),
        ["108"]
    );
    cluster.shutdown().await;
}
