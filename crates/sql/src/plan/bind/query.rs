//! Binding queries: CTEs, WHERE (pushed into scans by [`super::from`]),
//! GROUP BY and aggregates, HAVING, the select list, DISTINCT, ORDER BY,
//! LIMIT and OFFSET, set operations. FROM is [`super::from`]'s.

use std::cell::RefCell;

use sqlparser::ast;

use super::from::relabel;
use super::{ident, table_name, Binder, Scope};
use crate::error::{code, SqlError};
use crate::plan::expr::Expr;
use crate::plan::{OutputColumn, Plan, RowLocking, SetOpKind, SortKey};
use crate::types::SqlType;

impl Binder<'_> {
    /// Binds a whole query.
    pub fn bind_query(&self, query: &ast::Query) -> Result<Plan, SqlError> {
        let saved = self.ctes.borrow().len();
        if let Some(with) = &query.with {
            if with.recursive {
                return Err(SqlError::unsupported("WITH RECURSIVE"));
            }
            for cte in &with.cte_tables {
                let plan = self.bind_query(&cte.query)?;
                let name = ident(&cte.alias.name);
                let plan = relabel(
                    plan,
                    &name,
                    &cte.alias
                        .columns
                        .iter()
                        .map(|c| ident(&c.name))
                        .collect::<Vec<_>>(),
                )?;
                self.ctes.borrow_mut().push((name, plan));
            }
        }
        let locking = if query.locks.is_empty() {
            RowLocking::None
        } else {
            RowLocking::ForUpdate
        };
        let result = self.bind_query_body(query, locking);
        self.ctes.borrow_mut().truncate(saved);
        result
    }

    fn bind_query_body(&self, query: &ast::Query, locking: RowLocking) -> Result<Plan, SqlError> {
        let order_by: &[ast::OrderByExpr] = match &query.order_by {
            Some(ast::OrderBy {
                kind: ast::OrderByKind::Expressions(exprs),
                ..
            }) => exprs,
            Some(_) => return Err(SqlError::unsupported("ORDER BY ALL")),
            None => &[],
        };
        let mut plan = match query.body.as_ref() {
            ast::SetExpr::Select(select) => self.bind_select(select, order_by, locking)?,
            other => {
                let plan = self.bind_set_expr(other)?;
                self.order_by_output(plan, order_by)?
            }
        };
        let (limit, offset) = match &query.limit_clause {
            None => (None, None),
            Some(ast::LimitClause::LimitOffset { limit, offset, .. }) => {
                (limit.as_ref(), offset.as_ref().map(|o| &o.value))
            }
            Some(ast::LimitClause::OffsetCommaLimit { offset, limit }) => {
                (Some(limit), Some(offset))
            }
        };
        if limit.is_some() || offset.is_some() {
            let empty = Scope::new(&[]);
            let bind = |e: &ast::Expr| -> Result<Option<Expr>, SqlError> {
                if matches!(e, ast::Expr::Value(v) if v.value == ast::Value::Null) {
                    return Ok(None);
                }
                let bound = self.bind_expr(e, &empty, SqlType::Int8)?;
                if !bound.is_row_independent() {
                    return Err(SqlError::syntax("LIMIT and OFFSET must be constants"));
                }
                Ok(Some(bound))
            };
            plan = Plan::Limit {
                input: Box::new(plan),
                limit: limit.map(bind).transpose()?.flatten(),
                offset: offset.map(bind).transpose()?.flatten(),
            };
        }
        if query.fetch.is_some() {
            return Err(SqlError::unsupported("FETCH"));
        }
        Ok(plan)
    }

    fn bind_set_expr(&self, body: &ast::SetExpr) -> Result<Plan, SqlError> {
        match body {
            ast::SetExpr::Select(select) => self.bind_select(select, &[], RowLocking::None),
            ast::SetExpr::Query(query) => self.bind_query(query),
            ast::SetExpr::Values(values) => self.bind_values(values, &[]),
            ast::SetExpr::SetOperation {
                op,
                set_quantifier,
                left,
                right,
            } => {
                let left = self.bind_set_expr(left)?;
                let right = self.bind_set_expr(right)?;
                let (lc, rc) = (left.columns(), right.columns());
                if lc.len() != rc.len() {
                    return Err(SqlError::syntax(format!(
                        "each {op} query must have the same number of columns"
                    )));
                }
                for (l, r) in lc.iter().zip(&rc) {
                    if SqlType::common(l.ty, r.ty).is_none() {
                        return Err(SqlError::mismatch(format!(
                            "{op} types {} and {} cannot be matched",
                            l.ty, r.ty
                        )));
                    }
                }
                let op = match op {
                    ast::SetOperator::Union => SetOpKind::Union,
                    ast::SetOperator::Intersect => SetOpKind::Intersect,
                    ast::SetOperator::Except | ast::SetOperator::Minus => SetOpKind::Except,
                };
                Ok(Plan::SetOp {
                    left: Box::new(left),
                    right: Box::new(right),
                    op,
                    all: matches!(set_quantifier, ast::SetQuantifier::All),
                })
            }
            other => Err(SqlError::unsupported(format!("query {other}"))),
        }
    }

    /// `VALUES (...), (...)`; `hints` are the types of the columns the
    /// rows go to (INSERT), if known.
    pub fn bind_values(&self, values: &ast::Values, hints: &[SqlType]) -> Result<Plan, SqlError> {
        let empty = Scope::new(&[]);
        let width = values.rows.first().map(|r| r.content.len()).unwrap_or(0);
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            if row.content.len() != width {
                return Err(SqlError::syntax("VALUES lists must all be the same length"));
            }
            let bound = row
                .content
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    if is_default(e) {
                        return Err(SqlError::syntax("DEFAULT is not allowed in this context"));
                    }
                    self.bind_expr(e, &empty, hints.get(i).copied().unwrap_or(SqlType::Unknown))
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(bound);
        }
        let params = self.current_params();
        let columns = (0..width)
            .map(|i| {
                let ty = rows
                    .iter()
                    .map(|r| r[i].ty(&params))
                    .find(|t| *t != SqlType::Unknown)
                    .unwrap_or(SqlType::Text);
                OutputColumn {
                    name: format!("column{}", i + 1),
                    table: None,
                    ty,
                    hidden: false,
                }
            })
            .collect();
        Ok(Plan::Values { rows, columns })
    }

    fn bind_select(
        &self,
        select: &ast::Select,
        order_by: &[ast::OrderByExpr],
        locking: RowLocking,
    ) -> Result<Plan, SqlError> {
        if select.having.is_some() && matches!(select.group_by, ast::GroupByExpr::All(_)) {
            return Err(SqlError::unsupported("GROUP BY ALL"));
        }
        // FROM, then WHERE (pushed into scans where it narrows them).
        let mut plan = self.bind_from(&select.from, locking)?;
        let input_columns = plan.columns();
        if let Some(selection) = &select.selection {
            let predicate =
                self.bind_expr(selection, &Scope::new(&input_columns), SqlType::Bool)?;
            plan = self.push_filter(plan, predicate);
        }

        // Aggregation.
        let aggregates = RefCell::new(Vec::new());
        let group_exprs: Vec<Expr> = match &select.group_by {
            ast::GroupByExpr::Expressions(exprs, _) => exprs
                .iter()
                .map(|e| self.bind_group_by(e, &input_columns, &select.projection))
                .collect::<Result<_, _>>()?,
            ast::GroupByExpr::All(_) => return Err(SqlError::unsupported("GROUP BY ALL")),
        };
        let agg_scope = Scope::with_aggregates(&input_columns, &aggregates);

        // The select list, bound over the input.
        let mut items: Vec<(Expr, String)> = Vec::new();
        for item in &select.projection {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    let before = items.len();
                    for (i, c) in input_columns.iter().enumerate() {
                        if !c.hidden {
                            items.push((Expr::Column(i, c.ty), c.name.clone()));
                        }
                    }
                    if items.len() == before && input_columns.is_empty() {
                        return Err(SqlError::syntax(
                            "SELECT * with no tables specified is not valid",
                        ));
                    }
                }
                ast::SelectItem::QualifiedWildcard(kind, _) => {
                    let table = match kind {
                        ast::SelectItemQualifiedWildcardKind::ObjectName(name) => table_name(name)?,
                        ast::SelectItemQualifiedWildcardKind::Expr(e) => {
                            return Err(SqlError::unsupported(format!("{e}.*")))
                        }
                    };
                    let before = items.len();
                    for (i, c) in input_columns.iter().enumerate() {
                        if !c.hidden && c.table.as_deref() == Some(table.as_str()) {
                            items.push((Expr::Column(i, c.ty), c.name.clone()));
                        }
                    }
                    if items.len() == before {
                        return Err(SqlError::new(
                            code::UNDEFINED_TABLE,
                            format!("missing FROM-clause entry for table \"{table}\""),
                        ));
                    }
                }
                ast::SelectItem::UnnamedExpr(e) => {
                    let bound = self.bind_expr(e, &agg_scope, SqlType::Unknown)?;
                    items.push((bound, output_name(e)));
                }
                ast::SelectItem::ExprWithAlias { expr, alias } => {
                    let bound = self.bind_expr(expr, &agg_scope, SqlType::Unknown)?;
                    items.push((bound, ident(alias)));
                }
                ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(SqlError::unsupported("several aliases for one expression"))
                }
            }
        }
        let having = select
            .having
            .as_ref()
            .map(|h| self.bind_expr(h, &agg_scope, SqlType::Bool))
            .transpose()?;

        // ORDER BY: output names and positions first, then expressions
        // over the input (computed as extra, dropped columns).
        let mut sort_keys = Vec::new();
        let mut extra: Vec<Expr> = Vec::new();
        for o in order_by {
            let (descending, nulls_first) = order_options(&o.options);
            let expr = match self.output_reference(&o.expr, &items)? {
                Some(i) => Expr::Column(i, items[i].0.ty(&self.current_params())),
                None => {
                    let bound = self.bind_expr(&o.expr, &agg_scope, SqlType::Unknown)?;
                    match items.iter().position(|(e, _)| *e == bound) {
                        Some(i) => Expr::Column(i, bound.ty(&self.current_params())),
                        None => {
                            let ty = bound.ty(&self.current_params());
                            extra.push(bound);
                            Expr::Column(items.len() + extra.len() - 1, ty)
                        }
                    }
                }
            };
            sort_keys.push(SortKey {
                expr,
                descending,
                nulls_first,
            });
        }

        let aggregated =
            !group_exprs.is_empty() || !aggregates.borrow().is_empty() || having.is_some();
        let params = self.current_params();
        let (mut exprs, names): (Vec<Expr>, Vec<String>) = items.into_iter().unzip();
        exprs.extend(extra.iter().cloned());
        if aggregated {
            let aggs = aggregates.into_inner();
            let mut columns: Vec<OutputColumn> = group_exprs
                .iter()
                .enumerate()
                .map(|(i, e)| OutputColumn {
                    name: format!("group{i}"),
                    table: None,
                    ty: e.ty(&params),
                    hidden: false,
                })
                .collect();
            columns.extend(aggs.iter().enumerate().map(|(i, a)| OutputColumn {
                name: format!("agg{i}"),
                table: None,
                ty: a.ty,
                hidden: false,
            }));
            let lift = |e: Expr| lift_grouped(e, &group_exprs, &input_columns);
            exprs = exprs.into_iter().map(lift).collect::<Result<_, _>>()?;
            let having = having.map(lift).transpose()?;
            plan = Plan::Aggregate {
                input: Box::new(plan),
                group_by: group_exprs.clone(),
                aggs,
                columns,
            };
            if let Some(h) = having {
                plan = Plan::Filter {
                    input: Box::new(plan),
                    predicate: h,
                };
            }
        }
        let visible = names.len();
        let mut columns: Vec<OutputColumn> = names
            .into_iter()
            .zip(&exprs)
            .map(|(name, e)| OutputColumn {
                name,
                table: None,
                ty: resolved(e.ty(&params)),
                hidden: false,
            })
            .collect();
        for (i, e) in extra.iter().enumerate() {
            columns.push(OutputColumn {
                name: format!("sort{i}"),
                table: None,
                ty: e.ty(&params),
                hidden: true,
            });
        }
        plan = Plan::Project {
            input: Box::new(plan),
            exprs,
            columns,
        };
        match &select.distinct {
            None | Some(ast::Distinct::All) => {}
            Some(ast::Distinct::Distinct) => {
                if !extra.is_empty() {
                    return Err(SqlError::new(
                        code::INVALID_COLUMN_REFERENCE,
                        "for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                    ));
                }
                plan = Plan::Distinct {
                    input: Box::new(plan),
                };
            }
            Some(ast::Distinct::On(_)) => return Err(SqlError::unsupported("DISTINCT ON")),
        }
        if !sort_keys.is_empty() {
            plan = Plan::Sort {
                input: Box::new(plan),
                keys: sort_keys,
            };
        }
        if !extra.is_empty() {
            plan = Plan::Truncate {
                input: Box::new(plan),
                keep: visible,
            };
        }
        Ok(plan)
    }

    /// A GROUP BY item: a select-list position, a select-list alias, or
    /// an expression over the input.
    fn bind_group_by(
        &self,
        e: &ast::Expr,
        input: &[OutputColumn],
        projection: &[ast::SelectItem],
    ) -> Result<Expr, SqlError> {
        if let ast::Expr::Value(v) = e {
            if let ast::Value::Number(n, _) = &v.value {
                let position: usize = n
                    .parse()
                    .map_err(|_| SqlError::syntax("invalid GROUP BY position"))?;
                return match projection.get(position.wrapping_sub(1)) {
                    Some(ast::SelectItem::UnnamedExpr(e))
                    | Some(ast::SelectItem::ExprWithAlias { expr: e, .. }) => {
                        self.bind_expr(e, &Scope::new(input), SqlType::Unknown)
                    }
                    _ => Err(SqlError::new(
                        code::INVALID_COLUMN_REFERENCE,
                        format!("GROUP BY position {position} is not in select list"),
                    )),
                };
            }
        }
        match self.bind_expr(e, &Scope::new(input), SqlType::Unknown) {
            Ok(bound) => Ok(bound),
            Err(err) if err.code == code::UNDEFINED_COLUMN => {
                if let ast::Expr::Identifier(name) = e {
                    for item in projection {
                        if let ast::SelectItem::ExprWithAlias { expr, alias } = item {
                            if ident(alias) == ident(name) {
                                return self.bind_expr(expr, &Scope::new(input), SqlType::Unknown);
                            }
                        }
                    }
                }
                Err(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Whether an ORDER BY item names a select-list entry: by position or
    /// by output name.
    fn output_reference(
        &self,
        e: &ast::Expr,
        items: &[(Expr, String)],
    ) -> Result<Option<usize>, SqlError> {
        match e {
            ast::Expr::Value(v) => {
                if let ast::Value::Number(n, _) = &v.value {
                    let position: usize = n
                        .parse()
                        .map_err(|_| SqlError::syntax("invalid ORDER BY position"))?;
                    if position == 0 || position > items.len() {
                        return Err(SqlError::new(
                            code::INVALID_COLUMN_REFERENCE,
                            format!("ORDER BY position {position} is not in select list"),
                        ));
                    }
                    return Ok(Some(position - 1));
                }
                Ok(None)
            }
            ast::Expr::Identifier(name) => {
                let name = ident(name);
                let matches: Vec<usize> = items
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, n))| *n == name)
                    .map(|(i, _)| i)
                    .collect();
                Ok(matches.first().copied())
            }
            _ => Ok(None),
        }
    }

    /// ORDER BY over a set operation or VALUES: output columns only.
    fn order_by_output(&self, plan: Plan, order_by: &[ast::OrderByExpr]) -> Result<Plan, SqlError> {
        if order_by.is_empty() {
            return Ok(plan);
        }
        let columns = plan.columns();
        let items: Vec<(Expr, String)> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (Expr::Column(i, c.ty), c.name.clone()))
            .collect();
        let mut keys = Vec::new();
        for o in order_by {
            let (descending, nulls_first) = order_options(&o.options);
            let expr = match self.output_reference(&o.expr, &items)? {
                Some(i) => items[i].0.clone(),
                None => self.bind_expr(&o.expr, &Scope::new(&columns), SqlType::Unknown)?,
            };
            keys.push(SortKey {
                expr,
                descending,
                nulls_first,
            });
        }
        Ok(Plan::Sort {
            input: Box::new(plan),
            keys,
        })
    }
}

