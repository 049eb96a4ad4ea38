//! Session variables: their defaults, the ones reported to the client at
//! startup, SET and SHOW.

use sqlparser::ast;

use super::{ColumnInfo, ExecResult, Session};
use crate::error::{code, SqlError};
use crate::types::{Datum, SqlType};

/// Session variables every session starts with, and what clients are told
/// at startup (ParameterStatus).
pub(super) const DEFAULT_VARS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_transaction_isolation", "serializable"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("search_path", "public"),
    ("server_encoding", "UTF8"),
    ("server_version", "15.0.0"),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "serializable"),
];

/// Variables reported to the client at startup, by their canonical names.
pub(super) const REPORTED_VARS: &[(&str, &str)] = &[
    ("application_name", "application_name"),
    ("client_encoding", "client_encoding"),
    ("datestyle", "DateStyle"),
    ("integer_datetimes", "integer_datetimes"),
    ("intervalstyle", "IntervalStyle"),
    ("is_superuser", "is_superuser"),
    ("server_encoding", "server_encoding"),
    ("server_version", "server_version"),
    ("standard_conforming_strings", "standard_conforming_strings"),
    ("timezone", "TimeZone"),
];

impl Session {
    pub(super) fn set_variable(&mut self, set: &ast::Set) -> Result<ExecResult, SqlError> {
        let (name, value) = match set {
            ast::Set::SingleAssignment {
                variable, values, ..
            } => {
                let value = values
                    .iter()
                    .map(variable_text)
                    .collect::<Vec<_>>()
                    .join(", ");
                (variable.to_string().to_ascii_lowercase(), value)
            }
            ast::Set::SetTimeZone { value, .. } => ("timezone".to_string(), variable_text(value)),
            ast::Set::SetNames { charset_name, .. } => {
                ("client_encoding".to_string(), charset_name.value.clone())
            }
            ast::Set::SetTransaction { .. } => return Ok(ExecResult::command("SET")),
            other => return Err(SqlError::unsupported(format!("{other}"))),
        };
        if !self.vars.contains_key(&name) && !name.contains('.') {
            return Err(SqlError::new(
                code::UNDEFINED_PARAMETER,
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        }
        let value = match name.as_str() {
            "timezone"
                if !matches!(
                    value.to_ascii_uppercase().as_str(),
                    "UTC" | "GMT" | "ZULU" | "Z" | "DEFAULT" | "0" | "+00:00" | "ETC/UTC"
                ) =>
            {
                return Err(SqlError::new(
                    code::INVALID_PARAMETER_VALUE,
                    format!("time zone \"{value}\" is not supported: Meridian sessions run in UTC"),
                ))
            }
            "timezone" => "UTC".to_string(),
            "search_path" if value.is_empty() => "public".to_string(),
            "transaction_isolation" | "default_transaction_isolation" => {
                if !value.to_ascii_lowercase().contains("serializable") {
                    // Like CockroachDB: weaker levels are upgraded to
                    // serializable.
                }
                "serializable".to_string()
            }
            _ => value,
        };
        self.vars.insert(name, value);
        Ok(ExecResult::command("SET"))
    }

    pub(super) fn show_variable(&self, variable: &[ast::Ident]) -> Result<ExecResult, SqlError> {
        let name = variable
            .iter()
            .map(|i| i.value.to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(" ");
        let key = match name.as_str() {
            "transaction isolation level" => "transaction_isolation".to_string(),
            "time zone" => "timezone".to_string(),
            other => other.to_string(),
        };
        if key == "all" {
            let rows = self
                .vars
                .iter()
                .map(|(k, v)| vec![Datum::Text(k.clone()), Datum::Text(v.clone())])
                .collect();
            let columns = vec![
                ColumnInfo::new("name", SqlType::Text),
                ColumnInfo::new("setting", SqlType::Text),
            ];
            return Ok(ExecResult::rows(columns, rows));
        }
        let value = self.vars.get(&key).ok_or_else(|| {
            SqlError::new(
                code::UNDEFINED_PARAMETER,
                format!("unrecognized configuration parameter \"{name}\""),
            )
        })?;
        let column = REPORTED_VARS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, canonical)| canonical.to_string())
            .unwrap_or(key);
        Ok(ExecResult::rows(
            vec![ColumnInfo::new(column, SqlType::Text)],
            vec![vec![Datum::Text(value.clone())]],
        ))
    }
}

/// A SET value as text: `'UTC'` is UTC, `DEFAULT` is default.
fn variable_text(expr: &ast::Expr) -> String {
    match expr {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) | ast::Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        ast::Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}
