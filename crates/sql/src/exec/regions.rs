//! Multi-region databases: `CREATE DATABASE ... PRIMARY REGION ...
//! REGIONS ... SURVIVE ...`, `ALTER DATABASE` (ADD/DROP REGION, PRIMARY
//! REGION, SURVIVE, PLACEMENT), `SHOW REGIONS` and `SHOW SURVIVAL GOAL`,
//! with CockroachDB's errors and SQLSTATEs.
//!
//! Regions must exist in the cluster (a node's locality names them) when
//! the node knows its cluster's localities. Every change rewrites the zone
//! records of the database's tables in the same transaction (`zones`), so
//! a change the cluster cannot satisfy is refused whole.
//!
//! Owns: the database-level statements and the region checks tables use.
//! Does not own: table localities (`locality`), zone records (`zones`).

use std::collections::BTreeMap;

use meridian_placement::{DataPlacement, MultiRegionSettings, SurvivalGoal, TableLocality};

use super::zones::{self, placement_error};
use super::ExecContext;
use crate::catalog::{DatabaseDescriptor, Locality};
use crate::error::{code, SqlError};
use crate::parser::{AlterDatabase, ShowRegions};
use crate::session::{ColumnInfo, ExecResult};
use crate::types::{Datum, SqlType};

/// PostgreSQL's invalid_database_definition, CockroachDB's code for
/// multi-region settings that do not fit together.
const INVALID_DATABASE_DEFINITION: &str = "42P12";
/// invalid_name: CockroachDB's code for a region no node is in.
const INVALID_NAME: &str = "42602";

/// The cluster's regions and each one's zones, sorted; `None` when the
/// node does not know its cluster.
pub fn cluster_regions(ctx: &ExecContext<'_>) -> Option<BTreeMap<String, Vec<String>>> {
    let localities = ctx.engine.cluster_localities()?;
    let mut regions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for locality in localities {
        let zones = regions.entry(locality.region).or_default();
        if !locality.zone.is_empty() && !zones.contains(&locality.zone) {
            zones.push(locality.zone);
        }
    }
    regions.values_mut().for_each(|z| z.sort());
    Some(regions)
}

