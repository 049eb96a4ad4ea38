//! Bound scalar expressions: names resolved to column positions, literals
//! parsed, functions looked up. Evaluation is `crate::exec::eval`'s.

use crate::types::{Datum, SqlType};

/// A bound expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A column of the input row, with its type.
    Column(usize, SqlType),
    Literal(Datum, SqlType),
    /// `$n` (0-based here).
    Param(usize),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    IsNull(Box<Expr>, bool),
    /// `a IS [NOT] DISTINCT FROM b`: `true` for NOT DISTINCT.
    IsDistinct(Box<Expr>, Box<Expr>, bool),
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        case_insensitive: bool,
        negated: bool,
    },
    Case {
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
        ty: SqlType,
    },
    Cast(Box<Expr>, SqlType),
    Function(Function, Vec<Expr>, SqlType),
    /// Aggregate `n` of the enclosing aggregation (replaced by a column of
    /// the Aggregate operator's output once the select list is bound).
    Slot(usize, SqlType),
    /// The single value of uncorrelated subquery `index` (NULL when it
    /// returns no row). Subqueries run once, before the statement's plan.
    Subquery(usize, SqlType),
    /// `[NOT] EXISTS (subquery index)`.
    Exists(usize, bool),
    /// `expr [NOT] IN (subquery index)`.
    InSubquery {
        expr: Box<Expr>,
        index: usize,
        negated: bool,
    },
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    /// jsonb `->`
    JsonGet,
    /// jsonb `->>`
    JsonGetText,
}

impl BinaryOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

/// Built-in scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Abs,
    Coalesce,
    NullIf,
    Greatest,
    Least,
    Length,
    Lower,
    Upper,
    Substring,
    Round,
    Trunc,
    Ceil,
    Floor,
    Concat,
    Replace,
    Trim,
    Ltrim,
    Rtrim,
    Left,
    Right,
    Now,
    GenRandomUuid,
    UniqueRowId,
    Version,
    CurrentDatabase,
    CurrentUser,
    CurrentSchema,
    GatewayRegion,
    /// `follower_read_timestamp()`: a time every replica has closed under
    /// the node's closed timestamp target (that target plus 1.8 s ago;
    /// 4.8 s by default).
    FollowerReadTimestamp,
    /// `with_max_staleness(d)`: the freshest time no staler than `d` that
    /// every replica has closed under the default target (see
    /// `exec::as_of`).
    WithMaxStaleness,
    /// `default_to_database_primary_region(r)`: `r` if it is a region of
    /// the current database, else its primary region.
    DefaultToDatabasePrimaryRegion,
    Random,
    /// `pg_catalog.format_type(oid, typmod)`.
    FormatType,
    /// Functions psql's `\d` calls that have nothing to say here:
    /// answered with NULL.
    NullFunction,
    /// `text ~ pattern` (POSIX regular expression; `true` argument 3 for
    /// `~*`, case-insensitive).
    RegexMatch,
    /// `pg_get_userbyid(oid)`: the role's name.
    PgGetUserById,
    /// `pg_encoding_to_char(int)`.
    PgEncodingToChar,
    /// `pg_get_expr(expr, relation)`: the expression's text, which is what
    /// pg_catalog keeps (`pg_attrdef.adbin`).
    PgGetExpr,
    /// `array_to_string(array, separator)` over an array's text form.
    ArrayToString,
    /// `x = ANY(array)` over an array's text form.
    ArrayContains,
    QuoteIdent,
    Extract,
}

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    CountStar,
    Count,
    Sum,
    Avg,
    Min,
    Max,
    BoolAnd,
    BoolOr,
    StringAgg,
}

/// One aggregate computed by an Aggregate operator.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    pub args: Vec<Expr>,
    pub distinct: bool,
    pub ty: SqlType,
}

impl Expr {
    /// The expression's type, given the final parameter types.
    pub fn ty(&self, params: &[SqlType]) -> SqlType {
        match self {
            Expr::Column(_, ty)
            | Expr::Literal(_, ty)
            | Expr::Case { ty, .. }
            | Expr::Cast(_, ty)
            | Expr::Function(_, _, ty)
            | Expr::Slot(_, ty)
            | Expr::Subquery(_, ty) => *ty,
            Expr::Param(i) => params.get(*i).copied().unwrap_or(SqlType::Unknown),
            Expr::Binary(op, left, right) => match op {
                op if op.is_comparison() => SqlType::Bool,
                BinaryOp::And | BinaryOp::Or => SqlType::Bool,
                BinaryOp::Concat | BinaryOp::JsonGetText => SqlType::Text,
                BinaryOp::JsonGet => SqlType::Jsonb,
                _ => arithmetic_type(*op, left.ty(params), right.ty(params)),
            },
            Expr::Not(_)
            | Expr::IsNull(..)
            | Expr::IsDistinct(..)
            | Expr::InList { .. }
            | Expr::InSubquery { .. }
            | Expr::Exists(..)
            | Expr::Like { .. } => SqlType::Bool,
            Expr::Negate(inner) => inner.ty(params),
        }
    }

