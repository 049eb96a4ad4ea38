//! Casts between types (`CAST(x AS t)`, `x::t`, and the implicit casts of
//! assignment to a column), with PostgreSQL's range and length checks.

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::Decimal;

use super::datum::DAY_MICROS;
use super::{text, Datum, SqlType};
use crate::error::{code, SqlError};

/// Refuses an integer outside the range of `ty`.
pub fn check_int_range(v: i64, ty: SqlType) -> Result<(), SqlError> {
    let fits = match ty {
        SqlType::Int2 => i16::try_from(v).is_ok(),
        SqlType::Int4 => i32::try_from(v).is_ok(),
        SqlType::Oid => u32::try_from(v).is_ok(),
        _ => true,
    };
    if fits {
        Ok(())
    } else {
        Err(out_of_range(ty))
    }
}

fn out_of_range(ty: SqlType) -> SqlError {
    SqlError::new(
        code::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{} out of range", ty.name()),
    )
}

/// Fits a string to `VARCHAR(n)` or `CHAR(n)`: too long is an error on
/// assignment and a truncation in an explicit cast; CHAR pads with blanks.
pub fn fit_string(s: String, ty: SqlType, explicit: bool) -> Result<Datum, SqlError> {
    let limit = match ty {
        SqlType::Varchar(Some(n)) | SqlType::Char(n) => n as usize,
        _ => return Ok(Datum::Text(s)),
    };
    let length = s.chars().count();
    let mut s = if length > limit {
        let trimmed = s.trim_end_matches(' ');
        if explicit || trimmed.chars().count() <= limit {
            s.chars().take(limit).collect()
        } else {
            return Err(SqlError::new(
                code::STRING_DATA_RIGHT_TRUNCATION,
                format!("value too long for type {}", ty.name()),
            ));
        }
    } else {
        s
    };
    if let SqlType::Char(_) = ty {
        let have = s.chars().count();
        s.extend(std::iter::repeat_n(' ', limit.saturating_sub(have)));
    }
    Ok(Datum::Text(s))
}

/// Casts `datum` to `to`; `explicit` is false for the assignment casts of
/// INSERT and UPDATE (which refuse to truncate strings).
pub fn cast(datum: Datum, to: SqlType, explicit: bool) -> Result<Datum, SqlError> {
    use Datum as D;
    use SqlType as T;
    if datum.is_null() || to == T::Unknown {
        return Ok(datum);
    }
    let cannot = |d: &Datum| {
        SqlError::new(
            code::DATATYPE_MISMATCH,
            format!("cannot cast {} to {}", d.natural_type().name(), to.name()),
        )
    };
    Ok(match (datum, to) {
        (D::Text(s), t) if !t.is_string() => text::parse(&s, t)?,
        (D::Text(s), t) => fit_string(s, t, explicit)?,
        (d, t) if t.is_string() => fit_string(text::format(&d).unwrap_or_default(), t, explicit)?,
        (D::Bool(b), T::Bool) => D::Bool(b),
        (D::Int(i), T::Bool) => D::Bool(i != 0),
        (D::Bool(b), t) if t.is_integer() => D::Int(b as i64),
        (D::Int(i), t) if t.is_integer() || t == T::Oid => {
            check_int_range(i, t)?;
            D::Int(i)
        }
        (D::Int(i), T::Float4 | T::Float8) => D::Float(i as f64),
        (D::Int(i), T::Numeric) => D::Decimal(Decimal::from(i)),
        (D::Float(f), t) if t.is_integer() => {
            let rounded = f.round_ties_even();
            if !rounded.is_finite() || rounded < i64::MIN as f64 || rounded >= i64::MAX as f64 {
                return Err(out_of_range(t));
            }
            check_int_range(rounded as i64, t)?;
            D::Int(rounded as i64)
        }
        (D::Float(f), T::Float8) => D::Float(f),
        (D::Float(f), T::Float4) => D::Float(f as f32 as f64),
        (D::Float(f), T::Numeric) => {
            D::Decimal(Decimal::from_f64(f).ok_or_else(|| out_of_range(T::Numeric))?)
        }
        (D::Decimal(d), t) if t.is_integer() => {
            let i = d.round().to_i64().ok_or_else(|| out_of_range(t))?;
            check_int_range(i, t)?;
            D::Int(i)
        }
        (D::Decimal(d), T::Float4 | T::Float8) => D::Float(d.to_f64().unwrap_or(f64::NAN)),
        (D::Decimal(d), T::Numeric) => D::Decimal(d),
        (D::Bytes(b), T::Bytea) => D::Bytes(b),
        (D::Timestamp(t), T::Timestamp) => D::Timestamp(t),
        (D::Timestamp(t), T::TimestampTz) => D::TimestampTz(t),
        (D::TimestampTz(t), T::TimestampTz) => D::TimestampTz(t),
        (D::TimestampTz(t), T::Timestamp) => D::Timestamp(t),
        (D::Timestamp(t) | D::TimestampTz(t), T::Date) => D::Date(t.div_euclid(DAY_MICROS) as i32),
        (D::Date(d), T::Date) => D::Date(d),
        (D::Date(d), T::Timestamp) => D::Timestamp(date_micros(d)?),
        (D::Date(d), T::TimestampTz) => D::TimestampTz(date_micros(d)?),
        (D::Interval(i), T::Interval) => D::Interval(i),
        (D::Uuid(u), T::Uuid) => D::Uuid(u),
        (D::Bytes(b), T::Uuid) if b.len() == 16 => {
            D::Uuid(uuid::Uuid::from_slice(&b).expect("16 bytes"))
        }
        (D::Json(j), T::Jsonb) => D::Json(j),
        (d, _) => return Err(cannot(&d)),
    })
}

