//! Evaluating bound expressions over a row, with SQL's three-valued logic
//! and PostgreSQL's errors (division by zero, overflow, bad casts).

use std::cmp::Ordering;

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::functions::function;
use crate::error::{code, SqlError};
use crate::plan::expr::{BinaryOp, Expr};
use crate::types::{cast, text, Datum, Interval, SqlType};

/// What an expression can see besides its row.
pub struct Env<'a> {
    pub params: &'a [Datum],
    /// The transaction's timestamp, in microseconds since the epoch
    /// (`now()`).
    pub now_micros: i64,
    /// How far back `follower_read_timestamp()` is, in microseconds.
    pub follower_read_offset_micros: i64,
    pub database: &'a str,
    pub user: &'a str,
    pub region: Option<&'a str>,
    /// The current database's multi-region settings, if it has any.
    pub multi_region: Option<meridian_placement::MultiRegionSettings>,
    pub row_id: &'a (dyn Fn() -> i64 + Sync),
    /// The rows of the statement's subqueries, by index.
    pub subqueries: &'a [Vec<Vec<Datum>>],
}

/// Evaluates `e` over `row`.
pub fn eval(e: &Expr, row: &[Datum], env: &Env) -> Result<Datum, SqlError> {
    Ok(match e {
        Expr::Column(i, _) => row
            .get(*i)
            .cloned()
            .ok_or_else(|| SqlError::internal("column out of range"))?,
        Expr::Slot(..) => return Err(SqlError::internal("unlifted expression")),
        Expr::Subquery(index, _) => match subquery(env, *index)? {
            [] => Datum::Null,
            [row] => row.first().cloned().unwrap_or(Datum::Null),
            _ => {
                return Err(SqlError::new(
                    code::CARDINALITY_VIOLATION,
                    "more than one row returned by a subquery used as an expression",
                ))
            }
        },
        Expr::Exists(index, negated) => Datum::Bool(subquery(env, *index)?.is_empty() == *negated),
        Expr::InSubquery {
            expr,
            index,
            negated,
        } => {
            let value = eval(expr, row, env)?;
            let rows = subquery(env, *index)?;
            if value.is_null() {
                return Ok(if rows.is_empty() {
                    Datum::Bool(*negated)
                } else {
                    Datum::Null
                });
            }
            let mut saw_null = false;
            for r in rows {
                let item = r.first().cloned().unwrap_or(Datum::Null);
                match value.sql_cmp(&item) {
                    Some(Ordering::Equal) => return Ok(Datum::Bool(!negated)),
                    None if item.is_null() => saw_null = true,
                    _ => {}
                }
            }
            if saw_null {
                Datum::Null
            } else {
                Datum::Bool(*negated)
            }
        }
        Expr::Literal(d, _) => d.clone(),
        Expr::Param(i) => env.params.get(*i).cloned().ok_or_else(|| {
            SqlError::new(
                code::INVALID_PARAMETER_REFERENCE,
                format!("there is no parameter ${}", i + 1),
            )
        })?,
        Expr::Binary(BinaryOp::And, a, b) => {
            let a = eval(a, row, env)?;
            if a == Datum::Bool(false) {
                return Ok(Datum::Bool(false));
            }
            let b = eval(b, row, env)?;
            match (a, b) {
                (_, Datum::Bool(false)) => Datum::Bool(false),
                (Datum::Bool(true), Datum::Bool(true)) => Datum::Bool(true),
                _ => Datum::Null,
            }
        }
        Expr::Binary(BinaryOp::Or, a, b) => {
            let a = eval(a, row, env)?;
            if a == Datum::Bool(true) {
                return Ok(Datum::Bool(true));
            }
            let b = eval(b, row, env)?;
            match (a, b) {
                (_, Datum::Bool(true)) => Datum::Bool(true),
                (Datum::Bool(false), Datum::Bool(false)) => Datum::Bool(false),
                _ => Datum::Null,
            }
        }
        Expr::Binary(op, a, b) => {
            let (l, r) = (eval(a, row, env)?, eval(b, row, env)?);
            binary(*op, l, r)?
        }
        Expr::Not(a) => match eval(a, row, env)? {
            Datum::Bool(b) => Datum::Bool(!b),
            Datum::Null => Datum::Null,
            other => {
                return Err(SqlError::mismatch(format!(
                    "argument of NOT must be type boolean, not {}",
                    other.natural_type()
                )))
            }
        },
        Expr::Negate(a) => match eval(a, row, env)? {
            Datum::Int(i) => Datum::Int(i.checked_neg().ok_or_else(|| overflow("bigint"))?),
            Datum::Float(f) => Datum::Float(-f),
            Datum::Decimal(d) => Datum::Decimal(-d),
            Datum::Interval(i) => Datum::Interval(Interval {
                months: -i.months,
                days: -i.days,
                micros: -i.micros,
            }),
            Datum::Null => Datum::Null,
            other => {
                return Err(SqlError::mismatch(format!(
                    "cannot negate {}",
                    other.natural_type()
                )))
            }
        },
        Expr::IsNull(a, negated) => Datum::Bool(eval(a, row, env)?.is_null() != *negated),
        Expr::IsDistinct(a, b, not_distinct) => {
            let (l, r) = (eval(a, row, env)?, eval(b, row, env)?);
            Datum::Bool(l.group_eq(&r) == *not_distinct)
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let value = eval(expr, row, env)?;
            if value.is_null() {
                return Ok(Datum::Null);
            }
            let mut saw_null = false;
            let mut found = false;
            for item in list {
                let item = eval(item, row, env)?;
                match value.sql_cmp(&item) {
                    Some(Ordering::Equal) => {
                        found = true;
                        break;
                    }
                    None if item.is_null() => saw_null = true,
                    _ => {}
                }
            }
            match (found, saw_null) {
                (true, _) => Datum::Bool(!negated),
                (false, true) => Datum::Null,
                (false, false) => Datum::Bool(*negated),
            }
        }
        Expr::Like {
            expr,
            pattern,
            case_insensitive,
            negated,
        } => match (eval(expr, row, env)?, eval(pattern, row, env)?) {
            (Datum::Null, _) | (_, Datum::Null) => Datum::Null,
            (value, pattern) => {
                let value = as_text(value);
                let pattern = as_text(pattern);
                let matched = if *case_insensitive {
                    like(&value.to_lowercase(), &pattern.to_lowercase())
                } else {
                    like(&value, &pattern)
                };
                Datum::Bool(matched != *negated)
            }
        },
        Expr::Case {
            operand,
            whens,
            otherwise,
            ty,
        } => {
            let subject = operand.as_ref().map(|o| eval(o, row, env)).transpose()?;
            for (condition, result) in whens {
                let c = eval(condition, row, env)?;
                let hit = match &subject {
                    Some(s) => s.sql_cmp(&c) == Some(Ordering::Equal),
                    None => c.is_true(),
                };
                if hit {
                    return coerce(eval(result, row, env)?, *ty);
                }
            }
            match otherwise {
                Some(o) => coerce(eval(o, row, env)?, *ty)?,
                None => Datum::Null,
            }
        }
        Expr::Cast(a, ty) => cast::cast(eval(a, row, env)?, *ty, true)?,
        Expr::Function(f, args, ty) => function(*f, args, *ty, row, env)?,
    })
}

