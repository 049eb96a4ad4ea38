//! Planning: statements bound to the catalog ([`bind`]) become plan trees
//! of relational operators over bound expressions ([`expr`]). Primary-key
//! predicates become key spans ([`spans`]); what cannot be narrowed stays
//! a filter. The executor (`crate::exec`) runs plans; nothing here does
//! I/O: the tables a statement names are read before binding.

pub mod bind;
pub mod expr;
pub mod spans;

use std::sync::Arc;

use crate::catalog::TableDescriptor;
use crate::types::SqlType;
pub use expr::{AggCall, AggFunc, BinaryOp, Expr, Function};
pub use spans::KeyConstraint;

/// A column of an operator's output.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    /// The table (or alias) it can be qualified with.
    pub table: Option<String>,
    pub ty: SqlType,
    /// Left out of `*` (a table's row id).
    pub hidden: bool,
}

/// A relational operator tree; every operator yields rows of its
/// How a scan locks the rows it reads, so that a concurrent writer of
/// them waits instead of making this transaction restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLocking {
    /// A plain read.
    None,
    /// `SELECT ... FOR UPDATE`: rows read by key are locked by the
    /// leaseholder (`GetForUpdate`); rows of a span scan by intents written
    /// over them.
    ForUpdate,
    /// The input of an `UPDATE` or `DELETE`: rows read by key are locked
    /// at the read (`GetForUpdate`); a span's rows are not, since the
    /// statement's own intents on them follow at once.
    ForWrite,
}

/// [`Plan::columns`].
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Rows computed from expressions (`VALUES`, `SELECT` without `FROM`).
    Values {
        rows: Vec<Vec<Expr>>,
        columns: Vec<OutputColumn>,
    },
    /// Rows of a table's primary index within `keys`.
    Scan {
        table: Arc<TableDescriptor>,
        alias: String,
        keys: KeyConstraint,
        /// Whether the rows read are locked for the transaction.
        locking: RowLocking,
    },
    /// Rows of a virtual table (pg_catalog, information_schema).
    Virtual {
        name: String,
        columns: Vec<OutputColumn>,
    },
    Filter {
        input: Box<Plan>,
        predicate: Expr,
    },
    Project {
        input: Box<Plan>,
        exprs: Vec<Expr>,
        columns: Vec<OutputColumn>,
    },
    /// Nested-loop join; `left_outer` pads unmatched left rows with NULLs.
    Join {
        left: Box<Plan>,
        right: Box<Plan>,
        on: Option<Expr>,
        left_outer: bool,
        /// Pairs of (left column, right column) that the ON condition
        /// requires equal: the join hashes on them.
        equi: Vec<(usize, usize)>,
    },
    /// Groups by `group_by` and computes `aggs`: rows of the group values
    /// followed by the aggregates.
    Aggregate {
        input: Box<Plan>,
        group_by: Vec<Expr>,
        aggs: Vec<AggCall>,
        columns: Vec<OutputColumn>,
    },
    Sort {
        input: Box<Plan>,
        keys: Vec<SortKey>,
    },
    Distinct {
        input: Box<Plan>,
    },
    Limit {
        input: Box<Plan>,
        limit: Option<Expr>,
        offset: Option<Expr>,
    },
    /// UNION / INTERSECT / EXCEPT.
    SetOp {
        left: Box<Plan>,
        right: Box<Plan>,
        op: SetOpKind,
        all: bool,
    },
    /// Keeps only the first `keep` columns (drops sort-only columns).
    Truncate {
        input: Box<Plan>,
        keep: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOpKind {
    Union,
    Intersect,
    Except,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

impl Plan {
    /// The operator's output columns.
    pub fn columns(&self) -> Vec<OutputColumn> {
        match self {
            Plan::Values { columns, .. }
            | Plan::Virtual { columns, .. }
            | Plan::Project { columns, .. }
            | Plan::Aggregate { columns, .. } => columns.clone(),
            Plan::Scan { table, alias, .. } => table
                .columns
                .iter()
                .map(|c| OutputColumn {
                    name: c.name.clone(),
                    table: Some(alias.clone()),
                    ty: c.ty,
                    hidden: c.hidden,
                })
                .collect(),
            Plan::Filter { input, .. }
            | Plan::Sort { input, .. }
            | Plan::Distinct { input }
            | Plan::Limit { input, .. } => input.columns(),
            Plan::Join { left, right, .. } => {
                let mut columns = left.columns();
                columns.extend(right.columns());
                columns
            }
            Plan::SetOp { left, .. } => left.columns(),
            Plan::Truncate { input, keep } => input.columns().into_iter().take(*keep).collect(),
        }
    }
}
