//! Snapshot reassembly at the receiving store.
//!
//! A snapshot travels as a sequence of chunks
//! ([`crate::raft::network::SnapshotChunk`]): the first (offset 0) starts a
//! new snapshot of its range, replacing any half-received one; each next
//! chunk must carry the same snapshot meta and start at the record where
//! the previous ended; the last (`done`) completes it, and the store hands
//! the whole snapshot to the range's Raft group to install. The whole
//! snapshot is held in memory until then.
//!
//! A snapshot whose keys overlap another initialized replica on this node
//! is refused (`SnapshotOverlaps`; the sender tries again later), one
//! installation at a time: initialized replicas on a node never overlap,
//! so a replica's data is only ever cleared or replaced by its own range.
//! The overlap arises when this node's replica of a range has not applied
//! a split yet (or is about to be removed) and the split's right-hand
//! range sends its first snapshot here; installing it would let the
//! lagging replica's next snapshot or removal clear the right-hand keys.
//!
//! This module does not own how snapshots are cut into chunks (the sender,
//! [`crate::raft::network`]) nor how one is installed (the state machine,
//! [`crate::raft::state_machine`]).

use std::collections::HashMap;

use meridian_kvapi::RangeId;
use meridian_storage::RangeData;
use openraft::raft::SnapshotResponse;
use parking_lot::Mutex;

use crate::raft::network::{RaftRpcError, SnapshotChunk};
use crate::raft::state_machine::snapshot_span;
use crate::raft::types::{Snapshot, SnapshotMeta, TypeConfig, Vote};
use crate::store::Store;

/// The chunks of a snapshot received so far.
struct IncomingSnapshot {
    meta: SnapshotMeta,
    data: RangeData,
}

/// Snapshots being received, by range.
#[derive(Default)]
pub(crate) struct SnapshotStaging {
    incoming: Mutex<HashMap<RangeId, IncomingSnapshot>>,
    /// Held from the overlap check to the end of an installation.
    installing: tokio::sync::Mutex<()>,
}

impl SnapshotStaging {
    /// Adds `chunk` to the snapshot of `range_id` being received. Returns
    /// the whole snapshot and the sender's vote once the last chunk arrived.
    pub(crate) fn receive(
        &self,
        range_id: RangeId,
        chunk: SnapshotChunk,
    ) -> Result<Option<(Vote, Snapshot)>, RaftRpcError> {
        let mut staging = self.incoming.lock();
        if chunk.offset == 0 {
            staging.insert(
                range_id,
                IncomingSnapshot {
                    meta: chunk.meta.clone(),
                    data: RangeData::default(),
                },
            );
        }
        let incoming = staging
            .get_mut(&range_id)
            .filter(|s| s.meta == chunk.meta && s.data.data.len() as u64 == chunk.offset)
            .ok_or(RaftRpcError::SnapshotChunkOutOfOrder {
                range_id,
                offset: chunk.offset,
            })?;
        incoming.data.local.extend(chunk.local);
        incoming.data.txn_records.extend(chunk.txn_records);
        incoming.data.data.extend(chunk.records);
        if !chunk.done {
            return Ok(None);
        }
        let complete = staging.remove(&range_id).expect("staged above");
        let snapshot = Snapshot {
            meta: complete.meta,
            snapshot: complete.data,
        };
        Ok(Some((chunk.vote, snapshot)))
    }
}

impl Store {
    /// Collects a snapshot's chunks; installs it when the last arrives.
    pub(crate) async fn receive_snapshot_chunk(
        &self,
        range_id: RangeId,
        chunk: SnapshotChunk,
    ) -> Result<Option<SnapshotResponse<TypeConfig>>, RaftRpcError> {
        let replica = self
            .replica(range_id)
            .ok_or(RaftRpcError::RangeNotFound(range_id))?;
        let staging = &self.inner.incoming_snapshots;
        let Some((vote, snapshot)) = staging.receive(range_id, chunk)? else {
            return Ok(None);
        };
        let _installing = staging.installing.lock().await;
        if let Some(span) = snapshot_span(&snapshot.snapshot) {
            let others = self.replicas();
            let overlapping = others.iter().find(|other| {
                other.range_id() != range_id
                    && other.is_initialized()
                    && spans_overlap(&other.span(), &span)
            });
            if let Some(other) = overlapping {
                tracing::info!(
                    range_id,
                    other = other.range_id(),
                    "refusing a snapshot that overlaps another replica here"
                );
                return Err(RaftRpcError::SnapshotOverlaps {
                    range_id,
                    other: other.range_id(),
                });
            }
        }
        Ok(Some(
            replica.raft().install_full_snapshot(vote, snapshot).await?,
        ))
    }
}

