//! Garbage collection of versions no reader can see any more.
//!
//! A reader at or above the GC threshold `t` sees, for each key, the newest
//! version at or below `t` (or something newer). Every version older than
//! that one is garbage; so is that version itself when it is a tombstone.
//! Intents are never collected here: they belong to live transactions and
//! leave through resolution.

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::{
    append_timestamp, decode_mvcc_key, encode_intent_key, version_timestamp,
};

use super::read::skip_past_key;
use super::{decode_record, prefix_len, Record};
use crate::cursor::Reader;
use crate::engine::Batch;
use crate::error::{Result, StorageError};
use crate::stats::MvccStats;

/// Collects the garbage versions of `key` below `threshold`. Returns how
/// many versions were removed.
pub fn gc_key(
    batch: &mut Batch,
    key: &[u8],
    threshold: Timestamp,
    stats: &mut MvccStats,
) -> Result<usize> {
    let prefix = encode_intent_key(key);
    let mut garbage = Vec::new();
    let mut has_intent = false;
    let mut kept_any = false;
    {
        let upper = meridian_keys::space::prefix_end(&prefix).expect("intent keys end in 0x01");
        let mut cursor = batch.key_cursor(&prefix, &upper);
        cursor.seek(&prefix);
        if cursor.valid() && cursor.key() == prefix.as_slice() {
            has_intent = true;
            cursor.next();
        }
        // Versions above the threshold stay.
        let mut first_below = prefix.clone();
        append_timestamp(&mut first_below, threshold);
        if cursor.valid() {
            let ts = version_of(cursor.key(), prefix.len())?;
            if ts > threshold {
                kept_any = true;
                cursor.seek(&first_below);
            }
        }
        let mut first = true;
        while cursor.valid() {
            let raw = cursor.key();
            let value = cursor.value();
            let record = decode_record(value, false)?;
            let keep = first && matches!(record, Record::Value(_));
            if keep {
                kept_any = true;
            } else {
                // Only a tombstone can be the newest record removed here,
                // and tombstones are not live: liveness never changes.
                garbage.push((raw.to_vec(), value.len()));
            }
            first = false;
            cursor.next();
        }
        cursor.status()?;
    }
    for (raw, val_len) in &garbage {
        stats.record(-1, raw.len(), *val_len, false);
    }
    if !garbage.is_empty() && !kept_any && !has_intent {
        stats.key_count -= 1;
    }
    let removed = garbage.len();
    for (raw, _) in garbage {
        batch.delete_data(raw);
    }
    Ok(removed)
}

fn version_of(raw: &[u8], prefix_len: usize) -> Result<Timestamp> {
    version_timestamp(raw, prefix_len)
        .map_err(|e| StorageError::corrupt("mvcc key", e))?
        .ok_or_else(|| StorageError::corrupt("mvcc", "second intent record for one key"))
}

/// Collects garbage below `threshold` for every key in `[start, end)`.
/// Returns how many versions were removed.
pub fn gc_span(
    batch: &mut Batch,
    start: &[u8],
    end: &[u8],
    threshold: Timestamp,
    stats: &mut MvccStats,
) -> Result<usize> {
    Ok(gc_span_bounded(batch, start, end, threshold, stats, usize::MAX)?.removed)
}

/// What one pass of [`gc_span_bounded`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcProgress {
    /// Versions removed.
    pub removed: usize,
    /// The user keys versions were removed from, in key order.
    pub keys: Vec<Vec<u8>>,
    /// Where the next pass starts, when this one stopped at its budget;
    /// `None` when it reached the end of the span.
    pub resume_key: Option<Vec<u8>>,
}

/// User keys read per cursor: the cursor borrows the batch, which
/// [`gc_key`] then writes to, so keys are gathered a few at a time.
const KEYS_PER_SCAN: usize = 256;

/// Like [`gc_span`], but stops after the key whose removals bring the bytes
/// removed (keys and values of the deleted records) to `max_bytes` or more,
/// so that one pass makes a bounded write set. A key is never split across
/// passes. Passes at the same threshold from each `resume_key` until it is
/// `None` collect what one unbounded pass would.
pub fn gc_span_bounded(
    batch: &mut Batch,
    start: &[u8],
    end: &[u8],
    threshold: Timestamp,
    stats: &mut MvccStats,
    max_bytes: usize,
) -> Result<GcProgress> {
    let mut progress = GcProgress::default();
    let mut removed_bytes: usize = 0;
    let mut from = start.to_vec();
    loop {
        let keys = user_keys(&*batch, &from, end, KEYS_PER_SCAN)?;
        let Some(last) = keys.last() else {
            return Ok(progress);
        };
        from = key_after(last);
        for key in keys {
            let before = stats.total_bytes();
            let removed = gc_key(batch, &key, threshold, stats)?;
            if removed == 0 {
                continue;
            }
            progress.removed += removed;
            removed_bytes = removed_bytes.saturating_add((before - stats.total_bytes()) as usize);
            let next = key_after(&key);
            progress.keys.push(key);
            if removed_bytes >= max_bytes {
                progress.resume_key = (next.as_slice() < end).then_some(next);
                return Ok(progress);
            }
        }
    }
}

/// The smallest key above `key`.
fn key_after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Up to `limit` user keys with a record in `[start, end)`, in order.
fn user_keys(reader: &dyn Reader, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
    let mut keys = Vec::new();
    let lower = encode_intent_key(start);
    let upper = encode_intent_key(end);
    let mut cursor = reader.cursor(Some(&lower), Some(&upper));
    cursor.seek(&lower);
    while cursor.valid() && keys.len() < limit {
        let plen = prefix_len(cursor.key())?;
        let prefix = cursor.key()[..plen].to_vec();
        keys.push(
            decode_mvcc_key(&prefix)
                .map_err(|e| StorageError::corrupt("mvcc key", e))?
                .key,
        );
        skip_past_key(cursor.as_mut(), &prefix);
    }
    cursor.status()?;
    Ok(keys)
}
