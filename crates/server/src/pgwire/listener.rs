//! The TCP listener: binds the SQL address, accepts connections and serves
//! each on a task of its own with a fresh set of handlers. Connection
//! tasks live in a `JoinSet` owned by the accept task, so aborting that
//! task (the node's shutdown does) ends every connection too; the loop
//! also ends at the first connection after the node is gone. A client's
//! bytes never end the listener: a malformed message ends (at most) its
//! own connection, and a connection task that panicked is logged.
//!
//! Not here: the protocol (`connection` and the handlers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pgwire::api::{ConnectionManager, RandomPidSecretKeyGenerator};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

use super::connection::{Handlers, Shared};
use super::{EngineState, SqlNode};
use crate::error::ServerError;

/// Binds the SQL listener's address (port 0: any free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ServerError::SqlListen {
            addr: addr.to_string(),
            reason: format!("{e} (is the port in use?)"),
        })
}

/// Serves the PostgreSQL protocol on `listener` until the returned task is
/// aborted or `node` stops.
pub fn serve(listener: TcpListener, node: Arc<dyn SqlNode>) -> JoinHandle<()> {
    let shared = Arc::new(Shared {
        node,
        cancels: Arc::new(ConnectionManager::new()),
        keys: RandomPidSecretKeyGenerator::default(),
    });
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if matches!(shared.node.sql_engine(), EngineState::Stopped) {
                            break;
                        }
                        // As PostgreSQL does: the extended protocol answers
                        // each message with a small write, which Nagle's
                        // algorithm would hold back for the client's ACK.
                        if let Err(e) = stream.set_nodelay(true) {
                            debug!(%peer, "TCP_NODELAY: {e}");
                        }
                        let handlers = Handlers::new(shared.clone());
                        connections.spawn(async move {
                            if let Err(e) = pgwire::tokio::process_socket(stream, None, handlers).await {
                                debug!(%peer, "SQL connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => {
                        // Out of file descriptors, or a connection reset
                        // before it was accepted: try again shortly.
                        warn!("accepting a SQL connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(done) = connections.join_next(), if !connections.is_empty() => {
                    if let Err(e) = done {
                        if e.is_panic() {
                            warn!("a SQL connection task panicked: {e}");
                        }
                    }
                }
            }
        }
    })
}
