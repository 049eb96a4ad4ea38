//! Membership changes of a range, run at its leader: adding a voter or a
//! non-voter, promoting, demoting, removing, and moving leadership.
//!
//! To add a replica the leader asks the target node to create an empty one
//! ([`crate::lifecycle`]), adds it as a learner (non-voter) once caught up,
//! and promotes a voter through joint consensus; demote, promote, swap and remove
//! go through joint consensus too; a removed replica is destroyed on its
//! node. Every operation first wakes a quiesced range: it needs a ticking
//! leader.
//!
//! This module does not decide which changes to make (the server's
//! replicate queue does) nor create or destroy replicas itself.

use std::collections::BTreeSet;
use std::sync::Arc;

use meridian_kvapi::{NodeId, RangeId, ReplicaId, ReplicaKind};
use openraft::async_runtime::WatchReceiver;
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
        // A node already in the group keeps its member (and replica id):
        // adding it again only promotes it if asked.
        let replica_id = match replica.member_on(node) {
            Some(replica_id) => replica_id,
            None => self.add_caught_up_learner(&replica, node).await?,
        };
        if kind == ReplicaKind::Voter {
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([replica_id]));
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
        let mut replica_ids = BTreeSet::new();
        for &node in nodes {
            let replica_id = match replica.member_on(node) {
                Some(replica_id) => replica_id,
                None => self.add_caught_up_learner(&replica, node).await?,
            };
            replica_ids.insert(replica_id);
        }
        change_membership(&replica, ChangeMembers::AddVoterIds(replica_ids), false).await
    }

    /// Creates `node`'s empty replica under a fresh replica id and adds it
    /// as a learner, returning its id once the leader believes the
    /// learner's log is current (openraft's blocking add).
    async fn add_caught_up_learner(
        &self,
        replica: &Replica,
        node: NodeId,
    ) -> Result<ReplicaId, StoreError> {
        let replica_id = replica.allocate_replica_id().await?;
        self.create_remote(node, &replica.descriptor(), replica_id)
            .await?;
        replica
            .raft()
            .add_learner(replica_id, self.replica_node(node), true)
            .await
            .map_err(|source| StoreError::ChangeMembership {
                range_id: replica.range_id(),
                source: Box::new(source),
            })?;
        Ok(replica_id)
    }

    /// Turns a voter into a non-voter (it keeps receiving the log).
    pub async fn demote_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let replica_id = replica.required_member_on(node)?;
        let change = ChangeMembers::RemoveVoters(BTreeSet::from([replica_id]));
        change_membership(&replica, change, true).await
    }

    /// Turns a non-voter into a voter.
    pub async fn promote_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let replica_id = replica.required_member_on(node)?;
        let change = ChangeMembers::AddVoterIds(BTreeSet::from([replica_id]));
        change_membership(&replica, change, false).await
    }

    /// Promotes the non-voter on `promote` and demotes the voter on
    /// `demote` in one joint change (old voters, then the new set, each by
    /// its own majority), so the group never counts one voter more: a
    /// promotion first and a demotion after would pass through four voters
    /// of which two may share a region, and losing that region mid-way
    /// would leave the group without a quorum.
    pub async fn swap_replicas(
        &self,
        range_id: RangeId,
        promote: NodeId,
        demote: NodeId,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let promote_id = replica.required_member_on(promote)?;
        let demote_id = replica.required_member_on(demote)?;
        let mut next = replica.voter_ids();
        next.remove(&demote_id);
        next.insert(promote_id);
        // `retain`: the demoted voter stays, as a non-voter.
        change_membership(&replica, ChangeMembers::ReplaceAllVoters(next), true).await
    }

    /// Removes `node`'s replica from the range and destroys its data there.
    pub async fn remove_replica(&self, range_id: RangeId, node: NodeId) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let Some(replica_id) = replica.member_on(node) else {
            return Ok(());
        };
        let ids = BTreeSet::from([replica_id]);
        // Without `retain`, removing a voter drops it from the group entirely.
        let is_voter = replica.voter_ids().contains(&replica_id);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        change_membership(&replica, change, false).await?;
        self.destroy_remote(node, range_id, replica_id).await
    }

    /// Moves a replica of `kind` from `from` to `to` in one change: `to`
    /// first becomes a learner that has caught up (or keeps the member it
    /// has), then a voter replaces `from` through one joint change, so the
    /// group never has fewer voters than before, nor one more for long;
    /// then `from`'s data is destroyed (best effort: a dead node's replica
    /// GC does it when it comes back).
    pub async fn move_replica(
        &self,
        range_id: RangeId,
        kind: ReplicaKind,
        from: NodeId,
        to: NodeId,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let from_id = replica.required_member_on(from)?;
        let to_id = match replica.member_on(to) {
            Some(replica_id) => replica_id,
            None => self.add_caught_up_learner(&replica, to).await?,
        };
        if kind == ReplicaKind::Voter {
            let mut next = replica.voter_ids();
            next.remove(&from_id);
            next.insert(to_id);
            change_membership(&replica, ChangeMembers::ReplaceAllVoters(next), false).await?;
        } else {
            let change = ChangeMembers::RemoveNodes(BTreeSet::from([from_id]));
            change_membership(&replica, change, false).await?;
        }
        if let Err(e) = self.destroy_remote(from, range_id, from_id).await {
            tracing::debug!(range_id, from, "destroying the moved replica: {e}");
        }
        Ok(())
    }

    /// Moves the range's leadership (and so its lease) to `to`.
    pub async fn transfer_leadership(
        &self,
        range_id: RangeId,
        to: NodeId,
    ) -> Result<(), StoreError> {
        let replica = self.leader_replica(range_id).await?;
        let replica_id = replica.required_member_on(to)?;
        replica
            .hand_over_closed()
            .await
            .map_err(|e| StoreError::NotLeader {
                range_id,
                reason: format!("handing over the closed timestamp: {e}"),
            })?;
        replica
            .raft()
            .trigger()
            .transfer_leader(replica_id)
            .await
            .map_err(|source| StoreError::TransferLeadership {
                range_id,
                source: Box::new(source),
            })
    }
}

