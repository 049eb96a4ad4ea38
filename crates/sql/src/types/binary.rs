//! PostgreSQL's binary wire forms of values (format code 1), which drivers
//! such as tokio-postgres ask for in the extended protocol.

use std::str::FromStr;

use rust_decimal::Decimal;
use uuid::Uuid;

use super::datum::DAY_MICROS;
use super::{text, Datum, Interval, SqlType};
use crate::error::{code, SqlError};

/// Microseconds from 1970-01-01 (ours) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

/// The binary form of `datum` as type `ty` (`None` for NULL).
pub fn encode(datum: &Datum, ty: SqlType) -> Result<Option<Vec<u8>>, SqlError> {
    let datum = if datum.natural_type() == ty || datum.is_null() || ty == SqlType::Unknown {
        datum.clone()
    } else {
        super::cast::cast(datum.clone(), ty, true)?
    };
    Ok(Some(match (&datum, ty) {
        (Datum::Null, _) => return Ok(None),
        (Datum::Bool(b), _) => vec![*b as u8],
        (Datum::Int(i), SqlType::Int2) => (*i as i16).to_be_bytes().to_vec(),
        (Datum::Int(i), SqlType::Int4) => (*i as i32).to_be_bytes().to_vec(),
        (Datum::Int(i), SqlType::Oid) => (*i as u32).to_be_bytes().to_vec(),
        (Datum::Int(i), _) => i.to_be_bytes().to_vec(),
        (Datum::Float(f), SqlType::Float4) => (*f as f32).to_be_bytes().to_vec(),
        (Datum::Float(f), _) => f.to_be_bytes().to_vec(),
        (Datum::Decimal(d), _) => encode_numeric(d),
        (Datum::Text(s), _) => s.as_bytes().to_vec(),
        (Datum::Bytes(b), _) => b.clone(),
        (Datum::Timestamp(t) | Datum::TimestampTz(t), _) => {
            (t - PG_EPOCH_MICROS).to_be_bytes().to_vec()
        }
        (Datum::Date(d), _) => (d - PG_EPOCH_DAYS).to_be_bytes().to_vec(),
        (Datum::Interval(i), _) => {
            let mut out = i.micros.to_be_bytes().to_vec();
            out.extend_from_slice(&i.days.to_be_bytes());
            out.extend_from_slice(&i.months.to_be_bytes());
            out
        }
        (Datum::Uuid(u), _) => u.as_bytes().to_vec(),
        (Datum::Json(j), _) => {
            let mut out = vec![1u8];
            out.extend_from_slice(j.to_string().as_bytes());
            out
        }
    }))
}

/// Decodes the binary form `bytes` of a value of type `ty`.
pub fn decode(bytes: &[u8], ty: SqlType) -> Result<Datum, SqlError> {
    let bad = || {
        SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!("incorrect binary data format for type {}", ty.name()),
        )
    };
    let fixed = |n: usize| -> Result<&[u8], SqlError> {
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(bad())
        }
    };
    Ok(match ty {
        SqlType::Bool => Datum::Bool(fixed(1)?[0] != 0),
        SqlType::Int2 => Datum::Int(i16::from_be_bytes(fixed(2)?.try_into().expect("2")) as i64),
        SqlType::Int4 => Datum::Int(i32::from_be_bytes(fixed(4)?.try_into().expect("4")) as i64),
        SqlType::Oid => Datum::Int(u32::from_be_bytes(fixed(4)?.try_into().expect("4")) as i64),
        SqlType::Int8 => Datum::Int(i64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        SqlType::Float4 => {
            Datum::Float(f32::from_be_bytes(fixed(4)?.try_into().expect("4")) as f64)
        }
        SqlType::Float8 => Datum::Float(f64::from_be_bytes(fixed(8)?.try_into().expect("8"))),
        SqlType::Numeric => Datum::Decimal(decode_numeric(bytes).ok_or_else(bad)?),
        SqlType::Text
        | SqlType::Name
        | SqlType::PgChar
        | SqlType::Unknown
        | SqlType::Varchar(_)
        | SqlType::Char(_) => {
            let s = std::str::from_utf8(bytes).map_err(|_| bad())?;
            text::parse(s, ty)?
        }
        SqlType::Bytea => Datum::Bytes(bytes.to_vec()),
        SqlType::Timestamp => Datum::Timestamp(pg_micros(fixed(8)?)?),
        SqlType::TimestampTz => Datum::TimestampTz(pg_micros(fixed(8)?)?),
        SqlType::Date => {
            let days = i32::from_be_bytes(fixed(4)?.try_into().expect("4"));
            Datum::Date(days.checked_add(PG_EPOCH_DAYS).ok_or_else(bad)?)
        }
        SqlType::Interval => {
            let b = fixed(16)?;
            Datum::Interval(Interval {
                micros: i64::from_be_bytes(b[..8].try_into().expect("8")),
                days: i32::from_be_bytes(b[8..12].try_into().expect("4")),
                months: i32::from_be_bytes(b[12..].try_into().expect("4")),
            })
        }
        SqlType::Uuid => Datum::Uuid(Uuid::from_slice(fixed(16)?).map_err(|_| bad())?),
        SqlType::Jsonb => {
            let body = match bytes.split_first() {
                Some((1, rest)) => rest,
                _ => return Err(bad()),
            };
            let s = std::str::from_utf8(body).map_err(|_| bad())?;
            text::parse(s, SqlType::Jsonb)?
        }
    })
}

fn pg_micros(b: &[u8]) -> Result<i64, SqlError> {
    let v = i64::from_be_bytes(b.try_into().expect("8"));
    v.checked_add(PG_EPOCH_MICROS)
        .filter(|t| t.unsigned_abs() < (i64::MAX / DAY_MICROS) as u64 * DAY_MICROS as u64)
        .ok_or_else(|| SqlError::new(code::DATETIME_FIELD_OVERFLOW, "timestamp out of range"))
}

