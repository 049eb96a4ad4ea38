//! Intent resolution: turning a transaction's intents into committed
//! versions, removing them, or moving them to a later timestamp.

use meridian_hlc::Timestamp;
use meridian_keys::mvcc::{decode_mvcc_key, encode_intent_key, encode_version_key};
use meridian_kvapi::TxnId;

use super::read::skip_past_key;
use super::write::key_head;
use super::{decode_record, encode_intent_value, encode_version_value, prefix_len, Record};
use crate::cursor::Reader;
use crate::engine::Batch;
use crate::error::{Result, StorageError};
use crate::stats::MvccStats;

/// What became of the transaction whose intents are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionStatus {
    /// Committed at `IntentResolution::timestamp`.
    Committed,
    Aborted,
    /// Still pending, but pushed: its intents move up to the timestamp.
    Pending,
}

/// The outcome to apply to one transaction's intents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentResolution {
    pub txn_id: TxnId,
    /// The transaction's final epoch: at commit, intents of earlier epochs
    /// were not rewritten by the transaction and are dropped.
    pub epoch: u32,
    pub status: ResolutionStatus,
    /// Commit timestamp, or the timestamp a pending transaction was pushed to.
    pub timestamp: Timestamp,
    /// The sequence numbers the transaction rolled back
    /// ([`meridian_kvapi::TxnMeta::ignored_seqs`]): a commit writes the
    /// last write not among them, or nothing.
    pub ignored_seqs: Vec<(u32, u32)>,
}

/// Resolves the intent on `key` if it belongs to the transaction. Returns
/// whether there was such an intent.
pub fn resolve_intent(
    batch: &mut Batch,
    key: &[u8],
    resolution: &IntentResolution,
    stats: &mut MvccStats,
) -> Result<bool> {
    let head = key_head(batch, key)?;
    let Some((intent, intent_key_len, intent_val_len)) = &head.intent else {
        return Ok(false);
    };
    if intent.txn.id != resolution.txn_id {
        return Ok(false);
    }
    let intent_ts = intent.txn.write_timestamp;
    let same_epoch = intent.txn.epoch == resolution.epoch;
    // The write that commits: the last one not rolled back to a savepoint.
    let committed = intent.effective_value(&resolution.ignored_seqs);
    let before_live = head.live_size();
    match resolution.status {
        ResolutionStatus::Committed if same_epoch && committed.is_some() => {
            let committed = committed.expect("checked above");
            if resolution.timestamp < intent_ts {
                return Err(StorageError::InvalidArgument(format!(
                    "commit timestamp {} of transaction {:?} is below its intent's timestamp \
                     {intent_ts} (sequence {}, epoch {}, first timestamp {})",
                    resolution.timestamp,
                    resolution.txn_id,
                    intent.txn.sequence,
                    intent.txn.epoch,
                    intent.txn.min_timestamp
                )));
            }
            let version_key = encode_version_key(key, resolution.timestamp);
            let version_value = encode_version_value(committed);
            let size = version_key.len() + version_value.len();
            stats.record(-1, *intent_key_len, *intent_val_len, true);
            stats.record(1, version_key.len(), version_value.len(), false);
            stats.liveness(before_live, committed.is_some().then_some(size));
            batch.delete_data(encode_intent_key(key));
            batch.put_data(version_key, version_value);
        }
        // A push applies to the transaction, whatever epoch the pusher saw:
        // a PENDING resolution only ever moves the intent up and never
        // removes it. A resolution from an older epoch than the intent's (the
        // pusher read the record before the transaction restarted and wrote
        // the key again) must not delete a live transaction's write.
        ResolutionStatus::Pending => {
            if resolution.timestamp <= intent_ts {
                return Ok(true);
            }
            let mut moved = intent.clone();
            moved.txn.write_timestamp = resolution.timestamp;
            let intent_key = encode_intent_key(key);
            let value = encode_intent_value(&moved);
            stats.record(-1, *intent_key_len, *intent_val_len, true);
            stats.record(1, intent_key.len(), value.len(), true);
            let size = intent_key.len() + value.len();
            stats.liveness(before_live, moved.value.is_some().then_some(size));
            batch.put_data(intent_key, value);
        }
        // Aborted, or committed in a later epoch than the intent's (the
        // transaction did not write the key again after restarting), or
        // committed with every write of the key rolled back: remove it.
        ResolutionStatus::Aborted | ResolutionStatus::Committed => {
            stats.record(-1, *intent_key_len, *intent_val_len, true);
            let after_live = head
                .newest
                .filter(|n| n.is_value)
                .map(|n| n.key_len + n.val_len);
            stats.liveness(before_live, after_live);
            if head.newest.is_none() {
                stats.key_count -= 1;
            }
            batch.delete_data(encode_intent_key(key));
        }
    }
    Ok(true)
}

/// Resolves the transaction's intents on keys in `[start, end)`, at most
/// `max_keys` of them (0: all). Returns how many were resolved and, when the
/// limit stopped it, the key to resume from.
pub fn resolve_intent_span(
    batch: &mut Batch,
    start: &[u8],
    end: &[u8],
    resolution: &IntentResolution,
    max_keys: usize,
    stats: &mut MvccStats,
) -> Result<(usize, Option<Vec<u8>>)> {
    let mut keys = Vec::new();
    let mut resume = None;
    {
        let lower = encode_intent_key(start);
        let upper = encode_intent_key(end);
        let mut cursor = batch.cursor(Some(&lower), Some(&upper));
        cursor.seek(&lower);
        while cursor.valid() {
            let plen = prefix_len(cursor.key())?;
            let prefix = cursor.key()[..plen].to_vec();
            if cursor.key().len() == plen {
                if let Record::Intent(intent) = decode_record(cursor.value(), true)? {
                    if intent.txn.id == resolution.txn_id {
                        let key = decode_mvcc_key(&prefix)
                            .map_err(|e| StorageError::corrupt("mvcc key", e))?
                            .key;
                        if max_keys > 0 && keys.len() == max_keys {
                            resume = Some(key);
                            break;
                        }
                        keys.push(key);
                    }
                }
            }
            skip_past_key(cursor.as_mut(), &prefix);
        }
        cursor.status()?;
    }
    for key in &keys {
        resolve_intent(batch, key, resolution, stats)?;
    }
    Ok((keys.len(), resume))
}
