//! A range's replicated state machine: MVCC data in the node's RocksDB.
//!
//! Applying a log entry adds its [`WriteSet`](meridian_storage::WriteSet) to
//! a batch together with the new [`AppliedState`] (applied log id,
//! membership, MVCC stats) and commits them at once, so a crash never
//! separates data from the index it reflects. Entries are replayed from the
//! log after a crash; applying is idempotent because the applied index moves
//! with the data.
//!
//! A GC (`RaftCommand::Gc`) applies like a write and raises the range's GC
//! threshold in the same batch, so the versions it removed and the
//! threshold that makes reads of them fail never part (see [`crate::gc`]).
//!
//! A split is a command like any other: every replica applies it at the
//! same log index, in the same batch as the entries around it. What
//! applying it means lives with the rest of the split, in
//! `crate::split::apply_split_command`; the right-hand ranges it created
//! are reported to the store once the batch is committed
//! ([`SplitApplied`]).
//!
//! Snapshots are the range's whole state read from one RocksDB snapshot
//! ([`meridian_storage::RangeData`]); installing one replaces the range's
//! data and applied state in one synced batch (this node's replica record
//! and tombstone stay: they are the receiver's, not the sender's). They are held in
//! memory while sent, which bounds the range size this supports (streaming
//! snapshots, built and ingested as SST files, are still to come).

use std::io;
use std::sync::Arc;

use futures_util::TryStreamExt;
use meridian_hlc::Timestamp;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{RangeDescriptor, RangeId, ReplicaDescriptor, ReplicaId, ReplicaKind};
use meridian_storage::{Engine, MvccStats, RangeData};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

pub use crate::split::SplitApplied;
use crate::split::{apply_split_command, SplitApply, SplitCommand};

use super::log_store::io_err;
use super::types::{
    CommandResult, LogId, RaftCommand, RangeSnapshot, Snapshot, SnapshotMeta, StoredMembership,
    TypeConfig,
};

/// What the state machine has applied, persisted with every apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedState {
    pub log_id: Option<LogId>,
    pub membership: StoredMembership,
    pub stats: MvccStats,
    /// The range's keys `[start, end)`; `None` until the first apply of a
    /// range created before this field was written.
    pub span: Option<(Vec<u8>, Vec<u8>)>,
    /// Bumped by every split and membership change (see
    /// [`meridian_kvapi::RangeDescriptor::generation`]).
    pub generation: u64,
    /// Requests at or below this timestamp are refused: GC may have removed
    /// versions they would read ([`crate::gc`]). Raised by `Gc` commands
    /// only, never lowered; a split's right-hand side starts with its
    /// parent's; snapshots carry it with the rest of this record.
    pub gc_threshold: Timestamp,
    /// Above every replica id the range has ever had: the next addition
    /// takes at least this one, so no id is used twice.
    pub next_replica_id: ReplicaId,
    /// No lease of the range starts at or below this: for a range created by
    /// a split, the parent leaseholder's clock at the split (it served the
    /// keys up to there). Zero otherwise.
    pub lease_floor: Timestamp,
}

impl AppliedState {
    /// The range as of this applied state: span, generation and the members
    /// of the applied membership (voters of either half of a joint
    /// configuration count as voters).
    pub fn descriptor(&self, range_id: RangeId) -> RangeDescriptor {
        let membership = self.membership.membership();
        let voters: std::collections::BTreeSet<ReplicaId> = membership.voter_ids().collect();
        let (start_key, end_key) = self.span.clone().unwrap_or_default();
        RangeDescriptor {
            range_id,
            start_key,
            end_key,
            replicas: membership
                .nodes()
                .map(|(&replica_id, node)| ReplicaDescriptor {
                    node_id: node.node_id,
                    store_id: node.node_id,
                    replica_id,
                    kind: if voters.contains(&replica_id) {
                        ReplicaKind::Voter
                    } else {
                        ReplicaKind::NonVoter
                    },
                })
                .collect(),
            generation: self.generation,
        }
    }

