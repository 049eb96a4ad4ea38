//! Zone config records of SQL objects: what a table (and each partition
//! of a REGIONAL BY ROW table) must obey, written as placement records in
//! the statement's transaction, next to the descriptor change that caused
//! them; and `CONFIGURE ZONE` / `SHOW ZONE CONFIGURATION`.
//!
//! A table's record is on its key span (`/t/<id>` to its end): the
//! multi-region config `placement::synthesize` derives from the database
//! and the table's locality, with the database's `CONFIGURE ZONE` fields
//! under it and the table's own over it. A REGIONAL BY ROW table adds one
//! record per region and index: the span of that index's keys that start
//! with the region (its partition), with the config of a table homed
//! there. A table with nothing to say has no record (it inherits the
//! default). The server's queues read every record and split and place
//! ranges by them.
//!
//! Owns: computing, validating (against the cluster's localities when
//! known) and writing these records; the SHOW. Does not own: the record
//! format (`placement::records`), the database and locality statements
//! that call this (`regions`, `locality`).

use meridian_keys::space::{prefix_end, table_index_prefix, table_prefix};
use meridian_kvapi::Request;
use meridian_placement::records::{decode_zone_record, encode_zone_config, ZoneRecord};
use meridian_placement::{
    default_zone_key, parse_using, span_zone_key, synthesize, validate, validate_for_cluster,
    zone_records_end, zone_records_start, PlacementError, TableLocality, ZoneConfig, ZoneConfigs,
};

use super::ExecContext;
use crate::catalog::{DatabaseDescriptor, Locality, TableDescriptor};
use crate::encoding::encode_key_datum;
use crate::error::{code, SqlError};
use crate::parser::{ZoneChange, ZoneTarget};
use crate::session::ExecResult;
use crate::types::{Datum, SqlType};

/// A zone config on `[start, end)`.
pub type SpanRecord = (Vec<u8>, Vec<u8>, ZoneConfig);

/// A placement error as a client sees it: 22023 with placement's message.
pub fn placement_error(e: PlacementError) -> SqlError {
    SqlError::new(code::INVALID_PARAMETER_VALUE, e.to_string())
}

/// `[start, end)` of `table`'s keys.
pub fn table_span(table_id: u64) -> (Vec<u8>, Vec<u8>) {
    let start = table_prefix(table_id);
    let end = prefix_end(&start).expect("tables end");
    (start, end)
}

/// The keys of index `index_id` of a REGIONAL BY ROW table whose rows
/// are homed in `region`.
pub fn partition_span(table_id: u64, index_id: u32, region: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = table_index_prefix(table_id, index_id as u64);
    encode_key_datum(
        &mut start,
        &Datum::Text(region.to_string()),
        meridian_keys::encoding::Direction::Ascending,
    )
    .expect("text encodes");
    let end = prefix_end(&start).expect("partitions end");
    (start, end)
}

/// The placement locality of a table (the primary region for a table
/// with none, the table-level config of a REGIONAL BY ROW table).
fn table_level_locality(table: &TableDescriptor) -> TableLocality {
    match &table.locality {
        Some(Locality::Global) => TableLocality::Global,
        Some(Locality::RegionalByTable(region)) => TableLocality::RegionalByTable(region.clone()),
        None | Some(Locality::RegionalByRow { .. }) => TableLocality::RegionalByTable(None),
    }
}

/// The config a database's tables start from: its multi-region config
/// (as for a table in its primary region) under its own CONFIGURE ZONE.
pub fn database_config(database: &DatabaseDescriptor) -> Result<ZoneConfig, SqlError> {
    let own = database.zone_config.clone().unwrap_or_default();
    Ok(match &database.multi_region {
        Some(settings) => own.inherit(
            &synthesize(settings, &TableLocality::RegionalByTable(None))
                .map_err(placement_error)?,
        ),
        None => own,
    })
}

/// Every record `table` of `database` needs.
pub fn table_records(
    database: &DatabaseDescriptor,
    table: &TableDescriptor,
) -> Result<Vec<SpanRecord>, SqlError> {
    let mut config = match &database.multi_region {
        Some(settings) => {
            synthesize(settings, &table_level_locality(table)).map_err(placement_error)?
        }
        None => ZoneConfig::default(),
    };
    if let Some(own) = &database.zone_config {
        config = own.inherit(&config);
    }
    if let Some(own) = &table.zone_config {
        config = own.inherit(&config);
    }
    let mut records = Vec::new();
    if config != ZoneConfig::default() {
        let (start, end) = table_span(table.id);
        records.push((start, end, config));
    }
    if let (Some(settings), Some(_)) = (&database.multi_region, table.region_column()) {
        for region in &settings.regions {
            let config = synthesize(settings, &TableLocality::RegionalByRow(region.clone()))
                .map_err(placement_error)?;
            for index in std::iter::once(&table.primary_index).chain(&table.indexes) {
                let (start, end) = partition_span(table.id, index.id, region);
                records.push((start, end, config.clone()));
            }
        }
    }
    Ok(records)
}

