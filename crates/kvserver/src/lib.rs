//! kvserver: a node's [`Store`] of ranges, each replicated by its own
//! openraft group over the node's one RocksDB and the QUIC transport.
//!
//! - [`raft`]: the openraft glue. A range's log and vote live in the
//!   `raft_log`/`raft_state` column families; appends are acknowledged by
//!   group commit (one WAL fsync for every group that wrote since the last,
//!   [`raft::syncer`]); the state machine applies replicated write sets
//!   together with the applied index; messages of all groups share the
//!   node's QUIC connections, tagged with the range id ([`raft::network`]).
//! - [`replica::Replica`]: serves a KV batch at the leaseholder: span check,
//!   lease check, latches, timestamp, MVCC evaluation, proposal. Its module
//!   documentation explains why reads at the leaseholder are linearizable.
//! - [`store::Store`]: the node's replicas, their creation, membership
//!   changes (voters, non-voters, promotion, demotion, removal),
//!   leadership transfer, and the transport handlers.
//! - [`quiesce`]: idle ranges stop their Raft timers; requests wake them;
//!   a per-node leader watch wakes ranges whose leader's node went silent.
//!
//! A write: `Store::send` -> `Replica::send` -> `eval::evaluate` into a
//! storage batch -> `RaftCommand::Write` through `raft.client_write` ->
//! every replica's `StateMachine::apply` commits the write set with the
//! applied index -> the leaseholder answers.

mod error;
pub mod eval;
pub mod latch;
pub mod metrics;
pub mod quiesce;
pub mod raft;
pub mod replica;
pub mod replica_record;
pub mod store;

pub use replica::Replica;
pub use store::{BatchRpc, RaftTimeouts, Store, StoreError};
