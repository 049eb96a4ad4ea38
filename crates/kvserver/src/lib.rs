//! kvserver: a node's [`Store`] of ranges, each replicated by its own
//! openraft group over the node's one RocksDB and the QUIC transport.
//!
//! The files, bottom-up:
//! - [`raft`]: the openraft glue. A range's log and vote live in the
//!   `raft_log`/`raft_state` column families; appends are acknowledged by
//!   group commit (one WAL fsync for every group that wrote since the last,
//!   [`raft::syncer`]); the state machine applies replicated write sets
//!   together with the applied index; messages of all groups share the
//!   node's QUIC connections, tagged with the range id ([`raft::network`]);
//!   the Raft timing of a node ([`raft::config`]).
//! - [`latch`]: locks on key spans that serialize overlapping requests.
//! - [`locks`]: the leaseholder's row locks, taken by locking reads and
//!   held until their transaction ends; writers of a locked key wait.
//! - [`eval`]: a batch of KV requests evaluated against MVCC, refused at or
//!   below the range's GC threshold.
//! - [`gc`]: MVCC garbage collection of a range at its leaseholder, one
//!   `RaftCommand::Gc` per bounded pass, raising the replicated threshold.
//! - [`replica::Replica`]: serves a KV batch at the leaseholder: span check,
//!   lease check, latches, timestamp, evaluation, proposal.
//! - [`lease`]: the lease record and the rules for serving under it, with
//!   the argument for why reads at the leaseholder are linearizable.
//! - [`tscache`]: the timestamp cache of a lease: the highest read per key
//!   span (and by which transaction), so writes go above reads of their
//!   keys.
//! - [`closedts`]: closed timestamps: leaseholders promise no write at or
//!   below `now - target`, and tell the other replicas, which then serve
//!   reads there without the lease (follower reads).
//! - [`quiesce`]: idle ranges stop their Raft timers; requests wake them;
//!   a per-node leader watch wakes ranges whose leader's node went silent.
//! - [`store::Store`]: the node's replicas and what they share; one module
//!   per operation on them: [`lifecycle`] (create, open, destroy),
//!   [`membership`] (voters, non-voters, promotion, demotion, removal,
//!   leadership transfer), [`snapshot`] (reassembling received snapshots),
//!   [`split`] (the whole split, from choosing the key to opening the new
//!   range), [`replica_gc`] (collecting a replica its range no longer
//!   has, as its leaseholder says), and [`handlers`] (what the store
//!   answers on the transport). [`replica_record`] holds a replica's
//!   identity on disk (its replica id) and the tombstone a destroyed one
//!   leaves.
//! - [`error`]: the store's errors, and those that cross the wire.
//!
//! A write: `Store::send` -> `Replica::send` -> `eval::evaluate` into a
//! storage batch -> `RaftCommand::Write` through `raft.client_write` ->
//! every replica's `StateMachine::apply` commits the write set with the
//! applied index -> the leaseholder answers.

pub mod closedts;
pub mod error;
pub mod eval;
pub mod gc;
pub mod handlers;
pub mod latch;
pub mod lease;
pub mod lifecycle;
pub mod locks;
pub mod membership;
pub mod metrics;
pub mod quiesce;
pub mod raft;
pub mod replica;
pub mod replica_gc;
pub mod replica_record;
pub mod snapshot;
pub mod split;
pub mod store;
pub mod tscache;
pub mod txn_eval;

pub use error::{RemoteReplicaError, StoreError};
pub use replica::Replica;
pub use split::{SplitCluster, SplitError, SplitPoint};
pub use store::{BatchRpc, RaftTimeouts, Store};
