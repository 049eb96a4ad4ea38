//! The loops a node runs over the ranges it leads, once per
//! `queue_interval`:
//! - **meta**: a range whose descriptor changed (split, membership) gets
//!   its meta record rewritten; this also repairs a record a crash left
//!   stale, since every leaseholder checks its ranges after it starts;
//! - **split**: a range above `range_max_bytes` splits at its middle key;
//! - **replica GC** (every tenth pass, over all local replicas): see
//!   [`collect_removed_replicas`];
//! - **replicate**: a range with fewer voters than the replication factor
//!   (capped by the nodes not dead) gains one on a node it lacks, chosen
//!   for locality diversity; a voter on a dead node is removed once a
//!   replacement is in; followers that never received anything (they
//!   missed the split creating the range) are asked to create the replica.
//!
//! The allocator that follows zone configs comes with placement; this is
//! the simple diverse choice.

use std::collections::HashMap;
use std::sync::Weak;

use meridian_kvapi::{NodeId, RangeDescriptor, ReplicaKind};
use meridian_kvserver::replica::Replica;
use meridian_storage::find_split_key;
use tracing::{info, warn};

use crate::liveness::LivenessStatus;
use crate::node::{Member, Node, NodeInner, FIRST_RANGE_ID};
use crate::system;

/// Replica GC runs every this many passes.
const GC_EVERY_PASSES: u64 = 10;

/// Bound on the work of one pass on one range.
const RANGE_WORK_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

pub(crate) async fn run(weak: Weak<NodeInner>) {
    // Generation of each range's descriptor last written to meta.
    let mut synced: HashMap<u64, u64> = HashMap::new();
    let mut pass: u64 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let node = Node { inner };
        let interval = node.config().queue_interval;
        pass += 1;
        if let Some(member) = node.member() {
            if pass.is_multiple_of(GC_EVERY_PASSES) {
                if let Err(e) = collect_removed_replicas(&member).await {
                    warn!("replica GC: {e}");
                }
            }
            let me = member.ident.node_id;
            for replica in member.store.replicas() {
                if replica.leader() != Some(me) {
                    continue;
                }
                // One stuck range (a learner that never catches up, a
                // membership change that cannot commit) must not stall
                // every other range this node leads.
                let work = process(&node, &member, &replica, &mut synced);
                match tokio::time::timeout(RANGE_WORK_LIMIT, work).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => warn!(range_id = replica.range_id(), "range queue: {e}"),
                    Err(_) => warn!(range_id = replica.range_id(), "range queue: timed out"),
                }
            }
        }
        drop(node);
        tokio::time::sleep(interval).await;
    }
}

