//! Node and range status: what `meridian node status`, `meridian debug
//! ranges` and the admin HTTP endpoint show. One node gathers it: node
//! records and liveness from its own view, ranges from the meta records,
//! and replica and lease counts by asking every node for its local view,
//! and each range's conformance to its zone config.
//!
//! The functions here take what they read (the membership, the directory,
//! the liveness verdicts), not the node.
//!
//! Not here: serving the RPCs and HTTP routes (`node`, `admin`), splitting
//! (`debug split` goes to `split_queue`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meridian_hlc::HybridClock;
use meridian_kvapi::wire::kinds;
use meridian_kvapi::{NodeId, RangeDescriptor, RangeId};
use meridian_kvserver::store::Store;
use meridian_placement::allocator::{nonconformities, NodeInfo};
use meridian_placement::{ZoneConfig, ZoneConfigs};
use meridian_transport::{Locality, Rpc};
use serde::{Deserialize, Serialize};

use crate::allocator::{self, Verdicts};
use crate::directory::Directory;
use crate::liveness::{Liveness, LivenessStatus};
use crate::member::Member;
use crate::system;
use crate::zones;

/// One node's own replicas: `(range_id, leads, bytes)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalReplicas {
    pub node_id: NodeId,
    pub replicas: Vec<(u64, bool, i64)>,
}

pub struct LocalReplicasRpc;
impl Rpc for LocalReplicasRpc {
    const KIND: u16 = kinds::LOCAL_REPLICAS;
    const NAME: &'static str = "LocalReplicas";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = LocalReplicas;
}

/// The whole cluster's status as one node sees it.
pub struct ClusterStatusRpc;
impl Rpc for ClusterStatusRpc {
    const KIND: u16 = kinds::CLUSTER_STATUS;
    const NAME: &'static str = "ClusterStatus";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = Result<ClusterStatus, StatusError>;
}

/// Why the cluster status could not be gathered. Crosses the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum StatusError {
    #[error("this node has not joined a cluster yet")]
    NotMember,
    #[error("kv: {0}")]
    Kv(String),
    #[error("node stopping")]
    Stopping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    pub address: String,
    pub http_address: Option<String>,
    pub locality: Locality,
    pub liveness: LivenessStatus,
    pub epoch: u64,
    /// Milliseconds until the liveness record expires (negative: expired).
    pub expires_in_ms: i64,
    /// `None` when the node did not answer.
    pub replicas: Option<usize>,
    pub leaseholders: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeStatus {
    pub range_id: RangeId,
    /// Keys shown with non-printable bytes escaped.
    pub start_key: String,
    pub end_key: String,
    pub generation: u64,
    pub voters: Vec<NodeId>,
    pub non_voters: Vec<NodeId>,
    pub leaseholder: Option<NodeId>,
    pub bytes: Option<i64>,
    /// What keeps the range from conforming to its zone config (wrong
    /// counts, unmet constraints, a replica outside its constraints, a
    /// config boundary inside it); empty when it conforms.
    pub nonconforming: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub cluster_id: String,
    pub nodes: Vec<NodeStatus>,
    pub ranges: Vec<RangeStatus>,
}

