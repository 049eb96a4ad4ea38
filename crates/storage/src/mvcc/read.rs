//! MVCC reads: point get and ordered scans at a timestamp.

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::{
    append_timestamp, decode_mvcc_key, encode_intent_key, version_timestamp,
};
use meridian_keys::space::prefix_end;

use super::{
    decode_record, prefix_len, read_key_head, IntentRecord, ReadOptions, Record, VersionedValue,
};
use crate::cursor::{Cursor, Reader};
use crate::error::{Intent, Result, StorageError};

/// Reads `key` as of `ts`. `Ok(None)` when the key has no visible value.
pub fn mvcc_get(
    reader: &dyn Reader,
    key: &[u8],
    ts: Timestamp,
    opts: &ReadOptions,
) -> Result<Option<VersionedValue>> {
    let prefix = encode_intent_key(key);
    let upper = prefix_end(&prefix).expect("intent keys end in 0x01");
    let mut cursor = reader.key_cursor(&prefix, &upper);
    cursor.seek(&prefix);
    let mut conflicts = Vec::new();
    let value = read_visible(cursor.as_mut(), &prefix, key, ts, opts, &mut conflicts)?;
    cursor.status()?;
    if !conflicts.is_empty() {
        return Err(StorageError::WriteIntent { intents: conflicts });
    }
    Ok(value)
}

/// The intent on `key`, whoever wrote it, if there is one.
pub fn mvcc_intent(reader: &dyn Reader, key: &[u8]) -> Result<Option<IntentRecord>> {
    let prefix = encode_intent_key(key);
    let upper = prefix_end(&prefix).expect("intent keys end in 0x01");
    let mut cursor = reader.key_cursor(&prefix, &upper);
    Ok(read_key_head(cursor.as_mut(), key)?
        .intent
        .map(|(intent, _, _)| intent))
}

/// Limits and direction of a scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    /// Stop after this many rows (0: no limit).
    pub max_rows: usize,
    /// Stop once the rows returned hold at least this many key and value
    /// bytes (0: no limit).
    pub max_bytes: usize,
    /// Return rows from the end of the span backwards.
    pub reverse: bool,
}

/// What a scan returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    pub rows: Vec<(Vec<u8>, VersionedValue)>,
    /// Set when a limit stopped the scan: for a forward scan, the start key
    /// of the rest of the span; for a reverse scan, its (exclusive) end key.
    pub resume_key: Option<Vec<u8>>,
}

/// The most conflicting intents one scan reports at once.
const MAX_CONFLICTS: usize = 1000;

/// Scans user keys in `[start, end)` as of `ts`. Conflicting intents are
/// collected over the whole scan and reported together, so the caller can
/// resolve them in one go.
pub fn mvcc_scan(
    reader: &dyn Reader,
    start: &[u8],
    end: &[u8],
    ts: Timestamp,
    opts: &ReadOptions,
    scan: ScanOptions,
) -> Result<ScanResult> {
    if start >= end {
        return Ok(ScanResult::default());
    }
    let lower = encode_intent_key(start);
    let upper = encode_intent_key(end);
    let mut cursor = reader.cursor(Some(&lower), Some(&upper));
    let mut result = ScanResult::default();
    let mut conflicts = Vec::new();
    let mut bytes = 0;
    if scan.reverse {
        cursor.seek_for_prev(&upper);
    } else {
        cursor.seek(&lower);
    }
    while cursor.valid() && conflicts.len() < MAX_CONFLICTS {
        let plen = prefix_len(cursor.key())?;
        let prefix = cursor.key()[..plen].to_vec();
        let key = decode_mvcc_key(&prefix)
            .map_err(|e| StorageError::corrupt("mvcc key", e))?
            .key;
        if scan.reverse {
            // We stand on the key's oldest record; its intent comes first.
            cursor.seek(&prefix);
        }
        if let Some(value) = read_visible(cursor.as_mut(), &prefix, &key, ts, opts, &mut conflicts)?
        {
            bytes += key.len() + value.value.len();
            result.rows.push((key.clone(), value));
            let full = (scan.max_rows > 0 && result.rows.len() >= scan.max_rows)
                || (scan.max_bytes > 0 && bytes >= scan.max_bytes);
            if full {
                result.resume_key = Some(if scan.reverse {
                    key
                } else {
                    let mut next = key;
                    next.push(0);
                    next
                });
                break;
            }
        }
        if scan.reverse {
            // The escaped key without its terminator sorts after every
            // record of smaller keys and before every record of this one.
            cursor.seek_for_prev(&prefix[..plen - 2]);
        } else {
            skip_past_key(cursor.as_mut(), &prefix);
        }
    }
    cursor.status()?;
    if !conflicts.is_empty() {
        return Err(StorageError::WriteIntent { intents: conflicts });
    }
    Ok(result)
}

