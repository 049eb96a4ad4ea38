//! Results on the wire: column descriptions (RowDescription fields with
//! each type's OID, width and modifier) and data rows, each value in the
//! format the client asked for (text or binary, per column), through the
//! SQL crate's own text and binary forms; and the completion tag.
//!
//! Not here: what a statement returns (`meridian_sql`), sending the
//! messages (`simple`, `extended`).

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use meridian_sql::types::{binary, text};
use meridian_sql::{ColumnInfo, Datum, SqlError, SqlType};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo, QueryResponse};
use pgwire::api::Type;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::errors::{protocol_violation, sql_error};

/// The PostgreSQL type of `ty`, as pgwire names types.
pub fn pg_type(ty: SqlType) -> Type {
    Type::from_oid(ty.oid()).unwrap_or(Type::UNKNOWN)
}

/// `atttypmod` as PostgreSQL reports it: the declared length plus 4 for
/// `varchar(n)` and `char(n)`, else -1 (none).
fn type_modifier(ty: SqlType) -> i32 {
    match ty {
        SqlType::Varchar(Some(n)) | SqlType::Char(n) => i32::try_from(n)
            .ok()
            .and_then(|n| n.checked_add(4))
            .unwrap_or(-1),
        _ => -1,
    }
}

/// The format of column (or parameter) `idx` of `count` under the
/// client's format codes, refusing a list of codes of the wrong length
/// (pgwire's own lookup would index out of bounds).
pub fn format_at(formats: &Format, idx: usize, count: usize) -> PgWireResult<FieldFormat> {
    match formats {
        Format::UnifiedText => Ok(FieldFormat::Text),
        Format::UnifiedBinary => Ok(FieldFormat::Binary),
        Format::Individual(codes) => match codes.get(idx) {
            Some(&code) if codes.len() == count => Ok(FieldFormat::from(code)),
            _ => Err(protocol_violation(format!(
                "{} format codes given for {count} values",
                codes.len()
            ))),
        },
    }
}

/// The RowDescription fields of `columns` in `formats`.
pub fn fields(columns: &[ColumnInfo], formats: &Format) -> PgWireResult<Vec<FieldInfo>> {
    columns
        .iter()
        .enumerate()
        .map(|(idx, column)| {
            let format = format_at(formats, idx, columns.len())?;
            Ok(
                FieldInfo::new(column.name.clone(), None, None, pg_type(column.ty), format)
                    .with_type_size(column.ty.wire_size())
                    .with_type_modifier(type_modifier(column.ty)),
            )
        })
        .collect()
}

/// One DataRow: each value of `row` as its column's type, in its field's
/// format.
pub fn data_row(
    row: &[Datum],
    columns: &[ColumnInfo],
    fields: &[FieldInfo],
) -> PgWireResult<DataRow> {
    if row.len() != columns.len() || row.len() != fields.len() {
        return Err(sql_error(SqlError::internal(format!(
            "a row of {} values for {} columns",
            row.len(),
            columns.len()
        ))));
    }
    let count =
        i16::try_from(row.len()).map_err(|_| sql_error(SqlError::internal("too many columns")))?;
    let mut buf = BytesMut::with_capacity(16 * row.len());
    for ((datum, column), field) in row.iter().zip(columns).zip(fields) {
        let bytes = match field.format() {
            FieldFormat::Text => text::format(datum).map(String::into_bytes),
            FieldFormat::Binary => binary::encode(datum, column.ty).map_err(sql_error)?,
        };
        match bytes {
            None => buf.put_i32(-1),
            Some(bytes) => {
                let len = i32::try_from(bytes.len())
                    .map_err(|_| sql_error(SqlError::internal("a value above 2 GiB")))?;
                buf.put_i32(len);
                buf.put_slice(&bytes);
            }
        }
    }
    Ok(DataRow::new(buf, count))
}

/// Rows as pgwire's QueryResponse (extended protocol: pgwire sends them,
/// a portal's `max_rows` at a time, and appends the row count to the
/// command of `tag`).
pub fn query_response(
    columns: &[ColumnInfo],
    rows: Vec<Vec<Datum>>,
    tag: &str,
    formats: &Format,
) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(fields(columns, formats)?);
    let encoded = rows
        .iter()
        .map(|row| data_row(row, columns, &fields))
        .collect::<PgWireResult<Vec<_>>>()?;
    let stream = futures_util::stream::iter(encoded.into_iter().map(Ok));
    let mut response = QueryResponse::new(fields, stream);
    response.set_command_tag(command_of(tag));
    Ok(response)
}

/// The command part of a completion tag whose last word is a row count
/// (`SELECT 3` -> `SELECT`, `INSERT 0 3` -> `INSERT 0`): pgwire appends
/// the count of the rows it sent.
pub fn command_of(tag: &str) -> &str {
    match tag.rsplit_once(' ') {
        Some((command, count))
            if !count.is_empty() && count.bytes().all(|b| b.is_ascii_digit()) =>
        {
            command
        }
        _ => tag,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_leaves_the_tag() {
        assert_eq!(command_of("SELECT 3"), "SELECT");
        assert_eq!(command_of("INSERT 0 12"), "INSERT 0");
        assert_eq!(command_of("SHOW"), "SHOW");
        assert_eq!(command_of("CREATE TABLE"), "CREATE TABLE");
    }

    #[test]
    fn wrong_format_code_counts_are_refused_not_indexed() {
        let formats = Format::Individual(vec![0, 1]);
        assert!(format_at(&formats, 0, 2).is_ok());
        assert!(format_at(&formats, 2, 3).is_err());
        assert!(format_at(&formats, 0, 3).is_err());
        assert_eq!(
            format_at(&Format::UnifiedBinary, 7, 8).unwrap(),
            FieldFormat::Binary
        );
    }

    #[test]
    fn rows_encode_in_text_and_binary() {
        let columns = vec![
            ColumnInfo {
                name: "a".into(),
                ty: SqlType::Int8,
            },
            ColumnInfo {
                name: "b".into(),
                ty: SqlType::Text,
            },
        ];
        let row = vec![Datum::Int(7), Datum::Null];
        let text_fields = fields(&columns, &Format::UnifiedText).unwrap();
        let encoded = data_row(&row, &columns, &text_fields).unwrap();
        assert_eq!(encoded.field_count, 2);
        assert_eq!(
            &encoded.data[..],
            &[0, 0, 0, 1, b'7', 0xff, 0xff, 0xff, 0xff]
        );
        let binary_fields = fields(&columns, &Format::UnifiedBinary).unwrap();
        let encoded = data_row(&row, &columns, &binary_fields).unwrap();
        assert_eq!(&encoded.data[..4], &[0, 0, 0, 8]);
        assert_eq!(&encoded.data[4..12], &7i64.to_be_bytes());
        assert!(data_row(&row[..1], &columns, &text_fields).is_err());
    }
}