    /// Whether the expression reads no column of its row (it may read
    /// parameters): it can be computed before any row is read.
    pub fn is_row_independent(&self) -> bool {
        let mut independent = true;
        self.walk(&mut |e| {
            if matches!(e, Expr::Column(..) | Expr::Slot(..)) {
                independent = false;
            }
            if let Expr::Function(f, _, _) = e {
                if matches!(
                    f,
                    Function::Random | Function::GenRandomUuid | Function::UniqueRowId
                ) {
                    independent = false;
                }
            }
        });
        independent
    }

    /// Calls `f` on this expression and every expression inside it.
    pub fn walk(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        for child in self.children() {
            child.walk(f);
        }
    }

    /// The expressions directly inside this one.
    pub fn children(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        match self {
            Expr::Binary(_, a, b) | Expr::IsDistinct(a, b, _) => {
                out.extend([a.as_ref(), b.as_ref()])
            }
            Expr::Not(a) | Expr::Negate(a) | Expr::IsNull(a, _) | Expr::Cast(a, _) => {
                out.push(a.as_ref())
            }
            Expr::InSubquery { expr, .. } => out.push(expr.as_ref()),
            Expr::InList { expr, list, .. } => {
                out.push(expr.as_ref());
                out.extend(list.iter());
            }
            Expr::Like { expr, pattern, .. } => out.extend([expr.as_ref(), pattern.as_ref()]),
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                out.extend(operand.as_deref());
                for (w, t) in whens {
                    out.extend([w, t]);
                }
                out.extend(otherwise.as_deref());
            }
            Expr::Function(_, args, _) => out.extend(args.iter()),
            Expr::Column(..)
            | Expr::Literal(..)
            | Expr::Param(_)
            | Expr::Slot(..)
            | Expr::Subquery(..)
            | Expr::Exists(..) => {}
        }
        out
    }

    /// The expressions directly inside this one, to change.
    pub fn children_mut(&mut self) -> Vec<&mut Expr> {
        let mut out = Vec::new();
        match self {
            Expr::Binary(_, a, b) | Expr::IsDistinct(a, b, _) => {
                out.extend([a.as_mut(), b.as_mut()])
            }
            Expr::Not(a) | Expr::Negate(a) | Expr::IsNull(a, _) | Expr::Cast(a, _) => {
                out.push(a.as_mut())
            }
            Expr::InSubquery { expr, .. } => out.push(expr.as_mut()),
            Expr::InList { expr, list, .. } => {
                out.push(expr.as_mut());
                out.extend(list.iter_mut());
            }
            Expr::Like { expr, pattern, .. } => out.extend([expr.as_mut(), pattern.as_mut()]),
            Expr::Case {
                operand,
                whens,
                otherwise,
                ..
            } => {
                out.extend(operand.as_deref_mut());
                for (w, t) in whens {
                    out.extend([w, t]);
                }
                out.extend(otherwise.as_deref_mut());
            }
            Expr::Function(_, args, _) => out.extend(args.iter_mut()),
            Expr::Column(..)
            | Expr::Literal(..)
            | Expr::Param(_)
            | Expr::Slot(..)
            | Expr::Subquery(..)
            | Expr::Exists(..) => {}
        }
        out
    }

    /// Splits a condition into its AND-ed parts.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::Binary(BinaryOp::And, a, b) => {
                let mut out = a.conjuncts();
                out.extend(b.conjuncts());
                out
            }
            other => vec![other],
        }
    }

    /// The AND of `parts` (`None` when empty).
    pub fn and_all(parts: Vec<Expr>) -> Option<Expr> {
        parts
            .into_iter()
            .reduce(|a, b| Expr::Binary(BinaryOp::And, Box::new(a), Box::new(b)))
    }

    /// Moves every column reference up by `by` positions (the expression
    /// now reads the right side of a join row).
    pub fn shift_columns(&mut self, by: usize) {
        self.rewrite(&mut |e| {
            if let Expr::Column(i, _) = e {
                *i += by;
            }
        });
    }

    /// Calls `f` on every expression inside this one, innermost first.
    pub fn rewrite(&mut self, f: &mut impl FnMut(&mut Expr)) {
        for child in self.children_mut() {
            child.rewrite(f);
        }
        f(self);
    }
}

/// The type of an arithmetic result.
pub fn arithmetic_type(op: BinaryOp, left: SqlType, right: SqlType) -> SqlType {
    use SqlType::*;
    match (op, left, right) {
        (BinaryOp::Add | BinaryOp::Sub, Timestamp | TimestampTz | Date, Interval) => {
            if left == Date {
                Timestamp
            } else {
                left
            }
        }
        (BinaryOp::Add, Interval, Timestamp | TimestampTz) => right,
        (BinaryOp::Add | BinaryOp::Sub, Date, t) if t.is_integer() => Date,
        (BinaryOp::Sub, Date, Date) => Int4,
        (BinaryOp::Sub, Timestamp | TimestampTz, Timestamp | TimestampTz) => Interval,
        (_, Interval, Interval) => Interval,
        _ => match SqlType::common(left, right) {
            Some(Unknown) | None => Numeric,
            Some(t) if t.is_integer() => Int8,
            Some(Float4) => Float8,
            Some(t) => t,
        },
    }
}