/// Every stored record: its key and what it says.
async fn read_records(ctx: &ExecContext<'_>) -> Result<Vec<(Vec<u8>, ZoneRecord)>, SqlError> {
    let pairs = ctx
        .txn
        .scan(&zone_records_start(), &zone_records_end(), 0)
        .await?;
    pairs
        .into_iter()
        .map(|(k, v)| {
            let record =
                decode_zone_record(&k, &v).map_err(|e| SqlError::internal(e.to_string()))?;
            Ok((k, record))
        })
        .collect()
}

fn to_map(records: &[(Vec<u8>, ZoneRecord)]) -> Result<ZoneConfigs, SqlError> {
    let mut map = ZoneConfigs::new();
    for (_, record) in records {
        match record {
            ZoneRecord::Default(c) => map.set_default(c.clone()),
            ZoneRecord::Span(s) => map
                .set(&s.start, &s.end, s.config.clone())
                .map_err(|e| SqlError::internal(e.to_string()))?,
        }
    }
    Ok(map)
}

/// Checks the effective config at `key` alone and, when the node knows
/// them, against the cluster's localities. Before refusing for want of
/// nodes, the node reads the cluster's node records again: its picture
/// may lag behind nodes that joined a moment ago.
async fn check(ctx: &ExecContext<'_>, map: &ZoneConfigs, key: &[u8]) -> Result<(), SqlError> {
    let effective = map.effective(key);
    let Some(localities) = ctx.engine.cluster_localities() else {
        return validate(&effective).map_err(placement_error);
    };
    if validate_for_cluster(&effective, &localities).is_ok() {
        return Ok(());
    }
    ctx.engine.refresh_localities().await;
    let localities = ctx.engine.cluster_localities().unwrap_or_default();
    validate_for_cluster(&effective, &localities).map_err(placement_error)
}

/// Checks that the cluster can hold the config of a table of `database`
/// in its primary region (a multi-region database's settings are refused
/// before any table needs them).
pub async fn check_database(
    ctx: &ExecContext<'_>,
    database: &DatabaseDescriptor,
) -> Result<(), SqlError> {
    let map = to_map(&read_records(ctx).await?)?;
    let mut probe = ZoneConfigs::new();
    probe.set_default(map.default_config().clone());
    probe
        .set(b"a", b"b", database_config(database)?)
        .map_err(placement_error)?;
    check(ctx, &probe, b"a").await
}

/// Replaces every record inside the spans `cleared` by `records`, after
/// checking that each new record can be satisfied.
pub async fn replace(
    ctx: &ExecContext<'_>,
    cleared: &[(Vec<u8>, Vec<u8>)],
    records: Vec<SpanRecord>,
) -> Result<(), SqlError> {
    let stored = read_records(ctx).await?;
    let mut map = to_map(&stored)?;
    let mut writes = Vec::new();
    for (key, record) in &stored {
        if let ZoneRecord::Span(s) = record {
            if cleared
                .iter()
                .any(|(start, end)| start <= &s.start && &s.end <= end)
            {
                map.remove(&s.start, &s.end)
                    .map_err(|e| SqlError::internal(e.to_string()))?;
                writes.push(Request::Delete { key: key.clone() });
            }
        }
    }
    for (start, end, config) in &records {
        map.set(start, end, config.clone())
            .map_err(placement_error)?;
    }
    for (start, _, _) in &records {
        check(ctx, &map, start).await?;
    }
    for (start, end, config) in records {
        writes.push(Request::Put {
            key: span_zone_key(&start, &end),
            value: encode_zone_config(&config),
        });
    }
    if !writes.is_empty() {
        ctx.txn.write_batch(writes).await?;
    }
    Ok(())
}

/// Rewrites the records of `tables` of `database` (after a change to
/// either).
pub async fn rewrite_tables(
    ctx: &ExecContext<'_>,
    database: &DatabaseDescriptor,
    tables: &[TableDescriptor],
) -> Result<(), SqlError> {
    let mut cleared = Vec::new();
    let mut records = Vec::new();
    for table in tables {
        cleared.push(table_span(table.id));
        records.extend(table_records(database, table)?);
    }
    replace(ctx, &cleared, records).await
}

/// Rewrites the records of every table of `database`.
pub async fn rewrite_database(
    ctx: &ExecContext<'_>,
    database: &DatabaseDescriptor,
) -> Result<(), SqlError> {
    let tables = ctx.catalog().tables(database.id).await?;
    rewrite_tables(ctx, database, &tables).await
}

