//! The parser's tests: splitting, positions, the pre-parser's statements.

use super::*;

#[test]
fn statements_split_outside_quotes_and_comments() {
    let statements = parse("SELECT ';'; -- a; comment\nSELECT 2;;  ").unwrap();
    assert_eq!(statements.len(), 2);
    assert!(parse("  ; -- nothing\n").unwrap().is_empty());
}

#[test]
fn a_syntax_error_names_its_position() {
    let e = parse("SELECT 1;\nSELEC 2").unwrap_err();
    assert_eq!(e.code, crate::error::code::SYNTAX_ERROR);
    assert_eq!(e.position, Some(11), "{e:?}");
    let e = parse("SELECT 'unterminated").unwrap_err();
    assert_eq!(e.code, crate::error::code::SYNTAX_ERROR);
}

#[test]
fn meridian_statements_are_recognized_before_sqlparser() {
    assert_eq!(
        parse("show ranges from table accounts").unwrap(),
        vec![Statement::Meridian(
            MeridianStatement::ShowRangesFromTable {
                table: "accounts".into()
            }
        )]
    );
    assert!(parse("SHOW RANGES").is_err());
    assert!(parse_one("SELECT 1; SELECT 2").is_err());
}

fn one(sql: &str) -> MeridianStatement {
    match parse_one(sql).unwrap() {
        Some(Statement::Meridian(m)) => m,
        other => panic!("{sql}: not a Meridian statement: {other:?}"),
    }
}

#[test]
fn create_database_with_regions() {
    assert_eq!(
        one(
            r#"CREATE DATABASE IF NOT EXISTS d PRIMARY REGION "us-east1" REGIONS "us-west1", eu SURVIVE REGION FAILURE"#
        ),
        MeridianStatement::CreateDatabase {
            name: "d".into(),
            if_not_exists: true,
            primary_region: Some("us-east1".into()),
            regions: vec!["us-west1".into(), "eu".into()],
            survival: Some(SurvivalGoal::Region),
            placement: None,
        }
    );
    // Without multi-region clauses, sqlparser parses it.
    assert!(matches!(
        parse_one("CREATE DATABASE d").unwrap(),
        Some(Statement::Sql(_))
    ));
    let e = parse("CREATE DATABASE d PRIMARY REGION").unwrap_err();
    assert_eq!(e.code, crate::error::code::SYNTAX_ERROR);
    assert!(e.message.contains("region name"), "{e:?}");
    assert!(parse("CREATE DATABASE d SURVIVE RACK FAILURE").is_err());
}

