//! The pre-parser's multi-region statements (CockroachDB's syntax, which
//! sqlparser does not parse): database regions and survival goals, table
//! localities, zone configs, and the SHOW statements that print them.
//!
//! ```text
//! CREATE DATABASE d [PRIMARY REGION r] [REGIONS r1, r2] [SURVIVE ZONE|REGION FAILURE]
//!     [PLACEMENT DEFAULT|RESTRICTED]
//! ALTER DATABASE d ADD REGION [IF NOT EXISTS] r | DROP REGION [IF EXISTS] r
//!     | [SET] PRIMARY REGION r | SURVIVE ZONE|REGION FAILURE | [SET] PLACEMENT ...
//! CREATE TABLE ... LOCALITY GLOBAL | REGIONAL [BY TABLE] [IN r | IN PRIMARY REGION]
//!     | REGIONAL BY ROW [AS col]
//! ALTER TABLE t SET LOCALITY ...
//! ALTER {DATABASE d | TABLE t | RANGE default} CONFIGURE ZONE USING ... | DISCARD
//! SHOW REGIONS [FROM CLUSTER | FROM DATABASE [d] | FROM ALL DATABASES]
//! SHOW SURVIVAL GOAL [FROM DATABASE [d]]
//! SHOW ZONE CONFIGURATION {FOR|FROM} {TABLE t | DATABASE d | RANGE default}
//! ```
//!
//! Region names are identifiers (bare ones lowercased; `"us-east1"` needs
//! its quotes) or single-quoted strings. Owns: recognizing and parsing
//! these statements into [`MeridianStatement`]s. Does not own: checking
//! regions against the cluster or running anything (`exec::regions`,
//! `exec::zones`).

use meridian_placement::{DataPlacement, SurvivalGoal};
use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::tokens::Tokens;
use super::{parser_error, MeridianStatement};
use crate::error::SqlError;

/// A table's `LOCALITY` clause as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalitySpec {
    Global,
    /// `REGIONAL BY TABLE [IN r]`; `None`: the primary region.
    RegionalByTable(Option<String>),
    /// `REGIONAL BY ROW [AS col]`; `None`: the hidden `region` column.
    RegionalByRow(Option<String>),
}

/// What `ALTER DATABASE` changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterDatabase {
    AddRegion { region: String, if_not_exists: bool },
    DropRegion { region: String, if_exists: bool },
    SetPrimaryRegion(String),
    Survive(SurvivalGoal),
    Placement(DataPlacement),
}

/// What a zone config statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneTarget {
    /// `RANGE default`: the config every other one inherits from.
    RangeDefault,
    Database(String),
    Table(String),
}

/// `CONFIGURE ZONE USING ...` (the text after USING) or `DISCARD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneChange {
    Using(String),
    Discard,
}

/// Which regions `SHOW REGIONS` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShowRegions {
    /// `SHOW REGIONS`: the cluster's regions and the databases using them.
    All,
    Cluster,
    /// `FROM DATABASE [d]` (`None`: the session's database).
    Database(Option<String>),
    AllDatabases,
}

