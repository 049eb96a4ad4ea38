//! Executing INSERT, UPSERT, UPDATE and DELETE: rows and their index
//! entries become one batch of KV writes in the statement's transaction
//! (one round of consensus per range touched). A new primary key or
//! unique index entry is a conditional put that fails if the key exists,
//! so uniqueness costs no extra read (except across the partitions of a
//! REGIONAL BY ROW table, which `locality` reads).

use std::collections::HashSet;

use meridian_kvapi::{KvError, Request, Response};
use meridian_kvclient::txn::TxnError;
use meridian_kvclient::ClientError;

use super::eval::{eval, Env};
use super::locality;
use super::query::{self, Row};
use super::ExecContext;
use crate::catalog::TableDescriptor;
use crate::encoding;
use crate::error::{code, SqlError};
use crate::plan::bind::Returning;
use crate::plan::bind::{DeletePlan, InsertPlan, OnConflict, UpdatePlan};
use crate::session::{ColumnInfo, ExecResult};
use crate::types::{cast, Datum};

pub async fn insert(
    ctx: &ExecContext<'_>,
    plan: &InsertPlan,
    env: &Env<'_>,
) -> Result<ExecResult, SqlError> {
    let table = &plan.table;
    let proposed = query::run(ctx, &plan.source, env).await?;
    let mut rows = Vec::with_capacity(proposed.len());
    for row in proposed {
        rows.push(assign(table, row)?);
    }
    // REGIONAL BY ROW: rows name regions of the database, and their
    // visible key is unique across regions.
    let by_row = locality::region_position(table);
    let multi_region = match by_row {
        Some(_) => locality::settings(ctx).await?,
        None => None,
    };
    locality::check_regions(table, multi_region.as_ref(), &rows)?;
    // Keys as the same-statement duplicate check sees them (a REGIONAL BY
    // ROW row's without its region).
    let keys: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| match by_row {
            Some(p) => {
                let mut visible = r.clone();
                visible[p] = Datum::Null;
                encoding::primary_key(table, &visible)
            }
            None => encoding::primary_key(table, r),
        })
        .collect::<Result<_, _>>()?;
    // Existing rows, where the conflict action needs them.
    let existing: Vec<Option<Row>> = match (&plan.on_conflict, &multi_region) {
        (_, Some(settings)) if by_row.is_some() => {
            let found = locality::find_in_any_region(ctx, table, settings, &rows).await?;
            if matches!(plan.on_conflict, OnConflict::Error) && found.iter().any(Option::is_some) {
                return Err(duplicate_key(table, &table.primary_index.name));
            }
            found
        }
        (OnConflict::Error, _) => vec![None; rows.len()],
        (OnConflict::Replace, _) if table.indexes.is_empty() => vec![None; rows.len()],
        _ => read_rows(ctx, table, &keys).await?,
    };
    let mut batch = WriteBatch::default();
    let mut written = Vec::new();
    let mut replaced = Vec::new();
    let mut seen = HashSet::new();
    for ((row, key), old) in rows.into_iter().zip(keys).zip(existing) {
        if !seen.insert(key.clone()) {
            match &plan.on_conflict {
                OnConflict::DoNothing => continue,
                OnConflict::DoUpdate { .. } => {
                    return Err(SqlError::new(
                        code::CARDINALITY_VIOLATION,
                        "ON CONFLICT DO UPDATE command cannot affect row a second time",
                    ))
                }
                OnConflict::Replace => {
                    return Err(SqlError::unsupported(
                        "UPSERT of the same key twice in one statement",
                    ))
                }
                OnConflict::Error => return Err(duplicate_key(table, &table.primary_index.name)),
            }
        }
        match (&plan.on_conflict, old) {
            (OnConflict::Error, _) | (_, None) => {
                let exclusive = !matches!(plan.on_conflict, OnConflict::Replace);
                batch.insert_row(table, &row, exclusive)?;
                written.push(row);
                replaced.push(None);
            }
            (OnConflict::DoNothing, Some(_)) => {}
            (OnConflict::Replace, Some(old)) => {
                batch.update_row(table, &old, &row)?;
                written.push(row);
                replaced.push(Some(old));
            }
            (
                OnConflict::DoUpdate {
                    assignments,
                    predicate,
                },
                Some(old),
            ) => {
                let mut both = old.clone();
                both.extend(row.iter().cloned());
                if let Some(p) = predicate {
                    if !eval(p, &both, env)?.is_true() {
                        continue;
                    }
                }
                let mut new = old.clone();
                for (position, e) in assignments {
                    new[*position] = eval(e, &both, env)?;
                }
                let new = assign(table, new)?;
                batch.update_row(table, &old, &new)?;
                written.push(new);
                replaced.push(Some(old));
            }
        }
    }
    if let Some(settings) = &multi_region {
        locality::check_regions(table, Some(settings), &written)?;
        let pairs: Vec<(Row, Option<Row>)> = written.iter().cloned().zip(replaced).collect();
        locality::check_unique_elsewhere(ctx, table, settings, &pairs).await?;
    }
    // RETURNING is evaluated before the writes go: with auto-commit they
    // commit, and a statement that fails must not have.
    let result = finish(
        format!("INSERT 0 {}", written.len()),
        written,
        plan.returning.as_ref(),
        env,
    )?;
    batch.send(ctx, table).await?;
    Ok(result)
}

