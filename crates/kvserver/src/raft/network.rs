//! Raft messages over the QUIC transport.
//!
//! Every group of a node shares the node's one connection per peer; each
//! message names its range ([`RangeMessage`]) and the receiving [`Store`]
//! hands it to that range's group. A message for a range the receiver does
//! not hold is answered with [`RaftRpcError::RangeNotFound`], which the
//! sender treats as an unreachable peer (openraft backs off and retries; the
//! replica may be about to be created there).
//!
//! [`Store`]: crate::store::Store

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use meridian_kvapi::wire::kinds;
use meridian_kvapi::{NodeId, RangeId, ReplicaId};
use meridian_transport::{Rpc, Transport, TransportError};
use openraft::alias::LogIdOf;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{
    Fatal, NetworkError, RPCError, RaftError, ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::{Deserialize, Serialize};

use super::types::{ReplicaNode, Snapshot, SnapshotMeta, TypeConfig, Vote};
use meridian_storage::RangeData;

/// The least time an append gets before it counts as failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Appends in flight to one follower at once ([`GroupClient`]'s
/// `stream_append`).
const APPEND_PIPELINE_DEPTH: usize = 8;

/// What the response stream of a pipelined append yields.
type AppendStreamItem = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// A Raft message for one replica of one range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RangeMessage<T> {
    pub range_id: RangeId,
    /// The replica the sender means: a message for an older replica of the
    /// range on the receiving node never reaches a newer one.
    pub to_replica: ReplicaId,
    pub body: T,
}

/// Why a peer could not hand a message to its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RaftRpcError {
    #[error("range {0} not found on the receiving node")]
    RangeNotFound(RangeId),
    /// The message was for a replica this node destroyed or replaced.
    #[error("range {range_id}: replica {replica_id} was removed from the receiving node")]
    ReplicaRemoved {
        range_id: RangeId,
        replica_id: ReplicaId,
    },
    /// The receiving group has stopped or failed.
    #[error("raft: {0}")]
    Fatal(Box<Fatal<TypeConfig>>),
    /// A snapshot chunk that does not continue the snapshot being received
    /// (another snapshot, or a chunk lost or repeated on the way).
    #[error("snapshot chunk of range {range_id} at record {offset} is out of order")]
    SnapshotChunkOutOfOrder { range_id: RangeId, offset: u64 },
    /// The receiver answered every chunk of a snapshot, the last one too,
    /// without the installation's result.
    #[error("snapshot receiver did not answer the last chunk")]
    SnapshotUnanswered,
    /// The receiver started less than a lease ago and grants no vote yet
    /// (it may have promised its vote to a leader before it went down).
    #[error("node grants no vote for range {range_id} for another {for_ms} ms after its start")]
    VotesWithheld { range_id: RangeId, for_ms: u64 },
    /// The snapshot's keys overlap those of another range this node holds
    /// data of (it has not applied a split yet, or is about to be
    /// removed): the sender tries again later, by when that range has
    /// shrunk or gone.
    #[error("snapshot of range {range_id} overlaps range {other} on the receiving node")]
    SnapshotOverlaps { range_id: RangeId, other: RangeId },
}

impl From<Fatal<TypeConfig>> for RaftRpcError {
    fn from(e: Fatal<TypeConfig>) -> Self {
        RaftRpcError::Fatal(Box::new(e))
    }
}

impl From<RaftError<TypeConfig>> for RaftRpcError {
    fn from(e: RaftError<TypeConfig>) -> Self {
        e.unwrap_fatal().into()
    }
}

/// One piece of a snapshot on the wire. A snapshot travels as a sequence
/// of chunks of at most openraft's `snapshot_max_chunk_size` bytes of data
/// records (so no frame comes near the transport's size limit, whatever the
/// range's size); the first chunk carries the range-local records, the last
/// is marked `done` and answered with the installation's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    /// Index of this chunk's first data record within the snapshot.
    pub offset: u64,
    /// The range-local and transaction records: in the first chunk only.
    pub local: Vec<(meridian_keys::RangeLocalKind, Vec<u8>)>,
    pub txn_records: Vec<(Vec<u8>, Vec<u8>)>,
    pub records: Vec<(Vec<u8>, Vec<u8>)>,
    pub done: bool,
}

