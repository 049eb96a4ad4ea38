//! Why a workload refuses to run.
//!
//! Only configuration errors live here: failures of the target during a run
//! are not errors of the workload but measurements, counted in its summary.

/// A workload configuration that cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    #[error("concurrency must be at least 1")]
    ZeroConcurrency,
    #[error("read percent must be between 0 and 100, got {0}")]
    ReadPercentOutOfRange(u8),
    #[error("key space must hold at least 1 key")]
    ZeroKeys,
    #[error("key space of {keys} keys is too large: at most {max} keys (rows are numbered with signed 64-bit integers)")]
    TooManyKeys { keys: u64, max: u64 },
    #[error("duration must be greater than zero")]
    ZeroDuration,
    #[error("value size of {bytes} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge { bytes: usize, max: usize },
    #[error("the bank needs at least 2 accounts, got {0}")]
    TooFewAccounts(u64),
}
