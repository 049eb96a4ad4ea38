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

use meridian_transport::{Rpc, Transport, TransportError};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::OptionalSend;
use serde::{Deserialize, Serialize};

use super::types::{ReplicaNode, Snapshot, SnapshotMeta, TypeConfig, Vote};
use meridian_storage::RangeData;

/// The least time an append gets before it counts as failed.
const APPEND_TIMEOUT: Duration = Duration::from_secs(2);

/// A Raft message for one range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RangeMessage<T> {
    pub range_id: u64,
    pub body: T,
}

/// Why a peer could not hand a message to its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RaftRpcError {
    #[error("range {0} not found on the receiving node")]
    RangeNotFound(u64),
    #[error("raft: {0}")]
    Raft(String),
}

/// A full snapshot as it crosses the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotMessage {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub data: RangeData,
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
    100,
    AppendEntriesRequest<TypeConfig>,
    AppendEntriesResponse<TypeConfig>
);
raft_rpc!(
    VoteRpc,
    101,
    VoteRequest<TypeConfig>,
    VoteResponse<TypeConfig>
);
raft_rpc!(
    PreVoteRpc,
    102,
    VoteRequest<TypeConfig>,
    VoteResponse<TypeConfig>
);
raft_rpc!(
    SnapshotRpc,
    103,
    SnapshotMessage,
    SnapshotResponse<TypeConfig>
);
raft_rpc!(
    TransferLeaderRpc,
    104,
    TransferLeaderRequest<TypeConfig>,
    TransferLeaderResponse<TypeConfig>
);

/// Creates one range's network clients. `new_client` is called per vote
/// and per leadership transfer, so it only copies handles.
#[derive(Clone)]
pub struct NetworkFactory {
    pub transport: Transport,
    pub range_id: u64,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = GroupClient;

    async fn new_client(&mut self, target: u64, _node: &ReplicaNode) -> GroupClient {
        GroupClient {
            transport: self.transport.clone(),
            range_id: self.range_id,
            target,
        }
    }
}

/// Sends one range's Raft messages to one peer.
pub struct GroupClient {
    transport: Transport,
    range_id: u64,
    target: u64,
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
        RaftRpcError::RangeNotFound(_) => RPCError::Unreachable(Unreachable::new(&e)),
        RaftRpcError::Raft(_) => RPCError::Network(NetworkError::new(&e)),
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
        let message = SnapshotMessage {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        // Snapshots are bigger than heartbeats: give them at least 30 s.
        let timeout = option.hard_ttl().max(Duration::from_secs(30));
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = self.call::<SnapshotRpc, _, _>(message, timeout) => result.map_err(|e| match e {
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
