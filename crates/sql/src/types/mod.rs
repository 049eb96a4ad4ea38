//! SQL types and values: [`SqlType`] (a column's or expression's type, with
//! its PostgreSQL OID) and [`Datum`] (one value). Text and binary wire
//! forms live in [`text`] and [`binary`], casts in [`cast`]. Key encoding
//! of values is the row encoder's business (`crate::encoding`), not this
//! module's.

pub mod binary;
pub mod cast;
mod datum;
pub mod text;

pub use datum::{Datum, Interval};

use serde::{Deserialize, Serialize};

use crate::error::{code, SqlError};

/// A SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Numeric,
    Text,
    /// `VARCHAR(n)`; `None` means no limit.
    Varchar(Option<u32>),
    /// `CHAR(n)`, blank-padded to `n`.
    Char(u32),
    Bytea,
    Timestamp,
    TimestampTz,
    Date,
    Interval,
    Uuid,
    Jsonb,
    /// PostgreSQL's `oid` and `regclass`-like catalog ids (pg_catalog).
    Oid,
    /// PostgreSQL's `name` (63-byte identifiers in pg_catalog).
    Name,
    /// PostgreSQL's one-byte `"char"` (pg_catalog's `relkind`, `typtype`:
    /// drivers decode it as a byte).
    PgChar,
    /// A literal or parameter whose type the context has not fixed yet.
    Unknown,
}

impl SqlType {
    /// The type's PostgreSQL OID, as sent in RowDescription and
    /// ParameterDescription.
    pub fn oid(self) -> u32 {
        match self {
            SqlType::Bool => 16,
            SqlType::Bytea => 17,
            SqlType::PgChar => 18,
            SqlType::Name => 19,
            SqlType::Int8 => 20,
            SqlType::Int2 => 21,
            SqlType::Int4 => 23,
            SqlType::Text => 25,
            SqlType::Oid => 26,
            SqlType::Float4 => 700,
            SqlType::Float8 => 701,
            SqlType::Unknown => 705,
            SqlType::Char(_) => 1042,
            SqlType::Varchar(_) => 1043,
            SqlType::Date => 1082,
            SqlType::Timestamp => 1114,
            SqlType::TimestampTz => 1184,
            SqlType::Interval => 1186,
            SqlType::Numeric => 1700,
            SqlType::Uuid => 2950,
            SqlType::Jsonb => 3802,
        }
    }

    /// The type a client names by `oid` (in Parse's parameter types).
    pub fn from_oid(oid: u32) -> Option<SqlType> {
        Some(match oid {
            16 => SqlType::Bool,
            17 => SqlType::Bytea,
            18 => SqlType::PgChar,
            19 => SqlType::Name,
            20 => SqlType::Int8,
            21 => SqlType::Int2,
            23 => SqlType::Int4,
            25 => SqlType::Text,
            26 => SqlType::Oid,
            700 => SqlType::Float4,
            701 => SqlType::Float8,
            705 | 0 => SqlType::Unknown,
            1042 => SqlType::Char(1),
            1043 => SqlType::Varchar(None),
            1082 => SqlType::Date,
            1114 => SqlType::Timestamp,
            1184 => SqlType::TimestampTz,
            1186 => SqlType::Interval,
            1700 => SqlType::Numeric,
            2950 => SqlType::Uuid,
            3802 | 114 => SqlType::Jsonb,
            _ => return None,
        })
    }

    /// The name PostgreSQL prints for the type (`format_type`).
    pub fn name(self) -> String {
        match self {
            SqlType::Bool => "boolean".into(),
            SqlType::Int2 => "smallint".into(),
            SqlType::Int4 => "integer".into(),
            SqlType::Int8 => "bigint".into(),
            SqlType::Float4 => "real".into(),
            SqlType::Float8 => "double precision".into(),
            SqlType::Numeric => "numeric".into(),
            SqlType::Text => "text".into(),
            SqlType::Varchar(None) => "character varying".into(),
            SqlType::Varchar(Some(n)) => format!("character varying({n})"),
            SqlType::Char(n) => format!("character({n})"),
            SqlType::Bytea => "bytea".into(),
            SqlType::Timestamp => "timestamp without time zone".into(),
            SqlType::TimestampTz => "timestamp with time zone".into(),
            SqlType::Date => "date".into(),
            SqlType::Interval => "interval".into(),
            SqlType::Uuid => "uuid".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Oid => "oid".into(),
            SqlType::Name => "name".into(),
            SqlType::PgChar => "\"char\"".into(),
            SqlType::Unknown => "unknown".into(),
        }
    }

    /// The width PostgreSQL reports in RowDescription (`typlen`).
    pub fn wire_size(self) -> i16 {
        match self {
            SqlType::Bool | SqlType::PgChar => 1,
            SqlType::Int2 => 2,
            SqlType::Int4 | SqlType::Float4 | SqlType::Date | SqlType::Oid => 4,
            SqlType::Int8 | SqlType::Float8 | SqlType::Timestamp | SqlType::TimestampTz => 8,
            SqlType::Interval | SqlType::Uuid => 16,
            SqlType::Name => 64,
            _ => -1,
        }
    }

    pub fn is_integer(self) -> bool {
        matches!(self, SqlType::Int2 | SqlType::Int4 | SqlType::Int8)
    }

    pub fn is_numeric(self) -> bool {
        self.is_integer()
            || matches!(
                self,
                SqlType::Float4 | SqlType::Float8 | SqlType::Numeric | SqlType::Oid
            )
    }

