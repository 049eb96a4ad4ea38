//! A Meridian node: everything that turns a store and a transport into a
//! member of a cluster.
//!
//! The node and its life:
//! - [`node`]: what a node is made of, how it starts, wires its parts
//!   and shuts down;
//! - [`bootstrap`]: `meridian init`, node 1 and the first ranges;
//! - [`join`]: joining a cluster, announcing a restart, letting others in;
//! - [`drain`]: handing leases away before stopping;
//! - [`member`]: what a node has once it belongs to a cluster;
//! - `start_member`: becoming a member, starting the store, the
//!   DistSender, the SQL engine and the loops;
//! - `node_rpc`: the node-level RPC handlers;
//! - [`directory`]: the address book of the cluster's nodes;
//! - [`cluster_view`]: where this node's DistSender finds the first range;
//! - `local_transport`: its batches for its own replicas skip QUIC;
//! - [`liveness`]: heartbeats and the live / suspect / dead verdicts;
//! - [`latency`]: measured round trips to every node and region.
//!
//! The queues each leaseholder runs ([`queues`] schedules them):
//! - [`meta_queue`]: meta records follow descriptors;
//! - [`replicate_queue`]: replicas where the range's zone config wants
//!   them, carrying out what [`allocator`] decides;
//! - [`lease_queue`]: leases to their preferred voters;
//! - [`conformance`]: how the led ranges stand against their configs;
//! - [`split_queue`]: splits, by size and by hand;
//! - [`mvcc_gc_queue`]: versions older than the GC ttl;
//! - [`replica_gc_queue`]: replicas a range no longer has.
//!
//! Around them:
//! - [`config`]: the node's settings;
//! - [`ident`]: which cluster a store belongs to and its node id;
//! - [`system`]: the records kept in the first range: node descriptors,
//!   liveness, id counters, meta records;
//! - [`zones`]: zone configs: loading them, and `meridian zone`'s changes;
//! - [`rpc`]: the node-level RPCs (init, join, cluster info, debug split)
//!   and their errors;
//! - [`status`]: node and range status, shared by the CLI and HTTP;
//! - [`metrics`]: Prometheus metrics;
//! - [`admin`]: the admin HTTP endpoint (health, metrics, status);
//! - [`pgwire`]: the PostgreSQL wire protocol listener (SQL clients);
//! - [`client`]: a client of a running cluster (CLI, benchmarks, tests);
//! - [`local_cluster`]: whole nodes in one process on loopback (`meridian
//!   demo`, `meridian bench`, the testkit's `NodeCluster`);
//! - [`error`]: errors of a node's life cycle.
//!
//! Dependencies point down: `node` (with `bootstrap` and `join`, which are
//! parts of it) uses everything else; the loops, `status` and `admin` take
//! what they need (the membership, the directory, the liveness verdicts,
//! the [`admin::AdminNode`] and [`pgwire::SqlNode`] traits) and never
//! reach back into `Node`.
//!
//! Not here: replication and evaluation (`kvserver`), routing
//! (`kvclient`), SQL (`sql`), the command line (`cli`).

pub mod admin;
pub mod allocator;
pub mod bootstrap;
pub mod client;
pub mod cluster_view;
pub mod config;
pub mod conformance;
pub mod directory;
pub mod drain;
pub mod error;
pub mod ident;
pub mod join;
pub mod latency;
pub mod lease_queue;
pub mod liveness;
pub mod local_cluster;
mod local_transport;
pub mod member;
pub mod meta_queue;
pub mod metrics;
pub mod mvcc_gc_queue;
pub mod node;
mod node_rpc;
pub mod pgwire;
pub mod queues;
pub mod replica_gc_queue;
pub mod replicate_queue;
pub mod rpc;
pub mod split_queue;
mod start_member;
pub mod status;
pub mod system;
pub mod zones;

pub use config::NodeConfig;
pub use error::ServerError;
pub use local_cluster::LocalCluster;
pub use member::Member;
pub use metrics::metrics_text;
pub use node::Node;
