//! SQL errors on the wire: a [`SqlError`] becomes the fields of an
//! ErrorResponse (severity, SQLSTATE, message, position), and the
//! listener's own refusals (protocol violations, a node not ready) are
//! built here too.
//!
//! Not here: choosing SQLSTATEs for SQL failures (`meridian_sql::error`),
//! sending the messages (`simple`, `extended`, `startup`).

use meridian_sql::error::code;
use meridian_sql::SqlError;
use pgwire::error::{ErrorInfo, PgWireError, SEVERITY_ERROR, SEVERITY_FATAL};

/// The ErrorResponse fields of `e`, at severity ERROR.
pub fn error_info(e: &SqlError) -> ErrorInfo {
    let mut info = ErrorInfo::new(
        SEVERITY_ERROR.to_owned(),
        e.code.to_owned(),
        e.message.clone(),
    );
    info.position = e.position.map(|p| p.to_string());
    info
}

/// `e` as an error pgwire sends (ErrorResponse; the connection stays).
pub fn sql_error(e: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// A malformed or inconsistent message from the client (08P01); the
/// connection stays.
pub fn protocol_violation(message: impl Into<String>) -> PgWireError {
    sql_error(SqlError::new(code::PROTOCOL_VIOLATION, message))
}

/// A refusal that ends the connection (severity FATAL).
pub fn fatal(code: &str, message: impl Into<String>) -> ErrorInfo {
    ErrorInfo::new(SEVERITY_FATAL.to_owned(), code.to_owned(), message.into())
}
