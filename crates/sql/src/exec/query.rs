//! Running plan trees: scans over key spans, filters, projections, hash
//! and nested-loop joins, sorting, DISTINCT, LIMIT and set operations
//! (aggregation is [`super::aggregate`]'s). Operators materialize their
//! rows; streaming (a flat memory profile for huge results) is not built
//! yet.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;

use meridian_keys::space::prefix_end;
use meridian_kvapi::{Request, Response};

use super::eval::{eval, Env};
use super::ExecContext;
use crate::catalog::TableDescriptor;
use crate::encoding;
use crate::error::{code, SqlError};
use crate::plan::expr::Expr;
use crate::plan::{KeyConstraint, Plan, RowLocking, SetOpKind, SortKey};
use crate::types::{cast, Datum, SqlType};

pub type Row = Vec<Datum>;

type RowsFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>, SqlError>> + Send + 'a>>;

/// Runs `plan` and returns its rows.
pub fn run<'a>(ctx: &'a ExecContext<'a>, plan: &'a Plan, env: &'a Env<'a>) -> RowsFuture<'a> {
    Box::pin(async move {
        Ok(match plan {
            Plan::Values { rows, .. } => rows
                .iter()
                .map(|exprs| exprs.iter().map(|e| eval(e, &[], env)).collect())
                .collect::<Result<_, _>>()?,
            Plan::Scan {
                table,
                keys,
                locking,
                ..
            } => scan(ctx, table, keys, *locking, env).await?,
            Plan::Virtual { name, .. } => super::virtual_tables::rows(ctx, name).await?,
            Plan::Filter { input, predicate } => {
                let rows = run(ctx, input, env).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    if eval(predicate, &row, env)?.is_true() {
                        out.push(row);
                    }
                }
                out
            }
            Plan::Project { input, exprs, .. } => {
                let rows = run(ctx, input, env).await?;
                rows.iter()
                    .map(|row| exprs.iter().map(|e| eval(e, row, env)).collect())
                    .collect::<Result<_, _>>()?
            }
            Plan::Join {
                left,
                right,
                on,
                left_outer,
                equi,
            } => {
                let left_rows = run(ctx, left, env).await?;
                let right_rows = run(ctx, right, env).await?;
                let right_width = right.columns().len();
                join(
                    left_rows,
                    right_rows,
                    right_width,
                    on.as_ref(),
                    *left_outer,
                    equi,
                    env,
                )?
            }
            Plan::Aggregate {
                input,
                group_by,
                aggs,
                ..
            } => {
                let rows = run(ctx, input, env).await?;
                super::aggregate::aggregate(rows, group_by, aggs, env)?
            }
            Plan::Sort { input, keys } => {
                let rows = run(ctx, input, env).await?;
                sort(rows, keys, env)?
            }
            Plan::Distinct { input } => {
                let rows = run(ctx, input, env).await?;
                distinct(rows)
            }
            Plan::Limit {
                input,
                limit,
                offset,
            } => {
                let rows = run(ctx, input, env).await?;
                let count = |e: &Option<Expr>, what: &str| -> Result<Option<usize>, SqlError> {
                    match e.as_ref().map(|e| eval(e, &[], env)).transpose()? {
                        None | Some(Datum::Null) => Ok(None),
                        Some(d) => match cast::cast(d, SqlType::Int8, true)? {
                            Datum::Int(n) if n >= 0 => Ok(Some(n as usize)),
                            _ => Err(SqlError::new(
                                code::INVALID_PARAMETER_VALUE,
                                format!("{what} must not be negative"),
                            )),
                        },
                    }
                };
                let skip = count(offset, "OFFSET")?.unwrap_or(0);
                let take = count(limit, "LIMIT")?.unwrap_or(usize::MAX);
                rows.into_iter().skip(skip).take(take).collect()
            }
            Plan::SetOp {
                left,
                right,
                op,
                all,
            } => {
                let l = run(ctx, left, env).await?;
                let r = run(ctx, right, env).await?;
                set_op(l, r, *op, *all)
            }
            Plan::Truncate { input, keep } => {
                let mut rows = run(ctx, input, env).await?;
                for row in &mut rows {
                    row.truncate(*keep);
                }
                rows
            }
        })
    })
}