    pub(crate) fn decode(bytes: &[u8]) -> io::Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    pub(crate) fn encode(&self) -> io::Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(io_err)
    }

    pub(crate) fn from_range_data(data: &RangeData) -> io::Result<Self> {
        match data
            .local
            .iter()
            .find(|(k, _)| *k == RangeLocalKind::AppliedState)
        {
            Some((_, bytes)) => Self::decode(bytes),
            None => Ok(Self::default()),
        }
    }
}

/// The state machine of one range.
pub struct StateMachine {
    engine: Engine,
    range_id: RangeId,
    /// This replica's member id in the group.
    replica_id: ReplicaId,
    /// `applied.span` is always set: see [`StateMachine::open`].
    applied: AppliedState,
    splits: Option<mpsc::UnboundedSender<SplitApplied>>,
    /// The last snapshot built or installed.
    snapshot: Arc<Mutex<Option<(SnapshotMeta, RangeSnapshot)>>>,
    /// Publishes the applied index and stats to the replica.
    applied_tx: watch::Sender<AppliedSummary>,
}

/// What the replica needs to know of the state machine, without a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedSummary {
    pub index: u64,
    /// Whether the replica holds the range's data: it applied a log entry
    /// or a snapshot, or a split created it. An uninitialized replica (an
    /// empty one waiting for its first snapshot) owns no keys on this node,
    /// whatever span it was created with.
    pub initialized: bool,
    pub stats: MvccStats,
    pub span: Arc<(Vec<u8>, Vec<u8>)>,
    pub generation: u64,
    pub gc_threshold: Timestamp,
    /// The range's descriptor as of the applied index.
    pub descriptor: Arc<RangeDescriptor>,
    pub next_replica_id: ReplicaId,
    pub lease_floor: Timestamp,
}

impl StateMachine {
    /// Opens the state machine of `range_id`, resuming from what the
    /// engine holds; `span` is the range's span if the engine has none yet.
    /// Splits applied here are reported on `splits`.
    pub fn open(
        engine: Engine,
        replica_id: ReplicaId,
        range_id: RangeId,
        span: (Vec<u8>, Vec<u8>),
        splits: Option<mpsc::UnboundedSender<SplitApplied>>,
    ) -> io::Result<Self> {
        let mut applied = match engine
            .range_local(range_id, RangeLocalKind::AppliedState)
            .map_err(io_err)?
        {
            Some(bytes) => AppliedState::decode(&bytes)?,
            None => AppliedState::default(),
        };
        applied.span.get_or_insert(span);
        let (applied_tx, _) = watch::channel(summary(range_id, &applied));
        Ok(StateMachine {
            engine,
            range_id,
            replica_id,
            applied,
            splits,
            snapshot: Arc::new(Mutex::new(None)),
            applied_tx,
        })
    }

    /// A receiver of the applied index and stats, updated after every apply.
    pub fn subscribe(&self) -> watch::Receiver<AppliedSummary> {
        self.applied_tx.subscribe()
    }