fn subquery<'e>(env: &'e Env, index: usize) -> Result<&'e [Vec<Datum>], SqlError> {
    env.subqueries
        .get(index)
        .map(Vec::as_slice)
        .ok_or_else(|| SqlError::internal("a subquery did not run"))
}

/// Brings a branch's value to the type of its CASE or COALESCE.
pub(super) fn coerce(d: Datum, ty: SqlType) -> Result<Datum, SqlError> {
    if d.is_null() || ty == SqlType::Unknown || d.natural_type() == ty {
        return Ok(d);
    }
    match (&d, ty) {
        (Datum::Int(_), t) if t.is_integer() => Ok(d),
        (Datum::Text(_), t) if t.is_string() => Ok(d),
        (Datum::Float(_), SqlType::Float4) => Ok(d),
        _ => cast::cast(d, ty, true),
    }
}

pub(super) fn overflow(ty: &str) -> SqlError {
    SqlError::new(
        code::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{ty} out of range"),
    )
}

fn division_by_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero")
}

pub(super) fn as_text(d: Datum) -> String {
    match d {
        Datum::Text(s) => s,
        other => text::format(&other).unwrap_or_default(),
    }
}

/// Applies a binary operator (not AND/OR) to two values.
pub fn binary(op: BinaryOp, l: Datum, r: Datum) -> Result<Datum, SqlError> {
    if op.is_comparison() {
        let ordering = match l.sql_cmp(&r) {
            Some(o) => o,
            None if l.is_null() || r.is_null() => return Ok(Datum::Null),
            None => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!(
                        "cannot compare {} with {}",
                        l.natural_type(),
                        r.natural_type()
                    ),
                ))
            }
        };
        return Ok(Datum::Bool(match op {
            BinaryOp::Eq => ordering == Ordering::Equal,
            BinaryOp::NotEq => ordering != Ordering::Equal,
            BinaryOp::Lt => ordering == Ordering::Less,
            BinaryOp::LtEq => ordering != Ordering::Greater,
            BinaryOp::Gt => ordering == Ordering::Greater,
            BinaryOp::GtEq => ordering != Ordering::Less,
            _ => unreachable!("comparison"),
        }));
    }
    if l.is_null() || r.is_null() {
        return Ok(Datum::Null);
    }
    match op {
        BinaryOp::Concat => Ok(Datum::Text(as_text(l) + &as_text(r))),
        BinaryOp::JsonGet | BinaryOp::JsonGetText => json_get(op, l, r),
        _ => arithmetic(op, l, r),
    }
}

