//! Virtual tables of pg_catalog and information_schema, computed from the
//! catalog when read: enough for clients and tools that look up tables and
//! columns. Not every column PostgreSQL has: those clients read.

use super::query::Row;
use super::ExecContext;
use crate::error::SqlError;
use crate::plan::OutputColumn;
use crate::types::{Datum, SqlType};

/// Oid of the `public` schema (pg_namespace) and of pg_catalog.
const PUBLIC_OID: i64 = 2200;
const PG_CATALOG_OID: i64 = 11;

fn column(name: &str, ty: SqlType) -> OutputColumn {
    OutputColumn {
        name: name.into(),
        table: None,
        ty,
        hidden: false,
    }
}

fn canonical(name: &str) -> &str {
    name.strip_prefix("pg_catalog.").unwrap_or(name)
}

/// The columns of virtual table `name`, if there is one by that name.
pub fn columns(name: &str) -> Option<Vec<OutputColumn>> {
    use SqlType::*;
    Some(match canonical(name) {
        "information_schema.tables" => vec![
            column("table_catalog", Text),
            column("table_schema", Text),
            column("table_name", Text),
            column("table_type", Text),
        ],
        "information_schema.columns" => vec![
            column("table_catalog", Text),
            column("table_schema", Text),
            column("table_name", Text),
            column("column_name", Text),
            column("ordinal_position", Int8),
            column("column_default", Text),
            column("is_nullable", Text),
            column("data_type", Text),
        ],
        "information_schema.schemata" => {
            vec![column("catalog_name", Text), column("schema_name", Text)]
        }
        "pg_database" => vec![
            column("oid", Oid),
            column("datname", Name),
            column("encoding", Int4),
            column("datcollate", Text),
        ],
        "pg_namespace" => vec![
            column("oid", Oid),
            column("nspname", Name),
            column("nspowner", Oid),
        ],
        "pg_tables" => vec![
            column("schemaname", Name),
            column("tablename", Name),
            column("tableowner", Name),
            column("hasindexes", Bool),
        ],
        "pg_class" => vec![
            column("oid", Oid),
            column("relname", Name),
            column("relnamespace", Oid),
            column("relkind", Text),
            column("relowner", Oid),
            column("reltuples", Float4),
        ],
        "pg_attribute" => vec![
            column("attrelid", Oid),
            column("attname", Name),
            column("atttypid", Oid),
            column("attnum", Int2),
            column("attnotnull", Bool),
            column("attisdropped", Bool),
            column("atttypmod", Int4),
            column("atthasdef", Bool),
        ],
        "pg_type" => vec![
            column("oid", Oid),
            column("typname", Name),
            column("typnamespace", Oid),
            column("typlen", Int2),
        ],
        "pg_roles" | "pg_user" => vec![
            column("oid", Oid),
            column("rolname", Name),
            column("rolsuper", Bool),
        ],
        "pg_settings" => vec![column("name", Text), column("setting", Text)],
        _ => return None,
    })
}

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

