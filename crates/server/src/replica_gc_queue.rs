//! Replica GC: destroys local replicas that their range no longer has. A
//! node that was down while its replicas were replaced comes back with
//! copies no one sends anything to; nothing else would ever remove them.
//!
//! A replica goes only when its range's meta record is of a newer
//! generation than the replica's descriptor and does not name this node.
//! A replica this node leads is kept (it is the range), and so is one that
//! never received data (it is being added right now).
//!
//! Not here: how often it runs (`queues`: every tenth pass), destroying a
//! replica's data (kvserver's store).

use std::collections::HashMap;

use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use meridian_kvclient::ClientError;
use meridian_kvserver::store::StoreError;
use tracing::info;

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

/// What the GC knows of one local replica.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalReplica<'a> {
    pub descriptor: &'a RangeDescriptor,
    pub leads: bool,
    pub applied_index: u64,
}

/// Whether the replica on node `me` is one its range no longer has, given
/// the range's meta record (`None`: not found).
pub(crate) fn is_removed(
    me: NodeId,
    local: LocalReplica<'_>,
    meta: Option<&RangeDescriptor>,
) -> bool {
    if local.leads || local.applied_index == 0 {
        return false;
    }
    meta.is_some_and(|current| {
        current.generation > local.descriptor.generation && current.replica_on(me).is_none()
    })
}

/// One GC pass over every local replica.
pub(crate) async fn collect_removed_replicas(member: &Member) -> Result<(), ReplicaGcError> {
    let me = member.ident.node_id;
    let meta: HashMap<RangeId, RangeDescriptor> = system::all_meta(&member.ds)
        .await
        .map_err(ReplicaGcError::Meta)?
        .into_iter()
        .map(|d| (d.range_id, d))
        .collect();
    for replica in member.store.replicas() {
        let descriptor = replica.descriptor();
        let local = LocalReplica {
            descriptor: &descriptor,
            leads: replica.leader() == Some(me),
            applied_index: replica.applied_index(),
        };
        if !is_removed(me, local, meta.get(&descriptor.range_id)) {
            continue;
        }
        let range_id = descriptor.range_id;
        info!(range_id, "destroying a replica its range no longer has");
        member
            .store
            .destroy_replica(range_id)
            .await
            .map_err(|source| ReplicaGcError::Destroy { range_id, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use meridian_kvapi::ReplicaDescriptor;

    use super::*;

    fn range(generation: u64, voters: &[NodeId]) -> RangeDescriptor {
        RangeDescriptor {
            range_id: 7,
            start_key: vec![0x10],
            end_key: vec![0x20],
            replicas: voters
                .iter()
                .map(|&n| ReplicaDescriptor::voter(n))
                .collect(),
            generation,
        }
    }

    fn local(descriptor: &RangeDescriptor) -> LocalReplica<'_> {
        LocalReplica {
            descriptor,
            leads: false,
            applied_index: 10,
        }
    }

    #[test]
    fn a_replica_replaced_while_away_is_removed() {
        let mine = range(3, &[1, 2, 3]);
        let current = range(5, &[1, 2, 4]);
        assert!(is_removed(3, local(&mine), Some(&current)));
    }

    #[test]
    fn a_replica_still_named_or_not_older_is_kept() {
        let mine = range(3, &[1, 2, 3]);
        // Still a member at a newer generation (e.g. after a split).
        assert!(!is_removed(3, local(&mine), Some(&range(5, &[1, 2, 3]))));
        // Meta not newer than the replica: the replica may be ahead of it.
        assert!(!is_removed(3, local(&mine), Some(&range(3, &[1, 2, 4]))));
        // No meta record at all.
        assert!(!is_removed(3, local(&mine), None));
    }

    #[test]
    fn a_leading_or_empty_replica_is_kept() {
        let mine = range(3, &[1, 2, 3]);
        let current = range(5, &[1, 2, 4]);
        let leading = LocalReplica {
            leads: true,
            ..local(&mine)
        };
        assert!(!is_removed(3, leading, Some(&current)));
        let empty = LocalReplica {
            applied_index: 0,
            ..local(&mine)
        };
        assert!(!is_removed(3, empty, Some(&current)));
    }
}
