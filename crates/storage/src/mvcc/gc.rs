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
    let mut keys = Vec::new();
    {
        let lower = encode_intent_key(start);
        let upper = encode_intent_key(end);
        let mut cursor = batch.cursor(Some(&lower), Some(&upper));
        cursor.seek(&lower);
        while cursor.valid() {
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
    }
    let mut removed = 0;
    for key in keys {
        removed += gc_key(batch, &key, threshold, stats)?;
    }
    Ok(removed)
}