/// Whether `[a.0, a.1)` and `[b.0, b.1)` share a key.
fn spans_overlap(a: &(Vec<u8>, Vec<u8>), b: &(Vec<u8>, Vec<u8>)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[cfg(test)]
mod tests {
    use meridian_keys::RangeLocalKind;

    use super::*;
    use crate::raft::network::snapshot_chunks;

    fn range_data(records: u32) -> RangeData {
        RangeData {
            local: vec![(RangeLocalKind::AppliedState, b"applied".to_vec())],
            txn_records: vec![(b"txn".to_vec(), b"record".to_vec())],
            data: (0..records)
                .map(|i| (i.to_be_bytes().to_vec(), vec![7u8; 100]))
                .collect(),
        }
    }

    fn chunks(data: &RangeData) -> Vec<SnapshotChunk> {
        snapshot_chunks(Vote::new(2, 1), SnapshotMeta::default(), data.clone(), 1000)
    }

    #[test]
    fn spans_overlap_when_they_share_a_key() {
        let span = |a: &str, b: &str| (a.as_bytes().to_vec(), b.as_bytes().to_vec());
        assert!(spans_overlap(&span("a", "z"), &span("m", "n")));
        assert!(spans_overlap(&span("m", "z"), &span("a", "n")));
        assert!(!spans_overlap(&span("a", "m"), &span("m", "z")));
        assert!(!spans_overlap(&span("m", "z"), &span("a", "m")));
    }

    #[test]
    fn chunks_in_order_reassemble_the_snapshot() {
        let data = range_data(50);
        let chunks = chunks(&data);
        assert!(chunks.len() > 2);
        let staging = SnapshotStaging::default();
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let outcome = staging.receive(9, chunk).expect("in order");
            if i < last {
                assert!(outcome.is_none(), "complete after chunk {i}");
            } else {
                let (vote, snapshot) = outcome.expect("complete after the last chunk");
                assert_eq!(vote, Vote::new(2, 1));
                assert_eq!(snapshot.snapshot, data);
            }
        }
        assert!(staging.incoming.lock().is_empty(), "nothing left staged");
    }

    #[test]
    fn a_skipped_chunk_is_refused() {
        let chunks = chunks(&range_data(50));
        let staging = SnapshotStaging::default();
        staging.receive(9, chunks[0].clone()).expect("first");
        let skipped = chunks[2].clone();
        let offset = skipped.offset;
        let refused = staging.receive(9, skipped).map(|_| ()).unwrap_err();
        assert_eq!(
            refused,
            RaftRpcError::SnapshotChunkOutOfOrder {
                range_id: 9,
                offset
            }
        );
    }

    #[test]
    fn a_chunk_without_a_start_is_refused() {
        let chunks = chunks(&range_data(50));
        let staging = SnapshotStaging::default();
        assert!(matches!(
            staging.receive(9, chunks[1].clone()),
            Err(RaftRpcError::SnapshotChunkOutOfOrder { range_id: 9, .. })
        ));
    }

    #[test]
    fn a_first_chunk_restarts_a_half_received_snapshot() {
        let data = range_data(50);
        let chunks = chunks(&data);
        let staging = SnapshotStaging::default();
        staging.receive(9, chunks[0].clone()).expect("first");
        staging.receive(9, chunks[1].clone()).expect("second");
        // The sender started over: the first chunk again, then the rest.
        let mut outcome = None;
        for chunk in chunks {
            outcome = staging.receive(9, chunk).expect("in order");
        }
        let (_, snapshot) = outcome.expect("complete");
        assert_eq!(snapshot.snapshot, data, "no record counted twice");
    }

    #[test]
    fn ranges_are_reassembled_independently() {
        let (a, b) = (range_data(30), range_data(40));
        let (chunks_a, chunks_b) = (chunks(&a), chunks(&b));
        let staging = SnapshotStaging::default();
        let mut done = Vec::new();
        for (ca, cb) in chunks_a.iter().zip(&chunks_b) {
            done.extend(staging.receive(1, ca.clone()).unwrap().map(|s| (1, s.1)));
            done.extend(staging.receive(2, cb.clone()).unwrap().map(|s| (2, s.1)));
        }
        for cb in &chunks_b[chunks_a.len()..] {
            done.extend(staging.receive(2, cb.clone()).unwrap().map(|s| (2, s.1)));
        }
        assert_eq!(done.len(), 2);
        assert_eq!(done[0].1.snapshot, a);
        assert_eq!(done[1].1.snapshot, b);
    }
}