pub async fn update(
    ctx: &ExecContext<'_>,
    plan: &UpdatePlan,
    env: &Env<'_>,
) -> Result<ExecResult, SqlError> {
    let table = &plan.table;
    let rows = query::run(ctx, &plan.input, env).await?;
    let by_row = locality::region_position(table);
    let multi_region = match by_row {
        Some(_) => locality::settings(ctx).await?,
        None => None,
    };
    let mut pairs = Vec::new();
    let mut batch = WriteBatch::default();
    let mut written = Vec::with_capacity(rows.len());
    for old in rows {
        let mut new = old.clone();
        for (position, e) in &plan.assignments {
            new[*position] = eval(e, &old, env)?;
        }
        let new = assign(table, new)?;
        batch.update_row(table, &old, &new)?;
        if by_row.is_some() {
            pairs.push((new.clone(), Some(old)));
        }
        written.push(new);
    }
    if let (Some(_), Some(settings)) = (by_row, &multi_region) {
        locality::check_regions(table, Some(settings), &written)?;
        locality::check_unique_elsewhere(ctx, table, settings, &pairs).await?;
    }
    // RETURNING is evaluated before the writes go: with auto-commit they
    // commit, and a statement that fails must not have.
    let result = finish(
        format!("UPDATE {}", written.len()),
        written,
        plan.returning.as_ref(),
        env,
    )?;
    batch.send(ctx, table).await?;
    Ok(result)
}

pub async fn delete(
    ctx: &ExecContext<'_>,
    plan: &DeletePlan,
    env: &Env<'_>,
) -> Result<ExecResult, SqlError> {
    let table = &plan.table;
    let rows = query::run(ctx, &plan.input, env).await?;
    let mut batch = WriteBatch::default();
    for row in &rows {
        batch.delete_row(table, row)?;
    }
    let result = finish(
        format!("DELETE {}", rows.len()),
        rows,
        plan.returning.as_ref(),
        env,
    )?;
    batch.send(ctx, table).await?;
    Ok(result)
}

/// The statement's result: its tag, or its RETURNING rows.
fn finish(
    tag: String,
    written: Vec<Row>,
    returning: Option<&Returning>,
    env: &Env,
) -> Result<ExecResult, SqlError> {
    let Some(returning) = returning else {
        return Ok(ExecResult::command(tag));
    };
    let rows = written
        .iter()
        .map(|row| returning.exprs.iter().map(|e| eval(e, row, env)).collect())
        .collect::<Result<_, _>>()?;
    let columns = returning
        .columns
        .iter()
        .map(|c| ColumnInfo::new(c.name.clone(), c.ty))
        .collect();
    Ok(ExecResult::Rows { columns, rows, tag })
}

/// Moves rows to a new key layout of their table (`from` to `to`, the
/// same table under another descriptor): deletes every key of `old` under
/// `from` and writes `new` under `to`, refusing duplicates (23505) as an
/// insert does, in one batch that never commits the transaction (the
/// statement writes the descriptor too).
pub(super) async fn rewrite_rows(
    ctx: &ExecContext<'_>,
    (from, old): (&TableDescriptor, &[Row]),
    (to, new): (&TableDescriptor, &[Row]),
) -> Result<(), SqlError> {
    let mut batch = WriteBatch::default();
    for row in old {
        batch.delete_row(from, row)?;
    }
    for row in new {
        batch.insert_row(to, row, true)?;
    }
    batch.send_committing(ctx, to, false).await
}

/// Brings each value of a proposed row to its column's type (the
/// assignment cast) and checks NOT NULL.
pub fn assign(table: &TableDescriptor, row: Row) -> Result<Row, SqlError> {
    row.into_iter()
        .zip(&table.columns)
        .map(|(value, column)| {
            if value.is_null() {
                if !column.nullable {
                    return Err(SqlError::new(
                        code::NOT_NULL_VIOLATION,
                        format!(
                            "null value in column \"{}\" of relation \"{}\" violates not-null constraint",
                            column.name, table.name
                        ),
                    ));
                }
                return Ok(Datum::Null);
            }
            cast::cast(value, column.ty, false)
        })
        .collect()
}

