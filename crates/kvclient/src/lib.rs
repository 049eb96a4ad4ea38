//! The client side of the KV layer: finding ranges and talking to their
//! leaseholders. Never depends on the server side (`kvserver`); both speak
//! the contract in `meridian_kvapi::wire`.
//!
//! - [`range_cache`]: the descriptors a node or client has seen, by key;
//! - [`dist_sender`]: [`DistSender`] splits a batch by range, sends each
//!   part to its leaseholder and retries through lease moves, splits and
//!   node failures until a deadline;
//! - [`node_transport`]: [`NodeTransport`], the seam between the
//!   DistSender and the network, implemented by the QUIC transport;
//! - [`error`]: the client error type, [`ClientError`];
//! - [`txn_debug`]: the intent on a key and its transaction's record, for
//!   operators.
//!
//! - [`txn`]: the transaction coordinator ([`txn::Txn`]) and its retry
//!   loop ([`txn::run_txn`]), on top of the DistSender.

pub mod dist_sender;
pub mod error;
pub mod node_transport;
pub mod range_cache;
pub mod txn;
pub mod txn_debug;

pub use dist_sender::{BatchHeader, ClusterView, DistSender, DistSenderConfig};
pub use error::ClientError;
pub use node_transport::NodeTransport;
pub use range_cache::RangeCache;
pub use txn_debug::IntentReport;
