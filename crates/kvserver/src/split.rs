//! Splits: one range becomes two, `[start, split_key)` keeping the range's
//! id and `[split_key, end)` a new range on the same replicas.
//!
//! This module owns the whole Raft-side split, in the order it happens:
//!
//! 1. **Choose.** [`Store::split`] (the entry point of the server's split
//!    queue and of `meridian debug split`) takes a [`SplitPoint`]: a key,
//!    or the middle of a local replica's data (`find_split_key`). Keys of
//!    the meta and system range are refused. It allocates the new range's
//!    id and sends the split to the leaseholder through a
//!    [`SplitCluster`], the server's view of the cluster.
//! 2. **Evaluate** at the leaseholder ([`Store::split_range`] ->
//!    `Replica::split`, the [`AdminSplitRpc`] handler): under a write latch
//!    on the whole range, so no write to the right-hand side is in flight
//!    through this range; refused while a membership change is in progress
//!    (joint configuration or learners), since the new range takes the
//!    voters only. Proposes `RaftCommand::Split { split_key,
//!    right_range_id, term, lease_floor }`: the floor is the leaseholder's
//!    clock, at or above everything it served on the range, and no lease
//!    of the new range starts below it (the new range is a new Raft group
//!    whose first leader may be another node, with a slower clock).
//! 3. **Apply** on every replica at the same log index, in the state
//!    machine's batch (`apply_split_command`, in `split/apply.rs`); skipped if proposed in
//!    another term than evaluated or if the key left the range. The left
//!    span shrinks, the right-hand statistics are recounted from the data
//!    as of that index, and the new range's first records are written (an
//!    applied state at a first log id common to every replica, with the
//!    parent's voters and GC threshold; a log purged up to there; its
//!    `ReplicaRecord`). A non-voter of the parent drops the right-hand keys
//!    instead.
//! 4. **Open** the right-hand replica once the batch is committed
//!    ([`SplitApplied`] -> `Store::open_split`); where the left-hand side
//!    leads, the right-hand side campaigns at once, so leases stay put.
//! 5. **Record.** Back at the entry point, both descriptors are written to
//!    meta, the right-hand one first.
//! 6. **Catch up.** A replica that missed the split (it caught up on the
//!    left-hand side by snapshot) gets the new range by snapshot: its
//!    leader asks followers it never reached to create their replica
//!    ([`Store::create_missing_followers`]), and a node refuses to create
//!    one that overlaps a replica it holds (both in [`crate::lifecycle`]).
//!
//! This module does not own the split-key search (storage's
//! `find_split_key`), range-id allocation and meta records (the server,
//! behind [`SplitCluster`]), nor routing to the leaseholder (the
//! DistSender).

use std::future::Future;

use meridian_keys::space::TABLE_PREFIX;
use meridian_kvapi::{KvError, NodeId, RangeDescriptor, RangeId, ReplicaId};
use meridian_storage::{find_split_key, StorageError};
use meridian_transport::Rpc;
use openraft::async_runtime::WatchReceiver;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::StoreError;
use crate::raft::types::{RaftCommand, ReplicaNode};
use crate::replica::Replica;
use crate::replica_record::ReplicaRecord;
use crate::store::Store;

/// Splits a range at its leaseholder (step 2).
pub struct AdminSplitRpc;
impl Rpc for AdminSplitRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::ADMIN_SPLIT;
    const NAME: &'static str = "AdminSplit";
    type Request = meridian_kvapi::wire::AdminSplitRequest;
    type Response = meridian_kvapi::wire::AdminSplitResult;
}

/// Where to split a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitPoint {
    /// At this key: the range holding it splits so that the key starts the
    /// right-hand side. Any node may ask.
    Key(Vec<u8>),
    /// At the middle, by bytes of data, of this node's replica of the
    /// range, as its local data says (the split queue runs at the
    /// leaseholder, whose data is current).
    MiddleOf(RangeId),
}

/// What a split needs from the cluster beyond this store. The server
/// implements it with its DistSender and system ranges.
pub trait SplitCluster: Sync {
    type Error: std::error::Error + Send + Sync + 'static;

    /// An id no range has had, allocated cluster-wide.
    fn allocate_range_id(&self) -> impl Future<Output = Result<RangeId, Self::Error>> + Send;

