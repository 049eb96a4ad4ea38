//! The extended query protocol. Parse prepares the statement in the
//! session (`Session::prepare`, with the parameter types the client named,
//! `Unknown` where it named none, so the session infers them); Describe
//! answers the statement's parameter types and result columns, or a
//! portal's columns in the formats its Bind asked for; Execute decodes the
//! parameters (text or binary, per the Bind's format codes, as the
//! statement's parameter types) and runs the statement; Sync answers
//! ReadyForQuery with the session's transaction status. pgwire keeps the
//! statements and portals of the connection, sends a portal's rows
//! `max_rows` at a time (PortalSuspended), and after an error skips
//! messages until Sync. Cancel requests interrupt Execute (57014).
//!
//! Not here: the simple protocol (`simple`), encoding results
//! (`results`).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::{Sink, SinkExt};
use meridian_sql::types::{binary, text};
use meridian_sql::{Datum, ExecResult, PreparedStatement, SqlError, SqlType};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::ExtendedQueryHandler;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type, DEFAULT_NAME};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::extendedquery::Sync as PgSync;
use pgwire::messages::response::ReadyForQuery;
use pgwire::messages::PgWireBackendMessage;

use super::connection::ConnState;
use super::errors::{protocol_violation, sql_error};
use super::results::{self, pg_type};

/// SQLSTATE 22021: parameter text that is not UTF-8.
const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";

/// Prepares statements in the connection's session.
pub struct Parser {
    conn: Arc<ConnState>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PreparedStatement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<PreparedStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let hints = types
            .iter()
            .map(|ty| match ty {
                None => Ok(SqlType::Unknown),
                Some(ty) => SqlType::from_oid(ty.oid()).ok_or_else(|| {
                    sql_error(SqlError::unsupported(format!(
                        "parameter type {}",
                        ty.name()
                    )))
                }),
            })
            .collect::<PgWireResult<Vec<_>>>()?;
        let mut session = self.conn.session().await?;
        session
            .prepare(sql, &hints)
            .await
            .map(Some)
            .map_err(sql_error)
    }

    fn get_parameter_types(&self, stmt: &PreparedStatement) -> PgWireResult<Vec<Type>> {
        Ok(stmt.param_types.iter().map(|&ty| pg_type(ty)).collect())
    }

    fn get_result_schema(
        &self,
        stmt: &PreparedStatement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        results::fields(&stmt.columns, column_format.unwrap_or(&Format::UnifiedText))
    }
}

pub struct ExtendedQuery {
    conn: Arc<ConnState>,
    parser: Arc<Parser>,
}

impl ExtendedQuery {
    pub fn new(conn: Arc<ConnState>) -> ExtendedQuery {
        let parser = Arc::new(Parser { conn: conn.clone() });
        ExtendedQuery { conn, parser }
    }
}

#[async_trait]
impl ExtendedQueryHandler for ExtendedQuery {
    type Statement = PreparedStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<PreparedStatement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &target.statement;
        Ok(DescribeStatementResponse::new(
            self.parser.get_parameter_types(prepared)?,
            results::fields(&prepared.columns, &Format::UnifiedText)?,
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<PreparedStatement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        Ok(DescribePortalResponse::new(results::fields(
            &portal.statement.statement.columns,
            &portal.result_column_format,
        )?))
    }

    async fn do_query<C>(
        &self,
        _client: &mut C,
        portal: &Portal<PreparedStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let params = decode_params(portal)?;
        let result = {
            let mut session = self.conn.session().await?;
            session.execute(prepared, &params).await
        };
        match result.map_err(sql_error)? {
            ExecResult::Rows { columns, rows, tag } => Ok(Response::Query(
                results::query_response(&columns, rows, &tag, &portal.result_column_format)?,
            )),
            ExecResult::Command { tag } => Ok(Response::Execution(Tag::new(&tag))),
            ExecResult::Empty => Ok(Response::EmptyQuery),
        }
    }

    /// ReadyForQuery with the session's transaction status (pgwire's own
    /// guesses it from the kinds of responses).
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = PreparedStatement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        let status = self.conn.transaction_status().await;
        client.set_transaction_status(status);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }
}

/// The portal's parameters as values of the statement's parameter types.
fn decode_params(portal: &Portal<PreparedStatement>) -> PgWireResult<Vec<Datum>> {
    let types = &portal.statement.statement.param_types;
    if portal.parameters.len() != types.len() {
        let name = match portal.statement.id.as_str() {
            DEFAULT_NAME => "",
            name => name,
        };
        return Err(protocol_violation(format!(
            "bind message supplies {} parameters, but prepared statement \"{name}\" requires {}",
            portal.parameters.len(),
            types.len()
        )));
    }
    portal
        .parameters
        .iter()
        .zip(types)
        .enumerate()
        .map(|(idx, (value, &ty))| {
            let Some(bytes) = value else {
                return Ok(Datum::Null);
            };
            match results::format_at(&portal.parameter_format, idx, types.len())? {
                FieldFormat::Binary => binary::decode(bytes, ty).map_err(sql_error),
                FieldFormat::Text => {
                    let text_value = std::str::from_utf8(bytes).map_err(|_| {
                        sql_error(SqlError::new(
                            CHARACTER_NOT_IN_REPERTOIRE,
                            "invalid byte sequence for encoding \"UTF8\"",
                        ))
                    })?;
                    text::parse(text_value, ty).map_err(sql_error)
                }
            }
        })
        .collect()
}