/// Reads the rows at `keys` (absent ones as `None`), in one batch.
async fn read_rows(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    keys: &[Vec<u8>],
) -> Result<Vec<Option<Row>>, SqlError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let requests = keys
        .iter()
        .map(|k| Request::Get { key: k.clone() })
        .collect();
    let responses = ctx.txn.read_batch(requests).await?;
    keys.iter()
        .zip(responses)
        .map(|(key, response)| match response {
            Response::Get { value: Some(v) } => encoding::decode_row(table, key, &v).map(Some),
            Response::Get { value: None } => Ok(None),
            other => Err(SqlError::internal(format!("unexpected response {other:?}"))),
        })
        .collect()
}

fn duplicate_key(table: &TableDescriptor, constraint: &str) -> SqlError {
    SqlError::new(
        code::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{constraint}\" (table \"{}\")",
            table.name
        ),
    )
}

/// The KV writes of one statement.
#[derive(Default)]
struct WriteBatch {
    requests: Vec<Request>,
    /// Names of the unique constraints the conditional puts enforce.
    constraints: Vec<String>,
}

impl WriteBatch {
    /// A new row; `exclusive`: its primary key must not exist yet.
    fn insert_row(
        &mut self,
        table: &TableDescriptor,
        row: &Row,
        exclusive: bool,
    ) -> Result<(), SqlError> {
        let key = encoding::primary_key(table, row)?;
        let value = encoding::encode_row_value(table, row)?;
        if exclusive {
            self.requests.push(Request::ConditionalPut {
                key,
                value,
                expected: None,
            });
            self.constraints.push(table.primary_index.name.clone());
        } else {
            self.requests.push(Request::Put { key, value });
        }
        for index in &table.indexes {
            self.put_index_entry(table, index, row)?;
        }
        Ok(())
    }

    fn put_index_entry(
        &mut self,
        table: &TableDescriptor,
        index: &crate::catalog::IndexDescriptor,
        row: &Row,
    ) -> Result<(), SqlError> {
        let (key, value) = encoding::index_entry(table, index, row)?;
        if encoding::enforces_uniqueness(table, index, row) {
            self.requests.push(Request::ConditionalPut {
                key,
                value,
                expected: None,
            });
            self.constraints.push(index.name.clone());
        } else {
            self.requests.push(Request::Put { key, value });
        }
        Ok(())
    }

    /// Replaces `old` by `new` (their primary keys may differ).
    fn update_row(
        &mut self,
        table: &TableDescriptor,
        old: &Row,
        new: &Row,
    ) -> Result<(), SqlError> {
        let old_key = encoding::primary_key(table, old)?;
        let new_key = encoding::primary_key(table, new)?;
        let value = encoding::encode_row_value(table, new)?;
        if old_key == new_key {
            self.requests.push(Request::Put {
                key: new_key,
                value,
            });
        } else {
            self.requests.push(Request::Delete { key: old_key });
            self.requests.push(Request::ConditionalPut {
                key: new_key,
                value,
                expected: None,
            });
            self.constraints.push(table.primary_index.name.clone());
        }
        for index in &table.indexes {
            let (old_entry, old_value) = encoding::index_entry(table, index, old)?;
            let (new_entry, new_value) = encoding::index_entry(table, index, new)?;
            if old_entry == new_entry && old_value == new_value {
                continue;
            }
            if old_entry != new_entry {
                self.requests.push(Request::Delete { key: old_entry });
                self.put_index_entry(table, index, new)?;
            } else {
                self.requests.push(Request::Put {
                    key: new_entry,
                    value: new_value,
                });
            }
        }
        Ok(())
    }

    fn delete_row(&mut self, table: &TableDescriptor, row: &Row) -> Result<(), SqlError> {
        self.requests.push(Request::Delete {
            key: encoding::primary_key(table, row)?,
        });
        for index in &table.indexes {
            let (key, _) = encoding::index_entry(table, index, row)?;
            self.requests.push(Request::Delete { key });
        }
        Ok(())
    }

    async fn send(self, ctx: &ExecContext<'_>, table: &TableDescriptor) -> Result<(), SqlError> {
        self.send_committing(ctx, table, ctx.auto_commit).await
    }

    async fn send_committing(
        self,
        ctx: &ExecContext<'_>,
        table: &TableDescriptor,
        commit: bool,
    ) -> Result<(), SqlError> {
        if self.requests.is_empty() {
            return Ok(());
        }
        let sent = if commit {
            ctx.txn.write_batch_and_commit(self.requests).await
        } else {
            ctx.txn.write_batch(self.requests).await
        };
        match sent {
            Ok(_) => Ok(()),
            Err(TxnError::Client(ClientError::Kv(KvError::ConditionFailed { .. }))) => {
                let mut names = self.constraints;
                names.sort();
                names.dedup();
                Err(match names.as_slice() {
                    [one] => duplicate_key(table, one),
                    _ => SqlError::new(
                        code::UNIQUE_VIOLATION,
                        format!(
                            "duplicate key value violates a unique constraint of table \"{}\"",
                            table.name
                        ),
                    ),
                })
            }
            Err(e) => Err(e.into()),
        }
    }
}
