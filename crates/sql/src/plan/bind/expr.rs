//! Binding scalar expressions: column names to positions, literals to
//! values of the type their context wants, operators and functions to
//! their typed forms.

use sqlparser::ast;

use super::{ident, Binder, Scope};
use crate::error::{code, SqlError};
use crate::plan::expr::{arithmetic_type, BinaryOp, Expr, Function};
use crate::types::{cast, text, Datum, SqlType};

impl Binder<'_> {
    /// Binds `e` in `scope`; `hint` is the type the context expects
    /// (`Unknown`: none), which untyped literals and parameters take.
    pub fn bind_expr(&self, e: &ast::Expr, scope: &Scope, hint: SqlType) -> Result<Expr, SqlError> {
        let bound = self.bind_expr_inner(e, scope, hint)?;
        self.apply_hint(bound, hint)
    }

    /// Gives an untyped literal or parameter the type `hint`.
    pub(super) fn apply_hint(&self, e: Expr, hint: SqlType) -> Result<Expr, SqlError> {
        if hint == SqlType::Unknown {
            return Ok(e);
        }
        match e {
            Expr::Literal(Datum::Text(s), SqlType::Unknown) => {
                Ok(Expr::Literal(text::parse(&s, hint)?, hint))
            }
            Expr::Literal(Datum::Null, SqlType::Unknown) => Ok(Expr::Literal(Datum::Null, hint)),
            Expr::Param(i) => {
                self.infer_param(i, hint);
                Ok(Expr::Param(i))
            }
            other => Ok(other),
        }
    }

    fn bind_expr_inner(
        &self,
        e: &ast::Expr,
        scope: &Scope,
        hint: SqlType,
    ) -> Result<Expr, SqlError> {
        use ast::Expr as A;
        Ok(match e {
            A::Identifier(i) => self.column(scope, None, &ident(i))?,
            A::CompoundIdentifier(parts) => {
                let names: Vec<String> = parts.iter().map(ident).collect();
                match names.as_slice() {
                    [table, column] => self.column(scope, Some(table), column)?,
                    [_, table, column] | [_, _, table, column] => {
                        self.column(scope, Some(table), column)?
                    }
                    _ => return Err(SqlError::syntax(format!("invalid name {e}"))),
                }
            }
            A::Value(v) => {
                let bound = literal(&v.value)?;
                if let Expr::Param(i) = bound {
                    self.note_param(i);
                }
                bound
            }
            A::TypedString(ts) => {
                let ty = SqlType::from_sql(&ts.data_type)?;
                let s = value_text(&ts.value.value)?;
                Expr::Literal(text::parse(&s, ty)?, ty)
            }
            A::Nested(inner) => self.bind_expr_inner(inner, scope, hint)?,
            // One collation (C.UTF-8) is all there is: COLLATE changes
            // nothing.
            A::Collate { expr, .. } => self.bind_expr_inner(expr, scope, hint)?,
            A::AnyOp {
                left,
                compare_op: ast::BinaryOperator::Eq,
                right,
                is_some: false,
            } => {
                // `x = ANY(array)`, over an array's text form.
                let l = self.bind_expr(left, scope, SqlType::Text)?;
                let r = self.bind_expr(right, scope, SqlType::Text)?;
                Expr::Function(Function::ArrayContains, vec![l, r], SqlType::Bool)
            }
            A::UnaryOp { op, expr } => match op {
                ast::UnaryOperator::Not => {
                    Expr::Not(Box::new(self.bind_expr(expr, scope, SqlType::Bool)?))
                }
                ast::UnaryOperator::Minus => {
                    if let A::Value(v) = expr.as_ref() {
                        if let ast::Value::Number(n, _) = &v.value {
                            return literal(&ast::Value::Number(format!("-{n}"), false));
                        }
                    }
                    let inner = self.bind_expr(expr, scope, hint)?;
                    require_numeric(&inner, &self.current_params(), "-")?;
                    Expr::Negate(Box::new(inner))
                }
                ast::UnaryOperator::Plus => self.bind_expr_inner(expr, scope, hint)?,
                other => return Err(SqlError::unsupported(format!("operator {other}"))),
            },
            A::BinaryOp { left, op, right } => self.bind_binary(left, op, right, scope)?,
            A::IsNull(inner) => Expr::IsNull(
                Box::new(self.bind_expr(inner, scope, SqlType::Unknown)?),
                false,
            ),
            A::IsNotNull(inner) => Expr::IsNull(
                Box::new(self.bind_expr(inner, scope, SqlType::Unknown)?),
                true,
            ),
            A::IsTrue(inner) => self.is_bool(inner, scope, true, false)?,
            A::IsNotTrue(inner) => self.is_bool(inner, scope, true, true)?,
            A::IsFalse(inner) => self.is_bool(inner, scope, false, false)?,
            A::IsNotFalse(inner) => self.is_bool(inner, scope, false, true)?,
            A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
                let (a, b) = self.bind_pair(a, b, scope)?;
                Expr::IsDistinct(
                    Box::new(a),
                    Box::new(b),
                    matches!(e, A::IsNotDistinctFrom(..)),
                )
            }
            A::InList {
                expr,
                list,
                negated,
            } => {
                let bound = self.bind_expr(expr, scope, SqlType::Unknown)?;
                let ty = bound.ty(&self.current_params());
                let list = list
                    .iter()
                    .map(|item| self.bind_expr(item, scope, ty))
                    .collect::<Result<Vec<_>, _>>()?;
                let params = self.current_params();
                for item in &list {
                    self.require_comparable(&bound, item, &params, "IN")?;
                }
                Expr::InList {
                    expr: Box::new(bound),
                    list,
                    negated: *negated,
                }
            }
            A::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let bound = self.bind_expr(expr, scope, SqlType::Unknown)?;
                let ty = bound.ty(&self.current_params());
                let low = self.bind_expr(low, scope, ty)?;
                let high = self.bind_expr(high, scope, ty)?;
                let within = Expr::Binary(
                    BinaryOp::And,
                    Box::new(Expr::Binary(
                        BinaryOp::GtEq,
                        Box::new(bound.clone()),
                        Box::new(low),
                    )),
                    Box::new(Expr::Binary(
                        BinaryOp::LtEq,
                        Box::new(bound),
                        Box::new(high),
                    )),
                );
                if *negated {
                    Expr::Not(Box::new(within))
                } else {
                    within
                }
            }
            A::Like {
                negated,
                expr,
                pattern,
                escape_char: None,
                ..
            }
            | A::ILike {
                negated,
                expr,
                pattern,
                escape_char: None,
                ..
            } => Expr::Like {
                expr: Box::new(self.bind_expr(expr, scope, SqlType::Text)?),
                pattern: Box::new(self.bind_expr(pattern, scope, SqlType::Text)?),
                case_insensitive: matches!(e, A::ILike { .. }),
                negated: *negated,
            },
            A::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.bind_case(
                operand.as_deref(),
                conditions,
                else_result.as_deref(),
                scope,
                hint,
            )?,
            A::Cast {
                expr, data_type, ..
            } => {
                let ty = SqlType::from_sql(data_type)?;
                let inner = self.bind_expr(expr, scope, SqlType::Unknown)?;
                match inner {
                    // A typed literal: cast now, so `'1'::INT` is a
                    // constant key for span derivation.
                    Expr::Literal(d, _) => Expr::Literal(cast::cast(d, ty, true)?, ty),
                    Expr::Param(i) => {
                        self.infer_param(i, ty);
                        Expr::Cast(Box::new(Expr::Param(i)), ty)
                    }
                    other => Expr::Cast(Box::new(other), ty),
                }
            }
            A::Function(f) => self.bind_function(f, scope)?,
            A::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.bind_expr(expr, scope, SqlType::Text)?];
                args.push(match substring_from {
                    Some(from) => self.bind_expr(from, scope, SqlType::Int8)?,
                    None => Expr::Literal(Datum::Int(1), SqlType::Int8),
                });
                if let Some(length) = substring_for {
                    args.push(self.bind_expr(length, scope, SqlType::Int8)?);
                }
                Expr::Function(Function::Substring, args, SqlType::Text)
            }
            A::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                let func = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Function::Ltrim,
                    Some(ast::TrimWhereField::Trailing) => Function::Rtrim,
                    _ => Function::Trim,
                };
                let mut args = vec![self.bind_expr(expr, scope, SqlType::Text)?];
                if let Some(what) = trim_what {
                    args.push(self.bind_expr(what, scope, SqlType::Text)?);
                }
                Expr::Function(func, args, SqlType::Text)
            }
            A::Ceil { expr, .. } => {
                let arg = self.bind_expr(expr, scope, SqlType::Numeric)?;
                let ty = arg.ty(&self.current_params());
                Expr::Function(Function::Ceil, vec![arg], ty)
            }
            A::Floor { expr, .. } => {
                let arg = self.bind_expr(expr, scope, SqlType::Numeric)?;
                let ty = arg.ty(&self.current_params());
                Expr::Function(Function::Floor, vec![arg], ty)
            }
            A::Extract { field, expr, .. } => {
                let field =
                    Expr::Literal(Datum::Text(field.to_string().to_lowercase()), SqlType::Text);
                let arg = self.bind_expr(expr, scope, SqlType::TimestampTz)?;
                Expr::Function(Function::Extract, vec![field, arg], SqlType::Numeric)
            }
            A::Interval(interval) => {
                let value = match interval.value.as_ref() {
                    A::Value(v) => value_text(&v.value)?,
                    other => return Err(SqlError::unsupported(format!("INTERVAL {other}"))),
                };
                let mut text_form = value;
                if let Some(field) = &interval.leading_field {
                    text_form = format!("{text_form} {field}");
                }
                Expr::Literal(
                    text::parse(&text_form, SqlType::Interval)?,
                    SqlType::Interval,
                )
            }
            A::Subquery(query) => {
                let (index, ty) = self.bind_subquery(query, scope)?;
                Expr::Subquery(index, ty)
            }
            A::Exists { subquery, negated } => {
                let plan = self.bind_subquery_plan(subquery, scope)?;
                Expr::Exists(self.push_subquery(plan), *negated)
            }
            A::InSubquery {
                expr,
                subquery,
                negated,
            } => {
                let bound = self.bind_expr(expr, scope, SqlType::Unknown)?;
                let (index, ty) = self.bind_subquery(subquery, scope)?;
                let bound = self.apply_hint(bound, ty)?;
                let params = self.current_params();
                self.require_comparable(&bound, &Expr::Subquery(index, ty), &params, "IN")?;
                Expr::InSubquery {
                    expr: Box::new(bound),
                    index,
                    negated: *negated,
                }
            }
            other => return Err(SqlError::unsupported(format!("expression {other}"))),
        })
    }

    /// Binds a subquery that must return one column: its index and type.
    fn bind_subquery(
        &self,
        query: &ast::Query,
        scope: &Scope,
    ) -> Result<(usize, SqlType), SqlError> {
        let plan = self.bind_subquery_plan(query, scope)?;
        let columns = plan.columns();
        let visible: Vec<_> = columns.iter().filter(|c| !c.hidden).collect();
        if visible.len() != 1 {
            return Err(SqlError::syntax("subquery must return only one column"));
        }
        let ty = visible[0].ty;
        Ok((self.push_subquery(plan), ty))
    }

    /// Binds a subquery on its own; one that names a column of the
    /// enclosing query (a correlated subquery) is refused, as not built yet.
    fn bind_subquery_plan(
        &self,
        query: &ast::Query,
        scope: &Scope,
    ) -> Result<crate::plan::Plan, SqlError> {
        self.bind_query(query).map_err(|e| {
            let quoted = |name: &str| e.message.contains(&format!("\"{name}\""));
            let names_outer = (e.code == code::UNDEFINED_COLUMN || e.code == code::UNDEFINED_TABLE)
                && scope
                    .columns
                    .iter()
                    .any(|c| quoted(&c.name) || c.table.as_deref().is_some_and(quoted));
            if names_outer {
                SqlError::unsupported(
                    "a correlated subquery (one that reads a column of the enclosing query)",
                )
            } else {
                e
            }
        })
    }

    fn push_subquery(&self, plan: crate::plan::Plan) -> usize {
        let mut list = self.subqueries.borrow_mut();
        list.push(plan);
        list.len() - 1
    }

    fn column(&self, scope: &Scope, table: Option<&str>, name: &str) -> Result<Expr, SqlError> {
        let mut found = None;
        for (i, column) in scope.columns.iter().enumerate() {
            if column.name != name {
                continue;
            }
            if let Some(t) = table {
                if column.table.as_deref() != Some(t) {
                    continue;
                }
            }
            if found.is_some() {
                return Err(SqlError::new(
                    code::AMBIGUOUS_COLUMN,
                    format!("column reference \"{name}\" is ambiguous"),
                ));
            }
            found = Some(Expr::Column(i, column.ty));
        }
        found.ok_or_else(|| match table {
            Some(t) if !scope.columns.iter().any(|c| c.table.as_deref() == Some(t)) => {
                SqlError::new(
                    code::UNDEFINED_TABLE,
                    format!("missing FROM-clause entry for table \"{t}\""),
                )
            }
            Some(t) => SqlError::undefined_column(&format!("{t}.{name}")),
            None => SqlError::undefined_column(name),
        })
    }

    /// Binds two operands so that an untyped one takes the other's type.
    fn bind_pair(
        &self,
        a: &ast::Expr,
        b: &ast::Expr,
        scope: &Scope,
    ) -> Result<(Expr, Expr), SqlError> {
        let left = self.bind_expr(a, scope, SqlType::Unknown)?;
        let left_ty = left.ty(&self.current_params());
        let right = self.bind_expr(b, scope, left_ty)?;
        let right_ty = right.ty(&self.current_params());
        let left = self.apply_hint(left, right_ty)?;
        Ok((left, right))
    }

    fn is_bool(
        &self,
        inner: &ast::Expr,
        scope: &Scope,
        value: bool,
        negated: bool,
    ) -> Result<Expr, SqlError> {
        let bound = self.bind_expr(inner, scope, SqlType::Bool)?;
        let is = Expr::IsDistinct(
            Box::new(bound),
            Box::new(Expr::Literal(Datum::Bool(value), SqlType::Bool)),
            true,
        );
        Ok(if negated { Expr::Not(Box::new(is)) } else { is })
    }

    fn bind_binary(
        &self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        scope: &Scope,
    ) -> Result<Expr, SqlError> {
        use ast::BinaryOperator as B;
        let op = match op {
            B::Plus => BinaryOp::Add,
            B::Minus => BinaryOp::Sub,
            B::Multiply => BinaryOp::Mul,
            B::Divide => BinaryOp::Div,
            B::Modulo => BinaryOp::Mod,
            B::StringConcat => BinaryOp::Concat,
            B::Eq => BinaryOp::Eq,
            B::NotEq => BinaryOp::NotEq,
            B::Lt => BinaryOp::Lt,
            B::LtEq => BinaryOp::LtEq,
            B::Gt => BinaryOp::Gt,
            B::GtEq => BinaryOp::GtEq,
            B::And => BinaryOp::And,
            B::Or => BinaryOp::Or,
            B::Arrow => BinaryOp::JsonGet,
            B::LongArrow => BinaryOp::JsonGetText,
            B::PGLikeMatch | B::PGILikeMatch | B::PGNotLikeMatch | B::PGNotILikeMatch => {
                return Ok(Expr::Like {
                    expr: Box::new(self.bind_expr(left, scope, SqlType::Text)?),
                    pattern: Box::new(self.bind_expr(right, scope, SqlType::Text)?),
                    case_insensitive: matches!(op, B::PGILikeMatch | B::PGNotILikeMatch),
                    negated: matches!(op, B::PGNotLikeMatch | B::PGNotILikeMatch),
                })
            }
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                let matched = Expr::Function(
                    Function::RegexMatch,
                    vec![
                        self.bind_expr(left, scope, SqlType::Text)?,
                        self.bind_expr(right, scope, SqlType::Text)?,
                        Expr::Literal(
                            Datum::Bool(matches!(op, B::PGRegexIMatch | B::PGRegexNotIMatch)),
                            SqlType::Bool,
                        ),
                    ],
                    SqlType::Bool,
                );
                return Ok(if matches!(op, B::PGRegexNotMatch | B::PGRegexNotIMatch) {
                    Expr::Not(Box::new(matched))
                } else {
                    matched
                });
            }
            // `OPERATOR(pg_catalog.~)`, as psql writes its operators.
            B::PGCustomBinaryOperator(parts)
                if parts.len() == 1 || (parts.len() == 2 && parts[0] == "pg_catalog") =>
            {
                let plain = match parts.last().map(String::as_str) {
                    Some("~") => B::PGRegexMatch,
                    Some("~*") => B::PGRegexIMatch,
                    Some("!~") => B::PGRegexNotMatch,
                    Some("!~*") => B::PGRegexNotIMatch,
                    Some("~~") => B::PGLikeMatch,
                    Some("~~*") => B::PGILikeMatch,
                    Some("!~~") => B::PGNotLikeMatch,
                    Some("!~~*") => B::PGNotILikeMatch,
                    Some("=") => B::Eq,
                    Some("<>") | Some("!=") => B::NotEq,
                    Some("<") => B::Lt,
                    Some("<=") => B::LtEq,
                    Some(">") => B::Gt,
                    Some(">=") => B::GtEq,
                    Some("+") => B::Plus,
                    Some("-") => B::Minus,
                    Some("*") => B::Multiply,
                    Some("/") => B::Divide,
                    Some("%") => B::Modulo,
                    Some("||") => B::StringConcat,
                    _ => return Err(SqlError::unsupported(format!("operator {op}"))),
                };
                return self.bind_binary(left, &plain, right, scope);
            }
            other => return Err(SqlError::unsupported(format!("operator {other}"))),
        };
        let (l, r) = match op {
            BinaryOp::And | BinaryOp::Or => (
                self.bind_expr(left, scope, SqlType::Bool)?,
                self.bind_expr(right, scope, SqlType::Bool)?,
            ),
            BinaryOp::Concat => (
                self.bind_expr(left, scope, SqlType::Text)?,
                self.bind_expr(right, scope, SqlType::Text)?,
            ),
            BinaryOp::JsonGet | BinaryOp::JsonGetText => {
                let l = self.bind_expr(left, scope, SqlType::Jsonb)?;
                let r = self.bind_expr(right, scope, SqlType::Unknown)?;
                let r = match r {
                    Expr::Literal(Datum::Text(s), SqlType::Unknown) => {
                        Expr::Literal(Datum::Text(s), SqlType::Text)
                    }
                    other => other,
                };
                (l, r)
            }
            _ => self.bind_pair(left, right, scope)?,
        };
        let params = self.current_params();
        let (lt, rt) = (l.ty(&params), r.ty(&params));
        if op.is_comparison() {
            self.require_comparable(&l, &r, &params, &format!("{op:?}"))?;
        } else if matches!(op, BinaryOp::And | BinaryOp::Or) {
            for ty in [lt, rt] {
                if !matches!(ty, SqlType::Bool | SqlType::Unknown) {
                    return Err(SqlError::mismatch(format!(
                        "argument of {} must be type boolean, not type {ty}",
                        if op == BinaryOp::And { "AND" } else { "OR" }
                    )));
                }
            }
        } else if matches!(
            op,
            BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod
        ) {
            let temporal = |t: SqlType| {
                matches!(
                    t,
                    SqlType::Timestamp | SqlType::TimestampTz | SqlType::Date | SqlType::Interval
                )
            };
            let ok = (lt.is_numeric() || lt == SqlType::Unknown)
                && (rt.is_numeric() || rt == SqlType::Unknown)
                || (temporal(lt) || temporal(rt));
            if !ok {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("operator does not exist: {lt} {} {rt}", op_symbol(op)),
                ));
            }
            let _ = arithmetic_type(op, lt, rt);
        }
        Ok(Expr::Binary(op, Box::new(l), Box::new(r)))
    }

    fn require_comparable(
        &self,
        a: &Expr,
        b: &Expr,
        params: &[SqlType],
        what: &str,
    ) -> Result<(), SqlError> {
        let (at, bt) = (a.ty(params), b.ty(params));
        if SqlType::common(at, bt).is_none() {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("operator does not exist: {at} {} {bt}", what_symbol(what)),
            ));
        }
        Ok(())
    }

    fn bind_case(
        &self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
        scope: &Scope,
        hint: SqlType,
    ) -> Result<Expr, SqlError> {
        let operand = operand
            .map(|o| self.bind_expr(o, scope, SqlType::Unknown))
            .transpose()?;
        let operand_ty = operand.as_ref().map(|o| o.ty(&self.current_params()));
        let mut whens = Vec::new();
        let mut ty = hint;
        for when in conditions {
            let condition =
                self.bind_expr(&when.condition, scope, operand_ty.unwrap_or(SqlType::Bool))?;
            let result = self.bind_expr(&when.result, scope, ty)?;
            let result_ty = result.ty(&self.current_params());
            ty = SqlType::common(ty, result_ty).ok_or_else(|| {
                SqlError::mismatch(format!("CASE types {ty} and {result_ty} cannot be matched"))
            })?;
            whens.push((condition, result));
        }
        let otherwise = else_result
            .map(|e| self.bind_expr(e, scope, ty))
            .transpose()?;
        if let Some(o) = &otherwise {
            let o_ty = o.ty(&self.current_params());
            ty = SqlType::common(ty, o_ty).ok_or_else(|| {
                SqlError::mismatch(format!("CASE types {ty} and {o_ty} cannot be matched"))
            })?;
        }
        if ty == SqlType::Unknown {
            ty = SqlType::Text;
        }
        // Untyped literals among the results take the CASE's type.
        let whens = whens
            .into_iter()
            .map(|(c, r)| Ok((c, self.apply_hint(r, ty)?)))
            .collect::<Result<Vec<_>, SqlError>>()?;
        let otherwise = otherwise.map(|o| self.apply_hint(o, ty)).transpose()?;
        Ok(Expr::Case {
            operand: operand.map(Box::new),
            whens,
            otherwise: otherwise.map(Box::new),
            ty,
        })
    }
}

