//! A range's Raft log and vote on the node's shared RocksDB.
//!
//! Entries are postcard-encoded under `raft_log / range_id / index`; the
//! vote, committed log id and last purged log id are `raft_state` records.
//! Appends are written unsynced and acknowledged through the node's
//! [`Syncer`] once the WAL is fsynced; votes are written synced before
//! `save_vote` returns, as Raft requires.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};

use meridian_kvapi::RangeId;
use meridian_storage::raft_log::RaftStateKind;
use meridian_storage::Engine;
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;

use tokio::sync::watch;

use super::state_machine::AppliedSummary;
use super::syncer::Syncer;
use super::types::{Entry, LogId, TypeConfig, Vote};

/// The log store of one range. Cheap to clone: openraft's log reader is a
/// clone.
#[derive(Clone)]
pub struct LogStore {
    engine: Engine,
    range_id: RangeId,
    syncer: Syncer,
    /// The state machine's applied index, where the range has one: a purge
    /// never deletes an entry above it (see [`LogStore::with_applied`]).
    applied: Option<watch::Receiver<AppliedSummary>>,
}

pub(crate) fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(io_err)
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Starts the log of a range created by a split as already purged up to
/// `log_id`: the range's first state comes from its parent's data, not from
/// log entries, so a replica that lacks it must be sent a snapshot.
pub(crate) fn start_purged(
    batch: &mut meridian_storage::Batch,
    range_id: RangeId,
    log_id: &LogId,
) -> io::Result<()> {
    batch.put_raft_state(range_id, RaftStateKind::LastPurged, &encode(log_id)?);
    Ok(())
}

impl LogStore {
    pub fn new(engine: Engine, range_id: RangeId, syncer: Syncer) -> Self {
        LogStore {
            engine,
            range_id,
            syncer,
            applied: None,
        }
    }

    /// Bounds purges by the state machine's applied index. openraft may ask
    /// to purge entries that its state-machine worker has queued but not
    /// applied yet (openraft issue 2116: the apply then finds them gone and
    /// the group panics). Openraft allows a purge to delete lazily, so the
    /// store deletes, and records as purged, only up to what was applied;
    /// the rest go with a later purge. Safe by construction, whatever
    /// `max_in_snapshot_log_to_keep` says.
    pub fn with_applied(mut self, applied: watch::Receiver<AppliedSummary>) -> Self {
        self.applied = Some(applied);
        self
    }

    fn state<T: DeserializeOwned>(&self, kind: RaftStateKind) -> io::Result<Option<T>> {
        match self
            .engine
            .raft_state(self.range_id, kind)
            .map_err(io_err)?
        {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    fn entries(&self, lo: u64, hi: u64) -> io::Result<Vec<Entry>> {
        let raw = self
            .engine
            .log_entries(self.range_id, lo, hi)
            .map_err(io_err)?;
        raw.iter().map(|(_, bytes)| decode(bytes)).collect()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> io::Result<Vec<Entry>> {
        let lo = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.entries(lo, hi)
    }

    async fn read_vote(&mut self) -> io::Result<Option<Vote>> {
        self.state(RaftStateKind::Vote)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> io::Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId> = self.state(RaftStateKind::LastPurged)?;
        let last_log_id = match self.engine.log_bounds(self.range_id).map_err(io_err)? {
            Some((_, last)) => self.entries(last, last + 1)?.pop().map(|e| e.log_id()),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last_log_id.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> io::Result<()> {
        let mut batch = self.engine.batch();
        batch.put_raft_state(self.range_id, RaftStateKind::Vote, &encode(vote)?);
        self.engine.commit(batch, true).map_err(io_err)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> io::Result<()> {
        // Unsynced: losing it only makes a restarted replica wait for the
        // leader to tell it again.
        let mut batch = self.engine.batch();
        batch.put_raft_state(
            self.range_id,
            RaftStateKind::Committed,
            &encode(&committed)?,
        );
        self.engine.commit(batch, false).map_err(io_err)
    }

    async fn read_committed(&mut self) -> io::Result<Option<LogId>> {
        Ok(self
            .state::<Option<LogId>>(RaftStateKind::Committed)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.engine.batch();
        for entry in entries {
            batch.put_log_entry(self.range_id, entry.index(), &encode(&entry)?);
        }
        self.engine.commit(batch, false).map_err(io_err)?;
        self.syncer.after_sync(callback);
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> io::Result<()> {
        let from = last_log_id.map_or(0, |id| id.index() + 1);
        let mut batch = self.engine.batch();
        batch.truncate_log_from(self.range_id, from);
        self.engine.commit(batch, false).map_err(io_err)
    }

    async fn purge(&mut self, log_id: LogId) -> io::Result<()> {
        let applied = self.applied.as_ref().map(|a| a.borrow().index);
        // What may go now: everything asked, or only what was applied.
        let purged = match applied {
            None => Some(log_id),
            Some(index) if index >= log_id.index() => Some(log_id),
            Some(0) => None,
            Some(index) => self
                .entries(index, index + 1)?
                .first()
                .map(|entry| entry.log_id()),
        };
        let Some(purged) = purged else {
            return Ok(());
        };
        // The record names what was deleted, not what was asked: at a
        // restart openraft refuses a store whose purged id is above its
        // applied index, even with the entries still there.
        let mut batch = self.engine.batch();
        batch.purge_log_upto(self.range_id, purged.index());
        batch.put_raft_state(self.range_id, RaftStateKind::LastPurged, &encode(&purged)?);
        self.engine.commit(batch, false).map_err(io_err)
    }
}
