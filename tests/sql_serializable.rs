//! Serializability at the SQL level, with two sessions of one gateway on a
//! 3-node cluster: the classic write skew (two doctors each going off call
//! after checking that two are on call) cannot commit on both sides.

use std::time::Duration;

use meridian_sql::{ExecResult, Session, SqlError};
use meridian_testkit::TestCluster;

async fn run(session: &mut Session, sql: &str) -> Result<ExecResult, SqlError> {
    session
        .execute_simple(sql)
        .await
        .pop()
        .expect("one statement, one result")
}

fn count(result: ExecResult) -> i64 {
    match result {
        ExecResult::Rows { rows, .. } => match rows[0][0] {
            meridian_sql::Datum::Int(n) => n,
            ref other => panic!("not a count: {other:?}"),
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
            assert_eq!(count(run(&mut session, on_call).await.unwrap()), 2);
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
        count(run(&mut check, on_call).await.unwrap()),
        1,
        "one doctor stays on call"
    );
    cluster.shutdown().await;
}
