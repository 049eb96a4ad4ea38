//! The simple query protocol: a Query message's statements run one after
//! the other through `Session::execute_simple` (which stops at the first
//! error); each answers RowDescription, DataRows (text format) and
//! CommandComplete with the statement's own tag, or CommandComplete, or
//! EmptyQueryResponse, or ErrorResponse; then ReadyForQuery with the
//! session's transaction status. A cancel request interrupts the
//! statements (57014).
//!
//! This replaces pgwire's own `on_query`, which derives the transaction
//! status from the kinds of responses; the session knows it.
//!
//! Not here: the extended protocol (`extended`), encoding values
//! (`results`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{Sink, SinkExt};
use meridian_sql::error::code;
use meridian_sql::{ExecResult, SqlError};
use pgwire::api::portal::Format;
use pgwire::api::query::SimpleQueryHandler;
use pgwire::api::results::Response;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionHandle, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, ReadyForQuery};
use pgwire::messages::simplequery::Query;
use pgwire::messages::PgWireBackendMessage;

use super::connection::{wire_status, ConnState};
use super::errors::{error_info, protocol_violation};
use super::results;

pub struct SimpleQuery {
    conn: Arc<ConnState>,
}

impl SimpleQuery {
    pub fn new(conn: Arc<ConnState>) -> SimpleQuery {
        SimpleQuery { conn }
    }
}

/// The error a canceled statement reports.
pub fn canceled() -> SqlError {
    SqlError::new(
        code::QUERY_CANCELED,
        "canceling statement due to user request",
    )
}

#[async_trait]
impl SimpleQueryHandler for SimpleQuery {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        client.set_state(PgWireConnectionState::QueryInProgress);
        let mut session = self.conn.session().await?;
        let handle = client.session_extensions().get::<Arc<ConnectionHandle>>();
        let results = match handle {
            Some(handle) => {
                let cancel = handle.start_query().await;
                tokio::select! {
                    results = session.execute_simple(&query.query) => results,
                    Ok(()) = cancel => vec![Err(canceled())],
                }
            }
            None => session.execute_simple(&query.query).await,
        };
        let status = wire_status(session.transaction_status());
        drop(session);
        for result in results {
            for message in messages(result) {
                client.feed(message).await?;
            }
        }
        client.set_state(PgWireConnectionState::ReadyForQuery);
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        Ok(())
    }

    /// Never called: `on_query` above does the work.
    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Err(protocol_violation("unexpected simple query path"))
    }
}

/// The messages that answer one statement.
fn messages(result: Result<ExecResult, SqlError>) -> Vec<PgWireBackendMessage> {
    match result {
        Ok(ExecResult::Rows { columns, rows, tag }) => {
            let encoded = results::fields(&columns, &Format::UnifiedText).and_then(|fields| {
                let rows = rows
                    .iter()
                    .map(|row| results::data_row(row, &columns, &fields))
                    .collect::<PgWireResult<Vec<DataRow>>>()?;
                Ok((fields, rows))
            });
            match encoded {
                Ok((fields, rows)) => {
                    let description =
                        RowDescription::new(fields.iter().map(FieldDescription::from).collect());
                    let mut out = Vec::with_capacity(rows.len() + 2);
                    out.push(PgWireBackendMessage::RowDescription(description));
                    out.extend(rows.into_iter().map(PgWireBackendMessage::DataRow));
                    out.push(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                        tag,
                    )));
                    out
                }
                Err(e) => vec![PgWireBackendMessage::ErrorResponse(
                    pgwire::error::ErrorInfo::from(e).into(),
                )],
            }
        }
        Ok(ExecResult::Command { tag }) => {
            vec![PgWireBackendMessage::CommandComplete(CommandComplete::new(
                tag,
            ))]
        }
        Ok(ExecResult::Empty) => vec![PgWireBackendMessage::EmptyQueryResponse(
            EmptyQueryResponse::new(),
        )],
        Err(e) => vec![PgWireBackendMessage::ErrorResponse(error_info(&e).into())],
    }
}
