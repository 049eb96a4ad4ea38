//! `AS OF SYSTEM TIME`: the timestamp a historical read runs at.
//!
//! The clause's expression is bound and evaluated like any constant, with
//! `now()` the gateway's clock when the statement arrived, and its value is
//! read as CockroachDB reads it:
//! - a TIMESTAMP or TIMESTAMPTZ: that time (`follower_read_timestamp()`
//!   is one: the node's closed timestamp target plus 1.8 s back, old
//!   enough that every replica has it closed, so reads at it go to the
//!   nearest replica; `with_max_staleness(d)` is another: `d` back, or
//!   `follower_read_timestamp()` if that is fresher, so the read is at
//!   most `d` stale and local wherever the default target allows. It
//!   does not ask the replicas what they have closed, as CockroachDB's
//!   bounded-staleness reads do, so it may be staler than they could
//!   serve);
//! - an INTERVAL, or a string that reads as one (`'-10s'`, `'-1h30m'`,
//!   `'-5 minutes'`): that far back from now;
//! - a number, or a string of one: an HLC timestamp, nanoseconds since
//!   the epoch with the logical counter in the fraction
//!   (`1733580000000000000.0000000001`);
//! - any other string: a timestamp (`'2026-12-07 12:00:00'`).
//!
//! A time in the future is refused (22023). Not here: running the read
//! (the session begins a historical transaction at the result).

use std::time::Duration;

use meridian_hlc::Timestamp;
use sqlparser::ast;

use super::eval::{eval, Env};
use crate::error::{code, SqlError};
use crate::plan::bind::{Binder, Scope};
use crate::types::{text, Datum, SqlType};

/// What `follower_read_timestamp()` leaves beyond the closed timestamp
/// target, for its propagation (CockroachDB's 4.8 s for its 3 s target).
pub const FOLLOWER_READ_MARGIN: Duration = Duration::from_millis(1_800);

/// The closed timestamp target a node has unless told otherwise (as
/// kvserver's `closedts::DEFAULT_TARGET`).
pub const DEFAULT_CLOSED_TIMESTAMP_TARGET: Duration = Duration::from_secs(3);

/// How far back `follower_read_timestamp()` is under the default target.
pub const FOLLOWER_READ_OFFSET: Duration = Duration::from_millis(4_800);

/// How far back `follower_read_timestamp()` is for closed timestamp
/// target `target`.
pub fn follower_read_offset(target: Duration) -> Duration {
    target + FOLLOWER_READ_MARGIN
}

/// The timestamp `at` names, evaluated at `now`, with
/// `follower_read_timestamp()` `follower_read_offset` back.
pub fn resolve(
    at: &ast::Expr,
    now: Timestamp,
    follower_read_offset: Duration,
) -> Result<Timestamp, SqlError> {
    let tables = Default::default();
    let bound = Binder::new(&tables, &[]).bind_expr(at, &Scope::new(&[]), SqlType::Unknown)?;
    let env = Env {
        params: &[],
        now_micros: (now.wall_nanos / 1_000) as i64,
        follower_read_offset_micros: follower_read_offset.as_micros() as i64,
        database: "",
        user: "",
        region: None,
        multi_region: None,
        row_id: &|| 0,
        subqueries: &[],
    };
    let ts = match eval(&bound, &[], &env)? {
        Datum::Timestamp(micros) | Datum::TimestampTz(micros) => from_micros(micros)?,
        Datum::Interval(interval) => back_from(now, interval.approx_micros())?,
        Datum::Int(nanos) => from_nanos_text(&nanos.to_string())?,
        Datum::Decimal(d) => from_nanos_text(&d.to_string())?,
        Datum::Text(s) => from_text(s.trim(), now)?,
        other => {
            return Err(invalid(format!(
                "value of type {} is not a time",
                other.natural_type()
            )))
        }
    };
    if ts > now {
        return Err(invalid("cannot specify timestamp in the future".into()));
    }
    Ok(ts)
}

/// The staleness `with_max_staleness` was given: an INTERVAL or a string
/// that reads as one (`'10s'`, `'5 minutes'`), positive, in microseconds.
pub fn staleness_micros(given: &Datum) -> Result<i128, SqlError> {
    let micros = match given {
        Datum::Interval(interval) => Some(interval.approx_micros()),
        Datum::Text(s) => {
            let s = s.trim();
            compact_interval_micros(&format!("+{}", s.trim_start_matches('+')))
                .or_else(|| text::parse_interval(s).map(|i| i.approx_micros()))
        }
        _ => None,
    };
    match micros {
        Some(micros) if micros > 0 => Ok(micros),
        _ => Err(SqlError::new(
            code::INVALID_PARAMETER_VALUE,
            "with_max_staleness: the staleness must be a positive interval",
        )),
    }
}

/// How far back `with_max_staleness` reads for a bound of `staleness`
/// microseconds: the bound, or the follower-read offset if that is less.
pub fn bounded_staleness_micros(staleness: i128, follower_read_offset_micros: i64) -> i64 {
    staleness.min(follower_read_offset_micros as i128) as i64
}

fn from_text(s: &str, now: Timestamp) -> Result<Timestamp, SqlError> {
    if s.starts_with('-') || s.starts_with('+') {
        let micros = compact_interval_micros(s)
            .or_else(|| text::parse_interval(s).map(|i| i.approx_micros()))
            .ok_or_else(|| invalid(format!("cannot read '{s}' as an interval")))?;
        return back_from(now, micros);
    }
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return from_nanos_text(s);
    }
    match text::parse(s, SqlType::TimestampTz) {
        Ok(Datum::TimestampTz(micros)) => from_micros(micros),
        _ => Err(invalid(format!("cannot read '{s}' as a time"))),
    }
}

