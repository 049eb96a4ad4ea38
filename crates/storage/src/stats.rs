//! MVCC statistics of a span, kept up to date by every MVCC write.
//!
//! Writers pass a `&mut MvccStats` and add the delta their change causes;
//! the replica stores the sum per range next to its applied index, so split
//! decisions read one record instead of scanning. [`compute_stats`] recounts
//! a span from scratch; tests check the two agree.

use serde::{Deserialize, Serialize};

use meridian_keys::mvcc::{encode_scan_start, user_key_prefix_len, version_timestamp};

use crate::cursor::Reader;
use crate::error::{Result, StorageError};
use crate::mvcc::{decode_record, Record};

/// Counters of one span. Sizes are of the raw RocksDB records (key and value
/// as stored), so `total_bytes` is what the span occupies before compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvccStats {
    /// User keys whose newest record (intent, else newest version) is a value.
    pub live_count: i64,
    /// Bytes of those newest records.
    pub live_bytes: i64,
    /// User keys with at least one record.
    pub key_count: i64,
    /// Versions (values and tombstones), not counting intents.
    pub version_count: i64,
    pub intent_count: i64,
    /// Bytes of all record keys.
    pub key_bytes: i64,
    /// Bytes of all record values.
    pub val_bytes: i64,
}

impl MvccStats {
    pub fn total_bytes(&self) -> i64 {
        self.key_bytes + self.val_bytes
    }

    pub fn add(&mut self, other: &MvccStats) {
        self.live_count += other.live_count;
        self.live_bytes += other.live_bytes;
        self.key_count += other.key_count;
        self.version_count += other.version_count;
        self.intent_count += other.intent_count;
        self.key_bytes += other.key_bytes;
        self.val_bytes += other.val_bytes;
    }

    pub fn subtract(&mut self, other: &MvccStats) {
        self.live_count -= other.live_count;
        self.live_bytes -= other.live_bytes;
        self.key_count -= other.key_count;
        self.version_count -= other.version_count;
        self.intent_count -= other.intent_count;
        self.key_bytes -= other.key_bytes;
        self.val_bytes -= other.val_bytes;
    }

    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("stats serialize")
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        postcard::from_bytes(bytes).map_err(|e| StorageError::corrupt("mvcc stats", e))
    }

    /// Accounts for a record of `key_len + val_len` bytes appearing
    /// (`sign = 1`) or disappearing (`sign = -1`).
    pub(crate) fn record(&mut self, sign: i64, key_len: usize, val_len: usize, is_intent: bool) {
        self.key_bytes += sign * key_len as i64;
        self.val_bytes += sign * val_len as i64;
        if is_intent {
            self.intent_count += sign;
        } else {
            self.version_count += sign;
        }
    }

    /// Accounts for the newest record of a key changing: `before` and
    /// `after` are the sizes of the newest record when it is a live value.
    pub(crate) fn liveness(&mut self, before: Option<usize>, after: Option<usize>) {
        if let Some(bytes) = before {
            self.live_count -= 1;
            self.live_bytes -= bytes as i64;
        }
        if let Some(bytes) = after {
            self.live_count += 1;
            self.live_bytes += bytes as i64;
        }
    }
}

/// Recounts the statistics of user keys in `[start, end)` by scanning them.
pub fn compute_stats(reader: &dyn Reader, start: &[u8], end: &[u8]) -> Result<MvccStats> {
    let lower = encode_scan_start(start);
    let upper = encode_scan_start(end);
    let mut cursor = reader.cursor(Some(&lower), Some(&upper));
    cursor.seek(&lower);
    let mut stats = MvccStats::default();
    let mut current_prefix: Option<Vec<u8>> = None;
    while cursor.valid() {
        let raw = cursor.key();
        let prefix_len =
            user_key_prefix_len(raw).map_err(|e| StorageError::corrupt("mvcc key", e))?;
        let ts =
            version_timestamp(raw, prefix_len).map_err(|e| StorageError::corrupt("mvcc key", e))?;
        let record = decode_record(cursor.value(), ts.is_none())?;
        let newest = current_prefix.as_deref() != Some(&raw[..prefix_len]);
        if newest {
            current_prefix = Some(raw[..prefix_len].to_vec());
            stats.key_count += 1;
        }
        let size = raw.len() + cursor.value().len();
        stats.record(1, raw.len(), cursor.value().len(), ts.is_none());
        if newest && record.is_live() {
            stats.liveness(None, Some(size));
        }
        cursor.next();
    }
    cursor.status()?;
    Ok(stats)
}

impl Record {
    pub(crate) fn is_live(&self) -> bool {
        match self {
            Record::Value(_) => true,
            Record::Tombstone => false,
            Record::Intent(intent) => intent.value.is_some(),
        }
    }
}

/// The user key that splits `[start, end)` into two halves of about equal
/// size (bytes of all records, versions included), or `None` when the span
/// holds fewer than two user keys. The key returned is always greater than
/// the span's first user key, so both halves are non-empty.
pub fn find_split_key(reader: &dyn Reader, start: &[u8], end: &[u8]) -> Result<Option<Vec<u8>>> {
    let total = {
        let stats = compute_stats(reader, start, end)?;
        stats.key_bytes + stats.val_bytes
    };
    let lower = encode_scan_start(start);
    let upper = encode_scan_start(end);
    let mut cursor = reader.cursor(Some(&lower), Some(&upper));
    cursor.seek(&lower);
    let mut seen: i64 = 0;
    let mut first_prefix: Option<Vec<u8>> = None;
    let mut current_prefix: Vec<u8> = Vec::new();
    while cursor.valid() {
        let raw = cursor.key();
        let prefix_len =
            user_key_prefix_len(raw).map_err(|e| StorageError::corrupt("mvcc key", e))?;
        if raw[..prefix_len] != current_prefix[..] {
            current_prefix = raw[..prefix_len].to_vec();
            match &first_prefix {
                None => first_prefix = Some(current_prefix.clone()),
                // A key boundary past half of the bytes: split here.
                Some(_) if seen * 2 >= total => {
                    let decoded = meridian_keys::mvcc::decode_mvcc_key(&current_prefix)
                        .map_err(|e| StorageError::corrupt("mvcc key", e))?;
                    return Ok(Some(decoded.key));
                }
                Some(_) => {}
            }
        }
        seen += (raw.len() + cursor.value().len()) as i64;
        cursor.next();
    }
    cursor.status()?;
    Ok(None)
}
