//! Fuzzing the SQL front end and evaluator through a real session (issue
//! 14, deliverable 5, with proptest: `cargo fuzz` needs a nightly
//! compiler): generated expressions over every type's edge values, casts,
//! operators and built-in functions, and soups of SQL tokens. Each
//! statement must come back as rows or as an error with a SQLSTATE; a
//! panic fails the test (proptest then shrinks the statement), and so does
//! an internal error (XX000), which means a case the code did not expect.
//! The session is a gateway's on a one-node cluster.

use std::cell::{Cell, RefCell};
use std::sync::Arc;

use meridian_sql::{Session, SqlEngine};
use meridian_testkit::TestCluster;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Literals at the edges of their types, and a few ordinary ones.
fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("NULL".to_string()),
        Just("true".to_string()),
        Just("9223372036854775807".to_string()),
        Just("(-9223372036854775807 - 1)".to_string()),
        Just("2147483647".to_string()),
        Just("(-1)".to_string()),
        Just("0".to_string()),
        Just("1e308".to_string()),
        Just("'NaN'::float8".to_string()),
        Just("'Infinity'::float8".to_string()),
        Just("0.000000000000000000000000001".to_string()),
        Just("79228162514264337593543950335".to_string()),
        Just("''".to_string()),
        Just("'2024-02-29'".to_string()),
        Just("'294276-12-31 23:59:59'".to_string()),
        Just("'1 year 2 mons -3 days 04:05:06'::interval".to_string()),
        Just("'\\xdeadbeef'::bytea".to_string()),
        Just("'{\"a\": [1, {\"b\": null}]}'::jsonb".to_string()),
        Just("'00000000-0000-0000-0000-000000000000'::uuid".to_string()),
        any::<i64>().prop_map(|i| format!("({i})")),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("({f:e})")),
        "[ -~]{0,12}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
    ]
}

const TYPES: &[&str] = &[
    "bool",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "numeric",
    "numeric(5,2)",
    "text",
    "varchar(3)",
    "char(2)",
    "bytea",
    "timestamp",
    "timestamptz",
    "date",
    "interval",
    "uuid",
    "jsonb",
    "oid",
    "name",
];
const BINARY: &[&str] = &[
    "+", "-", "*", "/", "%", "||", "=", "<>", "<", "<=", ">", ">=", "AND", "OR", "->", "->>",
    "LIKE", "~",
];
const FUNCTIONS: &[&str] = &[
    "abs",
    "coalesce",
    "nullif",
    "greatest",
    "least",
    "length",
    "lower",
    "upper",
    "substr",
    "round",
    "trunc",
    "ceil",
    "floor",
    "concat",
    "replace",
    "btrim",
    "ltrim",
    "rtrim",
    "left",
    "right",
    "format_type",
    "pg_get_userbyid",
    "pg_encoding_to_char",
    "array_to_string",
    "quote_ident",
    "default_to_database_primary_region",
];

/// Expressions of literals, casts, operators, functions and CASE.
fn expression() -> impl Strategy<Value = String> {
    literal().prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), prop::sample::select(TYPES))
                .prop_map(|(e, t)| format!("CAST({e} AS {t})")),
            (inner.clone(), prop::sample::select(BINARY), inner.clone())
                .prop_map(|(l, op, r)| format!("({l} {op} {r})")),
            inner.clone().prop_map(|e| format!("(- {e})")),
            inner.clone().prop_map(|e| format!("(NOT {e})")),
            (
                prop::sample::select(FUNCTIONS),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("CASE WHEN {c} THEN {a} ELSE {b} END")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(x, a, b)| format!("({x} BETWEEN {a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(x, a)| format!("({x} IN ({a}, NULL))")),
            inner.prop_map(|e| format!("({e} IS NULL)")),
        ]
    })
}