fn require_numeric(e: &Expr, params: &[SqlType], op: &str) -> Result<(), SqlError> {
    let ty = e.ty(params);
    if ty.is_numeric() || ty == SqlType::Unknown || ty == SqlType::Interval {
        Ok(())
    } else {
        Err(SqlError::new(
            code::UNDEFINED_FUNCTION,
            format!("operator does not exist: {op}{ty}"),
        ))
    }
}

fn op_symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Concat => "||",
        BinaryOp::Eq => "=",
        BinaryOp::NotEq => "<>",
        BinaryOp::Lt => "<",
        BinaryOp::LtEq => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::GtEq => ">=",
        BinaryOp::And => "AND",
        BinaryOp::Or => "OR",
        BinaryOp::JsonGet => "->",
        BinaryOp::JsonGetText => "->>",
    }
}

fn what_symbol(what: &str) -> &str {
    match what {
        "Eq" => "=",
        "NotEq" => "<>",
        "Lt" => "<",
        "LtEq" => "<=",
        "Gt" => ">",
        "GtEq" => ">=",
        other => other,
    }
}

/// A literal: numbers are INT8 when they fit and NUMERIC otherwise;
/// strings are untyped until their context types them.
pub fn literal(v: &ast::Value) -> Result<Expr, SqlError> {
    Ok(match v {
        ast::Value::Number(n, _) => {
            if let Ok(i) = n.parse::<i64>() {
                Expr::Literal(Datum::Int(i), SqlType::Int8)
            } else {
                Expr::Literal(text::parse(n, SqlType::Numeric)?, SqlType::Numeric)
            }
        }
        ast::Value::Boolean(b) => Expr::Literal(Datum::Bool(*b), SqlType::Bool),
        ast::Value::Null => Expr::Literal(Datum::Null, SqlType::Unknown),
        ast::Value::Placeholder(p) => {
            let index: usize = p
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| SqlError::syntax(format!("invalid parameter {p}")))?;
            Expr::Param(index - 1)
        }
        other => Expr::Literal(Datum::Text(value_text(other)?), SqlType::Unknown),
    })
}

fn value_text(v: &ast::Value) -> Result<String, SqlError> {
    Ok(match v {
        ast::Value::SingleQuotedString(s)
        | ast::Value::EscapedStringLiteral(s)
        | ast::Value::NationalStringLiteral(s)
        | ast::Value::UnicodeStringLiteral(s)
        | ast::Value::DoubleQuotedString(s) => s.clone(),
        ast::Value::DollarQuotedString(d) => d.value.clone(),
        ast::Value::HexStringLiteral(h) => format!("\\x{h}"),
        ast::Value::Number(n, _) => n.clone(),
        other => return Err(SqlError::unsupported(format!("literal {other}"))),
    })
}
