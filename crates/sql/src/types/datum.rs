//! One SQL value, its comparison (SQL's: NULL compares as unknown) and its
//! total order for sorting (NULLs last, as PostgreSQL sorts ascending).

use std::cmp::Ordering;

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::SqlType;

/// An interval as PostgreSQL keeps it: months, days and microseconds are
/// separate because a month has no fixed number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Interval {
    /// An approximate length in microseconds (30-day months), for ordering.
    pub fn approx_micros(&self) -> i128 {
        const DAY: i128 = 86_400_000_000;
        self.months as i128 * 30 * DAY + self.days as i128 * DAY + self.micros as i128
    }
}

/// One value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Datum {
    Null,
    Bool(bool),
    /// Every integer type (range-checked against the column's type on
    /// write).
    Int(i64),
    /// `REAL` and `DOUBLE PRECISION`.
    Float(f64),
    Decimal(Decimal),
    /// `TEXT`, `VARCHAR`, `CHAR`, `NAME`.
    Text(String),
    Bytes(Vec<u8>),
    /// Microseconds since 1970-01-01 00:00:00, no time zone.
    Timestamp(i64),
    /// Microseconds since 1970-01-01 00:00:00 UTC.
    TimestampTz(i64),
    /// Days since 1970-01-01.
    Date(i32),
    Interval(Interval),
    Uuid(Uuid),
    /// `JSONB`: serde_json keeps object keys sorted, as jsonb does.
    Json(serde_json::Value),
}

impl Datum {
    pub fn is_null(&self) -> bool {
        matches!(self, Datum::Null)
    }

    /// The natural type of the value (for untyped contexts).
    pub fn natural_type(&self) -> SqlType {
        match self {
            Datum::Null => SqlType::Unknown,
            Datum::Bool(_) => SqlType::Bool,
            Datum::Int(_) => SqlType::Int8,
            Datum::Float(_) => SqlType::Float8,
            Datum::Decimal(_) => SqlType::Numeric,
            Datum::Text(_) => SqlType::Text,
            Datum::Bytes(_) => SqlType::Bytea,
            Datum::Timestamp(_) => SqlType::Timestamp,
            Datum::TimestampTz(_) => SqlType::TimestampTz,
            Datum::Date(_) => SqlType::Date,
            Datum::Interval(_) => SqlType::Interval,
            Datum::Uuid(_) => SqlType::Uuid,
            Datum::Json(_) => SqlType::Jsonb,
        }
    }