/// Evaluates a key value and brings it to the key column's type; `None`
/// when no key can equal it (NULL), `Err` of `()` when the value does not
/// convert without loss (the scan must not narrow on it).
pub(super) fn key_value(
    e: &Expr,
    ty: SqlType,
    env: &Env,
) -> Result<Result<Option<Datum>, ()>, SqlError> {
    let value = eval(e, &[], env)?;
    if value.is_null() {
        return Ok(Ok(None));
    }
    match cast::cast(value.clone(), ty, true) {
        Ok(converted) if converted.sql_cmp(&value) == Some(std::cmp::Ordering::Equal) => {
            Ok(Ok(Some(converted)))
        }
        Ok(_) | Err(_) => Ok(Err(())),
    }
}

/// An encoded key bound and whether it is inclusive.
type EncodedBound = (Vec<u8>, bool);

/// The key spans (or points) a scan reads.
enum Reads {
    Points(Vec<Vec<u8>>),
    Span(Vec<u8>, Vec<u8>),
    Nothing,
}

fn reads(table: &TableDescriptor, keys: &KeyConstraint, env: &Env) -> Result<Reads, SqlError> {
    let (start, end) = encoding::index_span(table, table.primary_index.id);
    let key_types: Vec<SqlType> = table
        .primary_key_positions()
        .iter()
        .map(|p| table.columns[*p].ty)
        .collect();
    let directions: Vec<_> = table
        .primary_index
        .columns
        .iter()
        .map(|(_, d)| (*d).into())
        .collect::<Vec<_>>();
    let full = Reads::Span(start.clone(), end.clone());
    match keys {
        KeyConstraint::Full | KeyConstraint::AnyRegion(_) => Ok(full),
        KeyConstraint::Points(tuples) => {
            let mut points = Vec::with_capacity(tuples.len());
            'tuples: for tuple in tuples {
                let mut key = start.clone();
                for (i, e) in tuple.iter().enumerate() {
                    match key_value(e, key_types[i], env)? {
                        Ok(Some(d)) => encoding::encode_key_datum(&mut key, &d, directions[i])?,
                        Ok(None) => continue 'tuples,
                        Err(()) => return Ok(full),
                    }
                }
                if !points.contains(&key) {
                    points.push(key);
                }
            }
            Ok(if points.is_empty() {
                Reads::Nothing
            } else {
                Reads::Points(points)
            })
        }
        KeyConstraint::Range { eq, lower, upper } => {
            let mut prefix = start.clone();
            for (i, e) in eq.iter().enumerate() {
                match key_value(e, key_types[i], env)? {
                    Ok(Some(d)) => encoding::encode_key_datum(&mut prefix, &d, directions[i])?,
                    Ok(None) => return Ok(Reads::Nothing),
                    Err(()) => return Ok(full),
                }
            }
            let column = eq.len();
            let bound =
                |b: &Option<(Expr, bool)>| -> Result<Result<Option<EncodedBound>, ()>, SqlError> {
                    let Some((e, inclusive)) = b else {
                        return Ok(Ok(None));
                    };
                    match key_value(e, key_types[column], env)? {
                        Ok(Some(d)) => {
                            let mut key = prefix.clone();
                            encoding::encode_key_datum(&mut key, &d, directions[column])?;
                            Ok(Ok(Some((key, *inclusive))))
                        }
                        Ok(None) => Ok(Ok(Some((Vec::new(), false)))),
                        Err(()) => Ok(Err(())),
                    }
                };
            let (lower, upper) = match (bound(lower)?, bound(upper)?) {
                (Ok(l), Ok(u)) => (l, u),
                _ => return Ok(full),
            };
            // A NULL bound matches nothing.
            if matches!(&lower, Some((k, _)) if k.is_empty())
                || matches!(&upper, Some((k, _)) if k.is_empty())
            {
                return Ok(Reads::Nothing);
            }
            let span_start = match lower {
                Some((key, true)) => key,
                Some((key, false)) => prefix_end(&key).expect("keys end"),
                None => prefix.clone(),
            };
            let span_end = match upper {
                Some((key, true)) => prefix_end(&key).expect("keys end"),
                Some((key, false)) => key,
                None => prefix_end(&prefix).unwrap_or(end),
            };
            if span_start >= span_end {
                return Ok(Reads::Nothing);
            }
            Ok(Reads::Span(span_start, span_end))
        }
    }
}

