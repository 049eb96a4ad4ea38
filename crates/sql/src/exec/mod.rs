//! Executing statements in a transaction: the tables a statement names
//! are read from the catalog, the statement is bound and planned
//! (`crate::plan`), and the plan runs against the KV layer. Queries run in
//! [`query`], writes in [`write`], schema changes in [`ddl`] and [`alter`], SHOW
//! statements in [`show`]; [`eval`] evaluates expressions and
//! [`virtual_tables`] answers pg_catalog and information_schema. The
//! multi-region statements: databases in [`regions`], table localities in
//! [`locality`], zone config records in [`zones`].
//!
//! Not here: transaction control and session variables (`crate::session`).

mod aggregate;
mod alter;
pub mod as_of;
mod ddl;
pub mod eval;
mod functions;
mod locality;
mod query;
mod regions;
mod relocate;
mod show;
pub mod virtual_tables;
mod write;
pub mod zones;

use std::collections::{BTreeMap, HashMap};
use std::ops::ControlFlow;
use std::sync::Arc;

use meridian_kvclient::txn::Txn;
use sqlparser::ast;

use crate::catalog::{Catalog, TableDescriptor};
use crate::engine::SqlEngine;
use crate::error::SqlError;
use crate::parser::{MeridianStatement, Statement};
use crate::plan::bind::{table_name, Binder};
use crate::plan::Plan;
use crate::session::{ColumnInfo, ExecResult};
use crate::types::{Datum, SqlType};
use eval::Env;

/// What a statement runs with.
pub struct ExecContext<'a> {
    pub engine: &'a SqlEngine,
    pub txn: &'a Txn,
    pub database: &'a str,
    pub user: &'a str,
    pub vars: &'a BTreeMap<String, String>,
    /// Descriptors this transaction has read.
    pub descriptors: &'a parking_lot::Mutex<crate::catalog::TxnDescriptors>,
    /// The statement is its transaction's last (an implicit transaction):
    /// an INSERT, UPDATE or DELETE sends its write batch together with the
    /// commit (`Txn::write_batch_and_commit`: a one-phase commit when the
    /// writes fall on one range).
    pub auto_commit: bool,
}

impl ExecContext<'_> {
    pub fn catalog(&self) -> Catalog<'_> {
        match self.engine.cluster_has_regions() {
            true => Catalog::reading_nearest(self.txn),
            false => Catalog::new(self.txn),
        }
    }

    /// The environment expressions are evaluated in.
    fn env<'e>(
        &'e self,
        params: &'e [Datum],
        row_id: &'e (dyn Fn() -> i64 + Sync),
        subqueries: &'e [Vec<Vec<Datum>>],
    ) -> Env<'e> {
        Env {
            params,
            now_micros: (self.txn.meta().min_timestamp.wall_nanos / 1_000) as i64,
            follower_read_offset_micros: self.engine.follower_read_offset().as_micros() as i64,
            database: self.database,
            user: self.user,
            region: self.engine.region(),
            multi_region: self
                .descriptors
                .lock()
                .database
                .as_ref()
                .filter(|d| d.name == self.database)
                .and_then(|d| d.multi_region.clone()),
            row_id,
            subqueries,
        }
    }
}

/// A bound statement that reads or writes rows.
enum Bound {
    Query(Plan),
    Insert(crate::plan::bind::InsertPlan),
    Update(crate::plan::bind::UpdatePlan),
    Delete(crate::plan::bind::DeletePlan),
}

/// Binds a query or write, runs its subqueries, then runs it.
async fn run_bound(
    ctx: &ExecContext<'_>,
    statement: &ast::Statement,
    upsert: bool,
    params: &[Datum],
) -> Result<ExecResult, SqlError> {
    let tables = load_tables(ctx, statement).await?;
    if tables.is_empty() && statement.to_string().to_lowercase().contains("region") {
        // `default_to_database_primary_region()` needs the database.
        load_database(ctx).await?;
    }
    let binder = Binder::new(&tables, &vec![SqlType::Unknown; params.len()]);
    let bound = match statement {
        ast::Statement::Query(q) => Bound::Query(binder.bind_query(q)?),
        ast::Statement::Insert(insert) => Bound::Insert(binder.bind_insert(insert, upsert)?),
        ast::Statement::Update(update) => Bound::Update(binder.bind_update(update)?),
        ast::Statement::Delete(delete) => Bound::Delete(binder.bind_delete(delete)?),
        other => return Err(SqlError::internal(format!("not a query or write: {other}"))),
    };
    let row_id = || ctx.engine.unique_row_id();
    let mut subqueries: Vec<Vec<Vec<Datum>>> = Vec::new();
    for plan in binder.take_subqueries() {
        let env = ctx.env(params, &row_id, &subqueries);
        let rows = query::run(ctx, &plan, &env).await?;
        subqueries.push(rows);
    }
    let env = ctx.env(params, &row_id, &subqueries);
    match bound {
        Bound::Query(plan) => {
            let rows = query::run(ctx, &plan, &env).await?;
            Ok(ExecResult::rows(column_infos(&plan), rows))
        }
        Bound::Insert(plan) => write::insert(ctx, &plan, &env).await,
        Bound::Update(plan) => write::update(ctx, &plan, &env).await,
        Bound::Delete(plan) => write::delete(ctx, &plan, &env).await,
    }
}

