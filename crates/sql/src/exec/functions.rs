//! The built-in scalar functions: string, number, date and time
//! functions, and the catalog functions clients call (`format_type`, the
//! regular-expression match of psql's patterns, array text).

use std::cmp::Ordering;

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::eval::{as_text, coerce, eval, overflow, Env};
use crate::error::{code, SqlError};
use crate::plan::expr::{Expr, Function};
use crate::types::{cast, Datum, SqlType};

pub(super) fn function(
    f: Function,
    args: &[Expr],
    ty: SqlType,
    row: &[Datum],
    env: &Env,
) -> Result<Datum, SqlError> {
    // Functions that look at their arguments lazily or not at all.
    match f {
        Function::Coalesce => {
            for a in args {
                let v = eval(a, row, env)?;
                if !v.is_null() {
                    return coerce(v, ty);
                }
            }
            return Ok(Datum::Null);
        }
        Function::Now => return Ok(Datum::TimestampTz(env.now_micros)),
        Function::FollowerReadTimestamp => {
            return Ok(Datum::TimestampTz(
                env.now_micros - env.follower_read_offset_micros,
            ));
        }
        Function::WithMaxStaleness => {
            let staleness = super::as_of::staleness_micros(&eval(&args[0], row, env)?)?;
            let back =
                super::as_of::bounded_staleness_micros(staleness, env.follower_read_offset_micros);
            return Ok(Datum::TimestampTz(env.now_micros - back));
        }
        Function::GenRandomUuid => return Ok(Datum::Uuid(uuid::Uuid::new_v4())),
        Function::UniqueRowId => return Ok(Datum::Int((env.row_id)())),
        Function::Random => return Ok(Datum::Float(rand::random::<f64>())),
        Function::Version => {
            return Ok(Datum::Text(format!(
                "PostgreSQL 15.0 (Meridian {}) on x86_64, compatible with PostgreSQL clients",
                env!("CARGO_PKG_VERSION")
            )))
        }
        Function::CurrentDatabase => return Ok(Datum::Text(env.database.to_string())),
        Function::CurrentUser => return Ok(Datum::Text(env.user.to_string())),
        Function::CurrentSchema => return Ok(Datum::Text("public".into())),
        Function::GatewayRegion => {
            return Ok(env
                .region
                .map(|r| Datum::Text(r.to_string()))
                .unwrap_or(Datum::Null))
        }
        Function::DefaultToDatabasePrimaryRegion => {
            let given = eval(&args[0], row, env)?;
            let Some(settings) = &env.multi_region else {
                return Ok(given);
            };
            return Ok(match given {
                Datum::Text(r) if settings.regions.contains(&r) => Datum::Text(r),
                _ => Datum::Text(settings.primary_region.clone()),
            });
        }
        Function::NullFunction => return Ok(Datum::Null),
        _ => {}
    }
    let values: Vec<Datum> = args
        .iter()
        .map(|a| eval(a, row, env))
        .collect::<Result<_, _>>()?;
    if f != Function::Concat
        && values.iter().any(Datum::is_null)
        && f != Function::Greatest
        && f != Function::Least
        // format_type(oid, NULL): the name without a modifier.
        && (f != Function::FormatType || values[0].is_null())
    {
        return Ok(Datum::Null);
    }
    let text_arg = |i: usize| -> String { as_text(values[i].clone()) };
    let int_arg = |i: usize| -> Result<i64, SqlError> {
        match &values[i] {
            Datum::Int(n) => Ok(*n),
            other => match cast::cast(other.clone(), SqlType::Int8, true)? {
                Datum::Int(n) => Ok(n),
                _ => Err(SqlError::mismatch("expected an integer")),
            },
        }
    };
    Ok(match f {
        Function::Abs => match &values[0] {
            Datum::Int(i) => Datum::Int(i.checked_abs().ok_or_else(|| overflow("bigint"))?),
            Datum::Float(x) => Datum::Float(x.abs()),
            Datum::Decimal(d) => Datum::Decimal(d.abs()),
            other => {
                return Err(SqlError::mismatch(format!(
                    "abs of {}",
                    other.natural_type()
                )))
            }
        },
        Function::NullIf => {
            if values[0].sql_cmp(&values[1]) == Some(Ordering::Equal) {
                Datum::Null
            } else {
                values[0].clone()
            }
        }
        Function::Greatest | Function::Least => {
            let mut best: Option<Datum> = None;
            for v in values.into_iter().filter(|v| !v.is_null()) {
                best = Some(match best {
                    None => v,
                    Some(b) => {
                        let ord = v.sort_cmp(&b);
                        let take = if f == Function::Greatest {
                            ord == Ordering::Greater
                        } else {
                            ord == Ordering::Less
                        };
                        if take {
                            v
                        } else {
                            b
                        }
                    }
                });
            }
            match best {
                Some(b) => coerce(b, ty)?,
                None => Datum::Null,
            }
        }
        Function::Length => match &values[0] {
            Datum::Bytes(b) => Datum::Int(b.len() as i64),
            _ => Datum::Int(text_arg(0).chars().count() as i64),
        },
        Function::Lower => Datum::Text(text_arg(0).to_lowercase()),
        Function::Upper => Datum::Text(text_arg(0).to_uppercase()),
        Function::Substring => {
            let s: Vec<char> = text_arg(0).chars().collect();
            let start = int_arg(1)?;
            let end = match values.get(2) {
                Some(_) => {
                    let length = int_arg(2)?;
                    if length < 0 {
                        return Err(SqlError::new(
                            code::INVALID_PARAMETER_VALUE,
                            "negative substring length not allowed",
                        ));
                    }
                    start.saturating_add(length)
                }
                None => i64::MAX,
            };
            let from = (start.max(1) - 1) as usize;
            let to = (end.max(1) - 1).min(s.len() as i64) as usize;
            Datum::Text(if from >= to {
                String::new()
            } else {
                s[from..to].iter().collect()
            })
        }
        Function::Round | Function::Trunc => {
            let places = if values.len() > 1 {
                int_arg(1)? as i32
            } else {
                0
            };
            let strategy = if f == Function::Round {
                RoundingStrategy::MidpointAwayFromZero
            } else {
                RoundingStrategy::ToZero
            };
            match &values[0] {
                Datum::Float(x) => {
                    let factor = 10f64.powi(places);
                    let scaled = x * factor;
                    let r = if f == Function::Round {
                        scaled.round_ties_even()
                    } else {
                        scaled.trunc()
                    };
                    Datum::Float(r / factor)
                }
                other => {
                    let d = match cast::cast(other.clone(), SqlType::Numeric, true)? {
                        Datum::Decimal(d) => d,
                        _ => return Err(SqlError::internal("numeric cast")),
                    };
                    Datum::Decimal(d.round_dp_with_strategy(places.max(0) as u32, strategy))
                }
            }
        }
        Function::Ceil | Function::Floor => match &values[0] {
            Datum::Float(x) => Datum::Float(if f == Function::Ceil {
                x.ceil()
            } else {
                x.floor()
            }),
            Datum::Decimal(d) => Datum::Decimal(if f == Function::Ceil {
                d.ceil()
            } else {
                d.floor()
            }),
            Datum::Int(i) => Datum::Int(*i),
            other => {
                return Err(SqlError::mismatch(format!(
                    "ceil/floor of {}",
                    other.natural_type()
                )))
            }
        },
        Function::Concat => Datum::Text(
            values
                .into_iter()
                .filter(|v| !v.is_null())
                .map(as_text)
                .collect(),
        ),
        Function::Replace => Datum::Text(text_arg(0).replace(&text_arg(1), &text_arg(2))),
        Function::Trim | Function::Ltrim | Function::Rtrim => {
            let s = text_arg(0);
            let chars: Vec<char> = if values.len() > 1 {
                text_arg(1).chars().collect()
            } else {
                vec![' ']
            };
            let trimmed = match f {
                Function::Ltrim => s.trim_start_matches(chars.as_slice()),
                Function::Rtrim => s.trim_end_matches(chars.as_slice()),
                _ => s.trim_matches(chars.as_slice()),
            };
            Datum::Text(trimmed.to_string())
        }
        Function::Left | Function::Right => {
            let s: Vec<char> = text_arg(0).chars().collect();
            let n = int_arg(1)?;
            let count = if n >= 0 {
                (n as usize).min(s.len())
            } else {
                s.len().saturating_sub(n.unsigned_abs() as usize)
            };
            Datum::Text(if f == Function::Left {
                s[..count].iter().collect()
            } else {
                s[s.len() - count..].iter().collect()
            })
        }
        Function::FormatType => {
            let typmod = match values[1] {
                Datum::Null => -1,
                _ => int_arg(1)?,
            };
            Datum::Text(format_type(int_arg(0)?, typmod))
        }
        Function::RegexMatch => {
            let insensitive = values.get(2) == Some(&Datum::Bool(true));
            Datum::Bool(regex_match(&text_arg(0), &text_arg(1), insensitive)?)
        }
        Function::PgGetUserById => Datum::Text(match int_arg(0)? {
            10 => "root".to_string(),
            100 => env.user.to_string(),
            oid => format!("unknown (OID={oid})"),
        }),
        Function::PgEncodingToChar => Datum::Text(match int_arg(0)? {
            6 => "UTF8".into(),
            0 => "SQL_ASCII".into(),
            _ => String::new(),
        }),
        Function::PgGetExpr => Datum::Text(text_arg(0)),
        Function::ArrayToString => Datum::Text(array_elements(&text_arg(0)).join(&text_arg(1))),
        Function::ArrayContains => {
            let needle = text_arg(0);
            Datum::Bool(array_elements(&text_arg(1)).contains(&needle))
        }
        Function::QuoteIdent => Datum::Text(crate::exec::virtual_tables::quote_ident(&text_arg(0))),
        Function::Extract => extract(&text_arg(0), &values[1])?,
        Function::Coalesce
        | Function::Now
        | Function::GenRandomUuid
        | Function::UniqueRowId
        | Function::Random
        | Function::Version
        | Function::CurrentDatabase
        | Function::CurrentUser
        | Function::CurrentSchema
        | Function::GatewayRegion
        | Function::FollowerReadTimestamp
        | Function::WithMaxStaleness
        | Function::DefaultToDatabasePrimaryRegion
        | Function::NullFunction => unreachable!("handled above"),
    })
}

