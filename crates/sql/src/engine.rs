//! The node's SQL engine: what every session of the node shares (the way
//! into the KV layer, the clock, the node's identity and locality, the
//! generator of row ids, the localities of the cluster's nodes).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use meridian_hlc::HybridClock;
use meridian_kvclient::DistSender;
pub use meridian_topology::Locality;

use crate::session::Session;

/// Splits ranges for the SQL layer: a new table starts on a range of its
/// own. The node implements it (it owns range ids and the split queue).
pub trait RangeSplitter: Send + Sync {
    /// Splits at `key`, in the background; failures are the splitter's to
    /// log (the split queue splits at table boundaries later anyway).
    fn split_at(&self, key: Vec<u8>);
}

/// The localities of the cluster's nodes, as the node knows them now
/// (its directory): which regions exist, and whether a zone config can be
/// satisfied.
pub trait ClusterLocalities: Send + Sync {
    /// Each node's id and locality, in any order.
    fn localities(&self) -> Vec<(u64, Locality)>;

    /// Brings what [`ClusterLocalities::localities`] answers up to date
    /// with the cluster's records of its nodes, for a caller about to
    /// refuse something because of a node it does not know: a node's
    /// picture may lag behind a node that joined a moment ago.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(std::future::ready(()))
    }

    /// Whether the nodes are in more than one region. Asked by every
    /// statement: an implementation should answer without copying the
    /// localities.
    fn spans_regions(&self) -> bool {
        let localities = self.localities();
        localities
            .iter()
            .any(|(_, l)| l.region != localities[0].1.region)
    }
}

/// A [`ClusterLocalities`] computed by a closure (the node wraps its
/// directory in one).
pub struct LocalitiesFn<F>(pub F);

impl<F: Fn() -> Vec<(u64, Locality)> + Send + Sync> ClusterLocalities for LocalitiesFn<F> {
    fn localities(&self) -> Vec<(u64, Locality)> {
        (self.0)()
    }
}

/// What a node tells its SQL engine about itself.
#[derive(Clone, Default)]
pub struct SqlConfig {
    pub node_id: u64,
    /// The node's `--locality` tiers, e.g. `[("region", "eu"), ("zone",
    /// "eu-1")]`.
    pub locality: Vec<(String, String)>,
    pub splitter: Option<Arc<dyn RangeSplitter>>,
    /// The cluster's node localities. `None`: unknown, so regions and zone
    /// configs are not checked against the cluster (unit tests).
    pub cluster_localities: Option<Arc<dyn ClusterLocalities>>,
    /// The node's closed timestamp target; `None`: the default (3 s).
    /// `follower_read_timestamp()` goes back this plus 1.8 s.
    pub closed_timestamp_target: Option<std::time::Duration>,
}

/// Shared by all sessions of a node. Cheap to clone behind its `Arc`.
pub struct SqlEngine {
    pub(crate) ds: DistSender,
    pub(crate) clock: Arc<HybridClock>,
    pub(crate) config: SqlConfig,
    last_row_id: AtomicU64,
}

/// Bits of a row id that name the node, so that two nodes never generate
/// the same id (as CockroachDB's `unique_rowid()`).
const NODE_BITS: u32 = 15;

impl SqlEngine {
    pub fn new(ds: DistSender, clock: Arc<HybridClock>, config: SqlConfig) -> Arc<SqlEngine> {
        Arc::new(SqlEngine {
            ds,
            clock,
            config,
            last_row_id: AtomicU64::new(0),
        })
    }

    /// How far back `follower_read_timestamp()` is on this node.
    pub fn follower_read_offset(&self) -> std::time::Duration {
        crate::exec::as_of::follower_read_offset(
            self.config
                .closed_timestamp_target
                .unwrap_or(crate::exec::as_of::DEFAULT_CLOSED_TIMESTAMP_TARGET),
        )
    }

    /// A session for a connection of `user` to `database`.
    pub fn session(self: &Arc<Self>, user: &str, database: &str) -> Session {
        Session::new(self.clone(), user, database)
    }

    /// The node's region, if its locality names one.
    pub fn region(&self) -> Option<&str> {
        self.config
            .locality
            .iter()
            .find(|(tier, _)| tier == "region")
            .map(|(_, value)| value.as_str())
    }

    /// Starts a split at the first key of table `table_id`.
    pub fn split_at_table(&self, table_id: u64) {
        self.split_at(meridian_keys::space::table_prefix(table_id));
    }

    /// Starts a split at `key` (a partition boundary, say).
    pub fn split_at(&self, key: Vec<u8>) {
        if let Some(splitter) = &self.config.splitter {
            splitter.split_at(key);
        }
    }

    /// The localities of the cluster's nodes, if the node knows them.
    pub fn cluster_localities(&self) -> Option<Vec<Locality>> {
        self.node_localities()
            .map(|nodes| nodes.into_iter().map(|(_, l)| l).collect())
    }

    /// Reads the cluster's node records again (see
    /// [`ClusterLocalities::refresh`]).
    pub async fn refresh_localities(&self) {
        if let Some(localities) = &self.config.cluster_localities {
            localities.refresh().await;
        }
    }

    /// Whether the cluster's nodes are in more than one region (then its
    /// catalog range has a replica on every node that serves the present,
    /// see `placement::catalog`).
    pub fn cluster_has_regions(&self) -> bool {
        self.config
            .cluster_localities
            .as_ref()
            .is_some_and(|c| c.spans_regions())
    }

    /// Each node's id and locality, if the node knows them.
    pub fn node_localities(&self) -> Option<Vec<(u64, Locality)>> {
        self.config
            .cluster_localities
            .as_ref()
            .map(|c| c.localities())
    }

    /// A new id, unique across the cluster and roughly ordered by time:
    /// microseconds since the epoch above, the node id below.
    pub fn unique_row_id(&self) -> i64 {
        let micros = self.clock.physical_now() / 1_000;
        let node = self.config.node_id & ((1 << NODE_BITS) - 1);
        let candidate = (micros << NODE_BITS) | node;
        let mut last = self.last_row_id.load(Ordering::Relaxed);
        loop {
            let next = if candidate > last {
                candidate
            } else {
                last + (1 << NODE_BITS)
            };
            match self.last_row_id.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (next & (i64::MAX as u64)) as i64,
                Err(seen) => last = seen,
            }
        }
    }
}