fn json_get(op: BinaryOp, l: Datum, r: Datum) -> Result<Datum, SqlError> {
    let Datum::Json(j) = l else {
        return Err(SqlError::mismatch("operator -> needs a jsonb left operand"));
    };
    let found = match r {
        Datum::Int(i) => match &j {
            serde_json::Value::Array(items) => {
                let index = if i < 0 { items.len() as i64 + i } else { i };
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
            }
            _ => None,
        },
        Datum::Text(key) => j.get(&key).cloned(),
        other => {
            return Err(SqlError::mismatch(format!(
                "cannot index jsonb with {}",
                other.natural_type()
            )))
        }
    };
    Ok(match (found, op) {
        (None, _) => Datum::Null,
        (Some(serde_json::Value::Null), BinaryOp::JsonGetText) => Datum::Null,
        (Some(serde_json::Value::String(s)), BinaryOp::JsonGetText) => Datum::Text(s),
        (Some(v), BinaryOp::JsonGetText) => Datum::Text(text::format_json(&v)),
        (Some(v), _) => Datum::Json(v),
    })
}

fn arithmetic(op: BinaryOp, l: Datum, r: Datum) -> Result<Datum, SqlError> {
    use Datum as D;
    const DAY: i64 = 86_400_000_000;
    Ok(match (l, r) {
        (D::Int(a), D::Int(b)) => D::Int(match op {
            BinaryOp::Add => a.checked_add(b).ok_or_else(|| overflow("bigint"))?,
            BinaryOp::Sub => a.checked_sub(b).ok_or_else(|| overflow("bigint"))?,
            BinaryOp::Mul => a.checked_mul(b).ok_or_else(|| overflow("bigint"))?,
            BinaryOp::Div => {
                if b == 0 {
                    return Err(division_by_zero());
                }
                a.checked_div(b).ok_or_else(|| overflow("bigint"))?
            }
            BinaryOp::Mod => {
                if b == 0 {
                    return Err(division_by_zero());
                }
                a.checked_rem(b).unwrap_or(0)
            }
            _ => unreachable!("arithmetic"),
        }),
        (D::Float(a), D::Float(b)) => float_op(op, a, b)?,
        (D::Float(a), D::Int(b)) => float_op(op, a, b as f64)?,
        (D::Int(a), D::Float(b)) => float_op(op, a as f64, b)?,
        (D::Float(a), D::Decimal(b)) => float_op(op, a, b.to_f64().unwrap_or(f64::NAN))?,
        (D::Decimal(a), D::Float(b)) => float_op(op, a.to_f64().unwrap_or(f64::NAN), b)?,
        (D::Decimal(a), D::Decimal(b)) => decimal_op(op, a, b)?,
        (D::Decimal(a), D::Int(b)) => decimal_op(op, a, Decimal::from(b))?,
        (D::Int(a), D::Decimal(b)) => decimal_op(op, Decimal::from(a), b)?,
        (D::Timestamp(t), D::Interval(i)) => D::Timestamp(shift(t, i, op)?),
        (D::TimestampTz(t), D::Interval(i)) => D::TimestampTz(shift(t, i, op)?),
        (D::Date(d), D::Interval(i)) => D::Timestamp(shift(d as i64 * DAY, i, op)?),
        (D::Interval(i), D::Timestamp(t)) if op == BinaryOp::Add => D::Timestamp(shift(t, i, op)?),
        (D::Interval(i), D::TimestampTz(t)) if op == BinaryOp::Add => {
            D::TimestampTz(shift(t, i, op)?)
        }
        (D::Date(d), D::Int(n)) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let n = i32::try_from(n).map_err(|_| overflow("date"))?;
            D::Date(if op == BinaryOp::Add { d + n } else { d - n })
        }
        (D::Date(a), D::Date(b)) if op == BinaryOp::Sub => D::Int((a - b) as i64),
        (D::Timestamp(a) | D::TimestampTz(a), D::Timestamp(b) | D::TimestampTz(b))
            if op == BinaryOp::Sub =>
        {
            let micros = a - b;
            D::Interval(Interval {
                months: 0,
                days: (micros / DAY) as i32,
                micros: micros % DAY,
            })
        }
        (D::Interval(a), D::Interval(b)) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let sign = if op == BinaryOp::Add { 1 } else { -1 };
            D::Interval(Interval {
                months: a.months + sign * b.months,
                days: a.days + sign * b.days,
                micros: a.micros + sign as i64 * b.micros,
            })
        }
        (l, r) => {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!(
                    "operator does not exist: {} {op:?} {}",
                    l.natural_type(),
                    r.natural_type()
                ),
            ))
        }
    })
}

