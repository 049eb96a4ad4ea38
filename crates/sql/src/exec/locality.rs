//! Table localities in multi-region databases: the `LOCALITY` clause of
//! CREATE TABLE, `ALTER TABLE ... SET LOCALITY`, and what REGIONAL BY ROW
//! means for rows.
//!
//! A REGIONAL BY ROW table gets a hidden `region` column (or uses the
//! column named by `AS col`), NOT NULL, defaulting to
//! `default_to_database_primary_region(gateway_region())`. It leads the
//! primary key and every index, so each region's rows are one contiguous
//! span per index (a partition), split into ranges of their own and
//! homed in their region by the zone records (`zones`). The rows it holds
//! must name a region of the database. The visible primary key (and each
//! unique index) stays unique across regions: an insert reads the other
//! partitions for the same key ([`find_in_any_region`],
//! [`check_unique_elsewhere`]). A read by the visible key looks in the
//! gateway's partition first and fans out only on a miss
//! ([`region_order`], used by the scan).
//!
//! Owns: those rules. Does not own: zone records (`zones`), database
//! regions (`regions`), the KV writes of a statement (`write`).

use futures_util::stream::{FuturesUnordered, StreamExt};
use meridian_kvapi::{Request, Response};
use meridian_placement::MultiRegionSettings;

use super::eval::Env;
use super::query::{get_all, key_value, Row};
use super::regions::check_database_region;
use super::relocate::relocate;
use super::zones;
use super::ExecContext;
use crate::catalog::{
    ColumnDescriptor, DatabaseDescriptor, IndexDirection, Locality, TableDescriptor, REGION_COLUMN,
};
use crate::encoding;
use crate::error::{code, SqlError};
use crate::parser::LocalitySpec;
use crate::plan::expr::Expr;
use crate::session::ExecResult;
use crate::types::{Datum, SqlType};

/// The default of the hidden region column.
pub const REGION_DEFAULT: &str = "default_to_database_primary_region(gateway_region())";

fn not_multi_region(database: &DatabaseDescriptor) -> SqlError {
    SqlError::new(
        code::INVALID_TABLE_DEFINITION,
        format!(
            "cannot set LOCALITY on a table in a database that is not multi-region enabled (database \"{}\" has no regions: ALTER DATABASE {} PRIMARY REGION <region> first)",
            database.name, database.name
        ),
    )
}

/// The locality `spec` asks for, checked against the database.
fn resolve(database: &DatabaseDescriptor, spec: &LocalitySpec) -> Result<Locality, SqlError> {
    let settings = database
        .multi_region
        .as_ref()
        .ok_or_else(|| not_multi_region(database))?;
    Ok(match spec {
        LocalitySpec::Global => Locality::Global,
        LocalitySpec::RegionalByTable(None) => Locality::RegionalByTable(None),
        LocalitySpec::RegionalByTable(Some(region)) => {
            check_database_region(database, settings, region)?;
            Locality::RegionalByTable(Some(region.clone()))
        }
        LocalitySpec::RegionalByRow(column) => Locality::RegionalByRow {
            column: column.clone().unwrap_or_else(|| REGION_COLUMN.to_string()),
        },
    })
}

/// Gives a table being created its locality: the one written, or in a
/// multi-region database REGIONAL BY TABLE IN PRIMARY REGION. A REGIONAL
/// BY ROW table gets its region column and the region in front of every
/// index.
pub fn apply_to_new_table(
    database: &DatabaseDescriptor,
    table: &mut TableDescriptor,
    spec: Option<&LocalitySpec>,
) -> Result<(), SqlError> {
    let locality = match spec {
        Some(spec) => resolve(database, spec)?,
        None if database.multi_region.is_some() => Locality::RegionalByTable(None),
        None => return Ok(()),
    };
    if let Locality::RegionalByRow { column } = &locality {
        let id = match table.columns.iter_mut().find(|c| &c.name == column) {
            Some(existing) if column == REGION_COLUMN && existing.hidden => existing.id,
            Some(existing) if column == REGION_COLUMN => {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!("column \"{REGION_COLUMN}\" is reserved for the region of a REGIONAL BY ROW table: name the region column with REGIONAL BY ROW AS <column>, or rename \"{}\"", existing.name),
                ))
            }
            Some(existing) => {
                if !existing.ty.is_string() {
                    return Err(SqlError::mismatch(format!(
                        "the region column \"{column}\" of a REGIONAL BY ROW table must be a string, not {}",
                        existing.ty
                    )));
                }
                existing.nullable = false;
                existing.id
            }
            None if column == REGION_COLUMN => {
                let id = table.next_column_id;
                table.next_column_id += 1;
                table.columns.push(ColumnDescriptor {
                    id,
                    name: REGION_COLUMN.into(),
                    ty: SqlType::Text,
                    nullable: false,
                    default: Some(REGION_DEFAULT.into()),
                    hidden: true,
                });
                id
            }
            None => return Err(SqlError::undefined_column(column)),
        };
        for index in std::iter::once(&mut table.primary_index).chain(table.indexes.iter_mut()) {
            index.columns.retain(|(c, _)| *c != id);
            index.columns.insert(0, (id, IndexDirection::Asc));
        }
    }
    table.locality = Some(locality);
    Ok(())
}