/// Runs `statement` with `params` in the context's transaction.
pub async fn execute(
    ctx: &ExecContext<'_>,
    statement: &Statement,
    params: &[Datum],
) -> Result<ExecResult, SqlError> {
    // Ours that carry parsed SQL name tables the same way.
    match statement {
        Statement::Meridian(MeridianStatement::Upsert(insert)) => {
            check_database_qualifiers(insert.as_ref(), ctx.database)?
        }
        Statement::Meridian(MeridianStatement::CreateTable { create, .. }) => {
            check_database_qualifiers(create.as_ref(), ctx.database)?
        }
        Statement::Meridian(MeridianStatement::SelectAsOf { query, .. }) => {
            check_database_qualifiers(query.as_ref(), ctx.database)?
        }
        _ => {}
    }
    let sql = match statement {
        Statement::Sql(sql) => sql.as_ref(),
        Statement::Meridian(MeridianStatement::ShowRangesFromTable { table }) => {
            return show::ranges_of_table(ctx, table).await
        }
        Statement::Meridian(MeridianStatement::Upsert(insert)) => {
            let statement = ast::Statement::Insert(insert.as_ref().clone());
            return run_bound(ctx, &statement, true, params).await;
        }
        Statement::Meridian(ours) => return execute_meridian(ctx, ours).await,
    };
    check_database_qualifiers(sql, ctx.database)?;
    use ast::Statement as S;
    let changes_catalog = matches!(
        sql,
        S::CreateTable(_)
            | S::CreateDatabase { .. }
            | S::CreateIndex(_)
            | S::Drop { .. }
            | S::AlterTable(_)
    );
    if changes_catalog {
        ctx.descriptors.lock().clear();
        let result = execute_ddl(ctx, sql).await;
        ctx.descriptors.lock().clear();
        return result;
    }
    match sql {
        S::Query(_) | S::Insert(_) | S::Update(_) | S::Delete(_) => {
            run_bound(ctx, sql, false, params).await
        }
        S::Truncate(truncate) => ddl::truncate(ctx, truncate).await,
        S::ShowTables { .. } => show::tables(ctx).await,
        S::ShowDatabases { .. } => show::databases(ctx).await,
        S::ShowColumns { show_options, .. } => show::columns(ctx, show_options).await,
        S::ShowCreate { obj_type, obj_name } => show::create(ctx, *obj_type, obj_name).await,
        S::Explain { statement, .. } => show::explain(ctx, statement, params).await,
        other => Err(SqlError::unsupported(first_words(&other.to_string()))),
    }
}

/// Runs one of Meridian's own statements (other than UPSERT).
async fn execute_meridian(
    ctx: &ExecContext<'_>,
    statement: &MeridianStatement,
) -> Result<ExecResult, SqlError> {
    use MeridianStatement as M;
    let changes_catalog = matches!(
        statement,
        M::CreateDatabase { .. }
            | M::AlterDatabase { .. }
            | M::CreateTable { .. }
            | M::AlterTableLocality { .. }
            | M::ConfigureZone { .. }
    );
    if changes_catalog {
        ctx.descriptors.lock().clear();
    }
    let result = match statement {
        M::ShowRangesFromTable { table } => show::ranges_of_table(ctx, table).await,
        M::Upsert(_) => Err(SqlError::internal("UPSERT runs as a write")),
        M::CreateDatabase {
            name,
            if_not_exists,
            primary_region,
            regions,
            survival,
            placement,
        } => {
            regions::create_database(
                ctx,
                name,
                *if_not_exists,
                primary_region.as_deref(),
                regions,
                *survival,
                *placement,
            )
            .await
        }
        M::AlterDatabase { name, action } => regions::alter_database(ctx, name, action).await,
        M::CreateTable { create, locality } => ddl::create_table(ctx, create, Some(locality)).await,
        M::AlterTableLocality {
            table,
            if_exists,
            locality,
        } => locality::set_locality(ctx, table, *if_exists, locality).await,
        M::ConfigureZone { target, change } => zones::configure(ctx, target, change).await,
        M::ShowRegions(which) => regions::show_regions(ctx, which).await,
        M::ShowSurvivalGoal { database } => {
            regions::show_survival_goal(ctx, database.as_deref()).await
        }
        M::ShowZoneConfiguration { target } => zones::show(ctx, target).await,
        // The session runs these: they choose the transaction.
        M::SelectAsOf { .. } | M::BeginAsOf { .. } => {
            Err(SqlError::internal("AS OF SYSTEM TIME reached the executor"))
        }
    };
    if changes_catalog {
        ctx.descriptors.lock().clear();
    }
    result
}

