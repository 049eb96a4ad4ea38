//! Meridian's SQL layer: from statement text to rows, on serializable
//! transactions.
//!
//! A node holds one [`SqlEngine`]; each client connection gets a
//! [`Session`] from it, which keeps the connection's transaction state and
//! settings. A statement is parsed ([`parser`]), planned against the
//! catalog ([`catalog`], [`plan`]) and executed ([`exec`]) in a
//! transaction of the KV layer; rows live under their table's key prefix in
//! the encoding of [`encoding`].
//!
//! Not here: the PostgreSQL wire protocol (the server crate's pgwire
//! listener turns messages into calls on a [`Session`]) and the shell
//! (`meridian sql`).

pub mod catalog;
pub mod encoding;
mod engine;
pub mod error;
pub mod exec;
pub mod parser;
pub mod plan;
mod psql_compat;
mod session;
pub mod types;

pub use engine::{ClusterLocalities, LocalitiesFn, Locality, RangeSplitter, SqlConfig, SqlEngine};
pub use error::SqlError;
pub use session::{ColumnInfo, ExecResult, PreparedStatement, Session, TransactionStatus};
pub use types::{Datum, SqlType};
