//! Replica GC: destroys local replicas that their range no longer has. A
//! node that was down while its replicas were replaced comes back with
//! copies no one sends anything to; nothing else would ever remove them.
//!
//! Whether a replica goes is decided by its range's current leaseholder,
//! not by the meta record (which may be stale): see kvserver's
//! `replica_gc` for the rule. The meta record only helps find the
//! leaseholder. A replica this node leads is kept (it is the range).
//!
//! Not here: how often it runs (`queues`: every tenth pass), the rule and
//! destroying a replica's data (kvserver).

use std::collections::HashMap;

use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use meridian_kvclient::ClientError;
use meridian_kvserver::store::StoreError;

use crate::member::Member;
use crate::system;

#[derive(Debug, thiserror::Error)]
pub enum ReplicaGcError {
    #[error("reading the meta records: {0}")]
    Meta(#[source] ClientError),
    #[error("destroying range {range_id}: {source}")]
    Destroy {
        range_id: RangeId,
        source: StoreError,
    },
}

/// One GC pass over every local replica this node does not lead: each is
/// judged by its range's leaseholder (kvserver's `Store::gc_replica`),
/// found among the replica's own members and the nodes of the range's meta
/// record.
pub(crate) async fn collect_removed_replicas(member: &Member) -> Result<(), ReplicaGcError> {
    let me = member.ident.node_id;
    let meta: HashMap<RangeId, RangeDescriptor> = system::all_meta(&member.ds)
        .await
        .map_err(ReplicaGcError::Meta)?
        .into_iter()
        .map(|d| (d.range_id, d))
        .collect();
    for replica in member.store.replicas() {
        if replica.leader() == Some(me) {
            continue;
        }
        let range_id = replica.range_id();
        let candidates: Vec<NodeId> = meta
            .get(&range_id)
            .map(|d| d.replicas.iter().map(|r| r.node_id).collect())
            .unwrap_or_default();
        member
            .store
            .gc_replica(range_id, &candidates)
            .await
            .map_err(|source| ReplicaGcError::Destroy { range_id, source })?;
    }
    Ok(())
}
