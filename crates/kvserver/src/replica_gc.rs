//! Replica GC, decided by the range's leaseholder: whether a replica on
//! this node is one its range no longer has, and destroying it if so.
//!
//! A node that was down while its replicas were replaced, or removed while
//! unreachable, holds copies no one sends anything to. Whether such a copy
//! may go is asked of the range's current leaseholder ([`RangeStatusRpc`]:
//! its descriptor as of everything committed, and the range's next replica
//! id), never read from a possibly stale meta record, as CockroachDB's
//! replica GC queue does. The replica goes ([`gc_verdict`]) when the range
//! no longer names it and its id is below the range's next replica id (an
//! id at or above that one belongs to an addition in progress, whose
//! membership change has not been applied yet). The destroy names the
//! replica id it judged, so it never removes a newer replica created
//! meanwhile, and leaves a tombstone.
//!
//! Not here: how often GC runs (the server's replica GC queue), creating
//! and destroying replicas ([`crate::lifecycle`]).

use std::collections::BTreeSet;
use std::time::Duration;

use meridian_kvapi::{KvError, NodeId, RangeDescriptor, RangeId, ReplicaId};
use meridian_transport::Rpc;
use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::StoreError;
use crate::store::Store;

/// Asks a range's leaseholder for the range's current state.
pub struct RangeStatusRpc;
impl Rpc for RangeStatusRpc {
    const KIND: u16 = meridian_kvapi::wire::kinds::RANGE_STATUS;
    const NAME: &'static str = "RangeStatus";
    const IDEMPOTENT: bool = true;
    type Request = RangeId;
    type Response = Result<RangeStatus, KvError>;
}

/// A range as its leaseholder knows it once it applied everything
/// committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeStatus {
    pub descriptor: RangeDescriptor,
    pub next_replica_id: ReplicaId,
}

/// How long one leaseholder gets to answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// How many `NotLeaseholder` hints a lookup follows.
const MAX_HINTS: usize = 5;

/// Whether replica `my_replica` on node `me` may be collected, given its
/// range's status at the leaseholder: `Some(tombstone)` (no replica below
/// it is created here again) or `None` to keep it.
pub fn gc_verdict(me: NodeId, my_replica: ReplicaId, status: &RangeStatus) -> Option<ReplicaId> {
    let named = status
        .descriptor
        .replicas
        .iter()
        .any(|r| r.node_id == me && r.replica_id == my_replica);
    if named || my_replica >= status.next_replica_id {
        return None;
    }
    Some(status.next_replica_id.max(my_replica + 1))
}

impl Store {
    /// Answers [`RangeStatusRpc`] at the leaseholder: after a read-index
    /// round, so the descriptor reflects every committed change.
    pub(crate) async fn range_status(&self, range_id: RangeId) -> Result<RangeStatus, KvError> {
        let replica = self
            .replica(range_id)
            .ok_or(KvError::RangeNotFound { range_id })?;
        replica.activate().await;
        if let Err(e) = replica
            .raft()
            .ensure_linearizable(ReadPolicy::ReadIndex)
            .await
        {
            let forward = e
                .forward_to_leader()
                .map(|f| f.leader_node.as_ref().map(|n| n.node_id));
            return Err(replica.raft_error(forward, &e));
        }
        let leads =
            replica.raft().metrics().borrow_watched().current_leader == Some(replica.replica_id());
        if !leads {
            return Err(replica.not_leaseholder(replica.leader()));
        }
        Ok(RangeStatus {
            descriptor: replica.descriptor(),
            next_replica_id: replica.next_replica_id(),
        })
    }

    /// Asks the leaseholder of `range_id` whether this node's replica is
    /// still part of the range, and destroys it if not. The leaseholder is
    /// looked for among the members this replica knows and `candidates`
    /// (e.g. the nodes of the range's meta record), following hints. A
    /// replica this node leads, or one no leaseholder answered for, stays.
    /// Returns whether the replica was destroyed.
    pub async fn gc_replica(
        &self,
        range_id: RangeId,
        candidates: &[NodeId],
    ) -> Result<bool, StoreError> {
        let Some(replica) = self.replica(range_id) else {
            return Ok(false);
        };
        if replica.leader() == Some(self.node_id()) {
            return Ok(false);
        }
        let my_replica = replica.replica_id();
        let mut to_ask: Vec<NodeId> = replica
            .leader()
            .into_iter()
            .chain(replica.descriptor().replicas.iter().map(|r| r.node_id))
            .chain(candidates.iter().copied())
            .filter(|&n| n != self.node_id())
            .collect();
        let mut asked = BTreeSet::new();
        let mut hints = 0;
        let mut status = None;
        while let Some(node) = to_ask.first().copied() {
            to_ask.remove(0);
            if !asked.insert(node) {
                continue;
            }
            match self
                .inner
                .transport
                .call::<RangeStatusRpc>(node, &range_id, STATUS_TIMEOUT)
                .await
            {
                Ok(Ok(answer)) => {
                    status = Some(answer);
                    break;
                }
                Ok(Err(KvError::NotLeaseholder {
                    leaseholder: Some(hint),
                    ..
                })) if hints < MAX_HINTS => {
                    hints += 1;
                    to_ask.insert(0, hint.node_id);
                }
                _ => {}
            }
        }
        let Some(status) = status else {
            return Ok(false);
        };
        let Some(tombstone) = gc_verdict(self.node_id(), my_replica, &status) else {
            return Ok(false);
        };
        info!(
            range_id,
            replica_id = my_replica,
            "destroying a replica its range no longer has"
        );
        self.destroy_replica(range_id, my_replica, tombstone)
            .await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use meridian_kvapi::{ReplicaDescriptor, ReplicaKind};

    use super::*;

    fn status(members: &[(NodeId, ReplicaId)], next_replica_id: ReplicaId) -> RangeStatus {
        RangeStatus {
            descriptor: RangeDescriptor {
                range_id: 1,
                start_key: b"a".to_vec(),
                end_key: b"z".to_vec(),
                replicas: members
                    .iter()
                    .map(|&(node_id, replica_id)| ReplicaDescriptor {
                        node_id,
                        store_id: node_id,
                        replica_id,
                        kind: ReplicaKind::Voter,
                    })
                    .collect(),
                generation: 4,
            },
            next_replica_id,
        }
    }

    #[test]
    fn a_replica_the_range_names_stays() {
        assert_eq!(
            gc_verdict(3, 3, &status(&[(1, 1), (2, 2), (3, 3)], 4)),
            None
        );
    }

    #[test]
    fn a_removed_replica_goes_with_a_tombstone_at_the_next_id() {
        assert_eq!(
            gc_verdict(3, 3, &status(&[(1, 1), (2, 2), (4, 4)], 5)),
            Some(5)
        );
    }

    /// Node 3 was removed (replica 3) and is being added again as replica
    /// 5: the leader created replica 5 here, and the membership naming it
    /// is not applied yet. The new replica stays.
    #[test]
    fn a_replica_being_added_stays_before_its_membership_is_applied() {
        assert_eq!(
            gc_verdict(3, 5, &status(&[(1, 1), (2, 2), (4, 4)], 5)),
            None
        );
    }

    #[test]
    fn the_old_incarnation_of_a_re_added_node_goes() {
        assert_eq!(
            gc_verdict(3, 3, &status(&[(1, 1), (2, 2), (3, 5)], 6)),
            Some(6)
        );
    }
}