    fn builder(&self) -> SnapshotBuilder {
        SnapshotBuilder {
            engine: self.engine.clone(),
            range_id: self.range_id,
            span: self.span().clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

impl StateMachine {
    fn span(&self) -> &(Vec<u8>, Vec<u8>) {
        self.applied.span.as_ref().expect("set at open")
    }
}

/// Adds a command's writes to `batch` and their statistics to `next`.
fn apply_writes(
    batch: &mut meridian_storage::Batch,
    next: &mut AppliedState,
    writes: &meridian_storage::WriteSet,
    stats: &MvccStats,
) {
    batch.apply_write_set(writes);
    next.stats.add(stats);
}

fn summary(range_id: RangeId, applied: &AppliedState) -> AppliedSummary {
    AppliedSummary {
        index: applied.log_id.as_ref().map_or(0, |id| id.index()),
        initialized: applied.log_id.is_some(),
        stats: applied.stats,
        span: Arc::new(applied.span.clone().unwrap_or_default()),
        generation: applied.generation,
        gc_threshold: applied.gc_threshold,
        descriptor: Arc::new(applied.descriptor(range_id)),
        next_replica_id: applied.next_replica_id,
        lease_floor: applied.lease_floor,
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotData = RangeSnapshot;
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> io::Result<(Option<LogId>, StoredMembership)> {
        Ok((self.applied.log_id, self.applied.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> io::Result<()>
    where
        Strm: futures_util::Stream<Item = io::Result<EntryResponder<TypeConfig>>>
            + Unpin
            + OptionalSend,
    {
        let mut batch = self.engine.batch();
        let mut next = self.applied.clone();
        let mut responders = Vec::new();
        let mut splits = Vec::new();
        while let Some((entry, responder)) = entries.try_next().await? {
            let log_id = entry.log_id();
            let mut applied = true;
            let mut split = None;
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(RaftCommand::Write {
                    writes,
                    stats,
                    term,
                }) => {
                    // Every replica makes the same decision from the log alone.
                    applied = log_id.leader_id.term == term;
                    if applied {
                        apply_writes(&mut batch, &mut next, &writes, &stats);
                    }
                }
                EntryPayload::Normal(RaftCommand::Gc {
                    writes,
                    stats,
                    threshold,
                    term,
                }) => {
                    // The same rule as a write, and the threshold with it.
                    applied = log_id.leader_id.term == term;
                    if applied {
                        apply_writes(&mut batch, &mut next, &writes, &stats);
                        next.gc_threshold = next.gc_threshold.max(threshold);
                    }
                }
                EntryPayload::Normal(RaftCommand::LeaseFloor { floor }) => {
                    next.lease_floor = next.lease_floor.max(floor);
                }
                EntryPayload::Normal(RaftCommand::Split {
                    split_key,
                    right_range_id,
                    term,
                    lease_floor,
                }) => {
                    let command = SplitCommand {
                        split_key,
                        right_range_id,
                        evaluated_term: term,
                        entry_term: log_id.leader_id.term,
                        lease_floor,
                    };
                    match apply_split_command(
                        &self.engine,
                        self.range_id,
                        self.replica_id,
                        &mut batch,
                        &mut next,
                        command,
                    )? {
                        SplitApply::Skipped => applied = false,
                        SplitApply::Applied { open, left, right } => {
                            splits.extend(open);
                            split = Some(Box::new((left, right)));
                        }
                    }
                }
                EntryPayload::Membership(membership) => {
                    let above = membership.nodes().map(|(&id, _)| id + 1).max();
                    next.next_replica_id = next.next_replica_id.max(above.unwrap_or(0));
                    next.membership = StoredMembership::new(Some(log_id), membership);
                    next.generation += 1;
                }
            }
            next.log_id = Some(log_id);
            if let Some(responder) = responder {
                responders.push((responder, CommandResult { applied, split }));
            }
        }
        batch.put_range_local(self.range_id, RangeLocalKind::AppliedState, &next.encode()?);
        // Unsynced: the log is durable, so a lost apply is replayed.
        self.engine.commit(batch, false).map_err(io_err)?;
        self.applied = next;
        self.applied_tx
            .send_replace(summary(self.range_id, &self.applied));
        for right in splits {
            if let Some(tx) = &self.splits {
                let _ = tx.send(SplitApplied {
                    left_range_id: self.range_id,
                    right,
                    replica_id: self.replica_id,
                });
            }
        }
        for (responder, result) in responders {
            responder.send(result);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.builder()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: RangeSnapshot,
    ) -> io::Result<()> {
        let applied = AppliedState::from_range_data(&snapshot)?;
        if applied.log_id != meta.last_log_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "snapshot data at {:?} does not match its meta {:?}",
                    applied.log_id, meta.last_log_id
                ),
            ));
        }
        let Some((start, end)) = applied.span.clone() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snapshot without a span",
            ));
        };
        let mut batch = self.engine.batch();
        // The old span may be wider (a split this replica never applied):
        // what lies outside the new one belongs to no replica here, since
        // no snapshot overlapping an initialized replica is installed
        // ([`crate::snapshot`]). An uninitialized replica's span is only
        // what it was created with, and may cover another range's data.
        if self.applied.log_id.is_some() {
            let (old_start, old_end) = self.span().clone();
            batch.clear_data_span(&old_start, &old_end);
        }
        batch.install_range_data(self.range_id, &start, &end, &snapshot);
        self.engine.commit(batch, true).map_err(io_err)?;
        self.applied = applied;
        self.applied_tx
            .send_replace(summary(self.range_id, &self.applied));
        *self.snapshot.lock() = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        // A snapshot from before a split covers the right-hand keys as they
        // were then: installed on a node that holds the right-hand range by
        // now, it would undo that range's writes (the receiver refuses it,
        // see `crate::snapshot`). So only one of the current span is sent.
        let current =
            self.snapshot.lock().clone().filter(|(_, snapshot)| {
                snapshot_span(snapshot).as_ref() == self.applied.span.as_ref()
            });
        match current {
            Some((meta, snapshot)) => Ok(Some(Snapshot { meta, snapshot })),
            // A state without a snapshot in memory: none built since this
            // replica started (snapshots are not persisted), a range new
            // from a split whose log starts purged, or a split since the
            // last one. Build one now, so a follower that needs one is
            // never refused.
            None if self.applied.log_id.is_some() => {
                self.builder().build_snapshot().await.map(Some)
            }
            None => Ok(None),
        }
    }
}

