//! The node directory: the address book of the cluster's nodes (id, QUIC
//! and HTTP addresses, locality) as this node knows them.
//!
//! It is filled from three sources: the answer to a join, the node records
//! in the first range (re-read every two seconds by [`refresh_loop`]), and
//! `NODES.json` in the store directory, which keeps the last known book
//! across restarts so a restarted node can reach its peers before it can
//! read the first range. Every node learned is also given to the transport
//! (this node included: its DistSender reaches local replicas the same
//! way).
//!
//! The SQL engine sees the directory through [`DirectoryLocalities`], and
//! refreshes it before refusing a region or a zone config for want of a
//! node it has not heard of yet.
//!
//! Not here: the node records themselves (`system`), liveness verdicts
//! (`liveness`), answering joins (`join`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use meridian_kvapi::NodeId;
use meridian_kvclient::DistSender;
use meridian_sql::ClusterLocalities;
use meridian_transport::{Locality, Transport};
use parking_lot::RwLock;
use tracing::warn;

use crate::member::Member;
use crate::system::{self, NodeDescriptor};

const NODES_FILE: &str = "NODES.json";

/// How often the directory is refreshed from the node records.
const REFRESH_INTERVAL: Duration = Duration::from_secs(2);

/// The cluster's nodes as this node knows them.
pub struct Directory {
    nodes: RwLock<BTreeMap<NodeId, NodeDescriptor>>,
    /// The store directory, where `NODES.json` lives.
    store_dir: PathBuf,
    transport: Transport,
}

impl Directory {
    /// A directory filled from `NODES.json` in `store_dir`, if present.
    pub(crate) fn load(store_dir: PathBuf, transport: Transport) -> Directory {
        let directory = Directory {
            nodes: RwLock::new(BTreeMap::new()),
            store_dir,
            transport,
        };
        let path = directory.store_dir.join(NODES_FILE);
        if let Ok(bytes) = std::fs::read(&path) {
            match serde_json::from_slice::<Vec<NodeDescriptor>>(&bytes) {
                Ok(nodes) => directory.learn(&nodes),
                Err(e) => warn!("ignoring {}: {e}", path.display()),
            }
        }
        directory
    }

    /// Every known node, in id order.
    pub fn nodes(&self) -> Vec<NodeDescriptor> {
        self.nodes.read().values().cloned().collect()
    }

    /// Adds or updates nodes in the directory (and the transport's).
    pub(crate) fn learn(&self, nodes: &[NodeDescriptor]) {
        let mut changed = false;
        {
            let mut directory = self.nodes.write();
            for node in nodes {
                if node.node_id == 0 || directory.get(&node.node_id) == Some(node) {
                    continue;
                }
                directory.insert(node.node_id, node.clone());
                changed = true;
            }
        }
        // This node too: its DistSender reaches local replicas the same way.
        for node in nodes {
            if node.node_id == 0 {
                continue;
            }
            match node.address.parse() {
                Ok(addr) => self
                    .transport
                    .set_peer(node.node_id, addr, node.locality.clone()),
                Err(e) => warn!(node = node.node_id, address = %node.address, "bad address: {e}"),
            }
        }
        if changed {
            self.save();
        }
    }

    fn save(&self) {
        let nodes = self.nodes();
        let tmp = self.store_dir.join(format!("{NODES_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&nodes).expect("descriptors serialize");
        let result = std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, self.store_dir.join(NODES_FILE)));
        if let Err(e) = result {
            warn!("cannot save the node directory: {e}");
        }
    }
}

/// The cluster's localities for the SQL engine, from the directory, which
/// a refresh brings up to date with the node records at once (instead of
/// at the next [`refresh_loop`] pass).
pub(crate) struct DirectoryLocalities {
    pub directory: Arc<Directory>,
    pub ds: DistSender,
}

impl ClusterLocalities for DirectoryLocalities {
    fn localities(&self) -> Vec<(u64, Locality)> {
        self.directory
            .nodes()
            .into_iter()
            .map(|n| (n.node_id, n.locality))
            .collect()
    }

    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(reread(&self.directory, &self.ds))
    }

    fn spans_regions(&self) -> bool {
        let nodes = self.directory.nodes.read();
        let mut regions = nodes.values().map(|n| &n.locality.region);
        let first = regions.next();
        regions.any(|r| Some(r) != first)
    }
}

/// Keeps the directory in step with the node records, for as long as the
/// node's membership lives.
pub(crate) async fn refresh_loop(member: Weak<Member>, directory: Arc<Directory>) {
    loop {
        tokio::time::sleep(REFRESH_INTERVAL).await;
        let Some(member) = member.upgrade() else {
            return;
        };
        reread(&directory, &member.ds).await;
    }
}

/// Reads the node records and learns them.
async fn reread(directory: &Directory, ds: &DistSender) {
    match system::scan_json::<NodeDescriptor>(ds, &system::node_prefix()).await {
        Ok(nodes) => directory.learn(&nodes),
        Err(e) => warn!("reading the node records: {e}"),
    }
}
