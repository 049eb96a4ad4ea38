//! A node's settings. The CLI fills them from flags.
//!
//! Not here: parsing flags and config files (`cli`), checking them
//! (`Node::start`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use meridian_kvserver::store::RaftTimeouts;
use meridian_transport::{Locality, NetworkModel};

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The store directory (RocksDB and the node's identity).
    pub store: PathBuf,
    /// UDP address the QUIC endpoint binds.
    pub listen: SocketAddr,
    /// The address other nodes dial; defaults to `listen`.
    pub advertise: Option<SocketAddr>,
    /// The admin HTTP address; `None`: no HTTP endpoint.
    pub http: Option<SocketAddr>,
    /// TCP address of the PostgreSQL listener; `None`: the same ip and
    /// port as `listen` (which is UDP, for QUIC), so one address serves
    /// SQL and RPC. With `listen` on port 0 that is any free TCP port.
    pub sql_listen: Option<SocketAddr>,
    pub locality: Locality,
    /// Nodes to contact to join, or to announce ourselves to at restart.
    pub join: Vec<SocketAddr>,
    /// A new node that reaches none of `join` for this long gives up.
    pub join_timeout: Duration,
    pub certs_dir: PathBuf,
    pub raft: RaftTimeouts,
    /// A range larger than this is split in two.
    pub range_max_bytes: u64,
    /// How often a node renews its liveness record.
    pub liveness_interval: Duration,
    /// How long a liveness record stays valid after a heartbeat.
    pub liveness_ttl: Duration,
    /// A node whose liveness expired this long ago is dead: its replicas
    /// are replaced elsewhere.
    pub time_until_dead: Duration,
    /// How often leaseholders check meta records, sizes and replication.
    pub queue_interval: Duration,
    /// Replicas per range when enough nodes exist.
    pub replication_factor: usize,
    /// How long old versions stay readable: the MVCC GC queue removes
    /// versions older than this (that a newer one replaced), and reads
    /// further back are refused. Default 4 h
    /// ([`DEFAULT_GC_TTL`](crate::mvcc_gc_queue::DEFAULT_GC_TTL)); zone
    /// configs will set it per range and take this over as the default.
    pub gc_ttl: Duration,
    /// The most this node's clock may be ahead of or behind any other
    /// node's (the HLC refuses timestamps further ahead); every node of a
    /// cluster must be given the same. Reads carry an uncertainty interval
    /// this long, and GLOBAL tables' writes wait about this long more.
    /// Default 500 ms, as CockroachDB's `--max-offset`.
    pub max_offset: Duration,
    /// How far behind the present this node's leaseholders close
    /// timestamps: follower reads (`AS OF SYSTEM TIME`) are served locally
    /// at or below it; a shorter target serves fresher ones and pushes the
    /// writes of long transactions above their reads more often. Default
    /// 3 s, as CockroachDB's `kv.closed_timestamp.target_duration`.
    pub closed_timestamp_target: Duration,
    /// Injected network delays (and faults) between this node and the
    /// others, by region: `meridian start --latency FILE` loads a profile,
    /// `meridian demo` shares one model among its nodes. A model with a
    /// latency matrix must list this node's region (`Node::start` checks).
    /// `None`: messages go out as they come.
    pub network: Option<NetworkModel>,
}

impl NodeConfig {
    pub fn new(store: PathBuf, listen: SocketAddr, certs_dir: PathBuf) -> Self {
        NodeConfig {
            store,
            listen,
            advertise: None,
            http: None,
            sql_listen: None,
            locality: Locality::default(),
            join: Vec::new(),
            join_timeout: Duration::from_secs(60),
            certs_dir,
            raft: RaftTimeouts::LAN,
            range_max_bytes: 512 << 20,
            liveness_interval: Duration::from_secs(1),
            liveness_ttl: Duration::from_secs(5),
            time_until_dead: Duration::from_secs(60),
            queue_interval: Duration::from_secs(1),
            replication_factor: 3,
            gc_ttl: crate::mvcc_gc_queue::DEFAULT_GC_TTL,
            max_offset: meridian_hlc::DEFAULT_MAX_OFFSET,
            closed_timestamp_target: meridian_kvserver::closedts::DEFAULT_TARGET,
            network: None,
        }
    }
}
