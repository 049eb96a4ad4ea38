//! Virtual tables of pg_catalog ([`pg_catalog`]) and information_schema
//! ([`information_schema`]), computed from the catalog in the statement's
//! transaction when read: enough for psql's `\d` family and the
//! introspection queries of drivers. Not every column PostgreSQL has, and
//! tables clients only join against exist empty.
//!
//! Object ids are consistent across tables: a table's oid is its
//! descriptor id, a database's its descriptor id, an index's
//! [`index_oid`]; types keep PostgreSQL's oids. Array-typed columns
//! (`reloptions`, `datacl`, `indkey`...) are TEXT in their PostgreSQL text
//! form (or NULL), since Meridian has no array type.
//!
//! A column whose name starts with `meridian_` is hidden (not in `*`): it
//! carries what a catalog function would compute from an oid
//! (`pg_get_indexdef`, `pg_get_constraintdef`), which the binder reads in
//! its place (see `plan::bind::expr`).

mod information_schema;
mod pg_catalog;

pub use pg_catalog::quote_ident;

use super::query::Row;
use super::ExecContext;
use crate::catalog::TableDescriptor;
use crate::error::SqlError;
use crate::plan::OutputColumn;
use crate::types::{Datum, SqlType};

/// Oids of the schemas (pg_namespace).
pub const PG_CATALOG_NAMESPACE: i64 = 11;
pub const PUBLIC_NAMESPACE: i64 = 2200;
pub const INFORMATION_SCHEMA_NAMESPACE: i64 = 13_000;
/// Oid of the `root` role, which owns every object.
pub const ROOT_ROLE: i64 = 10;
/// Oid of the session's user when it is not `root` (there are no users
/// yet: any name gets in).
pub const SESSION_ROLE: i64 = 100;
/// Oids of the access methods: tables are `heap`, indexes `btree`.
pub const HEAP_AM: i64 = 2;
pub const BTREE_AM: i64 = 403;

/// Prefix of hidden columns.
pub const HIDDEN_PREFIX: &str = "meridian_";

/// The oid of index `index_id` of table `table_id` (pg_class, pg_index):
/// above 2^30, so it never meets a descriptor id in practice.
pub fn index_oid(table_id: u64, index_id: u32) -> i64 {
    (1 << 30) + (table_id as i64) * 1024 + index_id as i64
}

/// The schema-qualified name, without `pg_catalog.`.
fn canonical(name: &str) -> &str {
    name.strip_prefix("pg_catalog.").unwrap_or(name)
}

/// The columns of virtual table `name`, if there is one by that name.
pub fn columns(name: &str) -> Option<Vec<OutputColumn>> {
    let name = canonical(name);
    let spec = pg_catalog::spec(name).or_else(|| information_schema::spec(name))?;
    Some(
        parse_spec(spec)
            .map(|(name, ty, _)| OutputColumn {
                name: name.into(),
                table: None,
                ty,
                hidden: name.starts_with(HIDDEN_PREFIX),
            })
            .collect(),
    )
}

/// The rows of virtual table `name` as the transaction sees the catalog.
pub async fn rows(ctx: &ExecContext<'_>, name: &str) -> Result<Vec<Row>, SqlError> {
    let name = canonical(name);
    if let Some(spec) = pg_catalog::spec(name) {
        return pg_catalog::rows(ctx, name, spec).await;
    }
    if let Some(spec) = information_schema::spec(name) {
        return information_schema::rows(ctx, name, spec).await;
    }
    Err(SqlError::undefined_table(name))
}

