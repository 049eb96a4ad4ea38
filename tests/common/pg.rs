//! Whole nodes over pgwire, for the cluster tests that use SQL: a client,
//! the first column of a simple query's rows, an error's SQLSTATE, and a
//! node's count of follower reads from its metrics.
use std::net::SocketAddr;

use meridian_testkit::NodeCluster;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// A client of the node at `addr`, on `database` (the default one if
/// `None`).
pub async fn connect(addr: SocketAddr, database: Option<&str>) -> Client {
    let mut config = format!("host={} port={} user=root", addr.ip(), addr.port());
    if let Some(database) = database {
        config.push_str(&format!(" dbname={database}"));
    }
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The first column of every row of a simple query.
pub async fn column(client: &Client, sql: &str) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_string()),
            _ => None,
        })
        .collect())
}

/// The SQLSTATE of a server's error ("" for any other error).
pub fn code(e: tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

/// Node `i`'s `meridian_follower_reads_total`.
pub fn follower_reads(cluster: &NodeCluster, i: usize) -> u64 {
    cluster
        .node(i)
        .metrics_text()
        .lines()
        .find_map(|l| l.strip_prefix("meridian_follower_reads_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
