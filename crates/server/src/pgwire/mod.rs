//! The PostgreSQL wire protocol: every node serves SQL clients (psql,
//! drivers, pgbench) over TCP with the `pgwire` crate, one
//! [`Session`](meridian_sql::Session) of the node's SQL engine per
//! connection.
//!
//! - [`listener`]: binding the TCP address, the accept loop, one task per
//!   connection, all of them stopping with the node;
//! - [`connection`]: what one connection holds (its session, its cancel
//!   key) and the handlers pgwire calls for it;
//! - [`auth`]: who may connect (trust, for now: no password);
//! - [`startup`]: what follows authentication: the session, ParameterStatus,
//!   the cancel key, the first ReadyForQuery; SQLSTATE 57P03 while the node
//!   is not a cluster member;
//! - [`simple`]: the simple query protocol (Query);
//! - [`extended`]: the extended protocol (Parse, Bind, Describe, Execute,
//!   Sync), statements and portals;
//! - [`results`]: result columns and rows on the wire, text and binary;
//! - [`errors`]: SQL errors as ErrorResponse fields.
//!
//! The listener sees the node through [`SqlNode`], which the node
//! implements on a weak handle: connections never keep a stopped node
//! alive.
//!
//! Not here: SQL itself (`meridian_sql`: parsing, planning, transactions,
//! session variables), TLS and passwords (not built yet).

pub mod auth;
pub mod connection;
pub mod errors;
pub mod extended;
pub mod listener;
pub mod results;
pub mod simple;
pub mod startup;

use std::sync::Arc;

use meridian_sql::SqlEngine;

pub use listener::{bind, serve};

/// Whether a node can serve SQL now.
pub enum EngineState {
    /// A cluster member: sessions come from this engine.
    Ready(Arc<SqlEngine>),
    /// Not a member of a cluster yet (waiting for `init` or a join).
    NotMember,
    /// The node has stopped.
    Stopped,
}

/// What the listener asks of its node.
pub trait SqlNode: Send + Sync + 'static {
    fn sql_engine(&self) -> EngineState;
}
