//! The SQL logic tests (`tests/sql/*.slt`, sqllogictest format), run
//! three ways: through a session of the SQL engine on a 3-node cluster of
//! stores (every statement goes through the transaction coordinator, the
//! DistSender and Raft), and over pgwire against a 3-node cluster of whole
//! nodes with tokio-postgres, once in the simple protocol (text results)
//! and once in the extended protocol (parse, bind, describe, execute, with
//! binary results). The multi-region files (`multiregion*.slt`) run through
//! sessions on a cluster in three regions, with gateways in each.

use std::path::PathBuf;
use std::sync::Arc;

use meridian_sql::{ExecResult, Session, SqlError, SqlType};
use meridian_testkit::{NodeCluster, TestCluster};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

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
    tag.rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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

/// Files whose name starts with this need a cluster in several regions
/// ([`multi_region_sql_logic_tests_pass_through_sessions`]).
const MULTI_REGION_PREFIX: &str = "multiregion";

fn slt_files() -> Vec<PathBuf> {
    all_slt_files()
        .into_iter()
        .filter(|p| !is_multi_region(p))
        .collect()
}

fn is_multi_region(path: &std::path::Path) -> bool {
    path.file_stem()
        .is_some_and(|s| s.to_string_lossy().starts_with(MULTI_REGION_PREFIX))
}

fn all_slt_files() -> Vec<PathBuf> {
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
    let cluster = TestCluster::start_with_one_range(3).await.unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    let mut failures = Vec::new();
    for file in slt_files() {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let mut setup = engine.session("root", "defaultdb");
        let created = setup
            .execute_simple(&format!("CREATE DATABASE {name}"))
            .await;
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

/// The multi-region files, on 9 nodes in 3 regions (3 zones each; one
/// range, on a node of each region). The default connection's gateway is
/// in us-east1; the file's first named connection gets one in us-west1,
/// the second one in europe-west1 (then round again). With
/// `MERIDIAN_SLT_REWRITE` set, the expected results are rewritten from
/// what the statements return instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_region_sql_logic_tests_pass_through_sessions() {
    use meridian_testkit::ClusterConfig;
    let config = ClusterConfig::multi_region(&["us-east1", "us-west1", "europe-west1"], 3);
    let cluster = TestCluster::start_with_one_range_on(config, &[1, 4, 7])
        .await
        .unwrap();
    let engines: Vec<_> = [1, 4, 7]
        .iter()
        .map(|id| cluster.sql_engine(*id).unwrap())
        .collect();
    let mut failures = Vec::new();
    for file in all_slt_files().into_iter().filter(|p| is_multi_region(p)) {
        let name = file.file_stem().unwrap().to_string_lossy().to_string();
        let mut setup = engines[0].session("root", "defaultdb");
        let created = setup
            .execute_simple(&format!("CREATE DATABASE {name}"))
            .await;
        assert!(created.iter().all(Result::is_ok), "{created:?}");
        let engines = engines.clone();
        let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let database = name.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let i = made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let session = engines[i % engines.len()].session("root", &database);
            async move { Ok(SessionDb { session }) }
        });
        if std::env::var_os("MERIDIAN_SLT_REWRITE").is_some() {
            // Writes the results the statements gave into the file, to
            // review with `git diff`.
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap();
        } else if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    cluster.shutdown().await;
}

/// The protocol a pgwire connection speaks.
#[derive(Clone, Copy, Debug)]
enum Protocol {
    Simple,
    Extended,
}

struct PgDb {
    client: Client,
    protocol: Protocol,
}

/// An error as the .slt files match it: the message and the SQLSTATE.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PgError(String);

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> PgError {
        PgError(match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => e.to_string(),
        })
    }
}

/// A value in whatever binary form the server sent, for decoding with the
/// sql crate's own binary decoder.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Raw, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

fn text_cell(value: Option<&str>) -> String {
    match value {
        None => "NULL".into(),
        Some("") => "(empty)".into(),
        Some(s) => s.into(),
    }
}

impl PgDb {
    async fn simple(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let mut rows = Vec::new();
        let mut width = None;
        let mut count = 0;
        for message in self.client.simple_query(sql).await? {
            match message {
                SimpleQueryMessage::Row(row) => {
                    width = Some(row.len());
                    rows.push((0..row.len()).map(|i| text_cell(row.get(i))).collect());
                }
                SimpleQueryMessage::RowDescription(columns) => width = Some(columns.len()),
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        Ok(match width {
            Some(width) => DBOutput::Rows {
                types: vec![DefaultColumnType::Text; width],
                rows,
            },
            None => DBOutput::StatementComplete(count),
        })
    }

    async fn extended(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        let statement = self.client.prepare(sql).await?;
        if statement.columns().is_empty() {
            return Ok(DBOutput::StatementComplete(
                self.client.execute(&statement, &[]).await?,
            ));
        }
        let types: Vec<SqlType> = statement
            .columns()
            .iter()
            .map(|c| SqlType::from_oid(c.type_().oid()).unwrap_or(SqlType::Text))
            .collect();
        let mut rows = Vec::new();
        for row in self.client.query(&statement, &[]).await? {
            let mut cells = Vec::with_capacity(types.len());
            for (i, ty) in types.iter().enumerate() {
                let raw: Option<Raw> = row.try_get(i)?;
                let datum = match raw {
                    None => meridian_sql::Datum::Null,
                    Some(Raw(bytes)) => meridian_sql::types::binary::decode(&bytes, *ty)
                        .map_err(|e| PgError(format!("undecodable {ty} in column {i}: {e}")))?,
                };
                cells.push(cell(&datum));
            }
            rows.push(cells);
        }
        Ok(DBOutput::Rows {
            types: types.iter().map(|t| column_type(*t)).collect(),
            rows,
        })
    }
}

#[async_trait::async_trait]
impl AsyncDB for PgDb {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        match self.protocol {
            Protocol::Simple => self.simple(sql).await,
            Protocol::Extended => self.extended(sql).await,
        }
    }

    async fn shutdown(&mut self) {}

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

async fn pg_connect(
    addr: std::net::SocketAddr,
    database: &str,
    protocol: Protocol,
) -> Result<PgDb, PgError> {
    let config = format!(
        "host={} port={} user=root dbname={database}",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(PgDb { client, protocol })
}

/// Every .slt file over pgwire, in both protocols, each run in a database
/// of its own through a different node of the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sql_logic_tests_pass_over_pgwire_in_both_protocols() {
    let cluster = NodeCluster::start(3).await.unwrap();
    let addrs = cluster.sql_addrs();
    let mut failures = Vec::new();
    for (i, file) in slt_files().iter().enumerate() {
        for protocol in [Protocol::Simple, Protocol::Extended] {
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            let database = format!("{stem}_{protocol:?}").to_lowercase();
            let addr = addrs[i % addrs.len()];
            let mut setup = pg_connect(addr, "defaultdb", Protocol::Simple)
                .await
                .unwrap();
            setup
                .simple(&format!("CREATE DATABASE {database}"))
                .await
                .unwrap();
            let mut runner = sqllogictest::Runner::new(move || {
                let database = database.clone();
                async move { pg_connect(addr, &database, protocol).await }
            });
            if let Err(e) = runner.run_file_async(file).await {
                failures.push(format!("{stem} ({protocol:?}): {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    cluster.shutdown().await;
}
