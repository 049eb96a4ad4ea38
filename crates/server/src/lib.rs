//! A Meridian node: everything that turns a store and a transport into a
//! member of a cluster.
//!
//! - [`client`]: a client of a running cluster (CLI, benchmarks, tests);
//! - [`config`]: the node's settings;
//! - [`ident`]: which cluster a store belongs to and its node id;
//! - [`rpc`]: the node-level RPCs (init, join, cluster info);
//! - [`system`]: the records kept in the first range: node descriptors,
//!   liveness, id counters, meta records;
//! - [`node`]: start, bootstrap or join, and shut down a node;
//! - [`liveness`]: heartbeats and the live / suspect / dead verdicts;
//! - [`queues`]: the loops each leaseholder runs: meta records, size
//!   splits, up-replication and replacement of dead replicas;
//! - [`metrics`]: Prometheus metrics;
//! - [`status`]: node and range status, shared by the CLI and HTTP;
//! - [`admin`]: the admin HTTP endpoint (health, metrics, status).
//!
//! Not here: replication and evaluation (`kvserver`), routing
//! (`kvclient`), the command line (`cli`).

pub mod admin;
pub mod client;
pub mod config;
pub mod error;
pub mod ident;
pub mod liveness;
pub mod metrics;
pub mod node;
pub mod queues;
pub mod rpc;
pub mod status;
pub mod system;

pub use config::NodeConfig;
pub use error::ServerError;
pub use metrics::metrics_text;
pub use node::Node;
