//! The SQL logic tests (`tests/sql/*.slt`, sqllogictest format) run
//! through a session of the SQL engine on a real 3-node cluster: every
//! statement goes through the transaction coordinator, the DistSender and
//! Raft. The same files run over pgwire in `tests/pgwire.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use meridian_keys::space::MAX_KEY;
use meridian_sql::{ExecResult, Session, SqlConfig, SqlEngine, SqlError, SqlType};
use meridian_testkit::{ClusterConfig, TestCluster};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};

struct SessionDb {
    session: Session,
}

/// A row value as the .slt files spell it: NULL, `(empty)` for the empty
/// string, PostgreSQL's text form otherwise.
fn cell(d: &meridian_sql::Datum) -> String {
    match meridian_sql::types::text::format(d) {
        None => "NULL".into(),
        Some(s) if s.is_empty() => "(empty)".into(),
        Some(s) => s,
    }
}

fn column_type(ty: SqlType) -> DefaultColumnType {
    match ty {
        t if t.is_integer() => DefaultColumnType::Integer,
        SqlType::Float4 | SqlType::Float8 | SqlType::Numeric => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

/// The row count a command tag ends with (`INSERT 0 3` is 3).
pub fn tag_count(tag: &str) -> u64 {
    tag.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[async_trait::async_trait]
impl AsyncDB for SessionDb {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let mut last = DBOutput::StatementComplete(0);
        for result in self.session.execute_simple(sql).await {
            last = match result? {
                ExecResult::Rows { columns, rows, .. } => DBOutput::Rows {
                    types: columns.iter().map(|c| column_type(c.ty)).collect(),
                    rows: rows.iter().map(|r| r.iter().map(cell).collect()).collect(),
                },
                ExecResult::Command { tag } => DBOutput::StatementComplete(tag_count(&tag)),
                ExecResult::Empty => DBOutput::StatementComplete(0),
            };
        }
        Ok(last)
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

/// Every .slt file, each in a database of its own, through sessions of a
/// gateway on node 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_logic_tests_pass_through_a_session() {
    let cluster = TestCluster::start(ClusterConfig::new(3)).await.unwrap();
    cluster.create_range(1, b"", MAX_KEY, &[1, 2, 3]).await.unwrap();
    cluster.wait_for_leader(1, Duration::from_secs(30)).await.unwrap();
    let engine = SqlEngine::new(
        cluster.dist_sender().clone(),
        cluster.node(1).unwrap().clock.clone(),
        SqlConfig {
            node_id: 1,
            ..Default::default()
        },
    );
    let mut failures = Vec::new();
    for file in slt_files() {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let mut setup = engine.session("root", "defaultdb");
        let created = setup.execute_simple(&format!("CREATE DATABASE {name}")).await;
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let engine = Arc::clone(&engine);
        let database = name.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let session = engine.session("root", &database);
            async move { Ok(SessionDb { session }) }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    cluster.shutdown().await;
}
