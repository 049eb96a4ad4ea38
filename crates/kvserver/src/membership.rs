//! Membership changes of a range, run at its leader: adding a voter or a
//! non-voter, promoting, demoting, removing, and moving leadership.
//!
//! To add a replica the leader asks the target node to create an empty one
//! ([`crate::lifecycle`]), adds it as a learner (non-voter) once caught up,
//! and promotes a voter through joint consensus; demote, promote and remove
//! go through joint consensus too; a removed replica is destroyed on its
//! node. Every operation first wakes a quiesced range: it needs a ticking
//! leader.
//!
//! This module does not decide which changes to make (the server's
//! replicate queue does) nor create or destroy replicas itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use meridian_kvapi::{NodeId, RangeId, ReplicaKind};
use openraft::ChangeMembers;

use crate::error::StoreError;
use crate::raft::types::ReplicaNode;
use crate::replica::Replica;
use crate::store::Store;

impl Store {
    /// This node's replica of `range_id`, woken if it was quiesced: the
    /// administrative operations below need a ticking leader.
    pub(crate) async fn leader_replica(
        &self,
        range_id: RangeId,
    ) -> Result<Arc<Replica>, StoreError> {
        let replica = self
            .replica(range_id)
            .ok_or(StoreError::RangeNotFound(range_id))?;
        replica.activate().await;
        Ok(replica)
    }

    /// Adds `node` to the range as a voter or non-voter: creates its empty
    /// replica, adds it as a learner once caught up, then promotes a voter
    /// through joint consensus. Must run on the leader.
    pub async fn add_replica(
        &self,
        range_id: RangeId,
        node: NodeId,
        kind: ReplicaKind,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        self.add_caught_up_learner(&replica, node).await?;
        if kind == ReplicaKind::Voter {
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([node]));
            change_membership(&replica, change, false).await?;
        }
        Ok(())
    }

    /// Makes voters of `nodes` in one joint change. A node without a
    /// replica yet gets one, added as a learner that has caught up
    /// (openraft's blocking add returns once the leader believes its log is
    /// current), so no voter is ever counted that lacks the log; then all
    /// are promoted together, so going from one voter to three never passes
    /// through a two-voter group that one failure stalls.
    pub async fn add_voters(&self, range_id: RangeId, nodes: &[NodeId]) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let descriptor = replica.descriptor();
        for &node in nodes {
            if descriptor.replica_on(node).is_none() {
                self.add_caught_up_learner(&replica, node).await?;
            }
        }
        let change = ChangeMembers::AddVoterIds(nodes.iter().copied().collect());
        change_membership(&replica, change, false).await
    }

    /// Creates `node`'s empty replica and adds it as a learner, returning
    /// once the leader believes the learner's log is current (openraft's
    /// blocking add).
    async fn add_caught_up_learner(
        &self,
        replica: &Replica,
        node: NodeId,
    ) -> Result<(), StoreError> {
        self.create_remote(node, &replica.descriptor()).await?;
        replica
            .raft()
            .add_learner(node, self.replica_node(node), true)
            .await
            .map_err(|source| StoreError::ChangeMembership {
                range_id: replica.range_id(),
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// Turns a voter into a non-voter (it keeps receiving the log).
    pub async fn demote_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([node]));
        change_membership(&replica, change, true).await
    }

    /// Turns a non-voter into a voter.
    pub async fn promote_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([node]));
        change_membership(&replica, change, false).await
    }

    /// Removes `node`'s replica from the range and destroys its data there.
    pub async fn remove_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let descriptor = replica.descriptor();
        let nodes = BTreeSet::from([node]);
        // Without `retain`, removing a voter drops it from the group entirely.
        if descriptor.voters().any(|r| r.node_id == node) {
            change_membership(&replica, ChangeMembers::RemoveVoters(nodes), false).await?;
        } else if descriptor.replica_on(node).is_some() {
            change_membership(&replica, ChangeMembers::RemoveNodes(nodes), false).await?;
        }
        self.destroy_remote(node, range_id).await
    }

    /// Moves the range's leadership (and so its lease) to `to`.
    pub async fn transfer_leadership(
        &self,
        range_id: RangeId,
        to: NodeId,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        replica
            .raft()
            .trigger()
            .transfer_leader(to)
            .await
            .map_err(|source| StoreError::TransferLeadership {
                range_id,
                source: Box::new(source),
            })
    }
}

/// Applies a membership change through joint consensus; with `retain`,
/// removed voters stay as non-voters.
async fn change_membership(
    replica: &Replica,
    change: ChangeMembers<NodeId, ReplicaNode>,
    retain: bool,
) -> Result<(), StoreError> {
    replica
        .raft()
        .change_membership(change, retain)
        .await
        .map_err(|source| StoreError::ChangeMembership {
            range_id: replica.range_id(),
            source: Box::new(source),
        })?;
    Ok(())
}
