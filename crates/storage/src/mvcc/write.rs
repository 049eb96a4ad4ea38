//! MVCC writes: put, delete, conditional put, delete range.

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::{encode_intent_key, encode_version_key};
use meridian_keys::space::prefix_end;
use meridian_kvapi::TxnMeta;

use super::read::mvcc_scan;
use super::{
    check_sizes, encode_intent_value, encode_version_value, mvcc_get, read_key_head, IntentRecord,
    KeyHead, ReadOptions, ScanOptions,
};
use crate::cursor::Reader;
use crate::engine::Batch;
use crate::error::{Intent, Result, StorageError};
use crate::stats::MvccStats;

/// Reads the intent and newest version of `key` through the batch.
pub(crate) fn key_head(batch: &Batch, key: &[u8]) -> Result<KeyHead> {
    let prefix = encode_intent_key(key);
    let upper = prefix_end(&prefix).expect("intent keys end in 0x01");
    let mut cursor = batch.key_cursor(&prefix, &upper);
    read_key_head(cursor.as_mut(), key)
}

/// Writes `value` (`None`: a deletion) to `key` at `ts`. Without `txn` the
/// write is a committed version; with `txn` it is an intent of that
/// transaction at `ts` (replacing the transaction's earlier intent on the
/// key, and never below it: a push may have moved that one higher).
/// Answers the timestamp the write lies at.
pub fn mvcc_put(
    batch: &mut Batch,
    key: &[u8],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
    value: Option<&[u8]>,
    stats: &mut MvccStats,
) -> Result<Timestamp> {
    check_sizes(key, value)?;
    let head = key_head(batch, key)?;
    if let Some((intent, _, _)) = &head.intent {
        match txn {
            Some(own) if own.id == intent.txn.id => {
                if intent.txn.epoch > own.epoch {
                    return Err(StorageError::StaleEpoch {
                        txn: own.id,
                        epoch: own.epoch,
                        intent_epoch: intent.txn.epoch,
                    });
                }
            }
            _ => {
                return Err(StorageError::WriteIntent {
                    intents: vec![Intent {
                        key: key.to_vec(),
                        txn: intent.txn.clone(),
                    }],
                })
            }
        }
    }
    if let Some(newest) = head.newest.filter(|n| n.timestamp >= ts) {
        // A version this same batch wrote at this timestamp is replaced, so a
        // batch may write one key twice ([Put k, Delete k]).
        let own = txn.is_none()
            && newest.timestamp == ts
            && batch.has_pending_data(&encode_version_key(key, ts));
        if !own {
            return Err(StorageError::WriteTooOld {
                requested: ts,
                existing: newest.timestamp,
            });
        }
        stats.record(-1, newest.key_len, newest.val_len, false);
    }

    if head.is_empty() {
        stats.key_count += 1;
    }
    let mut written_at = ts;
    let (record_key, record_value, is_intent) = match txn {
        None => (
            encode_version_key(key, ts),
            encode_version_value(value),
            false,
        ),
        Some(own) => {
            if let Some((_, old_key_len, old_val_len)) = &head.intent {
                stats.record(-1, *old_key_len, *old_val_len, true);
            }
            // A push moved our intent up (to let a reader pass); rewriting
            // it must not move it back below that push, whatever our epoch.
            let pushed_to = head.intent.as_ref().map(|(i, _, _)| i.txn.write_timestamp);
            let mut meta = own.clone();
            meta.write_timestamp = pushed_to.map_or(ts, |pushed| pushed.max(ts));
            written_at = meta.write_timestamp;
            let history = match &head.intent {
                // The write it replaces stays, for a rollback to a savepoint
                // before this one; writes rolled back already are dropped.
                Some((earlier, _, _)) if earlier.txn.epoch == own.epoch => {
                    let mut history = earlier.history.clone();
                    // Two writes of one batch share a sequence number: no
                    // savepoint lies between them.
                    if earlier.txn.sequence != own.sequence {
                        history.push((earlier.txn.sequence, earlier.value.clone()));
                    }
                    history.retain(|(sequence, _)| !own.is_ignored(*sequence));
                    history
                }
                _ => Vec::new(),
            };
            let intent = IntentRecord {
                txn: meta,
                value: value.map(<[u8]>::to_vec),
                history,
            };
            (encode_intent_key(key), encode_intent_value(&intent), true)
        }
    };
    let size = record_key.len() + record_value.len();
    stats.record(1, record_key.len(), record_value.len(), is_intent);
    stats.liveness(head.live_size(), value.is_some().then_some(size));
    batch.put_data(record_key, record_value);
    Ok(written_at)
}

/// Writes `value` to `key` only if the value visible at `ts` (to `txn`, if
/// given) equals `expected` (`None`: the key must not exist). A replay
/// (`txn`'s intent on the key already holds `value` at `txn`'s sequence
/// number) succeeds without checking again. Answers the timestamp the
/// write lies at, as [`mvcc_put`].
pub fn mvcc_conditional_put(
    batch: &mut Batch,
    key: &[u8],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
    value: Option<&[u8]>,
    expected: Option<&[u8]>,
    stats: &mut MvccStats,
) -> Result<Timestamp> {
    if let Some(own) = txn {
        // The same write sent again (the coordinator's second try of a
        // batch that partly landed): the intent it left is its answer. Its
        // condition held when it landed, and the intent kept every other
        // writer off the key since.
        let head = key_head(batch, key)?;
        if let Some((intent, _, _)) = &head.intent {
            let replay = intent.txn.id == own.id
                && intent.txn.epoch == own.epoch
                && intent.txn.sequence == own.sequence
                && intent.value.as_deref() == value;
            if replay {
                return Ok(intent.txn.write_timestamp);
            }
        }
    }
    let opts = ReadOptions {
        txn,
        uncertainty_limit: None,
    };
    let actual = mvcc_get(batch, key, ts, &opts)?.map(|v| v.value);
    if actual.as_deref() != expected {
        return Err(StorageError::ConditionFailed { actual });
    }
    mvcc_put(batch, key, ts, txn, value, stats)
}

/// Deletes every key in `[start, end)` that has a value visible at `ts`,
/// and returns the deleted keys.
pub fn mvcc_delete_range(
    batch: &mut Batch,
    start: &[u8],
    end: &[u8],
    ts: Timestamp,
    txn: Option<&TxnMeta>,
    stats: &mut MvccStats,
) -> Result<Vec<Vec<u8>>> {
    let opts = ReadOptions {
        txn,
        uncertainty_limit: None,
    };
    let live = mvcc_scan(batch, start, end, ts, &opts, ScanOptions::default())?;
    let keys: Vec<Vec<u8>> = live.rows.into_iter().map(|(k, _)| k).collect();
    for key in &keys {
        mvcc_put(batch, key, ts, txn, None, stats)?;
    }
    Ok(keys)
}
