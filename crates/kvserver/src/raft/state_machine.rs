//! A range's replicated state machine: MVCC data in the node's RocksDB.
//!
//! Applying a log entry adds its [`WriteSet`](meridian_storage::WriteSet) to
//! a batch together with the new [`AppliedState`] (applied log id,
//! membership, MVCC stats) and commits them at once, so a crash never
//! separates data from the index it reflects. Entries are replayed from the
//! log after a crash; applying is idempotent because the applied index moves
//! with the data.
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
use meridian_storage::{Engine, MvccStats, RangeData};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

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

/// The state machine of one range.
pub struct StateMachine {
    engine: Engine,
    range_id: u64,
    /// The range's key span, `[start, end)`: what a snapshot carries.
    span: (Vec<u8>, Vec<u8>),
    applied: AppliedState,
    /// The last snapshot built or installed.
    snapshot: Arc<Mutex<Option<(SnapshotMeta, RangeSnapshot)>>>,
    /// Publishes the applied index and stats to the replica.
    applied_tx: watch::Sender<AppliedSummary>,
}

/// What the replica needs to know of the state machine, without a lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppliedSummary {
    pub index: u64,
    pub stats: MvccStats,
}

impl StateMachine {
    /// Opens the state machine of `range_id` over `[start, end)`, resuming
    /// from what the engine holds.
    pub fn open(engine: Engine, range_id: u64, span: (Vec<u8>, Vec<u8>)) -> io::Result<Self> {
        let applied = match engine
            .range_local(range_id, RangeLocalKind::AppliedState)
            .map_err(io_err)?
        {
            Some(bytes) => AppliedState::decode(&bytes)?,
            None => AppliedState::default(),
        };
        let (applied_tx, _) = watch::channel(summary(&applied));
        Ok(StateMachine {
            engine,
            range_id,
            span,
            applied,
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
            span: self.span.clone(),
            snapshot: self.snapshot.clone(),
        }
    }
}

fn summary(applied: &AppliedState) -> AppliedSummary {
    AppliedSummary {
        index: applied.log_id.as_ref().map_or(0, |id| id.index()),
        stats: applied.stats,
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
                EntryPayload::Membership(membership) => {
                    next.membership = StoredMembership::new(Some(log_id), membership);
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
        let mut batch = self.engine.batch();
        batch.install_range_data(self.range_id, &self.span.0, &self.span.1, &snapshot);
        self.engine.commit(batch, true).map_err(io_err)?;
        self.applied = applied;
        self.applied_tx.send_replace(summary(&self.applied));
        *self.snapshot.lock() = Some((meta.clone(), snapshot));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> io::Result<Option<Snapshot>> {
        Ok(self
            .snapshot
            .lock()
            .clone()
            .map(|(meta, snapshot)| Snapshot { meta, snapshot }))
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
        let data = self
            .engine
            .export_range_data(self.range_id, &self.span.0, &self.span.1)
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
