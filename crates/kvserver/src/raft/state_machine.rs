//! A range's replicated state machine: MVCC data in the node's RocksDB.
//!
//! Applying a log entry adds its [`WriteSet`](meridian_storage::WriteSet) to
//! a batch together with the new [`AppliedState`] (applied log id,
//! membership, MVCC stats) and commits them at once, so a crash never
//! separates data from the index it reflects. Entries are replayed from the
//! log after a crash; applying is idempotent because the applied index moves
//! with the data.
//!
//! A split is a command like any other: every replica applies it at the
//! same log index, shrinking its span, counting the right-hand side's
//! statistics from the data as of that index, and writing the right-hand
//! range's first records in the same batch; the store then opens the new
//! replica and initializes its Raft group ([`SplitApplied`]).
//!
//! Snapshots are the range's whole state read from one RocksDB snapshot
//! ([`meridian_storage::RangeData`]); installing one replaces the range's
//! data and range-local records in one synced batch. They are held in
//! memory while sent, which bounds the range size this supports (see the
//! issue notes: streaming snapshots come with size-based splits).

use std::io;
use std::sync::Arc;

use futures_util::TryStreamExt;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{RangeDescriptor, ReplicaDescriptor};
use meridian_storage::{compute_stats, Engine, MvccStats, RangeData};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::replica_record::ReplicaRecord;

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
    /// [`RangeDescriptor::generation`]).
    pub generation: u64,
}

impl AppliedState {
    fn decode(bytes: &[u8]) -> io::Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn encode(&self) -> io::Result<Vec<u8>> {
        postcard::to_stdvec(self).map_err(io_err)
    }

