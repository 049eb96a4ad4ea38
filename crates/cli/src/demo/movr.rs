//! The demo's sample database: `movr`, a small ride-sharing application
//! modelled on CockroachDB's, laid out for multi-region.
//!
//! - `CREATE DATABASE movr PRIMARY REGION <first> REGIONS <others>` (the
//!   profile's regions; ZONE survival, the default);
//! - `users`, `vehicles`, `rides`: REGIONAL BY ROW, keyed by UUID;
//! - `promo_codes`: GLOBAL.
//!
//! Each region's rows are inserted through a gateway in that region, without
//! naming the hidden `region` column, so they are homed where they were
//! written, as an application's would be. A few dozen rows per table: enough
//! to look at, quick to load (one multi-row INSERT per table and region;
//! the regions load at once).
//!
//! Not here: starting the cluster, the banner (`demo`).

use anyhow::{Context, Result};
use futures_util::future::try_join_all;
use tokio_postgres::{Client, NoTls};

/// The database's name.
pub const DATABASE: &str = "movr";

const USERS: usize = 12;
const VEHICLES: usize = 8;
const RIDES: usize = 10;

const SCHEMA: [&str; 4] = [
    "CREATE TABLE users (id UUID PRIMARY KEY, city TEXT NOT NULL, name TEXT, address TEXT, \
     credit_card TEXT) LOCALITY REGIONAL BY ROW",
    "CREATE TABLE vehicles (id UUID PRIMARY KEY, city TEXT NOT NULL, type TEXT, owner_id UUID, \
     status TEXT, current_location TEXT) LOCALITY REGIONAL BY ROW",
    "CREATE TABLE rides (id UUID PRIMARY KEY, city TEXT NOT NULL, rider_id UUID, vehicle_id UUID, \
     start_address TEXT, end_address TEXT, revenue DECIMAL(10,2)) LOCALITY REGIONAL BY ROW",
    "CREATE TABLE promo_codes (code TEXT PRIMARY KEY, description TEXT, discount_percent INT) \
     LOCALITY GLOBAL",
];

/// Cities of a region (CockroachDB's movr cities for the demo regions).
fn cities(region: &str) -> Vec<String> {
    let known: &[&str] = match region {
        "us-east1" => &["new york", "boston", "washington dc"],
        "us-west1" => &["seattle", "san francisco", "los angeles"],
        "europe-west1" => &["amsterdam", "paris", "rome"],
        _ => &[],
    };
    match known.is_empty() {
        true => (1..=3).map(|i| format!("{region} city {i}")).collect(),
        false => known.iter().map(|c| c.to_string()).collect(),
    }
}

/// A fixed UUID: region `r`, table `t`, row `n`.
fn uuid(r: usize, t: usize, n: usize) -> String {
    format!("{r:08x}-{t:04x}-4000-8000-{n:012x}")
}

/// The CREATE DATABASE statement.
pub fn create_database(regions: &[&str]) -> String {
    let quoted = |r: &&str| format!("\"{r}\"");
    let others: Vec<String> = regions[1..].iter().map(quoted).collect();
    let mut sql = format!(
        "CREATE DATABASE {DATABASE} PRIMARY REGION \"{}\"",
        regions[0]
    );
    if !others.is_empty() {
        sql.push_str(&format!(" REGIONS {}", others.join(", ")));
    }
    sql
}

/// The inserts of the `r`-th region's rows (run from a gateway there).
pub fn region_inserts(r: usize, region: &str) -> Vec<String> {
    let cities = cities(region);
    let city = |n: usize| cities[n % cities.len()].replace('\'', "''");
    let users: Vec<String> = (0..USERS)
        .map(|n| {
            format!(
                "('{}', '{}', 'user {r}-{n}', '{n} main street', '{:016}')",
                uuid(r, 1, n),
                city(n),
                4_000_000_000_000_000u64 + (r * 100 + n) as u64
            )
        })
        .collect();
    let kinds = ["bike", "scooter", "skateboard"];
    let vehicles: Vec<String> = (0..VEHICLES)
        .map(|n| {
            format!(
                "('{}', '{}', '{}', '{}', '{}', '{} station road')",
                uuid(r, 2, n),
                city(n),
                kinds[n % kinds.len()],
                uuid(r, 1, n % USERS),
                if n % 3 == 0 { "in_use" } else { "available" },
                n + 1
            )
        })
        .collect();
    let rides: Vec<String> = (0..RIDES)
        .map(|n| {
            format!(
                "('{}', '{}', '{}', '{}', '{n} main street', '{} park avenue', {}.{:02})",
                uuid(r, 3, n),
                city(n),
                uuid(r, 1, (n + 1) % USERS),
                uuid(r, 2, n % VEHICLES),
                n + 10,
                5 + n * 3,
                n * 7 % 100
            )
        })
        .collect();
    vec![
        format!(
            "INSERT INTO users (id, city, name, address, credit_card) VALUES {}",
            users.join(", ")
        ),
        format!(
            "INSERT INTO vehicles (id, city, type, owner_id, status, current_location) VALUES {}",
            vehicles.join(", ")
        ),
        format!(
            "INSERT INTO rides (id, city, rider_id, vehicle_id, start_address, end_address, revenue) VALUES {}",
            rides.join(", ")
        ),
    ]
}

/// The GLOBAL table's rows.
pub fn promo_codes_insert() -> String {
    let rows: Vec<String> = (0..20)
        .map(|n| format!("('promo_{n:02}', '{}% off a ride', {})", 5 + n, 5 + n))
        .collect();
    format!(
        "INSERT INTO promo_codes (code, description, discount_percent) VALUES {}",
        rows.join(", ")
    )
}

async fn connect(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn run(client: &Client, sql: &str) -> Result<()> {
    client.batch_execute(sql).await.with_context(|| {
        let head: String = sql.chars().take(60).collect();
        format!("loading movr: {head}...")
    })
}

/// Creates and loads `movr`. `gateways` holds one `(region, URL on
/// defaultdb)` per region, the primary region first; `with_db` turns a
/// gateway's URL into one on another database.
pub async fn load(
    gateways: &[(String, String)],
    with_db: impl Fn(&str, &str) -> String,
) -> Result<()> {
    let regions: Vec<&str> = gateways.iter().map(|(r, _)| r.as_str()).collect();
    let primary = connect(&gateways[0].1).await?;
    run(&primary, &create_database(&regions)).await?;
    let primary = connect(&with_db(&gateways[0].1, DATABASE)).await?;
    for sql in SCHEMA {
        run(&primary, sql).await?;
    }
    run(&primary, &promo_codes_insert()).await?;
    try_join_all(gateways.iter().enumerate().map(|(r, (region, url))| {
        let url = with_db(url, DATABASE);
        async move {
            let client = connect(&url).await?;
            for sql in region_inserts(r, region) {
                run(&client, &sql).await?;
            }
            anyhow::Ok(())
        }
    }))
    .await?;
    Ok(())
}
