//! What a transaction can fail with, and which failures its retry loop
//! ([`super::run_txn`]) answers by running it again.

use meridian_hlc::Timestamp;
use meridian_kvapi::KvError;

use crate::ClientError;

/// Why a transaction did not commit.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// It must run again from the start, at or above `at` (a write met a
    /// newer read or version after the transaction had read, a read met an
    /// uncertain value, or another transaction pushed its timestamp).
    #[error("transaction must restart at or above {at}: {reason}")]
    Restart { at: Timestamp, reason: String },
    /// Another transaction aborted it (it looked abandoned, or had lower
    /// priority in a conflict). A new transaction may run.
    #[error("transaction aborted by another: {0}")]
    Aborted(String),
    /// The commit's outcome is unknown: it may have committed.
    #[error("commit outcome unknown: {0}")]
    Ambiguous(String),
    /// A write in a read-only (historical) transaction.
    #[error("a transaction reading as of a past time is read-only")]
    ReadOnly,
    /// Anything else: not retried.
    #[error(transparent)]
    Client(ClientError),
}

impl TxnError {
    /// Whether running the transaction again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, TxnError::Restart { .. } | TxnError::Aborted(_))
    }
}

impl From<ClientError> for TxnError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Kv(KvError::TransactionAborted { txn_id }) => {
                TxnError::Aborted(format!("transaction {txn_id}"))
            }
            ClientError::Kv(KvError::TransactionPushed { pushed_to, .. }) => TxnError::Restart {
                at: pushed_to,
                reason: "pushed by another transaction".into(),
            },
            ClientError::Kv(KvError::ReadWithinUncertainty { value_ts, .. }) => TxnError::Restart {
                at: value_ts,
                reason: "a value within the uncertainty interval".into(),
            },
            ClientError::Kv(KvError::AmbiguousResult { reason, .. }) => TxnError::Ambiguous(reason),
            other => TxnError::Client(other),
        }
    }
}
