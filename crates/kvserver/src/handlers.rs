//! The transport handlers a store registers: Raft messages for its groups,
//! KV batches, and the store-to-store requests of the other operations
//! (create and destroy a replica, split, quiesce, wake, closed timestamps).
//!
//! Each handler only finds the replica or operation a message is for and
//! hands it over; what the operation does lives in its own module. This
//! module owns [`BatchRpc`]; every other RPC is declared beside its
//! operation (Raft in [`crate::raft::network`], lifecycle in
//! [`crate::lifecycle`], split in [`crate::split`], quiesce in
//! [`crate::quiesce`]).

use std::sync::Arc;
use std::time::Duration;

use meridian_kvapi::wire::kinds;
use meridian_kvapi::{BatchRequest, BatchResult, RangeId, ReplicaId};
use meridian_transport::Rpc;
use openraft::async_runtime::WatchReceiver;
use openraft::raft::AppendEntriesRequest;

use crate::closedts::ClosedTimestampsRpc;
use crate::error::{RemoteReplicaError, StoreError};
use crate::lifecycle::{
    CreateReplicaRequest, CreateReplicaRpc, DestroyReplicaRequest, DestroyReplicaRpc,
};
use crate::quiesce::{QuiesceRequest, QuiesceRpc, WakeRpc};
use crate::raft::network::{
    AppendRpc, PreVoteRpc, RaftRpcError, RangeMessage, SnapshotChunk, SnapshotRpc,
    TransferLeaderRpc, VoteRpc,
};
use crate::raft::types::TypeConfig;
use crate::replica::{Raft, Replica};
use crate::replica_gc::RangeStatusRpc;
use crate::replica_record::Tombstone;
use crate::split::AdminSplitRpc;
use crate::store::Store;

/// Serves a KV batch at the node holding the range's lease.
pub struct BatchRpc;
impl Rpc for BatchRpc {
    const KIND: u16 = kinds::BATCH;
    const NAME: &'static str = "Batch";
    type Request = BatchRequest;
    type Response = BatchResult;
}

impl Store {
    /// Registers every handler of the store on its transport. Each handler
    /// holds a clone of the store.
    pub(crate) fn register_handlers(&self) -> Result<(), StoreError> {
        self.register_raft_handlers()?;
        let transport = &self.inner.transport;

        let store = self.clone();
        transport.register::<BatchRpc, _, _>(move |_, request| {
            let store = store.clone();
            async move { store.send(request).await }
        })?;
        let store = self.clone();
        transport.register::<AdminSplitRpc, _, _>(
            move |_, request: meridian_kvapi::wire::AdminSplitRequest| {
                let store = store.clone();
                async move {
                    store
                        .split_range(request.range_id, &request.split_key, request.right_range_id)
                        .await
                }
            },
        )?;
        let store = self.clone();
        transport.register::<CreateReplicaRpc, _, _>(move |_, request: CreateReplicaRequest| {
            let store = store.clone();
            async move { store.create_requested_replica(&request).await }
        })?;
        let store = self.clone();
        transport.register::<DestroyReplicaRpc, _, _>(
            move |_, request: DestroyReplicaRequest| {
                let store = store.clone();
                async move {
                    let DestroyReplicaRequest {
                        range_id,
                        replica_id,
                    } = request;
                    store
                        .destroy_replica(range_id, replica_id, replica_id + 1)
                        .await
                        .map_err(|e| RemoteReplicaError::from_store(range_id, e))
                }
            },
        )?;
        let store = self.clone();
        transport.register::<RangeStatusRpc, _, _>(move |_, range_id: RangeId| {
            let store = store.clone();
            async move { store.range_status(range_id).await }
        })?;
        let store = self.clone();
        transport.register::<QuiesceRpc, _, _>(move |_, request: QuiesceRequest| {
            let store = store.clone();
            async move {
                store
                    .replica(request.range_id)
                    .is_some_and(|replica| replica.quiesce_if_led_by(request.leader, request.term))
            }
        })?;
        let store = self.clone();
        transport.register::<ClosedTimestampsRpc, _, _>(move |_, updates| {
            let store = store.clone();
            async move { store.receive_closed_timestamps(updates) }
        })?;
        let store = self.clone();
        transport.register::<WakeRpc, _, _>(move |_, ranges: Vec<RangeId>| {
            let store = store.clone();
            async move {
                for range_id in ranges {
                    if let Some(replica) = store.replica(range_id) {
                        replica.wake_local();
                    }
                }
            }
        })?;
        Ok(())
    }

