//! Storage: one RocksDB per node, MVCC on top of it, and the per-range
//! records replication needs.
//!
//! Layers above see four things:
//!
//! - [`Engine`]: the node's RocksDB with its column families (`data`,
//!   `raft_log`, `raft_state`, `range_local`, `txn`), shared by every
//!   replica.
//! - [`Batch`]: writes applied atomically by [`Engine::commit`], with a
//!   `sync` flag for durability. A batch is also a [`Reader`]: MVCC logic
//!   evaluated into a batch sees the batch's earlier writes.
//! - [`mvcc`]: versioned reads and writes with intents, uncertainty and
//!   write-too-old checks, intent resolution and GC, each keeping
//!   [`MvccStats`] up to date.
//! - Raft log and state ([`raft_log`]) and range-local records
//!   ([`range_local`]), keyed by range id; transaction records
//!   ([`txn_record`]), keyed by anchor key so they move with their range.
//! - What replication carries: a command's data writes ([`WriteSet`]) and
//!   a range's whole state for snapshots ([`RangeData`]).
//!
//! A write walks through it like this: the leaseholder's replica evaluates
//! the request into a batch it never commits, calling [`mvcc::mvcc_put`]
//! (which reads the key's intent and newest version through the batch,
//! refuses conflicts, writes the version or intent and adds the stats delta);
//! the batch's data writes become a [`WriteSet`] that Raft replicates. On
//! every replica the Raft state machine then opens a batch, puts the write
//! set, writes its applied index and the new stats with
//! [`Batch::put_range_local`], and commits it: data, stats and applied index
//! become durable together.
//!
//! What this crate does not own: what the bytes of log entries, leases and
//! descriptors mean (replication and kvapi decide), and which ranges exist.
//! Stored bytes that do not decode are [`StorageError::Corrupt`], never a
//! panic; keys and values over [`meridian_keys::MAX_KEY_BYTES`] and
//! [`meridian_keys::MAX_VALUE_BYTES`] are refused.

mod cursor;
mod engine;
mod error;
pub mod mvcc;
pub mod raft_log;
pub mod range_local;
mod replicated;
mod stats;
pub mod txn_record;

pub use cursor::{Cursor, Reader};
pub use engine::{Batch, Engine, EngineOptions};
pub use error::{Intent, Result, StorageError};
pub use replicated::{RangeData, WriteSet};
pub use stats::{compute_stats, find_split_key, MvccStats};
