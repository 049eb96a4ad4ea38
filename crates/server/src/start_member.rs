//! Becoming a cluster member: what a node starts once it has an identity.
//!
//! [`Node::become_member`] starts the store, the DistSender (its view of
//! the cluster, `cluster_view`, and its local fast path,
//! `local_transport`), the SQL engine on that DistSender, and the loops,
//! each given what it needs rather than the node: liveness heartbeats, the
//! queues, the latency pings, the directory refresh.
//!
//! Not here: how the identity is obtained (`bootstrap`, `join`), nor what
//! a member is made of (`member`).

use std::sync::Arc;

use meridian_kvclient::{DistSender, DistSenderConfig};
use meridian_kvserver::store::Store;
use meridian_sql::{SqlConfig, SqlEngine};

use crate::cluster_view::NodeView;
use crate::directory::{self, DirectoryLocalities};
use crate::error::ServerError;
use crate::ident::StoreIdent;
use crate::liveness::{self, HeartbeatTiming};
use crate::member::Member;
use crate::node::Node;
use crate::queues::{self, QueueContext, QueueSettings};
use crate::split_queue::SqlSplitter;

impl Node {
    /// Starts the store, the DistSender and the loops of a cluster member.
    pub(crate) async fn become_member(&self, ident: StoreIdent) -> Result<Member, ServerError> {
        let inner = &self.inner;
        inner.transport.set_node_id(ident.node_id);
        let store = Store::start(
            ident.node_id,
            inner.engine.clone(),
            inner.transport.clone(),
            inner.clock.clone(),
            inner.config.raft,
        )
        .await?;
        store.set_closed_timestamp_target(inner.config.closed_timestamp_target);
        // The view holds the membership weakly: the membership holds the
        // DistSender, which holds the view.
        let member = Arc::new_cyclic(|weak| {
            let view = Arc::new(NodeView {
                member: weak.clone(),
                directory: inner.directory.clone(),
                transport: inner.transport.clone(),
                remembered: inner.first_range.clone(),
            });
            let local_first = crate::local_transport::LocalFirst {
                me: ident.node_id,
                store: store.clone(),
                transport: inner.transport.clone(),
            };
            let ds = DistSender::with_transport(
                Arc::new(local_first),
                view,
                DistSenderConfig::default(),
            );
            let locality = &inner.config.locality;
            let sql = SqlEngine::new(
                ds.clone(),
                inner.clock.clone(),
                SqlConfig {
                    node_id: ident.node_id,
                    locality: vec![
                        ("region".to_string(), locality.region.clone()),
                        ("zone".to_string(), locality.zone.clone()),
                    ],
                    splitter: Some(Arc::new(SqlSplitter::new(weak.clone()))),
                    cluster_localities: Some(Arc::new(DirectoryLocalities {
                        directory: inner.directory.clone(),
                        ds: ds.clone(),
                    })),
                    closed_timestamp_target: Some(inner.config.closed_timestamp_target),
                },
            );
            Member {
                ident: ident.clone(),
                store,
                ds,
                sql,
            }
        });
        *inner.member.write() = Some(member.clone());
        inner.directory.learn(&[self.descriptor(ident.node_id)]);
        let config = &inner.config;
        self.spawn(liveness::run(
            Arc::downgrade(&member),
            inner.liveness.clone(),
            inner.clock.clone(),
            HeartbeatTiming {
                interval: config.liveness_interval,
                ttl: config.liveness_ttl,
            },
        ));
        self.spawn(queues::run(QueueContext {
            member: Arc::downgrade(&member),
            liveness: inner.liveness.clone(),
            directory: inner.directory.clone(),
            clock: inner.clock.clone(),
            conformance: inner.conformance.clone(),
            settings: QueueSettings {
                interval: config.queue_interval,
                root_config: crate::zones::root_config(config),
            },
        }));
        self.spawn(crate::latency::run(
            Arc::downgrade(&member),
            inner.directory.clone(),
        ));
        self.spawn(directory::refresh_loop(
            Arc::downgrade(&member),
            inner.directory.clone(),
        ));
        Ok((*member).clone())
    }
}
