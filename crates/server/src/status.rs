//! Node and range status: what `meridian node status`, `meridian debug
//! ranges` and the admin HTTP endpoint show. One node gathers it: node
//! records and liveness from its own view, ranges from the meta records,
//! and replica and lease counts by asking every node for its local view.

use std::collections::BTreeMap;
use std::time::Duration;

use meridian_kvapi::NodeId;
use meridian_transport::{Locality, Rpc};
use serde::{Deserialize, Serialize};

use crate::error::ServerError;
use crate::liveness::LivenessStatus;
use crate::node::Node;
use crate::system;

/// One node's own replicas: `(range_id, leads, bytes)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalReplicas {
    pub node_id: NodeId,
    pub replicas: Vec<(u64, bool, i64)>,
}

pub struct LocalReplicasRpc;
impl Rpc for LocalReplicasRpc {
    const KIND: u16 = 133;
    const NAME: &'static str = "LocalReplicas";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = LocalReplicas;
}

/// The whole cluster's status as one node sees it.
pub struct ClusterStatusRpc;
impl Rpc for ClusterStatusRpc {
    const KIND: u16 = 134;
    const NAME: &'static str = "ClusterStatus";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = Result<ClusterStatus, String>;
}

/// Splits the range holding a key there (`meridian debug split`).
pub struct DebugSplitRpc;
impl Rpc for DebugSplitRpc {
    const KIND: u16 = 135;
    const NAME: &'static str = "DebugSplit";
    type Request = Vec<u8>;
    type Response = Result<(), String>;
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
    pub range_id: u64,
    /// Keys shown with non-printable bytes escaped.
    pub start_key: String,
    pub end_key: String,
    pub generation: u64,
    pub voters: Vec<NodeId>,
    pub non_voters: Vec<NodeId>,
    pub leaseholder: Option<NodeId>,
    pub bytes: Option<i64>,
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

impl Node {
    pub fn local_replicas(&self) -> LocalReplicas {
        let me = self.node_id();
        LocalReplicas {
            node_id: me,
            replicas: self
                .member()
                .map(|m| {
                    m.store
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

    /// Gathers the cluster's status (see the module documentation).
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ServerError> {
        let member = self
            .member()
            .ok_or_else(|| ServerError::Refused("this node has not joined a cluster yet".into()))?;
        let descriptors = system::all_meta(&member.ds).await?;
        let nodes = self.directory();
        let mut local: BTreeMap<NodeId, LocalReplicas> = BTreeMap::new();
        // All nodes at once: a dead one costs one timeout, not one each.
        let answers = futures_util::future::join_all(nodes.iter().map(|n| async move {
            if n.node_id == self.node_id() {
                Some(self.local_replicas())
            } else {
                self.transport()
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
        let now = self.clock().physical_now();
        let node_status = nodes
            .iter()
            .map(|n| {
                let record = self.liveness().record(n.node_id);
                let counts = local.get(&n.node_id);
                NodeStatus {
                    node_id: n.node_id,
                    address: n.address.clone(),
                    http_address: n.http_address.clone(),
                    locality: n.locality.clone(),
                    liveness: self.liveness().status(n.node_id, now),
                    epoch: record.map_or(0, |r| r.epoch),
                    expires_in_ms: record
                        .map_or(0, |r| (r.expiration_nanos as i64 - now as i64) / 1_000_000),
                    replicas: counts.map(|c| c.replicas.len()),
                    leaseholders: counts.map(|c| c.replicas.iter().filter(|r| r.1).count()),
                }
            })
            .collect();
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
                }
            })
            .collect();
        Ok(ClusterStatus {
            cluster_id: member.ident.cluster_id,
            nodes: node_status,
            ranges,
        })
    }
}

pub(crate) fn register(node: &Node) -> Result<(), ServerError> {
    let transport = node.transport();
    let weak = std::sync::Arc::downgrade(&node.inner);
    transport.register::<LocalReplicasRpc, _, _>(move |_, ()| {
        let weak = weak.clone();
        async move {
            weak.upgrade()
                .map(|inner| Node { inner }.local_replicas())
                .unwrap_or_default()
        }
    })?;
    let weak = std::sync::Arc::downgrade(&node.inner);
    transport.register::<ClusterStatusRpc, _, _>(move |_, ()| {
        let weak = weak.clone();
        async move {
            let node = Node {
                inner: weak.upgrade().ok_or("node stopping")?,
            };
            node.cluster_status().await.map_err(|e| e.to_string())
        }
    })?;
    let weak = std::sync::Arc::downgrade(&node.inner);
    transport.register::<DebugSplitRpc, _, _>(move |_, key: Vec<u8>| {
        let weak = weak.clone();
        async move {
            let node = Node {
                inner: weak.upgrade().ok_or("node stopping")?,
            };
            let member = node
                .member()
                .ok_or("this node has not joined a cluster yet")?;
            if key
                .first()
                .is_none_or(|&b| b < meridian_keys::space::TABLE_PREFIX)
            {
                return Err(
                    "keys below 0x10 belong to the meta and system range, which does not split"
                        .into(),
                );
            }
            crate::queues::split_at(&member, &key).await
        }
    })?;
    Ok(())
}