/// NUMERIC on the wire: digit count, weight (of the first digit, in powers
/// of 10000), sign, display scale, then base-10000 digits.
fn encode_numeric(d: &Decimal) -> Vec<u8> {
    let scale = d.scale() as u16;
    let text = d.abs().to_string();
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let int_part = int_part.trim_start_matches('0');
    let mut int_padded = "0".repeat((4 - int_part.len() % 4) % 4);
    int_padded.push_str(int_part);
    let mut frac_padded = frac_part.to_string();
    frac_padded.push_str(&"0".repeat((4 - frac_part.len() % 4) % 4));
    let mut digits: Vec<i16> = int_padded
        .as_bytes()
        .chunks(4)
        .chain(frac_padded.as_bytes().chunks(4))
        .map(|c| {
            std::str::from_utf8(c)
                .expect("ascii")
                .parse()
                .expect("digits")
        })
        .collect();
    let mut weight = (int_padded.len() / 4) as i16 - 1;
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    let sign: u16 = if d.is_sign_negative() && !d.is_zero() {
        0x4000
    } else {
        0
    };
    let mut out = Vec::with_capacity(8 + digits.len() * 2);
    out.extend_from_slice(&(digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&scale.to_be_bytes());
    for digit in digits {
        out.extend_from_slice(&digit.to_be_bytes());
    }
    out
}

fn decode_numeric(b: &[u8]) -> Option<Decimal> {
    if b.len() < 8 {
        return None;
    }
    // A negative digit count is malformed (it would wrap as a usize).
    let count = usize::try_from(i16::from_be_bytes([b[0], b[1]])).ok()?;
    let weight = i16::from_be_bytes([b[2], b[3]]) as i32;
    let sign = u16::from_be_bytes([b[4], b[5]]);
    let scale = u16::from_be_bytes([b[6], b[7]]) as usize;
    // PostgreSQL's own bounds on the display scale and the weight; a
    // value past them would only build long strings that fail to parse.
    if b.len() != 8 + 2 * count || sign == 0xC000 || scale > 1000 || weight.abs() > 1000 {
        return None;
    }
    let digits: Vec<i16> = b[8..]
        .chunks(2)
        .map(|c| i16::from_be_bytes([c[0], c[1]]))
        .collect();
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return None;
    }
    let digit_at = |i: i32| -> i16 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            0
        }
    };
    let mut int_part = String::new();
    for i in 0..=weight.max(-1) {
        if i > weight {
            break;
        }
        int_part.push_str(&format!("{:04}", digit_at(i)));
    }
    let int_part = int_part.trim_start_matches('0');
    let mut frac = String::new();
    let mut i = weight + 1;
    while frac.len() < scale {
        frac.push_str(&format!("{:04}", digit_at(i)));
        i += 1;
    }
    frac.truncate(scale);
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    text.push_str(if int_part.is_empty() { "0" } else { int_part });
    if scale > 0 {
        text.push('.');
        text.push_str(&frac);
    }
    Decimal::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_round_trips_through_its_binary_form() {
        for text in [
            "0",
            "1",
            "-1",
            "12345.6789",
            "0.0001",
            "10000",
            "-0.5",
            "123456789.000",
            "99999999",
        ] {
            let d = Decimal::from_str(text).unwrap();
            let back = decode_numeric(&encode_numeric(&d)).unwrap();
            assert_eq!(back.to_string(), d.to_string(), "{text}");
        }
    }

    #[test]
    fn every_type_round_trips_through_its_binary_form() {
        let cases = [
            (Datum::Bool(true), SqlType::Bool),
            (Datum::Int(-7), SqlType::Int2),
            (Datum::Int(70_000), SqlType::Int4),
            (Datum::Int(i64::MIN), SqlType::Int8),
            (Datum::Float(1.5), SqlType::Float4),
            (Datum::Float(-2.25), SqlType::Float8),
            (Datum::Text("héllo".into()), SqlType::Text),
            (Datum::Bytes(vec![0, 1, 255]), SqlType::Bytea),
            (Datum::Timestamp(1_700_000_000_123_456), SqlType::Timestamp),
            (Datum::TimestampTz(-5), SqlType::TimestampTz),
            (Datum::Date(-3), SqlType::Date),
            (
                Datum::Interval(Interval {
                    months: 1,
                    days: 2,
                    micros: 3,
                }),
                SqlType::Interval,
            ),
            (Datum::Uuid(Uuid::from_u128(42)), SqlType::Uuid),
            (
                Datum::Json(serde_json::json!({"a": [1, true]})),
                SqlType::Jsonb,
            ),
        ];
        for (datum, ty) in cases {
            let bytes = encode(&datum, ty).unwrap().unwrap();
            assert_eq!(decode(&bytes, ty).unwrap(), datum, "{ty}");
        }
    }

    #[test]
    fn malformed_binary_is_a_protocol_error() {
        assert_eq!(
            decode(&[1, 2, 3], SqlType::Int4).unwrap_err().code,
            code::PROTOCOL_VIOLATION
        );
        assert_eq!(
            decode(&[0, 1], SqlType::Numeric).unwrap_err().code,
            code::PROTOCOL_VIOLATION
        );
        // A negative digit count (found by the decoding fuzz: it wrapped
        // into a huge length and overflowed), and a scale past
        // PostgreSQL's bound.
        for header in [[0xff, 0xff, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0x10, 0]] {
            assert_eq!(
                decode(&header, SqlType::Numeric).unwrap_err().code,
                code::PROTOCOL_VIOLATION
            );
        }
    }
}
