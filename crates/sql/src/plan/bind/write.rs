//! Binding writes: INSERT (VALUES or a query, defaults, ON CONFLICT,
//! UPSERT), UPDATE and DELETE, each with RETURNING.

use std::sync::Arc;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::query::is_default;
use super::{ident, table_name, Binder, Scope};
use crate::catalog::TableDescriptor;
use crate::error::{code, SqlError};
use crate::plan::expr::Expr;
use crate::plan::{KeyConstraint, OutputColumn, Plan, RowLocking};
use crate::types::{Datum, SqlType};

/// What an INSERT does when the row's primary key exists.
#[derive(Debug, Clone, PartialEq)]
pub enum OnConflict {
    /// 23505 unique_violation.
    Error,
    DoNothing,
    /// Updates the existing row: assignments over the existing row
    /// followed by the proposed one (`excluded`), and an optional WHERE.
    DoUpdate {
        assignments: Vec<(usize, Expr)>,
        predicate: Option<Expr>,
    },
    /// UPSERT: the new row replaces the old one.
    Replace,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertPlan {
    pub table: Arc<TableDescriptor>,
    /// Rows with one value per table column.
    pub source: Plan,
    pub on_conflict: OnConflict,
    pub returning: Option<Returning>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub table: Arc<TableDescriptor>,
    /// The rows to update (full table rows).
    pub input: Plan,
    /// New values by column position, over the old row.
    pub assignments: Vec<(usize, Expr)>,
    pub returning: Option<Returning>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan {
    pub table: Arc<TableDescriptor>,
    pub input: Plan,
    pub returning: Option<Returning>,
}

/// RETURNING: expressions over the written row.
#[derive(Debug, Clone, PartialEq)]
pub struct Returning {
    pub exprs: Vec<Expr>,
    pub columns: Vec<OutputColumn>,
}

impl Binder<'_> {
    pub fn bind_insert(&self, insert: &ast::Insert, upsert: bool) -> Result<InsertPlan, SqlError> {
        let name = match &insert.table {
            ast::TableObject::TableName(name) => name,
            other => return Err(SqlError::unsupported(format!("INSERT INTO {other}"))),
        };
        let table = self.table(name)?;
        let targets: Vec<usize> = if insert.columns.is_empty() {
            (0..table.columns.len())
                .filter(|i| !table.columns[*i].hidden)
                .collect()
        } else {
            insert
                .columns
                .iter()
                .map(|c| {
                    let name = table_name(c)?;
                    table
                        .column_index(&name)
                        .ok_or_else(|| SqlError::undefined_column(&name))
                })
                .collect::<Result<_, _>>()?
        };
        for (i, t) in targets.iter().enumerate() {
            if targets[..i].contains(t) {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!(
                        "column \"{}\" specified more than once",
                        table.columns[*t].name
                    ),
                ));
            }
        }
        let defaults = self.defaults(&table)?;
        let columns = table_columns(&table, &table.name);
        let source = match insert.source.as_deref() {
            None => Plan::Values {
                rows: vec![defaults.clone()],
                columns: columns.clone(),
            },
            Some(query) => match query.body.as_ref() {
                ast::SetExpr::Values(values)
                    if query.order_by.is_none() && query.limit_clause.is_none() =>
                {
                    self.bind_insert_values(&table, &targets, &defaults, values)?
                }
                _ => {
                    let plan = self.bind_query(query)?;
                    let produced = plan.columns();
                    if produced.len() > targets.len() {
                        return Err(SqlError::syntax(
                            "INSERT has more expressions than target columns",
                        ));
                    }
                    if produced.len() < targets.len() {
                        return Err(SqlError::syntax(
                            "INSERT has more target columns than expressions",
                        ));
                    }
                    let mut exprs = defaults.clone();
                    for (k, position) in targets.iter().enumerate() {
                        exprs[*position] = Expr::Column(k, produced[k].ty);
                    }
                    Plan::Project {
                        input: Box::new(plan),
                        exprs,
                        columns: columns.clone(),
                    }
                }
            },
        };
        let on_conflict = match (&insert.on, upsert) {
            (_, true) => OnConflict::Replace,
            (None, false) => OnConflict::Error,
            (Some(ast::OnInsert::OnConflict(c)), false) => self.bind_on_conflict(&table, c)?,
            (Some(other), false) => return Err(SqlError::unsupported(format!("{other}"))),
        };
        let returning = self.bind_returning(&table, insert.returning.as_deref())?;
        Ok(InsertPlan {
            table,
            source,
            on_conflict,
            returning,
        })
    }

    fn bind_insert_values(
        &self,
        table: &TableDescriptor,
        targets: &[usize],
        defaults: &[Expr],
        values: &ast::Values,
    ) -> Result<Plan, SqlError> {
        let empty = Scope::new(&[]);
        let mut rows = Vec::with_capacity(values.rows.len());
        for row in &values.rows {
            if row.content.len() > targets.len() {
                return Err(SqlError::syntax(
                    "INSERT has more expressions than target columns",
                ));
            }
            if row.content.len() < targets.len() {
                return Err(SqlError::syntax(
                    "INSERT has more target columns than expressions",
                ));
            }
            let mut exprs = defaults.to_vec();
            for (e, position) in row.content.iter().zip(targets) {
                if !is_default(e) {
                    exprs[*position] = self.bind_expr(e, &empty, table.columns[*position].ty)?;
                }
            }
            rows.push(exprs);
        }
        Ok(Plan::Values {
            rows,
            columns: table_columns(table, &table.name),
        })
    }

    /// Each column's DEFAULT (NULL where it has none).
    fn defaults(&self, table: &TableDescriptor) -> Result<Vec<Expr>, SqlError> {
        table
            .columns
            .iter()
            .map(|c| match &c.default {
                None => Ok(Expr::Literal(Datum::Null, c.ty)),
                Some(text) => {
                    let e = parse_expr(text)?;
                    self.bind_expr(&e, &Scope::new(&[]), c.ty)
                }
            })
            .collect()
    }

    fn bind_on_conflict(
        &self,
        table: &Arc<TableDescriptor>,
        c: &ast::OnConflict,
    ) -> Result<OnConflict, SqlError> {
        if let Some(ast::ConflictTarget::Columns(names)) = &c.conflict_target {
            let named: Vec<String> = names.iter().map(ident).collect();
            let key: Vec<String> = table
                .primary_key_positions()
                .iter()
                .map(|p| table.columns[*p].name.clone())
                .collect();
            let on_unique_index = table.indexes.iter().any(|i| {
                i.unique
                    && table
                        .index_positions(i)
                        .iter()
                        .map(|p| table.columns[*p].name.clone())
                        .collect::<Vec<_>>()
                        == named
            });
            if named != key && !on_unique_index {
                return Err(SqlError::new(
                    code::INVALID_COLUMN_REFERENCE,
                    "there is no unique or exclusion constraint matching the ON CONFLICT specification",
                ));
            }
            if named != key {
                return Err(SqlError::unsupported(
                    "ON CONFLICT on a secondary unique index",
                ));
            }
        }
        match &c.action {
            ast::OnConflictAction::DoNothing => Ok(OnConflict::DoNothing),
            ast::OnConflictAction::DoUpdate(update) => {
                let mut columns = table_columns(table, &table.name);
                columns.extend(table_columns(table, "excluded"));
                let scope = Scope::new(&columns);
                let assignments = self.bind_assignments(table, &update.assignments, &scope)?;
                let predicate = update
                    .selection
                    .as_ref()
                    .map(|p| self.bind_expr(p, &scope, SqlType::Bool))
                    .transpose()?;
                Ok(OnConflict::DoUpdate {
                    assignments,
                    predicate,
                })
            }
        }
    }

    fn bind_assignments(
        &self,
        table: &TableDescriptor,
        assignments: &[ast::Assignment],
        scope: &Scope,
    ) -> Result<Vec<(usize, Expr)>, SqlError> {
        let mut out: Vec<(usize, Expr)> = Vec::new();
        for a in assignments {
            let name = match &a.target {
                ast::AssignmentTarget::ColumnName(n) => table_name(n)?,
                ast::AssignmentTarget::Tuple(_) => {
                    return Err(SqlError::unsupported("tuple assignment"))
                }
            };
            let position = table
                .column_index(&name)
                .ok_or_else(|| SqlError::undefined_column(&name))?;
            if out.iter().any(|(p, _)| *p == position) {
                return Err(SqlError::new(
                    code::DUPLICATE_COLUMN,
                    format!("multiple assignments to same column \"{name}\""),
                ));
            }
            let ty = table.columns[position].ty;
            let value = if is_default(&a.value) {
                self.defaults(table)?.swap_remove(position)
            } else {
                self.bind_expr(&a.value, scope, ty)?
            };
            out.push((position, value));
        }
        Ok(out)
    }

    pub fn bind_update(&self, update: &ast::Update) -> Result<UpdatePlan, SqlError> {
        if update.from.is_some() {
            return Err(SqlError::unsupported("UPDATE ... FROM"));
        }
        if !update.table.joins.is_empty() {
            return Err(SqlError::unsupported("UPDATE of a join"));
        }
        let (table, alias) = self.write_target(&update.table.relation)?;
        let columns = table_columns(&table, &alias);
        let scope = Scope::new(&columns);
        let assignments = self.bind_assignments(&table, &update.assignments, &scope)?;
        let input = self.write_input(&table, &alias, update.selection.as_ref())?;
        let returning = self.bind_returning(&table, update.returning.as_deref())?;
        Ok(UpdatePlan {
            table,
            input,
            assignments,
            returning,
        })
    }

    pub fn bind_delete(&self, delete: &ast::Delete) -> Result<DeletePlan, SqlError> {
        let from = match &delete.from {
            ast::FromTable::WithFromKeyword(from) | ast::FromTable::WithoutKeyword(from) => from,
        };
        let [target] = from.as_slice() else {
            return Err(SqlError::unsupported("DELETE from several tables"));
        };
        if !target.joins.is_empty() || delete.using.is_some() {
            return Err(SqlError::unsupported("DELETE ... USING"));
        }
        let (table, alias) = self.write_target(&target.relation)?;
        let input = self.write_input(&table, &alias, delete.selection.as_ref())?;
        let returning = self.bind_returning(&table, delete.returning.as_deref())?;
        Ok(DeletePlan {
            table,
            input,
            returning,
        })
    }

    fn write_target(
        &self,
        relation: &ast::TableFactor,
    ) -> Result<(Arc<TableDescriptor>, String), SqlError> {
        match relation {
            ast::TableFactor::Table { name, alias, .. } => {
                let table = self.table(name)?;
                let alias = alias
                    .as_ref()
                    .map(|a| ident(&a.name))
                    .unwrap_or_else(|| table.name.clone());
                Ok((table, alias))
            }
            other => Err(SqlError::unsupported(format!("writing to {other}"))),
        }
    }

    /// The rows an UPDATE or DELETE reads: a scan of the table narrowed by
    /// the WHERE clause.
    fn write_input(
        &self,
        table: &Arc<TableDescriptor>,
        alias: &str,
        selection: Option<&ast::Expr>,
    ) -> Result<Plan, SqlError> {
        let scan = Plan::Scan {
            table: table.clone(),
            alias: alias.to_string(),
            keys: KeyConstraint::Full,
            locking: RowLocking::ForWrite,
        };
        match selection {
            None => Ok(scan),
            Some(e) => {
                let columns = scan.columns();
                let predicate = self.bind_expr(e, &Scope::new(&columns), SqlType::Bool)?;
                Ok(self.push_filter(scan, predicate))
            }
        }
    }

    fn bind_returning(
        &self,
        table: &TableDescriptor,
        items: Option<&[ast::SelectItem]>,
    ) -> Result<Option<Returning>, SqlError> {
        let Some(items) = items else { return Ok(None) };
        let columns = table_columns(table, &table.name);
        let scope = Scope::new(&columns);
        let mut exprs = Vec::new();
        let mut out = Vec::new();
        let params = self.current_params();
        for item in items {
            match item {
                ast::SelectItem::Wildcard(_) => {
                    for (i, c) in columns.iter().enumerate() {
                        if !c.hidden {
                            exprs.push(Expr::Column(i, c.ty));
                            out.push(OutputColumn {
                                table: None,
                                ..c.clone()
                            });
                        }
                    }
                }
                ast::SelectItem::UnnamedExpr(e)
                | ast::SelectItem::ExprWithAlias { expr: e, .. } => {
                    let bound = self.bind_expr(e, &scope, SqlType::Unknown)?;
                    let name = match item {
                        ast::SelectItem::ExprWithAlias { alias, .. } => ident(alias),
                        _ => match e {
                            ast::Expr::Identifier(i) => ident(i),
                            ast::Expr::CompoundIdentifier(p) => {
                                p.last().map(ident).unwrap_or_default()
                            }
                            _ => "?column?".into(),
                        },
                    };
                    out.push(OutputColumn {
                        name,
                        table: None,
                        ty: bound.ty(&params),
                        hidden: false,
                    });
                    exprs.push(bound);
                }
                ast::SelectItem::QualifiedWildcard(..)
                | ast::SelectItem::ExprWithAliases { .. } => {
                    return Err(SqlError::unsupported(format!("{item} in RETURNING")))
                }
            }
        }
        Ok(Some(Returning {
            exprs,
            columns: out,
        }))
    }
}

/// A table's columns as an operator's output, qualified by `alias`.
pub fn table_columns(table: &TableDescriptor, alias: &str) -> Vec<OutputColumn> {
    table
        .columns
        .iter()
        .map(|c| OutputColumn {
            name: c.name.clone(),
            table: Some(alias.to_string()),
            ty: c.ty,
            hidden: c.hidden,
        })
        .collect()
}

/// Parses a stored DEFAULT expression.
pub fn parse_expr(text: &str) -> Result<ast::Expr, SqlError> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::syntax(format!("invalid expression {text}: {e}")))
}