#[test]
fn alter_database_actions() {
    let alter = |sql: &str| match one(sql) {
        MeridianStatement::AlterDatabase { name, action } => {
            assert_eq!(name, "d");
            action
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        alter(r#"ALTER DATABASE d ADD REGION IF NOT EXISTS "eu-1""#),
        AlterDatabase::AddRegion {
            region: "eu-1".into(),
            if_not_exists: true
        }
    );
    assert_eq!(
        alter("alter database d drop region eu"),
        AlterDatabase::DropRegion {
            region: "eu".into(),
            if_exists: false
        }
    );
    assert_eq!(
        alter("ALTER DATABASE d SET PRIMARY REGION = 'us'"),
        AlterDatabase::SetPrimaryRegion("us".into())
    );
    assert_eq!(
        alter("ALTER DATABASE d PRIMARY REGION us"),
        AlterDatabase::SetPrimaryRegion("us".into())
    );
    assert_eq!(
        alter("ALTER DATABASE d SURVIVE ZONE FAILURE;"),
        AlterDatabase::Survive(SurvivalGoal::Zone)
    );
    assert_eq!(
        alter("ALTER DATABASE d PLACEMENT RESTRICTED"),
        AlterDatabase::Placement(DataPlacement::Restricted)
    );
    assert!(parse("ALTER DATABASE d ADD REGION eu extra").is_err());
}

#[test]
fn table_localities() {
    let create = |sql: &str| match one(sql) {
        MeridianStatement::CreateTable { create, locality } => {
            assert_eq!(create.name.to_string(), "t");
            locality
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        create("CREATE TABLE t (id INT PRIMARY KEY, locality TEXT) LOCALITY GLOBAL"),
        LocalitySpec::Global
    );
    assert_eq!(
        create(r#"CREATE TABLE t (id INT PRIMARY KEY) LOCALITY REGIONAL BY TABLE IN "eu""#),
        LocalitySpec::RegionalByTable(Some("eu".into()))
    );
    assert_eq!(
        create("CREATE TABLE t (id INT PRIMARY KEY) LOCALITY REGIONAL BY TABLE IN PRIMARY REGION"),
        LocalitySpec::RegionalByTable(None)
    );
    assert_eq!(
        create("CREATE TABLE t (id INT PRIMARY KEY) LOCALITY REGIONAL IN eu"),
        LocalitySpec::RegionalByTable(Some("eu".into()))
    );
    assert_eq!(
        create("CREATE TABLE t (id INT PRIMARY KEY, home TEXT) LOCALITY REGIONAL BY ROW AS home;"),
        LocalitySpec::RegionalByRow(Some("home".into()))
    );
    assert_eq!(
        create("CREATE TABLE t (id INT PRIMARY KEY) LOCALITY REGIONAL BY ROW"),
        LocalitySpec::RegionalByRow(None)
    );
    // A column named locality is not the clause.
    assert!(matches!(
        parse_one("CREATE TABLE t (locality INT)").unwrap(),
        Some(Statement::Sql(_))
    ));
    assert_eq!(
        one("ALTER TABLE t SET LOCALITY GLOBAL"),
        MeridianStatement::AlterTableLocality {
            table: "t".into(),
            if_exists: false,
            locality: LocalitySpec::Global
        }
    );
    let e = parse("SELECT 1; CREATE TABLE t (id INT) LOCALITY SIDEWAYS").unwrap_err();
    assert_eq!(e.position, Some(44), "{e:?}");
}

#[test]
fn zone_configs_and_shows() {
    assert_eq!(
        one("ALTER TABLE t CONFIGURE ZONE USING num_replicas = 5, constraints = '[+region=eu]';"),
        MeridianStatement::ConfigureZone {
            target: ZoneTarget::Table("t".into()),
            change: ZoneChange::Using("num_replicas = 5, constraints = '[+region=eu]'".into()),
        }
    );
    assert_eq!(
        one("ALTER DATABASE d CONFIGURE ZONE DISCARD"),
        MeridianStatement::ConfigureZone {
            target: ZoneTarget::Database("d".into()),
            change: ZoneChange::Discard,
        }
    );
    assert_eq!(
        one("ALTER RANGE default CONFIGURE ZONE USING gc.ttlseconds = 600"),
        MeridianStatement::ConfigureZone {
            target: ZoneTarget::RangeDefault,
            change: ZoneChange::Using("gc.ttlseconds = 600".into()),
        }
    );
    assert_eq!(
        one("SHOW REGIONS FROM DATABASE"),
        MeridianStatement::ShowRegions(ShowRegions::Database(None))
    );
    assert_eq!(
        one("SHOW REGIONS FROM CLUSTER"),
        MeridianStatement::ShowRegions(ShowRegions::Cluster)
    );
    assert_eq!(
        one("SHOW SURVIVAL GOAL FROM DATABASE d"),
        MeridianStatement::ShowSurvivalGoal {
            database: Some("d".into())
        }
    );
    assert_eq!(
        one("SHOW ZONE CONFIGURATION FOR RANGE default"),
        MeridianStatement::ShowZoneConfiguration {
            target: ZoneTarget::RangeDefault
        }
    );
    assert_eq!(
        one("SHOW ZONE CONFIGURATION FROM TABLE t"),
        MeridianStatement::ShowZoneConfiguration {
            target: ZoneTarget::Table("t".into())
        }
    );
    assert!(parse("SHOW ZONE CONFIGURATION FOR INDEX i").is_err());
    assert!(parse("ALTER TABLE t CONFIGURE ZONE USING").is_err());
}
