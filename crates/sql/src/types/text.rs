//! PostgreSQL's text forms of values: what `psql` prints and what a client
//! sends as a text parameter or a quoted literal.

use std::str::FromStr;

use rust_decimal::Decimal;
use time::{Date, Month};
use uuid::Uuid;

use super::datum::DAY_MICROS;
use super::{Datum, Interval, SqlType};
use crate::error::{code, SqlError};

/// Julian day of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// The text form of `datum` (`None` for NULL).
pub fn format(datum: &Datum) -> Option<String> {
    Some(match datum {
        Datum::Null => return None,
        Datum::Bool(b) => if *b { "t" } else { "f" }.to_string(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(f) => format_float(*f),
        Datum::Decimal(d) => d.to_string(),
        Datum::Text(s) => s.clone(),
        Datum::Bytes(b) => {
            let mut out = String::with_capacity(2 + b.len() * 2);
            out.push_str("\\x");
            for byte in b {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
        Datum::Timestamp(t) => format_timestamp(*t),
        Datum::TimestampTz(t) => format!("{}+00", format_timestamp(*t)),
        Datum::Date(d) => format_date(*d),
        Datum::Interval(i) => format_interval(i),
        Datum::Uuid(u) => u.hyphenated().to_string(),
        Datum::Json(j) => format_json(j),
    })
}

fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else if f != 0.0 && (f.abs() >= 1e16 || f.abs() < 1e-4) {
        // PostgreSQL switches to exponent form for very large or small
        // magnitudes: 1e+20, 1e-05.
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => {
                let exp: i32 = exp.parse().unwrap_or(0);
                format!(
                    "{mantissa}e{}{:02}",
                    if exp < 0 { '-' } else { '+' },
                    exp.abs()
                )
            }
            None => s,
        }
    } else {
        format!("{f}")
    }
}

fn date_of(days: i32) -> Option<Date> {
    Date::from_julian_day(days.checked_add(UNIX_EPOCH_JULIAN_DAY)?).ok()
}

fn format_date(days: i32) -> String {
    match date_of(days) {
        Some(d) => format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day()),
        None => "infinity".into(),
    }
}

