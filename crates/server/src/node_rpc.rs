//! The node-level RPC handlers: init, join, cluster info, local replicas,
//! cluster status and the debug split, each registered through one helper
//! that holds the node weakly (a stopped node answers "stopping").
//!
//! Not here: what the handlers do (`bootstrap`, `join`, `status`,
//! `split_queue`) nor the RPCs' wire types (`rpc`, `status`).

use std::future::Future;

use meridian_transport::Rpc;

use crate::error::ServerError;
use crate::node::Node;
use crate::rpc::{
    ClusterInfo, ClusterInfoRpc, DebugSplitRpc, InitError, InitRpc, JoinError, JoinRpc,
};
use crate::split_queue::{self, SplitAt, SplitError};
use crate::status::{ClusterStatusRpc, LocalReplicas, LocalReplicasRpc, StatusError};

impl Node {
    /// Registers `handler` for RPC `R`. The handler gets the node while it
    /// lives; once it is gone, callers get `stopped()`.
    fn handle<R, F, Fut>(&self, stopped: fn() -> R::Response, handler: F) -> Result<(), ServerError>
    where
        R: Rpc,
        F: Fn(Node, R::Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R::Response> + Send + 'static,
    {
        let node = self.downgrade();
        self.inner
            .transport
            .register::<R, _, _>(move |_, request| {
                let answer = node.upgrade().map(|node| handler(node, request));
                async move {
                    match answer {
                        Some(answer) => answer.await,
                        None => stopped(),
                    }
                }
            })?;
        Ok(())
    }

    pub(crate) fn register_handlers(&self) -> Result<(), ServerError> {
        self.handle::<InitRpc, _, _>(
            || Err(InitError::Stopping),
            |node, ()| async move { node.init().await },
        )?;
        self.handle::<JoinRpc, _, _>(
            || Err(JoinError::Stopping),
            |node, request| async move { node.handle_join(request).await },
        )?;
        self.handle::<ClusterInfoRpc, _, _>(ClusterInfo::default, |node, ()| async move {
            node.cluster_info()
        })?;
        self.handle::<LocalReplicasRpc, _, _>(LocalReplicas::default, |node, ()| async move {
            node.local_replicas()
        })?;
        self.handle::<ClusterStatusRpc, _, _>(
            || Err(StatusError::Stopping),
            |node, ()| async move { node.cluster_status().await },
        )?;
        self.handle::<DebugSplitRpc, _, _>(
            || Err(SplitError::Stopping),
            |node, key: Vec<u8>| async move {
                let member = node.member().ok_or(SplitError::NotMember)?;
                split_queue::split(&member, SplitAt::Key(&key)).await
            },
        )?;
        Ok(())
    }
}
