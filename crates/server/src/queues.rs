//! The queue scheduler: once per `queue_interval`, for each range this
//! node leads (each range's work bounded to [`RANGE_WORK_LIMIT`], so one
//! stuck range does not stall the others):
//! 1. **meta** ([`meta_queue`](crate::meta_queue)): rewrite the range's
//!    meta record if its descriptor changed;
//! 2. **replicate** ([`replicate_queue`](crate::replicate_queue)): one
//!    step towards the replication factor; it runs before the split,
//!    because a split waits while a learner exists and only this step
//!    clears learners;
//! 3. **followers**: ask followers that never received anything (they
//!    missed the split creating the range) to create their replica;
//! 4. **MVCC GC** ([`mvcc_gc_queue`](crate::mvcc_gc_queue)): remove
//!    versions older than `gc_ttl` when the range is worth it; before the
//!    split, so garbage alone does not split a range;
//! 5. **split** ([`split_queue`](crate::split_queue)): split the range at
//!    its middle key when above `range_max_bytes`.
//!
//! Steps 2 to 5 each run whatever the others did; their errors are
//! reported together. Every tenth pass, the
//! [`replica_gc_queue`](crate::replica_gc_queue) first looks at all local
//! replicas.
//!
//! The scheduler takes what the queues need ([`QueueContext`]), not the
//! node, and stops once the node's membership is gone.
//!
//! Not here: the decisions of each queue (in their modules, as plain
//! functions with tests).

use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_kvserver::replica::Replica;
use meridian_kvserver::store::StoreError;
use tracing::warn;

use crate::directory::Directory;
use crate::liveness::Liveness;
use crate::member::Member;
use crate::meta_queue::MetaSync;
use crate::mvcc_gc_queue;
use crate::replica_gc_queue;
use crate::replicate_queue::{self, ReplicateError};
use crate::split_queue::{self, SplitAt, SplitError};

/// Replica GC runs every this many passes.
const REPLICA_GC_EVERY_PASSES: u64 = 10;

/// Bound on the work of one pass on one range.
const RANGE_WORK_LIMIT: Duration = Duration::from_secs(20);

/// The queues' settings (from the node's configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSettings {
    pub interval: Duration,
    pub range_max_bytes: u64,
    pub replication_factor: usize,
    pub gc_ttl: Duration,
}

/// What the queues need of a node.
pub(crate) struct QueueContext {
    pub member: Weak<Member>,
    pub liveness: Arc<Liveness>,
    pub directory: Arc<Directory>,
    pub clock: Arc<HybridClock>,
    pub settings: QueueSettings,
}

/// Why one range's pass failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("meta update: {0}")]
    Meta(#[source] meridian_kvclient::ClientError),
    #[error(transparent)]
    Replicate(#[from] ReplicateError),
    #[error("{0}")]
    Followers(#[source] StoreError),
    #[error("mvcc gc: {0}")]
    MvccGc(#[source] meridian_kvapi::KvError),
    #[error(transparent)]
    Split(#[from] SplitError),
    /// More than one step failed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<QueueError>),
}

pub(crate) async fn run(ctx: QueueContext) {
    let mut meta = MetaSync::default();
    let mut pass: u64 = 0;
    loop {
        let Some(member) = ctx.member.upgrade() else {
            return;
        };
        pass += 1;
        if pass.is_multiple_of(REPLICA_GC_EVERY_PASSES) {
            if let Err(e) = replica_gc_queue::collect_removed_replicas(&member).await {
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
            let work = process(&ctx, &member, &replica, &mut meta);
            match tokio::time::timeout(RANGE_WORK_LIMIT, work).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(range_id = replica.range_id(), "range queue: {e}"),
                Err(_) => warn!(range_id = replica.range_id(), "range queue: timed out"),
            }
        }
        drop(member);
        tokio::time::sleep(ctx.settings.interval).await;
    }
}

/// One pass over one range this node leads.
async fn process(
    ctx: &QueueContext,
    member: &Member,
    replica: &Replica,
    meta: &mut MetaSync,
) -> Result<(), QueueError> {
    let descriptor = replica.descriptor();
    meta.sync(&member.ds, &descriptor)
        .await
        .map_err(QueueError::Meta)?;
    let mut errors = Vec::new();
    if let Err(e) = replicate_queue::replicate(ctx, member, &descriptor).await {
        errors.push(e.into());
    }
    if let Err(e) = member
        .store
        .create_missing_followers(descriptor.range_id)
        .await
    {
        errors.push(QueueError::Followers(e));
    }
    if let Err(e) =
        mvcc_gc_queue::maybe_collect(&member.store, replica, &ctx.clock, ctx.settings.gc_ttl).await
    {
        errors.push(QueueError::MvccGc(e));
    }
    let bytes = replica.stats().total_bytes();
    if split_queue::needs_split(descriptor.range_id, bytes, ctx.settings.range_max_bytes) {
        if let Err(e) = split_queue::split(member, SplitAt::Middle(replica)).await {
            errors.push(e.into());
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(QueueError::Several(errors)),
    }
}
