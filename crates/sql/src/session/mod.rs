//! One client connection's SQL state: its transaction (none, open, or
//! failed and waiting for ROLLBACK), its settings, and the statements it
//! runs. A statement outside BEGIN runs in a transaction of its own that
//! is retried inside the server on a serialization conflict; one inside
//! BEGIN runs in the open transaction, and a conflict ends that
//! transaction and reaches the client as SQLSTATE 40001, as in
//! PostgreSQL and CockroachDB. A SELECT or BEGIN with `AS OF SYSTEM
//! TIME` gets a read-only transaction at that time
//! (`Txn::begin_historical`), whose reads may be served by the nearest
//! replica.
//!
//! Not here: planning and executing a statement (`crate::exec`), the wire
//! protocol (the server's pgwire listener).

mod as_of;
mod savepoints;
mod vars;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_kvclient::txn::Txn;
use sqlparser::ast;

use crate::engine::SqlEngine;
use crate::error::{code, SqlError};
use crate::exec::{self, ExecContext};
use crate::parser::{self, MeridianStatement, Statement};
use crate::types::{Datum, SqlType};
use vars::{DEFAULT_VARS, REPORTED_VARS};

/// How often an implicit transaction runs before its conflict reaches the
/// client.
const MAX_IMPLICIT_ATTEMPTS: u32 = 32;

/// A result column: its name and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub ty: SqlType,
}

impl ColumnInfo {
    pub fn new(name: impl Into<String>, ty: SqlType) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            ty,
        }
    }
}

/// What a statement returns.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecResult {
    /// Rows (a query, or a write with RETURNING), with the tag the client
    /// sees at completion (`SELECT 3`, `INSERT 0 3`).
    Rows {
        columns: Vec<ColumnInfo>,
        rows: Vec<Vec<Datum>>,
        tag: String,
    },
    /// A command's completion tag (`CREATE TABLE`, `INSERT 0 1`, ...).
    Command { tag: String },
    /// An empty statement.
    Empty,
}

impl ExecResult {
    pub fn rows(columns: Vec<ColumnInfo>, rows: Vec<Vec<Datum>>) -> ExecResult {
        let tag = format!("SELECT {}", rows.len());
        ExecResult::Rows { columns, rows, tag }
    }

    pub fn command(tag: impl Into<String>) -> ExecResult {
        ExecResult::Command { tag: tag.into() }
    }

    /// The completion tag.
    pub fn tag(&self) -> &str {
        match self {
            ExecResult::Rows { tag, .. } | ExecResult::Command { tag } => tag,
            ExecResult::Empty => "",
        }
    }
}

/// A statement parsed and described for the extended protocol.
#[derive(Debug, Clone)]
pub struct PreparedStatement {
    pub sql: String,
    /// The type of each `$n` parameter.
    pub param_types: Vec<SqlType>,
    /// The columns it returns (empty for a command).
    pub columns: Vec<ColumnInfo>,
    pub(crate) statement: Option<Statement>,
}

/// The transaction state a client sees in ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    Idle,
    InBlock,
    Failed,
}

enum TxnState {
    None,
    Open(Txn),
    /// An error (or a cancelled statement) failed the block. The
    /// transaction, if kept, may go on after a `ROLLBACK TO SAVEPOINT`;
    /// otherwise the block waits for ROLLBACK.
    Failed(Option<Txn>),
}

/// A connection's session. Not shared between connections.
pub struct Session {
    engine: Arc<SqlEngine>,
    user: String,
    pub(crate) database: String,
    pub(crate) vars: BTreeMap<String, String>,
    txn: TxnState,
    /// The open block's savepoints, oldest first.
    savepoints: Vec<savepoints::NamedSavepoint>,
    /// Descriptors the current transaction has read.
    descriptors: parking_lot::Mutex<crate::catalog::TxnDescriptors>,
}