/// Midnight of day `days` in microseconds; dates reach further than
/// timestamps (as in PostgreSQL), so a far one is out of range.
fn date_micros(days: i32) -> Result<i64, SqlError> {
    (days as i64)
        .checked_mul(DAY_MICROS)
        .ok_or_else(|| SqlError::new(code::DATETIME_FIELD_OVERFLOW, "timestamp out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_refuses_what_an_explicit_cast_truncates() {
        let long = Datum::Text("abcdef".into());
        assert_eq!(
            cast(long.clone(), SqlType::Varchar(Some(3)), false)
                .unwrap_err()
                .code,
            code::STRING_DATA_RIGHT_TRUNCATION
        );
        assert_eq!(
            cast(long, SqlType::Varchar(Some(3)), true).unwrap(),
            Datum::Text("abc".into())
        );
        assert_eq!(
            cast(Datum::Text("ab".into()), SqlType::Char(4), false).unwrap(),
            Datum::Text("ab  ".into())
        );
    }

    #[test]
    fn a_date_beyond_the_timestamp_range_is_out_of_range() {
        let far = Datum::Date(i32::MAX);
        for to in [SqlType::Timestamp, SqlType::TimestampTz] {
            assert_eq!(
                cast(far.clone(), to, true).unwrap_err().code,
                code::DATETIME_FIELD_OVERFLOW
            );
        }
        assert_eq!(
            cast(Datum::Date(1), SqlType::Timestamp, true).unwrap(),
            Datum::Timestamp(DAY_MICROS)
        );
    }

    #[test]
    fn numbers_cast_with_rounding_and_range_checks() {
        assert_eq!(
            cast(Datum::Float(2.5), SqlType::Int4, true).unwrap(),
            Datum::Int(2)
        );
        assert_eq!(
            cast(Datum::Float(3.5), SqlType::Int4, true).unwrap(),
            Datum::Int(4)
        );
        assert_eq!(
            cast(Datum::Int(70_000), SqlType::Int2, false)
                .unwrap_err()
                .code,
            code::NUMERIC_VALUE_OUT_OF_RANGE
        );
        assert_eq!(
            cast(Datum::Int(7), SqlType::Numeric, false).unwrap(),
            Datum::Decimal(Decimal::from(7))
        );
        assert_eq!(
            cast(Datum::Text("12".into()), SqlType::Int8, false).unwrap(),
            Datum::Int(12)
        );
    }
}
