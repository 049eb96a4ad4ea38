//! Step 3 of a split (see [`crate::split`]): applying the split command,
//! on every replica at the same log index, in the state machine's batch.
//! The left-hand side shrinks; the right-hand range's first records are
//! written (an applied state at a first log id common to every replica,
//! with the parent's voters, replica ids, GC threshold and the lease floor;
//! a log purged up to there; its replica record), unless this node already
//! has it, keeps no voter of it, or removed it before (a tombstone above
//! its replica id).

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use meridian_hlc::Timestamp;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{RangeDescriptor, RangeId, ReplicaDescriptor, ReplicaId, ReplicaKind};
use meridian_storage::{compute_stats, Batch, Engine};

use super::key_splits_span;
use crate::raft::log_store::{io_err, start_purged};
use crate::raft::state_machine::AppliedState;
use crate::raft::types::{LogId, ReplicaNode, StoredMembership, TypeConfig};
use crate::replica_record::{ReplicaRecord, Tombstone};

/// The outcome of applying a split command (one per split: its size does
/// not matter).
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum SplitApply {
    /// Not applied: proposed in another term than it was evaluated in, or
    /// the key no longer lies inside the range. Every replica decides the
    /// same from the log alone.
    Skipped,
    /// Applied; `open` is the right-hand range the store must open here,
    /// if this node keeps a replica of it and does not have one yet;
    /// `left` and `right` are both ranges as of the split.
    Applied {
        open: Option<RangeDescriptor>,
        left: RangeDescriptor,
        right: RangeDescriptor,
    },
}

/// A split command as the state machine found it in the log.
pub(crate) struct SplitCommand {
    pub split_key: Vec<u8>,
    pub right_range_id: RangeId,
    /// The term the split was evaluated in.
    pub evaluated_term: u64,
    /// The term of the log entry that carries it.
    pub entry_term: u64,
    /// Where the new range's leases start, at the earliest.
    pub lease_floor: Timestamp,
}

/// Applies a split (step 3) to `next`, the applied state of range
/// `range_id` (this node's replica `replica_id`) being built in `batch`.
pub(crate) fn apply_split_command(
    engine: &Engine,
    range_id: RangeId,
    replica_id: ReplicaId,
    batch: &mut Batch,
    next: &mut AppliedState,
    command: SplitCommand,
) -> io::Result<SplitApply> {
    let span = next.span.as_ref().expect("set at open");
    let applies = command.entry_term == command.evaluated_term
        && key_splits_span(span, &command.split_key)
        && command.right_range_id != range_id;
    if !applies {
        return Ok(SplitApply::Skipped);
    }
    let end = span.1.clone();
    let split_key = command.split_key.clone();
    let open = apply_split(
        engine,
        replica_id,
        batch,
        next,
        command.split_key,
        command.right_range_id,
        command.lease_floor,
    )?;
    let right = right_hand_descriptor(
        command.right_range_id,
        &split_key,
        &end,
        &voter_members(next),
        next.generation,
    );
    Ok(SplitApply::Applied {
        open,
        left: next.descriptor(range_id),
        right,
    })
}

/// The voters of `applied`'s membership, by replica id.
fn voter_members(applied: &AppliedState) -> BTreeMap<ReplicaId, ReplicaNode> {
    let membership = applied.membership.membership();
    let voters: BTreeSet<ReplicaId> = membership.voter_ids().collect();
    membership
        .nodes()
        .filter(|(id, _)| voters.contains(id))
        .map(|(id, node)| (*id, node.clone()))
        .collect()
}

/// The right-hand range as it starts: `[split_key, end)` on the parent's
/// voters, with their replica ids, at the parent's new generation.
pub fn right_hand_descriptor(
    right_range_id: RangeId,
    split_key: &[u8],
    end: &[u8],
    voters: &BTreeMap<ReplicaId, ReplicaNode>,
    generation: u64,
) -> RangeDescriptor {
    RangeDescriptor {
        range_id: right_range_id,
        start_key: split_key.to_vec(),
        end_key: end.to_vec(),
        replicas: voters
            .iter()
            .map(|(&replica_id, node)| ReplicaDescriptor {
                node_id: node.node_id,
                store_id: node.node_id,
                replica_id,
                kind: ReplicaKind::Voter,
            })
            .collect(),
        generation,
    }
}

/// The first log id of a range created by a split, on every replica.
pub(crate) fn split_first_log_id() -> LogId {
    LogId::new(
        <openraft::alias::LeaderIdOf<TypeConfig> as openraft::vote::RaftLeaderIdExt>::new_committed(
            0, 0,
        ),
        0,
    )
}

/// Applies a split to `next` (the left-hand side) and writes the
/// right-hand range's first records into `batch`, unless this node already
/// has that range (it arrived by snapshot first). Returns the right-hand
/// descriptor when the store must open it.
fn apply_split(
    engine: &Engine,
    replica_id: ReplicaId,
    batch: &mut Batch,
    next: &mut AppliedState,
    split_key: Vec<u8>,
    right_range_id: RangeId,
    lease_floor: Timestamp,
) -> io::Result<Option<RangeDescriptor>> {
    let (start, end) = next.span.clone().expect("set at open");
    let right_stats = compute_stats(&*batch, &split_key, &end).map_err(io_err)?;
    next.stats.subtract(&right_stats);
    next.generation += 1;
    next.span = Some((start, split_key.clone()));
    if ReplicaRecord::exists(engine, right_range_id).map_err(io_err)? {
        return Ok(None);
    }
    let nodes = voter_members(next);
    let removed_here = Tombstone::load(engine, right_range_id)
        .map_err(io_err)?
        .next_replica_id
        > replica_id;
    if !nodes.contains_key(&replica_id) || removed_here {
        // A non-voter here (the new range has only the voters), or this
        // replica of the new range was already removed (it moved on without
        // us): this node keeps no copy of its keys.
        batch.clear_data_span(&split_key, &end);
        return Ok(None);
    }
    let voters: BTreeSet<ReplicaId> = nodes.keys().copied().collect();
    let right = right_hand_descriptor(right_range_id, &split_key, &end, &nodes, next.generation);
    // The new group starts initialized, at the same log id on every
    // replica, with its log purged up to there: its data is what the
    // parent held, so a replica added later gets it by snapshot, never by
    // replaying a log that does not contain it.
    let first_log_id = split_first_log_id();
    let right_membership = openraft::Membership::new(vec![voters], nodes).map_err(io_err)?;
    let right_state = AppliedState {
        log_id: Some(first_log_id),
        membership: StoredMembership::new(Some(first_log_id), right_membership),
        stats: right_stats,
        span: Some((split_key, end)),
        generation: next.generation,
        // The parent's GC removed versions of these keys too: a read below
        // its threshold must fail on the right-hand side as well. `next`
        // includes a GC applied earlier in this same batch.
        gc_threshold: next.gc_threshold,
        next_replica_id: next.next_replica_id,
        lease_floor,
    };
    batch.put_range_local(
        right_range_id,
        RangeLocalKind::AppliedState,
        &right_state.encode()?,
    );
    start_purged(batch, right_range_id, &first_log_id)?;
    ReplicaRecord {
        descriptor: right.clone(),
        replica_id,
    }
    .put(batch);
    Ok(Some(right))
}
