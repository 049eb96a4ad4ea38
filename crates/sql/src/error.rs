//! SQL errors: every failure a statement can meet, each with the
//! PostgreSQL SQLSTATE a client expects and, where known, the position in
//! the statement text. The pgwire listener turns these into ErrorResponse
//! messages; nothing here knows about the wire.

use meridian_kvclient::txn::TxnError;
use meridian_kvclient::ClientError;

/// PostgreSQL error codes (SQLSTATE) Meridian answers with.
pub mod code {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const INVALID_CATALOG_NAME: &str = "3D000";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_DATABASE: &str = "42P04";
    pub const DUPLICATE_COLUMN: &str = "42701";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INVALID_TABLE_DEFINITION: &str = "42P16";
    pub const INVALID_COLUMN_REFERENCE: &str = "42P10";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const STRING_DATA_RIGHT_TRUNCATION: &str = "22001";
    pub const INVALID_DATETIME_FORMAT: &str = "22007";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_REGULAR_EXPRESSION: &str = "2201B";
    pub const CARDINALITY_VIOLATION: &str = "21000";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const SERIALIZATION_FAILURE: &str = "40001";
    pub const ACTIVE_SQL_TRANSACTION: &str = "25001";
    pub const NO_ACTIVE_SQL_TRANSACTION: &str = "25P01";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const INVALID_SAVEPOINT: &str = "3B001";
    pub const QUERY_CANCELED: &str = "57014";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    pub const CANNOT_CONNECT_NOW: &str = "57P03";
    pub const INTERNAL_ERROR: &str = "XX000";
    /// The cluster could not serve the request in time (ranges without a
    /// quorum, nodes down).
    pub const SYSTEM_ERROR: &str = "58000";
    /// The outcome of a commit is unknown (CockroachDB's code for it).
    pub const STATEMENT_COMPLETION_UNKNOWN: &str = "40003";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const UNDEFINED_PARAMETER: &str = "42704";
    pub const INVALID_PARAMETER_REFERENCE: &str = "42P02";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
}

/// A failed statement: what a client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (SQLSTATE {code})")]
pub struct SqlError {
    /// The five-character SQLSTATE.
    pub code: &'static str,
    pub message: String,
    /// 1-based character position in the statement, where one is known.
    pub position: Option<u32>,
    /// Whether running the transaction again may succeed (40001).
    pub retryable: bool,
}

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> SqlError {
        SqlError {
            code,
            message: message.into(),
            position: None,
            retryable: code == code::SERIALIZATION_FAILURE,
        }
    }

    pub fn at(mut self, position: Option<u32>) -> SqlError {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }

    pub fn syntax(message: impl Into<String>) -> SqlError {
        SqlError::new(code::SYNTAX_ERROR, message)
    }

    pub fn unsupported(what: impl Into<String>) -> SqlError {
        SqlError::new(
            code::FEATURE_NOT_SUPPORTED,
            format!("{} is not supported", what.into()),
        )
    }

    pub fn internal(message: impl Into<String>) -> SqlError {
        SqlError::new(code::INTERNAL_ERROR, message)
    }

    pub fn undefined_table(name: &str) -> SqlError {
        SqlError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )
    }

    pub fn undefined_column(name: &str) -> SqlError {
        SqlError::new(
            code::UNDEFINED_COLUMN,
            format!("column \"{name}\" does not exist"),
        )
    }

    pub fn mismatch(message: impl Into<String>) -> SqlError {
        SqlError::new(code::DATATYPE_MISMATCH, message)
    }

    pub fn invalid_text(ty: &str, text: &str) -> SqlError {
        SqlError::new(
            code::INVALID_TEXT_REPRESENTATION,
            format!("invalid input syntax for type {ty}: \"{text}\""),
        )
    }
}

impl From<TxnError> for SqlError {
    fn from(e: TxnError) -> SqlError {
        match &e {
            TxnError::Restart { .. } | TxnError::Aborted(_) => SqlError::new(
                code::SERIALIZATION_FAILURE,
                format!("restart transaction: {e}"),
            ),
            TxnError::Ambiguous(_) => SqlError::new(
                code::STATEMENT_COMPLETION_UNKNOWN,
                format!("result is ambiguous: {e}"),
            ),
            TxnError::ReadOnly => SqlError::new(
                code::READ_ONLY_SQL_TRANSACTION,
                "cannot execute a write in a read-only transaction (AS OF SYSTEM TIME)",
            ),
            TxnError::Client(inner) => SqlError::from_client(inner),
        }
    }
}

impl SqlError {
    fn from_client(e: &ClientError) -> SqlError {
        use meridian_kvapi::KvError;
        match e {
            ClientError::Kv(KvError::ConditionFailed { .. }) => SqlError::new(
                code::UNIQUE_VIOLATION,
                "duplicate key value violates unique constraint",
            ),
            ClientError::Kv(
                KvError::WriteTooOld { .. }
                | KvError::ReadWithinUncertainty { .. }
                | KvError::TransactionAborted { .. }
                | KvError::TransactionPushed { .. },
            ) => SqlError::new(
                code::SERIALIZATION_FAILURE,
                format!("restart transaction: {e}"),
            ),
            ClientError::Timeout { .. } => SqlError::new(
                code::SYSTEM_ERROR,
                format!("the cluster did not answer: {e}"),
            ),
            _ => SqlError::internal(format!("KV error: {e}")),
        }
    }
}
