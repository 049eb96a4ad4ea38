//! SHOW statements (TABLES, DATABASES, COLUMNS, CREATE TABLE, RANGES with
//! the localities of replicas and leaseholders) and
//! EXPLAIN, which names the spans, ranges and leaseholders a statement
//! reads.

use meridian_keys::space::{prefix_end, table_prefix};
use sqlparser::ast;

use super::ExecContext;
use crate::catalog::{Locality, TableDescriptor, REGION_COLUMN};
use crate::encoding;
use crate::error::SqlError;
use crate::plan::bind::{table_name, Binder};
use crate::plan::{KeyConstraint, Plan};
use crate::session::{ColumnInfo, ExecResult};
use crate::types::{Datum, SqlType};

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

fn text_columns(names: &[&str]) -> Vec<ColumnInfo> {
    names
        .iter()
        .map(|n| ColumnInfo::new(*n, SqlType::Text))
        .collect()
}

pub async fn tables(ctx: &ExecContext<'_>) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    let database = catalog.require_database(ctx.database).await?;
    let mut tables = catalog.tables(database.id).await?;
    tables.sort_by(|a, b| a.name.cmp(&b.name));
    let rows = tables
        .into_iter()
        .map(|t| vec![text("public"), text(t.name), text("table")])
        .collect();
    Ok(ExecResult::rows(
        text_columns(&["schema_name", "table_name", "type"]),
        rows,
    ))
}

pub async fn databases(ctx: &ExecContext<'_>) -> Result<ExecResult, SqlError> {
    let rows = ctx
        .catalog()
        .databases()
        .await?
        .into_iter()
        .map(|d| vec![text(d.name)])
        .collect();
    Ok(ExecResult::rows(text_columns(&["database_name"]), rows))
}

pub async fn columns(
    ctx: &ExecContext<'_>,
    options: &ast::ShowStatementOptions,
) -> Result<ExecResult, SqlError> {
    let name = options
        .show_in
        .as_ref()
        .and_then(|i| i.parent_name.as_ref())
        .ok_or_else(|| SqlError::syntax("expected SHOW COLUMNS FROM table"))?;
    let table = ctx
        .catalog()
        .require_table(ctx.database, &table_name(name)?)
        .await?;
    let rows = table
        .columns
        .iter()
        .map(|c| {
            vec![
                text(c.name.clone()),
                text(c.ty.name()),
                Datum::Bool(c.nullable),
                c.default.clone().map(Datum::Text).unwrap_or(Datum::Null),
                Datum::Bool(c.hidden),
            ]
        })
        .collect();
    let columns = vec![
        ColumnInfo::new("column_name", SqlType::Text),
        ColumnInfo::new("data_type", SqlType::Text),
        ColumnInfo::new("is_nullable", SqlType::Bool),
        ColumnInfo::new("column_default", SqlType::Text),
        ColumnInfo::new("is_hidden", SqlType::Bool),
    ];
    Ok(ExecResult::rows(columns, rows))
}

pub async fn create(
    ctx: &ExecContext<'_>,
    object: ast::ShowCreateObject,
    name: &ast::ObjectName,
) -> Result<ExecResult, SqlError> {
    if object != ast::ShowCreateObject::Table {
        return Err(SqlError::unsupported(format!("SHOW CREATE {object}")));
    }
    let table = ctx
        .catalog()
        .require_table(ctx.database, &table_name(name)?)
        .await?;
    let rows = vec![vec![
        text(table.name.clone()),
        text(create_statement(&table)),
    ]];
    Ok(ExecResult::rows(
        text_columns(&["table_name", "create_statement"]),
        rows,
    ))
}

