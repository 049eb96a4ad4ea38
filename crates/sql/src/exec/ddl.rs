//! Schema changes: CREATE/DROP DATABASE, CREATE/DROP TABLE, CREATE/DROP
//! INDEX (with backfill), TRUNCATE (ALTER TABLE is [`super::alter`]). Each runs
//! in the statement's transaction: the descriptor write and any backfill
//! commit together or not at all.
//!
//! Not yet: online schema changes (CockroachDB's descriptor states and
//! leases); a schema change conflicts with concurrent statements on the
//! same table like any write does, and they retry.

use meridian_kvapi::Request;
use sqlparser::ast;

use super::ExecContext;
use crate::catalog::{
    ColumnDescriptor, IndexDescriptor, IndexDirection, TableDescriptor, PRIMARY_INDEX_ID,
    ROWID_COLUMN,
};
use crate::encoding;
use crate::error::{code, SqlError};
use crate::parser::LocalitySpec;
use crate::plan::bind::{ident, table_name};
use crate::session::ExecResult;
use crate::types::{Datum, SqlType};

pub async fn create_database(
    ctx: &ExecContext<'_>,
    name: &ast::ObjectName,
    if_not_exists: bool,
) -> Result<ExecResult, SqlError> {
    let name = table_name(name)?;
    let catalog = ctx.catalog();
    if if_not_exists && catalog.database(&name).await?.is_some() {
        return Ok(ExecResult::command("CREATE DATABASE"));
    }
    catalog.create_database(&name).await?;
    Ok(ExecResult::command("CREATE DATABASE"))
}