/// Runs a statement that changes the catalog.
async fn execute_ddl(ctx: &ExecContext<'_>, sql: &ast::Statement) -> Result<ExecResult, SqlError> {
    use ast::Statement as S;
    match sql {
        S::CreateTable(create) => ddl::create_table(ctx, create, None).await,
        S::CreateDatabase {
            db_name,
            if_not_exists,
            ..
        } => ddl::create_database(ctx, db_name, *if_not_exists).await,
        S::CreateIndex(create) => ddl::create_index(ctx, create).await,
        S::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => ddl::drop(ctx, *object_type, *if_exists, names).await,
        S::AlterTable(alter) => alter::alter_table(ctx, alter).await,
        other => Err(SqlError::internal(format!("not a schema change: {other}"))),
    }
}

/// The parameter types and result columns of `statement`, for the
/// extended protocol's Describe.
pub async fn describe(
    ctx: &ExecContext<'_>,
    statement: &Statement,
    param_hints: &[SqlType],
) -> Result<(Vec<SqlType>, Vec<ColumnInfo>), SqlError> {
    let sql = match statement {
        Statement::Sql(sql) => sql.as_ref(),
        Statement::Meridian(MeridianStatement::ShowRangesFromTable { .. }) => {
            return Ok((Vec::new(), show::ranges_columns()))
        }
        Statement::Meridian(
            MeridianStatement::ShowRegions(_)
            | MeridianStatement::ShowSurvivalGoal { .. }
            | MeridianStatement::ShowZoneConfiguration { .. },
        ) => {
            let columns = match execute(ctx, statement, &[]).await {
                Ok(ExecResult::Rows { columns, .. }) => columns,
                _ => Vec::new(),
            };
            return Ok((param_hints.to_vec(), columns));
        }
        Statement::Meridian(MeridianStatement::SelectAsOf { query, .. }) => {
            return Box::pin(describe(ctx, &Statement::Sql(query.clone()), param_hints)).await;
        }
        Statement::Meridian(MeridianStatement::Upsert(insert)) => {
            let statement = ast::Statement::Insert(insert.as_ref().clone());
            let tables = load_tables(ctx, &statement).await?;
            let binder = Binder::new(&tables, param_hints);
            let columns = returning_columns(binder.bind_insert(insert, true)?.returning);
            return Ok((binder.param_types(), columns));
        }
        Statement::Meridian(_) => return Ok((param_hints.to_vec(), Vec::new())),
    };
    use ast::Statement as S;
    let columns_of = |result: Result<ExecResult, SqlError>| match result {
        Ok(ExecResult::Rows { columns, .. }) => columns,
        _ => Vec::new(),
    };
    match sql {
        S::Query(_) | S::Insert(_) | S::Update(_) | S::Delete(_) => {
            let tables = load_tables(ctx, sql).await?;
            let binder = Binder::new(&tables, param_hints);
            let columns = match sql {
                S::Query(q) => column_infos(&binder.bind_query(q)?),
                S::Insert(insert) => {
                    returning_columns(binder.bind_insert(insert, false)?.returning)
                }
                S::Update(update) => returning_columns(binder.bind_update(update)?.returning),
                S::Delete(delete) => returning_columns(binder.bind_delete(delete)?.returning),
                _ => unreachable!("matched above"),
            };
            Ok((binder.param_types(), columns))
        }
        // Statements whose columns are fixed: run them to see.
        S::ShowTables { .. }
        | S::ShowDatabases { .. }
        | S::ShowColumns { .. }
        | S::ShowCreate { .. }
        | S::ShowVariable { .. } => Ok((
            param_hints.to_vec(),
            columns_of(execute(ctx, statement, &[]).await),
        )),
        S::Explain { .. } => Ok((param_hints.to_vec(), show::explain_columns())),
        _ => Ok((param_hints.to_vec(), Vec::new())),
    }
}