fn shift(t: i64, i: Interval, op: BinaryOp) -> Result<i64, SqlError> {
    const DAY: i64 = 86_400_000_000;
    let sign = match op {
        BinaryOp::Add => 1,
        BinaryOp::Sub => -1,
        _ => {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                "only + and - apply to a timestamp and an interval",
            ))
        }
    };
    let mut t = t;
    if i.months != 0 {
        t = add_months(t, sign * i.months)?;
    }
    t.checked_add(sign as i64 * (i.days as i64 * DAY + i.micros))
        .ok_or_else(|| overflow("timestamp"))
}

fn add_months(t: i64, months: i32) -> Result<i64, SqlError> {
    const DAY: i64 = 86_400_000_000;
    let days = t.div_euclid(DAY);
    let in_day = t.rem_euclid(DAY);
    let date =
        time::Date::from_julian_day(days as i32 + 2_440_588).map_err(|_| overflow("timestamp"))?;
    let total = date.year() * 12 + (date.month() as i32 - 1) + months;
    let (year, month) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u8);
    let month = time::Month::try_from(month).map_err(|_| overflow("timestamp"))?;
    let day = date.day().min(month.length(year));
    let shifted =
        time::Date::from_calendar_date(year, month, day).map_err(|_| overflow("timestamp"))?;
    Ok((shifted.to_julian_day() as i64 - 2_440_588) * DAY + in_day)
}

fn float_op(op: BinaryOp, a: f64, b: f64) -> Result<Datum, SqlError> {
    Ok(Datum::Float(match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => {
            if b == 0.0 {
                return Err(division_by_zero());
            }
            a / b
        }
        BinaryOp::Mod => {
            if b == 0.0 {
                return Err(division_by_zero());
            }
            a % b
        }
        _ => unreachable!("arithmetic"),
    }))
}