/// Rewrites an expression over the input of an aggregation into one over
/// its output: group expressions become group columns, aggregates their
/// columns; a bare input column left over is a grouping error.
fn lift_grouped(e: Expr, groups: &[Expr], input: &[OutputColumn]) -> Result<Expr, SqlError> {
    if let Some(i) = groups.iter().position(|g| *g == e) {
        let ty = match &e {
            Expr::Column(_, ty) => *ty,
            _ => e.ty(&[]),
        };
        return Ok(Expr::Column(i, ty));
    }
    match e {
        Expr::Slot(k, ty) => Ok(Expr::Column(groups.len() + k, ty)),
        Expr::Column(i, _) => {
            let c = &input[i];
            let name = match &c.table {
                Some(t) => format!("{t}.{}", c.name),
                None => c.name.clone(),
            };
            Err(SqlError::new(
                code::GROUPING_ERROR,
                format!("column \"{name}\" must appear in the GROUP BY clause or be used in an aggregate function"),
            ))
        }
        mut other => {
            for child in other.children_mut() {
                *child = lift_grouped(child.clone(), groups, input)?;
            }
            Ok(other)
        }
    }
}

fn order_options(options: &ast::OrderByOptions) -> (bool, bool) {
    let descending = matches!(options.sort, Some(ast::OrderBySort::Desc));
    // PostgreSQL: NULLs sort as if larger than every value.
    let nulls_first = options.nulls_first.unwrap_or(descending);
    (descending, nulls_first)
}