/// Parses `t` if it is one of the statements above; `Ok(None)` hands the
/// statement to sqlparser.
pub(super) fn parse(
    t: &mut Tokens,
    text: &str,
    whole: &str,
    offset: usize,
) -> Result<Option<MeridianStatement>, SqlError> {
    if t.eat_words(&["CREATE", "DATABASE"]) {
        return create_database(t);
    }
    if t.is_word_at(0, "CREATE") && t.is_word_at(1, "TABLE") {
        return create_table(t, text, whole, offset);
    }
    if t.eat_words(&["ALTER", "DATABASE"]) {
        return alter_database(t);
    }
    if t.eat_words(&["ALTER", "TABLE"]) {
        return alter_table(t);
    }
    if t.eat_words(&["ALTER", "RANGE"]) {
        let name = t.name("a range name")?;
        if name != "default" {
            return Err(SqlError::unsupported(format!(
                "zone configs of RANGE {name} (only RANGE default)"
            )));
        }
        let change = configure_zone(t)?;
        return Ok(Some(MeridianStatement::ConfigureZone {
            target: ZoneTarget::RangeDefault,
            change,
        }));
    }
    if t.eat_words(&["SHOW", "REGIONS"]) {
        let which = if t.eat_words(&["FROM", "CLUSTER"]) {
            ShowRegions::Cluster
        } else if t.eat_words(&["FROM", "ALL", "DATABASES"]) {
            ShowRegions::AllDatabases
        } else if t.eat_words(&["FROM", "DATABASE"]) {
            ShowRegions::Database(optional_name(t, "a database name")?)
        } else {
            ShowRegions::All
        };
        t.expect_end()?;
        return Ok(Some(MeridianStatement::ShowRegions(which)));
    }
    if t.eat_words(&["SHOW", "SURVIVAL", "GOAL"]) {
        let database = if t.eat_words(&["FROM", "DATABASE"]) {
            optional_name(t, "a database name")?
        } else {
            None
        };
        t.expect_end()?;
        return Ok(Some(MeridianStatement::ShowSurvivalGoal { database }));
    }
    if t.eat_words(&["SHOW", "ZONE", "CONFIGURATION"]) {
        t.one_of(&["FOR", "FROM"])?;
        let target = match t.one_of(&["TABLE", "DATABASE", "RANGE"])? {
            "TABLE" => ZoneTarget::Table(t.name("a table name")?),
            "DATABASE" => ZoneTarget::Database(t.name("a database name")?),
            _ => {
                let name = t.name("a range name")?;
                if name != "default" {
                    return Err(SqlError::unsupported(format!(
                        "zone configs of RANGE {name} (only RANGE default)"
                    )));
                }
                ZoneTarget::RangeDefault
            }
        };
        t.expect_end()?;
        return Ok(Some(MeridianStatement::ShowZoneConfiguration { target }));
    }
    Ok(None)
}

fn optional_name(t: &mut Tokens, what: &str) -> Result<Option<String>, SqlError> {
    if t.at_end() {
        Ok(None)
    } else {
        t.name(what).map(Some)
    }
}

fn survival(t: &mut Tokens) -> Result<SurvivalGoal, SqlError> {
    let goal = match t.one_of(&["ZONE", "REGION"])? {
        "ZONE" => SurvivalGoal::Zone,
        _ => SurvivalGoal::Region,
    };
    t.expect_words(&["FAILURE"])?;
    Ok(goal)
}

fn placement(t: &mut Tokens) -> Result<DataPlacement, SqlError> {
    Ok(match t.one_of(&["DEFAULT", "RESTRICTED"])? {
        "DEFAULT" => DataPlacement::Default,
        _ => DataPlacement::Restricted,
    })
}

fn create_database(t: &mut Tokens) -> Result<Option<MeridianStatement>, SqlError> {
    let if_not_exists = t.eat_words(&["IF", "NOT", "EXISTS"]);
    let name = t.name("a database name")?;
    let multi_region = ["PRIMARY", "REGIONS", "SURVIVE", "PLACEMENT"];
    if !multi_region.iter().any(|w| t.is_word(w)) {
        return Ok(None);
    }
    let (mut primary_region, mut regions, mut survival_goal, mut data_placement) =
        (None, Vec::new(), None, None);
    while !t.at_end() {
        match t.one_of(&multi_region)? {
            "PRIMARY" => {
                t.expect_words(&["REGION"])?;
                t.eat_eq();
                primary_region = Some(t.name("a region name")?);
            }
            "REGIONS" => {
                t.eat_eq();
                loop {
                    regions.push(t.name("a region name")?);
                    if !t.eat_comma() {
                        break;
                    }
                }
            }
            "SURVIVE" => survival_goal = Some(survival(t)?),
            _ => data_placement = Some(placement(t)?),
        }
    }
    Ok(Some(MeridianStatement::CreateDatabase {
        name,
        if_not_exists,
        primary_region,
        regions,
        survival: survival_goal,
        placement: data_placement,
    }))
}

