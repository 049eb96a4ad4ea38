//! Multi-version concurrency control over the data column family.
//!
//! Every user key holds a newest-first list of versions and at most one
//! intent (see [`meridian_keys::mvcc`] for the key layout). Values:
//!
//! | record | value bytes |
//! |---|---|
//! | version with a value | `0x01` value |
//! | tombstone (deletion) | `0x02` |
//! | intent | `0x10` postcard(`IntentRecord { txn: TxnMeta, value: Option<bytes>, history }`) |
//!
//! An intent is a transaction's provisional write: its value lives in the
//! intent record itself, at the transaction's write timestamp. Committing it
//! ([`resolve_intent`] with `Committed`) deletes the intent and writes a
//! version at the commit timestamp, which may be later than the timestamp
//! the intent was written at; aborting deletes it; a push moves it forward.
//!
//! Reads ([`mvcc_get`], [`mvcc_scan`]) at timestamp `ts`:
//! 1. an intent of the reader's own transaction (same epoch) is read through;
//! 2. an intent of another transaction at or below the uncertainty limit is
//!    a conflict ([`StorageError::WriteIntent`]): the reader must wait for or
//!    push that transaction; an intent above the limit is invisible;
//! 3. the newest version at or below `ts` is the value, unless a version in
//!    `(ts, uncertainty_limit]` exists: then the reader cannot know whether
//!    that write happened before it began and gets
//!    [`StorageError::ReadWithinUncertainty`].
//!
//! Writes ([`mvcc_put`] and friends) at timestamp `ts` fail with
//! [`StorageError::WriteIntent`] on another transaction's intent and with
//! [`StorageError::WriteTooOld`] when a committed version at or above `ts`
//! exists. The transaction layer turns both into waiting, pushing or a retry
//! at a higher timestamp. [`gc`] removes versions no reader can see any more.

mod gc;
mod read;
mod resolve;
mod write;

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::{encode_intent_key, user_key_prefix_len, version_timestamp};
use meridian_kvapi::txn::is_ignored;
use meridian_kvapi::TxnMeta;
use serde::{Deserialize, Serialize};

pub use gc::{gc_key, gc_span, gc_span_bounded, GcProgress};
pub use read::{mvcc_get, mvcc_intent, mvcc_scan, ScanOptions, ScanResult};
pub use resolve::{resolve_intent, resolve_intent_span, IntentResolution, ResolutionStatus};
pub use write::{mvcc_conditional_put, mvcc_delete_range, mvcc_put};

use crate::cursor::Cursor;
use crate::error::{Result, StorageError};

const TAG_VALUE: u8 = 0x01;
const TAG_TOMBSTONE: u8 = 0x02;
const TAG_INTENT: u8 = 0x10;

/// A transaction's provisional write, stored at the key's intent position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentRecord {
    /// The writer; `txn.write_timestamp` is the intent's timestamp and
    /// `txn.sequence` the sequence number of `value`.
    pub txn: TxnMeta,
    /// The provisional value; `None` for a provisional deletion.
    pub value: Option<Vec<u8>>,
    /// The transaction's earlier writes of the key in this epoch, oldest
    /// first, by sequence number: what a rollback to a savepoint returns
    /// to.
    pub history: Vec<(u32, Option<Vec<u8>>)>,
}

impl IntentRecord {
    /// The provisional write that counts when the writes of `ignored`
    /// sequence numbers are rolled back: `Some(value)` (`None` inside for a
    /// deletion), or `None` when every write of the key was rolled back,
    /// so the transaction has written nothing there.
    pub fn effective_value(&self, ignored: &[(u32, u32)]) -> Option<Option<&[u8]>> {
        if !is_ignored(ignored, self.txn.sequence) {
            return Some(self.value.as_deref());
        }
        self.history
            .iter()
            .rev()
            .find(|(sequence, _)| !is_ignored(ignored, *sequence))
            .map(|(_, value)| value.as_deref())
    }
}

/// A decoded data-CF value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Value(Vec<u8>),
    Tombstone,
    Intent(Box<IntentRecord>),
}

pub(crate) fn encode_version_value(value: Option<&[u8]>) -> Vec<u8> {
    match value {
        Some(v) => {
            let mut buf = Vec::with_capacity(1 + v.len());
            buf.push(TAG_VALUE);
            buf.extend_from_slice(v);
            buf
        }
        None => vec![TAG_TOMBSTONE],
    }
}

pub(crate) fn encode_intent_value(intent: &IntentRecord) -> Vec<u8> {
    let mut buf = vec![TAG_INTENT];
    postcard::to_io(intent, &mut buf).expect("writing to a Vec cannot fail");
    buf
}