async fn scan(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    keys: &KeyConstraint,
    locking: RowLocking,
    env: &Env<'_>,
) -> Result<Vec<Row>, SqlError> {
    let local_first = match keys {
        KeyConstraint::AnyRegion(tuples) => {
            super::locality::lookup_any_region(ctx, table, tuples, env).await?
        }
        _ => None,
    };
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = match local_first {
        Some(found) => found,
        None => match reads(table, keys, env)? {
            Reads::Nothing => Vec::new(),
            Reads::Span(start, end) if table.reads_from_nearest() => {
                ctx.txn.scan_from_nearest(&start, &end, 0).await?
            }
            Reads::Span(start, end) => ctx.txn.scan(&start, &end, 0).await?,
            Reads::Points(points) if locking != RowLocking::None => {
                // Locked at the leaseholder as they are read.
                return get_all_for_update(ctx, points)
                    .await?
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| encoding::decode_row(table, &k, &v))
                    .collect();
            }
            Reads::Points(points) => get_all_routed(ctx, points, table.reads_from_nearest())
                .await?
                .into_iter()
                .flatten()
                .collect(),
        },
    };
    if locking == RowLocking::ForUpdate && !pairs.is_empty() {
        // Rows of a span (or found by a lookup across regions), which no
        // locking read covers: an intent on each (the same value) makes a
        // concurrent writer of them wait or conflict now, not at commit.
        let locks = pairs
            .iter()
            .map(|(k, v)| Request::Put {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        ctx.txn.write_batch(locks).await?;
    }
    pairs
        .iter()
        .map(|(k, v)| encoding::decode_row(table, k, v))
        .collect()
}

/// Reads `points` in one batch: each one's key and value, if it exists.
pub(super) async fn get_all(
    ctx: &ExecContext<'_>,
    points: Vec<Vec<u8>>,
) -> Result<PointsFound, SqlError> {
    get_all_routed(ctx, points, false).await
}

/// [`get_all`], each key locked for the transaction until it ends
/// ([`Request::GetForUpdate`]).
async fn get_all_for_update(
    ctx: &ExecContext<'_>,
    points: Vec<Vec<u8>>,
) -> Result<PointsFound, SqlError> {
    let requests = points
        .iter()
        .map(|k| Request::GetForUpdate { key: k.clone() })
        .collect();
    let responses = ctx.txn.read_batch(requests).await?;
    points_found(points, responses)
}

/// Each point read's key and value, if it exists, in order.
type PointsFound = Vec<Option<(Vec<u8>, Vec<u8>)>>;

fn points_found(points: Vec<Vec<u8>>, responses: Vec<Response>) -> Result<PointsFound, SqlError> {
    points
        .into_iter()
        .zip(responses)
        .map(|(key, response)| match response {
            Response::Get { value: Some(v) } => Ok(Some((key, v))),
            Response::Get { value: None } => Ok(None),
            other => Err(SqlError::internal(format!("unexpected response {other:?}"))),
        })
        .collect()
}

/// [`get_all`], tried at the nearest replica first when `nearest` (a
/// GLOBAL table's rows).
async fn get_all_routed(
    ctx: &ExecContext<'_>,
    points: Vec<Vec<u8>>,
    nearest: bool,
) -> Result<PointsFound, SqlError> {
    let requests = points
        .iter()
        .map(|k| Request::Get { key: k.clone() })
        .collect();
    let responses = if nearest {
        ctx.txn.read_batch_from_nearest(requests).await?
    } else {
        ctx.txn.read_batch(requests).await?
    };
    points_found(points, responses)
}

fn join(
    left: Vec<Row>,
    right: Vec<Row>,
    right_width: usize,
    on: Option<&Expr>,
    left_outer: bool,
    equi: &[(usize, usize)],
    env: &Env,
) -> Result<Vec<Row>, SqlError> {
    let mut out = Vec::new();
    let matches = |combined: &Row| -> Result<bool, SqlError> {
        Ok(match on {
            Some(on) => eval(on, combined, env)?.is_true(),
            None => true,
        })
    };
    let key_of = |row: &Row, columns: &mut dyn Iterator<Item = usize>| -> Option<Vec<u8>> {
        let mut key = Vec::new();
        for c in columns {
            if row[c].is_null() {
                return None;
            }
            row[c].group_key(&mut key);
        }
        Some(key)
    };
    let table: Option<HashMap<Vec<u8>, Vec<usize>>> = if equi.is_empty() {
        None
    } else {
        let mut table: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for (i, row) in right.iter().enumerate() {
            if let Some(key) = key_of(row, &mut equi.iter().map(|(_, r)| *r)) {
                table.entry(key).or_default().push(i);
            }
        }
        Some(table)
    };
    let all: Vec<usize> = (0..right.len()).collect();
    for l in &left {
        let candidates: &[usize] = match &table {
            None => &all,
            Some(table) => match key_of(l, &mut equi.iter().map(|(l, _)| *l)) {
                Some(key) => table.get(&key).map(Vec::as_slice).unwrap_or(&[]),
                None => &[],
            },
        };
        let mut matched = false;
        for &i in candidates {
            let mut combined = l.clone();
            combined.extend(right[i].iter().cloned());
            if matches(&combined)? {
                matched = true;
                out.push(combined);
            }
        }
        if !matched && left_outer {
            let mut combined = l.clone();
            combined.extend(std::iter::repeat_n(Datum::Null, right_width));
            out.push(combined);
        }
    }
    Ok(out)
}

fn sort(rows: Vec<Row>, keys: &[SortKey], env: &Env) -> Result<Vec<Row>, SqlError> {
    let mut keyed: Vec<(Row, Row)> = rows
        .into_iter()
        .map(|row| {
            let k = keys
                .iter()
                .map(|k| eval(&k.expr, &row, env))
                .collect::<Result<Row, _>>()?;
            Ok((k, row))
        })
        .collect::<Result<_, SqlError>>()?;
    keyed.sort_by(|(a, _), (b, _)| {
        for (i, key) in keys.iter().enumerate() {
            let (x, y) = (&a[i], &b[i]);
            let ord = match (x.is_null(), y.is_null()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => {
                    if key.nulls_first {
                        std::cmp::Ordering::Less
                    } else {
                        std::cmp::Ordering::Greater
                    }
                }
                (false, true) => {
                    if key.nulls_first {
                        std::cmp::Ordering::Greater
                    } else {
                        std::cmp::Ordering::Less
                    }
                }
                (false, false) => {
                    let o = x.sort_cmp(y);
                    if key.descending {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if ord != std::cmp::Ordering::Equal {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(keyed.into_iter().map(|(_, row)| row).collect())
}

fn row_key(row: &Row) -> Vec<u8> {
    let mut key = Vec::new();
    for v in row {
        v.group_key(&mut key);
    }
    key
}

fn distinct(rows: Vec<Row>) -> Vec<Row> {
    let mut seen = HashSet::new();
    rows.into_iter()
        .filter(|r| seen.insert(row_key(r)))
        .collect()
}

fn set_op(left: Vec<Row>, right: Vec<Row>, op: SetOpKind, all: bool) -> Vec<Row> {
    match op {
        SetOpKind::Union => {
            let mut rows = left;
            rows.extend(right);
            if all {
                rows
            } else {
                distinct(rows)
            }
        }
        SetOpKind::Intersect | SetOpKind::Except => {
            let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
            for r in &right {
                *counts.entry(row_key(r)).or_default() += 1;
            }
            let mut out = Vec::new();
            let mut emitted = HashSet::new();
            for r in left {
                let key = row_key(&r);
                let in_right = counts.get(&key).copied().unwrap_or(0) > 0;
                let keep = match op {
                    SetOpKind::Intersect => in_right,
                    _ => !in_right,
                };
                if all {
                    if op == SetOpKind::Intersect && in_right {
                        *counts.get_mut(&key).expect("counted") -= 1;
                        out.push(r);
                    } else if op == SetOpKind::Except {
                        if in_right {
                            *counts.get_mut(&key).expect("counted") -= 1;
                        } else {
                            out.push(r);
                        }
                    }
                } else if keep && emitted.insert(key) {
                    out.push(r);
                }
            }
            out
        }
    }
}
