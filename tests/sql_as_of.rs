//! `AS OF SYSTEM TIME` over pgwire on 3 whole nodes: a SELECT reads the
//! table as of the time it names (rows and schema both), a follower read
//! (`follower_read_timestamp()`) is served by the gateway's own replica
//! whichever node holds the lease, and misuse gets its SQLSTATE.

mod common;

use std::time::{Duration, Instant};

use common::pg::{code, column, connect, follower_reads};
use meridian_testkit::NodeCluster;

/// 3 nodes, a client of the first, and table `t` holding `(1, 'a')`.
async fn table_with_a_row() -> (NodeCluster, tokio_postgres::Client) {
    let cluster = NodeCluster::start(3).await.unwrap();
    let client = connect(cluster.sql_addr(0), None).await;
    client
        .batch_execute(
            "CREATE TABLE t (k INT PRIMARY KEY, v STRING); INSERT INTO t VALUES (1, 'a')",
        )
        .await
        .unwrap();
    (cluster, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_select_reads_as_of_the_time_it_names() {
    let (cluster, client) = table_with_a_row().await;
    let clock = cluster.node(0).clock().clone();
    let after_insert = clock.now();
    client
        .batch_execute("UPDATE t SET v = 'b' WHERE k = 1")
        .await
        .unwrap();
    let hlc = format!("{}.{:010}", after_insert.wall_nanos, after_insert.logical);
    let as_of = |what: &str| format!("SELECT v FROM t AS OF SYSTEM TIME {what} WHERE k = 1");
    assert_eq!(column(&client, &as_of(&hlc)).await.unwrap(), ["a"]);
    assert_eq!(
        column(&client, &as_of(&format!("'{hlc}'"))).await.unwrap(),
        ["a"]
    );
    assert_eq!(column(&client, "SELECT v FROM t").await.unwrap(), ["b"]);
    let plan = column(&client, &format!("EXPLAIN {}", as_of(&hlc)))
        .await
        .unwrap()
        .join("\n");
    assert!(
        plan.contains("reads from the nearest replica (follower read as of"),
        "{plan}"
    );
    let plan = column(&client, "EXPLAIN SELECT v FROM t WHERE k = 1")
        .await
        .unwrap()
        .join("\n");
    assert!(plan.contains("reads from the leaseholder"), "{plan}");
    // An hour ago the table did not exist.
    let e = column(&client, &as_of("'-1h'")).await.unwrap_err();
    assert_eq!(code(e), "42P01");

    // Misuse.
    let e = column(&client, &as_of("'10s'")).await.unwrap_err();
    assert_eq!(code(e), "22023", "a time in the future");
    let e = client
        .batch_execute("INSERT INTO t VALUES (2, 'x') AS OF SYSTEM TIME '-1s'")
        .await
        .unwrap_err();
    assert_eq!(code(e), "0A000");
    client.batch_execute("BEGIN").await.unwrap();
    let e = column(&client, &as_of("'-1s'")).await.unwrap_err();
    assert_eq!(code(e), "0A000", "AS OF SYSTEM TIME inside a block");
    client.batch_execute("ROLLBACK").await.unwrap();

    // A read-only block as of a time.
    client
        .batch_execute(&format!("BEGIN AS OF SYSTEM TIME {hlc}"))
        .await
        .unwrap();
    assert_eq!(
        column(&client, "SELECT v FROM t WHERE k = 1")
            .await
            .unwrap(),
        ["a"]
    );
    let e = client
        .batch_execute("INSERT INTO t VALUES (3, 'y')")
        .await
        .unwrap_err();
    assert_eq!(code(e), "25006");
    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(
        column(&client, "SELECT count(*) FROM t").await.unwrap(),
        ["1"],
        "nothing was written"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_read_is_served_by_the_gateways_own_replica() {
    let (cluster, client) = table_with_a_row().await;
    let query = "SELECT v FROM t AS OF SYSTEM TIME follower_read_timestamp() WHERE k = 1";
    // follower_read_timestamp() is 4.8 s back: wait until it reaches the
    // row (and the table).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match column(&client, query).await {
            Ok(v) if v == ["a"] => break,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("the row never became visible to follower reads: {other:?}"),
        }
    }
    // A bound of an hour reads where follower_read_timestamp() does.
    let bounded = "SELECT v FROM t AS OF SYSTEM TIME with_max_staleness('1h') WHERE k = 1";
    assert_eq!(column(&client, bounded).await.unwrap(), ["a"]);
    // Every node holds a replica of every range here: whichever holds the
    // lease, each gateway's read is served by its own replica.
    for i in 0..3 {
        let gateway = connect(cluster.sql_addr(i), None).await;
        let before = follower_reads(&cluster, i);
        assert_eq!(column(&gateway, query).await.unwrap(), ["a"]);
        assert!(
            follower_reads(&cluster, i) > before,
            "node {i} did not serve the read itself"
        );
    }
    cluster.shutdown().await;
}
