//! Aggregation: rows grouped by their group values (hashed), each group
//! with one running state per aggregate (COUNT, SUM, AVG, MIN, MAX,
//! BOOL_AND/OR, STRING_AGG, with DISTINCT).

use std::collections::{HashMap, HashSet};

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::eval::{eval, Env};
use super::query::Row;
use crate::error::{code, SqlError};
use crate::plan::expr::{AggCall, AggFunc, Expr};
use crate::types::{cast, Datum, Interval, SqlType};

/// One aggregate's running state.
enum Acc {
    Count(i64),
    SumInt(i128, bool),
    SumFloat(f64, bool),
    SumDecimal(Decimal, bool),
    SumInterval(Interval, bool),
    Avg(Decimal, f64, i64, bool),
    Extreme(Option<Datum>),
    Bool(Option<bool>),
    Text(Option<String>),
}

impl Acc {
    fn new(call: &AggCall) -> Acc {
        match call.func {
            AggFunc::CountStar | AggFunc::Count => Acc::Count(0),
            AggFunc::Sum => match call.ty {
                SqlType::Float8 => Acc::SumFloat(0.0, false),
                SqlType::Interval => Acc::SumInterval(Interval::default(), false),
                _ if call
                    .args
                    .first()
                    .map(|a| a.ty(&[]).is_integer())
                    .unwrap_or(false) =>
                {
                    Acc::SumInt(0, false)
                }
                _ => Acc::SumDecimal(Decimal::ZERO, false),
            },
            AggFunc::Avg => Acc::Avg(Decimal::ZERO, 0.0, 0, call.ty == SqlType::Float8),
            AggFunc::Min | AggFunc::Max => Acc::Extreme(None),
            AggFunc::BoolAnd | AggFunc::BoolOr => Acc::Bool(None),
            AggFunc::StringAgg => Acc::Text(None),
        }
    }

