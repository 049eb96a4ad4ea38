//! The admin HTTP endpoint:
//! - `GET /health`: 200 while the process serves; `/health?ready=1`: 200
//!   only once the node is a cluster member with a live liveness record,
//!   else 503;
//! - `GET /metrics`: Prometheus text format;
//! - `GET /_status/nodes`, `GET /_status/ranges`: JSON.
//! - `GET /_status/latency`: JSON, this node's measured round trip to
//!   every other node and (median) to every region.
//! - `GET /_status/conformance`: JSON, the ranges not conforming to their
//!   zone configs and why (an empty list when all conform).
//!
//! It sees the node through the [`AdminNode`] trait, which answers `None`
//! once the node has stopped: keep-alive connections, which axum serves on
//! tasks of their own, must not keep a stopped node (and its RocksDB)
//! alive, so the node gives this module a weak handle.
//!
//! Not here: gathering the status (`status`) or the metrics (`metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use meridian_kvapi::NodeId;
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::error::ServerError;
use crate::latency::RegionLatencies;
use crate::status::{ClusterStatus, StatusError};

/// What the endpoint asks of a node; every answer is `None` once the node
/// has stopped.
pub trait AdminNode: Send + Sync + 'static {
    fn health(&self) -> Option<Health>;
    fn metrics_text(&self) -> Option<String>;
    fn cluster_status(&self) -> BoxFuture<'_, Option<Result<ClusterStatus, StatusError>>>;
    fn latencies(&self) -> Option<RegionLatencies>;
}

/// What `/health` reports.
#[derive(Debug, Clone, Copy)]
pub struct Health {
    pub node_id: NodeId,
    /// The node belongs to a cluster.
    pub member: bool,
    /// Its own liveness record is live.
    pub live: bool,
}

type NodeRef = Arc<dyn AdminNode>;

fn stopped() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "node stopped").into_response()
}

pub(crate) async fn serve(node: NodeRef, addr: SocketAddr) -> Result<JoinHandle<()>, ServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::Http {
            addr: addr.to_string(),
            reason: format!("{e} (is the port in use?)"),
        })?;
    let app = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/_status/nodes", get(nodes))
        .route("/_status/ranges", get(ranges))
        .route("/_status/conformance", get(conformance))
        .route("/_status/latency", get(latency))
        .with_state(node);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("admin HTTP stopped: {e}");
        }
    }))
}

#[derive(Deserialize)]
struct HealthQuery {
    ready: Option<String>,
}

async fn health(State(node): State<NodeRef>, Query(q): Query<HealthQuery>) -> Response {
    let Some(health) = node.health() else {
        return stopped();
    };
    let ready = q.ready.is_some_and(|v| v == "1" || v == "true");
    let body = serde_json::json!({
        "node_id": health.node_id,
        "member": health.member,
        "live": health.live,
    });
    let code = if !ready || (health.member && health.live) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

async fn nodes(State(node): State<NodeRef>) -> Response {
    status_json(&node, |status| Json(status.nodes).into_response()).await
}

async fn ranges(State(node): State<NodeRef>) -> Response {
    status_json(&node, |status| Json(status.ranges).into_response()).await
}

/// This node's measured round trips to every node and region.
async fn latency(State(node): State<NodeRef>) -> Response {
    match node.latencies() {
        Some(latencies) => Json(latencies).into_response(),
        None => stopped(),
    }
}

/// The ranges that do not conform to their zone configs, and why.
async fn conformance(State(node): State<NodeRef>) -> Response {
    status_json(&node, |status| {
        let ranges: Vec<_> = status
            .ranges
            .into_iter()
            .filter(|r| !r.nonconforming.is_empty())
            .collect();
        Json(ranges).into_response()
    })
    .await
}

/// One part of the cluster status, or 503 when it cannot be gathered.
async fn status_json(node: &NodeRef, part: impl FnOnce(ClusterStatus) -> Response) -> Response {
    match node.cluster_status().await {
        None => stopped(),
        Some(Ok(status)) => part(status),
        Some(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn metrics(State(node): State<NodeRef>) -> Response {
    let Some(text) = node.metrics_text() else {
        return stopped();
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