/// Decodes a stored value; `at_intent_key` says which kinds are legal there.
pub(crate) fn decode_record(bytes: &[u8], at_intent_key: bool) -> Result<Record> {
    let (&tag, rest) = bytes
        .split_first()
        .ok_or_else(|| StorageError::corrupt("mvcc value", "empty value"))?;
    match (tag, at_intent_key) {
        (TAG_VALUE, false) => Ok(Record::Value(rest.to_vec())),
        (TAG_TOMBSTONE, false) if rest.is_empty() => Ok(Record::Tombstone),
        (TAG_INTENT, true) => postcard::from_bytes(rest)
            .map(|i| Record::Intent(Box::new(i)))
            .map_err(|e| StorageError::corrupt("intent", e)),
        _ => Err(StorageError::corrupt(
            "mvcc value",
            format!("tag {tag:#04x} (intent position: {at_intent_key})"),
        )),
    }
}

/// The version of a value a read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedValue {
    pub value: Vec<u8>,
    /// The version's timestamp (the intent's, when reading one's own write).
    pub timestamp: Timestamp,
}

/// How a read treats intents and uncertainty.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions<'a> {
    /// The reading transaction: its own intents are read through.
    pub txn: Option<&'a TxnMeta>,
    /// Versions in `(ts, uncertainty_limit]` are uncertain. `None` or a
    /// limit at or below the read timestamp disables the check.
    pub uncertainty_limit: Option<Timestamp>,
}

impl ReadOptions<'_> {
    fn limit(&self, ts: Timestamp) -> Timestamp {
        self.uncertainty_limit.map_or(ts, |l| l.max(ts))
    }
}

/// The first records of a user key: what writers need to decide.
#[derive(Debug, Default)]
pub(crate) struct KeyHead {
    /// The intent and the size of its stored record (key + value bytes).
    pub intent: Option<(IntentRecord, usize, usize)>,
    /// The newest version: timestamp, whether it is a value, record size.
    pub newest: Option<NewestVersion>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct NewestVersion {
    pub timestamp: Timestamp,
    pub is_value: bool,
    pub key_len: usize,
    pub val_len: usize,
}

impl KeyHead {
    /// Size of the newest record when it is a live value (for liveness stats).
    pub fn live_size(&self) -> Option<usize> {
        match (&self.intent, &self.newest) {
            (Some((intent, k, v)), _) => intent.value.is_some().then_some(k + v),
            (None, Some(n)) => n.is_value.then_some(n.key_len + n.val_len),
            (None, None) => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.intent.is_none() && self.newest.is_none()
    }
}

/// Reads the intent and newest version of `key` through `cursor`.
pub(crate) fn read_key_head(cursor: &mut dyn Cursor, key: &[u8]) -> Result<KeyHead> {
    let intent_key = encode_intent_key(key);
    cursor.seek(&intent_key);
    let mut head = KeyHead::default();
    while cursor.valid() {
        let raw = cursor.key();
        if !raw.starts_with(&intent_key) {
            break;
        }
        let ts = version_timestamp(raw, intent_key.len())
            .map_err(|e| StorageError::corrupt("mvcc key", e))?;
        let value = cursor.value();
        match (ts, decode_record(value, ts.is_none())?) {
            (None, Record::Intent(intent)) => {
                head.intent = Some((*intent, raw.len(), value.len()));
                cursor.next();
            }
            (Some(timestamp), record) => {
                head.newest = Some(NewestVersion {
                    timestamp,
                    is_value: matches!(record, Record::Value(_)),
                    key_len: raw.len(),
                    val_len: value.len(),
                });
                break;
            }
            (None, _) => return Err(StorageError::corrupt("mvcc", "non-intent at intent key")),
        }
    }
    cursor.status()?;
    Ok(head)
}

/// Length of the user-key prefix of a raw key, as a storage error.
pub(crate) fn prefix_len(raw: &[u8]) -> Result<usize> {
    user_key_prefix_len(raw).map_err(|e| StorageError::corrupt("mvcc key", e))
}

/// Refuses keys and values over the documented limits.
pub(crate) fn check_sizes(key: &[u8], value: Option<&[u8]>) -> Result<()> {
    if key.len() > meridian_keys::MAX_KEY_BYTES {
        return Err(StorageError::KeyTooLarge {
            len: key.len(),
            max: meridian_keys::MAX_KEY_BYTES,
        });
    }
    if let Some(v) = value.filter(|v| v.len() > meridian_keys::MAX_VALUE_BYTES) {
        return Err(StorageError::ValueTooLarge {
            len: v.len(),
            max: meridian_keys::MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