    fn add(&mut self, call: &AggCall, values: &[Datum]) -> Result<(), SqlError> {
        if call.func == AggFunc::CountStar {
            if let Acc::Count(n) = self {
                *n += 1;
            }
            return Ok(());
        }
        let v = &values[0];
        if v.is_null() {
            return Ok(());
        }
        let overflow = || SqlError::new(code::NUMERIC_VALUE_OUT_OF_RANGE, "numeric out of range");
        match (self, v) {
            (Acc::Count(n), _) => *n += 1,
            (Acc::SumInt(s, seen), Datum::Int(i)) => {
                *s += *i as i128;
                *seen = true;
            }
            (Acc::SumFloat(s, seen), d) => {
                *s += as_f64(d);
                *seen = true;
            }
            (Acc::SumDecimal(s, seen), d) => {
                *s = s.checked_add(as_decimal(d)?).ok_or_else(overflow)?;
                *seen = true;
            }
            (Acc::SumInterval(s, seen), Datum::Interval(i)) => {
                s.months += i.months;
                s.days += i.days;
                s.micros += i.micros;
                *seen = true;
            }
            (Acc::Avg(s, f, n, float), d) => {
                if *float {
                    *f += as_f64(d);
                } else {
                    *s = s.checked_add(as_decimal(d)?).ok_or_else(overflow)?;
                }
                *n += 1;
            }
            (Acc::Extreme(best), d) => {
                let replace = match best {
                    None => true,
                    Some(b) => {
                        let ord = d.sort_cmp(b);
                        if call.func == AggFunc::Min {
                            ord == std::cmp::Ordering::Less
                        } else {
                            ord == std::cmp::Ordering::Greater
                        }
                    }
                };
                if replace {
                    *best = Some(d.clone());
                }
            }
            (Acc::Bool(state), Datum::Bool(b)) => {
                *state = Some(match (call.func, *state) {
                    (AggFunc::BoolAnd, s) => s.unwrap_or(true) && *b,
                    (_, s) => s.unwrap_or(false) || *b,
                });
            }
            (Acc::Text(state), d) => {
                let piece = crate::types::text::format(d).unwrap_or_default();
                let delimiter = values
                    .get(1)
                    .and_then(crate::types::text::format)
                    .unwrap_or_default();
                *state = Some(match state.take() {
                    None => piece,
                    Some(s) => s + &delimiter + &piece,
                });
            }
            (_, d) => {
                return Err(SqlError::mismatch(format!(
                    "cannot aggregate {}",
                    d.natural_type()
                )))
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Datum, SqlError> {
        Ok(match self {
            Acc::Count(n) => Datum::Int(n),
            Acc::SumInt(s, true) => Datum::Decimal(Decimal::from_i128_with_scale(s, 0)),
            Acc::SumFloat(s, true) => Datum::Float(s),
            Acc::SumDecimal(s, true) => Datum::Decimal(s),
            Acc::SumInterval(s, true) => Datum::Interval(s),
            Acc::SumInt(..) | Acc::SumFloat(..) | Acc::SumDecimal(..) | Acc::SumInterval(..) => {
                Datum::Null
            }
            Acc::Avg(_, _, 0, _) => Datum::Null,
            Acc::Avg(_, f, n, true) => Datum::Float(f / n as f64),
            Acc::Avg(s, _, n, false) => {
                let q = s / Decimal::from(n);
                Datum::Decimal(q.round_dp(16.max(s.scale())).normalize())
            }
            Acc::Extreme(best) => best.unwrap_or(Datum::Null),
            Acc::Bool(b) => b.map(Datum::Bool).unwrap_or(Datum::Null),
            Acc::Text(t) => t.map(Datum::Text).unwrap_or(Datum::Null),
        })
    }
}

fn as_f64(d: &Datum) -> f64 {
    match d {
        Datum::Int(i) => *i as f64,
        Datum::Float(f) => *f,
        Datum::Decimal(d) => d.to_f64().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

fn as_decimal(d: &Datum) -> Result<Decimal, SqlError> {
    match d {
        Datum::Int(i) => Ok(Decimal::from(*i)),
        Datum::Decimal(d) => Ok(*d),
        other => match cast::cast(other.clone(), SqlType::Numeric, true)? {
            Datum::Decimal(d) => Ok(d),
            _ => Err(SqlError::internal("numeric cast")),
        },
    }
}

struct Group {
    values: Row,
    accs: Vec<Acc>,
    seen: Vec<HashSet<Vec<u8>>>,
}

pub(super) fn aggregate(
    rows: Vec<Row>,
    group_by: &[Expr],
    aggs: &[AggCall],
    env: &Env,
) -> Result<Vec<Row>, SqlError> {
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Vec<u8>, usize> = HashMap::new();
    let new_group = |values: Row| Group {
        values,
        accs: aggs.iter().map(Acc::new).collect(),
        seen: aggs.iter().map(|_| HashSet::new()).collect(),
    };
    if group_by.is_empty() {
        groups.push(new_group(Vec::new()));
        index.insert(Vec::new(), 0);
    }
    for row in &rows {
        let values: Row = group_by
            .iter()
            .map(|g| eval(g, row, env))
            .collect::<Result<_, _>>()?;
        let mut key = Vec::new();
        for v in &values {
            v.group_key(&mut key);
        }
        let g = match index.get(&key) {
            Some(g) => *g,
            None => {
                groups.push(new_group(values));
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        let group = &mut groups[g];
        for (i, call) in aggs.iter().enumerate() {
            let args: Row = call
                .args
                .iter()
                .map(|a| eval(a, row, env))
                .collect::<Result<_, _>>()?;
            if call.distinct {
                let mut k = Vec::new();
                args[0].group_key(&mut k);
                if !group.seen[i].insert(k) {
                    continue;
                }
            }
            group.accs[i].add(call, &args)?;
        }
    }
    groups
        .into_iter()
        .map(|g| {
            let mut row = g.values;
            for acc in g.accs {
                row.push(acc.finish()?);
            }
            Ok(row)
        })
        .collect()
}