fn alter_database(t: &mut Tokens) -> Result<Option<MeridianStatement>, SqlError> {
    let name = t.name("a database name")?;
    if t.is_word("CONFIGURE") {
        let change = configure_zone(t)?;
        return Ok(Some(MeridianStatement::ConfigureZone {
            target: ZoneTarget::Database(name),
            change,
        }));
    }
    let set = t.eat_words(&["SET"]);
    let action = if !set && t.eat_words(&["ADD", "REGION"]) {
        let if_not_exists = t.eat_words(&["IF", "NOT", "EXISTS"]);
        AlterDatabase::AddRegion {
            region: t.name("a region name")?,
            if_not_exists,
        }
    } else if !set && t.eat_words(&["DROP", "REGION"]) {
        let if_exists = t.eat_words(&["IF", "EXISTS"]);
        AlterDatabase::DropRegion {
            region: t.name("a region name")?,
            if_exists,
        }
    } else if t.eat_words(&["PRIMARY", "REGION"]) {
        t.eat_eq();
        AlterDatabase::SetPrimaryRegion(t.name("a region name")?)
    } else if !set && t.eat_words(&["SURVIVE"]) {
        AlterDatabase::Survive(survival(t)?)
    } else if t.eat_words(&["PLACEMENT"]) {
        AlterDatabase::Placement(placement(t)?)
    } else if set {
        return Err(t.error("PRIMARY REGION or PLACEMENT"));
    } else {
        return Ok(None);
    };
    t.expect_end()?;
    Ok(Some(MeridianStatement::AlterDatabase { name, action }))
}

fn alter_table(t: &mut Tokens) -> Result<Option<MeridianStatement>, SqlError> {
    let if_exists = t.eat_words(&["IF", "EXISTS"]);
    let table = t.name("a table name")?;
    if t.is_word("CONFIGURE") {
        let change = configure_zone(t)?;
        return Ok(Some(MeridianStatement::ConfigureZone {
            target: ZoneTarget::Table(table),
            change,
        }));
    }
    if !t.eat_words(&["SET", "LOCALITY"]) {
        return Ok(None);
    }
    let locality = locality(t)?;
    t.expect_end()?;
    Ok(Some(MeridianStatement::AlterTableLocality {
        table,
        if_exists,
        locality,
    }))
}

fn configure_zone(t: &mut Tokens) -> Result<ZoneChange, SqlError> {
    t.expect_words(&["CONFIGURE", "ZONE"])?;
    if t.eat_words(&["DISCARD"]) {
        t.expect_end()?;
        return Ok(ZoneChange::Discard);
    }
    t.expect_words(&["USING"])?;
    if t.at_end() {
        return Err(t.error("a list of field = value"));
    }
    Ok(ZoneChange::Using(t.rest().to_string()))
}

/// What follows `LOCALITY`.
fn locality(t: &mut Tokens) -> Result<LocalitySpec, SqlError> {
    if t.eat_words(&["GLOBAL"]) {
        return Ok(LocalitySpec::Global);
    }
    t.expect_words(&["REGIONAL"])?;
    if t.eat_words(&["BY", "ROW"]) {
        let column = if t.eat_words(&["AS"]) {
            Some(t.name("a column name")?)
        } else {
            None
        };
        return Ok(LocalitySpec::RegionalByRow(column));
    }
    t.eat_words(&["BY", "TABLE"]);
    if !t.eat_words(&["IN"]) {
        return Ok(LocalitySpec::RegionalByTable(None));
    }
    if t.eat_words(&["PRIMARY", "REGION"]) {
        return Ok(LocalitySpec::RegionalByTable(None));
    }
    Ok(LocalitySpec::RegionalByTable(Some(
        t.name("a region name or PRIMARY REGION")?,
    )))
}

/// `CREATE TABLE ... LOCALITY ...`: the part before LOCALITY goes to
/// sqlparser; without a LOCALITY clause the whole statement does.
fn create_table(
    t: &mut Tokens,
    text: &str,
    whole: &str,
    offset: usize,
) -> Result<Option<MeridianStatement>, SqlError> {
    if !t.seek_top_level_word("LOCALITY") {
        return Ok(None);
    }
    let cut = t.offset();
    t.expect_words(&["LOCALITY"])?;
    let locality = locality(t)?;
    t.expect_end()?;
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, &text[..cut])
        .map_err(|e| parser_error(e, whole, offset))?;
    match statements.into_iter().next() {
        Some(ast::Statement::CreateTable(create)) => Ok(Some(MeridianStatement::CreateTable {
            create: Box::new(create),
            locality,
        })),
        _ => Err(SqlError::syntax("expected CREATE TABLE ... LOCALITY ...")),
    }
}
