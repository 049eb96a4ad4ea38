//! What follows authentication: the connection's SQL session (the startup
//! message's `user` and `database`, `defaultdb` when it names none, and
//! every other startup parameter as a session variable), AuthenticationOk,
//! the session's ParameterStatus, the cancel key (BackendKeyData, and the
//! connection registered for cancel requests), the first ReadyForQuery.
//! A node that is not a cluster member yet refuses the connection with
//! FATAL 57P03, as PostgreSQL does while it starts.
//!
//! Not here: checking who the client is (`auth`).

use std::fmt::Debug;
use std::sync::Arc;

use futures_util::{Sink, SinkExt};
use meridian_sql::error::code;
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, PgWireConnectionState, PidSecretKeyGenerator,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, Startup};
use pgwire::messages::PgWireBackendMessage;

use super::connection::ConnState;
use super::errors::fatal;
use super::EngineState;

/// The database of a startup message that names none.
pub const DEFAULT_DATABASE: &str = "defaultdb";

/// SQLSTATE 28000: a startup message without a user.
const INVALID_AUTHORIZATION: &str = "28000";

/// Opens the session of an authenticated client and tells it so; or
/// refuses it (FATAL) and closes the connection.
pub async fn open_session<C>(
    client: &mut C,
    conn: &ConnState,
    startup: &Startup,
) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let engine = match conn.shared.node.sql_engine() {
        EngineState::Ready(engine) => engine,
        EngineState::NotMember => {
            let message = "the node is not ready: it is not a member of an initialized cluster yet";
            return refuse(client, fatal(code::CANNOT_CONNECT_NOW, message)).await;
        }
        EngineState::Stopped => {
            let message = "the node is shutting down";
            return refuse(client, fatal(code::CANNOT_CONNECT_NOW, message)).await;
        }
    };
    let Some(user) = startup.parameters.get("user").filter(|u| !u.is_empty()) else {
        let message = "no user name specified in the startup packet";
        return refuse(client, fatal(INVALID_AUTHORIZATION, message)).await;
    };
    let database = startup
        .parameters
        .get("database")
        .map(String::as_str)
        .filter(|d| !d.is_empty())
        .unwrap_or(DEFAULT_DATABASE);
    let mut session = engine.session(user, database);
    for (name, value) in &startup.parameters {
        if name != "user" && name != "database" {
            session.set_startup_var(name, value);
        }
    }

    let (pid, key) = conn.shared.keys.generate(&*client);
    client.set_pid_and_secret_key(pid, key.clone());
    let (handle, guard) = conn.shared.cancels.register(pid, key.clone());
    client
        .session_extensions()
        .insert::<Arc<ConnectionHandle>>(handle);
    client.session_extensions().insert::<ConnectionGuard>(guard);

    client
        .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
        .await?;
    for (name, value) in session.parameter_status() {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name, value,
            )))
            .await?;
    }
    client
        .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
            pid, key,
        )))
        .await?;
    *conn.session.lock().await = Some(session);
    client
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            TransactionStatus::Idle,
        )))
        .await?;
    client.set_state(PgWireConnectionState::ReadyForQuery);
    Ok(())
}

/// Sends `error` and closes our side: the client reads the error, then the
/// end of the stream, and the connection's loop ends when it hangs up.
async fn refuse<C>(client: &mut C, error: ErrorInfo) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    client
        .send(PgWireBackendMessage::ErrorResponse(error.into()))
        .await?;
    client.close().await?;
    Ok(())
}
