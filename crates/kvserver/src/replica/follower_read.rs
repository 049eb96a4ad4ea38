//! Reads served without the lease: at or below what the range's
//! leaseholders closed ([`crate::closedts`]), by any replica that applied
//! far enough, voter or not, leaseholder or not.
//!
//! Such a read needs no latches and no entry in the timestamp cache: no
//! write will ever land at or below a closed timestamp, and every write
//! there is applied here already. A transaction's read qualifies only if
//! its whole uncertainty interval (up to its first timestamp plus
//! `max_offset`, not narrowed by this replica's clock, which vouches for
//! nothing) is closed. A read that meets an intent goes to the lease path:
//! only the leaseholder can tell what became of it.
//!
//! Not here: where reads are sent (the DistSender sends reads marked for
//! it to the nearest replica), nor what is closed.

use meridian_kvapi::{BatchRequest, BatchResponse, KvError, Request};

use super::Replica;
use crate::eval::{evaluate, Evaluated, GcFloor};

impl Replica {
    /// Serves `request` from this replica's applied state if it is a read
    /// at a fixed timestamp whose uncertainty interval is closed here;
    /// `None` (the lease path decides) otherwise.
    pub(super) fn serve_below_closed(
        &self,
        request: &BatchRequest,
    ) -> Option<Result<BatchResponse, KvError>> {
        let ts = request.timestamp?;
        let reads_only = request.requests.iter().all(|r| {
            matches!(
                r,
                Request::Get { .. } | Request::Scan { .. } | Request::ReverseScan { .. }
            )
        });
        if !reads_only || !self.is_initialized() {
            return None;
        }
        let limit = request
            .txn
            .as_ref()
            .map(|txn| txn.min_timestamp.add_duration(self.clock.max_offset()))
            .filter(|&limit| limit > ts);
        if limit.unwrap_or(ts) > self.closed_timestamp() {
            return None;
        }
        let gc = || GcFloor::of(self.range_id, &self.applied);
        let evaluated = evaluate(
            &self.engine,
            &request.requests,
            ts,
            request.txn.as_ref(),
            limit,
            gc(),
        );
        match evaluated {
            Err(KvError::WriteIntent { .. }) => None,
            Err(e) => Some(Err(e)),
            Ok(Evaluated { responses, .. }) => {
                // A collection applied while we read may have removed
                // versions the read needed; it raised the threshold first.
                if let Err(e) = gc().check(ts) {
                    return Some(Err(e));
                }
                self.metrics.follower_reads.inc();
                Some(Ok(BatchResponse {
                    timestamp: ts,
                    responses,
                    range_generation: self.generation(),
                }))
            }
        }
    }
}
