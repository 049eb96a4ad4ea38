//! information_schema: tables, columns, schemata and key constraints of
//! the session's database, as the SQL standard names them.

use super::*;

const TABLES: &str = "table_catalog name, table_schema name, table_name name, \
    table_type text, self_referencing_column_name name?, reference_generation text?, \
    user_defined_type_catalog name?, user_defined_type_schema name?, \
    user_defined_type_name name?, is_insertable_into text, is_typed text, commit_action text?";

const COLUMNS: &str = "table_catalog name, table_schema name, table_name name, \
    column_name name, ordinal_position int4, column_default text?, is_nullable text, \
    data_type text, character_maximum_length int4?, character_octet_length int4?, \
    numeric_precision int4?, numeric_precision_radix int4?, numeric_scale int4?, \
    datetime_precision int4?, udt_catalog name, udt_schema name, udt_name name, \
    is_identity text, is_generated text, is_updatable text";

const SCHEMATA: &str = "catalog_name name, schema_name name, schema_owner name, \
    default_character_set_catalog name?, default_character_set_schema name?, \
    default_character_set_name name?, sql_path text?";

const TABLE_CONSTRAINTS: &str = "constraint_catalog name, constraint_schema name, \
    constraint_name name, table_catalog name, table_schema name, table_name name, \
    constraint_type text, is_deferrable text, initially_deferred text, enforced text, \
    nulls_distinct text?";

const KEY_COLUMN_USAGE: &str = "constraint_catalog name, constraint_schema name, \
    constraint_name name, table_catalog name, table_schema name, table_name name, \
    column_name name, ordinal_position int4, position_in_unique_constraint int4?";

const VIEWS: &str = "table_catalog name, table_schema name, table_name name, \
    view_definition text, check_option text, is_updatable text, is_insertable_into text";

pub(super) fn spec(name: &str) -> Option<&'static str> {
    Some(match name {
        "information_schema.tables" => TABLES,
        "information_schema.columns" => COLUMNS,
        "information_schema.schemata" => SCHEMATA,
        "information_schema.table_constraints" => TABLE_CONSTRAINTS,
        "information_schema.key_column_usage" => KEY_COLUMN_USAGE,
        "information_schema.views" => VIEWS,
        _ => return None,
    })
}

/// The standard's `data_type` for `ty` (array and user types aside).
fn data_type(ty: SqlType) -> String {
    match ty {
        SqlType::Varchar(_) => "character varying".into(),
        SqlType::Char(_) => "character".into(),
        other => other.name(),
    }
}

/// The primary key constraints: (table, constraint name, key column names).
fn primary_keys(tables: &[TableDescriptor]) -> Vec<(&str, &str, Vec<&str>)> {
    tables
        .iter()
        .filter_map(|t| {
            let columns: Vec<&crate::catalog::ColumnDescriptor> = t
                .primary_index
                .columns
                .iter()
                .filter_map(|(id, _)| t.columns.iter().find(|c| c.id == *id))
                .collect();
            if columns.iter().any(|c| c.hidden) {
                return None;
            }
            Some((
                t.name.as_str(),
                t.primary_index.name.as_str(),
                columns.iter().map(|c| c.name.as_str()).collect(),
            ))
        })
        .collect()
}

pub(super) async fn rows(
    ctx: &ExecContext<'_>,
    name: &str,
    spec: &'static str,
) -> Result<Vec<Row>, SqlError> {
    let db = || text(ctx.database);
    Ok(match name {
        "information_schema.tables" => tables(ctx)
            .await?
            .into_iter()
            .map(|t| {
                row(
                    spec,
                    &[
                        ("table_catalog", db()),
                        ("table_schema", text("public")),
                        ("table_name", text(t.name)),
                        ("table_type", text("BASE TABLE")),
                        ("is_insertable_into", text("YES")),
                        ("is_typed", text("NO")),
                    ],
                )
            })
            .collect(),
        "information_schema.columns" => {
            let mut rows = Vec::new();
            for t in tables(ctx).await? {
                for (attnum, c) in visible_columns(&t) {
                    let length = match c.ty {
                        SqlType::Varchar(Some(n)) | SqlType::Char(n) => int(n),
                        _ => Datum::Null,
                    };
                    let (precision, radix) = match c.ty {
                        SqlType::Int2 => (int(16), int(2)),
                        SqlType::Int4 => (int(32), int(2)),
                        SqlType::Int8 => (int(64), int(2)),
                        SqlType::Float4 => (int(24), int(2)),
                        SqlType::Float8 => (int(53), int(2)),
                        _ => (Datum::Null, Datum::Null),
                    };
                    rows.push(row(
                        spec,
                        &[
                            ("table_catalog", db()),
                            ("table_schema", text("public")),
                            ("table_name", text(t.name.clone())),
                            ("column_name", text(c.name.clone())),
                            ("ordinal_position", int(attnum)),
                            (
                                "column_default",
                                c.default.clone().map(Datum::Text).unwrap_or(Datum::Null),
                            ),
                            ("is_nullable", text(if c.nullable { "YES" } else { "NO" })),
                            ("data_type", text(data_type(c.ty))),
                            ("character_maximum_length", length),
                            ("numeric_precision", precision),
                            ("numeric_precision_radix", radix),
                            ("udt_catalog", db()),
                            ("udt_schema", text("pg_catalog")),
                            ("udt_name", text(type_name(c.ty))),
                            ("is_identity", text("NO")),
                            ("is_generated", text("NEVER")),
                            ("is_updatable", text("YES")),
                        ],
                    ));
                }
            }
            rows
        }
        "information_schema.schemata" => ["public", "pg_catalog", "information_schema"]
            .iter()
            .map(|s| {
                row(
                    spec,
                    &[
                        ("catalog_name", db()),
                        ("schema_name", text(*s)),
                        ("schema_owner", text("root")),
                    ],
                )
            })
            .collect(),
        "information_schema.table_constraints" => primary_keys(&tables(ctx).await?)
            .into_iter()
            .map(|(table, constraint, _)| {
                row(
                    spec,
                    &[
                        ("constraint_catalog", db()),
                        ("constraint_schema", text("public")),
                        ("constraint_name", text(constraint)),
                        ("table_catalog", db()),
                        ("table_schema", text("public")),
                        ("table_name", text(table)),
                        ("constraint_type", text("PRIMARY KEY")),
                        ("is_deferrable", text("NO")),
                        ("initially_deferred", text("NO")),
                        ("enforced", text("YES")),
                    ],
                )
            })
            .collect(),
        "information_schema.key_column_usage" => {
            let tables = tables(ctx).await?;
            let mut rows = Vec::new();
            for (table, constraint, columns) in primary_keys(&tables) {
                for (i, column) in columns.iter().enumerate() {
                    rows.push(row(
                        spec,
                        &[
                            ("constraint_catalog", db()),
                            ("constraint_schema", text("public")),
                            ("constraint_name", text(constraint)),
                            ("table_catalog", db()),
                            ("table_schema", text("public")),
                            ("table_name", text(table)),
                            ("column_name", text(*column)),
                            ("ordinal_position", int(i as i64 + 1)),
                        ],
                    ));
                }
            }
            rows
        }
        _ => Vec::new(),
    })
}