/// 42602 unless some node of the cluster is in `region`. Before refusing,
/// the node reads the cluster's node records again: its picture may lag
/// behind a node that joined a moment ago.
async fn check_cluster_region(ctx: &ExecContext<'_>, region: &str) -> Result<(), SqlError> {
    if cluster_regions(ctx).is_some_and(|regions| !regions.contains_key(region)) {
        ctx.engine.refresh_localities().await;
    }
    match cluster_regions(ctx) {
        Some(regions) if !regions.contains_key(region) => Err(SqlError::new(
            INVALID_NAME,
            format!(
                "region \"{region}\" does not exist (valid regions: {})",
                regions.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// 42704 unless `region` is one of the database's.
pub fn check_database_region(
    database: &DatabaseDescriptor,
    settings: &MultiRegionSettings,
    region: &str,
) -> Result<(), SqlError> {
    if settings.regions.iter().any(|r| r == region) {
        return Ok(());
    }
    Err(SqlError::new(
        code::UNDEFINED_OBJECT,
        format!(
            "region \"{region}\" has not been added to database \"{}\" (its regions: {}; ALTER DATABASE {} ADD REGION \"{region}\" adds it)",
            database.name,
            settings.regions.join(", "),
            database.name
        ),
    ))
}

/// The settings of a database that must be multi-region.
fn require_multi_region<'d>(
    database: &'d mut DatabaseDescriptor,
    doing: &str,
) -> Result<&'d mut MultiRegionSettings, SqlError> {
    let name = database.name.clone();
    database.multi_region.as_mut().ok_or_else(|| {
        SqlError::new(
            INVALID_DATABASE_DEFINITION,
            format!(
                "cannot {doing}: database \"{name}\" is not multi-region (set a primary region first: ALTER DATABASE {name} PRIMARY REGION <region>)"
            ),
        )
    })
}

/// Refuses settings CockroachDB refuses (REGION survival on fewer than 3
/// regions, RESTRICTED placement with it).
fn check_settings(settings: &MultiRegionSettings) -> Result<(), SqlError> {
    meridian_placement::synthesize(settings, &TableLocality::RegionalByTable(None))
        .map(|_| ())
        .map_err(placement_error)
}

pub async fn create_database(
    ctx: &ExecContext<'_>,
    name: &str,
    if_not_exists: bool,
    primary_region: Option<&str>,
    regions: &[String],
    survival: Option<SurvivalGoal>,
    placement: Option<DataPlacement>,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    let done = ExecResult::command("CREATE DATABASE");
    if if_not_exists && catalog.database(name).await?.is_some() {
        return Ok(done);
    }
    let Some(primary) = primary_region else {
        let clause = if !regions.is_empty() {
            "REGIONS"
        } else if survival.is_some() {
            "SURVIVE"
        } else {
            "PLACEMENT"
        };
        return Err(SqlError::new(
            INVALID_DATABASE_DEFINITION,
            format!("PRIMARY REGION must be specified when using {clause}"),
        ));
    };
    let mut all = vec![primary.to_string()];
    for (i, region) in regions.iter().enumerate() {
        if regions[..i].contains(region) {
            return Err(SqlError::new(
                code::DUPLICATE_OBJECT,
                format!("region \"{region}\" defined multiple times"),
            ));
        }
        if region != primary {
            all.push(region.clone());
        }
    }
    for region in &all {
        check_cluster_region(ctx, region).await?;
    }
    all.sort();
    let settings = MultiRegionSettings {
        regions: all,
        primary_region: primary.to_string(),
        survival: survival.unwrap_or(SurvivalGoal::Zone),
        placement: placement.unwrap_or(DataPlacement::Default),
    };
    check_settings(&settings)?;
    let mut database = catalog.create_database(name).await?;
    database.multi_region = Some(settings);
    catalog.update_database(&database).await?;
    // No tables yet, but the primary region's config must be one the
    // cluster can hold.
    zones::check_database(ctx, &database).await?;
    Ok(done)
}

pub async fn alter_database(
    ctx: &ExecContext<'_>,
    name: &str,
    action: &AlterDatabase,
) -> Result<ExecResult, SqlError> {
    let catalog = ctx.catalog();
    let mut database = catalog.require_database(name).await?;
    let tables = catalog.tables(database.id).await?;
    let mut tables_changed = Vec::new();
    match action {
        AlterDatabase::SetPrimaryRegion(region) => match database.multi_region.as_mut() {
            None => {
                check_cluster_region(ctx, region).await?;
                database.multi_region = Some(MultiRegionSettings {
                    regions: vec![region.clone()],
                    primary_region: region.clone(),
                    survival: SurvivalGoal::Zone,
                    placement: DataPlacement::Default,
                });
            }
            Some(settings) => {
                let settings_copy = settings.clone();
                let db = DatabaseDescriptor::new(database.id, name);
                check_database_region(&db, &settings_copy, region)?;
                settings.primary_region = region.clone();
            }
        },
        AlterDatabase::AddRegion {
            region,
            if_not_exists,
        } => {
            let settings =
                require_multi_region(&mut database, &format!("add region \"{region}\""))?;
            if settings.regions.contains(region) {
                if *if_not_exists {
                    return Ok(ExecResult::command("ALTER DATABASE"));
                }
                return Err(SqlError::new(
                    code::DUPLICATE_OBJECT,
                    format!("region \"{region}\" already added to database"),
                ));
            }
            check_cluster_region(ctx, region).await?;
            settings.regions.push(region.clone());
            settings.regions.sort();
        }
        AlterDatabase::DropRegion { region, if_exists } => {
            let db_name = database.name.clone();
            let settings =
                require_multi_region(&mut database, &format!("drop region \"{region}\""))?;
            if !settings.regions.contains(region) {
                if *if_exists {
                    return Ok(ExecResult::command("ALTER DATABASE"));
                }
                return Err(SqlError::new(
                    code::UNDEFINED_OBJECT,
                    format!("region \"{region}\" has not been added to the database"),
                ));
            }
            for table in &tables {
                match &table.locality {
                    Some(Locality::RegionalByTable(Some(home))) if home == region => {
                        return Err(SqlError::new(
                            code::DEPENDENT_OBJECTS_STILL_EXIST,
                            format!("cannot drop region \"{region}\": table \"{}\" is homed in it (ALTER TABLE {} SET LOCALITY ... first)", table.name, table.name),
                        ))
                    }
                    Some(Locality::RegionalByRow { .. }) => {
                        let (start, end) = zones::partition_span(table.id, table.primary_index.id, region);
                        if !ctx.txn.scan(&start, &end, 1).await?.is_empty() {
                            return Err(SqlError::new(
                                code::DEPENDENT_OBJECTS_STILL_EXIST,
                                format!("cannot drop region \"{region}\": table \"{}\" has rows homed in it (move or delete them first)", table.name),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            if *region == settings.primary_region {
                if settings.regions.len() > 1 {
                    return Err(SqlError::new(
                        INVALID_DATABASE_DEFINITION,
                        format!("cannot drop region \"{region}\": it is the primary region of database \"{db_name}\" and other regions remain (make another region primary with ALTER DATABASE {db_name} PRIMARY REGION <region>, or drop every other region first)"),
                    ));
                }
                if let Some(table) = tables
                    .iter()
                    .find(|t| !matches!(t.locality, None | Some(Locality::RegionalByTable(None))))
                {
                    return Err(SqlError::new(
                        code::DEPENDENT_OBJECTS_STILL_EXIST,
                        format!("cannot drop the last region \"{region}\" of database \"{db_name}\": table \"{}\" has a multi-region locality", table.name),
                    ));
                }
                database.multi_region = None;
                for mut table in tables.iter().cloned() {
                    if table.locality.take().is_some() {
                        catalog.update_table(&mut table).await?;
                    }
                    tables_changed.push(table);
                }
            } else {
                settings.regions.retain(|r| r != region);
            }
        }
        AlterDatabase::Survive(goal) => {
            require_multi_region(&mut database, "set a survival goal")?.survival = *goal;
        }
        AlterDatabase::Placement(placement) => {
            require_multi_region(&mut database, "set a placement policy")?.placement = *placement;
        }
    }
    if let Some(settings) = &database.multi_region {
        check_settings(settings)?;
    }
    catalog.update_database(&database).await?;
    zones::check_database(ctx, &database).await?;
    if tables_changed.is_empty() {
        tables_changed = tables;
    }
    zones::rewrite_tables(ctx, &database, &tables_changed).await?;
    Ok(ExecResult::command("ALTER DATABASE"))
}

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

fn array(items: &[String]) -> Datum {
    text(format!("{{{}}}", items.join(",")))
}

fn columns(names: &[(&str, SqlType)]) -> Vec<ColumnInfo> {
    names.iter().map(|(n, t)| ColumnInfo::new(*n, *t)).collect()
}

fn survival_name(goal: SurvivalGoal) -> &'static str {
    match goal {
        SurvivalGoal::Zone => "zone",
        SurvivalGoal::Region => "region",
    }
}

pub async fn show_regions(
    ctx: &ExecContext<'_>,
    which: &ShowRegions,
) -> Result<ExecResult, SqlError> {
    let cluster = cluster_regions(ctx).unwrap_or_default();
    let zones_of = |r: &str| cluster.get(r).cloned().unwrap_or_default();
    let catalog = ctx.catalog();
    match which {
        ShowRegions::Cluster => Ok(ExecResult::rows(
            columns(&[("region", SqlType::Text), ("zones", SqlType::Text)]),
            cluster
                .iter()
                .map(|(r, z)| vec![text(r.clone()), array(z)])
                .collect(),
        )),
        ShowRegions::Database(name) => {
            let database = catalog
                .require_database(name.as_deref().unwrap_or(ctx.database))
                .await?;
            let rows = match &database.multi_region {
                None => Vec::new(),
                Some(settings) => settings
                    .regions
                    .iter()
                    .map(|r| {
                        vec![
                            text(database.name.clone()),
                            text(r.clone()),
                            Datum::Bool(*r == settings.primary_region),
                            array(&zones_of(r)),
                        ]
                    })
                    .collect(),
            };
            Ok(ExecResult::rows(
                columns(&[
                    ("database", SqlType::Text),
                    ("region", SqlType::Text),
                    ("primary", SqlType::Bool),
                    ("zones", SqlType::Text),
                ]),
                rows,
            ))
        }
        ShowRegions::AllDatabases => {
            let rows = catalog
                .databases()
                .await?
                .into_iter()
                .map(|d| match &d.multi_region {
                    None => vec![text(d.name), array(&[]), Datum::Null, Datum::Null],
                    Some(s) => vec![
                        text(d.name.clone()),
                        array(&s.regions),
                        text(s.primary_region.clone()),
                        text(survival_name(s.survival)),
                    ],
                })
                .collect();
            Ok(ExecResult::rows(
                columns(&[
                    ("database_name", SqlType::Text),
                    ("regions", SqlType::Text),
                    ("primary_region", SqlType::Text),
                    ("survival_goal", SqlType::Text),
                ]),
                rows,
            ))
        }
        ShowRegions::All => {
            let databases = catalog.databases().await?;
            let rows = cluster
                .iter()
                .map(|(region, zones)| {
                    let using: Vec<String> = databases
                        .iter()
                        .filter(|d| {
                            d.multi_region
                                .as_ref()
                                .is_some_and(|s| s.regions.contains(region))
                        })
                        .map(|d| d.name.clone())
                        .collect();
                    let primary_of: Vec<String> = databases
                        .iter()
                        .filter(|d| {
                            d.multi_region
                                .as_ref()
                                .is_some_and(|s| s.primary_region == *region)
                        })
                        .map(|d| d.name.clone())
                        .collect();
                    vec![
                        text(region.clone()),
                        array(zones),
                        array(&using),
                        array(&primary_of),
                    ]
                })
                .collect();
            Ok(ExecResult::rows(
                columns(&[
                    ("region", SqlType::Text),
                    ("zones", SqlType::Text),
                    ("database_names", SqlType::Text),
                    ("primary_region_of", SqlType::Text),
                ]),
                rows,
            ))
        }
    }
}

pub async fn show_survival_goal(
    ctx: &ExecContext<'_>,
    database: Option<&str>,
) -> Result<ExecResult, SqlError> {
    let database = ctx
        .catalog()
        .require_database(database.unwrap_or(ctx.database))
        .await?;
    let goal = database
        .multi_region
        .as_ref()
        .map(|s| text(survival_name(s.survival)))
        .unwrap_or(Datum::Null);
    Ok(ExecResult::rows(
        columns(&[
            ("database", SqlType::Text),
            ("survival_goal", SqlType::Text),
        ]),
        vec![vec![text(database.name), goal]],
    ))
}
