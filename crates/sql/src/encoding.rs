//! Rows and index entries as KV pairs.
//!
//! - Primary index (id 1): key = `table_index_prefix(table, 1)` ++ the
//!   primary key columns in the order-preserving key encoding; value = the
//!   other non-NULL columns as `(column id, value)` pairs (postcard), so
//!   added and dropped columns need no rewrite.
//! - Secondary index: key = `table_index_prefix(table, index)` ++ the
//!   index columns, ++ the primary key columns unless the index is unique
//!   and none of its columns is NULL; value = the primary key columns
//!   (encoded), which is how a lookup finds the row.

use meridian_keys::encoding::{decode_value, encode_value, Direction, Value};
use meridian_keys::space::{prefix_end, table_index_prefix};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::{IndexDescriptor, TableDescriptor};
use crate::error::SqlError;
use crate::types::{Datum, Interval, SqlType};

/// A value as stored in a row's KV value. Separate from [`Datum`] so the
/// stored form stays fixed whatever the in-memory one becomes.
#[derive(Debug, Serialize, Deserialize)]
enum Stored {
    Bool(bool),
    Int(i64),
    Float(f64),
    Decimal(String),
    Text(String),
    Bytes(Vec<u8>),
    Timestamp(i64),
    TimestampTz(i64),
    Date(i32),
    Interval(i32, i32, i64),
    Uuid([u8; 16]),
    Json(String),
}

impl Stored {
    fn from_datum(d: &Datum) -> Option<Stored> {
        Some(match d {
            Datum::Null => return None,
            Datum::Bool(b) => Stored::Bool(*b),
            Datum::Int(i) => Stored::Int(*i),
            Datum::Float(f) => Stored::Float(*f),
            Datum::Decimal(d) => Stored::Decimal(d.to_string()),
            Datum::Text(s) => Stored::Text(s.clone()),
            Datum::Bytes(b) => Stored::Bytes(b.clone()),
            Datum::Timestamp(t) => Stored::Timestamp(*t),
            Datum::TimestampTz(t) => Stored::TimestampTz(*t),
            Datum::Date(d) => Stored::Date(*d),
            Datum::Interval(i) => Stored::Interval(i.months, i.days, i.micros),
            Datum::Uuid(u) => Stored::Uuid(*u.as_bytes()),
            Datum::Json(j) => Stored::Json(j.to_string()),
        })
    }

    fn into_datum(self) -> Result<Datum, SqlError> {
        Ok(match self {
            Stored::Bool(b) => Datum::Bool(b),
            Stored::Int(i) => Datum::Int(i),
            Stored::Float(f) => Datum::Float(f),
            Stored::Decimal(s) => Datum::Decimal(s.parse::<Decimal>().map_err(|_| corrupt())?),
            Stored::Text(s) => Datum::Text(s),
            Stored::Bytes(b) => Datum::Bytes(b),
            Stored::Timestamp(t) => Datum::Timestamp(t),
            Stored::TimestampTz(t) => Datum::TimestampTz(t),
            Stored::Date(d) => Datum::Date(d),
            Stored::Interval(months, days, micros) => Datum::Interval(Interval {
                months,
                days,
                micros,
            }),
            Stored::Uuid(u) => Datum::Uuid(uuid::Uuid::from_bytes(u)),
            Stored::Json(s) => Datum::Json(serde_json::from_str(&s).map_err(|_| corrupt())?),
        })
    }
}

fn corrupt() -> SqlError {
    SqlError::internal("a stored row does not decode")
}

/// Appends the key encoding of `datum` (a value of column type `ty`).
pub fn encode_key_datum(buf: &mut Vec<u8>, datum: &Datum, dir: Direction) -> Result<(), SqlError> {
    let value = match datum {
        Datum::Null => Value::Null,
        Datum::Bool(b) => Value::Bool(*b),
        Datum::Int(i) => Value::Int(*i),
        Datum::Float(f) => Value::Float(*f),
        Datum::Text(s) => Value::String(s.clone()),
        Datum::Bytes(b) => Value::Bytes(b.clone()),
        Datum::Timestamp(t) | Datum::TimestampTz(t) => Value::Int(*t),
        Datum::Date(d) => Value::Int(*d as i64),
        Datum::Uuid(u) => Value::Bytes(u.as_bytes().to_vec()),
        other => {
            return Err(SqlError::unsupported(format!(
                "a value of type {} in a key",
                other.natural_type()
            )))
        }
    };
    encode_value(buf, &value, dir);
    Ok(())
}

