//! The queue scheduler: once per `queue_interval`, it reads the zone
//! configs and the meta records (replica counts per node) once, then for
//! each range this node leads (each range's work bounded to
//! [`RANGE_WORK_LIMIT`], so one stuck range does not stall the others),
//! under the range's effective zone config:
//! 1. **meta** ([`meta_queue`](crate::meta_queue)): rewrite the range's
//!    meta record if its descriptor changed;
//! 2. **replicate** ([`replicate_queue`](crate::replicate_queue)): one
//!    step towards the config's placement; it runs before the split,
//!    because a split waits while a learner exists and only this step
//!    clears learners;
//! 3. **lease** ([`lease_queue`](crate::lease_queue)): when replication
//!    has nothing to do, move the lease to its preferred voter;
//! 4. **followers**: ask followers that never received anything (they
//!    missed the split creating the range) to create their replica;
//! 5. **MVCC GC** ([`mvcc_gc_queue`](crate::mvcc_gc_queue)): remove
//!    versions older than the config's `gc.ttlseconds` when the range is
//!    worth it; before the split, so garbage alone does not split a range;
//! 6. **split** ([`split_queue`](crate::split_queue)): split the range at
//!    the first zone config boundary inside it (a range never spans two
//!    configs), else at its middle key when above `range_max_bytes`.
//!
//! Before any range's steps, every range this node leads learns whether
//! its config asks for global reads (its leaseholder then closes
//! timestamps ahead of the present). Steps 2 to 6 each run whatever the others did; their errors are
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

use std::collections::BTreeMap;

use meridian_hlc::HybridClock;
use meridian_kvapi::NodeId;
use meridian_kvserver::replica::Replica;
use meridian_kvserver::store::StoreError;
use meridian_placement::allocator::{NodeInfo, RoundTrips};
use meridian_placement::{ZoneConfig, ZoneConfigs};
use tracing::warn;

use crate::allocator::{self, Verdicts};
use crate::conformance::{Conformance, RangeReport};
use crate::directory::Directory;
use crate::latency::{self, RegionLatencies};
use crate::lease_queue;
use crate::liveness::{Liveness, LivenessStatus};
use crate::member::Member;
use crate::meta_queue::MetaSync;
use crate::mvcc_gc_queue;
use crate::replica_gc_queue;
use crate::replicate_queue::{self, ReplicateError};
use crate::split_queue::{self, SplitAt, SplitError};
use crate::system;
use crate::zones::{self, ZoneError};

/// Replica GC runs every this many passes.
const REPLICA_GC_EVERY_PASSES: u64 = 10;

/// Bound on the work of one pass on one range.
const RANGE_WORK_LIMIT: Duration = Duration::from_secs(20);

/// The queues' settings (from the node's configuration).
#[derive(Debug, Clone)]
pub(crate) struct QueueSettings {
    pub interval: Duration,
    /// What every zone config inherits from (the node's flags).
    pub root_config: ZoneConfig,
}

/// What every range's pass reads, gathered once per pass.
pub(crate) struct PassInputs {
    pub configs: ZoneConfigs,
    /// Every node with its verdict and replica count.
    pub nodes: Vec<NodeInfo>,
    /// This node's measured round trips to the other regions.
    pub round_trips: RoundTrips,
}

/// What the queues need of a node.
pub(crate) struct QueueContext {
    pub member: Weak<Member>,
    pub liveness: Arc<Liveness>,
    pub directory: Arc<Directory>,
    pub clock: Arc<HybridClock>,
    pub conformance: Arc<Conformance>,
    pub settings: QueueSettings,
}

/// Why one range's pass failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("meta update: {0}")]
    Meta(#[source] meridian_kvclient::ClientError),
    #[error("reading zone configs and meta records: {0}")]
    Inputs(#[source] ZoneError),
    #[error("lease: {0}")]
    Lease(#[source] StoreError),
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
        // Verdicts on others are only as fresh as our own record: a node
        // that cannot renew its own would see everyone else die.
        let now = ctx.clock.physical_now();
        let trusted = ctx.liveness.status(me, now) == LivenessStatus::Live;
        let inputs = match trusted {
            true => pass_inputs(&ctx, &member)
                .await
                .map_err(|e| warn!("{e}"))
                .ok(),
            false => None,
        };
        let mut reports = BTreeMap::new();
        let led: Vec<_> = member
            .store
            .replicas()
            .into_iter()
            .filter(|r| r.leader() == Some(me))
            .collect();
        if let Some(inputs) = &inputs {
            for replica in &led {
                let d = replica.descriptor();
                let config = inputs.configs.effective(&d.start_key);
                // First, for every range: its leaseholder closes ahead of
                // the present if the config asks for global reads (a
                // GLOBAL table), see kvserver's closedts. Set before any
                // range's work, which may take seconds.
                replica.set_global_reads(config.global_reads);
                reports.insert(
                    d.range_id,
                    RangeReport::of(&d.replicas, &inputs.nodes, &config),
                );
            }
        }
        for replica in led {
            // One stuck range (a learner that never catches up, a
            // membership change that cannot commit) must not stall
            // every other range this node leads.
            let work = process(&ctx, &member, inputs.as_ref(), &replica, &mut meta);
            match tokio::time::timeout(RANGE_WORK_LIMIT, work).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(range_id = replica.range_id(), "range queue: {e}"),
                Err(_) => warn!(range_id = replica.range_id(), "range queue: timed out"),
            }
        }
        if inputs.is_some() {
            ctx.conformance.replace(reports);
        }
        drop(member);
        tokio::time::sleep(ctx.settings.interval).await;
    }
}