    /// Splits the range holding `split_key` at its leaseholder
    /// ([`AdminSplitRpc`], following redirects); returns the left and right
    /// descriptors. Already split there counts as done.
    fn admin_split(
        &self,
        split_key: &[u8],
        right_range_id: RangeId,
    ) -> impl Future<Output = Result<(RangeDescriptor, RangeDescriptor), Self::Error>> + Send;

    /// Writes `descriptor` to its meta record.
    fn record_descriptor(
        &self,
        descriptor: &RangeDescriptor,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// Why [`Store::split`] failed; `E` is the [`SplitCluster`]'s error.
#[derive(Debug, thiserror::Error)]
pub enum SplitError<E> {
    #[error("keys below 0x10 belong to the system ranges (meta and system records, the SQL catalog), which do not split")]
    SystemRange { key: Vec<u8> },
    #[error("range {0} not found on this node")]
    RangeNotFound(RangeId),
    #[error("finding the split key: {0}")]
    FindSplitKey(#[source] StorageError),
    #[error("allocating a range id: {0}")]
    AllocateRangeId(#[source] E),
    #[error("split: {0}")]
    Split(#[source] E),
    #[error("meta update after split of range {range_id}: {source}")]
    RecordDescriptor {
        range_id: RangeId,
        #[source]
        source: E,
    },
}

/// Whether `key` may start a range: keys below [`TABLE_PREFIX`] (meta, system, catalog) never split.
pub fn splittable_key(key: &[u8]) -> bool {
    key.first().is_some_and(|&b| b >= TABLE_PREFIX)
}

impl Store {
    /// Splits a range (steps 1 and 5): at a key, or at the middle of this
    /// node's replica of a range. Returns the left and right descriptors,
    /// or `None` when the range has no key to split at (too little data).
    pub async fn split<C: SplitCluster>(
        &self,
        cluster: &C,
        at: SplitPoint,
    ) -> Result<Option<(RangeDescriptor, RangeDescriptor)>, SplitError<C::Error>> {
        let split_key = match at {
            SplitPoint::Key(key) => key,
            SplitPoint::MiddleOf(range_id) => {
                let replica = self
                    .replica(range_id)
                    .ok_or(SplitError::RangeNotFound(range_id))?;
                let span = replica.span();
                match find_split_key(self.engine(), &span.0, &span.1)
                    .map_err(SplitError::FindSplitKey)?
                {
                    Some(key) => key,
                    None => return Ok(None),
                }
            }
        };
        if !splittable_key(&split_key) {
            return Err(SplitError::SystemRange { key: split_key });
        }
        let right_id = cluster
            .allocate_range_id()
            .await
            .map_err(SplitError::AllocateRangeId)?;
        let (left, right) = cluster
            .admin_split(&split_key, right_id)
            .await
            .map_err(SplitError::Split)?;
        info!(left = left.range_id, right = right.range_id, "range split");
        // The right-hand side first: its record replaces the parent's (same
        // end key), so a lookup in between finds a range that holds the key
        // or answers RangeKeyMismatch, never a gap.
        for d in [&right, &left] {
            cluster
                .record_descriptor(d)
                .await
                .map_err(|source| SplitError::RecordDescriptor {
                    range_id: d.range_id,
                    source,
                })?;
        }
        Ok(Some((left, right)))
    }

    /// Splits range `range_id` at `split_key` into a new range
    /// `right_range_id` (step 2). Must run at the leaseholder.
    pub async fn split_range(
        &self,
        range_id: RangeId,
        split_key: &[u8],
        right_range_id: RangeId,
    ) -> Result<(RangeDescriptor, RangeDescriptor), KvError> {
        let replica = self
            .replica(range_id)
            .ok_or(KvError::RangeNotFound { range_id })?;
        replica.split(split_key, right_range_id).await
    }

    /// Opens the right-hand side of a split this node applied (step 4; its
    /// group starts initialized); where the left-hand side leads, the new
    /// range's leadership (and lease) is claimed here too.
    async fn open_split(&self, event: &SplitApplied) -> Result<(), StoreError> {
        let replica = {
            let _lifecycle = self.inner.lifecycle.lock().await;
            if self.is_stopped() {
                return Ok(());
            }
            match self.replica(event.right.range_id) {
                Some(replica) => replica,
                None => {
                    let record = ReplicaRecord {
                        descriptor: event.right.clone(),
                        replica_id: event.replica_id,
                    };
                    self.open_replica(&record).await?
                }
            }
        };
        let leads_left = self
            .replica(event.left_range_id)
            .is_some_and(|left| left.leader() == Some(self.node_id()));
        if leads_left {
            let _ = replica.raft().trigger().elect(false).await;
        }
        Ok(())
    }
}

/// Opens, until the store stops, the right-hand side of every split its
/// state machines report. Holds the store weakly: it must not keep a
/// dropped store alive.
pub(crate) fn spawn_right_hand_opener(
    store: &Store,
    mut split_events: mpsc::UnboundedReceiver<SplitApplied>,
) {
    let weak = std::sync::Arc::downgrade(&store.inner);
    tokio::spawn(async move {
        while let Some(event) = split_events.recv().await {
            let Some(inner) = weak.upgrade() else { return };
            let store = Store { inner };
            if store.is_stopped() {
                return;
            }
            if let Err(e) = store.open_split(&event).await {
                warn!(range_id = event.right.range_id, error = %e, "opening the right-hand side of a split failed");
            }
        }
    });
}

/// Whether `split_key` lies strictly inside `[start, end)`: a split at the
/// start would leave an empty left-hand side.
pub fn key_splits_span(span: &(Vec<u8>, Vec<u8>), split_key: &[u8]) -> bool {
    span.0.as_slice() < split_key && split_key < span.1.as_slice()
}

/// Whether a membership change is under way: the new range takes the
/// parent's voters only, so splits wait for joint configurations and learners.
fn membership_change_in_progress(membership: &openraft::Membership<NodeId, ReplicaNode>) -> bool {
    membership.get_joint_config().len() > 1 || membership.learner_ids().next().is_some()
}

impl Replica {
    /// Splits the range at `split_key`; `[split_key, end)` becomes range
    /// `right_range_id` on the same replicas. Returns the left and right
    /// descriptors. Must run at the leaseholder (step 2).
    pub async fn split(
        &self,
        split_key: &[u8],
        right_range_id: RangeId,
    ) -> Result<(RangeDescriptor, RangeDescriptor), KvError> {
        let mismatch = || KvError::RangeKeyMismatch {
            range_id: self.range_id,
            descriptor: Some(Box::new(self.descriptor())),
        };
        if !key_splits_span(&self.span(), split_key) {
            return Err(mismatch());
        }
        let taken = ReplicaRecord::exists(&self.engine, right_range_id)
            .map_err(|e| KvError::Storage(e.to_string()))?;
        if taken || right_range_id == self.range_id {
            return Err(KvError::InvalidRequest(format!(
                "range id {right_range_id} is already in use"
            )));
        }
        self.activate().await;
        // Every request on the range finishes before the split evaluates, and
        // none starts until it applied: none can write to the right-hand
        // side through this range afterwards.
        let _latches = self.latches.acquire_range(&self.span()).await;
        let term = self.lease(false).await?.term;
        if !key_splits_span(&self.span(), split_key) {
            return Err(mismatch());
        }
        {
            let metrics = self.raft.metrics().borrow_watched().clone();
            if membership_change_in_progress(metrics.membership_config.membership()) {
                return Err(KvError::Unavailable {
                    range_id: self.range_id,
                    reason: "a membership change is in progress; split later".into(),
                });
            }
        }
        let result = self
            .propose_for_result(RaftCommand::Split {
                split_key: split_key.to_vec(),
                right_range_id,
                term,
                // Under the whole-range latch, after the lease check: the
                // clock was moved up to every timestamp served here.
                lease_floor: self.clock.now(),
            })
            .await?;
        // Both descriptors as of the split's own log index: a change
        // applied after it must not leak into the records the caller
        // writes to meta.
        let descriptors = result.split.ok_or_else(|| KvError::Unavailable {
            range_id: self.range_id,
            reason: "the split applied without its descriptors".into(),
        })?;
        Ok(*descriptors)
    }
}

/// Tells the store that a split created the right-hand range here (step 4).
#[derive(Debug, Clone)]
pub struct SplitApplied {
    pub left_range_id: RangeId,
    pub right: RangeDescriptor,
    /// This node's replica id in both ranges (a split keeps the ids).
    pub replica_id: ReplicaId,
}

mod apply;

pub use apply::right_hand_descriptor;
pub(crate) use apply::{apply_split_command, SplitApply, SplitCommand};

#[cfg(test)]
mod tests;
