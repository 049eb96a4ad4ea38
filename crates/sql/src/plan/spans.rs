//! Primary-key predicates to key constraints: `pk = e`, `pk IN (...)` and
//! ranges on the first key column not fixed by equalities; for a REGIONAL
//! BY ROW table, equalities on every key column but the region become
//! lookups in any region. The scan's
//! filter keeps every predicate, so a constraint only has to include every
//! matching row, never to exclude every other one.

use crate::catalog::{IndexDirection, TableDescriptor};
use crate::plan::expr::{BinaryOp, Expr};
use crate::types::SqlType;

/// More point lookups than this become a range scan of the common prefix.
const MAX_POINTS: usize = 256;

/// Which primary keys a scan reads.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyConstraint {
    /// Every row.
    Full,
    /// The rows whose primary key equals one of these tuples.
    Points(Vec<Vec<Expr>>),
    /// A REGIONAL BY ROW table's rows whose key columns after the region
    /// equal one of these tuples, in whichever region: looked up in the
    /// gateway's region first, then in the others (locality-optimized
    /// search).
    AnyRegion(Vec<Vec<Expr>>),
    /// The rows whose first key columns equal `eq` and whose next key
    /// column lies within the bounds (`bool`: inclusive).
    Range {
        eq: Vec<Expr>,
        lower: Option<(Expr, bool)>,
        upper: Option<(Expr, bool)>,
    },
}

/// The constraint `conjuncts` (AND-ed predicates over the table's columns,
/// by position) put on `table`'s primary key.
pub fn derive(table: &TableDescriptor, conjuncts: &[Expr], params: &[SqlType]) -> KeyConstraint {
    let key = &table.primary_index.columns;
    if let Some(tuples) = any_region(table, conjuncts, params) {
        return KeyConstraint::AnyRegion(tuples);
    }
    let mut eq_lists: Vec<Vec<Expr>> = Vec::new();
    for (id, direction) in key {
        let position = table.position_of(*id).expect("key column exists");
        let ty = table.columns[position].ty;
        if let Some(values) = equalities(conjuncts, position, ty, params) {
            eq_lists.push(values);
            continue;
        }
        let (lower, upper) = if *direction == IndexDirection::Asc {
            bounds(conjuncts, position, ty, params)
        } else {
            (None, None)
        };
        return range(eq_lists, lower, upper);
    }
    match tuples(&eq_lists) {
        Some(tuples) => KeyConstraint::Points(tuples),
        None => range(eq_lists, None, None),
    }
}

/// Every combination of one value from each list, if there are at most
/// [`MAX_POINTS`].
fn tuples(eq_lists: &[Vec<Expr>]) -> Option<Vec<Vec<Expr>>> {
    let points = eq_lists.iter().map(Vec::len).product::<usize>();
    if points > MAX_POINTS {
        return None;
    }
    let mut tuples: Vec<Vec<Expr>> = vec![Vec::new()];
    for list in eq_lists {
        tuples = tuples
            .into_iter()
            .flat_map(|t| {
                list.iter().map(move |v| {
                    let mut t = t.clone();
                    t.push(v.clone());
                    t
                })
            })
            .collect();
    }
    Some(tuples)
}

/// For a REGIONAL BY ROW table whose region the predicates leave open:
/// the values of the other key columns, if equalities fix them all.
fn any_region(
    table: &TableDescriptor,
    conjuncts: &[Expr],
    params: &[SqlType],
) -> Option<Vec<Vec<Expr>>> {
    let region = table.column_index(table.region_column()?)?;
    let key = &table.primary_index.columns;
    let (first, rest) = key.split_first()?;
    if table.position_of(first.0) != Some(region)
        || rest.is_empty()
        || equalities(conjuncts, region, SqlType::Text, params).is_some()
    {
        return None;
    }
    let mut eq_lists = Vec::new();
    for (id, _) in rest {
        let position = table.position_of(*id)?;
        let ty = table.columns[position].ty;
        eq_lists.push(equalities(conjuncts, position, ty, params)?);
    }
    tuples(&eq_lists)
}

/// A range over the longest prefix of single-value equalities.
fn range(
    eq_lists: Vec<Vec<Expr>>,
    lower: Option<(Expr, bool)>,
    upper: Option<(Expr, bool)>,
) -> KeyConstraint {
    let mut eq = Vec::new();
    let mut complete = true;
    for mut list in eq_lists {
        if list.len() == 1 {
            eq.push(list.pop().expect("one"));
        } else {
            complete = false;
            break;
        }
    }
    let (lower, upper) = if complete {
        (lower, upper)
    } else {
        (None, None)
    };
    if eq.is_empty() && lower.is_none() && upper.is_none() {
        KeyConstraint::Full
    } else {
        KeyConstraint::Range { eq, lower, upper }
    }
}