/// The zone configs and every node's verdict and replica count.
async fn pass_inputs(ctx: &QueueContext, member: &Member) -> Result<PassInputs, QueueError> {
    let mut configs = zones::load(&member.ds, &ctx.clock, &ctx.settings.root_config)
        .await
        .map_err(QueueError::Inputs)?;
    let mut counts: BTreeMap<NodeId, u32> = BTreeMap::new();
    let descriptors = system::all_meta(&member.ds)
        .await
        .map_err(|e| QueueError::Inputs(e.into()))?;
    for d in &descriptors {
        for r in &d.replicas {
            *counts.entry(r.node_id).or_default() += 1;
        }
    }
    let now = ctx.clock.physical_now();
    let directory = ctx.directory.nodes();
    let verdicts: Verdicts = directory
        .iter()
        .map(|n| (n.node_id, ctx.liveness.status(n.node_id, now)))
        .collect();
    let nodes = allocator::node_infos(&directory, &verdicts, &counts);
    zones::add_catalog_config(&mut configs, &nodes);
    let round_trips = RegionLatencies::gather(
        member.ident.node_id,
        &directory,
        &latency::measured(member.store.transport()),
    )
    .round_trips();
    Ok(PassInputs {
        configs,
        nodes,
        round_trips,
    })
}

/// One pass over one range this node leads. Without `inputs` (this node's
/// own liveness is not live, or the configs could not be read) only the
/// steps that need no placement decision run.
async fn process(
    ctx: &QueueContext,
    member: &Member,
    inputs: Option<&PassInputs>,
    replica: &Replica,
    meta: &mut MetaSync,
) -> Result<(), QueueError> {
    let descriptor = replica.descriptor();
    meta.sync(&member.ds, &descriptor)
        .await
        .map_err(QueueError::Meta)?;
    let config = match inputs {
        Some(inputs) => inputs.configs.effective(&descriptor.start_key),
        None => ZoneConfigs::new().effective(&descriptor.start_key),
    };
    let mut errors = Vec::new();
    if let Some(inputs) = inputs {
        match replicate_queue::replicate(member, inputs, &descriptor, &config).await {
            Ok(plan) => {
                if let Err(e) = lease_queue::move_lease(member, &descriptor, &plan).await {
                    errors.push(QueueError::Lease(e));
                }
            }
            Err(e) => errors.push(e.into()),
        }
    }
    if let Err(e) = member
        .store
        .create_missing_followers(descriptor.range_id)
        .await
    {
        errors.push(QueueError::Followers(e));
    }
    let gc_ttl = match inputs {
        Some(_) => Duration::from_secs(config.gc_ttl_seconds),
        None => Duration::from_secs(
            ctx.settings
                .root_config
                .gc_ttl_seconds
                .unwrap_or(config.gc_ttl_seconds),
        ),
    };
    if let Err(e) = mvcc_gc_queue::maybe_collect(&member.store, replica, &ctx.clock, gc_ttl).await {
        errors.push(QueueError::MvccGc(e));
    }
    let boundary = inputs.and_then(|i| {
        i.configs
            .split_keys_within(&descriptor.start_key, &descriptor.end_key)
            .into_iter()
            .next()
    });
    let max_bytes = match inputs {
        Some(_) => config.range_max_bytes,
        None => ctx
            .settings
            .root_config
            .range_max_bytes
            .unwrap_or(config.range_max_bytes),
    };
    let split = match &boundary {
        Some(key) => Some(SplitAt::Key(key)),
        None if split_queue::needs_split(
            &descriptor.start_key,
            replica.stats().total_bytes(),
            max_bytes,
        ) =>
        {
            Some(SplitAt::Middle(replica))
        }
        None => None,
    };
    if let Some(at) = split {
        if let Err(e) = split_queue::split(member, at).await {
            errors.push(e.into());
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(QueueError::Several(errors)),
    }
}