fn decimal_op(op: BinaryOp, a: Decimal, b: Decimal) -> Result<Datum, SqlError> {
    let result = match op {
        BinaryOp::Add => a.checked_add(b),
        BinaryOp::Sub => a.checked_sub(b),
        BinaryOp::Mul => a.checked_mul(b),
        BinaryOp::Div => {
            if b.is_zero() {
                return Err(division_by_zero());
            }
            // Up to 20 decimal places, trailing zeros dropped but never
            // fewer places than the operands have.
            a.checked_div(b).map(|q| {
                let mut q = q
                    .round_dp_with_strategy(20, RoundingStrategy::MidpointAwayFromZero)
                    .normalize();
                let scale = a.scale().max(b.scale());
                if q.scale() < scale {
                    q.rescale(scale);
                }
                q
            })
        }
        BinaryOp::Mod => {
            if b.is_zero() {
                return Err(division_by_zero());
            }
            a.checked_rem(b)
        }
        _ => unreachable!("arithmetic"),
    };
    result
        .map(Datum::Decimal)
        .ok_or_else(|| overflow("numeric"))
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes.
pub fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    fn matches(v: &[char], p: &[char]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some('%') => (0..=v.len()).any(|i| matches(&v[i..], &p[1..])),
            Some('_') => !v.is_empty() && matches(&v[1..], &p[1..]),
            Some('\\') if p.len() > 1 => v.first() == Some(&p[1]) && matches(&v[1..], &p[2..]),
            Some(c) => v.first() == Some(c) && matches(&v[1..], &p[1..]),
        }
    }
    matches(&v, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_valued_logic_and_null_propagation() {
        let null = || Box::new(Expr::Literal(Datum::Null, SqlType::Bool));
        let f = || Box::new(Expr::Literal(Datum::Bool(false), SqlType::Bool));
        let env = Env {
            params: &[],
            now_micros: 0,
            follower_read_offset_micros: 0,
            database: "d",
            user: "u",
            region: None,
            multi_region: None,
            row_id: &|| 1,
            subqueries: &[],
        };
        assert_eq!(
            eval(&Expr::Binary(BinaryOp::And, null(), f()), &[], &env).unwrap(),
            Datum::Bool(false)
        );
        assert_eq!(
            eval(&Expr::Binary(BinaryOp::Or, null(), f()), &[], &env).unwrap(),
            Datum::Null
        );
        assert_eq!(
            binary(BinaryOp::Add, Datum::Int(1), Datum::Null).unwrap(),
            Datum::Null
        );
    }

    #[test]
    fn arithmetic_errors_carry_their_sqlstate() {
        assert_eq!(
            binary(BinaryOp::Div, Datum::Int(1), Datum::Int(0))
                .unwrap_err()
                .code,
            code::DIVISION_BY_ZERO
        );
        assert_eq!(
            binary(BinaryOp::Add, Datum::Int(i64::MAX), Datum::Int(1))
                .unwrap_err()
                .code,
            code::NUMERIC_VALUE_OUT_OF_RANGE
        );
        assert_eq!(
            binary(
                BinaryOp::Mul,
                Datum::Int(6),
                Datum::Decimal(Decimal::new(15, 1))
            )
            .unwrap(),
            Datum::Decimal(Decimal::new(90, 1))
        );
    }

    #[test]
    fn like_patterns() {
        assert!(like("hello", "h%o"));
        assert!(like("hello", "_ello"));
        assert!(!like("hello", "h_o"));
        assert!(like("50%", "50\\%"));
    }

    #[test]
    fn months_are_added_on_the_calendar() {
        const DAY: i64 = 86_400_000_000;
        // 2024-01-31 + 1 month = 2024-02-29.
        let jan31 = (time::macros::date!(2024 - 01 - 31).to_julian_day() as i64 - 2_440_588) * DAY;
        let feb29 = (time::macros::date!(2024 - 02 - 29).to_julian_day() as i64 - 2_440_588) * DAY;
        assert_eq!(add_months(jan31, 1).unwrap(), feb29);
    }
}
