//! Serializability at the SQL level, with two sessions of one gateway on a
//! 3-node cluster: the classic write skew (two doctors each going off call
//! after checking that two are on call) cannot commit on both sides; and
//! a row read `FOR UPDATE` makes another session's update of it wait, so
//! the reader's own update commits without a retry.

mod common;

use std::time::Duration;

use common::lock_waiters;
use meridian_sql::{ExecResult, Session, SqlError};
use meridian_testkit::TestCluster;

async fn run(session: &mut Session, sql: &str) -> Result<ExecResult, SqlError> {
    session
        .execute_simple(sql)
        .await
        .pop()
        .expect("one statement, one result")
}

/// The first column of the first row, an integer.
fn first_int(result: ExecResult) -> i64 {
    match result {
        ExecResult::Rows { rows, .. } => match rows[0][0] {
            meridian_sql::Datum::Int(n) => n,
            ref other => panic!("not an integer: {other:?}"),
        },
        other => panic!("not rows: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_skew_between_two_sessions_is_refused() {
    let cluster = TestCluster::start_with_one_range(3).await.unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    let mut setup = engine.session("root", "defaultdb");
    run(
        &mut setup,
        "CREATE TABLE doctors (id INT PRIMARY KEY, on_call BOOL NOT NULL)",
    )
    .await
    .unwrap();
    run(
        &mut setup,
        "INSERT INTO doctors VALUES (1, true), (2, true)",
    )
    .await
    .unwrap();

    // Two doctors, each in a session of its own, check that both are on
    // call and then step down. Run concurrently, as two clients would (a
    // session blocked on the other's intent waits for it). At most one may
    // commit; the other gets SQLSTATE 40001 at its UPDATE or its COMMIT.
    let on_call = "SELECT count(*) FROM doctors WHERE on_call";
    let both_read = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    let mut doctors = Vec::new();
    for id in [1, 2] {
        let mut session = engine.session("root", "defaultdb");
        let both_read = both_read.clone();
        doctors.push(tokio::spawn(async move {
            run(&mut session, "BEGIN").await.unwrap();
            assert_eq!(first_int(run(&mut session, on_call).await.unwrap()), 2);
            both_read.wait().await;
            let update = format!("UPDATE doctors SET on_call = false WHERE id = {id}");
            let outcome = match run(&mut session, &update).await {
                Ok(_) => run(&mut session, "COMMIT").await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(ExecResult::Command { tag }) if tag == "COMMIT" => true,
                Err(e) => {
                    assert_eq!(e.code, "40001", "{e}");
                    let _ = run(&mut session, "ROLLBACK").await;
                    false
                }
                other => panic!("unexpected end of transaction: {other:?}"),
            }
        }));
    }
    let mut committed = 0;
    for doctor in doctors {
        committed += tokio::time::timeout(Duration::from_secs(60), doctor)
            .await
            .expect("both transactions end")
            .unwrap() as usize;
    }
    assert_eq!(committed, 1, "exactly one of the two may commit");
    let mut check = engine.session("root", "defaultdb");
    assert_eq!(
        first_int(run(&mut check, on_call).await.unwrap()),
        1,
        "one doctor stays on call"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn select_for_update_makes_a_concurrent_update_wait_instead_of_failing_the_reader() {
    let cluster = TestCluster::start_with_one_range(3).await.unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    let mut reader = engine.session("root", "defaultdb");
    run(
        &mut reader,
        "CREATE TABLE accounts (id INT PRIMARY KEY, balance INT NOT NULL)",
    )
    .await
    .unwrap();
    run(&mut reader, "INSERT INTO accounts VALUES (1, 100)")
        .await
        .unwrap();

    run(&mut reader, "BEGIN").await.unwrap();
    let read = "SELECT balance FROM accounts WHERE id = 1 FOR UPDATE";
    assert_eq!(first_int(run(&mut reader, read).await.unwrap()), 100);
    let mut other = engine.session("root", "defaultdb");
    let update = tokio::spawn(async move {
        run(
            &mut other,
            "UPDATE accounts SET balance = balance + 10 WHERE id = 1",
        )
        .await
    });
    cluster
        .wait_for(
            "the other update to wait for the row lock",
            Duration::from_secs(30),
            || async { (lock_waiters(&cluster) == 1).then_some(()) },
        )
        .await
        .unwrap();
    // Without the lock the other update would have committed by now, and
    // this one would fail with 40001.
    run(
        &mut reader,
        "UPDATE accounts SET balance = balance + 1 WHERE id = 1",
    )
    .await
    .expect("the reader's update");
    run(&mut reader, "COMMIT")
        .await
        .expect("the reader commits");
    tokio::time::timeout(Duration::from_secs(60), update)
        .await
        .expect("the other update ends")
        .unwrap()
        .expect("the other update commits after the reader");
    let total = "SELECT balance FROM accounts WHERE id = 1";
    assert_eq!(first_int(run(&mut reader, total).await.unwrap()), 111);
    cluster.shutdown().await;
}