/// Moves a cursor standing somewhere on the records of the user key with
/// raw prefix `prefix` to the first record of the next user key: a few
/// `next` calls (usually enough), then a seek past the oldest possible version.
pub(crate) fn skip_past_key(cursor: &mut dyn Cursor, prefix: &[u8]) {
    for _ in 0..4 {
        if !cursor.valid() || !cursor.key().starts_with(prefix) {
            return;
        }
        cursor.next();
    }
    if cursor.valid() && cursor.key().starts_with(prefix) {
        let mut past = prefix.to_vec();
        past.extend_from_slice(&[0xff; 13]);
        cursor.seek(&past);
    }
}

/// Reads the value of one user key visible at `ts`. The cursor stands on the
/// key's first record (or past the key, if it has none); conflicting intents
/// are appended to `conflicts`.
pub(crate) fn read_visible(
    cursor: &mut dyn Cursor,
    prefix: &[u8],
    key: &[u8],
    ts: Timestamp,
    opts: &ReadOptions,
    conflicts: &mut Vec<Intent>,
) -> Result<Option<VersionedValue>> {
    let limit = opts.limit(ts);
    if cursor.valid() && cursor.key() == prefix {
        let Record::Intent(intent) = decode_record(cursor.value(), true)? else {
            return Err(StorageError::corrupt("mvcc", "non-intent at intent key"));
        };
        match opts.txn {
            Some(own) if own.id == intent.txn.id => {
                if intent.txn.epoch == own.epoch {
                    // When every write of ours here was rolled back, what
                    // lies below is what we read.
                    if let Some(value) = intent.effective_value(&own.ignored_seqs) {
                        return Ok(value.map(|value| VersionedValue {
                            value: value.to_vec(),
                            timestamp: intent.txn.write_timestamp,
                        }));
                    }
                }
                if intent.txn.epoch > own.epoch {
                    return Err(StorageError::StaleEpoch {
                        txn: own.id,
                        epoch: own.epoch,
                        intent_epoch: intent.txn.epoch,
                    });
                }
                // An intent of an earlier epoch: not part of what we read.
            }
            _ if intent.txn.write_timestamp <= limit => {
                conflicts.push(Intent {
                    key: key.to_vec(),
                    txn: intent.txn,
                });
                return Ok(None);
            }
            _ => {}
        }
        cursor.next();
    }
    while cursor.valid() && cursor.key().starts_with(prefix) {
        let raw = cursor.key();
        let version_ts = version_timestamp(raw, prefix.len())
            .map_err(|e| StorageError::corrupt("mvcc key", e))?
            .ok_or_else(|| StorageError::corrupt("mvcc", "second intent record for one key"))?;
        if version_ts > limit {
            // Jump over every version too new to matter.
            let mut target = prefix.to_vec();
            append_timestamp(&mut target, limit);
            cursor.seek(&target);
            continue;
        }
        if version_ts > ts {
            return Err(StorageError::ReadWithinUncertainty {
                read_ts: ts,
                value_ts: version_ts,
                uncertainty_limit: limit,
            });
        }
        return Ok(match decode_record(cursor.value(), false)? {
            Record::Value(value) => Some(VersionedValue {
                value,
                timestamp: version_ts,
            }),
            _ => None,
        });
    }
    Ok(None)
}
