//! Joining: how a node gets into a cluster, and how a member lets it in.
//!
//! The joining side, through the `--join` addresses (by address: their ids
//! are not known yet):
//! - a new node ([`join_loop`]) asks for a node id every second until a
//!   member answers. `NotInitialized` means wait; a refusal for good
//!   ([`JoinError::is_permanent`]) stops the node; no node reachable for
//!   `--join-timeout-secs` stops it too; a `--join` listing only this node
//!   means wait for `init`. Once answered, it writes its identity, learns
//!   the directory and the first range, and becomes a member;
//! - a restarted node ([`announce_loop`]) tells a member its (possibly
//!   new) address and learns the directory, and keeps trying while its
//!   peers may be restarting too; a store of another cluster stops it.
//!
//! The member's side ([`Node::handle_join`]): answer only once the
//! bootstrap records exist (or an id could be handed out twice); refuse a
//! store of another cluster; give a retried join whose first answer was
//! lost (same address, no liveness record yet) the same id; otherwise
//! allocate one from the node-id counter; record the node; answer with the
//! cluster as this member knows it.
//!
//! Not here: bootstrapping (`bootstrap`), the directory (`directory`).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use meridian_kvapi::NodeId;
use tracing::info;

use crate::error::ServerError;
use crate::ident::{self, StoreIdent};
use crate::node::{Node, WeakNode};
use crate::rpc::{ClusterInfo, JoinError, JoinRequest, JoinRpc};
use crate::system;

/// Pause between rounds of join calls.
const RETRY: Duration = Duration::from_secs(1);

/// How a round of join calls ended.
enum JoinOutcome {
    Joined(ClusterInfo),
    /// A node refused for good (e.g. another cluster): stop.
    Refused(JoinError),
    /// Some node answered but cannot take us yet (not initialized).
    NotYet,
    /// No node answered; the last error.
    Unreachable(String),
}

impl Node {
    /// Answers a joining or restarting node.
    pub(crate) async fn handle_join(&self, request: JoinRequest) -> Result<ClusterInfo, JoinError> {
        let member = self
            .member()
            .filter(|_| self.inner.bootstrapped.load(Ordering::SeqCst))
            .ok_or(JoinError::NotInitialized)?;
        let node_id = match &request.existing {
            Some((cluster_id, node_id)) => {
                if *cluster_id != member.ident.cluster_id {
                    return Err(JoinError::OtherCluster {
                        node_id: *node_id,
                        cluster_id: cluster_id.clone(),
                        this_cluster: member.ident.cluster_id.clone(),
                    });
                }
                *node_id
            }
            None => match self.unstarted_node_at(&request.descriptor.address) {
                // A retried join whose first answer was lost: same id.
                Some(id) => id,
                // Node 1 is the node that bootstrapped.
                None => system::next_id(&member.ds, system::NODE_ID_COUNTER, 2)
                    .await
                    .map_err(|e| JoinError::AllocateId(e.to_string()))?,
            },
        };
        let mut descriptor = request.descriptor;
        descriptor.node_id = node_id;
        system::put_json(&member.ds, system::node_key(node_id), &descriptor)
            .await
            .map_err(|e| JoinError::Record {
                node_id,
                reason: e.to_string(),
            })?;
        self.inner.directory.learn(&[descriptor]);
        let mut info = self.cluster_info();
        info.node_id = node_id;
        Ok(info)
    }

    /// A node recorded at `address` that never heartbeated: one whose join
    /// answer was lost.
    fn unstarted_node_at(&self, address: &str) -> Option<NodeId> {
        self.directory()
            .into_iter()
            .find(|n| n.address == address && self.liveness().record(n.node_id).is_none())
            .map(|n| n.node_id)
    }

    /// The `--join` addresses but this node's own.
    pub(crate) fn other_join_addresses(&self) -> Vec<SocketAddr> {
        let own = [self.advertise_addr(), self.inner.transport.local_addr()];
        self.inner
            .config
            .join
            .iter()
            .copied()
            .filter(|addr| !own.contains(addr))
            .collect()
    }