/// The keys a snapshot covers, from its applied state.
pub(crate) fn snapshot_span(snapshot: &RangeSnapshot) -> Option<(Vec<u8>, Vec<u8>)> {
    AppliedState::from_range_data(snapshot)
        .ok()
        .and_then(|applied| applied.span)
}

/// Builds a snapshot of a range from the engine, off the apply task.
pub struct SnapshotBuilder {
    engine: Engine,
    range_id: RangeId,
    span: (Vec<u8>, Vec<u8>),
    snapshot: Arc<Mutex<Option<(SnapshotMeta, RangeSnapshot)>>>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    type SnapshotData = RangeSnapshot;

    async fn build_snapshot(&mut self) -> io::Result<Snapshot> {
        // The span as of the data read, not as of this builder's creation:
        // a split may have applied in between.
        let fallback = self.span.clone();
        let data = self
            .engine
            .export_range_data_spanned(self.range_id, |local| {
                let applied = local
                    .iter()
                    .find(|(k, _)| *k == RangeLocalKind::AppliedState)
                    .map(|(_, bytes)| AppliedState::decode(bytes))
                    .transpose()
                    .map_err(|e| meridian_storage::StorageError::Corrupt {
                        what: "applied state",
                        detail: e.to_string(),
                    })?;
                Ok(applied.and_then(|a| a.span).unwrap_or(fallback))
            })
            .map_err(io_err)?;
        let applied = AppliedState::from_range_data(&data)?;
        let meta = SnapshotMeta {
            last_log_id: applied.log_id,
            last_membership: applied.membership,
        };
        *self.snapshot.lock() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field survives the record (postcard records have no field
    /// names: a field added in the wrong place would shift the others).
    #[test]
    fn an_applied_state_round_trips_and_garbage_is_refused() {
        let state = AppliedState {
            log_id: None,
            membership: StoredMembership::default(),
            stats: MvccStats {
                live_count: 3,
                ..MvccStats::default()
            },
            span: Some((b"a".to_vec(), b"z".to_vec())),
            generation: 4,
            gc_threshold: Timestamp::new(9, 1),
            next_replica_id: 7,
            lease_floor: Timestamp::new(11, 2),
        };
        let again = AppliedState::decode(&state.encode().unwrap()).unwrap();
        assert_eq!(again, state);
        assert!(AppliedState::decode(&[0xff]).is_err(), "garbage is refused");
    }
}