impl Session {
    pub(crate) fn new(engine: Arc<SqlEngine>, user: &str, database: &str) -> Session {
        Session {
            engine,
            user: user.to_string(),
            database: database.to_string(),
            vars: DEFAULT_VARS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            txn: TxnState::None,
            savepoints: Vec::new(),
            descriptors: Default::default(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Sets a variable from the startup message (`application_name`,
    /// `client_encoding`, `DateStyle`, ...); unknown ones are kept too.
    pub fn set_startup_var(&mut self, name: &str, value: &str) {
        self.vars
            .insert(name.to_ascii_lowercase(), value.to_string());
    }

    /// The ParameterStatus pairs a client is sent after authentication.
    pub fn parameter_status(&self) -> Vec<(String, String)> {
        REPORTED_VARS
            .iter()
            .map(|(key, name)| {
                let value = self.vars.get(*key).cloned().unwrap_or_default();
                (name.to_string(), value)
            })
            .collect()
    }

    pub fn transaction_status(&self) -> TransactionStatus {
        match self.txn {
            TxnState::None => TransactionStatus::Idle,
            TxnState::Open(_) => TransactionStatus::InBlock,
            TxnState::Failed(_) => TransactionStatus::Failed,
        }
    }

    /// Runs every statement of `sql` (the simple protocol), stopping after
    /// the first that fails: its error is the last result.
    pub async fn execute_simple(&mut self, sql: &str) -> Vec<Result<ExecResult, SqlError>> {
        let statements = match parser::parse(sql) {
            Ok(statements) => statements,
            Err(e) => {
                self.fail_open_txn(false);
                return vec![Err(e)];
            }
        };
        if statements.is_empty() {
            return vec![Ok(ExecResult::Empty)];
        }
        let mut results = Vec::with_capacity(statements.len());
        for statement in &statements {
            let result = self.execute_statement(statement, &[]).await;
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    /// Parses and describes one statement for the extended protocol.
    /// `param_hints` are the types the client named in Parse (`Unknown`
    /// where it named none).
    pub async fn prepare(
        &mut self,
        sql: &str,
        param_hints: &[SqlType],
    ) -> Result<PreparedStatement, SqlError> {
        let statement = parser::parse_one(sql)?;
        let (param_types, columns) = match &statement {
            None => (param_hints.to_vec(), Vec::new()),
            // Session statements describe themselves without a transaction.
            Some(Statement::Sql(sql)) if is_session_statement(sql) => {
                let columns = match sql.as_ref() {
                    ast::Statement::ShowVariable { variable } => {
                        match self.show_variable(variable)? {
                            ExecResult::Rows { columns, .. } => columns,
                            _ => Vec::new(),
                        }
                    }
                    _ => Vec::new(),
                };
                (param_hints.to_vec(), columns)
            }
            Some(statement) => {
                let described = match &self.txn {
                    TxnState::Open(txn) => {
                        let ctx = self.context(txn);
                        exec::describe(&ctx, statement, param_hints).await
                    }
                    _ => {
                        let txn = self.begin();
                        let ctx = self.context(&txn);
                        let described = exec::describe(&ctx, statement, param_hints).await;
                        let _ = txn.rollback().await;
                        described
                    }
                };
                described?
            }
        };
        Ok(PreparedStatement {
            sql: sql.to_string(),
            param_types,
            columns,
            statement,
        })
    }

    /// Runs a prepared statement with its parameters (already decoded to
    /// the statement's parameter types).
    pub async fn execute(
        &mut self,
        prepared: &PreparedStatement,
        params: &[Datum],
    ) -> Result<ExecResult, SqlError> {
        if params.len() != prepared.param_types.len() {
            return Err(SqlError::new(
                code::PROTOCOL_VIOLATION,
                format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    params.len(),
                    prepared.param_types.len()
                ),
            ));
        }
        match &prepared.statement {
            None => Ok(ExecResult::Empty),
            Some(statement) => self.execute_statement(statement, params).await,
        }
    }

    async fn execute_statement(
        &mut self,
        statement: &Statement,
        params: &[Datum],
    ) -> Result<ExecResult, SqlError> {
        match statement {
            Statement::Meridian(MeridianStatement::BeginAsOf { at }) => {
                return self.begin_block_as_of(at)
            }
            Statement::Meridian(MeridianStatement::SelectAsOf { query, at }) => {
                return self.select_as_of(query, at, params).await
            }
            _ => {}
        }
        if let Statement::Sql(sql) = statement {
            match sql.as_ref() {
                ast::Statement::StartTransaction { .. } => return self.begin_block(),
                ast::Statement::Commit { .. } => return self.commit_block().await,
                ast::Statement::Rollback {
                    savepoint: None, ..
                } => return self.rollback_block().await,
                ast::Statement::Rollback {
                    savepoint: Some(name),
                    ..
                } => return self.rollback_to_savepoint(name),
                ast::Statement::Savepoint { name } => return self.savepoint(name),
                ast::Statement::ReleaseSavepoint { name } => return self.release_savepoint(name),
                ast::Statement::Set(set) => {
                    let result = self.set_variable(set);
                    return self.in_block_only(result);
                }
                ast::Statement::ShowVariable { variable } => {
                    let result = self.show_variable(variable);
                    return self.in_block_only(result);
                }
                ast::Statement::Discard { .. } | ast::Statement::Deallocate { .. } => {
                    return Ok(ExecResult::command(
                        sql.to_string()
                            .split_whitespace()
                            .next()
                            .unwrap_or("")
                            .to_uppercase(),
                    ));
                }
                _ => {}
            }
        }
        match &self.txn {
            TxnState::Failed(_) => Err(in_failed_transaction()),
            TxnState::Open(txn) => {
                // The block counts as failed while the statement runs: a
                // statement cancelled half-way (its future dropped) leaves
                // the block failed, as PostgreSQL's cancel does.
                let txn = txn.clone();
                self.txn = TxnState::Failed(Some(txn.clone()));
                let ctx = self.context(&txn);
                let result = exec::execute(&ctx, statement, params).await;
                match &result {
                    Ok(_) => self.txn = TxnState::Open(txn),
                    Err(e) => self.fail_open_txn(e.retryable),
                }
                result
            }
            TxnState::None => self.execute_implicit(statement, params).await,
        }
    }

    /// Runs `statement` in a transaction of its own, retrying it on
    /// serialization conflicts with a backoff and a rising priority.
    async fn execute_implicit(
        &mut self,
        statement: &Statement,
        params: &[Datum],
    ) -> Result<ExecResult, SqlError> {
        let mut backoff = Duration::from_millis(2);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let txn = Txn::begin_at(
                self.engine.ds.clone(),
                self.engine.clock.clone(),
                self.engine.clock.now(),
                attempt,
            );
            let ctx = ExecContext {
                auto_commit: true,
                ..self.context(&txn)
            };
            let outcome = match exec::execute(&ctx, statement, params).await {
                Ok(result) => txn.commit().await.map(|()| result).map_err(SqlError::from),
                Err(e) => {
                    let _ = txn.rollback().await;
                    Err(e)
                }
            };
            match outcome {
                Err(e) if e.retryable && attempt < MAX_IMPLICIT_ATTEMPTS => {
                    let jitter = rand::random::<u64>() % (backoff.as_millis() as u64 + 1);
                    tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                }
                other => return other,
            }
        }
    }

    fn begin(&self) -> Txn {
        Txn::begin(self.engine.ds.clone(), self.engine.clock.clone(), 1)
    }

    fn context<'a>(&'a self, txn: &'a Txn) -> ExecContext<'a> {
        ExecContext {
            engine: &self.engine,
            txn,
            database: &self.database,
            vars: &self.vars,
            user: &self.user,
            descriptors: &self.descriptors,
            auto_commit: false,
        }
    }

    fn begin_block(&mut self) -> Result<ExecResult, SqlError> {
        match self.txn {
            TxnState::None => {
                self.savepoints.clear();
                self.txn = TxnState::Open(self.begin());
                Ok(ExecResult::command("BEGIN"))
            }
            // PostgreSQL warns and carries on; so do we (without the
            // warning).
            TxnState::Open(_) => Ok(ExecResult::command("BEGIN")),
            TxnState::Failed(_) => Err(in_failed_transaction()),
        }
    }

    async fn commit_block(&mut self) -> Result<ExecResult, SqlError> {
        self.savepoints.clear();
        match std::mem::replace(&mut self.txn, TxnState::None) {
            TxnState::None => Ok(ExecResult::command("COMMIT")),
            // COMMIT of a failed transaction rolls it back.
            TxnState::Failed(txn) => {
                if let Some(txn) = txn {
                    let _ = txn.rollback().await;
                }
                Ok(ExecResult::command("ROLLBACK"))
            }
            TxnState::Open(txn) => {
                txn.commit().await?;
                Ok(ExecResult::command("COMMIT"))
            }
        }
    }

    async fn rollback_block(&mut self) -> Result<ExecResult, SqlError> {
        self.savepoints.clear();
        if let TxnState::Open(txn) | TxnState::Failed(Some(txn)) =
            std::mem::replace(&mut self.txn, TxnState::None)
        {
            let _ = txn.rollback().await;
        }
        Ok(ExecResult::command("ROLLBACK"))
    }

    /// Applies a failed session-level statement to the open transaction
    /// as any failed statement is: the block fails.
    fn in_block_only(
        &mut self,
        result: Result<ExecResult, SqlError>,
    ) -> Result<ExecResult, SqlError> {
        if matches!(self.txn, TxnState::Failed(_)) {
            return Err(in_failed_transaction());
        }
        if result.is_err() {
            self.fail_open_txn(false);
        }
        result
    }

    /// Fails the open block (if any). Its transaction is kept for a
    /// `ROLLBACK TO SAVEPOINT` when the block has savepoints and the error
    /// was not a serialization failure (`retryable`, which ended the
    /// transaction); otherwise it is rolled back in the background.
    fn fail_open_txn(&mut self, retryable: bool) {
        match std::mem::replace(&mut self.txn, TxnState::None) {
            TxnState::Open(txn) | TxnState::Failed(Some(txn)) => {
                if !retryable && !self.savepoints.is_empty() {
                    self.txn = TxnState::Failed(Some(txn));
                    return;
                }
                tokio::spawn(async move {
                    let _ = txn.rollback().await;
                });
                self.txn = TxnState::Failed(None);
            }
            TxnState::Failed(None) => self.txn = TxnState::Failed(None),
            TxnState::None => {}
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let TxnState::Open(txn) | TxnState::Failed(Some(txn)) =
            std::mem::replace(&mut self.txn, TxnState::None)
        {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = txn.rollback().await;
                });
            }
        }
    }
}

/// Statements the session answers itself, without the executor.
fn is_session_statement(statement: &ast::Statement) -> bool {
    matches!(
        statement,
        ast::Statement::StartTransaction { .. }
            | ast::Statement::Commit { .. }
            | ast::Statement::Rollback { .. }
            | ast::Statement::Savepoint { .. }
            | ast::Statement::ReleaseSavepoint { .. }
            | ast::Statement::Set(_)
            | ast::Statement::ShowVariable { .. }
            | ast::Statement::Discard { .. }
            | ast::Statement::Deallocate { .. }
    )
}

fn in_failed_transaction() -> SqlError {
    SqlError::new(
        code::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}
