//! The vocabulary KV servers and clients share. No I/O.
//!
//! So far this holds the transaction metadata that storage records in every
//! intent ([`txn`]). Range descriptors, request and response batches and the
//! KV error enum join it with the replication and routing layers; both sides
//! of the wire depend on this crate, never on each other.

pub mod txn;

pub use txn::{TxnId, TxnMeta, TxnStatus};
