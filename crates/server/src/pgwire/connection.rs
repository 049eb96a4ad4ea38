//! One client connection: its state (the SQL session, created once the
//! client is authenticated) and the set of handlers pgwire calls for it.
//! pgwire takes a fresh set of handlers per connection, so each handler
//! reaches its connection's session directly; what all connections of the
//! node share (the node, the cancel registry, the cancel key generator)
//! is [`Shared`].
//!
//! Not here: what the handlers do (`auth`, `startup`, `simple`,
//! `extended`), accepting connections (`listener`).

use std::sync::Arc;

use meridian_sql::{Session, TransactionStatus as SqlStatus};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{ConnectionManager, PgWireServerHandlers, RandomPidSecretKeyGenerator};
use pgwire::error::PgWireResult;
use pgwire::messages::response::TransactionStatus;
use tokio::sync::{MappedMutexGuard, MutexGuard};

use super::auth::TrustAuth;
use super::errors::protocol_violation;
use super::extended::ExtendedQuery;
use super::simple::SimpleQuery;
use super::SqlNode;

/// What every connection of a listener shares.
pub struct Shared {
    pub node: Arc<dyn SqlNode>,
    /// Running queries by (process id, secret key), for cancel requests.
    pub cancels: Arc<ConnectionManager>,
    /// Process ids (unique per listener) and random secret keys.
    pub keys: RandomPidSecretKeyGenerator,
}

/// One connection's state.
pub struct ConnState {
    pub shared: Arc<Shared>,
    /// Set by `startup` once the client is in; one message is processed at
    /// a time, the lock only makes the state shareable among handlers.
    pub session: tokio::sync::Mutex<Option<Session>>,
}

impl ConnState {
    /// The session, locked; a message that arrives before it exists is a
    /// protocol violation (pgwire routes none there, but a client is no
    /// reason to panic).
    pub async fn session(&self) -> PgWireResult<MappedMutexGuard<'_, Session>> {
        MutexGuard::try_map(self.session.lock().await, Option::as_mut)
            .map_err(|_| protocol_violation("no session: the startup did not complete"))
    }

    /// The status ReadyForQuery reports: the session's (Idle before it
    /// exists).
    pub async fn transaction_status(&self) -> TransactionStatus {
        match self.session.lock().await.as_ref() {
            Some(session) => wire_status(session.transaction_status()),
            None => TransactionStatus::Idle,
        }
    }
}

pub fn wire_status(status: SqlStatus) -> TransactionStatus {
    match status {
        SqlStatus::Idle => TransactionStatus::Idle,
        SqlStatus::InBlock => TransactionStatus::Transaction,
        SqlStatus::Failed => TransactionStatus::Error,
    }
}

/// The handlers of one connection.
pub struct Handlers {
    auth: Arc<TrustAuth>,
    simple: Arc<SimpleQuery>,
    extended: Arc<ExtendedQuery>,
    cancel: Arc<DefaultCancelHandler>,
}

impl Handlers {
    pub fn new(shared: Arc<Shared>) -> Handlers {
        let cancel = Arc::new(DefaultCancelHandler::new(shared.cancels.clone()));
        let conn = Arc::new(ConnState {
            shared,
            session: tokio::sync::Mutex::new(None),
        });
        Handlers {
            auth: Arc::new(TrustAuth::new(conn.clone())),
            simple: Arc::new(SimpleQuery::new(conn.clone())),
            extended: Arc::new(ExtendedQuery::new(conn)),
            cancel,
        }
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.simple.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.extended.clone()
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        self.auth.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }
}
