//! The replicate queue: carries out, one change per pass, what
//! [`allocator::decide`](crate::allocator::decide) chooses for a range this
//! node leads under its zone config: add voters (in one change), add a
//! non-voter, remove, move, promote, demote or swap replicas, or hand the
//! lease over first when the change would remove the leaseholder's own
//! replica.
//!
//! It acts only while this node's own liveness record is live: verdicts on
//! others are only as fresh as our own record, and a node that cannot renew
//! its own would see everyone else die.
//!
//! Not here: the choice itself (`allocator`), moving the lease to its
//! preferred place (`lease_queue`), the membership change protocol
//! (kvserver's `membership`).

use meridian_kvapi::{NodeId, RangeDescriptor, ReplicaKind};
use meridian_kvserver::store::StoreError;
use meridian_placement::EffectiveConfig;
use tracing::{debug, info};

use crate::allocator::{self, Plan, ReplicateAction};
use crate::member::Member;
use crate::queues::PassInputs;

#[derive(Debug, thiserror::Error)]
#[error("{action:?} on range {range_id}: {source}")]
pub struct ReplicateError {
    range_id: u64,
    action: ReplicateAction,
    source: StoreError,
}

/// One step towards the placement `config` asks of `d`. Returns the plan,
/// whose lease target the lease queue acts on once nothing else is to do.
pub(crate) async fn replicate(
    member: &Member,
    inputs: &PassInputs,
    d: &RangeDescriptor,
    config: &EffectiveConfig,
) -> Result<Plan, ReplicateError> {
    let me = member.ident.node_id;
    let plan = allocator::decide(
        &d.replicas,
        me,
        &inputs.nodes,
        config,
        Some(&inputs.round_trips),
    );
    if !plan.problems.is_empty() {
        debug!(range_id = d.range_id, problems = ?plan.problems, "cannot conform now");
    }
    if plan.action != ReplicateAction::Nothing {
        info!(range_id = d.range_id, action = ?plan.action, reason = %plan.reason, "replicate");
    }
    let store = &member.store;
    let range_id = d.range_id;
    let outcome = match &plan.action {
        ReplicateAction::Nothing => Ok(()),
        ReplicateAction::AddVoters(nodes) => store.add_voters(range_id, nodes).await,
        ReplicateAction::AddNonVoter(node) => {
            store
                .add_replica(range_id, *node, ReplicaKind::NonVoter)
                .await
        }
        ReplicateAction::Remove(node) => remove(member, range_id, *node).await,
        ReplicateAction::Move { kind, from, to } => {
            store.move_replica(range_id, *kind, *from, *to).await
        }
        ReplicateAction::Promote(node) => store.promote_replica(range_id, *node).await,
        ReplicateAction::Demote(node) => store.demote_replica(range_id, *node).await,
        ReplicateAction::Swap { promote, demote } => {
            store.swap_replicas(range_id, *promote, *demote).await
        }
        ReplicateAction::TransferLease(to) => store.transfer_leadership(range_id, *to).await,
    };
    outcome.map_err(|source| ReplicateError {
        range_id,
        action: plan.action.clone(),
        source,
    })?;
    Ok(plan)
}

/// Removes `node`'s replica. A dead node cannot be told to delete its copy
/// (its replica GC does that if it comes back), so a failure to reach it
/// after the membership change is not an error.
async fn remove(member: &Member, range_id: u64, node: NodeId) -> Result<(), StoreError> {
    match member.store.remove_replica(range_id, node).await {
        Err(StoreError::Transport(e)) => {
            debug!(range_id, node, "after removal: {e}");
            Ok(())
        }
        other => other,
    }
}
