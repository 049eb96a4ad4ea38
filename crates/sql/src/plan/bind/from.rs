//! Binding FROM: tables (and their aliases), CTE references, virtual
//! tables, derived tables, and joins; predicates pushed into the side they
//! read, and into scans as key constraints.

use sqlparser::ast;

use super::{ident, table_name, Binder, Scope};
use crate::error::SqlError;
use crate::plan::expr::{BinaryOp, Expr};
use crate::plan::{spans, KeyConstraint, OutputColumn, Plan, RowLocking};
use crate::types::SqlType;

impl Binder<'_> {
    pub(super) fn bind_from(
        &self,
        from: &[ast::TableWithJoins],
        locking: RowLocking,
    ) -> Result<Plan, SqlError> {
        let mut plan: Option<Plan> = None;
        for item in from {
            let mut joined = self.bind_factor(&item.relation, locking)?;
            for join in &item.joins {
                let right = self.bind_factor(&join.relation, locking)?;
                joined = self.bind_join(joined, right, &join.join_operator)?;
            }
            plan = Some(match plan {
                None => joined,
                Some(left) => Plan::Join {
                    left: Box::new(left),
                    right: Box::new(joined),
                    on: None,
                    left_outer: false,
                    equi: Vec::new(),
                },
            });
        }
        Ok(plan.unwrap_or(Plan::Values {
            rows: vec![Vec::new()],
            columns: Vec::new(),
        }))
    }

    fn bind_factor(
        &self,
        factor: &ast::TableFactor,
        locking: RowLocking,
    ) -> Result<Plan, SqlError> {
        match factor {
            ast::TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return Err(SqlError::unsupported("table functions"));
                }
                let table = table_name(name)?;
                let alias_name = alias
                    .as_ref()
                    .map(|a| ident(&a.name))
                    .unwrap_or_else(|| table.rsplit('.').next().unwrap_or(&table).to_string());
                let alias_columns: Vec<String> = alias
                    .as_ref()
                    .map(|a| a.columns.iter().map(|c| ident(&c.name)).collect())
                    .unwrap_or_default();
                let cte = self
                    .ctes
                    .borrow()
                    .iter()
                    .rev()
                    .find(|(n, _)| *n == table)
                    .map(|(_, p)| p.clone());
                if let Some(plan) = cte {
                    return relabel(plan, &alias_name, &alias_columns);
                }
                if let Some(columns) = crate::exec::virtual_tables::columns(&table) {
                    let plan = Plan::Virtual {
                        name: table,
                        columns,
                    };
                    return relabel(plan, &alias_name, &alias_columns);
                }
                let descriptor = self.table(name)?;
                let plan = Plan::Scan {
                    table: descriptor,
                    alias: alias_name.clone(),
                    keys: KeyConstraint::Full,
                    locking,
                };
                if alias_columns.is_empty() {
                    Ok(plan)
                } else {
                    relabel(plan, &alias_name, &alias_columns)
                }
            }
            ast::TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(SqlError::unsupported("LATERAL"));
                }
                let plan = self.bind_query(subquery)?;
                let (name, columns) = match alias {
                    Some(a) => (
                        ident(&a.name),
                        a.columns.iter().map(|c| ident(&c.name)).collect(),
                    ),
                    None => ("subquery".to_string(), Vec::new()),
                };
                relabel(plan, &name, &columns)
            }
            ast::TableFactor::NestedJoin {
                table_with_joins,
                alias,
                ..
            } => {
                let plan = self.bind_from(std::slice::from_ref(table_with_joins), locking)?;
                match alias {
                    Some(a) => relabel(
                        plan,
                        &ident(&a.name),
                        &a.columns.iter().map(|c| ident(&c.name)).collect::<Vec<_>>(),
                    ),
                    None => Ok(plan),
                }
            }
            other => Err(SqlError::unsupported(format!("FROM {other}"))),
        }
    }

    fn bind_join(
        &self,
        left: Plan,
        right: Plan,
        operator: &ast::JoinOperator,
    ) -> Result<Plan, SqlError> {
        use ast::JoinOperator as J;
        let (constraint, left_outer) = match operator {
            J::Join(c) | J::Inner(c) => (Some(c), false),
            J::Left(c) | J::LeftOuter(c) => (Some(c), true),
            J::CrossJoin(_) => (None, false),
            other => {
                return Err(SqlError::unsupported(
                    format!("join {other:?}")
                        .split('(')
                        .next()
                        .unwrap_or("join")
                        .to_string(),
                ))
            }
        };
        let (lc, rc) = (left.columns(), right.columns());
        let mut all = lc.clone();
        all.extend(rc.iter().cloned());
        let on = match constraint {
            None | Some(ast::JoinConstraint::None) => None,
            Some(ast::JoinConstraint::On(e)) => {
                Some(self.bind_expr(e, &Scope::new(&all), SqlType::Bool)?)
            }
            Some(ast::JoinConstraint::Using(names)) => {
                let mut parts = Vec::new();
                for name in names {
                    let name = table_name(name)?;
                    let l = lc
                        .iter()
                        .position(|c| c.name == name)
                        .ok_or_else(|| SqlError::undefined_column(&name))?;
                    let r = rc
                        .iter()
                        .position(|c| c.name == name)
                        .ok_or_else(|| SqlError::undefined_column(&name))?;
                    parts.push(Expr::Binary(
                        BinaryOp::Eq,
                        Box::new(Expr::Column(l, lc[l].ty)),
                        Box::new(Expr::Column(lc.len() + r, rc[r].ty)),
                    ));
                }
                Expr::and_all(parts)
            }
            Some(ast::JoinConstraint::Natural) => {
                return Err(SqlError::unsupported("NATURAL JOIN"))
            }
        };
        let width = lc.len();
        // Conjuncts over one side only move into that side (for a left
        // join, only the right side's: the left keeps all its rows).
        let mut kept = Vec::new();
        let mut right_only = Vec::new();
        let mut left_only = Vec::new();
        for c in on.map(Expr::conjuncts).unwrap_or_default() {
            match side_of(&c, width) {
                Side::Right => right_only.push(c),
                Side::Left if !left_outer => left_only.push(c),
                _ => kept.push(c),
            }
        }
        let mut left = left;
        if let Some(p) = Expr::and_all(left_only) {
            left = self.push_filter(left, p);
        }
        let mut right = right;
        if let Some(mut p) = Expr::and_all(right_only) {
            p.rewrite(&mut |e| {
                if let Expr::Column(i, _) = e {
                    *i -= width;
                }
            });
            right = self.push_filter(right, p);
        }
        let equi = kept
            .iter()
            .filter_map(|c| match c {
                Expr::Binary(BinaryOp::Eq, a, b) => match (a.as_ref(), b.as_ref()) {
                    (Expr::Column(l, lt), Expr::Column(r, rt))
                        if *l < width && *r >= width && lt == rt =>
                    {
                        Some((*l, *r - width))
                    }
                    (Expr::Column(r, rt), Expr::Column(l, lt))
                        if *l < width && *r >= width && lt == rt =>
                    {
                        Some((*l, *r - width))
                    }
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(Plan::Join {
            left: Box::new(left),
            right: Box::new(right),
            on: Expr::and_all(kept),
            left_outer,
            equi,
        })
    }

    /// Adds `predicate` over `plan`'s rows: into a scan's key constraint
    /// where it narrows it, and as a filter always.
    pub fn push_filter(&self, plan: Plan, predicate: Expr) -> Plan {
        let params = self.current_params();
        match plan {
            Plan::Scan {
                table,
                alias,
                keys: KeyConstraint::Full,
                locking,
            } => {
                let conjuncts = predicate.clone().conjuncts();
                let keys = spans::derive(&table, &conjuncts, &params);
                Plan::Filter {
                    input: Box::new(Plan::Scan {
                        table,
                        alias,
                        keys,
                        locking,
                    }),
                    predicate,
                }
            }
            Plan::Filter {
                input,
                predicate: first,
            } => {
                let both = Expr::Binary(BinaryOp::And, Box::new(first), Box::new(predicate));
                match *input {
                    Plan::Scan {
                        table,
                        alias,
                        locking,
                        ..
                    } => self.push_filter(
                        Plan::Scan {
                            table,
                            alias,
                            keys: KeyConstraint::Full,
                            locking,
                        },
                        both,
                    ),
                    other => Plan::Filter {
                        input: Box::new(other),
                        predicate: both,
                    },
                }
            }
            other => Plan::Filter {
                input: Box::new(other),
                predicate,
            },
        }
    }
}

enum Side {
    Left,
    Right,
    Both,
}

fn side_of(e: &Expr, width: usize) -> Side {
    let (mut left, mut right, mut other) = (false, false, false);
    e.walk(&mut |x| match x {
        Expr::Column(i, _) if *i < width => left = true,
        Expr::Column(..) => right = true,
        Expr::Slot(..) => other = true,
        _ => {}
    });
    match (left, right, other) {
        (true, false, false) => Side::Left,
        (false, true, false) => Side::Right,
        _ => Side::Both,
    }
}

/// Gives a plan's columns a new table name and, optionally, new names.
pub(super) fn relabel(plan: Plan, table: &str, names: &[String]) -> Result<Plan, SqlError> {
    let columns = plan.columns();
    if names.len() > columns.len() {
        return Err(SqlError::syntax(format!(
            "table \"{table}\" has {} columns available but {} columns specified",
            columns.len(),
            names.len()
        )));
    }
    let exprs = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Expr::Column(i, c.ty))
        .collect();
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, c)| OutputColumn {
            name: names.get(i).cloned().unwrap_or(c.name),
            table: Some(table.to_string()),
            ty: c.ty,
            hidden: c.hidden,
        })
        .collect();
    Ok(Plan::Project {
        input: Box::new(plan),
        exprs,
        columns,
    })
}