/// The name PostgreSQL gives an unaliased select-list expression.
fn output_name(e: &ast::Expr) -> String {
    match e {
        ast::Expr::Identifier(i) => ident(i),
        ast::Expr::CompoundIdentifier(parts) => parts.last().map(ident).unwrap_or_default(),
        ast::Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident)
            .unwrap_or_else(|| "?column?".into()),
        ast::Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            ast::Expr::Identifier(_) | ast::Expr::CompoundIdentifier(_) => output_name(expr),
            _ => SqlType::from_sql(data_type)
                .map(|t| match t {
                    SqlType::Int8 => "int8".to_string(),
                    SqlType::Int4 => "int4".to_string(),
                    SqlType::Int2 => "int2".to_string(),
                    SqlType::Float8 => "float8".to_string(),
                    SqlType::Float4 => "float4".to_string(),
                    SqlType::Bool => "bool".to_string(),
                    SqlType::Varchar(_) => "varchar".to_string(),
                    SqlType::Timestamp => "timestamp".to_string(),
                    SqlType::TimestampTz => "timestamptz".to_string(),
                    other => other.name(),
                })
                .unwrap_or_else(|_| "?column?".into()),
        },
        ast::Expr::Nested(inner) => output_name(inner),
        ast::Expr::Case { .. } => "case".into(),
        ast::Expr::Substring { .. } => "substring".into(),
        ast::Expr::Trim { .. } => "btrim".into(),
        ast::Expr::Ceil { .. } => "ceil".into(),
        ast::Expr::Floor { .. } => "floor".into(),
        ast::Expr::Extract { .. } => "extract".into(),
        ast::Expr::Exists { .. } => "exists".into(),
        _ => "?column?".into(),
    }
}

/// Whether `e` is the keyword DEFAULT (a VALUES entry of an INSERT).
pub fn is_default(e: &ast::Expr) -> bool {
    matches!(e, ast::Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
}

/// Untyped results (a bare `NULL` or `'text'`) are reported as TEXT.
fn resolved(ty: SqlType) -> SqlType {
    if ty == SqlType::Unknown {
        SqlType::Text
    } else {
        ty
    }
}
