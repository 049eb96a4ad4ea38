//! Transaction identity and the metadata an intent carries.

use std::fmt;

use meridian_hlc::Timestamp;
use serde::{Deserialize, Serialize};

/// A transaction's identity: 128 random bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId(pub u128);

impl TxnId {
    pub fn random() -> Self {
        TxnId(rand::random())
    }
}

impl fmt::Display for TxnId {
    /// The first 8 hex digits, as logs print it; enough to tell transactions apart.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", (self.0 >> 96) as u32)
    }
}

impl fmt::Debug for TxnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// What an intent records about its transaction: enough for a reader or
/// writer that meets the intent to find the transaction record (`anchor_key`)
/// and to decide who waits or pushes (`priority`, timestamps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMeta {
    pub id: TxnId,
    /// The key whose range holds the transaction record.
    pub anchor_key: Vec<u8>,
    /// Incremented on every restart; intents of older epochs are ignored by
    /// the transaction's own reads and dropped at commit.
    pub epoch: u32,
    /// The timestamp the transaction currently writes at.
    pub write_timestamp: Timestamp,
    /// The timestamp the transaction started at; never changes.
    pub min_timestamp: Timestamp,
    pub priority: u32,
    /// Sequence number of the write within the epoch: every write batch
    /// takes the next one, and its intents carry it.
    pub sequence: u32,
    /// Sequence numbers whose writes were rolled back (to a savepoint):
    /// inclusive ranges, ascending and disjoint. A read of the
    /// transaction's own intent, and the intent's resolution at commit,
    /// pass over the writes they name to the last one they do not.
    pub ignored_seqs: Vec<(u32, u32)>,
}

impl TxnMeta {
    /// Metadata for a new transaction anchored at `anchor_key` starting at `ts`.
    pub fn new(anchor_key: Vec<u8>, ts: Timestamp) -> Self {
        TxnMeta {
            id: TxnId::random(),
            anchor_key,
            epoch: 0,
            write_timestamp: ts,
            min_timestamp: ts,
            priority: 1,
            sequence: 0,
            ignored_seqs: Vec::new(),
        }
    }

    /// Whether the write of sequence number `sequence` was rolled back.
    pub fn is_ignored(&self, sequence: u32) -> bool {
        is_ignored(&self.ignored_seqs, sequence)
    }

    /// Rolls back every write after sequence number `savepoint`, up to the
    /// current one.
    pub fn ignore_after(&mut self, savepoint: u32) {
        if self.sequence <= savepoint {
            return;
        }
        let range = (savepoint + 1, self.sequence);
        // A range that covers earlier ones replaces them.
        self.ignored_seqs.retain(|&(start, _)| start < range.0);
        self.ignored_seqs.push(range);
    }
}

/// Whether `sequence` lies in one of `ignored` (as [`TxnMeta::ignored_seqs`]).
pub fn is_ignored(ignored: &[(u32, u32)], sequence: u32) -> bool {
    ignored
        .iter()
        .any(|&(start, end)| (start..=end).contains(&sequence))
}

/// A transaction record: kept at the range of the transaction's anchor key,
/// created lazily (the first heartbeat, or the commit), removed once every
/// intent it names is resolved. The one place that says whether the
/// transaction committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    pub meta: TxnMeta,
    pub status: TxnStatus,
    /// The coordinator's last heartbeat: a PENDING record not heartbeated
    /// for the documented expiry counts as abandoned.
    pub last_heartbeat: Timestamp,
    /// The spans the transaction wrote intents in, for resolution after
    /// the outcome is known.
    pub lock_spans: Vec<(Vec<u8>, Vec<u8>)>,
    /// For a STAGING record: the writes still in flight (key, sequence); the
    /// transaction committed if and only if every one of them is found.
    pub in_flight_writes: Vec<(Vec<u8>, u32)>,
}

/// How long a PENDING transaction's record lives without a heartbeat
/// before another transaction may treat it as abandoned and abort it (its
/// coordinator heartbeats every second; CockroachDB allows five missed).
/// For a transaction without a record, its first timestamp counts as its
/// last heartbeat.
pub const TXN_HEARTBEAT_EXPIRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What a transaction that met another's intent asks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushKind {
    /// Abort it (the pusher writes where the pushee holds an intent).
    Abort,
    /// Move its commit timestamp above this (the pusher reads there).
    Timestamp(Timestamp),
}

/// The state of a transaction record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    Pending,
    /// Parallel commit in flight: committed once all its writes are found.
    Staging,
    Committed,
    Aborted,
}