impl Replica {
    /// The replica id of `node`'s member in the group's latest membership
    /// (maybe not yet applied: a change in progress counts).
    pub(crate) fn member_on(&self, node: NodeId) -> Option<ReplicaId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let found = m
            .membership_config
            .membership()
            .nodes()
            .find(|(_, member)| member.node_id == node)
            .map(|(&id, _)| id);
        found
    }

    /// The voters of the latest membership (of both its sets, in a joint
    /// one).
    fn voter_ids(&self) -> BTreeSet<ReplicaId> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow_watched();
        let voters = m.membership_config.membership().voter_ids().collect();
        voters
    }

    fn required_member_on(&self, node: NodeId) -> Result<ReplicaId, StoreError> {
        self.member_on(node).ok_or(StoreError::NotAReplica {
            range_id: self.range_id,
            node,
        })
    }

    /// A replica id the range never had, for the next addition: above the
    /// applied `next_replica_id` (once everything committed is applied),
    /// above every member of the latest membership, and above every id this
    /// leader handed out before (an addition that failed half-way must not
    /// hand its id to the next one).
    pub(crate) async fn allocate_replica_id(&self) -> Result<ReplicaId, StoreError> {
        self.raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
            .map_err(|e| StoreError::NotLeader {
                range_id: self.range_id,
                reason: e.to_string(),
            })?;
        let members_above = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow_watched();
            let above = m
                .membership_config
                .membership()
                .nodes()
                .map(|(&id, _)| id + 1)
                .max();
            above.unwrap_or(0)
        };
        let floor = self.next_replica_id().max(members_above);
        let mut last = self.last_allocated_replica_id.lock();
        let id = floor.max(*last + 1);
        *last = id;
        Ok(id)
    }
}

/// Applies a membership change through joint consensus; with `retain`,
/// removed voters stay as non-voters.
async fn change_membership(
    replica: &Replica,
    change: ChangeMembers<ReplicaId, ReplicaNode>,
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
