//! A node's Store: the map of its replicas and what they share (engine,
//! transport, clock, group-commit thread, Raft configuration).
//!
//! This module owns the [`Store`] value, its start and shutdown, and the
//! entry of a KV batch ([`Store::send`]). Each operation on the store's
//! replicas lives in its own module, as `impl Store` blocks:
//! - [`crate::lifecycle`]: creating, opening and destroying replicas (and
//!   the lock that serializes them), bootstrapping a range;
//! - [`crate::membership`]: adding, promoting, demoting and removing
//!   replicas, and moving leadership;
//! - [`crate::snapshot`]: reassembling snapshots received in chunks;
//! - [`crate::split`]: splitting a range and opening its right-hand side;
//! - [`crate::handlers`]: the transport handlers the store registers;
//! - [`crate::quiesce`]: the loops that quiet idle ranges (they see the
//!   store only as a `ReplicaSource`);
//! - [`crate::closedts`]: the loop that closes timestamps on the ranges
//!   this node leads and tells the other replicas.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meridian_hlc::HybridClock;
use meridian_keys::RangeLocalKind;
use meridian_kvapi::{BatchRequest, BatchResult, KvError, NodeId, RangeId};
use meridian_storage::Engine;
use meridian_transport::Transport;
use parking_lot::RwLock;

use crate::metrics::StoreMetrics;
use crate::quiesce::{QuiesceNode, ReplicaSource};
use crate::raft::config::raft_config;
use crate::raft::syncer::Syncer;
use crate::replica::Replica;
use crate::replica_record::ReplicaRecord;
use crate::snapshot::SnapshotStaging;

pub use crate::error::StoreError;
pub use crate::handlers::BatchRpc;
pub use crate::lifecycle::{CreateReplicaRpc, DestroyReplicaRpc};
pub use crate::raft::config::RaftTimeouts;
pub use crate::split::AdminSplitRpc;

/// What the store's operations share. The fields are the crate's: each
/// operation module uses the parts it needs.
pub(crate) struct Inner {
    pub(crate) node_id: NodeId,
    pub(crate) engine: Engine,
    pub(crate) transport: Transport,
    pub(crate) clock: Arc<HybridClock>,
    pub(crate) syncer: Syncer,
    pub(crate) config: Arc<openraft::Config>,
    pub(crate) replicas: RwLock<HashMap<RangeId, Arc<Replica>>>,
    pub(crate) stopped: AtomicBool,
    /// Snapshots being received ([`crate::snapshot`]).
    pub(crate) incoming_snapshots: SnapshotStaging,
    /// Where state machines report the ranges their splits created
    /// ([`crate::split`]).
    pub(crate) splits: tokio::sync::mpsc::UnboundedSender<crate::split::SplitApplied>,
    /// Held while a replica is created, opened or destroyed
    /// ([`crate::lifecycle`]).
    pub(crate) lifecycle: tokio::sync::Mutex<()>,
    pub(crate) metrics: StoreMetrics,
    /// Until when this node grants no Raft vote ([`crate::lease::votes_withheld_until`]).
    pub(crate) votes_withheld_until: std::time::Instant,
    /// How far behind its clock a leaseholder closes timestamps, in
    /// nanoseconds ([`crate::closedts`]).
    pub(crate) closed_timestamp_target_nanos: AtomicU64,
}

/// A node's replicas. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl Store {
    /// Opens the store of node `node_id`: reopens every replica the engine
    /// holds and registers the Raft and KV handlers on the transport.
    pub async fn start(
        node_id: NodeId,
        engine: Engine,
        transport: Transport,
        clock: Arc<HybridClock>,
        timeouts: RaftTimeouts,
    ) -> Result<Store, StoreError> {
        timeouts.check_lease_covers_offset(clock.max_offset())?;
        let (splits, split_events) = tokio::sync::mpsc::unbounded_channel();
        let metrics = StoreMetrics::default();
        let records = engine.range_local_all(RangeLocalKind::Descriptor)?;
        let election_timeout = Duration::from_millis(timeouts.election_max_ms);
        let votes_withheld_until = crate::lease::votes_withheld_until(
            Instant::now(),
            !records.is_empty(),
            election_timeout,
        );
        let store = Store {
            inner: Arc::new(Inner {
                node_id,
                syncer: Syncer::start(engine.clone(), Some(metrics.wal_sync_seconds.clone())),
                metrics: metrics.clone(),
                engine,
                transport,
                clock,
                config: Arc::new(raft_config(timeouts)?),
                replicas: RwLock::new(HashMap::new()),
                stopped: AtomicBool::new(false),
                incoming_snapshots: SnapshotStaging::default(),
                splits,
                lifecycle: tokio::sync::Mutex::new(()),
                votes_withheld_until,
                closed_timestamp_target_nanos: AtomicU64::new(
                    crate::closedts::DEFAULT_TARGET.as_nanos() as u64,
                ),
            }),
        };
        for (range_id, bytes) in records {
            let record = ReplicaRecord::decode(&bytes)?;
            debug_assert_eq!(record.descriptor.range_id, range_id);
            store.open_replica(&record).await?;
        }
        store.register_handlers()?;
        crate::split::spawn_right_hand_opener(&store, split_events);
        let quiesce_node = QuiesceNode {
            node_id,
            transport: store.inner.transport.clone(),
            replicas: store.clone(),
        };
        tokio::spawn(crate::quiesce::run(quiesce_node, election_timeout));
        tokio::spawn(crate::closedts::run(store.clone()));
        Ok(store)
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.inner.stopped.load(Ordering::Relaxed)
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    pub fn clock(&self) -> &Arc<HybridClock> {
        &self.inner.clock
    }

    /// How far behind its clock each leaseholder of this node closes
    /// timestamps ([`crate::closedts`]).
    pub fn closed_timestamp_target(&self) -> Duration {
        Duration::from_nanos(
            self.inner
                .closed_timestamp_target_nanos
                .load(Ordering::Relaxed),
        )
    }

    /// Sets the target lag of closed timestamps; effective at the next close.
    /// A shorter lag serves follower reads nearer the present, and pushes
    /// more long transactions' writes above their reads.
    pub fn set_closed_timestamp_target(&self, target: Duration) {
        self.inner
            .closed_timestamp_target_nanos
            .store(target.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn replica(&self, range_id: RangeId) -> Option<Arc<Replica>> {
        self.inner.replicas.read().get(&range_id).cloned()
    }

    pub fn replicas(&self) -> Vec<Arc<Replica>> {
        self.inner.replicas.read().values().cloned().collect()
    }

    /// Serves a batch addressed to one of this node's ranges.
    pub async fn send(&self, request: BatchRequest) -> BatchResult {
        let started = Instant::now();
        let result = match self.replica(request.range_id) {
            Some(replica) => replica.send(request).await,
            None => Err(KvError::RangeNotFound {
                range_id: request.range_id,
            }),
        };
        let metrics = &self.inner.metrics;
        metrics.batches.inc();
        metrics
            .batch_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// Stops every replica's Raft group.
    pub async fn shutdown(&self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
        let replicas: Vec<_> = self
            .inner
            .replicas
            .write()
            .drain()
            .map(|(_, r)| r)
            .collect();
        for replica in replicas {
            replica.stop().await;
        }
    }
}

impl ReplicaSource for Store {
    fn replicas(&self) -> Vec<Arc<Replica>> {
        Store::replicas(self)
    }

    fn is_stopped(&self) -> bool {
        Store::is_stopped(self)
    }
}