/// `config` with the fields `using` names changed: set to their value,
/// or unset by `COPY FROM PARENT`.
fn merge_using(config: Option<ZoneConfig>, using: &str) -> Result<ZoneConfig, SqlError> {
    let given = parse_using(using).map_err(placement_error)?;
    let mut merged = given.inherit(&config.unwrap_or_default());
    for item in using.split(',') {
        let Some((name, value)) = item.split_once('=') else {
            continue;
        };
        let value: Vec<String> = value
            .split_whitespace()
            .map(|w| w.to_ascii_lowercase())
            .collect();
        if value != ["copy", "from", "parent"] {
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "num_replicas" => merged.num_replicas = None,
            "num_voters" => merged.num_voters = None,
            "constraints" => merged.constraints = None,
            "voter_constraints" => merged.voter_constraints = None,
            "lease_preferences" => merged.lease_preferences = None,
            "range_min_bytes" => merged.range_min_bytes = None,
            "range_max_bytes" => merged.range_max_bytes = None,
            "gc.ttlseconds" => merged.gc_ttl_seconds = None,
            "global_reads" => merged.global_reads = None,
            _ => {}
        }
    }
    Ok(merged)
}

fn changed(own: Option<ZoneConfig>, change: &ZoneChange) -> Result<Option<ZoneConfig>, SqlError> {
    Ok(match change {
        ZoneChange::Discard => None,
        ZoneChange::Using(using) => {
            Some(merge_using(own, using)?).filter(|c| *c != ZoneConfig::default())
        }
    })
}

/// `ALTER ... CONFIGURE ZONE USING ... | DISCARD`.
pub async fn configure(
    ctx: &ExecContext<'_>,
    target: &ZoneTarget,
    change: &ZoneChange,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    match target {
        ZoneTarget::RangeDefault => {
            let ZoneChange::Using(using) = change else {
                return Err(SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    "cannot remove the default zone configuration",
                ));
            };
            let stored = read_records(ctx).await?;
            let mut map = to_map(&stored)?;
            let own = stored.iter().find_map(|(_, r)| match r {
                ZoneRecord::Default(c) => Some(c.clone()),
                _ => None,
            });
            let config = merge_using(own, using)?;
            map.set_default(config.clone());
            check(ctx, &map, b"").await?;
            for span in map.spans().to_vec() {
                check(ctx, &map, &span.start).await?;
            }
            ctx.txn
                .put(&default_zone_key(), &encode_zone_config(&config))
                .await?;
        }
        ZoneTarget::Database(name) => {
            let mut database = catalog.require_database(name).await?;
            database.zone_config = changed(database.zone_config.take(), change)?;
            database_config(&database)?;
            catalog.update_database(&database).await?;
            rewrite_database(ctx, &database).await?;
        }
        ZoneTarget::Table(name) => {
            let database = catalog.require_database(ctx.database).await?;
            let mut table = catalog
                .table(database.id, name)
                .await?
                .ok_or_else(|| SqlError::undefined_table(name))?;
            table.zone_config = changed(table.zone_config.take(), change)?;
            catalog.update_table(&mut table).await?;
            rewrite_tables(ctx, &database, &[table]).await?;
        }
    }
    Ok(ExecResult::command("CONFIGURE ZONE"))
}

/// `SHOW ZONE CONFIGURATION FOR ...`: the config in force (every field,
/// inherited ones included) as the statement that would set it, with the
/// target it comes from (CockroachDB's `target`, `raw_config_sql`).
pub async fn show(ctx: &ExecContext<'_>, target: &ZoneTarget) -> Result<ExecResult, SqlError> {
    let stored = read_records(ctx).await?;
    let map = to_map(&stored)?;
    let catalog = ctx.catalog();
    let default = || ("RANGE default".to_string(), map.default_config().clone());
    let (shown, config) = match target {
        ZoneTarget::RangeDefault => default(),
        ZoneTarget::Database(name) => {
            let database = catalog.require_database(name).await?;
            let own = database_config(&database)?;
            if own == ZoneConfig::default() {
                default()
            } else {
                (
                    format!("DATABASE {}", database.name),
                    own.inherit(map.default_config()),
                )
            }
        }
        ZoneTarget::Table(name) => {
            let table = catalog.require_table(ctx.database, name).await?;
            let (start, end) = table_span(table.id);
            if map.get(&start, &end).is_some() {
                (format!("TABLE {}", table.name), map.resolved(&start))
            } else {
                default()
            }
        }
    };
    let body = config.to_string().replace('\n', "\n\t");
    let raw = format!("ALTER {shown} CONFIGURE ZONE USING\n\t{body}");
    Ok(ExecResult::rows(
        vec![
            crate::session::ColumnInfo::new("target", SqlType::Text),
            crate::session::ColumnInfo::new("raw_config_sql", SqlType::Text),
        ],
        vec![vec![Datum::Text(shown), Datum::Text(raw)]],
    ))
}