/// Destroys local replicas that their range no longer has: a node that
/// was down while its replicas were replaced comes back with copies no one
/// sends anything to. A replica goes only when its range's meta record is of
/// a newer generation than the replica and does not name this node; a
/// replica that never received data (being added right now) is left alone.
async fn collect_removed_replicas(member: &Member) -> Result<(), String> {
    let me = member.ident.node_id;
    let meta: HashMap<u64, RangeDescriptor> = system::all_meta(&member.ds)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|d| (d.range_id, d))
        .collect();
    for replica in member.store.replicas() {
        if replica.leader() == Some(me) || replica.applied_index() == 0 {
            continue;
        }
        let local = replica.descriptor();
        let Some(current) = meta.get(&local.range_id) else {
            continue;
        };
        if current.generation > local.generation && current.replica_on(me).is_none() {
            info!(
                range_id = local.range_id,
                "destroying a replica its range no longer has"
            );
            member
                .store
                .destroy_replica(local.range_id)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

async fn process(
    node: &Node,
    member: &Member,
    replica: &Replica,
    synced: &mut HashMap<u64, u64>,
) -> Result<(), String> {
    let descriptor = replica.descriptor();
    if synced.get(&descriptor.range_id) != Some(&descriptor.generation) {
        system::update_meta(&member.ds, &descriptor)
            .await
            .map_err(|e| format!("meta update: {e}"))?;
        synced.insert(descriptor.range_id, descriptor.generation);
    }
    // Replication first: a split waits while a learner exists, and only
    // `replicate` clears learners. Each step runs whatever the others did.
    let mut errors = Vec::new();
    if let Err(e) = replicate(node, member, &descriptor).await {
        errors.push(e);
    }
    if let Err(e) = member
        .store
        .create_missing_followers(descriptor.range_id)
        .await
    {
        errors.push(e.to_string());
    }
    if descriptor.range_id != FIRST_RANGE_ID
        && replica.stats().total_bytes() as u64 > node.config().range_max_bytes
    {
        if let Err(e) = split(member, replica).await {
            errors.push(e);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

/// Splits `replica`'s range at its middle key.
pub(crate) async fn split(member: &Member, replica: &Replica) -> Result<(), String> {
    let span = replica.span();
    let engine = member.store.engine();
    let Some(split_key) = find_split_key(engine, &span.0, &span.1).map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    split_at(member, &split_key).await
}

/// Splits the range holding `split_key` there (through the DistSender, so
/// from any node) and records both halves in meta.
pub async fn split_at(member: &Member, split_key: &[u8]) -> Result<(), String> {
    let ds = &member.ds;
    // Ranges 1 and 2 exist from the bootstrap.
    let right_id = system::next_id(ds, system::RANGE_ID_COUNTER, 3)
        .await
        .map_err(|e| format!("allocating a range id: {e}"))?;
    let (left, right) = ds
        .admin_split(split_key, right_id)
        .await
        .map_err(|e| format!("split: {e}"))?;
    info!(left = left.range_id, right = right.range_id, "range split");
    for d in [&right, &left] {
        system::update_meta(ds, d)
            .await
            .map_err(|e| format!("meta update after split: {e}"))?;
    }
    Ok(())
}

async fn replicate(node: &Node, member: &Member, d: &RangeDescriptor) -> Result<(), String> {
    let now = node.clock().physical_now();
    let status = |id: NodeId| node.liveness().status(id, now);
    // Verdicts on others are only as fresh as our own record: a node that
    // cannot renew its own would see everyone else die.
    if status(member.ident.node_id) != LivenessStatus::Live {
        return Ok(());
    }
    let directory = node.directory();
    let candidates: Vec<_> = directory
        .iter()
        .filter(|n| status(n.node_id) == LivenessStatus::Live && d.replica_on(n.node_id).is_none())
        .collect();
    let available = directory
        .iter()
        .filter(|n| status(n.node_id) != LivenessStatus::Dead)
        .count();
    let target = node.config().replication_factor.min(available.max(1));
    // A learner left behind by an interrupted up-replication: promote it
    // if a voter is missing, else remove it (it would block splits).
    if let Some(learner) = d.replicas.iter().find(|r| r.kind == ReplicaKind::NonVoter) {
        let healthy_voters = d
            .voters()
            .filter(|r| status(r.node_id) != LivenessStatus::Dead)
            .count();
        let result = if healthy_voters < target && status(learner.node_id) == LivenessStatus::Live {
            member
                .store
                .promote_replica(d.range_id, learner.node_id)
                .await
        } else {
            member
                .store
                .remove_replica(d.range_id, learner.node_id)
                .await
        };
        return result.map_err(|e| format!("learner on node {}: {e}", learner.node_id));
    }
    let voters: Vec<NodeId> = d.voters().map(|r| r.node_id).collect();
    let dead: Vec<NodeId> = voters
        .iter()
        .copied()
        .filter(|&id| status(id) == LivenessStatus::Dead)
        .collect();
    let healthy = voters.len() - dead.len();
    if healthy < target {
        // The most diverse candidate: a region, else a zone, not yet used.
        let localities: Vec<_> = directory
            .iter()
            .filter(|n| voters.contains(&n.node_id))
            .map(|n| &n.locality)
            .collect();
        let score = |l: &meridian_transport::Locality| {
            let region = !localities.iter().any(|x| x.region == l.region);
            let zone = !localities.contains(&l);
            (region, zone)
        };
        if let Some(best) = candidates.iter().max_by_key(|n| score(&n.locality)) {
            info!(range_id = d.range_id, node = best.node_id, "adding a voter");
            member
                .store
                .add_replica(d.range_id, best.node_id, ReplicaKind::Voter)
                .await
                .map_err(|e| format!("adding node {}: {e}", best.node_id))?;
            return Ok(());
        }
    }
    // A dead voter goes only once its replacement is in: with nowhere to
    // put one, it stays (the node may come back), and the quorum is the
    // same either way.
    if let Some(&gone) = dead.first() {
        if voters.len() > node.config().replication_factor {
            info!(
                range_id = d.range_id,
                node = gone,
                "removing the voter of a dead node"
            );
            // The dead node cannot be told to delete its copy; its replica
            // GC does that if it comes back.
            if let Err(e) = member.store.remove_replica(d.range_id, gone).await {
                warn!(range_id = d.range_id, node = gone, "after removal: {e}");
            }
        }
    }
    Ok(())
}
