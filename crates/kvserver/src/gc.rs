//! MVCC garbage collection of a range, at its leaseholder.
//!
//! A range's GC threshold is replicated state: it lives in the range's
//! `AppliedState` (so it survives restarts, travels in snapshots and is
//! copied to a split's right-hand side) and moves only through
//! `RaftCommand::Gc`, which deletes the versions the leaseholder found
//! collectable and raises the threshold in the same apply on every replica.
//! Every request at or below the threshold is refused
//! ([`crate::eval::GcFloor`]); every request above it sees exactly what it
//! would have seen without GC, because GC keeps, per key, the newest version
//! at or below the threshold (unless it is a tombstone).
//!
//! [`Store::gc_range`] collects one range below `now - ttl`, in passes:
//! 1. **find**, without latches, the keys with collectable versions in the
//!    rest of the span, at most [`GC_COMMAND_MAX_BYTES`] of them per pass
//!    (storage's `gc_span_bounded` on a batch that is never committed), so
//!    a scan of a large range does not block its requests;
//! 2. **collect** those keys under a write latch over the whole range and a
//!    valid lease: `gc_key` reads each key again, so what the scan saw does
//!    not matter, only what is there now; the delete set, its stats delta
//!    and the threshold become one `Gc` command, proposed and applied
//!    before the latch is released, so no request evaluates between the
//!    removals and the threshold that guards them.
//!
//! Later passes use the same threshold from where the last one stopped.
//! Raising the threshold before every old version is gone is safe (a
//! threshold only promises that reads at or below it are refused).
//!
//! Not here: when a range is worth collecting and with which ttl (the
//! server's MVCC GC queue; zone configs will give the ttl per range), and
//! what garbage is (storage's `mvcc::gc`). Intents are never collected:
//! resolution removes them.

use std::time::Duration;

use meridian_hlc::Timestamp;
use meridian_kvapi::{KvError, RangeId};
use meridian_storage::mvcc::{gc_key, gc_span_bounded};
use meridian_storage::MvccStats;
use serde::{Deserialize, Serialize};

use crate::error::kv_error;
use crate::raft::types::RaftCommand;
use crate::replica::Replica;
use crate::store::Store;

/// Bytes of versions (keys and values as stored) one GC command removes at
/// most: its log entry stays far below the transport's 64 MiB frame, and
/// the latch over the range is held for one small apply.
pub const GC_COMMAND_MAX_BYTES: usize = 1 << 20;

/// What one GC of a range did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcOutcome {
    /// The range's GC threshold afterwards.
    pub threshold: Timestamp,
    /// Versions removed.
    pub removed: usize,
    /// `Gc` commands proposed (0: nothing to remove and the threshold
    /// could not move).
    pub commands: usize,
}

impl Store {
    /// Collects the versions of range `range_id` that no read younger than
    /// `ttl` can see, and raises the range's GC threshold to `now - ttl`.
    /// Must run at the leaseholder (else `NotLeaseholder`).
    ///
    /// The work runs on its own task and finishes even if the caller stops
    /// waiting: a `Gc` proposal holds the range's latch until it applied,
    /// and releasing it earlier would let a write evaluate against versions
    /// the GC is about to remove (its stats delta would then be wrong).
    pub async fn gc_range(&self, range_id: RangeId, ttl: Duration) -> Result<GcOutcome, KvError> {
        let replica = self
            .replica(range_id)
            .ok_or(KvError::RangeNotFound { range_id })?;
        tokio::spawn(async move { replica.gc(ttl).await })
            .await
            .map_err(|e| KvError::Unavailable {
                range_id,
                reason: format!("the GC task failed: {e}"),
            })?
    }
}

impl Replica {
    /// The range's GC threshold, as this replica has applied it (zero:
    /// never collected).
    pub fn gc_threshold(&self) -> Timestamp {
        self.applied.borrow().gc_threshold
    }

    async fn gc(&self, ttl: Duration) -> Result<GcOutcome, KvError> {
        if ttl.is_zero() {
            return Err(KvError::InvalidRequest(
                "the GC ttl must be positive".into(),
            ));
        }
        self.activate().await;
        // Never below the current threshold: a shorter-lived ttl earlier
        // may have raised it above `now - ttl`; collecting there again
        // finishes a GC that stopped half way and changes nothing else.
        let before = self.gc_threshold();
        let threshold = self.clock.now().sub_duration(ttl).max(before);
        let mut outcome = GcOutcome {
            threshold: before,
            ..GcOutcome::default()
        };
        let mut from = self.span().0.clone();
        loop {
            // 1. Find, on the engine as it is now, without latches.
            let end = self.span().1.clone();
            if from >= end {
                break;
            }
            let found = {
                let mut scratch = self.engine.batch();
                let mut ignored = MvccStats::default();
                gc_span_bounded(
                    &mut scratch,
                    &from,
                    &end,
                    threshold,
                    &mut ignored,
                    GC_COMMAND_MAX_BYTES,
                )
                .map_err(kv_error)?
            };
            // 2. Collect, under a latch over the whole range and the lease.
            let _latches = self.latches.acquire_range(&self.span()).await;
            let term = self.lease(false).await?.term;
            let current = self.gc_threshold();
            // A split may have shrunk the range since the scan.
            let span = self.span();
            let mut batch = self.engine.batch();
            let mut stats = MvccStats::default();
            let mut removed = 0;
            for key in found
                .keys
                .iter()
                .filter(|k| span.0.as_slice() <= k.as_slice() && k.as_slice() < span.1.as_slice())
            {
                removed += gc_key(&mut batch, key, threshold, &mut stats).map_err(kv_error)?;
            }
            let writes = batch.into_write_set();
            if !writes.is_empty() || threshold > current {
                self.propose(RaftCommand::Gc {
                    writes,
                    stats,
                    threshold,
                    term,
                })
                .await?;
                outcome.commands += 1;
                outcome.removed += removed;
            }
            outcome.threshold = threshold.max(current);
            match found.resume_key {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(outcome)
    }
}
