//! The replicate queue: carries out, one change per pass, what
//! [`allocator::decide`](crate::allocator::decide) chooses for a range this
//! node leads: add the missing voters in one change, remove a leftover
//! learner, or remove
//! the voter of a dead node once its replacement is in.
//!
//! It acts only while this node's own liveness record is live: verdicts on
//! others are only as fresh as our own record, and a node that cannot renew
//! its own would see everyone else die.
//!
//! Not here: the choice itself (`allocator`), the membership change
//! protocol (kvserver's store).

use meridian_kvapi::{NodeId, RangeDescriptor};
use meridian_kvserver::store::StoreError;
use tracing::{info, warn};

use crate::allocator::{self, ReplicateAction, Verdicts};
use crate::liveness::LivenessStatus;
use crate::member::Member;
use crate::queues::QueueContext;

#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    #[error("learner on node {node}: {source}")]
    Learner { node: NodeId, source: StoreError },
    #[error("adding voters on nodes {nodes:?}: {source}")]
    AddVoters {
        nodes: Vec<NodeId>,
        source: StoreError,
    },
}

/// One step towards the replication `d` should have.
pub(crate) async fn replicate(
    ctx: &QueueContext,
    member: &Member,
    d: &RangeDescriptor,
) -> Result<(), ReplicateError> {
    let now = ctx.clock.physical_now();
    if ctx.liveness.status(member.ident.node_id, now) != LivenessStatus::Live {
        return Ok(());
    }
    let nodes = ctx.directory.nodes();
    let verdicts: Verdicts = nodes
        .iter()
        .map(|n| n.node_id)
        .chain(d.replicas.iter().map(|r| r.node_id))
        .map(|id| (id, ctx.liveness.status(id, now)))
        .collect();
    let action = allocator::decide(
        &d.replicas,
        &nodes,
        &verdicts,
        ctx.settings.replication_factor,
    );
    let store = &member.store;
    match action {
        ReplicateAction::Nothing => Ok(()),

        ReplicateAction::RemoveLearner(node) => store
            .remove_replica(d.range_id, node)
            .await
            .map_err(|source| ReplicateError::Learner { node, source }),
        ReplicateAction::AddVoters(nodes) => {
            info!(range_id = d.range_id, ?nodes, "adding voters in one change");
            store
                .add_voters(d.range_id, &nodes)
                .await
                .map_err(|source| ReplicateError::AddVoters { nodes, source })
        }
        ReplicateAction::RemoveDeadVoter(node) => {
            info!(
                range_id = d.range_id,
                node, "removing the voter of a dead node"
            );
            // The dead node cannot be told to delete its copy; its replica
            // GC does that if it comes back.
            if let Err(e) = store.remove_replica(d.range_id, node).await {
                warn!(range_id = d.range_id, node, "after removal: {e}");
            }
            Ok(())
        }
    }
}