/// Decodes one key value of column type `ty` from the front of `input`;
/// returns it and the bytes it took.
pub fn decode_key_datum(input: &[u8], ty: SqlType) -> Result<(Datum, usize), SqlError> {
    let (value, _, used) = decode_value(input).map_err(|_| corrupt())?;
    let datum = match (value, ty) {
        (Value::Null, _) => Datum::Null,
        (Value::Bool(b), _) => Datum::Bool(b),
        (Value::Int(t), SqlType::Timestamp) => Datum::Timestamp(t),
        (Value::Int(t), SqlType::TimestampTz) => Datum::TimestampTz(t),
        (Value::Int(d), SqlType::Date) => Datum::Date(d as i32),
        (Value::Int(i), _) => Datum::Int(i),
        (Value::Float(f), _) => Datum::Float(f),
        (Value::String(s), _) => Datum::Text(s),
        (Value::Bytes(b), SqlType::Uuid) => {
            Datum::Uuid(uuid::Uuid::from_slice(&b).map_err(|_| corrupt())?)
        }
        (Value::Bytes(b), _) => Datum::Bytes(b),
    };
    Ok((datum, used))
}

/// The key columns of `index` of `row`, encoded.
fn encode_columns(
    table: &TableDescriptor,
    index: &IndexDescriptor,
    row: &[Datum],
    buf: &mut Vec<u8>,
) -> Result<(), SqlError> {
    for (id, dir) in &index.columns {
        let position = table.position_of(*id).expect("index column exists");
        encode_key_datum(buf, &row[position], (*dir).into())?;
    }
    Ok(())
}

/// The encoded primary key columns of `row` (without the index prefix).
pub fn primary_key_suffix(table: &TableDescriptor, row: &[Datum]) -> Result<Vec<u8>, SqlError> {
    let mut buf = Vec::new();
    encode_columns(table, &table.primary_index, row, &mut buf)?;
    Ok(buf)
}

/// The KV key of `row` in the primary index.
pub fn primary_key(table: &TableDescriptor, row: &[Datum]) -> Result<Vec<u8>, SqlError> {
    let mut key = primary_prefix(table);
    key.extend_from_slice(&primary_key_suffix(table, row)?);
    Ok(key)
}

pub fn primary_prefix(table: &TableDescriptor) -> Vec<u8> {
    table_index_prefix(table.id, table.primary_index.id as u64)
}

/// `[start, end)` of every key of one index.
pub fn index_span(table: &TableDescriptor, index_id: u32) -> (Vec<u8>, Vec<u8>) {
    let prefix = table_index_prefix(table.id, index_id as u64);
    let end = prefix_end(&prefix).expect("table prefixes end");
    (prefix, end)
}

/// The KV value of `row` in the primary index.
pub fn encode_row_value(table: &TableDescriptor, row: &[Datum]) -> Result<Vec<u8>, SqlError> {
    let key_columns: Vec<u32> = table
        .primary_index
        .columns
        .iter()
        .map(|(id, _)| *id)
        .collect();
    let stored: Vec<(u32, Stored)> = table
        .columns
        .iter()
        .zip(row)
        .filter(|(c, _)| !key_columns.contains(&c.id))
        .filter_map(|(c, d)| Stored::from_datum(d).map(|s| (c.id, s)))
        .collect();
    postcard::to_allocvec(&stored).map_err(|e| SqlError::internal(e.to_string()))
}

