//! Errors of a node's life cycle: starting, bootstrapping, joining, and
//! connecting a client. The errors of the RPCs other nodes and the CLI
//! call cross the wire and live beside them (`rpc`, `status`,
//! `split_queue`); the queues' errors, which are only logged, live in
//! their modules.
//!
//! Not here: the RPC errors (`rpc::{InitError, JoinError}`,
//! `status::StatusError`, `split_queue::SplitError`).

use std::time::Duration;

use crate::rpc::{InitError, JoinError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("store directory {path}: {reason}")]
    Store { path: String, reason: String },
    #[error("certificates: {0}")]
    Certs(#[from] meridian_transport::CertError),
    #[error("transport: {0}")]
    Transport(#[from] meridian_transport::TransportError),
    #[error("store: {0}")]
    KvServer(#[from] meridian_kvserver::store::StoreError),
    #[error("storage: {0}")]
    Storage(#[from] meridian_storage::StorageError),
    #[error("kv: {0}")]
    Client(#[from] meridian_kvclient::ClientError),
    /// `init` refused (a member already, or the store has an identity).
    #[error(transparent)]
    Init(#[from] InitError),
    /// A member refused this node for good (its store is of another
    /// cluster).
    #[error(transparent)]
    JoinRefused(JoinError),
    /// A new node reached none of its `--join` nodes in time.
    #[error("cannot reach any node of --join {join} within {timeout:?} (last error: {last})")]
    JoinUnreachable {
        join: String,
        timeout: Duration,
        last: String,
    },
    /// A client reached no node at this address.
    #[error("cannot reach a Meridian node at {addr}: {reason}")]
    Unreachable { addr: String, reason: String },
    /// A client reached a node that belongs to no cluster yet.
    #[error("the node at {addr} is not part of an initialized cluster (run `meridian init`)")]
    NotInitialized { addr: String },
    /// Every node a client was given is restarting (it has an identity but
    /// has not loaded its membership yet); retrying shortly succeeds.
    #[error("the node at {addr} is starting; retry in a moment")]
    Starting { addr: String },
    #[error("admin HTTP on {addr}: {reason}")]
    Http { addr: String, reason: String },
    #[error("SQL listener on {addr}: {reason}")]
    SqlListen { addr: String, reason: String },
    /// An in-process cluster ([`crate::local_cluster`]) did not come up.
    #[error("local cluster: {0}")]
    LocalCluster(String),
}