fn returning_columns(returning: Option<crate::plan::bind::Returning>) -> Vec<ColumnInfo> {
    returning
        .map(|r| {
            r.columns
                .into_iter()
                .map(|c| ColumnInfo::new(c.name, c.ty))
                .collect()
        })
        .unwrap_or_default()
}

fn column_infos(plan: &Plan) -> Vec<ColumnInfo> {
    plan.columns()
        .into_iter()
        .map(|c| ColumnInfo::new(c.name, c.ty))
        .collect()
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// Reads the session database's descriptor into the transaction's cache.
async fn load_database(ctx: &ExecContext<'_>) -> Result<(), SqlError> {
    let txn_id = ctx.txn.meta().id;
    {
        let mut cache = ctx.descriptors.lock();
        cache.for_txn(txn_id);
        if cache
            .database
            .as_ref()
            .is_some_and(|d| d.name == ctx.database)
        {
            return Ok(());
        }
    }
    let database = ctx.catalog().require_database(ctx.database).await?;
    let mut cache = ctx.descriptors.lock();
    cache.for_txn(txn_id);
    cache.last_database_id = Some((database.name.clone(), database.id));
    cache.database = Some(database);
    Ok(())
}

/// 0A000 if `statement` names a table of a database other than the
/// session's (`otherdb.t`, `otherdb.public.t`): a statement reads one
/// database's descriptors, and binding takes the last part of a name as
/// the table, so such a name must not reach it.
fn check_database_qualifiers<V: ast::Visit>(statement: &V, database: &str) -> Result<(), SqlError> {
    let flow = ast::visit_relations(
        statement,
        |name| match crate::plan::bind::database_qualifier(name) {
            Some(qualifier) if qualifier != database => ControlFlow::Break(qualifier),
            _ => ControlFlow::Continue(()),
        },
    );
    match flow {
        ControlFlow::Break(other) => Err(SqlError::new(
            crate::error::code::FEATURE_NOT_SUPPORTED,
            format!(
                "cross-database references are not supported: the statement names a table of database \"{other}\" in a session of database \"{database}\" (connect to \"{other}\" to use its tables)"
            ),
        )),
        ControlFlow::Continue(()) => Ok(()),
    }
}

/// Reads the descriptors of every table `statement` names (those that
/// exist; binding reports the others).
async fn load_tables(
    ctx: &ExecContext<'_>,
    statement: &ast::Statement,
) -> Result<HashMap<String, Arc<TableDescriptor>>, SqlError> {
    let mut names = Vec::new();
    let _ = ast::visit_relations(statement, |name| {
        if let Ok(n) = table_name(name) {
            if !names.contains(&n) && !n.contains('.') {
                names.push(n);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    let mut tables = HashMap::new();
    if names.is_empty() {
        return Ok(tables);
    }
    let txn_id = ctx.txn.meta().id;
    let (database, missing, guess) = {
        let mut cache = ctx.descriptors.lock();
        cache.for_txn(txn_id);
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !cache.tables.contains_key(*n))
            .cloned()
            .collect();
        let database = cache.database.clone().filter(|d| d.name == ctx.database);
        (database, missing, cache.guess_database_id(ctx.database))
    };
    let catalog = ctx.catalog();
    let (database, found) = match (database, guess) {
        (Some(database), _) => {
            let found = catalog.tables_named(database.id, &missing).await?;
            (database, found)
        }
        // The database and the tables in one round trip, if the guess of
        // the database's id holds.
        (None, Some(guess)) => match catalog
            .database_and_tables(ctx.database, guess, &missing)
            .await?
        {
            (Some(database), Some(found)) => (database, found),
            (Some(database), None) => {
                let found = catalog.tables_named(database.id, &missing).await?;
                (database, found)
            }
            (None, _) => return Err(crate::catalog::unknown_database(ctx.database)),
        },
        (None, None) => {
            let database = catalog.require_database(ctx.database).await?;
            let found = catalog.tables_named(database.id, &missing).await?;
            (database, found)
        }
    };
    let mut cache = ctx.descriptors.lock();
    cache.for_txn(txn_id);
    cache.last_database_id = Some((database.name.clone(), database.id));
    cache.database = Some(database);
    for (name, table) in missing.into_iter().zip(found) {
        cache.tables.insert(name, table.map(Arc::new));
    }
    for name in names {
        if let Some(Some(table)) = cache.tables.get(&name) {
            tables.insert(name, table.clone());
        }
    }
    Ok(tables)
}
