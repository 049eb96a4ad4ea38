//! Binding function calls: the built-in scalar functions (including the
//! catalog functions clients call) and the aggregates, with their
//! argument and result types.

use sqlparser::ast;

use super::{ident, Binder, Scope};
use crate::error::{code, SqlError};
use crate::plan::expr::{AggCall, AggFunc, Expr, Function};
use crate::types::{Datum, SqlType};

impl Binder<'_> {
    pub(super) fn bind_function(&self, f: &ast::Function, scope: &Scope) -> Result<Expr, SqlError> {
        let name = f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(ident)
            .unwrap_or_default();
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (Vec::new(), false, false),
            ast::FunctionArguments::List(list) => {
                let distinct = matches!(
                    list.duplicate_treatment,
                    Some(ast::DuplicateTreatment::Distinct)
                );
                let mut exprs = Vec::new();
                let mut star = false;
                for arg in &list.args {
                    match arg {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) => {
                            exprs.push(e.clone())
                        }
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        other => {
                            return Err(SqlError::unsupported(format!("function argument {other}")))
                        }
                    }
                }
                (exprs, distinct, star)
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(SqlError::unsupported("subqueries in expressions"))
            }
        };
        if let Some(agg) = aggregate(&name, star) {
            return self.bind_aggregate(agg, &name, &args, distinct, scope);
        }
        if star {
            return Err(SqlError::syntax(format!(
                "{name}(*) is not a function call"
            )));
        }
        let bind_all = |hint: SqlType| -> Result<Vec<Expr>, SqlError> {
            args.iter()
                .map(|a| self.bind_expr(a, scope, hint))
                .collect()
        };
        let arity = |n: std::ops::RangeInclusive<usize>| -> Result<(), SqlError> {
            if n.contains(&args.len()) {
                Ok(())
            } else {
                Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name} does not take {} arguments", args.len()),
                ))
            }
        };
        let (func, bound, ty) = match name.as_str() {
            "abs" => {
                arity(1..=1)?;
                let a = bind_all(SqlType::Numeric)?;
                let ty = a[0].ty(&self.current_params());
                (Function::Abs, a, ty)
            }
            "coalesce" | "greatest" | "least" => {
                if args.is_empty() {
                    return Err(SqlError::syntax(format!("{name} needs arguments")));
                }
                let mut bound = Vec::new();
                let mut ty = SqlType::Unknown;
                for a in &args {
                    let b = self.bind_expr(a, scope, ty)?;
                    let bt = b.ty(&self.current_params());
                    ty = SqlType::common(ty, bt).ok_or_else(|| {
                        SqlError::mismatch(format!("{name} types {ty} and {bt} cannot be matched"))
                    })?;
                    bound.push(b);
                }
                let ty = if ty == SqlType::Unknown {
                    SqlType::Text
                } else {
                    ty
                };
                let bound = bound
                    .into_iter()
                    .map(|b| self.apply_hint(b, ty))
                    .collect::<Result<_, _>>()?;
                let func = match name.as_str() {
                    "coalesce" => Function::Coalesce,
                    "greatest" => Function::Greatest,
                    _ => Function::Least,
                };
                (func, bound, ty)
            }
            "nullif" => {
                arity(2..=2)?;
                let a = self.bind_expr(&args[0], scope, SqlType::Unknown)?;
                let b = self.bind_expr(&args[1], scope, a.ty(&self.current_params()))?;
                let ty = a.ty(&self.current_params());
                (Function::NullIf, vec![a, b], ty)
            }
            "length" | "char_length" | "character_length" | "octet_length" => {
                arity(1..=1)?;
                (Function::Length, bind_all(SqlType::Text)?, SqlType::Int4)
            }
            "lower" => (
                Function::Lower,
                {
                    arity(1..=1)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "upper" => (
                Function::Upper,
                {
                    arity(1..=1)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "substr" | "substring" => {
                arity(2..=3)?;
                let mut bound = vec![self.bind_expr(&args[0], scope, SqlType::Text)?];
                for a in &args[1..] {
                    bound.push(self.bind_expr(a, scope, SqlType::Int8)?);
                }
                (Function::Substring, bound, SqlType::Text)
            }
            "round" | "trunc" => {
                arity(1..=2)?;
                let mut bound = vec![self.bind_expr(&args[0], scope, SqlType::Numeric)?];
                if let Some(places) = args.get(1) {
                    bound.push(self.bind_expr(places, scope, SqlType::Int8)?);
                }
                let ty = match bound[0].ty(&self.current_params()) {
                    t if t.is_integer() => SqlType::Numeric,
                    t => t,
                };
                (
                    if name == "round" {
                        Function::Round
                    } else {
                        Function::Trunc
                    },
                    bound,
                    ty,
                )
            }
            "ceil" | "ceiling" | "floor" => {
                arity(1..=1)?;
                let bound = bind_all(SqlType::Numeric)?;
                let ty = bound[0].ty(&self.current_params());
                (
                    if name == "floor" {
                        Function::Floor
                    } else {
                        Function::Ceil
                    },
                    bound,
                    ty,
                )
            }
            "concat" => (Function::Concat, bind_all(SqlType::Text)?, SqlType::Text),
            "replace" => (
                Function::Replace,
                {
                    arity(3..=3)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "btrim" | "trim" => (
                Function::Trim,
                {
                    arity(1..=2)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "ltrim" => (
                Function::Ltrim,
                {
                    arity(1..=2)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "rtrim" => (
                Function::Rtrim,
                {
                    arity(1..=2)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "left" | "right" => {
                arity(2..=2)?;
                let bound = vec![
                    self.bind_expr(&args[0], scope, SqlType::Text)?,
                    self.bind_expr(&args[1], scope, SqlType::Int8)?,
                ];
                (
                    if name == "left" {
                        Function::Left
                    } else {
                        Function::Right
                    },
                    bound,
                    SqlType::Text,
                )
            }
            "now" | "current_timestamp" | "transaction_timestamp" | "statement_timestamp" => {
                arity(0..=0)?;
                (Function::Now, Vec::new(), SqlType::TimestampTz)
            }
            "gen_random_uuid" | "uuid_generate_v4" => {
                arity(0..=0)?;
                (Function::GenRandomUuid, Vec::new(), SqlType::Uuid)
            }
            "unique_rowid" => {
                arity(0..=0)?;
                (Function::UniqueRowId, Vec::new(), SqlType::Int8)
            }
            "random" => {
                arity(0..=0)?;
                (Function::Random, Vec::new(), SqlType::Float8)
            }
            "version" => (
                Function::Version,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::Text,
            ),
            "current_database" => (
                Function::CurrentDatabase,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::Name,
            ),
            "current_user" | "session_user" | "user" => (
                Function::CurrentUser,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::Name,
            ),
            "current_schema" => (
                Function::CurrentSchema,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::Name,
            ),
            "gateway_region" => (
                Function::GatewayRegion,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::Text,
            ),
            "follower_read_timestamp" => (
                Function::FollowerReadTimestamp,
                {
                    arity(0..=0)?;
                    Vec::new()
                },
                SqlType::TimestampTz,
            ),
            "with_max_staleness" => (
                Function::WithMaxStaleness,
                {
                    arity(1..=1)?;
                    bind_all(SqlType::Unknown)?
                },
                SqlType::TimestampTz,
            ),
            "default_to_database_primary_region" => (
                Function::DefaultToDatabasePrimaryRegion,
                {
                    arity(1..=1)?;
                    bind_all(SqlType::Text)?
                },
                SqlType::Text,
            ),
            "format_type" => {
                arity(2..=2)?;
                (
                    Function::FormatType,
                    bind_all(SqlType::Int8)?,
                    SqlType::Text,
                )
            }
            // Every object is in `public` or `pg_catalog`, both on the
            // search path; privileges are not checked yet.
            "pg_table_is_visible"
            | "pg_type_is_visible"
            | "pg_function_is_visible"
            | "has_table_privilege"
            | "has_schema_privilege"
            | "has_database_privilege"
            | "has_column_privilege"
            | "pg_has_role" => {
                bind_all(SqlType::Unknown)?;
                return Ok(Expr::Literal(Datum::Bool(true), SqlType::Bool));
            }
            "pg_relation_is_publishable" => {
                bind_all(SqlType::Unknown)?;
                return Ok(Expr::Literal(Datum::Bool(false), SqlType::Bool));
            }
            "current_schemas" => {
                arity(1..=1)?;
                bind_all(SqlType::Bool)?;
                return Ok(Expr::Literal(
                    Datum::Text("{pg_catalog,public}".into()),
                    SqlType::Text,
                ));
            }
            // What these print from an oid, pg_index, pg_class and
            // pg_constraint carry in a hidden column: the call reads the
            // column of the row its argument comes from.
            "pg_get_indexdef" | "pg_get_constraintdef" => {
                arity(1..=3)?;
                let bound = bind_all(SqlType::Unknown)?;
                let hidden = if name == "pg_get_indexdef" {
                    "meridian_indexdef"
                } else {
                    "meridian_condef"
                };
                if let Expr::Column(i, _) = bound[0] {
                    let table = &scope.columns[i].table;
                    // `pg_get_indexdef(a.attrelid, a.attnum)` over an
                    // index's pg_attribute rows: that key column's name.
                    let read = if scope.columns[i].name == "attrelid" && args.len() > 1 {
                        "attname"
                    } else {
                        hidden
                    };
                    if let Some(at) = scope
                        .columns
                        .iter()
                        .position(|c| c.name == read && c.table == *table)
                    {
                        return Ok(Expr::Column(at, scope.columns[at].ty));
                    }
                }
                (Function::NullFunction, bound, SqlType::Text)
            }
            "pg_get_expr" => {
                arity(2..=3)?;
                let mut bound = bind_all(SqlType::Unknown)?;
                bound.truncate(1);
                (Function::PgGetExpr, bound, SqlType::Text)
            }
            "pg_get_userbyid" => {
                arity(1..=1)?;
                (
                    Function::PgGetUserById,
                    bind_all(SqlType::Oid)?,
                    SqlType::Name,
                )
            }
            "pg_encoding_to_char" => {
                arity(1..=1)?;
                (
                    Function::PgEncodingToChar,
                    bind_all(SqlType::Int4)?,
                    SqlType::Name,
                )
            }
            "array_to_string" => {
                arity(2..=3)?;
                let mut bound = bind_all(SqlType::Text)?;
                bound.truncate(2);
                (Function::ArrayToString, bound, SqlType::Text)
            }
            "quote_ident" => {
                arity(1..=1)?;
                (
                    Function::QuoteIdent,
                    bind_all(SqlType::Text)?,
                    SqlType::Text,
                )
            }
            "obj_description"
            | "col_description"
            | "shobj_description"
            | "pg_get_statisticsobjdef_columns"
            | "pg_get_partkeydef"
            | "pg_get_viewdef"
            | "pg_get_triggerdef"
            | "pg_get_ruledef"
            | "pg_get_function_arguments"
            | "pg_get_function_result"
            | "pg_tablespace_location"
            | "pg_size_pretty" => (
                Function::NullFunction,
                bind_all(SqlType::Unknown)?,
                SqlType::Text,
            ),
            "pg_table_size"
            | "pg_relation_size"
            | "pg_total_relation_size"
            | "pg_indexes_size"
            | "pg_database_size" => (
                Function::NullFunction,
                bind_all(SqlType::Unknown)?,
                SqlType::Int8,
            ),
            _ => {
                return Err(SqlError::new(
                    code::UNDEFINED_FUNCTION,
                    format!("function {name}() does not exist"),
                ))
            }
        };
        Ok(Expr::Function(func, bound, ty))
    }

    fn bind_aggregate(
        &self,
        func: AggFunc,
        name: &str,
        args: &[ast::Expr],
        distinct: bool,
        scope: &Scope,
    ) -> Result<Expr, SqlError> {
        let Some(aggregates) = scope.aggregates else {
            return Err(SqlError::new(
                code::GROUPING_ERROR,
                format!("aggregate functions are not allowed here ({name})"),
            ));
        };
        let inner = scope.without_aggregates();
        let bound: Vec<Expr> = args
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let hint = match (func, i) {
                    (AggFunc::StringAgg, _) => SqlType::Text,
                    (AggFunc::BoolAnd | AggFunc::BoolOr, _) => SqlType::Bool,
                    _ => SqlType::Unknown,
                };
                self.bind_expr(a, &inner, hint)
            })
            .collect::<Result<_, _>>()?;
        let expected = match func {
            AggFunc::CountStar => 0,
            AggFunc::StringAgg => 2,
            _ => 1,
        };
        if bound.len() != expected {
            return Err(SqlError::new(
                code::UNDEFINED_FUNCTION,
                format!("function {name} does not take {} arguments", bound.len()),
            ));
        }
        let params = self.current_params();
        let arg_ty = bound
            .first()
            .map(|a| a.ty(&params))
            .unwrap_or(SqlType::Int8);
        let ty = match func {
            AggFunc::CountStar | AggFunc::Count => SqlType::Int8,
            AggFunc::Sum => match arg_ty {
                t if t.is_integer() => SqlType::Numeric,
                SqlType::Float4 | SqlType::Float8 => SqlType::Float8,
                SqlType::Interval => SqlType::Interval,
                SqlType::Numeric | SqlType::Unknown => SqlType::Numeric,
                t => {
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function sum({t}) does not exist"),
                    ))
                }
            },
            AggFunc::Avg => match arg_ty {
                SqlType::Float4 | SqlType::Float8 => SqlType::Float8,
                t if t.is_numeric() || t == SqlType::Unknown => SqlType::Numeric,
                t => {
                    return Err(SqlError::new(
                        code::UNDEFINED_FUNCTION,
                        format!("function avg({t}) does not exist"),
                    ))
                }
            },
            AggFunc::Min | AggFunc::Max => arg_ty,
            AggFunc::BoolAnd | AggFunc::BoolOr => SqlType::Bool,
            AggFunc::StringAgg => SqlType::Text,
        };
        let mut list = aggregates.borrow_mut();
        let call = AggCall {
            func,
            args: bound,
            distinct,
            ty,
        };
        let index = match list.iter().position(|c| *c == call) {
            Some(i) => i,
            None => {
                list.push(call);
                list.len() - 1
            }
        };
        Ok(Expr::Slot(index, ty))
    }
}

fn aggregate(name: &str, star: bool) -> Option<AggFunc> {
    Some(match (name, star) {
        ("count", true) => AggFunc::CountStar,
        ("count", false) => AggFunc::Count,
        ("sum", _) => AggFunc::Sum,
        ("avg", _) => AggFunc::Avg,
        ("min", _) => AggFunc::Min,
        ("max", _) => AggFunc::Max,
        ("bool_and" | "every", _) => AggFunc::BoolAnd,
        ("bool_or", _) => AggFunc::BoolOr,
        ("string_agg", _) => AggFunc::StringAgg,
        _ => return None,
    })
}