pub async fn create_table(
    ctx: &ExecContext<'_>,
    create: &ast::CreateTable,
    locality: Option<&LocalitySpec>,
) -> Result<ExecResult, SqlError> {
    if create.query.is_some() {
        return Err(SqlError::unsupported("CREATE TABLE ... AS"));
    }
    let name = table_name(&create.name)?;
    let catalog = ctx.catalog();
    let database = catalog.require_database(ctx.database).await?;
    if catalog.table(database.id, &name).await?.is_some() {
        if create.if_not_exists {
            return Ok(ExecResult::command("CREATE TABLE"));
        }
        return Err(SqlError::new(
            code::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    let mut columns = Vec::new();
    let mut primary: Option<Vec<(String, IndexDirection)>> = None;
    let mut uniques: Vec<(Option<String>, KeyColumns)> = Vec::new();
    for (i, def) in create.columns.iter().enumerate() {
        let column_name = ident(&def.name);
        let serial = is_serial(&def.data_type);
        let mut column = ColumnDescriptor {
            id: i as u32 + 1,
            name: column_name.clone(),
            ty: SqlType::from_sql(&def.data_type)?,
            nullable: !serial,
            default: serial.then(|| "unique_rowid()".to_string()),
            hidden: false,
        };
        for option in &def.options {
            match &option.option {
                ast::ColumnOption::Null => column.nullable = true,
                ast::ColumnOption::NotNull => column.nullable = false,
                ast::ColumnOption::Default(e) => column.default = Some(e.to_string()),
                ast::ColumnOption::PrimaryKey(_) => {
                    if primary.is_some() {
                        return Err(multiple_primary_keys(&name));
                    }
                    primary = Some(vec![(column_name.clone(), IndexDirection::Asc)]);
                }
                ast::ColumnOption::Unique(_) => {
                    uniques.push((None, vec![(column_name.clone(), IndexDirection::Asc)]))
                }
                ast::ColumnOption::Check(_) => {
                    return Err(SqlError::unsupported("CHECK constraints"))
                }
                ast::ColumnOption::ForeignKey(_) => {
                    return Err(SqlError::unsupported("foreign keys"))
                }
                other => return Err(SqlError::unsupported(format!("column option {other}"))),
            }
        }
        columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            ast::TableConstraint::PrimaryKey(pk) => {
                if primary.is_some() {
                    return Err(multiple_primary_keys(&name));
                }
                primary = Some(index_columns(&pk.columns)?);
            }
            ast::TableConstraint::Unique(u) => {
                uniques.push((u.name.as_ref().map(ident), index_columns(&u.columns)?))
            }
            ast::TableConstraint::Check(_) => {
                return Err(SqlError::unsupported("CHECK constraints"))
            }
            ast::TableConstraint::ForeignKey(_) => {
                return Err(SqlError::unsupported("foreign keys"))
            }
            other => return Err(SqlError::unsupported(format!("constraint {other}"))),
        }
    }
    let mut next_column_id = columns.len() as u32 + 1;
    let primary = match primary {
        Some(p) => p,
        None => {
            // No primary key: a hidden row id, as CockroachDB's rowid.
            if columns.iter().any(|c| c.name == ROWID_COLUMN) {
                return Err(SqlError::unsupported(
                    "a column named rowid in a table without a primary key",
                ));
            }
            columns.push(ColumnDescriptor {
                id: next_column_id,
                name: ROWID_COLUMN.into(),
                ty: SqlType::Int8,
                nullable: false,
                default: Some("unique_rowid()".into()),
                hidden: true,
            });
            next_column_id += 1;
            vec![(ROWID_COLUMN.to_string(), IndexDirection::Asc)]
        }
    };
    let resolve = |cols: &[(String, IndexDirection)],
                   columns: &[ColumnDescriptor]|
     -> Result<Vec<(u32, IndexDirection)>, SqlError> {
        cols.iter()
            .map(|(n, d)| {
                columns
                    .iter()
                    .find(|c| &c.name == n)
                    .map(|c| (c.id, *d))
                    .ok_or_else(|| SqlError::undefined_column(n))
            })
            .collect()
    };
    let primary_columns = resolve(&primary, &columns)?;
    for (id, _) in &primary_columns {
        if let Some(c) = columns.iter_mut().find(|c| c.id == *id) {
            c.nullable = false;
        }
    }
    let mut indexes = Vec::new();
    let mut next_index_id = PRIMARY_INDEX_ID + 1;
    for (constraint_name, cols) in uniques {
        let index_name = constraint_name.unwrap_or_else(|| {
            format!(
                "{name}_{}_key",
                cols.iter()
                    .map(|(c, _)| c.as_str())
                    .collect::<Vec<_>>()
                    .join("_")
            )
        });
        indexes.push(IndexDescriptor {
            id: next_index_id,
            name: index_name,
            unique: true,
            columns: resolve(&cols, &columns)?,
        });
        next_index_id += 1;
    }
    let mut table = TableDescriptor {
        id: catalog.next_id().await?,
        database_id: database.id,
        name: name.clone(),
        version: 1,
        columns,
        next_column_id,
        primary_index: IndexDescriptor {
            id: PRIMARY_INDEX_ID,
            name: format!("{name}_pkey"),
            unique: true,
            columns: primary_columns,
        },
        indexes,
        next_index_id,
        locality: None,
        zone_config: None,
    };
    super::locality::apply_to_new_table(&database, &mut table, locality)?;
    // Defaults must bind (a typo in one is an error now, not at the first
    // INSERT).
    for column in &table.columns {
        if let Some(default) = &column.default {
            let e = crate::plan::bind::parse_default(default)?;
            let tables = Default::default();
            crate::plan::bind::Binder::new(&tables, &[]).bind_expr(
                &e,
                &crate::plan::bind::Scope::new(&[]),
                column.ty,
            )?;
        }
    }
    catalog.create_table(&table).await?;
    ctx.engine.split_at_table(table.id);
    super::locality::after_create(ctx, &database, &table).await?;
    Ok(ExecResult::command("CREATE TABLE"))
}

/// Key columns by name, with their direction.
type KeyColumns = Vec<(String, IndexDirection)>;

fn is_serial(data_type: &ast::DataType) -> bool {
    matches!(data_type, ast::DataType::Custom(name, _) if name.to_string().to_lowercase().contains("serial"))
}

fn multiple_primary_keys(table: &str) -> SqlError {
    SqlError::new(
        code::INVALID_TABLE_DEFINITION,
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    )
}

fn index_columns(columns: &[ast::IndexColumn]) -> Result<Vec<(String, IndexDirection)>, SqlError> {
    columns
        .iter()
        .map(|c| {
            let name = match &c.column.expr {
                ast::Expr::Identifier(i) => ident(i),
                other => {
                    return Err(SqlError::unsupported(format!(
                        "an index on the expression {other}"
                    )))
                }
            };
            let direction = match c.column.options.sort {
                Some(ast::OrderBySort::Desc) => IndexDirection::Desc,
                _ => IndexDirection::Asc,
            };
            Ok((name, direction))
        })
        .collect()
}

pub async fn create_index(
    ctx: &ExecContext<'_>,
    create: &ast::CreateIndex,
) -> Result<ExecResult, SqlError> {
    if create.predicate.is_some() {
        return Err(SqlError::unsupported("partial indexes"));
    }
    let catalog = ctx.catalog();
    let mut table = catalog
        .require_table(ctx.database, &table_name(&create.table_name)?)
        .await?;
    let columns = index_columns(&create.columns)?;
    let name = match &create.name {
        Some(n) => table_name(n)?,
        None => format!(
            "{}_{}_{}",
            table.name,
            columns
                .iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join("_"),
            if create.unique { "key" } else { "idx" }
        ),
    };
    if table.index(&name).is_some() || table.primary_index.name == name {
        if create.if_not_exists {
            return Ok(ExecResult::command("CREATE INDEX"));
        }
        return Err(SqlError::new(
            code::DUPLICATE_TABLE,
            format!("relation \"{name}\" already exists"),
        ));
    }
    let mut resolved = columns
        .iter()
        .map(|(n, d)| Ok((table.column(n)?.id, *d)))
        .collect::<Result<Vec<_>, SqlError>>()?;
    super::locality::prefix_index(&table, &mut resolved);
    let index = IndexDescriptor {
        id: table.next_index_id,
        name,
        unique: create.unique,
        columns: resolved,
    };
    table.next_index_id += 1;
    // Backfill: an entry for every existing row, in this transaction.
    let rows = read_all(ctx, &table).await?;
    let mut requests = Vec::with_capacity(rows.len());
    for row in &rows {
        let (key, value) = encoding::index_entry(&table, &index, row)?;
        if encoding::enforces_uniqueness(&table, &index, row) {
            requests.push(Request::ConditionalPut {
                key,
                value,
                expected: None,
            });
        } else {
            requests.push(Request::Put { key, value });
        }
    }
    table.indexes.push(index.clone());
    catalog.update_table(&mut table).await?;
    super::locality::after_index_change(ctx, &table).await?;
    if !requests.is_empty() {
        ctx.txn
            .write_batch(requests)
            .await
            .map_err(|e| match SqlError::from(e) {
                e if e.code == code::UNIQUE_VIOLATION => SqlError::new(
                    code::UNIQUE_VIOLATION,
                    format!(
                        "could not create unique index \"{}\": the table holds duplicate values",
                        index.name
                    ),
                ),
                e => e,
            })?;
    }
    Ok(ExecResult::command("CREATE INDEX"))
}

pub(super) async fn read_all(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
) -> Result<Vec<Vec<Datum>>, SqlError> {
    let (start, end) = encoding::index_span(table, table.primary_index.id);
    let pairs = ctx.txn.scan(&start, &end, 0).await?;
    pairs
        .iter()
        .map(|(k, v)| encoding::decode_row(table, k, v))
        .collect()
}

pub async fn drop(
    ctx: &ExecContext<'_>,
    object_type: ast::ObjectType,
    if_exists: bool,
    names: &[ast::ObjectName],
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    match object_type {
        ast::ObjectType::Table => {
            let database = catalog.require_database(ctx.database).await?;
            for name in names {
                let name = table_name(name)?;
                match catalog.table(database.id, &name).await? {
                    Some(table) => {
                        delete_all(ctx, &table).await?;
                        catalog.drop_table(&table).await?;
                        super::zones::replace(ctx, &[super::zones::table_span(table.id)], vec![])
                            .await?;
                    }
                    None if if_exists => {}
                    None => return Err(SqlError::undefined_table(&name)),
                }
            }
            Ok(ExecResult::command("DROP TABLE"))
        }
        ast::ObjectType::Database => {
            for name in names {
                let name = table_name(name)?;
                match catalog.database(&name).await? {
                    Some(db) => catalog.drop_database(&db).await?,
                    None if if_exists => {}
                    None => {
                        return Err(SqlError::new(
                            code::INVALID_CATALOG_NAME,
                            format!("database \"{name}\" does not exist"),
                        ))
                    }
                }
            }
            Ok(ExecResult::command("DROP DATABASE"))
        }
        ast::ObjectType::Index => {
            let database = catalog.require_database(ctx.database).await?;
            for name in names {
                let name = table_name(name)?;
                let mut found = None;
                for table in catalog.tables(database.id).await? {
                    if table.index(&name).is_some() {
                        found = Some(table);
                        break;
                    }
                }
                match found {
                    Some(mut table) => {
                        let index = table.index(&name).cloned().expect("found");
                        let (start, end) = encoding::index_span(&table, index.id);
                        let entries = ctx.txn.scan(&start, &end, 0).await?;
                        let deletes = entries
                            .into_iter()
                            .map(|(key, _)| Request::Delete { key })
                            .collect();
                        ctx.txn.write_batch(deletes).await?;
                        table.indexes.retain(|i| i.name != name);
                        catalog.update_table(&mut table).await?;
                        super::locality::after_index_change(ctx, &table).await?;
                    }
                    None if if_exists => {}
                    None => {
                        return Err(SqlError::new(
                            code::UNDEFINED_OBJECT,
                            format!("index \"{name}\" does not exist"),
                        ))
                    }
                }
            }
            Ok(ExecResult::command("DROP INDEX"))
        }
        other => Err(SqlError::unsupported(format!("DROP {other}"))),
    }
}

/// Deletes every row and index entry of `table` in the transaction.
async fn delete_all(ctx: &ExecContext<'_>, table: &TableDescriptor) -> Result<u64, SqlError> {
    let mut deleted = 0;
    for index_id in
        std::iter::once(table.primary_index.id).chain(table.indexes.iter().map(|i| i.id))
    {
        let (start, end) = encoding::index_span(table, index_id);
        let pairs = ctx.txn.scan(&start, &end, 0).await?;
        if index_id == table.primary_index.id {
            deleted = pairs.len() as u64;
        }
        let deletes: Vec<Request> = pairs
            .into_iter()
            .map(|(key, _)| Request::Delete { key })
            .collect();
        ctx.txn.write_batch(deletes).await?;
    }
    Ok(deleted)
}

pub async fn truncate(
    ctx: &ExecContext<'_>,
    truncate: &ast::Truncate,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    for target in &truncate.table_names {
        let table = catalog
            .require_table(ctx.database, &table_name(&target.name)?)
            .await?;
        delete_all(ctx, &table).await?;
    }
    Ok(ExecResult::command("TRUNCATE"))
}