/// What `format_type(oid, typmod)` prints: the type's SQL name, with the
/// length of a (VAR)CHAR whose typmod carries one.
fn format_type(oid: i64, typmod: i64) -> String {
    let length = (typmod >= 4).then(|| (typmod - 4) as u32);
    match (u32::try_from(oid).ok().and_then(SqlType::from_oid), length) {
        (Some(SqlType::Varchar(_)), length) => SqlType::Varchar(length).name(),
        (Some(SqlType::Char(_)), Some(n)) => SqlType::Char(n).name(),
        (Some(SqlType::Char(_)), None) => "character".into(),
        (Some(SqlType::Jsonb), _) if oid == 114 => "json".into(),
        (Some(t), _) => t.name(),
        (None, _) => "???".into(),
    }
}

/// `text ~ pattern`: PostgreSQL's regular expressions as the `regex`
/// crate reads them (the same for the anchors, classes and groups
/// clients send). Compiled patterns are kept per thread.
fn regex_match(text: &str, pattern: &str, insensitive: bool) -> Result<bool, SqlError> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static CACHE: RefCell<HashMap<(String, bool), regex::Regex>> =
            RefCell::new(HashMap::new());
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (pattern.to_string(), insensitive);
        if !cache.contains_key(&key) {
            let re = regex::RegexBuilder::new(pattern)
                .case_insensitive(insensitive)
                .build()
                .map_err(|e| {
                    SqlError::new(
                        code::INVALID_REGULAR_EXPRESSION,
                        format!("invalid regular expression: {e}"),
                    )
                })?;
            if cache.len() >= 64 {
                cache.clear();
            }
            cache.insert(key.clone(), re);
        }
        Ok(cache[&key].is_match(text))
    })
}

