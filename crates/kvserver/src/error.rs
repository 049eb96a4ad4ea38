//! How storage outcomes become KV errors at the replica boundary.

use meridian_kvapi::KvError;
use meridian_storage::StorageError;

pub(crate) fn kv_error(e: StorageError) -> KvError {
    match e {
        StorageError::WriteIntent { mut intents } => {
            let first = intents.swap_remove(0);
            KvError::WriteIntent {
                key: first.key,
                txn: Box::new(first.txn),
            }
        }
        StorageError::WriteTooOld {
            requested,
            existing,
        } => KvError::WriteTooOld {
            requested,
            existing,
        },
        StorageError::ReadWithinUncertainty {
            read_ts, value_ts, ..
        } => KvError::ReadWithinUncertainty { read_ts, value_ts },
        StorageError::ConditionFailed { actual } => KvError::ConditionFailed { actual },
        e @ (StorageError::KeyTooLarge { .. }
        | StorageError::ValueTooLarge { .. }
        | StorageError::InvalidArgument(_)
        | StorageError::StaleEpoch { .. }) => KvError::InvalidRequest(e.to_string()),
        e @ (StorageError::Corrupt { .. } | StorageError::RocksDb(_)) => {
            KvError::Storage(e.to_string())
        }
    }
}
