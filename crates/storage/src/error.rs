//! The storage error enum.

use meridian_hlc::Timestamp;
use meridian_kvapi::TxnMeta;

/// An intent of another transaction that a read or write ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub key: Vec<u8>,
    pub txn: TxnMeta,
}

/// Everything that can go wrong in storage. The first group are MVCC
/// outcomes a caller acts on (wait, push, retry at a new timestamp); the
/// second are failures of the engine or of stored bytes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operation met intents of other transactions.
    #[error("conflicting intents on {} key(s), first {:?} of txn {}", intents.len(), intents[0].key, intents[0].txn.id)]
    WriteIntent { intents: Vec<Intent> },
    /// A write at `requested` found a committed version at `existing` or later.
    #[error("write at {requested} too old: a version exists at {existing}")]
    WriteTooOld {
        requested: Timestamp,
        existing: Timestamp,
    },
    /// A read at `read_ts` found a value in its uncertainty interval.
    #[error("read at {read_ts} found a value at {value_ts} within uncertainty limit {uncertainty_limit}")]
    ReadWithinUncertainty {
        read_ts: Timestamp,
        value_ts: Timestamp,
        uncertainty_limit: Timestamp,
    },
    /// A conditional put found a different value than expected.
    #[error("condition failed: actual value {actual:?}")]
    ConditionFailed { actual: Option<Vec<u8>> },
    /// A transaction wrote with an epoch older than its existing intent.
    #[error("transaction {txn} epoch {epoch} is older than its intent's epoch {intent_epoch}")]
    StaleEpoch {
        txn: meridian_kvapi::TxnId,
        epoch: u32,
        intent_epoch: u32,
    },

    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge { len: usize, max: usize },
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge { len: usize, max: usize },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Stored bytes did not decode: disk corruption or a bug.
    #[error("corrupt {what}: {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("rocksdb: {0}")]
    RocksDb(#[from] rocksdb::Error),
}

impl StorageError {
    pub(crate) fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> Self {
        StorageError::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
