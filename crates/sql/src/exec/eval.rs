//! Evaluating bound expressions over a row, with SQL's three-valued logic
//! and PostgreSQL's errors (division by zero, overflow, bad casts).

use std::cmp::Ordering;

use rust_decimal::prelude::{FromPrimitive, ToPrimitive};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{code, SqlError};
use crate::plan::expr::{BinaryOp, Expr, Function};
use crate::types::{cast, text, Datum, Interval, SqlType};

/// What an expression can see besides its row.
pub struct Env<'a> {
    pub params: &'a [Datum],
    /// The transaction's timestamp, in microseconds since the epoch
    /// (`now()`).
    pub now_micros: i64,
    pub database: &'a str,
    pub user: &'a str,
    pub region: Option<&'a str>,
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
fn coerce(d: Datum, ty: SqlType) -> Result<Datum, SqlError> {
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

fn overflow(ty: &str) -> SqlError {
    SqlError::new(
        code::NUMERIC_VALUE_OUT_OF_RANGE,
        format!("{ty} out of range"),
    )
}

fn division_by_zero() -> SqlError {
    SqlError::new(code::DIVISION_BY_ZERO, "division by zero")
}

fn as_text(d: Datum) -> String {
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

fn function(
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
        Function::ToChar => Datum::Text(text_arg(0)),
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

    #[test]
    fn three_valued_logic_and_null_propagation() {
        let null = || Box::new(Expr::Literal(Datum::Null, SqlType::Bool));
        let f = || Box::new(Expr::Literal(Datum::Bool(false), SqlType::Bool));
        let env = Env {
            params: &[],
            now_micros: 0,
            database: "d",
            user: "u",
            region: None,
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
