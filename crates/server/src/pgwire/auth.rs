//! Who may connect. For now: everyone (trust, no password), as any user
//! the startup message names. Password authentication (SCRAM-SHA-256
//! against the users table) replaces this file: it checks the client
//! first, then hands over to [`startup::open_session`] exactly as trust
//! does.
//!
//! Not here: what happens once a client is in (`startup`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::Sink;
use pgwire::api::auth::{
    protocol_negotiation, save_startup_parameters_to_metadata, StartupHandler,
};
use pgwire::api::ClientInfo;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::connection::ConnState;
use super::startup;

/// Trust authentication: the startup message is enough.
pub struct TrustAuth {
    conn: Arc<ConnState>,
}

impl TrustAuth {
    pub fn new(conn: Arc<ConnState>) -> TrustAuth {
        TrustAuth { conn }
    }
}

#[async_trait]
impl StartupHandler for TrustAuth {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Anything else during startup (a password nobody asked for) is
        // ignored, as pgwire's own trust handler does.
        if let PgWireFrontendMessage::Startup(startup) = message {
            protocol_negotiation(client, &startup).await?;
            save_startup_parameters_to_metadata(client, &startup);
            startup::open_session(client, &self.conn, &startup).await?;
        }
        Ok(())
    }
}
