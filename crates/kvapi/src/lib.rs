//! The vocabulary KV servers and clients share. No I/O.
//!
//! - [`txn`]: transaction identity and the metadata every intent records;
//! - [`descriptor`]: ranges and their replicas;
//! - [`api`]: KV requests and responses, batched per range;
//! - [`wire`]: the KV RPCs' kinds and types, and the meta record format;
//! - [`error`]: [`KvError`], what a range answers instead of a result, with
//!   [`KvError::is_retryable`] for clients.
//!
//! Both sides of the wire depend on this crate, never on each other.

pub mod api;
pub mod descriptor;
pub mod error;
pub mod txn;
pub mod wire;

pub use api::{BatchRequest, BatchResponse, BatchResult, Request, Response};
pub use descriptor::{
    NodeId, RangeDescriptor, RangeId, ReplicaDescriptor, ReplicaId, ReplicaKind, StoreId,
};
pub use error::KvError;
pub use txn::{PushKind, TxnId, TxnMeta, TxnRecord, TxnStatus, TXN_HEARTBEAT_EXPIRY};
