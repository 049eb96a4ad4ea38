//! ALTER TABLE: ADD COLUMN (filling the default into every existing row,
//! in the statement's transaction) and DROP COLUMN (the column id is
//! retired; stored values under it are ignored from then on).

use meridian_kvapi::Request;
use sqlparser::ast;

use super::ddl::read_all;
use super::eval::Env;
use super::write::assign;
use super::ExecContext;
use crate::catalog::{ColumnDescriptor, TableDescriptor};
use crate::encoding;
use crate::error::{code, SqlError};
use crate::plan::bind::{ident, table_name};
use crate::plan::expr::Expr;
use crate::session::ExecResult;
use crate::types::{Datum, SqlType};

pub async fn alter_table(
    ctx: &ExecContext<'_>,
    alter: &ast::AlterTable,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    let name = table_name(&alter.name)?;
    let mut table = match catalog
        .table(catalog.require_database(ctx.database).await?.id, &name)
        .await?
    {
        Some(t) => t,
        None if alter.if_exists => return Ok(ExecResult::command("ALTER TABLE")),
        None => return Err(SqlError::undefined_table(&name)),
    };
    for operation in &alter.operations {
        match operation {
            ast::AlterTableOperation::AddColumn {
                column_def,
                if_not_exists,
                ..
            } => {
                let column_name = ident(&column_def.name);
                if table.column_index(&column_name).is_some() {
                    if *if_not_exists {
                        continue;
                    }
                    return Err(SqlError::new(
                        code::DUPLICATE_COLUMN,
                        format!("column \"{column_name}\" of relation \"{name}\" already exists"),
                    ));
                }
                let mut column = ColumnDescriptor {
                    id: table.next_column_id,
                    name: column_name,
                    ty: SqlType::from_sql(&column_def.data_type)?,
                    nullable: true,
                    default: None,
                    hidden: false,
                };
                for option in &column_def.options {
                    match &option.option {
                        ast::ColumnOption::Null => column.nullable = true,
                        ast::ColumnOption::NotNull => column.nullable = false,
                        ast::ColumnOption::Default(e) => column.default = Some(e.to_string()),
                        other => {
                            return Err(SqlError::unsupported(format!("ADD COLUMN with {other}")))
                        }
                    }
                }
                table.next_column_id += 1;
                add_column(ctx, &mut table, column).await?;
            }
            ast::AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                ..
            } => {
                for column_name in column_names {
                    let column_name = ident(column_name);
                    let Some(position) = table.column_index(&column_name) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(SqlError::undefined_column(&column_name));
                    };
                    let id = table.columns[position].id;
                    if table.primary_index.columns.iter().any(|(c, _)| *c == id) {
                        return Err(SqlError::unsupported("dropping a primary key column"));
                    }
                    if table
                        .indexes
                        .iter()
                        .any(|i| i.columns.iter().any(|(c, _)| *c == id))
                    {
                        return Err(SqlError::new(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("column \"{column_name}\" is used by an index: drop the index first"),
                        ));
                    }
                    // Stored values of the dropped column id are ignored
                    // from now on; ids are never reused.
                    table.columns.remove(position);
                }
            }
            other => return Err(SqlError::unsupported(format!("ALTER TABLE {other}"))),
        }
    }
    catalog.update_table(&mut table).await?;
    Ok(ExecResult::command("ALTER TABLE"))
}

/// `column`'s default as an expression to evaluate once per existing row
/// (it may be volatile: `unique_rowid()`, `gateway_region()`), if it has
/// one.
pub(super) fn bind_default(column: &ColumnDescriptor) -> Result<Option<Expr>, SqlError> {
    let Some(text) = &column.default else {
        return Ok(None);
    };
    let e = crate::plan::bind::parse_default(text)?;
    let tables = Default::default();
    let bound = crate::plan::bind::Binder::new(&tables, &[]).bind_expr(
        &e,
        &crate::plan::bind::Scope::new(&[]),
        column.ty,
    )?;
    Ok(Some(bound))
}

/// Adds `column` and fills it in every existing row with its default (or
/// NULL), in this transaction.
async fn add_column(
    ctx: &ExecContext<'_>,
    table: &mut TableDescriptor,
    column: ColumnDescriptor,
) -> Result<(), SqlError> {
    let default = bind_default(&column)?;
    let rows = read_all(ctx, table).await?;
    table.columns.push(column);
    if rows.is_empty() {
        return Ok(());
    }
    let row_id = || ctx.engine.unique_row_id();
    let env: Env = ctx.env(&[], &row_id, &[]);
    let mut requests = Vec::with_capacity(rows.len());
    for mut row in rows {
        let value = match &default {
            Some(e) => super::eval::eval(e, &[], &env)?,
            None => Datum::Null,
        };
        row.push(value);
        let row = assign(table, row)?;
        requests.push(Request::Put {
            key: encoding::primary_key(table, &row)?,
            value: encoding::encode_row_value(table, &row)?,
        });
    }
    ctx.txn.write_batch(requests).await?;
    Ok(())
}