/// The CREATE TABLE statement that makes `table` again.
pub fn create_statement(table: &TableDescriptor) -> String {
    let name_of = |id: u32| {
        table
            .columns
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    };
    let key_list = |cols: &[(u32, crate::catalog::IndexDirection)]| {
        cols.iter()
            .map(|(id, d)| match d {
                crate::catalog::IndexDirection::Asc => name_of(*id),
                crate::catalog::IndexDirection::Desc => format!("{} DESC", name_of(*id)),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines: Vec<String> = table
        .columns
        .iter()
        .filter(|c| !c.hidden)
        .map(|c| {
            let mut line = format!("    {} {}", c.name, c.ty.name().to_uppercase());
            if !c.nullable {
                line.push_str(" NOT NULL");
            }
            if let Some(d) = &c.default {
                line.push_str(&format!(" DEFAULT {d}"));
            }
            line
        })
        .collect();
    // A REGIONAL BY ROW table's region leads every key; LOCALITY says so.
    let region = table
        .region_column()
        .and_then(|name| table.columns.iter().find(|c| c.name == name))
        .map(|c| c.id);
    let key_list = |cols: &[(u32, crate::catalog::IndexDirection)]| {
        let visible: Vec<_> = cols
            .iter()
            .filter(|(id, _)| Some(*id) != region)
            .cloned()
            .collect();
        key_list(&visible)
    };
    let hidden_key = table.primary_index.columns.iter().any(|(id, _)| {
        Some(*id) != region && table.columns.iter().any(|c| c.id == *id && c.hidden)
    });
    if !hidden_key {
        lines.push(format!(
            "    CONSTRAINT {} PRIMARY KEY ({})",
            table.primary_index.name,
            key_list(&table.primary_index.columns)
        ));
    }
    for index in &table.indexes {
        let kind = if index.unique {
            "UNIQUE INDEX"
        } else {
            "INDEX"
        };
        lines.push(format!(
            "    {kind} {} ({})",
            index.name,
            key_list(&index.columns)
        ));
    }
    let locality = match &table.locality {
        None => String::new(),
        Some(Locality::Global) => " LOCALITY GLOBAL".into(),
        Some(Locality::RegionalByTable(None)) => {
            " LOCALITY REGIONAL BY TABLE IN PRIMARY REGION".into()
        }
        Some(Locality::RegionalByTable(Some(r))) => {
            format!(" LOCALITY REGIONAL BY TABLE IN \"{r}\"")
        }
        Some(Locality::RegionalByRow { column }) if column == REGION_COLUMN => {
            " LOCALITY REGIONAL BY ROW".into()
        }
        Some(Locality::RegionalByRow { column }) => {
            format!(" LOCALITY REGIONAL BY ROW AS {column}")
        }
    };
    format!(
        "CREATE TABLE public.{} (\n{}\n){locality}",
        table.name,
        lines.join(",\n")
    )
}

pub fn ranges_columns() -> Vec<ColumnInfo> {
    vec![
        ColumnInfo::new("range_id", SqlType::Int8),
        ColumnInfo::new("start_key", SqlType::Text),
        ColumnInfo::new("end_key", SqlType::Text),
        ColumnInfo::new("replicas", SqlType::Text),
        ColumnInfo::new("lease_holder", SqlType::Int8),
        ColumnInfo::new("replica_localities", SqlType::Text),
        ColumnInfo::new("lease_holder_locality", SqlType::Text),
    ]
}

/// The ranges holding `[start, end)`, in key order, with their replicas'
/// nodes and leaseholder (where known).
async fn ranges_of_span(
    ctx: &ExecContext<'_>,
    start: &[u8],
    end: &[u8],
) -> Result<Vec<(meridian_kvapi::RangeDescriptor, Option<u64>)>, SqlError> {
    let ds = &ctx.engine.ds;
    let mut out = Vec::new();
    let mut key = start.to_vec();
    while key.as_slice() < end {
        // The gateway's range cache may be minutes old (replicas move
        // without telling it): drop its entry, read the descriptor again,
        // and ask the range once so the answer names today's leaseholder.
        if let Some(cached) = ds.cache().lookup(&key) {
            ds.cache().evict(&key, cached.descriptor.range_id);
        }
        let range = ds.lookup_range(&key).await.map_err(|e| {
            SqlError::new(
                crate::error::code::SYSTEM_ERROR,
                format!("looking up ranges: {e}"),
            )
        })?;
        let _ = ds.get(&key).await;
        let leaseholder = ds.cache().lookup(&key).and_then(|c| c.leaseholder);
        key = range.end_key.clone();
        let done = range.end_key.as_slice() >= end || range.end_key.is_empty();
        out.push((range, leaseholder));
        if done {
            break;
        }
    }
    Ok(out)
}

pub async fn ranges_of_table(ctx: &ExecContext<'_>, name: &str) -> Result<ExecResult, SqlError> {
    let table = ctx.catalog().require_table(ctx.database, name).await?;
    let start = table_prefix(table.id);
    let end = prefix_end(&start).expect("tables end");
    let localities = ctx.engine.node_localities().unwrap_or_default();
    let locality_of = |node: u64| {
        localities
            .iter()
            .find(|(id, _)| *id == node)
            .map(|(_, l)| l.to_string())
            .unwrap_or_default()
    };
    let rows = ranges_of_span(ctx, &start, &end)
        .await?
        .into_iter()
        .map(|(range, leaseholder)| {
            let mut nodes: Vec<u64> = range.replicas.iter().map(|r| r.node_id).collect();
            nodes.sort();
            let replica_localities = nodes
                .iter()
                .map(|n| format!("\"{}\"", locality_of(*n)))
                .collect::<Vec<_>>()
                .join(",");
            vec![
                Datum::Int(range.range_id as i64),
                text(pretty_key(&range.start_key)),
                text(pretty_key(&range.end_key)),
                text(format!(
                    "{{{}}}",
                    nodes
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                leaseholder
                    .map(|l| Datum::Int(l as i64))
                    .unwrap_or(Datum::Null),
                text(format!("{{{replica_localities}}}")),
                leaseholder
                    .map(|l| text(locality_of(l)))
                    .unwrap_or(Datum::Null),
            ]
        })
        .collect();
    Ok(ExecResult::rows(ranges_columns(), rows))
}

/// A key as CockroachDB prints one: table keys as `/Table/<id>/<index>/..`.
fn pretty_key(key: &[u8]) -> String {
    if key.is_empty() {
        return "/Min".into();
    }
    if key == meridian_keys::space::MAX_KEY {
        return "/Max".into();
    }
    match meridian_keys::Key::decode(key) {
        meridian_keys::Key::Table {
            table_id,
            index_id,
            columns,
        } => {
            let mut s = format!("/Table/{table_id}/{index_id}");
            if let Ok(values) = meridian_keys::decode_values(&columns) {
                for (v, _) in values {
                    s.push_str(&format!("/{v:?}"));
                }
            }
            s
        }
        other => format!("{other:?}"),
    }
}

pub fn explain_columns() -> Vec<ColumnInfo> {
    text_columns(&["info"])
}

/// EXPLAIN: the plan tree, and for each scan its spans, ranges and
/// leaseholders.
pub async fn explain(
    ctx: &ExecContext<'_>,
    statement: &ast::Statement,
    params: &[crate::types::Datum],
) -> Result<ExecResult, SqlError> {
    let tables = super::load_tables(ctx, statement).await?;
    let binder = Binder::new(&tables, &vec![SqlType::Unknown; params.len()]);
    let plan = match statement {
        ast::Statement::Query(q) => binder.bind_query(q)?,
        ast::Statement::Update(u) => binder.bind_update(u)?.input,
        ast::Statement::Delete(d) => binder.bind_delete(d)?.input,
        ast::Statement::Insert(i) => binder.bind_insert(i, false)?.source,
        other => {
            return Err(SqlError::unsupported(format!(
                "EXPLAIN of {}",
                super::first_words(&other.to_string())
            )))
        }
    };
    let mut lines = Vec::new();
    describe_plan(&plan, 0, &mut lines);
    let mut scans = Vec::new();
    collect_scans(&plan, &mut scans);
    for (table, keys) in scans {
        let (start, end) = encoding::index_span(table, table.primary_index.id);
        let spans = match keys {
            KeyConstraint::Full => "FULL SCAN".to_string(),
            KeyConstraint::Points(p) => format!("{} point lookup(s) on the primary key", p.len()),
            KeyConstraint::AnyRegion(p) => format!(
                "{} locality-optimized lookup(s) on the primary key (the gateway's region first, then the others at once)",
                p.len()
            ),
            KeyConstraint::Range { eq, lower, upper } => format!(
                "range scan: {} key column(s) fixed{}{}",
                eq.len(),
                if lower.is_some() { ", lower bound" } else { "" },
                if upper.is_some() { ", upper bound" } else { "" }
            ),
        };
        lines.push(format!(
            "table {}@{}: {spans}",
            table.name, table.primary_index.name
        ));
        let reads_from = if ctx.txn.is_historical() {
            format!(
                "the nearest replica (follower read as of {})",
                ctx.txn.meta().write_timestamp
            )
        } else if table.reads_from_nearest() {
            "the nearest replica (GLOBAL: every replica serves the present)".to_string()
        } else {
            "the leaseholder".to_string()
        };
        lines.push(format!("  reads from {reads_from}"));
        for (range, leaseholder) in ranges_of_span(ctx, &start, &end).await? {
            let nodes: Vec<String> = range
                .replicas
                .iter()
                .map(|r| format!("n{}", r.node_id))
                .collect();
            lines.push(format!(
                "  range r{} [{}, {}) replicas {} leaseholder {}",
                range.range_id,
                pretty_key(&range.start_key),
                pretty_key(&range.end_key),
                nodes.join(","),
                leaseholder
                    .map(|l| format!("n{l}"))
                    .unwrap_or_else(|| "unknown".into())
            ));
        }
    }
    let rows = lines.into_iter().map(|l| vec![text(l)]).collect();
    Ok(ExecResult::rows(explain_columns(), rows))
}

fn describe_plan(plan: &Plan, depth: usize, lines: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    let (label, children): (String, Vec<&Plan>) = match plan {
        Plan::Values { rows, .. } => (format!("values ({} row(s))", rows.len()), vec![]),
        Plan::Scan { table, keys, .. } => (
            format!(
                "scan {}{}",
                table.name,
                match keys {
                    KeyConstraint::Full => " (full)",
                    KeyConstraint::Points(_) => " (point lookups)",
                    KeyConstraint::AnyRegion(_) => " (locality-optimized lookups)",
                    KeyConstraint::Range { .. } => " (range)",
                }
            ),
            vec![],
        ),
        Plan::Virtual { name, .. } => (format!("virtual table {name}"), vec![]),
        Plan::Filter { input, .. } => ("filter".into(), vec![input]),
        Plan::Project { input, .. } => ("render".into(), vec![input]),
        Plan::Join {
            left,
            right,
            equi,
            left_outer,
            ..
        } => (
            format!(
                "{} join{}",
                if *left_outer { "left outer" } else { "inner" },
                if equi.is_empty() {
                    " (nested loop)"
                } else {
                    " (hash)"
                }
            ),
            vec![left, right],
        ),
        Plan::Aggregate { input, .. } => ("group".into(), vec![input]),
        Plan::Sort { input, .. } => ("sort".into(), vec![input]),
        Plan::Distinct { input } => ("distinct".into(), vec![input]),
        Plan::Limit { input, .. } => ("limit".into(), vec![input]),
        Plan::SetOp {
            left, right, op, ..
        } => (format!("{op:?}").to_lowercase(), vec![left, right]),
        Plan::Truncate { input, .. } => return describe_plan(input, depth, lines),
    };
    lines.push(format!("{pad}{label}"));
    for child in children {
        describe_plan(child, depth + 1, lines);
    }
}

fn collect_scans<'p>(plan: &'p Plan, out: &mut Vec<(&'p TableDescriptor, &'p KeyConstraint)>) {
    match plan {
        Plan::Scan { table, keys, .. } => out.push((table, keys)),
        Plan::Values { .. } | Plan::Virtual { .. } => {}
        Plan::Filter { input, .. }
        | Plan::Project { input, .. }
        | Plan::Aggregate { input, .. }
        | Plan::Sort { input, .. }
        | Plan::Distinct { input }
        | Plan::Limit { input, .. }
        | Plan::Truncate { input, .. } => collect_scans(input, out),
        Plan::Join { left, right, .. } | Plan::SetOp { left, right, .. } => {
            collect_scans(left, out);
            collect_scans(right, out);
        }
    }
}
