//! Raft log and hard state of each range, in their own column families.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `raft_log` | `range_id` (8 bytes BE) `index` (8 bytes BE) | one entry, opaque here |
//! | `raft_state` | `range_id` (8 bytes BE) [`RaftStateKind`] (1 byte) | opaque (vote, committed, purged) |
//!
//! Big-endian ids keep one range's entries contiguous and in index order,
//! so reading a slice of the log is one bounded iteration and purging a
//! prefix is one range deletion. The replication layer encodes entries; this
//! module only stores bytes, in the caller's batch, so a log append and the
//! vote it depends on land atomically.

use crate::engine::{Batch, Engine, CF_RAFT_LOG, CF_RAFT_STATE};
use crate::error::Result;

/// Per-range Raft records other than log entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RaftStateKind {
    /// The vote (term and candidate) this replica cast last.
    Vote = 0x01,
    /// The highest log index known committed.
    Committed = 0x02,
    /// The last log id purged from the front of the log.
    LastPurged = 0x03,
}

fn log_key(range_id: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&range_id.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn state_key(range_id: u64, kind: RaftStateKind) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[..8].copy_from_slice(&range_id.to_be_bytes());
    key[8] = kind as u8;
    key
}

fn index_of(key: &[u8]) -> u64 {
    let mut index = [0u8; 8];
    index.copy_from_slice(&key[8..16]);
    u64::from_be_bytes(index)
}

impl Batch {
    /// Appends (or overwrites) log entry `index` of `range_id`.
    pub fn put_log_entry(&mut self, range_id: u64, index: u64, entry: &[u8]) {
        self.put_cf(CF_RAFT_LOG, &log_key(range_id, index), entry);
    }

    /// Deletes log entries of `range_id` with index `>= from` (a conflicting
    /// suffix the leader overwrote).
    pub fn truncate_log_from(&mut self, range_id: u64, from: u64) {
        let end = log_key(range_id, u64::MAX);
        self.delete_range_cf(CF_RAFT_LOG, &log_key(range_id, from), &end);
        self.delete_cf(CF_RAFT_LOG, &end);
    }

    /// Deletes log entries of `range_id` with index `<= upto` (compacted
    /// into the state machine).
    pub fn purge_log_upto(&mut self, range_id: u64, upto: u64) {
        match upto.checked_add(1) {
            Some(end) => {
                self.delete_range_cf(CF_RAFT_LOG, &log_key(range_id, 0), &log_key(range_id, end))
            }
            None => self.truncate_log_from(range_id, 0),
        }
    }

    pub fn put_raft_state(&mut self, range_id: u64, kind: RaftStateKind, value: &[u8]) {
        self.put_cf(CF_RAFT_STATE, &state_key(range_id, kind), value);
    }

    /// Removes every log entry and Raft state record of `range_id`.
    pub fn clear_raft(&mut self, range_id: u64) {
        self.truncate_log_from(range_id, 0);
        let start = state_key(range_id, RaftStateKind::Vote);
        let mut end = start;
        end[8] = 0xff;
        self.delete_range_cf(CF_RAFT_STATE, &start, &end);
    }
}

impl Engine {
    /// Log entries of `range_id` with index in `[lo, hi)`, in order.
    pub fn log_entries(&self, range_id: u64, lo: u64, hi: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        if lo >= hi {
            return Ok(Vec::new());
        }
        let lower = log_key(range_id, lo);
        let upper = log_key(range_id, hi);
        let mut cursor = self.cursor_cf(CF_RAFT_LOG, Some(&lower), Some(&upper));
        cursor.seek(&lower);
        let mut entries = Vec::new();
        use crate::cursor::Cursor;
        while cursor.valid() {
            entries.push((index_of(cursor.key()), cursor.value().to_vec()));
            cursor.next();
        }
        cursor.status()?;
        Ok(entries)
    }

    /// The first and last log indexes of `range_id`, if it has entries.
    pub fn log_bounds(&self, range_id: u64) -> Result<Option<(u64, u64)>> {
        use crate::cursor::Cursor;
        let lower = log_key(range_id, 0);
        let end = log_key(range_id.wrapping_add(1), 0);
        let upper = if range_id == u64::MAX {
            None
        } else {
            Some(&end[..])
        };
        let mut cursor = self.cursor_cf(CF_RAFT_LOG, Some(&lower), upper);
        cursor.seek(&lower);
        if !cursor.valid() {
            cursor.status()?;
            return Ok(None);
        }
        let first = index_of(cursor.key());
        cursor.seek_for_prev(&log_key(range_id, u64::MAX));
        cursor.status()?;
        let last = if cursor.valid() {
            index_of(cursor.key())
        } else {
            first
        };
        Ok(Some((first, last)))
    }

    pub fn raft_state(&self, range_id: u64, kind: RaftStateKind) -> Result<Option<Vec<u8>>> {
        self.get_cf(CF_RAFT_STATE, &state_key(range_id, kind))
    }
}
