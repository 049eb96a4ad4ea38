//! Transactions through the coordinator (`kvclient::txn`) on a real
//! 3-node cluster with two ranges: atomic commits across ranges, no lost
//! update under contention, transfers that keep the total, and one-phase
//! commits (a one-range transaction as one Raft command, leaving no
//! intent and no record, never under a read served before it).

mod common;

use std::sync::Arc;

use common::{record_of, two_ranges, WAIT};
use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::{Request, Response};
use meridian_kvclient::txn::{run_txn, Txn, TxnError};
use meridian_testkit::{BatchHeader, DistSender, TestCluster};

fn number(value: Option<Vec<u8>>) -> i64 {
    value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
}

async fn read_number(txn: &Txn, key: &[u8]) -> Result<i64, TxnError> {
    Ok(number(txn.get(key).await?))
}

/// Writes on two ranges commit together: a transaction that reads both
/// sees both or neither, and after the commit both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transaction_s_writes_on_two_ranges_appear_together() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    run_txn(&ds, &clock, |txn| async move {
        txn.put(b"b", b"1").await?;
        txn.put(b"n", b"1").await
    })
    .await
    .unwrap();
    let (b, n) = run_txn(&ds, &clock, |txn| async move {
        Ok((txn.get(b"b").await?, txn.get(b"n").await?))
    })
    .await
    .unwrap();
    assert_eq!(
        (b.as_deref(), n.as_deref()),
        (Some(&b"1"[..]), Some(&b"1"[..]))
    );

    // A rolled-back transaction leaves nothing.
    let txn = Txn::begin(ds.clone(), clock.clone(), 1);
    txn.put(b"b", b"2").await.unwrap();
    txn.put(b"n", b"2").await.unwrap();
    txn.rollback().await.unwrap();
    let b = run_txn(&ds, &clock, |txn| async move { txn.get(b"b").await })
        .await
        .unwrap();
    assert_eq!(b.as_deref(), Some(&b"1"[..]));
    cluster.shutdown().await;
}

/// Sixteen transactions increment one counter at once: every increment
/// counts (no lost update), whatever restarts and pushes it took.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_increments_lose_no_update() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let increments = 16;
    let mut tasks = Vec::new();
    for _ in 0..increments {
        let (ds, clock) = (ds.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            run_txn(&ds, &clock, |txn| async move {
                let n = read_number(&txn, b"counter").await?;
                txn.put(b"counter", (n + 1).to_string().as_bytes()).await
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("an increment gave up");
    }
    let total = run_txn(&ds, &clock, |txn| async move {
        read_number(&txn, b"counter").await
    })
    .await
    .unwrap();
    assert_eq!(total, increments);
    cluster.shutdown().await;
}

/// Four clients move money between four accounts on two ranges, each
/// transfer reading both accounts and writing both; the total never
/// changes, and every read-only sum along the way is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transfers_across_ranges_keep_the_total() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock: Arc<_> = cluster.node(1).unwrap().clock.clone();
    let accounts: [&[u8]; 4] = [b"b0", b"b1", b"n0", b"n1"];
    run_txn(&ds, &clock, |txn| async move {
        for account in accounts {
            txn.put(account, b"100").await?;
        }
        Ok(())
    })
    .await
    .unwrap();

    transfer_concurrently(&ds, &clock, accounts, false).await;
    cluster.shutdown().await;
}

/// A transaction pushed above a later read of the key it writes checks
/// its own reads at the new timestamp and carries on when they are
/// unchanged; when one changed in between, it must restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_transaction_refreshes_its_reads_instead_of_restarting() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();

    let pushed = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(pushed.get(b"b").await.unwrap(), None);
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    reader.get(b"n").await.unwrap();
    reader.commit().await.unwrap();
    // At its own timestamp this write would land under the reader's read.
    pushed.put(b"n", b"1").await.unwrap();
    assert!(pushed.meta().write_timestamp > reader.meta().write_timestamp);
    pushed.commit().await.unwrap();

    let stale = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(stale.get(b"c").await.unwrap(), None);
    let writer = Txn::begin(ds.clone(), clock.clone(), 1);
    writer.put(b"c", b"x").await.unwrap();
    writer.commit().await.unwrap();
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    reader.get(b"o").await.unwrap();
    reader.commit().await.unwrap();
    match stale.put(b"o", b"2").await {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("a refresh over a changed read must fail: {other:?}"),
    }
    stale.rollback().await.unwrap();
    cluster.shutdown().await;
}

