//! Debian's `psql` (the `postgresql-client` package) against a real node:
//! the meta-commands `\dt`, `\d`, `\d TABLE`, `\d INDEX`, `\di`, `\l`,
//! `\du` and `\dn` run as a child process, their output checked; and the
//! catalog queries drivers send (tokio-postgres's type lookup, the
//! startup queries of psycopg- and SQLAlchemy-style clients). psql missing
//! is a failure naming the package, not a skip.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use meridian_testkit::NodeCluster;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Long enough for a statement on a fresh cluster (first writes elect
/// leaders, create the catalog).
const STATEMENT: Duration = Duration::from_secs(60);

async fn connect(addr: SocketAddr) -> Client {
    let config = format!(
        "host={} port={} user=root dbname=defaultdb",
        addr.ip(),
        addr.port()
    );
    let (client, connection) =
        tokio::time::timeout(STATEMENT, tokio_postgres::connect(&config, NoTls))
            .await
            .expect("connecting took too long")
            .expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn run(client: &Client, sql: &str) {
    tokio::time::timeout(STATEMENT, client.batch_execute(sql))
        .await
        .unwrap_or_else(|_| panic!("{sql} took longer than {STATEMENT:?}"))
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

/// The schema every test describes: a primary key, a NOT NULL column,
/// defaults, a secondary and a unique index, and a table without a
/// primary key (its hidden row id must not show).
async fn create_schema(client: &Client) {
    run(
        client,
        "CREATE TABLE accounts (
             id INT8 PRIMARY KEY,
             owner TEXT NOT NULL,
             balance NUMERIC DEFAULT 0,
             nickname VARCHAR(20)
         );
         CREATE INDEX accounts_owner_idx ON accounts (owner);
         CREATE UNIQUE INDEX accounts_nickname_key ON accounts (nickname);
         CREATE TABLE events (at TIMESTAMPTZ DEFAULT now(), body JSONB);",
    )
    .await;
}

/// Runs `psql -X -v ON_ERROR_STOP=1` against `addr` with `args`; its
/// standard output. Fails when psql is missing, exits non-zero or writes
/// to standard error.
async fn psql(addr: SocketAddr, args: &[&str]) -> String {
    let (success, stdout, stderr) = psql_output(addr, args).await;
    assert!(
        success && stderr.is_empty(),
        "psql {} failed:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" ")
    );
    stdout
}

/// Runs psql as [`psql`] does: whether it exited 0, its standard output
/// and standard error.
async fn psql_output(addr: SocketAddr, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new("psql");
    command
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", &addr.ip().to_string()])
        .args(["-p", &addr.port().to_string()])
        .args(["-U", "root", "-d", "defaultdb"])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "30")
        .env("PGTZ", "UTC");
    let what = format!("psql {}", args.join(" "));
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("psql task");
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "psql is not installed: these tests need Debian's `postgresql-client` package \
             (apt-get install postgresql-client)"
        ),
        Err(e) => panic!("running {what}: {e}"),
    };
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `psql -A -t -c COMMAND`: unaligned rows, no headers or footers.
async fn rows(addr: SocketAddr, command: &str) -> Vec<String> {
    psql(addr, &["-A", "-t", "-c", command])
        .await
        .lines()
        .map(str::to_string)
        .collect()
}