/// After a table is created: its zone records, and a split at each of its
/// partitions' bounds.
pub async fn after_create(
    ctx: &ExecContext<'_>,
    database: &DatabaseDescriptor,
    table: &TableDescriptor,
) -> Result<(), SqlError> {
    let records = zones::table_records(database, table)?;
    if records.is_empty() {
        return Ok(());
    }
    split_at_records(ctx, &records);
    zones::replace(ctx, &[zones::table_span(table.id)], records).await
}

/// Starts splits at the bounds of a table's zone records (its
/// partitions', if it is REGIONAL BY ROW), so each has ranges of its own
/// at once.
fn split_at_records(ctx: &ExecContext<'_>, records: &[zones::SpanRecord]) {
    for (start, end, _) in records {
        ctx.engine.split_at(start.clone());
        ctx.engine.split_at(end.clone());
    }
}

/// The region column goes first in a new index of a REGIONAL BY ROW
/// table.
pub fn prefix_index(table: &TableDescriptor, columns: &mut Vec<(u32, IndexDirection)>) {
    if let Some(column) = table.region_column() {
        let id = table.column(column).expect("the region column exists").id;
        columns.retain(|(c, _)| *c != id);
        columns.insert(0, (id, IndexDirection::Asc));
    }
}

/// After an index of `table` was added or dropped: a REGIONAL BY ROW
/// table's partition records follow its indexes.
pub async fn after_index_change(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
) -> Result<(), SqlError> {
    if table.region_column().is_none() {
        return Ok(());
    }
    let database = ctx.catalog().require_database(ctx.database).await?;
    zones::rewrite_tables(ctx, &database, std::slice::from_ref(table)).await
}

/// `ALTER TABLE t SET LOCALITY ...`.
pub async fn set_locality(
    ctx: &ExecContext<'_>,
    name: &str,
    if_exists: bool,
    spec: &LocalitySpec,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    let database = catalog.require_database(ctx.database).await?;
    let mut table = match catalog.table(database.id, name).await? {
        Some(t) => t,
        None if if_exists => return Ok(ExecResult::command("ALTER TABLE")),
        None => return Err(SqlError::undefined_table(name)),
    };
    let locality = resolve(&database, spec)?;
    if table.locality.as_ref() == Some(&locality) {
        return Ok(ExecResult::command("ALTER TABLE"));
    }
    let by_row = |l: &Option<Locality>| matches!(l, Some(Locality::RegionalByRow { .. }));
    if by_row(&table.locality) || by_row(&Some(locality.clone())) {
        // Every key of the table changes (the region column leads them
        // in REGIONAL BY ROW): the rows move with the descriptor.
        table = relocate(ctx, &database, &table, spec, locality).await?;
    } else {
        table.locality = Some(locality);
    }
    catalog.update_table(&mut table).await?;
    let records = zones::table_records(&database, &table)?;
    split_at_records(ctx, &records);
    zones::replace(ctx, &[zones::table_span(table.id)], records).await?;
    Ok(ExecResult::command("ALTER TABLE"))
}

/// The current database's multi-region settings (from the descriptors
/// this transaction read, else the catalog).
pub async fn settings(ctx: &ExecContext<'_>) -> Result<Option<MultiRegionSettings>, SqlError> {
    let cached = ctx.descriptors.lock().database.clone();
    let database = match cached {
        Some(d) if d.name == ctx.database => d,
        _ => ctx.catalog().require_database(ctx.database).await?,
    };
    Ok(database.multi_region)
}