    /// The Raft messages: each goes to the replica it names
    /// ([`Store::addressed_replica`]).
    fn register_raft_handlers(&self) -> Result<(), StoreError> {
        let transport = &self.inner.transport;
        macro_rules! raft_handler {
            ($rpc:ty, |$raft:ident, $body:ident| $call:expr) => {{
                let store = self.clone();
                transport.register::<$rpc, _, _>(move |_, message: RangeMessage<_>| {
                    let store = store.clone();
                    async move {
                        let replica =
                            store.addressed_replica(message.range_id, message.to_replica)?;
                        if is_vote_kind(<$rpc as Rpc>::KIND) {
                            store.check_votes_granted(message.range_id)?;
                        }
                        let $raft = replica.raft();
                        let $body = message.body;
                        Ok($call?)
                    }
                })?;
            }};
        }
        raft_handler!(AppendRpc, |raft, req| {
            await_predecessor(raft, &req).await;
            raft.append_entries(req).await
        });
        raft_handler!(VoteRpc, |raft, req| raft.vote(req).await);
        raft_handler!(PreVoteRpc, |raft, req| raft.pre_vote(req).await);
        raft_handler!(TransferLeaderRpc, |raft, req| raft
            .handle_transfer_leader(req)
            .await);
        let store = self.clone();
        transport.register::<SnapshotRpc, _, _>(
            move |_, message: RangeMessage<SnapshotChunk>| {
                let store = store.clone();
                async move {
                    store.addressed_replica(message.range_id, message.to_replica)?;
                    store
                        .receive_snapshot_chunk(message.range_id, message.body)
                        .await
                }
            },
        )?;
        Ok(())
    }
}

fn is_vote_kind(kind: u16) -> bool {
    kind == kinds::RAFT_VOTE || kind == kinds::RAFT_PRE_VOTE
}

impl Store {
    /// The replica a Raft message for replica `to_replica` of `range_id`
    /// goes to. A message for an older replica than the one here, or for
    /// one below this node's tombstone, is refused (`ReplicaRemoved`): it
    /// comes from a leader that has not seen the removal, and must not
    /// count the new replica's empty state as the old member's. A message
    /// for a newer replica than the one here, or for none, is
    /// `RangeNotFound`: the replica is about to be created.
    pub(crate) fn addressed_replica(
        &self,
        range_id: RangeId,
        to_replica: ReplicaId,
    ) -> Result<Arc<Replica>, RaftRpcError> {
        let removed = RaftRpcError::ReplicaRemoved {
            range_id,
            replica_id: to_replica,
        };
        match self.replica(range_id) {
            Some(replica) if replica.replica_id() == to_replica => Ok(replica),
            Some(replica) if replica.replica_id() > to_replica => Err(removed),
            Some(_) => Err(RaftRpcError::RangeNotFound(range_id)),
            None => match Tombstone::load(&self.inner.engine, range_id) {
                Ok(tombstone) if tombstone.next_replica_id > to_replica => Err(removed),
                _ => Err(RaftRpcError::RangeNotFound(range_id)),
            },
        }
    }

    /// Refuses a vote while this node withholds its votes after a start
    /// ([`crate::lease::votes_withheld_until`]); the candidate sees an
    /// unreachable peer and tries again later.
    fn check_votes_granted(&self, range_id: RangeId) -> Result<(), RaftRpcError> {
        let now = std::time::Instant::now();
        match self.inner.votes_withheld_until.checked_duration_since(now) {
            Some(left) if !left.is_zero() => Err(RaftRpcError::VotesWithheld {
                range_id,
                for_ms: left.as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }
}

/// How long an append that overtook its predecessor waits for it.
const PREDECESSOR_WAIT: Duration = Duration::from_millis(100);

/// A leader pipelines its appends (`GroupClient::stream_append`), each its
/// own call, so one may overtake its predecessor on the way. Refused as a
/// conflict, it would tell the leader that this follower's log lacks an
/// entry the predecessor is about to add, which openraft takes for the
/// log going back. So an append whose previous entry is beyond this
/// replica's log waits a moment for it; one still beyond after that (a
/// follower truly behind) gets its conflict.
async fn await_predecessor(raft: &Raft, request: &AppendEntriesRequest<TypeConfig>) {
    let Some(prev) = &request.prev_log_id else {
        return;
    };
    let behind = raft
        .metrics()
        .borrow_watched()
        .last_log_index
        .is_none_or(|last| last < prev.index);
    if behind {
        let wait = raft.wait(Some(PREDECESSOR_WAIT));
        let _ = wait
            .log_index_at_least(Some(prev.index), "the previous append")
            .await;
    }
}
