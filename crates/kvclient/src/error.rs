//! Errors of the KV client.

use meridian_kvapi::KvError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// A range refused the request for a reason retrying will not change.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// Retries went on until the deadline without success.
    #[error("no answer within {deadline_ms} ms; last error: {last_error}")]
    Timeout {
        deadline_ms: u64,
        last_error: String,
    },
    /// The request itself is wrong (before anything was sent).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}