/// The database's regions, the gateway's first (the primary region's when
/// the gateway is not in one of them).
pub fn region_order(settings: &MultiRegionSettings, gateway: Option<&str>) -> Vec<String> {
    let home = gateway
        .filter(|g| settings.regions.iter().any(|r| r == g))
        .unwrap_or(&settings.primary_region)
        .to_string();
    let mut order = vec![home.clone()];
    order.extend(settings.regions.iter().filter(|r| **r != home).cloned());
    order
}

/// The region column's position in `table`, if it is REGIONAL BY ROW.
pub fn region_position(table: &TableDescriptor) -> Option<usize> {
    table.region_column().and_then(|c| table.column_index(c))
}

/// 22P02 unless every row names a region of the database.
pub fn check_regions(
    table: &TableDescriptor,
    settings: Option<&MultiRegionSettings>,
    rows: &[Row],
) -> Result<(), SqlError> {
    let (Some(position), Some(settings)) = (region_position(table), settings) else {
        return Ok(());
    };
    for row in rows {
        if let Datum::Text(region) = &row[position] {
            if !settings.regions.contains(region) {
                return Err(SqlError::new(
                    code::INVALID_TEXT_REPRESENTATION,
                    format!(
                        "invalid input value for region column \"{}\": \"{region}\" is not a region of the database (its regions: {})",
                        table.columns[position].name,
                        settings.regions.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `row` with its region set to `region`.
fn in_region(row: &Row, position: usize, region: &str) -> Row {
    let mut moved = row.clone();
    moved[position] = Datum::Text(region.to_string());
    moved
}

/// For each proposed row, the existing row with the same visible primary
/// key in any region (the gateway's looked at first), read in one batch.
pub async fn find_in_any_region(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    settings: &MultiRegionSettings,
    rows: &[Row],
) -> Result<Vec<Option<Row>>, SqlError> {
    let position = region_position(table).expect("a REGIONAL BY ROW table");
    let order = region_order(settings, ctx.engine.region());
    let mut keys = Vec::with_capacity(rows.len() * order.len());
    for row in rows {
        for region in &order {
            keys.push(encoding::primary_key(
                table,
                &in_region(row, position, region),
            )?);
        }
    }
    let requests = keys
        .iter()
        .map(|k| Request::Get { key: k.clone() })
        .collect();
    let responses = ctx.txn.read_batch(requests).await?;
    let mut found = vec![None; rows.len()];
    for (i, (key, response)) in keys.iter().zip(responses).enumerate() {
        if let Response::Get { value: Some(v) } = response {
            let slot = &mut found[i / order.len()];
            if slot.is_none() {
                *slot = Some(encoding::decode_row(table, key, &v)?);
            }
        }
    }
    Ok(found)
}

/// 23505 if a unique secondary index entry of a written row (`new`, with
/// the row it replaces, if any) exists in another region's partition.
/// The primary key is checked by [`find_in_any_region`] for inserts and
/// here for updates that change it.
pub async fn check_unique_elsewhere(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    settings: &MultiRegionSettings,
    written: &[(Row, Option<Row>)],
) -> Result<(), SqlError> {
    let position = region_position(table).expect("a REGIONAL BY ROW table");
    let visible = |row: &Row, columns: &[usize]| -> Vec<Datum> {
        columns
            .iter()
            .filter(|p| **p != position)
            .map(|p| row[*p].clone())
            .collect()
    };
    let mut keys = Vec::new();
    let mut names = Vec::new();
    for (new, old) in written {
        let Datum::Text(home) = &new[position] else {
            continue;
        };
        let pk = table.primary_key_positions();
        let pk_changed = old
            .as_ref()
            .is_some_and(|o| visible(o, &pk) != visible(new, &pk));
        for region in settings.regions.iter().filter(|r| *r != home) {
            let moved = in_region(new, position, region);
            if pk_changed {
                keys.push(encoding::primary_key(table, &moved)?);
                names.push(table.primary_index.name.clone());
            }
            for index in table.indexes.iter().filter(|i| i.unique) {
                let columns = table.index_positions(index);
                if old
                    .as_ref()
                    .is_some_and(|o| visible(o, &columns) == visible(new, &columns))
                {
                    continue;
                }
                if encoding::enforces_uniqueness(table, index, &moved) {
                    keys.push(encoding::index_entry(table, index, &moved)?.0);
                    names.push(index.name.clone());
                }
            }
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    let requests = keys.into_iter().map(|key| Request::Get { key }).collect();
    let responses = ctx.txn.read_batch(requests).await?;
    for (response, name) in responses.into_iter().zip(names) {
        if matches!(response, Response::Get { value: Some(_) }) {
            return Err(duplicate(table, &name));
        }
    }
    Ok(())
}

pub fn duplicate(table: &TableDescriptor, constraint: &str) -> SqlError {
    SqlError::new(
        code::UNIQUE_VIOLATION,
        format!(
            "duplicate key value violates unique constraint \"{constraint}\" (table \"{}\")",
            table.name
        ),
    )
}

/// A locality-optimized lookup by the visible key: each tuple's row in the
/// gateway's region first, and in all the other regions at once only for
/// the tuples it did not find. `None`: read the table instead (no regions known, or
/// a key value that does not convert).
pub async fn lookup_any_region(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    tuples: &[Vec<Expr>],
    env: &Env<'_>,
) -> Result<Option<Vec<(Vec<u8>, Vec<u8>)>>, SqlError> {
    let Some(rounds) = any_region_keys(ctx, table, tuples, env).await? else {
        return Ok(None);
    };
    let mut found = Vec::new();
    let mut missing: Vec<usize> = (0..rounds.len()).collect();
    let regions = rounds.first().map_or(0, Vec::len);
    let by_region: Vec<Vec<&Vec<u8>>> = (0..regions)
        .map(|r| rounds.iter().map(|keys| &keys[r]).collect())
        .collect();
    let Some((local, others)) = by_region.split_first() else {
        return Ok(Some(found));
    };
    // The gateway's region first; what it lacks, from every other region
    // at once, one batch per region, all in flight together. A visible
    // key lives in one region at most, so the lookup ends as soon as
    // every missing tuple is found: a row homed in a near region costs
    // the round trip there, not the one to the farthest region. Only a
    // row found nowhere waits for every region.
    let points = missing.iter().map(|t| local[*t].clone()).collect();
    let got = get_all(ctx, points).await?;
    let hits: Vec<usize> = missing
        .iter()
        .zip(&got)
        .filter(|(_, g)| g.is_some())
        .map(|(t, _)| *t)
        .collect();
    found.extend(got.into_iter().flatten());
    missing.retain(|t| !hits.contains(t));
    if missing.is_empty() {
        return Ok(Some(found));
    }
    let mut pending: FuturesUnordered<_> = others
        .iter()
        .map(|keys| get_all(ctx, missing.iter().map(|t| keys[*t].clone()).collect()))
        .collect();
    let mut still_missing = missing.len();
    while let Some(got) = pending.next().await {
        for row in got?.into_iter().flatten() {
            found.push(row);
            still_missing = still_missing.saturating_sub(1);
        }
        if still_missing == 0 {
            // The other regions' answers can only be misses; the reads
            // still in flight are dropped unread.
            break;
        }
    }
    Ok(Some(found))
}

/// For a locality-optimized lookup: for each key tuple, its primary key
/// in each region, the gateway's first. `None`: read the whole table
/// instead (no regions known, or a value that does not convert).
async fn any_region_keys(
    ctx: &ExecContext<'_>,
    table: &TableDescriptor,
    tuples: &[Vec<Expr>],
    env: &Env<'_>,
) -> Result<Option<Vec<Vec<Vec<u8>>>>, SqlError> {
    let Some(settings) = settings(ctx).await? else {
        return Ok(None);
    };
    let order = region_order(&settings, ctx.engine.region());
    let positions = table.primary_key_positions();
    let directions: Vec<_> = table
        .primary_index
        .columns
        .iter()
        .map(|(_, d)| (*d).into())
        .collect();
    let mut out = Vec::with_capacity(tuples.len());
    'tuples: for tuple in tuples {
        let mut rest = Vec::new();
        for (i, e) in tuple.iter().enumerate() {
            match key_value(e, table.columns[positions[i + 1]].ty, env)? {
                Ok(Some(d)) => encoding::encode_key_datum(&mut rest, &d, directions[i + 1])?,
                Ok(None) => continue 'tuples,
                Err(()) => return Ok(None),
            }
        }
        let keys = order
            .iter()
            .map(|region| {
                let mut key = encoding::primary_prefix(table);
                encoding::encode_key_datum(&mut key, &Datum::Text(region.clone()), directions[0])?;
                key.extend_from_slice(&rest);
                Ok(key)
            })
            .collect::<Result<Vec<_>, SqlError>>()?;
        if !out.contains(&keys) {
            out.push(keys);
        }
    }
    Ok(Some(out))
}