/// A table's columns, written `name type` separated by commas; a type
/// ending in `?` is NULL unless given (others default to false, 0 or '').
/// Types: bool, int2, int4, int8, float4, float8, oid, name, text, char
/// (PostgreSQL's one-byte `"char"`), timestamptz.
fn parse_spec(spec: &'static str) -> impl Iterator<Item = (&'static str, SqlType, bool)> {
    spec.split(',').map(|column| {
        let mut words = column.split_whitespace();
        let name = words.next().expect("column name");
        let ty = words.next().expect("column type");
        let (ty, nullable) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (ty, false),
        };
        let ty = match ty {
            "bool" => SqlType::Bool,
            "int2" => SqlType::Int2,
            "int4" => SqlType::Int4,
            "int8" => SqlType::Int8,
            "float4" => SqlType::Float4,
            "float8" => SqlType::Float8,
            "oid" => SqlType::Oid,
            "name" => SqlType::Name,
            "text" => SqlType::Text,
            "char" => SqlType::PgChar,
            "timestamptz" => SqlType::TimestampTz,
            other => panic!("virtual table column type {other}"),
        };
        (name, ty, nullable)
    })
}

/// One row of a table declared by `spec`: the named values, and for the
/// other columns NULL (nullable ones) or the type's zero.
fn row(spec: &'static str, values: &[(&str, Datum)]) -> Row {
    debug_assert!(
        values
            .iter()
            .all(|(n, _)| parse_spec(spec).any(|(c, _, _)| c == *n)),
        "a value for a column the table does not have: {values:?}"
    );
    parse_spec(spec)
        .map(|(name, ty, nullable)| {
            if let Some((_, v)) = values.iter().find(|(n, _)| *n == name) {
                return v.clone();
            }
            if nullable {
                return Datum::Null;
            }
            match ty {
                SqlType::Bool => Datum::Bool(false),
                SqlType::Float4 | SqlType::Float8 => Datum::Float(0.0),
                SqlType::Text | SqlType::Name | SqlType::PgChar => Datum::Text(String::new()),
                SqlType::TimestampTz => Datum::Null,
                _ => Datum::Int(0),
            }
        })
        .collect()
}

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

fn int(n: impl Into<i64>) -> Datum {
    Datum::Int(n.into())
}

/// The visible columns of `table`, numbered from 1 as `attnum`.
fn visible_columns(
    table: &TableDescriptor,
) -> impl Iterator<Item = (i64, &crate::catalog::ColumnDescriptor)> {
    table
        .columns
        .iter()
        .filter(|c| !c.hidden)
        .enumerate()
        .map(|(i, c)| (i as i64 + 1, c))
}

/// The `attnum` of column `id` of `table` (0 for a hidden column).
fn attnum(table: &TableDescriptor, id: u32) -> i64 {
    visible_columns(table)
        .find(|(_, c)| c.id == id)
        .map(|(n, _)| n)
        .unwrap_or(0)
}

/// `atttypmod`: the declared length plus 4 for (VAR)CHAR(n), else -1.
fn typmod(ty: SqlType) -> i64 {
    match ty {
        SqlType::Varchar(Some(n)) | SqlType::Char(n) => n as i64 + 4,
        _ => -1,
    }
}

/// The tables of the session's database.
async fn tables(ctx: &ExecContext<'_>) -> Result<Vec<TableDescriptor>, SqlError> {
    let catalog = ctx.catalog();
    let database = catalog.require_database(ctx.database).await?;
    catalog.tables(database.id).await
}

/// The type's name in pg_type (`udt_name`).
fn type_name(ty: SqlType) -> &'static str {
    match ty {
        SqlType::Bool => "bool",
        SqlType::Int2 => "int2",
        SqlType::Int4 => "int4",
        SqlType::Int8 => "int8",
        SqlType::Float4 => "float4",
        SqlType::Float8 => "float8",
        SqlType::Numeric => "numeric",
        SqlType::Text => "text",
        SqlType::Varchar(_) => "varchar",
        SqlType::Char(_) => "bpchar",
        SqlType::Bytea => "bytea",
        SqlType::Timestamp => "timestamp",
        SqlType::TimestampTz => "timestamptz",
        SqlType::Date => "date",
        SqlType::Interval => "interval",
        SqlType::Uuid => "uuid",
        SqlType::Jsonb => "jsonb",
        SqlType::Oid => "oid",
        SqlType::Name => "name",
        SqlType::PgChar => "char",
        SqlType::Unknown => "unknown",
    }
}