/// `now` moved by `micros`, which must not be positive.
fn back_from(now: Timestamp, micros: i128) -> Result<Timestamp, SqlError> {
    if micros > 0 {
        return Err(invalid(format!(
            "interval {micros} µs is in the future: an AS OF interval must be negative"
        )));
    }
    let back = u64::try_from(-micros).unwrap_or(u64::MAX);
    Ok(now.sub_duration(Duration::from_micros(back)))
}

fn from_micros(micros: i64) -> Result<Timestamp, SqlError> {
    let micros = u64::try_from(micros).map_err(|_| invalid("time before 1970".into()))?;
    Ok(Timestamp::new(micros.saturating_mul(1_000), 0))
}

/// `nanos[.logical]`, the logical counter in ten fractional digits.
fn from_nanos_text(s: &str) -> Result<Timestamp, SqlError> {
    let bad = || invalid(format!("cannot read '{s}' as an HLC timestamp"));
    let (wall, fraction) = s.split_once('.').unwrap_or((s, ""));
    let wall: u64 = wall.parse().map_err(|_| bad())?;
    let logical = if fraction.is_empty() {
        0
    } else {
        let digits = format!("{fraction:0<10}");
        digits
            .get(..10)
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?
    };
    if wall == 0 {
        return Err(bad());
    }
    Ok(Timestamp::new(wall, logical))
}

/// CockroachDB's compact durations: `-10s`, `-1h30m`, `-500ms`, `-4.8s`.
fn compact_interval_micros(s: &str) -> Option<i128> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (-1.0, rest),
        None => (1.0, s.strip_prefix('+')?),
    };
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let micros_per = match &rest[..unit_len] {
            "h" => 3_600e6,
            "m" => 60e6,
            "s" => 1e6,
            "ms" => 1e3,
            "us" | "µs" => 1.0,
            _ => return None,
        };
        total += number * micros_per;
        rest = &rest[unit_len..];
    }
    Some((sign * total) as i128)
}

fn invalid(message: String) -> SqlError {
    SqlError::new(
        code::INVALID_PARAMETER_VALUE,
        format!("AS OF SYSTEM TIME: {message}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    const NOW: Timestamp = Timestamp::new(1_765_000_000_000_000_000, 7);

    fn at(expr: &str) -> Result<Timestamp, SqlError> {
        let e = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(expr)
            .unwrap()
            .parse_expr()
            .unwrap();
        resolve(&e, NOW, FOLLOWER_READ_OFFSET)
    }

    fn back(d: Duration) -> Timestamp {
        NOW.sub_duration(d)
    }

    #[test]
    fn intervals_go_back_from_now() {
        assert_eq!(at("'-10s'").unwrap(), back(Duration::from_secs(10)));
        assert_eq!(at("'-1h30m'").unwrap(), back(Duration::from_secs(5400)));
        assert_eq!(at("'-500ms'").unwrap(), back(Duration::from_millis(500)));
        assert_eq!(at("'-5 minutes'").unwrap(), back(Duration::from_secs(300)));
        assert_eq!(
            at("INTERVAL '-2 seconds'").unwrap(),
            back(Duration::from_secs(2))
        );
    }

    #[test]
    fn follower_read_timestamp_follows_the_closed_timestamp_target() {
        let e = Parser::new(&PostgreSqlDialect {})
            .try_with_sql("follower_read_timestamp()")
            .unwrap()
            .parse_expr()
            .unwrap();
        let offset = follower_read_offset(Duration::from_secs(1));
        assert_eq!(offset, Duration::from_millis(2_800));
        let ts = resolve(&e, NOW, offset).unwrap();
        assert_eq!(ts.wall_nanos / 1_000, back(offset).wall_nanos / 1_000);
        assert_eq!(
            follower_read_offset(DEFAULT_CLOSED_TIMESTAMP_TARGET),
            FOLLOWER_READ_OFFSET
        );
    }

    #[test]
    fn follower_read_timestamp_is_the_offset_back_to_the_microsecond() {
        let ts = at("follower_read_timestamp()").unwrap();
        let expected = back(FOLLOWER_READ_OFFSET);
        assert_eq!(ts.wall_nanos / 1_000, expected.wall_nanos / 1_000);
    }

    #[test]
    fn with_max_staleness_reads_at_most_its_bound_back_and_no_staler_than_follower_reads() {
        let micros = |t: Timestamp| t.wall_nanos / 1_000;
        let at_bound = at("with_max_staleness('2s')").unwrap();
        assert_eq!(micros(at_bound), micros(back(Duration::from_secs(2))));
        let capped = at("with_max_staleness(INTERVAL '1 minute')").unwrap();
        assert_eq!(micros(capped), micros(back(FOLLOWER_READ_OFFSET)));
        for bad in ["with_max_staleness('-1s')", "with_max_staleness('soon')"] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMETER_VALUE, "{bad}: {e:?}");
        }
    }

    #[test]
    fn timestamps_and_hlc_decimals_are_read_as_such() {
        assert_eq!(
            at("'2025-12-06 05:46:40'").unwrap(),
            Timestamp::new(1_765_000_000_000_000_000, 0)
        );
        assert_eq!(
            at("1764999999000000000.0000000003").unwrap(),
            Timestamp::new(1_764_999_999_000_000_000, 3)
        );
        assert_eq!(
            at("'1764999999000000000'").unwrap(),
            Timestamp::new(1_764_999_999_000_000_000, 0)
        );
    }

    #[test]
    fn the_future_and_nonsense_are_refused_with_22023() {
        for bad in ["'10s'", "'+1s'", "'tomorrow-ish'", "true", "'2100-01-01'"] {
            let e = at(bad).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMETER_VALUE, "{bad}: {e:?}");
        }
    }
}
