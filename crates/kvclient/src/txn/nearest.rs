//! Reads tried at the nearest replica first, which serves them once they
//! are closed there: a historical transaction's (`AS OF SYSTEM TIME`: a
//! read-only transaction at a fixed past time), and any transaction's
//! reads of a range whose replicas serve the present (a GLOBAL table's).
//!
//! Not here: how a batch is routed (the DistSender's `nearest_replica`),
//! nor what a replica may serve (kvserver's closed timestamps).

use std::sync::Arc;

use meridian_hlc::{HybridClock, Timestamp};
use meridian_kvapi::{Request, Response};

use super::{Txn, TxnError};
use crate::DistSender;

impl Txn {
    /// Begins a read-only transaction that reads at exactly `ts`: a
    /// snapshot of the database as of then (SQL's `AS OF SYSTEM TIME`).
    /// Its reads have no uncertainty interval, never move, and may be
    /// served by the nearest replica once `ts` is closed there; it writes
    /// nothing, so it has no record and its commit costs nothing. Reads
    /// at or below the range's GC threshold fail.
    pub fn begin_historical(ds: DistSender, clock: Arc<HybridClock>, ts: Timestamp) -> Txn {
        let txn = Txn::begin_at(ds, clock, ts, 1);
        txn.inner.state.lock().historical = true;
        txn
    }

    /// Whether this is a read-only transaction at a fixed timestamp
    /// ([`Txn::begin_historical`]).
    pub fn is_historical(&self) -> bool {
        self.inner.state.lock().historical
    }

    /// As [`Txn::scan`], tried at the nearest replica first: for ranges
    /// whose replicas can serve the present (global reads, a GLOBAL
    /// table's), a read without a cross-region hop.
    pub async fn scan_from_nearest(
        &self,
        start: &[u8],
        end: &[u8],
        limit: u32,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, TxnError> {
        self.scan_routed(start, end, limit, true).await
    }

    /// As [`Txn::read_batch`], tried at the nearest replica first (see
    /// [`Txn::scan_from_nearest`]).
    pub async fn read_batch_from_nearest(
        &self,
        requests: Vec<Request>,
    ) -> Result<Vec<Response>, TxnError> {
        self.read_routed(requests, true).await
    }

    /// Refuses a write in a historical transaction.
    pub(super) fn check_writable(&self) -> Result<(), TxnError> {
        if self.is_historical() {
            return Err(TxnError::ReadOnly);
        }
        Ok(())
    }
}