/// Splits a snapshot's records into chunks of about `chunk_bytes` bytes.
pub fn snapshot_chunks(
    vote: Vote,
    meta: SnapshotMeta,
    data: RangeData,
    chunk_bytes: usize,
) -> Vec<SnapshotChunk> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    let mut offset = 0u64;
    let mut local = Some((data.local, data.txn_records));
    let total = data.data.len();
    for (i, record) in data.data.into_iter().enumerate() {
        size += record.0.len() + record.1.len();
        current.push(record);
        if size >= chunk_bytes && i + 1 < total {
            let records = std::mem::take(&mut current);
            let count = records.len() as u64;
            let (local, txn_records) = local.take().unwrap_or_default();
            chunks.push(SnapshotChunk {
                vote,
                meta: meta.clone(),
                offset,
                local,
                txn_records,
                records,
                done: false,
            });
            offset += count;
            size = 0;
        }
    }
    let (local, txn_records) = local.take().unwrap_or_default();
    chunks.push(SnapshotChunk {
        vote,
        meta,
        offset,
        local,
        txn_records,
        records: current,
        done: true,
    });
    chunks
}

macro_rules! raft_rpc {
    ($name:ident, $kind:expr, $req:ty, $resp:ty) => {
        pub struct $name;
        impl Rpc for $name {
            const KIND: u16 = $kind;
            const NAME: &'static str = stringify!($name);
            // Raft tolerates duplicated and reordered messages.
            const IDEMPOTENT: bool = true;
            type Request = RangeMessage<$req>;
            type Response = Result<$resp, RaftRpcError>;
        }
    };
}

raft_rpc!(
    AppendRpc,
    kinds::RAFT_APPEND,
    AppendEntriesRequest<TypeConfig>,
    AppendEntriesResponse<TypeConfig>
);
raft_rpc!(
    VoteRpc,
    kinds::RAFT_VOTE,
    VoteRequest<TypeConfig>,
    VoteResponse<TypeConfig>
);
raft_rpc!(
    PreVoteRpc,
    kinds::RAFT_PRE_VOTE,
    VoteRequest<TypeConfig>,
    VoteResponse<TypeConfig>
);
raft_rpc!(
    SnapshotRpc,
    kinds::RAFT_SNAPSHOT,
    SnapshotChunk,
    Option<SnapshotResponse<TypeConfig>>
);
raft_rpc!(
    TransferLeaderRpc,
    kinds::RAFT_TRANSFER_LEADER,
    TransferLeaderRequest<TypeConfig>,
    TransferLeaderResponse<TypeConfig>
);

/// Creates one range's network clients. `new_client` is called per vote
/// and per leadership transfer, so it only copies handles.
#[derive(Clone)]
pub struct NetworkFactory {
    pub transport: Transport,
    pub range_id: RangeId,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = GroupClient;

    async fn new_client(&mut self, target: ReplicaId, node: &ReplicaNode) -> GroupClient {
        GroupClient {
            transport: self.transport.clone(),
            range_id: self.range_id,
            target: node.node_id,
            to_replica: target,
        }
    }
}

/// What a pipelined append stream has yielded so far.
#[derive(Default)]
struct PipelineState {
    stopped: bool,
    /// The greatest log id the follower acknowledged in this stream.
    acked: Option<LogIdOf<TypeConfig>>,
}

impl PipelineState {
    /// The item to yield for one append's outcome, or `None` to end the
    /// stream: after an error, a conflict or a partial success (as
    /// openraft's sequential default does), and, without yielding it, at
    /// a conflict on an entry the follower already acknowledged. That one
    /// can only be an append that overtook its predecessor on the way
    /// (the follower waits for a late predecessor, but only so long), and
    /// openraft would take it for the follower's log going back: ending
    /// the stream makes it resend from what was acknowledged.
    fn next(
        &mut self,
        prev: Option<LogIdOf<TypeConfig>>,
        last: Option<LogIdOf<TypeConfig>>,
        response: Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>>,
    ) -> Option<AppendStreamItem> {
        if self.stopped {
            return None;
        }
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                self.stopped = true;
                return Some(Err(e));
            }
        };
        let overtaken = response.is_conflict()
            && prev.as_ref().map(|p| p.index) <= self.acked.as_ref().map(|a| a.index);
        if overtaken {
            self.stopped = true;
            return None;
        }
        let partial = matches!(
            &response,
            AppendEntriesResponse::PartialSuccess(matched) if *matched != last
        );
        let result = response.into_stream_result(prev, last);
        if let Ok(matched) = &result {
            self.acked = self.acked.max(*matched);
        }
        self.stopped = partial || result.is_err();
        Some(Ok(result))
    }
}