fn comparable(column: SqlType, value: SqlType) -> bool {
    column == value
        || value == SqlType::Unknown
        || (column.is_integer() && value.is_integer())
        || (column.is_string() && value.is_string())
}

fn usable(e: &Expr, ty: SqlType, params: &[SqlType]) -> bool {
    e.is_row_independent() && comparable(ty, e.ty(params))
}

fn equalities(
    conjuncts: &[Expr],
    position: usize,
    ty: SqlType,
    params: &[SqlType],
) -> Option<Vec<Expr>> {
    for c in conjuncts {
        match c {
            Expr::Binary(BinaryOp::Eq, a, b) => {
                if let (Expr::Column(p, _), v) | (v, Expr::Column(p, _)) = (a.as_ref(), b.as_ref())
                {
                    if *p == position && usable(v, ty, params) {
                        return Some(vec![v.clone()]);
                    }
                }
            }
            Expr::InList {
                expr,
                list,
                negated: false,
            } => {
                if let Expr::Column(p, _) = expr.as_ref() {
                    if *p == position
                        && !list.is_empty()
                        && list.iter().all(|v| usable(v, ty, params))
                    {
                        return Some(list.clone());
                    }
                }
            }
            _ => {}
        }
    }
    None
}

type Bound = Option<(Expr, bool)>;

fn bounds(conjuncts: &[Expr], position: usize, ty: SqlType, params: &[SqlType]) -> (Bound, Bound) {
    let (mut lower, mut upper) = (None, None);
    for c in conjuncts {
        let Expr::Binary(op, a, b) = c else { continue };
        let (op, value) = match (a.as_ref(), b.as_ref()) {
            (Expr::Column(p, _), v) if *p == position => (*op, v),
            (v, Expr::Column(p, _)) if *p == position => (flip(*op), v),
            _ => continue,
        };
        if !usable(value, ty, params) {
            continue;
        }
        match op {
            BinaryOp::Gt => lower = lower.or(Some((value.clone(), false))),
            BinaryOp::GtEq => lower = lower.or(Some((value.clone(), true))),
            BinaryOp::Lt => upper = upper.or(Some((value.clone(), false))),
            BinaryOp::LtEq => upper = upper.or(Some((value.clone(), true))),
            _ => {}
        }
    }
    (lower, upper)
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::descriptor_for_tests;
    use crate::types::Datum;

    fn int(v: i64) -> Expr {
        Expr::Literal(Datum::Int(v), SqlType::Int8)
    }

    fn id() -> Box<Expr> {
        Box::new(Expr::Column(0, SqlType::Int8))
    }

    #[test]
    fn key_predicates_become_points_and_ranges() {
        let t = descriptor_for_tests();
        let eq = Expr::Binary(BinaryOp::Eq, id(), Box::new(int(7)));
        assert_eq!(
            derive(&t, &[eq], &[]),
            KeyConstraint::Points(vec![vec![int(7)]])
        );
        let within = Expr::InList {
            expr: id(),
            list: vec![int(1), int(2)],
            negated: false,
        };
        assert_eq!(
            derive(&t, &[within], &[]),
            KeyConstraint::Points(vec![vec![int(1)], vec![int(2)]])
        );
        let above = Expr::Binary(BinaryOp::Lt, Box::new(int(3)), id());
        assert_eq!(
            derive(&t, &[above], &[]),
            KeyConstraint::Range {
                eq: vec![],
                lower: Some((int(3), false)),
                upper: None
            }
        );
    }

    #[test]
    fn predicates_that_cannot_narrow_leave_a_full_scan() {
        let t = descriptor_for_tests();
        let on_other_column = Expr::Binary(
            BinaryOp::Eq,
            Box::new(Expr::Column(1, SqlType::Text)),
            Box::new(Expr::Literal(Datum::Text("x".into()), SqlType::Text)),
        );
        assert_eq!(derive(&t, &[on_other_column], &[]), KeyConstraint::Full);
        let float = Expr::Binary(
            BinaryOp::Gt,
            id(),
            Box::new(Expr::Literal(Datum::Float(1.5), SqlType::Float8)),
        );
        assert_eq!(
            derive(&t, &[float], &[]),
            KeyConstraint::Full,
            "1.5 would round"
        );
        let column_to_column =
            Expr::Binary(BinaryOp::Eq, id(), Box::new(Expr::Column(2, SqlType::Int8)));
        assert_eq!(derive(&t, &[column_to_column], &[]), KeyConstraint::Full);
    }
}