/// A key for humans: printable ASCII as is, other bytes as `\xNN`.
pub fn pretty_key(key: &[u8]) -> String {
    key.iter()
        .map(|&b| {
            if b.is_ascii_graphic() && b != b'\\' {
                (b as char).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// This node's own replicas; none before it is a member.
pub fn local_replicas(me: NodeId, store: Option<&Store>) -> LocalReplicas {
    LocalReplicas {
        node_id: me,
        replicas: store
            .map(|store| {
                store
                    .replicas()
                    .iter()
                    .map(|r| {
                        (
                            r.range_id(),
                            r.leader() == Some(me),
                            r.stats().total_bytes(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// What keeps `d` from conforming to its zone config.
fn conformance(configs: &ZoneConfigs, nodes: &[NodeInfo], d: &RangeDescriptor) -> Vec<String> {
    let config = configs.effective(&d.start_key);
    let state = allocator::range_state(&d.replicas, None);
    let mut problems = nonconformities(nodes, &state, &config);
    if let Some(key) = configs.split_keys_within(&d.start_key, &d.end_key).first() {
        problems.push(format!(
            "spans two zone configs (to split at {})",
            pretty_key(key)
        ));
    }
    problems
}

/// Gathers the cluster's status (see the module documentation).
pub(crate) async fn cluster_status(
    member: &Member,
    directory: &Directory,
    liveness: &Liveness,
    clock: &Arc<HybridClock>,
    root: &ZoneConfig,
) -> Result<ClusterStatus, StatusError> {
    let me = member.ident.node_id;
    let descriptors = system::all_meta(&member.ds)
        .await
        .map_err(|e| StatusError::Kv(e.to_string()))?;
    let mut configs = zones::load(&member.ds, clock, root)
        .await
        .map_err(|e| StatusError::Kv(e.to_string()))?;
    let nodes = directory.nodes();
    let mut local: BTreeMap<NodeId, LocalReplicas> = BTreeMap::new();
    // All nodes at once: a dead one costs one timeout, not one each.
    let answers = futures_util::future::join_all(nodes.iter().map(|n| async move {
        if n.node_id == me {
            Some(local_replicas(me, Some(&member.store)))
        } else {
            member
                .store
                .transport()
                .call::<LocalReplicasRpc>(n.node_id, &(), Duration::from_secs(2))
                .await
                .ok()
        }
    }))
    .await;
    for (n, answer) in nodes.iter().zip(answers) {
        if let Some(answer) = answer {
            local.insert(n.node_id, answer);
        }
    }
    let now = clock.physical_now();
    let node_status = nodes
        .iter()
        .map(|n| {
            let record = liveness.record(n.node_id);
            let counts = local.get(&n.node_id);
            NodeStatus {
                node_id: n.node_id,
                address: n.address.clone(),
                http_address: n.http_address.clone(),
                locality: n.locality.clone(),
                liveness: liveness.status(n.node_id, now),
                epoch: record.map_or(0, |r| r.epoch),
                expires_in_ms: record
                    .map_or(0, |r| (r.expiration_nanos as i64 - now as i64) / 1_000_000),
                replicas: counts.map(|c| c.replicas.len()),
                leaseholders: counts.map(|c| c.replicas.iter().filter(|r| r.1).count()),
            }
        })
        .collect();
    let verdicts: Verdicts = nodes
        .iter()
        .map(|n| (n.node_id, liveness.status(n.node_id, now)))
        .collect();
    let infos = allocator::node_infos(&nodes, &verdicts, &BTreeMap::new());
    zones::add_catalog_config(&mut configs, &infos);
    let ranges = descriptors
        .iter()
        .map(|d| {
            let mut leaseholder = None;
            let mut bytes = None;
            for (node, answer) in &local {
                if let Some(r) = answer.replicas.iter().find(|r| r.0 == d.range_id) {
                    if r.1 {
                        leaseholder = Some(*node);
                        bytes = Some(r.2);
                    }
                }
            }
            RangeStatus {
                range_id: d.range_id,
                start_key: pretty_key(&d.start_key),
                end_key: pretty_key(&d.end_key),
                generation: d.generation,
                voters: d.voters().map(|r| r.node_id).collect(),
                non_voters: d
                    .replicas
                    .iter()
                    .filter(|r| r.kind == meridian_kvapi::ReplicaKind::NonVoter)
                    .map(|r| r.node_id)
                    .collect(),
                leaseholder,
                bytes,
                nonconforming: conformance(&configs, &infos, d),
            }
        })
        .collect();
    Ok(ClusterStatus {
        cluster_id: member.ident.cluster_id.clone(),
        nodes: node_status,
        ranges,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_print_escaped() {
        assert_eq!(pretty_key(b"abc"), "abc");
        assert_eq!(pretty_key(&[0x10, b'a', b'\\', b' ']), "\\x10a\\x5c\\x20");
    }

    #[test]
    fn status_errors_cross_the_wire() {
        let error = StatusError::Kv("no answer".into());
        let bytes = postcard::to_allocvec(&error).expect("encodes");
        assert_eq!(postcard::from_bytes::<StatusError>(&bytes).unwrap(), error);
    }
}