fn assert_has(output: &str, line: &str, what: &str) {
    assert!(
        output.lines().any(|l| l == line),
        "{what}: no line {line:?} in:\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands() {
    let cluster = NodeCluster::start(1).await.expect("cluster");
    let addr = cluster.sql_addr(0);
    let client = connect(addr).await;
    create_schema(&client).await;

    // \dt and \d: the tables, as psql lists them (indexes are not listed).
    let tables = vec![
        "public|accounts|table|root".to_string(),
        "public|events|table|root".to_string(),
    ];
    assert_eq!(rows(addr, "\\dt").await, tables, "\\dt");
    assert_eq!(rows(addr, "\\d").await, tables, "\\d");
    assert_eq!(
        rows(addr, "\\dt acc*").await,
        tables[..1].to_vec(),
        "\\dt with a pattern"
    );

    // \d TABLE: columns with their types, nullability and defaults, then
    // the indexes (footers print only without -t).
    let described = psql(addr, &["-A", "-c", "\\d accounts"]).await;
    assert_has(&described, "Table \"public.accounts\"", "\\d accounts");
    assert_has(
        &described,
        "Column|Type|Collation|Nullable|Default",
        "\\d accounts",
    );
    assert_has(&described, "id|bigint||not null|", "\\d accounts");
    assert_has(&described, "owner|text||not null|", "\\d accounts");
    assert_has(&described, "balance|numeric|||0", "\\d accounts");
    assert_has(
        &described,
        "nickname|character varying(20)|||",
        "\\d accounts",
    );
    assert_has(&described, "Indexes:", "\\d accounts");
    assert_has(
        &described,
        "    \"accounts_pkey\" PRIMARY KEY, btree (id)",
        "\\d accounts",
    );
    assert_has(
        &described,
        "    \"accounts_nickname_key\" UNIQUE, btree (nickname)",
        "\\d accounts",
    );
    assert_has(
        &described,
        "    \"accounts_owner_idx\" btree (owner)",
        "\\d accounts",
    );

    // A table without a primary key: no row id column, no index.
    let events = psql(addr, &["-A", "-c", "\\d events"]).await;
    assert_has(&events, "at|timestamp with time zone|||now()", "\\d events");
    assert_has(&events, "body|jsonb|||", "\\d events");
    assert!(
        !events.contains("rowid"),
        "\\d events shows the row id:\n{events}"
    );
    assert!(
        !events.contains("Indexes:"),
        "\\d events shows an index:\n{events}"
    );

    // \d+ TABLE adds storage; \d INDEX and \di describe the indexes.
    let verbose = psql(addr, &["-A", "-c", "\\d+ accounts"]).await;
    assert_has(
        &verbose,
        "owner|text||not null||extended|||",
        "\\d+ accounts",
    );
    assert_has(&verbose, "Access method: heap", "\\d+ accounts");
    let index = psql(addr, &["-A", "-c", "\\d accounts_owner_idx"]).await;
    assert_has(&index, "Index \"public.accounts_owner_idx\"", "\\d INDEX");
    assert_has(&index, "owner|text|yes|owner", "\\d INDEX");
    assert_has(&index, "btree, for table \"public.accounts\"", "\\d INDEX");
    assert_eq!(
        rows(addr, "\\di").await,
        vec![
            "public|accounts_nickname_key|index|root|accounts",
            "public|accounts_owner_idx|index|root|accounts",
            "public|accounts_pkey|index|root|accounts",
        ],
        "\\di"
    );

    // A pattern that matches nothing: psql's message, not an error of ours.
    let (_, _, stderr) = psql_output(addr, &["-c", "\\d nosuch"]).await;
    assert_eq!(
        stderr.trim_end(),
        "Did not find any relation named \"nosuch\".",
        "\\d nosuch"
    );

    // \l, \du, \dn.
    let databases = rows(addr, "\\l").await;
    for name in ["defaultdb", "postgres"] {
        assert!(
            databases
                .iter()
                .any(|l| l.starts_with(&format!("{name}|root|UTF8|"))),
            "\\l lacks {name}: {databases:?}"
        );
    }
    assert_eq!(
        rows(addr, "\\du").await,
        vec!["root|Superuser, Create role, Create DB|{}"],
        "\\du"
    );
    assert_eq!(rows(addr, "\\dn").await, vec!["public|root"], "\\dn");

    // The same in a database of its own: only its tables.
    run(&client, "CREATE DATABASE other").await;
    let (success, stdout, stderr) = psql_output(addr, &["-d", "other", "-c", "\\dt"]).await;
    assert!(success, "\\dt in an empty database: {stderr}");
    assert_eq!(
        (stdout.as_str(), stderr.trim_end()),
        ("", "Did not find any relations."),
        "\\dt in an empty database"
    );

    cluster.shutdown().await;
}

fn simple_rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// tokio-postgres's queries for a type it does not know (its
/// `prepare.rs`), run as it runs them: prepared, the oid a parameter,
/// `typtype` read as a `"char"` (i8).
const TYPEINFO_QUERY: &str = "\
SELECT t.typname, t.typtype, t.typelem, r.rngsubtype, t.typbasetype, n.nspname, t.typrelid
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_range r ON r.rngtypid = t.oid
INNER JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid
WHERE t.oid = $1
";

const TYPEINFO_ENUM_QUERY: &str = "\
SELECT enumlabel
FROM pg_catalog.pg_enum
WHERE enumtypid = $1
ORDER BY enumsortorder
";

const TYPEINFO_COMPOSITE_QUERY: &str = "\
SELECT attname, atttypid
FROM pg_catalog.pg_attribute
WHERE attrelid = $1
AND NOT attisdropped
AND attnum > 0
ORDER BY attnum
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_introspection_queries() {
    let cluster = NodeCluster::start(1).await.expect("cluster");
    let client = connect(cluster.sql_addr(0)).await;
    create_schema(&client).await;

    // tokio-postgres's type lookup.
    let row = client
        .query_one(TYPEINFO_QUERY, &[&25u32])
        .await
        .expect("typeinfo query");
    assert_eq!(row.get::<_, String>(0), "text");
    assert_eq!(row.get::<_, i8>(1), b'b' as i8, "typtype");
    assert_eq!(row.get::<_, u32>(2), 0, "typelem");
    assert_eq!(row.get::<_, Option<u32>>(3), None, "rngsubtype");
    assert_eq!(row.get::<_, u32>(4), 0, "typbasetype");
    assert_eq!(row.get::<_, String>(5), "pg_catalog");
    assert_eq!(row.get::<_, u32>(6), 0, "typrelid");
    let row = client
        .query_one(
            "SELECT typname, typtype, typelem FROM pg_catalog.pg_type WHERE oid = $1",
            &[&3802u32],
        )
        .await
        .expect("pg_type by oid");
    assert_eq!(row.get::<_, String>(0), "jsonb");
    assert!(client
        .query(TYPEINFO_ENUM_QUERY, &[&25u32])
        .await
        .expect("enum query")
        .is_empty());
    let table: u32 = client
        .query_one(
            "SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = $1 AND c.relkind = 'r'",
            &[&"accounts"],
        )
        .await
        .expect("table oid")
        .get(0);
    let columns: Vec<(String, u32)> = client
        .query(TYPEINFO_COMPOSITE_QUERY, &[&table])
        .await
        .expect("composite query")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        columns,
        vec![
            ("id".to_string(), 20),
            ("owner".to_string(), 25),
            ("balance".to_string(), 1700),
            ("nickname".to_string(), 1043),
        ]
    );

    // Startup and introspection queries of psycopg / SQLAlchemy-style
    // clients, in the simple protocol.
    let one = |sql: &'static str| {
        let client = &client;
        async move {
            let messages = client
                .simple_query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            simple_rows(&messages)
        }
    };
    assert!(one("SELECT pg_catalog.version()").await[0][0]
        .as_deref()
        .unwrap()
        .starts_with("PostgreSQL 15"));
    assert_eq!(
        one("SELECT current_schema()").await,
        vec![vec![Some("public".to_string())]]
    );
    assert_eq!(
        one("SHOW standard_conforming_strings").await,
        vec![vec![Some("on".to_string())]]
    );
    assert_eq!(
        one(
            "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid \
             WHERE typname = 'hstore'"
        )
        .await,
        Vec::<Vec<Option<String>>>::new()
    );
    assert_eq!(
        one(
            "SELECT table_name, column_name, data_type, is_nullable, column_default \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = 'accounts' ORDER BY ordinal_position"
        )
        .await,
        [
            ["accounts", "id", "bigint", "NO"].map(Some).to_vec(),
            ["accounts", "owner", "text", "NO"].map(Some).to_vec(),
            ["accounts", "balance", "numeric", "YES"].map(Some).to_vec(),
            ["accounts", "nickname", "character varying", "YES"]
                .map(Some)
                .to_vec(),
        ]
        .into_iter()
        .zip([None, None, Some("0"), None])
        .map(|(mut row, default)| {
            row.push(default);
            row.into_iter().map(|c| c.map(str::to_string)).collect()
        })
        .collect::<Vec<Vec<Option<String>>>>()
    );
    assert_eq!(
        one(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts' \
             ORDER BY indexname"
        )
        .await,
        vec![
            vec![
                Some("accounts_nickname_key".to_string()),
                Some(
                    "CREATE UNIQUE INDEX accounts_nickname_key ON public.accounts USING btree \
                     (nickname)"
                        .to_string()
                ),
            ],
            vec![
                Some("accounts_owner_idx".to_string()),
                Some(
                    "CREATE INDEX accounts_owner_idx ON public.accounts USING btree (owner)"
                        .to_string()
                ),
            ],
            vec![
                Some("accounts_pkey".to_string()),
                Some(
                    "CREATE UNIQUE INDEX accounts_pkey ON public.accounts USING btree (id)"
                        .to_string()
                ),
            ],
        ]
    );
    // The regular-expression operators psql's patterns use.
    assert_eq!(
        one("SELECT relname FROM pg_catalog.pg_class \
             WHERE relname OPERATOR(pg_catalog.~) '^(acc.*)$' COLLATE pg_catalog.default \
             AND relname !~ '_idx$' AND relname ~* 'KEY' ORDER BY 1")
        .await,
        vec![
            vec![Some("accounts_nickname_key".to_string())],
            vec![Some("accounts_pkey".to_string())],
        ]
    );

    cluster.shutdown().await;
}