/// A row of `table` from its primary index key and value: every column,
/// in the table's column order (NULL where the value has none).
pub fn decode_row(
    table: &TableDescriptor,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<Datum>, SqlError> {
    let mut row = vec![Datum::Null; table.columns.len()];
    let prefix_len = primary_prefix(table).len();
    let mut rest = key.get(prefix_len..).ok_or_else(corrupt)?;
    for (id, _) in &table.primary_index.columns {
        let position = table.position_of(*id).expect("key column exists");
        let (datum, used) = decode_key_datum(rest, table.columns[position].ty)?;
        row[position] = datum;
        rest = &rest[used..];
    }
    let stored: Vec<(u32, Stored)> = postcard::from_bytes(value).map_err(|_| corrupt())?;
    for (id, value) in stored {
        if let Some(position) = table.position_of(id) {
            row[position] = value.into_datum()?;
        }
    }
    Ok(row)
}

/// The entry of `row` in secondary index `index`: its key and value.
pub fn index_entry(
    table: &TableDescriptor,
    index: &IndexDescriptor,
    row: &[Datum],
) -> Result<(Vec<u8>, Vec<u8>), SqlError> {
    let mut key = table_index_prefix(table.id, index.id as u64);
    encode_columns(table, index, row, &mut key)?;
    let pk = primary_key_suffix(table, row)?;
    let has_null = table
        .index_positions(index)
        .iter()
        .any(|p| row[*p].is_null());
    if !index.unique || has_null {
        key.extend_from_slice(&pk);
    }
    Ok((key, pk))
}

/// Whether the entry of a unique index for `row` must be unique (no NULL
/// among its columns: NULLs never collide).
pub fn enforces_uniqueness(
    table: &TableDescriptor,
    index: &IndexDescriptor,
    row: &[Datum],
) -> bool {
    index.unique
        && table
            .index_positions(index)
            .iter()
            .all(|p| !row[*p].is_null())
}

/// The primary key of the row a secondary index entry points at.
pub fn primary_key_from_entry(table: &TableDescriptor, entry_value: &[u8]) -> Vec<u8> {
    let mut key = primary_prefix(table);
    key.extend_from_slice(entry_value);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{descriptor_for_tests, IndexDescriptor, IndexDirection};
    use proptest::prelude::*;

    fn table() -> TableDescriptor {
        descriptor_for_tests()
    }

    proptest! {
        #[test]
        fn rows_round_trip_and_keys_keep_the_order_of_their_values(
            a in any::<i64>(), b in any::<i64>(), name in proptest::option::of(".*"), score in proptest::option::of(any::<f64>()),
        ) {
            let t = table();
            let row = |id: i64| vec![Datum::Int(id), name.clone().map(Datum::Text).unwrap_or(Datum::Null), score.map(Datum::Float).unwrap_or(Datum::Null)];
            let (ra, rb) = (row(a), row(b));
            let (ka, kb) = (primary_key(&t, &ra).unwrap(), primary_key(&t, &rb).unwrap());
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            let back = decode_row(&t, &ka, &encode_row_value(&t, &ra).unwrap()).unwrap();
            prop_assert_eq!(back.len(), 3);
            prop_assert_eq!(&back[0], &ra[0]);
            prop_assert_eq!(&back[1], &ra[1]);
            match (&back[2], &ra[2]) {
                (Datum::Float(x), Datum::Float(y)) => prop_assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())),
                (x, y) => prop_assert_eq!(x, y),
            }
        }
    }

    #[test]
    fn a_unique_index_with_a_null_keeps_the_primary_key_in_its_key() {
        let mut t = table();
        t.indexes.push(IndexDescriptor {
            id: 2,
            name: "by_name".into(),
            unique: true,
            columns: vec![(2, IndexDirection::Asc)],
        });
        let index = t.indexes[0].clone();
        let with_name = vec![Datum::Int(1), Datum::Text("x".into()), Datum::Null];
        let without = vec![Datum::Int(1), Datum::Null, Datum::Null];
        let (k1, v1) = index_entry(&t, &index, &with_name).unwrap();
        let (k2, _) = index_entry(&t, &index, &without).unwrap();
        assert!(enforces_uniqueness(&t, &index, &with_name));
        assert!(!enforces_uniqueness(&t, &index, &without));
        let pk = primary_key_suffix(&t, &without).unwrap();
        assert!(k2.ends_with(&pk), "a NULL entry carries the primary key");
        let mut unique_key = table_index_prefix(t.id, 2);
        encode_key_datum(
            &mut unique_key,
            &Datum::Text("x".into()),
            Direction::Ascending,
        )
        .unwrap();
        assert_eq!(k1, unique_key, "a unique entry is the indexed value alone");
        assert_eq!(
            primary_key_from_entry(&t, &v1),
            primary_key(&t, &with_name).unwrap()
        );
    }
}