/// Sequences of SQL words and symbols: mostly not SQL at all.
fn token_soup() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "SELECT",
        "FROM",
        "WHERE",
        "INSERT",
        "INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "CREATE",
        "TABLE",
        "INDEX",
        "DROP",
        "ALTER",
        "ADD",
        "COLUMN",
        "PRIMARY",
        "KEY",
        "UNIQUE",
        "GROUP",
        "BY",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "JOIN",
        "ON",
        "LEFT",
        "UNION",
        "WITH",
        "AS",
        "CASE",
        "WHEN",
        "THEN",
        "END",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "SHOW",
        "EXPLAIN",
        "UPSERT",
        "REGIONAL",
        "BY",
        "ROW",
        "LOCALITY",
        "GLOBAL",
        "SURVIVE",
        "REGION",
        "FAILURE",
        "ZONE",
        "CONFIGURE",
        "USING",
        "t",
        "x",
        "k",
        "v",
        "*",
        ",",
        "(",
        ")",
        ";",
        "=",
        "'a'",
        "1",
        "-1",
        "NULL",
        "$1",
        "::",
        "int",
        "text",
        "?",
        ".",
        "[",
        "]",
        "{",
        "}",
    ];
    prop::collection::vec(prop::sample::select(TOKENS), 1..14).prop_map(|t| t.join(" "))
}

/// Runs `sql` and fails on an internal error; a panic fails by itself.
/// Whether every statement succeeded.
fn run(
    runtime: &tokio::runtime::Runtime,
    session: &mut Session,
    sql: &str,
) -> Result<bool, String> {
    let results = runtime.block_on(session.execute_simple(sql));
    // A statement left an explicit transaction open: end it, so the next
    // case starts clean.
    runtime.block_on(session.execute_simple("ROLLBACK"));
    let mut all_ok = true;
    for result in results {
        if let Err(e) = result {
            all_ok = false;
            if e.code == "XX000" || e.code.len() != 5 {
                return Err(format!("{sql}\n  -> {} {}", e.code, e.message));
            }
        }
    }
    Ok(all_ok)
}

/// Cases per test: 400, or `MERIDIAN_FUZZ_CASES` for a longer hunt.
fn cases() -> u32 {
    std::env::var("MERIDIAN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400)
}

fn engine() -> (tokio::runtime::Runtime, TestCluster, Arc<SqlEngine>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cluster = runtime
        .block_on(TestCluster::start_with_one_range(1))
        .unwrap();
    let engine = cluster.sql_engine(1).unwrap();
    (runtime, cluster, engine)
}

#[test]
fn generated_expressions_evaluate_or_fail_with_a_sqlstate() {
    let (runtime, cluster, engine) = engine();
    let session = RefCell::new(engine.session("root", "defaultdb"));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let (evaluated, cases) = (Cell::new(0), Cell::new(0));
    let outcome = runner.run(&expression(), |e| {
        let ok = run(&runtime, &mut session.borrow_mut(), &format!("SELECT {e}"))
            .map_err(TestCaseError::fail)?;
        cases.set(cases.get() + 1);
        evaluated.set(evaluated.get() + usize::from(ok));
        Ok(())
    });
    runtime.block_on(cluster.shutdown());
    if let Err(e) = outcome {
        panic!("{e}");
    }
    // The generator must reach evaluation, not only the binder's errors.
    eprintln!(
        "{} of {} expressions evaluated",
        evaluated.get(),
        cases.get()
    );
    assert!(
        evaluated.get() * 10 >= cases.get(),
        "{} of {}",
        evaluated.get(),
        cases.get()
    );
}

#[test]
fn token_soups_parse_or_fail_with_a_sqlstate() {
    let (runtime, cluster, engine) = engine();
    let session = RefCell::new(engine.session("root", "defaultdb"));
    let setup = "CREATE TABLE t (k INT PRIMARY KEY, v TEXT, x INT)";
    assert_eq!(run(&runtime, &mut session.borrow_mut(), setup), Ok(true));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&token_soup(), |sql| {
        run(&runtime, &mut session.borrow_mut(), &sql)
            .map(|_| ())
            .map_err(TestCaseError::fail)
    });
    runtime.block_on(cluster.shutdown());
    if let Err(e) = outcome {
        panic!("{e}");
    }
}