/// The elements of an array in its text form (`{a,b,"c d"}`); a value
/// that is not in that form is one element.
fn array_elements(array: &str) -> Vec<String> {
    let Some(inner) = array.strip_prefix('{').and_then(|a| a.strip_suffix('}')) else {
        return vec![array.to_string()];
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => current.extend(chars.next()),
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !inner.is_empty() {
        out.push(current);
    }
    out
}

fn extract(field: &str, value: &Datum) -> Result<Datum, SqlError> {
    const DAY: i64 = 86_400_000_000;
    let micros = match value {
        Datum::Timestamp(t) | Datum::TimestampTz(t) => *t,
        Datum::Date(d) => *d as i64 * DAY,
        other => {
            return Err(SqlError::mismatch(format!(
                "cannot extract from {}",
                other.natural_type()
            )))
        }
    };
    let days = micros.div_euclid(DAY);
    let in_day = micros.rem_euclid(DAY);
    let date =
        time::Date::from_julian_day(days as i32 + 2_440_588).map_err(|_| overflow("timestamp"))?;
    let n: i64 = match field {
        "year" => date.year() as i64,
        "month" => date.month() as i64,
        "day" => date.day() as i64,
        "hour" => in_day / 3_600_000_000,
        "minute" => in_day / 60_000_000 % 60,
        "second" => {
            let seconds = Decimal::from_i64(in_day % 60_000_000).unwrap_or_default()
                / Decimal::from(1_000_000);
            return Ok(Datum::Decimal(seconds));
        }
        "dow" => date.weekday().number_days_from_sunday() as i64,
        "doy" => date.ordinal() as i64,
        "epoch" => {
            return Ok(Datum::Decimal(
                Decimal::from_i64(micros).unwrap_or_default() / Decimal::from(1_000_000),
            ));
        }
        other => {
            return Err(SqlError::new(
                code::INVALID_PARAMETER_VALUE,
                format!("unit \"{other}\" not recognized"),
            ))
        }
    };
    Ok(Datum::Decimal(Decimal::from(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_functions_print_as_postgres_does() {
        assert_eq!(format_type(1043, 24), "character varying(20)");
        assert_eq!(format_type(1043, -1), "character varying");
        assert_eq!(format_type(1042, 9), "character(5)");
        assert_eq!(format_type(20, -1), "bigint");
        assert_eq!(format_type(18, -1), "\"char\"");
        assert_eq!(format_type(99_999, -1), "???");
        assert_eq!(array_elements("{a,\"b,c\",d}"), ["a", "b,c", "d"]);
        assert_eq!(array_elements("{}"), Vec::<String>::new());
        assert_eq!(array_elements("x"), ["x"]);
        assert!(regex_match("accounts", "^(acc.*)$", false).unwrap());
        assert!(regex_match("pg_toast", "^pg_", false).unwrap());
        assert!(regex_match("Key", "key", true).unwrap());
        assert_eq!(
            regex_match("x", "(", false).unwrap_err().code,
            code::INVALID_REGULAR_EXPRESSION
        );
    }
}
