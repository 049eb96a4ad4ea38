//! Multi-region SQL against the zone records it writes: after each DDL
//! statement, the records in the system key space are exactly what
//! `placement::synthesize` says for each table and REGIONAL BY ROW
//! partition, written in the statement's transaction; and REGIONAL BY ROW
//! rows are homed by their gateway and found from every region. A
//! 9-node cluster in 3 regions (3 zones each), gateways in each region.
//! And a gateway whose picture of the cluster lags reads the node records
//! again before refusing a region.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use meridian_keys::space::{prefix_end, table_index_prefix, table_prefix};
use meridian_kvclient::txn::Txn;
use meridian_placement::records::{decode_zone_record, ZoneRecord};
use meridian_placement::{
    synthesize, zone_records_end, zone_records_start, DataPlacement, MultiRegionSettings,
    SurvivalGoal, TableLocality, ZoneConfig,
};
use meridian_sql::{ClusterLocalities, Datum, ExecResult, Session, SqlConfig, SqlEngine};
use meridian_testkit::{ClusterConfig, TestCluster};
use meridian_transport::Locality;

const REGIONS: [&str; 3] = ["us-east1", "us-west1", "europe-west1"];

async fn run(session: &mut Session, sql: &str) -> ExecResult {
    let mut results = session.execute_simple(sql).await;
    assert_eq!(results.len(), 1, "{sql}");
    results
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn rows(result: ExecResult) -> Vec<Vec<Datum>> {
    match result {
        ExecResult::Rows { rows, .. } => rows,
        other => panic!("not rows: {other:?}"),
    }
}

fn text(d: &Datum) -> String {
    match d {
        Datum::Text(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

/// Every span record, by (start, end).
async fn records(cluster: &TestCluster) -> BTreeMap<(Vec<u8>, Vec<u8>), ZoneConfig> {
    let txn = Txn::begin(
        cluster.dist_sender().clone(),
        cluster.node(1).unwrap().clock.clone(),
        0,
    );
    let pairs = txn
        .scan(&zone_records_start(), &zone_records_end(), 0)
        .await
        .unwrap();
    txn.rollback().await.ok();
    pairs
        .iter()
        .filter_map(|(k, v)| match decode_zone_record(k, v).unwrap() {
            ZoneRecord::Span(s) => Some(((s.start, s.end), s.config)),
            ZoneRecord::Default(_) => None,
        })
        .collect()
}

async fn table_id(session: &mut Session, table: &str) -> u64 {
    let result = rows(
        run(
            session,
            &format!("SELECT oid FROM pg_catalog.pg_class WHERE relname = '{table}'"),
        )
        .await,
    );
    match &result[0][0] {
        Datum::Int(id) => *id as u64,
        other => panic!("{other:?}"),
    }
}

fn table_span(id: u64) -> (Vec<u8>, Vec<u8>) {
    let start = table_prefix(id);
    let end = prefix_end(&start).unwrap();
    (start, end)
}

fn partition_span(id: u64, index: u64, region: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = table_index_prefix(id, index);
    meridian_sql::encoding::encode_key_datum(
        &mut start,
        &Datum::Text(region.into()),
        meridian_keys::encoding::Direction::Ascending,
    )
    .unwrap();
    let end = prefix_end(&start).unwrap();
    (start, end)
}

/// How many rows of `table`'s primary index are in `region`'s partition.
async fn rows_in(cluster: &TestCluster, table: u64, region: &str) -> usize {
    let txn = Txn::begin(
        cluster.dist_sender().clone(),
        cluster.node(1).unwrap().clock.clone(),
        0,
    );
    let (start, end) = partition_span(table, 1, region);
    let found = txn.scan(&start, &end, 0).await.unwrap().len();
    txn.rollback().await.ok();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn zone_records_follow_ddl_and_rows_follow_their_region() {
    let config = ClusterConfig::multi_region(&REGIONS, 3);
    let cluster = TestCluster::start_with_one_range_on(config, &[1, 4, 7])
        .await
        .unwrap();
    let east = cluster.sql_engine(1).unwrap();
    let west = cluster.sql_engine(4).unwrap();
    let europe = cluster.sql_engine(7).unwrap();
    let mut setup = east.session("root", "defaultdb");
    run(
        &mut setup,
        r#"CREATE DATABASE movr PRIMARY REGION "us-east1" REGIONS "us-west1", "europe-west1""#,
    )
    .await;
    let mut s = east.session("root", "movr");
    run(
        &mut s,
        "CREATE TABLE promo (code TEXT PRIMARY KEY) LOCALITY GLOBAL",
    )
    .await;
    run(
        &mut s,
        r#"CREATE TABLE rides (id INT PRIMARY KEY) LOCALITY REGIONAL BY TABLE IN "us-west1""#,
    )
    .await;
    run(
        &mut s,
        "CREATE TABLE users (id INT PRIMARY KEY, email TEXT UNIQUE) LOCALITY REGIONAL BY ROW",
    )
    .await;
    let (promo, rides, users) = (
        table_id(&mut s, "promo").await,
        table_id(&mut s, "rides").await,
        table_id(&mut s, "users").await,
    );

    let expect = |survival: SurvivalGoal| {
        let settings = MultiRegionSettings {
            regions: REGIONS.iter().map(|r| r.to_string()).collect(),
            primary_region: "us-east1".into(),
            survival,
            placement: DataPlacement::Default,
        };
        let synth = |l: TableLocality| synthesize(&settings, &l).unwrap();
        let mut want = BTreeMap::new();
        want.insert(table_span(promo), synth(TableLocality::Global));
        want.insert(
            table_span(rides),
            synth(TableLocality::RegionalByTable(Some("us-west1".into()))),
        );
        want.insert(
            table_span(users),
            synth(TableLocality::RegionalByTable(None)),
        );
        for region in REGIONS {
            // The primary index (1) and the unique index on email (2).
            for index in [1, 2] {
                want.insert(
                    partition_span(users, index, region),
                    synth(TableLocality::RegionalByRow(region.into())),
                );
            }
        }
        want
    };
    assert_eq!(records(&cluster).await, expect(SurvivalGoal::Zone));

    // A database change rewrites every table's records in its transaction.
    run(&mut s, "ALTER DATABASE movr SURVIVE REGION FAILURE").await;
    assert_eq!(records(&cluster).await, expect(SurvivalGoal::Region));

    // Rows are homed by their gateway, found by key from anywhere, and
    // unique across regions.
    let mut w = west.session("root", "movr");
    let mut e = europe.session("root", "movr");
    run(&mut s, "INSERT INTO users VALUES (1, 'a@x')").await;
    run(&mut w, "INSERT INTO users VALUES (2, 'b@x')").await;
    run(&mut e, "INSERT INTO users VALUES (3, 'c@x')").await;
    for (session, id, home) in [
        (&mut w, 1, "us-east1"),
        (&mut e, 2, "us-west1"),
        (&mut s, 3, "europe-west1"),
    ] {
        let found = rows(
            run(
                session,
                &format!("SELECT region FROM users WHERE id = {id}"),
            )
            .await,
        );
        assert_eq!(text(&found[0][0]), home, "row {id}");
    }
    let dup = e
        .execute_simple("INSERT INTO users VALUES (1, 'z@x')")
        .await;
    assert_eq!(dup[0].as_ref().unwrap_err().code, "23505");
    let dup = s
        .execute_simple("INSERT INTO users VALUES (9, 'b@x')")
        .await;
    assert_eq!(dup[0].as_ref().unwrap_err().code, "23505");

    // Moving a row rewrites its key into the other partition.
    run(
        &mut s,
        "UPDATE users SET region = 'europe-west1' WHERE id = 1",
    )
    .await;
    assert_eq!(rows_in(&cluster, users, "us-east1").await, 0);
    assert_eq!(rows_in(&cluster, users, "us-west1").await, 1);
    assert_eq!(rows_in(&cluster, users, "europe-west1").await, 2);

    // SET LOCALITY REGIONAL BY ROW moves the rows into partitions (homed
    // by the gateway, in us-east1) with records of their own; back to
    // REGIONAL BY TABLE, the records are what they were.
    run(&mut s, "INSERT INTO rides VALUES (1), (2)").await;
    run(&mut s, "ALTER TABLE rides SET LOCALITY REGIONAL BY ROW").await;
    let now = records(&cluster).await;
    for region in REGIONS {
        let span = partition_span(rides, 1, region);
        assert!(now.contains_key(&span), "no record for rides in {region}");
    }
    assert_eq!(rows_in(&cluster, rides, "us-east1").await, 2);
    run(
        &mut s,
        r#"ALTER TABLE rides SET LOCALITY REGIONAL BY TABLE IN "us-west1""#,
    )
    .await;
    assert_eq!(records(&cluster).await, expect(SurvivalGoal::Region));
    let count = rows(run(&mut w, "SELECT count(*) FROM rides").await);
    assert_eq!(count[0][0], Datum::Int(2));

    // Names qualified by the session's database resolve; another
    // database's are refused (0A000), never read from this one.
    for sql in [
        "SELECT count(*) FROM movr.rides",
        "SELECT count(*) FROM movr.public.rides",
    ] {
        assert_eq!(rows(run(&mut w, sql).await)[0][0], Datum::Int(2), "{sql}");
    }
    for sql in [
        "SELECT * FROM defaultdb.rides",
        "UPSERT INTO defaultdb.public.rides VALUES (9)",
        "CREATE TABLE defaultdb.elsewhere (id INT PRIMARY KEY) LOCALITY GLOBAL",
    ] {
        let other = w.execute_simple(sql).await;
        assert_eq!(other[0].as_ref().unwrap_err().code, "0A000", "{sql}");
    }

    // DROP TABLE removes the table's records.
    run(&mut s, "DROP TABLE users").await;
    let left = records(&cluster).await;
    let (start, end) = table_span(users);
    assert!(
        left.keys().all(|(s, e)| !(start <= *s && *e <= end)),
        "records of a dropped table remain"
    );
    assert_eq!(left.len(), 2);
    cluster.shutdown().await;
}

/// What a gateway knows of the cluster's nodes: only its own region's
/// until something asks it to read the node records again (then all of
/// them), like a node's directory right after the others joined.
struct LaggingDirectory {
    all: Vec<(u64, Locality)>,
    refreshed: AtomicBool,
}

impl ClusterLocalities for LaggingDirectory {
    fn localities(&self) -> Vec<(u64, Locality)> {
        match self.refreshed.load(Ordering::SeqCst) {
            true => self.all.clone(),
            false => self.all.iter().take(1).cloned().collect(),
        }
    }

    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.refreshed.store(true, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_reads_the_node_records_again_before_refusing_a_region() {
    let config = ClusterConfig::multi_region(&REGIONS, 3);
    let cluster = TestCluster::start_with_one_range_on(config.clone(), &[1, 4, 7])
        .await
        .unwrap();
    let directory = Arc::new(LaggingDirectory {
        all: (1..).zip(config.localities.iter().cloned()).collect(),
        refreshed: AtomicBool::new(false),
    });
    let engine = SqlEngine::new(
        cluster.dist_sender().clone(),
        cluster.node(1).unwrap().clock.clone(),
        SqlConfig {
            node_id: 1,
            locality: vec![("region".into(), "us-east1".into())],
            cluster_localities: Some(directory.clone()),
            ..Default::default()
        },
    );
    let mut s = engine.session("root", "defaultdb");
    // A region nobody is in is refused even after a fresh read...
    let refused = s
        .execute_simple(r#"CREATE DATABASE nowhere PRIMARY REGION "mars-north1""#)
        .await;
    assert_eq!(refused[0].as_ref().unwrap_err().code, "42602");
    assert!(directory.refreshed.load(Ordering::SeqCst));
    // ...and one the stale picture lacked is found by it.
    directory.refreshed.store(false, Ordering::SeqCst);
    run(
        &mut s,
        r#"CREATE DATABASE movr PRIMARY REGION "us-east1" REGIONS "us-west1", "europe-west1""#,
    )
    .await;
    assert!(directory.refreshed.load(Ordering::SeqCst));
    cluster.shutdown().await;
}
