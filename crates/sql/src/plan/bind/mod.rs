//! Binding: names in a statement resolved against the tables it reads
//! (loaded before binding), expressions typed, parameters' types inferred
//! from their context. Queries are bound in [`query`], expressions in
//! [`expr`], writes in [`write`].

mod expr;
mod from;
mod function;
mod query;
mod write;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use sqlparser::ast;

pub use write::{
    parse_expr as parse_default, DeletePlan, InsertPlan, OnConflict, Returning, UpdatePlan,
};

use super::{OutputColumn, Plan};
use crate::catalog::TableDescriptor;
use crate::error::{code, SqlError};
use crate::types::SqlType;

/// Binds statements against a fixed set of tables.
pub struct Binder<'a> {
    /// The tables the statement may name, by name.
    tables: &'a HashMap<String, Arc<TableDescriptor>>,
    /// Parameter types as inferred so far (`Unknown` until a context
    /// fixes them).
    params: RefCell<Vec<SqlType>>,
    /// Common table expressions in scope, by name.
    ctes: RefCell<Vec<(String, Plan)>>,
    /// Uncorrelated subqueries met so far; an inner one comes before the
    /// one that holds it.
    subqueries: RefCell<Vec<Plan>>,
}

/// The columns an expression can name, and where aggregates go.
pub struct Scope<'s> {
    pub columns: &'s [OutputColumn],
    /// Aggregates met while binding (only where they are allowed).
    aggregates: Option<&'s RefCell<Vec<super::AggCall>>>,
}

impl<'s> Scope<'s> {
    pub fn new(columns: &'s [OutputColumn]) -> Scope<'s> {
        Scope {
            columns,
            aggregates: None,
        }
    }

    fn with_aggregates(
        columns: &'s [OutputColumn],
        aggregates: &'s RefCell<Vec<super::AggCall>>,
    ) -> Scope<'s> {
        Scope {
            columns,
            aggregates: Some(aggregates),
        }
    }

    fn without_aggregates(&self) -> Scope<'s> {
        Scope {
            columns: self.columns,
            aggregates: None,
        }
    }
}

impl<'a> Binder<'a> {
    pub fn new(
        tables: &'a HashMap<String, Arc<TableDescriptor>>,
        param_hints: &[SqlType],
    ) -> Binder<'a> {
        Binder {
            tables,
            params: RefCell::new(param_hints.to_vec()),
            ctes: RefCell::new(Vec::new()),
            subqueries: RefCell::new(Vec::new()),
        }
    }

    /// The subqueries bound so far, in the order they must run.
    pub fn take_subqueries(&self) -> Vec<Plan> {
        std::mem::take(&mut self.subqueries.borrow_mut())
    }

    /// The parameter types, with those no context fixed taken as TEXT.
    pub fn param_types(&self) -> Vec<SqlType> {
        self.params
            .borrow()
            .iter()
            .map(|t| {
                if *t == SqlType::Unknown {
                    SqlType::Text
                } else {
                    *t
                }
            })
            .collect()
    }

    /// The table `name` names.
    pub fn table(&self, name: &ast::ObjectName) -> Result<Arc<TableDescriptor>, SqlError> {
        let name = table_name(name)?;
        self.tables
            .get(&name)
            .cloned()
            .ok_or_else(|| SqlError::undefined_table(&name))
    }

    fn note_param(&self, index: usize) {
        let mut params = self.params.borrow_mut();
        if params.len() <= index {
            params.resize(index + 1, SqlType::Unknown);
        }
    }

    /// Fixes the type of parameter `index` if nothing fixed it yet.
    fn infer_param(&self, index: usize, ty: SqlType) {
        self.note_param(index);
        let mut params = self.params.borrow_mut();
        if params[index] == SqlType::Unknown && ty != SqlType::Unknown {
            params[index] = ty;
        }
    }

    fn current_params(&self) -> Vec<SqlType> {
        self.params.borrow().clone()
    }
}

/// The last part of an object name, as a lower-cased identifier (quoted
/// identifiers keep their case); `public.t` and `defaultdb.public.t` name
/// `t`.
pub fn table_name(name: &ast::ObjectName) -> Result<String, SqlError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(ident)
                .ok_or_else(|| SqlError::syntax(format!("invalid name {name}")))
        })
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [table] => Ok(table.clone()),
        [schema, table]
            if schema == "public" || schema == "pg_catalog" || schema == "information_schema" =>
        {
            if schema == "public" {
                Ok(table.clone())
            } else {
                Ok(format!("{schema}.{table}"))
            }
        }
        [_db, schema, table] if schema == "public" => Ok(table.clone()),
        // `db.table`, CockroachDB's shorthand for `db.public.table`; the
        // executor refuses any `db` but the session's first
        // (`database_qualifier`).
        [_db, table] => Ok(table.clone()),
        _ => Err(SqlError::new(
            code::UNDEFINED_TABLE,
            format!("relation \"{name}\" does not exist"),
        )),
    }
}

/// The database a table name names, if it names one: `db.public.t`, or
/// `db.t` where `db` is not a schema.
pub fn database_qualifier(name: &ast::ObjectName) -> Option<String> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(ident))
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [db, _, _] => Some(db.clone()),
        [qualifier, _] if !SCHEMAS.contains(&qualifier.as_str()) => Some(qualifier.clone()),
        _ => None,
    }
}

/// The schemas a two-part name may start with.
const SCHEMAS: &[&str] = &["public", "pg_catalog", "information_schema"];

/// An identifier as PostgreSQL folds it: lower case unless quoted.
pub fn ident(i: &ast::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}