    /// Calls the `--join` addresses in turn until one takes `request`.
    async fn call_join_addresses(&self, request: &JoinRequest) -> JoinOutcome {
        let mut last = None;
        let mut answered = false;
        for addr in self.other_join_addresses() {
            let result = self
                .inner
                .transport
                .call_addr::<JoinRpc>(addr, request, Duration::from_secs(5))
                .await;
            match result {
                Ok(Ok(info)) => return JoinOutcome::Joined(info),
                Ok(Err(refusal)) if refusal.is_permanent() => {
                    return JoinOutcome::Refused(refusal);
                }
                Ok(Err(refusal)) => {
                    answered = true;
                    last = Some(format!("{addr}: {refusal}"));
                }
                Err(e) => last = Some(format!("{addr}: {e}")),
            }
        }
        let Some(last) = last else {
            // Only this node is listed: wait for `init`, as without --join.
            return JoinOutcome::NotYet;
        };
        info!("join: {last}; retrying");
        if answered {
            JoinOutcome::NotYet
        } else {
            JoinOutcome::Unreachable(last)
        }
    }

    /// Writes the identity a member of `cluster_id` handed out and becomes
    /// a member.
    async fn accept_join(&self, cluster_id: String, info: ClusterInfo) {
        let _guard = self.inner.become_member.lock().await;
        if self.member().is_some() {
            return;
        }
        let ident = StoreIdent {
            cluster_id,
            node_id: info.node_id,
        };
        if let Err(e) = ident::write(&self.inner.config.store, &ident) {
            self.fail(e);
            return;
        }
        self.inner.directory.learn(&info.nodes);
        self.inner.first_range.set(info.first_range.clone());
        info!(node = ident.node_id, cluster = %ident.cluster_id, "joined");
        match self.become_member(ident).await {
            Ok(_) => self.inner.bootstrapped.store(true, Ordering::SeqCst),
            Err(e) => self.fail(e),
        }
    }
}

/// A new node: asks `--join` nodes for an id until one answers. If none
/// of them can be reached for `join_timeout`, the node gives up.
pub(crate) async fn join_loop(weak: WeakNode) {
    let started = tokio::time::Instant::now();
    loop {
        let Some(node) = weak.upgrade() else { return };
        if node.member().is_some() {
            return;
        }
        let request = JoinRequest {
            existing: None,
            descriptor: node.descriptor(0),
        };
        let join_timeout = node.inner.config.join_timeout;
        match node.call_join_addresses(&request).await {
            JoinOutcome::Joined(info) => match info.cluster_id.clone() {
                Some(cluster_id) => {
                    node.accept_join(cluster_id, info).await;
                    return;
                }
                // An answer without a cluster id: ask again at once.
                None => continue,
            },
            JoinOutcome::Refused(refusal) => {
                node.fail(ServerError::JoinRefused(refusal));
                return;
            }
            JoinOutcome::Unreachable(last) if started.elapsed() > join_timeout => {
                let addrs: Vec<String> = node
                    .inner
                    .config
                    .join
                    .iter()
                    .map(|a| a.to_string())
                    .collect();
                node.fail(ServerError::JoinUnreachable {
                    join: addrs.join(","),
                    timeout: join_timeout,
                    last,
                });
                return;
            }
            JoinOutcome::NotYet | JoinOutcome::Unreachable(_) => {}
        }
        drop(node);
        tokio::time::sleep(RETRY).await;
    }
}

/// A restarted node: tells a `--join` node its (possibly new) address and
/// learns the cluster's nodes; refuses to go on with a store of another
/// cluster.
pub(crate) async fn announce_loop(weak: WeakNode) {
    loop {
        let Some(node) = weak.upgrade() else { return };
        let Some(member) = node.member() else { return };
        if node.inner.config.join.is_empty() {
            return;
        }
        let request = JoinRequest {
            existing: Some((member.ident.cluster_id.clone(), member.ident.node_id)),
            descriptor: node.descriptor(member.ident.node_id),
        };
        match node.call_join_addresses(&request).await {
            JoinOutcome::Joined(info) => {
                node.inner.directory.learn(&info.nodes);
                return;
            }
            JoinOutcome::Refused(refusal) => {
                node.fail(ServerError::JoinRefused(refusal));
                return;
            }
            // A restarted node keeps trying: its peers may be restarting too.
            JoinOutcome::NotYet | JoinOutcome::Unreachable(_) => {}
        }
        drop((node, member));
        tokio::time::sleep(RETRY).await;
    }
}