/// A refresh does not take a key's earlier read as checked because the
/// transaction is writing that key: the write that was refused as too old
/// laid no intent, so a value written in between must fail the refresh
/// (else the update would be lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_catches_a_write_to_a_key_the_transaction_read_and_now_writes() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let slow = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(slow.get(b"d").await.unwrap(), None);
    let fast = Txn::begin(ds.clone(), clock.clone(), 1);
    fast.put(b"d", b"fast").await.unwrap();
    fast.commit().await.unwrap();
    match slow.put(b"d", b"slow").await {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("the read of d changed: the refresh must fail, got {other:?}"),
    }
    slow.rollback().await.unwrap();
    cluster.shutdown().await;
}

/// 4 clients each make 8 transfers of 7 between the 4 accounts (100 each
/// to start), every one followed by a read-only transaction that must sum
/// them to 400. With `one_phase`, a transfer's writes go with its commit
/// (`write_batch_and_commit`); otherwise as two puts before it.
async fn transfer_concurrently(
    ds: &DistSender,
    clock: &Arc<HybridClock>,
    accounts: [&'static [u8]; 4],
    one_phase: bool,
) {
    let mut clients = Vec::new();
    for client in 0..4usize {
        let (ds, clock) = (ds.clone(), clock.clone());
        clients.push(tokio::spawn(async move {
            for i in 0..8usize {
                let from = accounts[(client + i) % 4];
                let to = accounts[(client + i + 1 + i % 2) % 4];
                run_txn(&ds, &clock, |txn| async move {
                    let a = read_number(&txn, from).await?;
                    let b = read_number(&txn, to).await?;
                    let (a, b) = ((a - 7).to_string(), (b + 7).to_string());
                    if one_phase {
                        let writes = vec![put(from, a.as_bytes()), put(to, b.as_bytes())];
                        txn.write_batch_and_commit(writes).await.map(|_| ())
                    } else {
                        txn.put(from, a.as_bytes()).await?;
                        txn.put(to, b.as_bytes()).await
                    }
                })
                .await?;
                let sum = run_txn(&ds, &clock, |txn| async move {
                    let mut sum = 0;
                    for account in accounts {
                        sum += read_number(&txn, account).await?;
                    }
                    Ok(sum)
                })
                .await?;
                assert_eq!(sum, 400, "a read-only transaction saw a wrong total");
            }
            Ok::<_, TxnError>(())
        }));
    }
    for client in clients {
        client.await.unwrap().expect("a transfer gave up");
    }
}

fn put(key: &[u8], value: &[u8]) -> Request {
    Request::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

/// Raft commands proposed so far by all nodes.
fn proposals(cluster: &TestCluster) -> u64 {
    cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.store(id).unwrap().metrics().proposals.get())
        .sum()
}

/// `key` read at exactly `at`, outside any transaction.
async fn value_at(ds: &DistSender, key: &[u8], at: Timestamp) -> Option<Vec<u8>> {
    let header = BatchHeader {
        timestamp: Some(at),
        txn: None,
        ..Default::default()
    };
    match ds
        .send_with(&header, vec![Request::Get { key: key.to_vec() }])
        .await
        .unwrap()
        .pop()
    {
        Some(Response::Get { value }) => value,
        other => panic!("a get answered {other:?}"),
    }
}

/// Writes on one range and their commit go as one batch: one Raft
/// command, and neither an intent (a plain read right after the commit
/// would meet it) nor a record is left; the transaction ordinarily
/// committed beside it leaves its COMMITTED record, so the check can tell
/// the two paths apart. Writes on two ranges take the ordinary path.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_range_transaction_commits_in_one_phase_leaving_nothing_behind() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    // Warm the range cache and the lease (a one-phase commit too, so
    // nothing is resolved in the background), so the count below is of
    // the commit alone.
    run_txn(&ds, &clock, |txn| async move {
        txn.write_batch_and_commit(vec![put(b"b", b"0")])
            .await
            .map(|_| ())
    })
    .await
    .unwrap();

    let txn = Txn::begin(ds.clone(), clock.clone(), 1);
    let before = proposals(&cluster);
    let responses = txn
        .write_batch_and_commit(vec![put(b"b", b"1"), put(b"c", b"2")])
        .await
        .unwrap();
    assert_eq!(responses, vec![Response::Put, Response::Put]);
    assert_eq!(proposals(&cluster) - before, 1, "one Raft command");
    for key in [&b"b"[..], b"c"] {
        assert_eq!(ds.describe_intent(key).await.unwrap(), None, "an intent");
    }
    assert_eq!(ds.get(b"b").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(ds.get(b"c").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(record_of(&ds, &txn.meta()).await, None, "a record");
    for id in cluster.node_ids() {
        let engine = cluster.store(id).unwrap().engine();
        assert_eq!(engine.txn_records_in(b"a", b"z").unwrap(), Vec::new());
    }
    txn.commit().await.expect("committing again does nothing");

    // The same writes through the ordinary path leave a record.
    let ordinary = Txn::begin(ds.clone(), clock.clone(), 1);
    ordinary.put(b"b", b"3").await.unwrap();
    ordinary.commit().await.unwrap();
    let record = record_of(&ds, &ordinary.meta()).await.expect("a record");
    assert_eq!(record.status, meridian_kvapi::TxnStatus::Committed);

    // Two ranges: a parallel commit, whose STAGING record its coordinator
    // makes COMMITTED after the answer.
    let two = Txn::begin(ds.clone(), clock.clone(), 1);
    two.write_batch_and_commit(vec![put(b"d", b"4"), put(b"o", b"4")])
        .await
        .unwrap();
    let meta = two.meta();
    cluster
        .wait_for("the parallel commit's record to be COMMITTED", WAIT, || {
            let ds = ds.clone();
            let meta = meta.clone();
            async move {
                record_of(&ds, &meta)
                    .await
                    .filter(|r| r.status == meridian_kvapi::TxnStatus::Committed)
            }
        })
        .await
        .unwrap();
    let (d, o) = run_txn(&ds, &clock, |txn| async move {
        Ok((txn.get(b"d").await?, txn.get(b"o").await?))
    })
    .await
    .unwrap();
    assert_eq!(
        (d.as_deref(), o.as_deref()),
        (Some(&b"4"[..]), Some(&b"4"[..]))
    );
    cluster.shutdown().await;
}

/// A one-phase commit goes through the timestamp cache: a transaction
/// that began before another read its key commits above that read, so the
/// read (repeated at its timestamp) still sees the old value; the
/// transaction's own earlier read is refreshed at the new timestamp.
/// When that read changed in between, the transaction must restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_phase_commit_never_lands_under_a_read_served_before_it() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    ds.put(b"k", b"old").await.unwrap();

    let txn = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(txn.get(b"x").await.unwrap(), None);
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(
        reader.get(b"k").await.unwrap().as_deref(),
        Some(&b"old"[..])
    );
    reader.commit().await.unwrap();
    let read_at = reader.meta().write_timestamp;
    assert!(txn.meta().write_timestamp < read_at);

    txn.write_batch_and_commit(vec![put(b"k", b"new")])
        .await
        .unwrap();
    assert!(
        txn.meta().write_timestamp > read_at,
        "committed at {} under a read at {read_at}",
        txn.meta().write_timestamp
    );
    assert_eq!(
        value_at(&ds, b"k", read_at).await.as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(ds.get(b"k").await.unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(record_of(&ds, &txn.meta()).await, None);

    // The same, but the transaction's own read changed in between.
    let stale = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(stale.get(b"y").await.unwrap(), None);
    ds.put(b"y", b"changed").await.unwrap();
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    reader.get(b"k").await.unwrap();
    reader.commit().await.unwrap();
    match stale
        .write_batch_and_commit(vec![put(b"k", b"stale")])
        .await
    {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("a refresh over a changed read must fail: {other:?}"),
    }
    stale.rollback().await.unwrap();
    assert_eq!(ds.get(b"k").await.unwrap().as_deref(), Some(&b"new"[..]));
    cluster.shutdown().await;
}

/// Sixteen one-phase increments of one counter and four clients moving
/// money with one-phase commits (between accounts of one range) and
/// ordinary ones (across ranges): no increment is lost, the total never
/// changes, and every read-only sum is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_phase_commits_under_contention_lose_nothing() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock: Arc<_> = cluster.node(1).unwrap().clock.clone();
    let increments = 16;
    let mut tasks = Vec::new();
    for _ in 0..increments {
        let (ds, clock) = (ds.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            run_txn(&ds, &clock, |txn| async move {
                let n = read_number(&txn, b"counter").await?;
                let next = (n + 1).to_string();
                txn.write_batch_and_commit(vec![put(b"counter", next.as_bytes())])
                    .await
                    .map(|_| ())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().expect("an increment gave up");
    }
    let total = run_txn(&ds, &clock, |txn| async move {
        read_number(&txn, b"counter").await
    })
    .await
    .unwrap();
    assert_eq!(total, increments);

    let accounts: [&[u8]; 4] = [b"b0", b"b1", b"n0", b"n1"];
    run_txn(&ds, &clock, |txn| async move {
        let puts = accounts.iter().map(|a| put(a, b"100")).collect();
        txn.write_batch_and_commit(puts).await.map(|_| ())
    })
    .await
    .unwrap();
    transfer_concurrently(&ds, &clock, accounts, true).await;
    cluster.shutdown().await;
}

/// SQL's implicit transactions commit an INSERT, UPDATE or DELETE on one
/// range in one phase: one Raft command per statement, no record left;
/// inside an explicit block the statement's writes wait for COMMIT (a
/// ROLLBACK leaves nothing); a unique violation commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_implicit_writes_on_one_range_commit_in_one_phase() {
    let cluster = TestCluster::start_with_one_range(3).await.unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    let mut session = engine.session("root", "defaultdb");
    let mut run = async |sql: &str| {
        session
            .execute_simple(sql)
            .await
            .pop()
            .expect("one statement, one result")
    };
    run("CREATE TABLE t (k INT PRIMARY KEY, v INT NOT NULL UNIQUE)")
        .await
        .unwrap();
    run("INSERT INTO t VALUES (0, 0)").await.unwrap();
    for statement in [
        "INSERT INTO t VALUES (1, 10), (2, 20)",
        "UPDATE t SET v = v + 1 WHERE k = 1",
        "DELETE FROM t WHERE k = 2",
    ] {
        let before = proposals(&cluster);
        run(statement).await.unwrap();
        assert_eq!(proposals(&cluster) - before, 1, "{statement}");
    }
    let error = run("INSERT INTO t VALUES (3, 11)").await.unwrap_err();
    assert_eq!(error.code, "23505", "{error:?}");
    run("BEGIN").await.unwrap();
    run("INSERT INTO t VALUES (4, 40)").await.unwrap();
    run("ROLLBACK").await.unwrap();
    let rows = match run("SELECT k, v FROM t ORDER BY k").await.unwrap() {
        meridian_sql::ExecResult::Rows { rows, .. } => rows,
        other => panic!("not rows: {other:?}"),
    };
    use meridian_sql::Datum::Int;
    assert_eq!(rows, vec![vec![Int(0), Int(0)], vec![Int(1), Int(11)]]);
    for id in cluster.node_ids() {
        let engine = cluster.store(id).unwrap().engine();
        let committed: Vec<_> = engine
            .txn_records_in(b"", b"\xff\xff")
            .unwrap()
            .into_iter()
            .filter(|r| r.status == meridian_kvapi::TxnStatus::Committed)
            .collect();
        // The DDL's transaction wrote intents and a record: the statements
        // after it none.
        assert!(committed.len() <= 1, "{committed:?}");
    }
    cluster.shutdown().await;
}

/// KV batches the stores served, all nodes together.
fn batches(cluster: &TestCluster) -> u64 {
    cluster
        .node_ids()
        .into_iter()
        .map(|id| cluster.store(id).unwrap().metrics().batches.get())
        .sum()
}

/// A statement reads its database's and its tables' descriptors in one
/// batch: a point select costs two batches, the descriptors and the row,
/// also after its database was dropped and created again under the same
/// name (the guessed id is checked, then the tables are read by the
/// right one).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_point_select_reads_its_descriptors_in_one_batch() {
    let cluster = TestCluster::start_with_one_range(3).await.unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    let mut admin = engine.session("root", "defaultdb");
    let mut owner = engine.session("root", "shop");
    admin
        .execute_simple("CREATE DATABASE shop")
        .await
        .pop()
        .unwrap()
        .unwrap();
    for sql in [
        "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)",
        "INSERT INTO t VALUES (1, 'one')",
    ] {
        owner.execute_simple(sql).await.pop().unwrap().unwrap();
    }
    let mut session = engine.session("root", "shop");
    let mut select = async || match session
        .execute_simple("SELECT v FROM t WHERE k = 1")
        .await
        .pop()
        .unwrap()
        .unwrap()
    {
        meridian_sql::ExecResult::Rows { rows, .. } => rows,
        other => panic!("not rows: {other:?}"),
    };
    use meridian_sql::Datum::Text;
    // The first learns the database's id (and warms the range cache).
    assert_eq!(select().await, vec![vec![Text("one".into())]]);
    let before = batches(&cluster);
    assert_eq!(select().await, vec![vec![Text("one".into())]]);
    assert_eq!(batches(&cluster) - before, 2, "descriptors, then the row");

    for (in_shop, sql) in [
        (true, "DROP TABLE t"),
        (false, "DROP DATABASE shop"),
        (false, "CREATE DATABASE shop"),
        (true, "CREATE TABLE t (k INT PRIMARY KEY, v TEXT)"),
        (true, "INSERT INTO t VALUES (1, 'uno')"),
    ] {
        let session = if in_shop { &mut owner } else { &mut admin };
        session.execute_simple(sql).await.pop().unwrap().unwrap();
    }
    assert_eq!(select().await, vec![vec![Text("uno".into())]]);
    let before = batches(&cluster);
    assert_eq!(select().await, vec![vec![Text("uno".into())]]);
    assert_eq!(batches(&cluster) - before, 2, "the new id is guessed now");
    cluster.shutdown().await;
}

/// A write the leaseholder moves above a later read of its key lays its
/// intent there only if nothing was written on the key since the
/// transaction's timestamp: here a value committed in between (and read
/// after) must still fail the writer's refresh, or the writer would
/// commit an update computed from the value it read before (a lost
/// update; its refresh leaves out keys it holds intents on).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_moved_above_a_read_still_catches_a_write_in_between() {
    let cluster = two_ranges().await;
    let ds = cluster.dist_sender().clone();
    let clock = cluster.node(1).unwrap().clock.clone();
    let slow = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(slow.get(b"e").await.unwrap(), None);
    let fast = Txn::begin(ds.clone(), clock.clone(), 1);
    fast.put(b"e", b"fast").await.unwrap();
    fast.commit().await.unwrap();
    let reader = Txn::begin(ds.clone(), clock.clone(), 1);
    assert_eq!(
        reader.get(b"e").await.unwrap().as_deref(),
        Some(&b"fast"[..])
    );
    reader.commit().await.unwrap();
    match slow.put(b"e", b"slow").await {
        Err(TxnError::Restart { .. }) => {}
        other => panic!("the read of e changed: the refresh must fail, got {other:?}"),
    }
    slow.rollback().await.unwrap();
    let e = run_txn(&ds, &clock, |txn| async move { txn.get(b"e").await })
        .await
        .unwrap();
    assert_eq!(e.as_deref(), Some(&b"fast"[..]));
    cluster.shutdown().await;
}