    fn from_range_data(data: &RangeData) -> io::Result<Self> {
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

/// Tells the store that a split created the right-hand range here.
#[derive(Debug, Clone)]
pub struct SplitApplied {
    pub left_range_id: u64,
    pub right: RangeDescriptor,
}

/// The state machine of one range.
pub struct StateMachine {
    engine: Engine,
    range_id: u64,
    /// The node this replica lives on.
    node_id: u64,
    /// `applied.span` is always set: see [`StateMachine::open`].
    applied: AppliedState,
    splits: Option<mpsc::UnboundedSender<SplitApplied>>,
    /// The last snapshot built or installed.
    snapshot: Arc<Mutex<Option<(SnapshotMeta, RangeSnapshot)>>>,
    /// Publishes the applied index and stats to the replica.
    applied_tx: watch::Sender<AppliedSummary>,
}

/// What the replica needs to know of the state machine, without a lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppliedSummary {
    pub index: u64,
    pub stats: MvccStats,
    pub span: Arc<(Vec<u8>, Vec<u8>)>,
    pub generation: u64,
}

impl StateMachine {
    /// Opens the state machine of `range_id`, resuming from what the
    /// engine holds; `span` is the range's span if the engine has none yet.
    /// Splits applied here are reported on `splits`.
    pub fn open(
        engine: Engine,
        node_id: u64,
        range_id: u64,
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
        let (applied_tx, _) = watch::channel(summary(&applied));
        Ok(StateMachine {
            engine,
            range_id,
            node_id,
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

fn summary(applied: &AppliedState) -> AppliedSummary {
    AppliedSummary {
        index: applied.log_id.as_ref().map_or(0, |id| id.index()),
        stats: applied.stats,
        span: Arc::new(applied.span.clone().unwrap_or_default()),
        generation: applied.generation,
    }
}

/// Applies a split to `next` (the left-hand side) and writes the
/// right-hand range's first records into `batch`, unless this node already
/// has that range (it arrived by snapshot first). Returns the right-hand
/// descriptor when the store must open it.
fn apply_split(
    engine: &Engine,
    node_id: u64,
    batch: &mut meridian_storage::Batch,
    next: &mut AppliedState,
    split_key: Vec<u8>,
    right_range_id: u64,
) -> io::Result<Option<RangeDescriptor>> {
    let (start, end) = next.span.clone().expect("set at open");
    let right_stats = compute_stats(&*batch, &split_key, &end).map_err(io_err)?;
    next.stats.subtract(&right_stats);
    next.generation += 1;
    next.span = Some((start, split_key.clone()));
    if crate::replica_record::ReplicaRecord::exists(engine, right_range_id).map_err(io_err)? {
        return Ok(None);
    }
    let membership = next.membership.membership();
    let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
    if !voters.contains(&node_id) {
        // A non-voter here: the new range has only the voters, so this
        // node keeps no copy of its keys.
        batch.clear_data_span(&split_key, &end);
        return Ok(None);
    }
    let nodes: std::collections::BTreeMap<u64, super::types::ReplicaNode> = membership
        .nodes()
        .filter(|(id, _)| voters.contains(id))
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    let replicas = voters
        .iter()
        .map(|&n| ReplicaDescriptor::voter(n))
        .collect();
    let right = RangeDescriptor {
        range_id: right_range_id,
        start_key: split_key.clone(),
        end_key: end.clone(),
        replicas,
        generation: next.generation,
    };
    // The new group starts initialized, at the same log id on every
    // replica, with its log purged up to there: its data is what the
    // parent held, so a replica added later gets it by snapshot, never by
    // replaying a log that does not contain it.
    let first_log_id = LogId::new(
        <openraft::alias::LeaderIdOf<TypeConfig> as openraft::vote::RaftLeaderIdExt>::new_committed(
            0, 0,
        ),
        0,
    );
    let right_membership =
        openraft::Membership::new(vec![voters.clone()], nodes).map_err(io_err)?;
    let right_state = AppliedState {
        log_id: Some(first_log_id),
        membership: StoredMembership::new(Some(first_log_id), right_membership),
        stats: right_stats,
        span: Some((split_key, end)),
        generation: next.generation,
    };
    batch.put_range_local(
        right_range_id,
        RangeLocalKind::AppliedState,
        &right_state.encode()?,
    );
    super::log_store::start_purged(batch, right_range_id, &first_log_id)?;
    ReplicaRecord {
        descriptor: right.clone(),
    }
    .put(batch);
    Ok(Some(right))
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
                        batch.apply_write_set(&writes);
                        next.stats.add(&stats);
                    }
                }
                EntryPayload::Normal(RaftCommand::Split {
                    split_key,
                    right_range_id,
                    term,
                }) => {
                    let (start, end) = next.span.as_ref().expect("set at open");
                    applied = log_id.leader_id.term == term
                        && start.as_slice() < split_key.as_slice()
                        && split_key.as_slice() < end.as_slice()
                        && right_range_id != self.range_id;
                    if applied {
                        if let Some(right) = apply_split(
                            &self.engine,
                            self.node_id,
                            &mut batch,
                            &mut next,
                            split_key,
                            right_range_id,
                        )? {
                            splits.push(right);
                        }
                    }
                }
                EntryPayload::Membership(membership) => {
                    next.membership = StoredMembership::new(Some(log_id), membership);
                    next.generation += 1;
                }
            }
            next.log_id = Some(log_id);
            if let Some(responder) = responder {
                responders.push((responder, applied));
            }
        }
        batch.put_range_local(self.range_id, RangeLocalKind::AppliedState, &next.encode()?);
        // Unsynced: the log is durable, so a lost apply is replayed.
        self.engine.commit(batch, false).map_err(io_err)?;
        self.applied = next;
        self.applied_tx.send_replace(summary(&self.applied));
        for right in splits {
            if let Some(tx) = &self.splits {
                let _ = tx.send(SplitApplied {
                    left_range_id: self.range_id,
                    right,
                });
            }
        }
        for (responder, applied) in responders {
            responder.send(CommandResult { applied });
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
        // what lies outside the new one belongs to no replica here.
        let (old_start, old_end) = self.span().clone();
        batch.clear_data_span(&old_start, &old_end);
        batch.install_range_data(self.range_id, &start, &end, &snapshot);
        self.engine.commit(batch, true).map_err(io_err)?;
        self.applied = applied;
        self.applied_tx.send_replace(summary(&self.applied));
        *self.snapshot.lock() = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        let current = self.snapshot.lock().clone();
        match current {
            Some((meta, snapshot)) => Ok(Some(Snapshot { meta, snapshot })),
            // A state without a snapshot in memory: none built since this
            // replica started (snapshots are not persisted), or a range new
            // from a split whose log starts purged. Build one now, so a
            // follower that needs one is never refused.
            None if self.applied.log_id.is_some() => {
                self.builder().build_snapshot().await.map(Some)
            }
            None => Ok(None),
        }
    }
}

/// Builds a snapshot of a range from the engine, off the apply task.
pub struct SnapshotBuilder {
    engine: Engine,
    range_id: u64,
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