fn format_timestamp(micros: i64) -> String {
    let days = micros.div_euclid(DAY_MICROS);
    let in_day = micros.rem_euclid(DAY_MICROS);
    let (secs, frac) = (in_day / 1_000_000, in_day % 1_000_000);
    let mut out = format!(
        "{} {:02}:{:02}:{:02}",
        format_date(days as i32),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let digits = format!("{frac:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out
}

fn format_interval(i: &Interval) -> String {
    let mut parts = Vec::new();
    let (years, months) = (i.months / 12, i.months % 12);
    let plural =
        |n: i64, one: &str, many: &str| format!("{n} {}", if n.abs() == 1 { one } else { many });
    if years != 0 {
        parts.push(plural(years as i64, "year", "years"));
    }
    if months != 0 {
        parts.push(plural(months as i64, "mon", "mons"));
    }
    if i.days != 0 {
        parts.push(plural(i.days as i64, "day", "days"));
    }
    if i.micros != 0 || parts.is_empty() {
        let sign = if i.micros < 0 { "-" } else { "" };
        let m = i.micros.unsigned_abs();
        let secs = m / 1_000_000;
        let frac = m % 1_000_000;
        let mut clock = format!(
            "{sign}{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        );
        if frac != 0 {
            clock.push('.');
            clock.push_str(format!("{frac:06}").trim_end_matches('0'));
        }
        parts.push(clock);
    }
    parts.join(" ")
}

/// jsonb's text form: a space after `:` and `,`.
pub fn format_json(value: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match value {
        J::Array(items) => {
            let inner: Vec<String> = items.iter().map(format_json).collect();
            format!("[{}]", inner.join(", "))
        }
        J::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", J::String(k.clone()), format_json(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => other.to_string(),
    }
}

/// Parses the text form `s` as a value of `ty`.
pub fn parse(s: &str, ty: SqlType) -> Result<Datum, SqlError> {
    let invalid = || SqlError::invalid_text(&ty.name(), s);
    let t = s.trim();
    Ok(match ty {
        SqlType::Bool => match t.to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "y" | "on" | "1" => Datum::Bool(true),
            "f" | "false" | "no" | "n" | "off" | "0" => Datum::Bool(false),
            _ => return Err(invalid()),
        },
        SqlType::Int2 | SqlType::Int4 | SqlType::Int8 | SqlType::Oid => {
            let v: i64 = t.parse().map_err(|_| {
                if !t.is_empty()
                    && t.trim_start_matches(['-', '+'])
                        .bytes()
                        .all(|b| b.is_ascii_digit())
                {
                    SqlError::new(
                        code::NUMERIC_VALUE_OUT_OF_RANGE,
                        format!("value \"{t}\" is out of range for type {}", ty.name()),
                    )
                } else {
                    invalid()
                }
            })?;
            super::cast::check_int_range(v, ty)?;
            Datum::Int(v)
        }
        SqlType::Float4 | SqlType::Float8 => Datum::Float(match t.to_ascii_lowercase().as_str() {
            "nan" => f64::NAN,
            "infinity" | "inf" | "+infinity" => f64::INFINITY,
            "-infinity" | "-inf" => f64::NEG_INFINITY,
            _ => t.parse().map_err(|_| invalid())?,
        }),
        SqlType::Numeric => Datum::Decimal(
            Decimal::from_str(t)
                .or_else(|_| Decimal::from_scientific(t))
                .map_err(|_| invalid())?,
        ),
        SqlType::Text | SqlType::Name | SqlType::Unknown => Datum::Text(s.to_string()),
        // `"char"` keeps one byte, as PostgreSQL does.
        SqlType::PgChar => Datum::Text(s.chars().take(1).collect()),
        SqlType::Varchar(_) | SqlType::Char(_) => {
            super::cast::fit_string(s.to_string(), ty, false)?
        }
        SqlType::Bytea => Datum::Bytes(parse_bytea(s).ok_or_else(invalid)?),
        SqlType::Timestamp => {
            let (micros, _offset) = parse_timestamp(t).ok_or_else(|| datetime_error(ty, s))?;
            Datum::Timestamp(micros)
        }
        SqlType::TimestampTz => {
            let (micros, offset) = parse_timestamp(t).ok_or_else(|| datetime_error(ty, s))?;
            Datum::TimestampTz(micros - offset.unwrap_or(0) * 1_000_000)
        }
        SqlType::Date => {
            let (micros, _) = parse_timestamp(t).ok_or_else(|| datetime_error(ty, s))?;
            Datum::Date(micros.div_euclid(DAY_MICROS) as i32)
        }
        SqlType::Interval => {
            Datum::Interval(parse_interval(t).ok_or_else(|| datetime_error(ty, s))?)
        }
        SqlType::Uuid => Datum::Uuid(Uuid::parse_str(t).map_err(|_| invalid())?),
        SqlType::Jsonb => Datum::Json(serde_json::from_str(t).map_err(|e| {
            SqlError::new(
                code::INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type json: {e}"),
            )
        })?),
    })
}

fn datetime_error(ty: SqlType, s: &str) -> SqlError {
    SqlError::new(
        code::INVALID_DATETIME_FORMAT,
        format!("invalid input syntax for type {}: \"{s}\"", ty.name()),
    )
}

fn parse_bytea(s: &str) -> Option<Vec<u8>> {
    if let Some(hex) = s.strip_prefix("\\x") {
        if hex.len() % 2 != 0 {
            return None;
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
    }
    // The escape form: bytes as they are, `\\` for a backslash and `\nnn`
    // octal escapes.
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            let octal = std::str::from_utf8(bytes.get(i + 1..i + 4)?).ok()?;
            out.push(u8::from_str_radix(octal, 8).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Parses `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|UTC|(+|-)HH[:MM]]` into
/// microseconds since the epoch (as written) and the offset it named, in
/// seconds east of UTC.
fn parse_timestamp(s: &str) -> Option<(i64, Option<i64>)> {
    match s.to_ascii_lowercase().as_str() {
        "epoch" => return Some((0, None)),
        "infinity" | "-infinity" => return None,
        _ => {}
    }
    let (date_part, rest) = match s.find([' ', 'T', 't']) {
        Some(i) => (&s[..i], s[i + 1..].trim()),
        None => (s, ""),
    };
    let mut fields = date_part.splitn(3, '-');
    let year: i32 = fields.next()?.parse().ok()?;
    let month: u8 = fields.next()?.parse().ok()?;
    let day: u8 = fields.next()?.parse().ok()?;
    let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
    let days = (date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY) as i64;
    if rest.is_empty() {
        return Some((days * DAY_MICROS, None));
    }
    let (clock, zone) = split_zone(rest);
    let mut parts = clock.split(':');
    let hour: i64 = parts.next()?.parse().ok()?;
    let minute: i64 = parts.next()?.parse().ok()?;
    let (second, micros) = match parts.next() {
        Some(sec) => parse_seconds(sec)?,
        None => (0, 0),
    };
    if parts.next().is_some() || hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    let offset = match zone.trim() {
        "" => None,
        z if z.eq_ignore_ascii_case("z") || z.eq_ignore_ascii_case("utc") => Some(0),
        z => Some(parse_offset(z)?),
    };
    let micros = days * DAY_MICROS + ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros;
    Some((micros, offset))
}

fn split_zone(rest: &str) -> (&str, &str) {
    if let Some(i) = rest.rfind(['+', '-']) {
        return (rest[..i].trim(), &rest[i..]);
    }
    let lower = rest.to_ascii_lowercase();
    if lower.ends_with("utc") {
        return (rest[..rest.len() - 3].trim(), "utc");
    }
    if lower.ends_with('z') {
        return (&rest[..rest.len() - 1], "z");
    }
    (rest, "")
}

fn parse_offset(z: &str) -> Option<i64> {
    let sign = if z.starts_with('-') { -1 } else { 1 };
    let body = &z[1..];
    let (h, m) = match body.split_once(':') {
        Some((h, m)) => (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?),
        None if body.len() == 4 => (body[..2].parse().ok()?, body[2..].parse().ok()?),
        None => (body.parse().ok()?, 0),
    };
    Some(sign * (h * 3600 + m * 60))
}

fn parse_seconds(s: &str) -> Option<(i64, i64)> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let second: i64 = whole.parse().ok()?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(6).collect();
    while digits.len() < 6 {
        digits.push('0');
    }
    Some((second, digits.parse().ok()?))
}

/// Parses `[N unit]... [[-]HH:MM[:SS]]` (units: years, months, weeks,
/// days, hours, minutes, seconds, milliseconds, microseconds, with
/// PostgreSQL's abbreviations).
pub fn parse_interval(s: &str) -> Option<Interval> {
    let mut out = Interval::default();
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        if word.contains(':') {
            let negative = word.starts_with('-');
            let mut parts = word.trim_start_matches('-').split(':');
            let h: i64 = parts.next()?.parse().ok()?;
            let m: i64 = parts.next()?.parse().ok()?;
            let (sec, micros) = match parts.next() {
                Some(sec) => parse_seconds(sec)?,
                None => (0, 0),
            };
            let total = ((h * 60 + m) * 60 + sec) * 1_000_000 + micros;
            out.micros += if negative { -total } else { total };
            i += 1;
            continue;
        }
        let number: f64 = word.parse().ok()?;
        let unit = words
            .get(i + 1)
            .map(|u| u.to_ascii_lowercase())
            .unwrap_or_else(|| "seconds".into());
        let unit = unit.trim_end_matches(',');
        match unit {
            "year" | "years" | "y" | "yr" | "yrs" => out.months += (number * 12.0) as i32,
            "month" | "months" | "mon" | "mons" => out.months += number as i32,
            "week" | "weeks" | "w" => out.days += (number * 7.0) as i32,
            "day" | "days" | "d" => out.days += number as i32,
            "hour" | "hours" | "h" | "hr" | "hrs" => {
                out.micros += (number * 3_600_000_000.0) as i64
            }
            "minute" | "minutes" | "m" | "min" | "mins" => {
                out.micros += (number * 60_000_000.0) as i64
            }
            "second" | "seconds" | "s" | "sec" | "secs" => {
                out.micros += (number * 1_000_000.0) as i64
            }
            "millisecond" | "milliseconds" | "ms" => out.micros += (number * 1000.0) as i64,
            "microsecond" | "microseconds" | "us" => out.micros += number as i64,
            _ => return None,
        }
        i += 2;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str, ty: SqlType) -> String {
        format(&parse(text, ty).unwrap()).unwrap()
    }

    #[test]
    fn values_print_as_postgres_prints_them() {
        assert_eq!(round_trip("TRUE", SqlType::Bool), "t");
        assert_eq!(round_trip(" 42 ", SqlType::Int4), "42");
        assert_eq!(round_trip("1.50", SqlType::Numeric), "1.50");
        assert_eq!(round_trip("2.5", SqlType::Float8), "2.5");
        assert_eq!(round_trip("\\x00ff", SqlType::Bytea), "\\x00ff");
        assert_eq!(round_trip("2024-02-29", SqlType::Date), "2024-02-29");
        assert_eq!(
            round_trip("2024-02-29 13:04:05.25", SqlType::Timestamp),
            "2024-02-29 13:04:05.25"
        );
        assert_eq!(
            round_trip("2024-02-29 13:04:05+02", SqlType::TimestampTz),
            "2024-02-29 11:04:05+00"
        );
        assert_eq!(
            round_trip("1969-12-31 23:59:59", SqlType::Timestamp),
            "1969-12-31 23:59:59"
        );
        assert_eq!(
            round_trip("1 day 2 hours", SqlType::Interval),
            "1 day 02:00:00"
        );
        assert_eq!(round_trip("14 months", SqlType::Interval), "1 year 2 mons");
        assert_eq!(
            round_trip(r#"{"b":1,"a":[1,2]}"#, SqlType::Jsonb),
            r#"{"a": [1, 2], "b": 1}"#
        );
        assert_eq!(format_float(1e20), "1e+20");
    }

    #[test]
    fn bad_text_is_refused_with_its_sqlstate() {
        assert_eq!(
            parse("abc", SqlType::Int8).unwrap_err().code,
            code::INVALID_TEXT_REPRESENTATION
        );
        assert_eq!(
            parse("99999", SqlType::Int2).unwrap_err().code,
            code::NUMERIC_VALUE_OUT_OF_RANGE
        );
        assert_eq!(
            parse("2024-02-30", SqlType::Date).unwrap_err().code,
            code::INVALID_DATETIME_FORMAT
        );
        assert_eq!(
            parse("not-a-uuid", SqlType::Uuid).unwrap_err().code,
            code::INVALID_TEXT_REPRESENTATION
        );
    }
}