/// Sends one range's Raft messages to one peer: the node of the replica.
#[derive(Clone)]
pub struct GroupClient {
    transport: Transport,
    range_id: RangeId,
    target: NodeId,
    to_replica: ReplicaId,
}

fn rpc_error(e: TransportError) -> RPCError<TypeConfig> {
    match e {
        TransportError::UnknownNode(_)
        | TransportError::Connect { .. }
        | TransportError::Tls { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

fn remote_error(e: RaftRpcError) -> RPCError<TypeConfig> {
    match e {
        RaftRpcError::RangeNotFound(_)
        | RaftRpcError::ReplicaRemoved { .. }
        | RaftRpcError::VotesWithheld { .. }
        | RaftRpcError::SnapshotOverlaps { .. } => RPCError::Unreachable(Unreachable::new(&e)),
        RaftRpcError::Fatal(_)
        | RaftRpcError::SnapshotChunkOutOfOrder { .. }
        | RaftRpcError::SnapshotUnanswered => RPCError::Network(NetworkError::new(&e)),
    }
}

impl GroupClient {
    async fn call<R: Rpc<Request = RangeMessage<B>, Response = Result<T, RaftRpcError>>, B, T>(
        &self,
        body: B,
        timeout: Duration,
    ) -> Result<T, RPCError<TypeConfig>> {
        let message = RangeMessage {
            range_id: self.range_id,
            to_replica: self.to_replica,
            body,
        };
        self.transport
            .call::<R>(self.target, &message, timeout)
            .await
            .map_err(rpc_error)?
            .map_err(remote_error)
    }
}

impl RaftNetworkV2<TypeConfig> for GroupClient {
    type SnapshotData = RangeData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // openraft offers the heartbeat interval here, and enforces it on
        // heartbeats itself; entries and a first dial to a restarted peer
        // may need longer, so the transport waits at least APPEND_TIMEOUT.
        self.call::<AppendRpc, _, _>(rpc, option.hard_ttl().max(APPEND_TIMEOUT))
            .await
    }

    /// Pipelined: up to [`APPEND_PIPELINE_DEPTH`] appends in flight, the
    /// responses yielded in the order of the requests. openraft's default
    /// sends one and waits for its answer before the next, so a write
    /// arriving while the append that carries the previous commit is on
    /// its way waited a whole round trip for it: two round trips per
    /// write to a quorum in another region where one is the floor. Each
    /// append is its own call on the peer's one connection, sent in
    /// order; one that overtakes its predecessor on the way is refused as
    /// a conflict, and openraft resends from where the follower matches.
    /// The stream ends after the first error, conflict or partial
    /// success, as the default's does.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, AppendStreamItem>, RPCError<TypeConfig>>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        let client = self.clone();
        let timeout = option.hard_ttl().max(APPEND_TIMEOUT);
        Box::pin(async move {
            let responses = input
                .map(move |request| {
                    let client = client.clone();
                    async move {
                        let prev = request.prev_log_id;
                        let last = match request.entries.last() {
                            Some(entry) => Some(entry.log_id),
                            None => prev,
                        };
                        let response = client.call::<AppendRpc, _, _>(request, timeout).await;
                        (prev, last, response)
                    }
                })
                .buffered(APPEND_PIPELINE_DEPTH)
                .scan(PipelineState::default(), |state, (prev, last, response)| {
                    std::future::ready(state.next(prev, last, response))
                });
            let responses: BoxStream<'s, AppendStreamItem> = Box::pin(responses);
            Ok(responses)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<VoteRpc, _, _>(rpc, option.hard_ttl()).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<PreVoteRpc, _, _>(rpc, option.hard_ttl()).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        // Snapshots are bigger than heartbeats: each chunk gets at least 30 s.
        let timeout = option.hard_ttl().max(Duration::from_secs(30));
        let chunk_bytes = option.snapshot_chunk_size().unwrap_or(3 << 20);
        let chunks = snapshot_chunks(vote, snapshot.meta, snapshot.snapshot, chunk_bytes);
        let send_all = async {
            for chunk in chunks {
                if let Some(response) = self.call::<SnapshotRpc, _, _>(chunk, timeout).await? {
                    return Ok(response);
                }
            }
            Err(RPCError::Network(NetworkError::new(
                &RaftRpcError::SnapshotUnanswered,
            )))
        };
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = send_all => result.map_err(|e| match e {
                RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                RPCError::Network(n) => StreamingError::Network(n),
                other => StreamingError::Network(NetworkError::new(&other)),
            }),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call::<TransferLeaderRpc, _, _>(req, option.hard_ttl())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meridian_keys::RangeLocalKind;

    fn log_id(index: u64) -> Option<LogIdOf<TypeConfig>> {
        let leader =
            <openraft::alias::LeaderIdOf<TypeConfig> as openraft::vote::RaftLeaderIdExt>::new_committed(
                1, 1,
            );
        Some(LogIdOf::<TypeConfig>::new(leader, index))
    }

    #[test]
    fn a_conflict_below_an_acknowledged_entry_ends_the_stream_unseen() {
        let mut state = PipelineState::default();
        // Appends (5, 7] and (7, 9]: the second reached the follower first.
        let first = state.next(log_id(5), log_id(7), Ok(AppendEntriesResponse::Success));
        assert!(matches!(first, Some(Ok(Ok(m))) if m == log_id(7)));
        let overtaken = state.next(log_id(7), log_id(9), Ok(AppendEntriesResponse::Conflict));
        assert!(
            overtaken.is_none(),
            "openraft would read it as the log going back"
        );
        assert!(state
            .next(log_id(9), log_id(10), Ok(AppendEntriesResponse::Success))
            .is_none());
    }

    #[test]
    fn a_conflict_beyond_what_was_acknowledged_is_the_followers_answer() {
        let mut state = PipelineState::default();
        let first = state.next(log_id(5), log_id(7), Ok(AppendEntriesResponse::Success));
        assert!(first.is_some());
        let conflict = state.next(log_id(8), log_id(9), Ok(AppendEntriesResponse::Conflict));
        assert!(matches!(conflict, Some(Ok(Err(_)))));
        assert!(state
            .next(log_id(9), log_id(10), Ok(AppendEntriesResponse::Success))
            .is_none());
    }

    #[test]
    fn chunks_cover_every_record_once_in_order() {
        let data = RangeData {
            local: vec![(RangeLocalKind::AppliedState, b"applied".to_vec())],
            txn_records: vec![(b"txn".to_vec(), b"record".to_vec())],
            data: (0..100u32)
                .map(|i| (i.to_be_bytes().to_vec(), vec![0u8; 96]))
                .collect(),
        };
        let chunks = snapshot_chunks(Vote::new(1, 1), SnapshotMeta::default(), data.clone(), 1000);
        assert!(chunks.len() > 5, "{} chunks", chunks.len());
        assert_eq!(chunks.iter().filter(|c| c.done).count(), 1);
        assert!(chunks.last().unwrap().done);
        assert_eq!(chunks[0].local, data.local);
        assert_eq!(chunks[0].txn_records, data.txn_records);
        assert!(chunks[1..].iter().all(|c| c.txn_records.is_empty()));
        assert!(chunks[1..].iter().all(|c| c.local.is_empty()));
        let mut offset = 0;
        let mut records = Vec::new();
        for chunk in chunks {
            assert_eq!(chunk.offset, offset);
            offset += chunk.records.len() as u64;
            records.extend(chunk.records);
        }
        assert_eq!(records, data.data);
        // An empty range is one chunk.
        let empty = snapshot_chunks(
            Vote::new(1, 1),
            SnapshotMeta::default(),
            RangeData::default(),
            1000,
        );
        assert_eq!(empty.len(), 1);
        assert!(empty[0].done);
    }
}