/// The rows of virtual table `name` as the transaction sees the catalog.
pub async fn rows(ctx: &ExecContext<'_>, name: &str) -> Result<Vec<Row>, SqlError> {
    let catalog = ctx.catalog();
    let tables = || async {
        let database = catalog.require_database(ctx.database).await?;
        catalog.tables(database.id).await
    };
    Ok(match canonical(name) {
        "information_schema.tables" => tables()
            .await?
            .into_iter()
            .map(|t| {
                vec![
                    text(ctx.database),
                    text("public"),
                    text(t.name),
                    text("BASE TABLE"),
                ]
            })
            .collect(),
        "information_schema.columns" => {
            let mut rows = Vec::new();
            for t in tables().await? {
                for (i, c) in t.columns.iter().filter(|c| !c.hidden).enumerate() {
                    rows.push(vec![
                        text(ctx.database),
                        text("public"),
                        text(t.name.clone()),
                        text(c.name.clone()),
                        Datum::Int(i as i64 + 1),
                        c.default.clone().map(Datum::Text).unwrap_or(Datum::Null),
                        text(if c.nullable { "YES" } else { "NO" }),
                        text(c.ty.name()),
                    ]);
                }
            }
            rows
        }
        "information_schema.schemata" => ["public", "pg_catalog", "information_schema"]
            .iter()
            .map(|s| vec![text(ctx.database), text(*s)])
            .collect(),
        "pg_database" => catalog
            .databases()
            .await?
            .into_iter()
            .map(|d| {
                vec![
                    Datum::Int(d.id as i64),
                    text(d.name),
                    Datum::Int(6),
                    text("C.UTF-8"),
                ]
            })
            .collect(),
        "pg_namespace" => vec![
            vec![
                Datum::Int(PG_CATALOG_OID),
                text("pg_catalog"),
                Datum::Int(10),
            ],
            vec![Datum::Int(PUBLIC_OID), text("public"), Datum::Int(10)],
        ],
        "pg_tables" => tables()
            .await?
            .into_iter()
            .map(|t| {
                vec![
                    text("public"),
                    text(t.name),
                    text("root"),
                    Datum::Bool(!t.indexes.is_empty()),
                ]
            })
            .collect(),
        "pg_class" => tables()
            .await?
            .into_iter()
            .map(|t| {
                vec![
                    Datum::Int(t.id as i64),
                    text(t.name),
                    Datum::Int(PUBLIC_OID),
                    text("r"),
                    Datum::Int(10),
                    Datum::Float(-1.0),
                ]
            })
            .collect(),
        "pg_attribute" => {
            let mut rows = Vec::new();
            for t in tables().await? {
                for (i, c) in t.columns.iter().enumerate() {
                    rows.push(vec![
                        Datum::Int(t.id as i64),
                        text(c.name.clone()),
                        Datum::Int(c.ty.oid() as i64),
                        Datum::Int(i as i64 + 1),
                        Datum::Bool(!c.nullable),
                        Datum::Bool(false),
                        Datum::Int(-1),
                        Datum::Bool(c.default.is_some()),
                    ]);
                }
            }
            rows
        }
        "pg_type" => {
            use SqlType::*;
            [
                Bool,
                Bytea,
                Name,
                Int8,
                Int2,
                Int4,
                Text,
                Oid,
                Float4,
                Float8,
                Char(1),
                Varchar(None),
                Date,
                Timestamp,
                TimestampTz,
                Interval,
                Numeric,
                Uuid,
                Jsonb,
            ]
            .iter()
            .map(|t| {
                let name = match t {
                    Bool => "bool",
                    Bytea => "bytea",
                    Name => "name",
                    Int8 => "int8",
                    Int2 => "int2",
                    Int4 => "int4",
                    Text => "text",
                    Oid => "oid",
                    Float4 => "float4",
                    Float8 => "float8",
                    Char(_) => "bpchar",
                    Varchar(_) => "varchar",
                    Date => "date",
                    Timestamp => "timestamp",
                    TimestampTz => "timestamptz",
                    Interval => "interval",
                    Numeric => "numeric",
                    Uuid => "uuid",
                    Jsonb => "jsonb",
                    Unknown => "unknown",
                };
                vec![
                    Datum::Int(t.oid() as i64),
                    text(name),
                    Datum::Int(PG_CATALOG_OID),
                    Datum::Int(t.wire_size() as i64),
                ]
            })
            .collect()
        }
        "pg_roles" | "pg_user" => vec![vec![Datum::Int(10), text(ctx.user), Datum::Bool(true)]],
        "pg_settings" => ctx
            .vars
            .iter()
            .map(|(k, v)| vec![text(k.clone()), text(v.clone())])
            .collect(),
        other => return Err(SqlError::undefined_table(other)),
    })
}