    /// SQL comparison: `None` when either side is NULL or the two cannot
    /// be compared.
    pub fn sql_cmp(&self, other: &Datum) -> Option<Ordering> {
        use Datum::*;
        match (self, other) {
            (Null, _) | (_, Null) => None,
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Float(a), Float(b)) => Some(float_cmp(*a, *b)),
            (Int(a), Float(b)) => Some(float_cmp(*a as f64, *b)),
            (Float(a), Int(b)) => Some(float_cmp(*a, *b as f64)),
            (Decimal(a), Decimal(b)) => Some(a.cmp(b)),
            (Int(a), Decimal(b)) => Some(rust_decimal::Decimal::from(*a).cmp(b)),
            (Decimal(a), Int(b)) => Some(a.cmp(&rust_decimal::Decimal::from(*b))),
            (Float(a), Decimal(b)) => Some(float_cmp(*a, b.to_f64()?)),
            (Decimal(a), Float(b)) => Some(float_cmp(a.to_f64()?, *b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) | (TimestampTz(a), TimestampTz(b)) => Some(a.cmp(b)),
            (Timestamp(a), TimestampTz(b)) | (TimestampTz(a), Timestamp(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Date(d), Timestamp(t) | TimestampTz(t)) => Some((*d as i64 * DAY_MICROS).cmp(t)),
            (Timestamp(t) | TimestampTz(t), Date(d)) => Some(t.cmp(&(*d as i64 * DAY_MICROS))),
            (Interval(a), Interval(b)) => Some(a.approx_micros().cmp(&b.approx_micros())),
            (Uuid(a), Uuid(b)) => Some(a.cmp(b)),
            (Json(a), Json(b)) => Some(json_cmp(a, b)),
            _ => None,
        }
    }

    /// A total order for ORDER BY: NULLs after every value.
    pub fn sort_cmp(&self, other: &Datum) -> Ordering {
        match (self.is_null(), other.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => self
                .sql_cmp(other)
                .unwrap_or_else(|| self.variant_rank().cmp(&other.variant_rank())),
        }
    }

    /// Equality for grouping and DISTINCT, where NULL equals NULL.
    pub fn group_eq(&self, other: &Datum) -> bool {
        match (self.is_null(), other.is_null()) {
            (true, true) => true,
            (false, false) => self.sql_cmp(other) == Some(Ordering::Equal),
            _ => false,
        }
    }

    /// Bytes that are equal exactly when two values are equal for
    /// grouping (numbers of different kinds that compare equal share a
    /// form), for hash tables.
    pub fn group_key(&self, out: &mut Vec<u8>) {
        match self {
            Datum::Null => out.push(0),
            Datum::Int(i) => {
                out.push(1);
                out.extend_from_slice(
                    rust_decimal::Decimal::from(*i)
                        .normalize()
                        .to_string()
                        .as_bytes(),
                );
            }
            Datum::Decimal(d) => {
                out.push(1);
                out.extend_from_slice(d.normalize().to_string().as_bytes());
            }
            Datum::Float(f) => match rust_decimal::Decimal::from_f64(*f) {
                Some(d) if d.to_f64() == Some(*f) => {
                    out.push(1);
                    out.extend_from_slice(d.normalize().to_string().as_bytes());
                }
                _ => {
                    out.push(2);
                    out.extend_from_slice(&f.to_bits().to_be_bytes());
                }
            },
            Datum::Bool(b) => out.extend_from_slice(&[3, *b as u8]),
            Datum::Text(s) => {
                out.push(4);
                out.extend_from_slice(s.as_bytes());
            }
            Datum::Bytes(b) => {
                out.push(5);
                out.extend_from_slice(b);
            }
            Datum::Timestamp(t) | Datum::TimestampTz(t) => {
                out.push(6);
                out.extend_from_slice(&t.to_be_bytes());
            }
            Datum::Date(d) => {
                out.push(6);
                out.extend_from_slice(&(*d as i64 * DAY_MICROS).to_be_bytes());
            }
            Datum::Interval(i) => {
                out.push(7);
                out.extend_from_slice(&i.approx_micros().to_be_bytes());
            }
            Datum::Uuid(u) => {
                out.push(8);
                out.extend_from_slice(u.as_bytes());
            }
            Datum::Json(j) => {
                out.push(9);
                out.extend_from_slice(j.to_string().as_bytes());
            }
        }
        // A separator so that concatenated keys of several values stay
        // unambiguous.
        out.extend_from_slice(&(out.len() as u32).to_be_bytes());
    }

    fn variant_rank(&self) -> u8 {
        match self {
            Datum::Null => 0,
            Datum::Bool(_) => 1,
            Datum::Int(_) | Datum::Float(_) | Datum::Decimal(_) => 2,
            Datum::Text(_) => 3,
            Datum::Bytes(_) => 4,
            Datum::Timestamp(_) | Datum::TimestampTz(_) | Datum::Date(_) => 5,
            Datum::Interval(_) => 6,
            Datum::Uuid(_) => 7,
            Datum::Json(_) => 8,
        }
    }

    /// The value as a boolean condition: NULL is not true.
    pub fn is_true(&self) -> bool {
        matches!(self, Datum::Bool(true))
    }
}

pub(crate) const DAY_MICROS: i64 = 86_400_000_000;

/// PostgreSQL's float order: NaN equals NaN and sorts above everything.
fn float_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).expect("no NaN"),
    }
}

fn json_cmp(a: &serde_json::Value, b: &serde_json::Value) -> Ordering {
    a.to_string().cmp(&b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_compares_as_unknown_and_sorts_last() {
        assert_eq!(Datum::Null.sql_cmp(&Datum::Int(1)), None);
        assert_eq!(Datum::Null.sort_cmp(&Datum::Int(1)), Ordering::Greater);
        assert!(Datum::Null.group_eq(&Datum::Null));
    }

    #[test]
    fn numbers_of_different_kinds_compare_and_group_together() {
        let one_decimal = Datum::Decimal("1.0".parse().unwrap());
        assert_eq!(Datum::Int(1).sql_cmp(&one_decimal), Some(Ordering::Equal));
        assert_eq!(
            Datum::Float(1.5).sql_cmp(&Datum::Int(2)),
            Some(Ordering::Less)
        );
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        Datum::Int(1).group_key(&mut a);
        one_decimal.group_key(&mut b);
        Datum::Float(1.0).group_key(&mut c);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }
}