    pub fn is_string(self) -> bool {
        matches!(
            self,
            SqlType::Text
                | SqlType::Varchar(_)
                | SqlType::Char(_)
                | SqlType::Name
                | SqlType::PgChar
        )
    }

    /// Whether values of the type can be part of a primary or index key.
    pub fn is_key_encodable(self) -> bool {
        !matches!(
            self,
            SqlType::Numeric | SqlType::Jsonb | SqlType::Interval | SqlType::Unknown
        )
    }

    /// The type two operands of an arithmetic or comparison meet at.
    pub fn common(a: SqlType, b: SqlType) -> Option<SqlType> {
        use SqlType::*;
        if a == b {
            return Some(a);
        }
        Some(match (a, b) {
            (Unknown, t) | (t, Unknown) => t,
            (x, y) if x.is_integer() && y.is_integer() => Int8,
            (Oid, y) if y.is_integer() => Int8,
            (x, Oid) if x.is_integer() => Int8,
            (Float4 | Float8, y) if y.is_numeric() => Float8,
            (x, Float4 | Float8) if x.is_numeric() => Float8,
            (Numeric, y) if y.is_numeric() => Numeric,
            (x, Numeric) if x.is_numeric() => Numeric,
            (x, y) if x.is_string() && y.is_string() => Text,
            (Timestamp, TimestampTz) | (TimestampTz, Timestamp) => TimestampTz,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            (Date, TimestampTz) | (TimestampTz, Date) => TimestampTz,
            _ => return None,
        })
    }

    /// Parses a type name as written in SQL (`int`, `varchar(20)`, ...).
    pub fn from_sql(data_type: &sqlparser::ast::DataType) -> Result<SqlType, SqlError> {
        use sqlparser::ast::{CharacterLength, DataType as D, ExactNumberInfo, TimezoneInfo};
        let length = |l: &Option<CharacterLength>| match l {
            Some(CharacterLength::IntegerLength { length, .. }) => Some(*length as u32),
            _ => None,
        };
        Ok(match data_type {
            D::Bool | D::Boolean => SqlType::Bool,
            D::SmallInt(_) | D::Int2(_) => SqlType::Int2,
            D::Int(_) | D::Integer(_) | D::Int4(_) => SqlType::Int4,
            D::BigInt(_) | D::Int8(_) => SqlType::Int8,
            D::Real | D::Float4 => SqlType::Float4,
            D::Float(_) | D::Double(_) | D::DoublePrecision | D::Float8 => SqlType::Float8,
            D::Numeric(info) | D::Decimal(info) | D::Dec(info) => {
                let _ = matches!(info, ExactNumberInfo::None);
                SqlType::Numeric
            }
            D::Text | D::String(_) => SqlType::Text,
            D::Varchar(l) | D::CharacterVarying(l) | D::CharVarying(l) => {
                SqlType::Varchar(length(l))
            }
            D::Char(l) | D::Character(l) => SqlType::Char(length(l).unwrap_or(1)),
            D::Bytea => SqlType::Bytea,
            D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => SqlType::TimestampTz,
            D::Timestamp(_, _) => SqlType::Timestamp,
            D::Date => SqlType::Date,
            D::Interval { .. } => SqlType::Interval,
            D::Uuid => SqlType::Uuid,
            D::JSONB | D::JSON => SqlType::Jsonb,
            D::Custom(name, _) => {
                let name = name.to_string().to_lowercase();
                // psql qualifies its casts: `::pg_catalog.regclass`.
                let name = name
                    .strip_prefix("pg_catalog.")
                    .map(|n| n.trim_matches('"').to_string())
                    .unwrap_or(name);
                match name.as_str() {
                    "text" | "varchar" => SqlType::Text,
                    "bool" | "boolean" => SqlType::Bool,
                    "int2" | "smallint" => SqlType::Int2,
                    "int4" | "integer" | "int" => SqlType::Int4,
                    "int8" | "bigint" => SqlType::Int8,
                    "float4" | "real" => SqlType::Float4,
                    "float8" => SqlType::Float8,
                    "numeric" => SqlType::Numeric,
                    "bytea" => SqlType::Bytea,
                    "date" => SqlType::Date,
                    "timestamp" => SqlType::Timestamp,
                    "interval" => SqlType::Interval,
                    "uuid" => SqlType::Uuid,
                    "jsonb" | "json" => SqlType::Jsonb,
                    // PostgreSQL's one-byte `"char"` (pg_class.relkind).
                    "\"char\"" | "char" => SqlType::PgChar,
                    "bpchar" => SqlType::Char(1),
                    // As CockroachDB: a SERIAL column is an INT8 filled by
                    // unique_rowid(), whatever its declared width.
                    "serial" | "serial4" | "bigserial" | "serial8" | "smallserial" | "serial2" => {
                        SqlType::Int8
                    }
                    "timestamptz" => SqlType::TimestampTz,
                    "oid" | "regclass" | "regtype" | "regproc" | "regprocedure"
                    | "regnamespace" | "regrole" | "regoper" => SqlType::Oid,
                    "name" => SqlType::Name,
                    "string" => SqlType::Text,
                    _ => {
                        return Err(SqlError::new(
                            code::UNDEFINED_OBJECT,
                            format!("type \"{name}\" does not exist"),
                        ))
                    }
                }
            }
            other => return Err(SqlError::unsupported(format!("type {other}"))),
        })
    }
}

impl std::fmt::Display for SqlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod decode_fuzz;
