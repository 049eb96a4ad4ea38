//! The admin HTTP endpoint:
//! - `GET /health`: 200 while the process serves; `/health?ready=1`: 200
//!   only once the node is a cluster member with a live liveness record,
//!   else 503;
//! - `GET /metrics`: Prometheus text format;
//! - `GET /_status/nodes`, `GET /_status/ranges`: JSON.

use std::net::SocketAddr;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tokio::task::JoinHandle;

use crate::error::ServerError;
use crate::liveness::LivenessStatus;
use crate::node::{Node, NodeInner};
use crate::status::ClusterStatus;
use std::sync::{Arc, Weak};

/// Handlers hold the node weakly: keep-alive connections, which axum
/// serves on tasks of their own, must not keep a stopped node (and its
/// RocksDB) alive.
type NodeRef = Weak<NodeInner>;

fn upgrade(node: &NodeRef) -> Option<Node> {
    node.upgrade().map(|inner| Node { inner })
}

fn stopped() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "node stopped").into_response()
}

pub(crate) async fn serve(node: Node, addr: SocketAddr) -> Result<JoinHandle<()>, ServerError> {
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
        .with_state(Arc::downgrade(&node.inner));
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
    let Some(node) = upgrade(&node) else {
        return stopped();
    };
    let ready = q.ready.is_some_and(|v| v == "1" || v == "true");
    let member = node.member().is_some();
    let live = node
        .liveness()
        .status(node.node_id(), node.clock().physical_now())
        == LivenessStatus::Live;
    let body = serde_json::json!({
        "node_id": node.node_id(),
        "member": member,
        "live": live,
    });
    let code = if !ready || (member && live) {
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

/// One part of the cluster status, or 503 when it cannot be gathered.
async fn status_json(node: &NodeRef, part: impl FnOnce(ClusterStatus) -> Response) -> Response {
    let Some(node) = upgrade(node) else {
        return stopped();
    };
    match node.cluster_status().await {
        Ok(status) => part(status),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn metrics(State(node): State<NodeRef>) -> Response {
    let Some(node) = upgrade(&node) else {
        return stopped();
    };
    let text = crate::metrics_text(&node);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}
