//! Statement text to statements: Meridian's own statements first (the
//! pre-parser: `UPSERT`, `SHOW RANGES`, `AS OF SYSTEM TIME` on SELECT and
//! BEGIN, and the multi-region statements of
//! [`multiregion`], matched on sqlparser's tokens by [`tokens`]), then
//! sqlparser's PostgreSQL dialect for the rest. Errors carry PostgreSQL's
//! SQLSTATE 42601 and the position of the fault.
//!
//! Owns: splitting a string into statements and parsing each. Does not
//! own: what a statement means (`crate::exec`).

pub mod multiregion;
#[cfg(test)]
mod tests;
mod tokens;

use meridian_placement::{DataPlacement, SurvivalGoal};
pub use multiregion::{AlterDatabase, LocalitySpec, ShowRegions, ZoneChange, ZoneTarget};
use tokens::Tokens;

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::{Parser, ParserError};

use crate::error::SqlError;

/// Statements larger than this are refused before parsing: a client that
/// sends a runaway statement gets an error, not a node out of memory.
pub const MAX_STATEMENT_BYTES: usize = 16 << 20;

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    /// Anything sqlparser parses.
    Sql(Box<ast::Statement>),
    /// One of Meridian's own statements.
    Meridian(MeridianStatement),
}

/// Statements sqlparser does not know, recognized by the pre-parser.
#[derive(Debug, Clone, PartialEq)]
pub enum MeridianStatement {
    /// `SHOW RANGES FROM TABLE t`: the table's ranges, their replicas and
    /// leaseholders.
    ShowRangesFromTable {
        table: String,
    },
    /// CockroachDB's `UPSERT INTO t ...`: an INSERT whose rows replace
    /// existing ones with the same primary key.
    Upsert(Box<ast::Insert>),
    /// `CREATE DATABASE` with multi-region clauses.
    CreateDatabase {
        name: String,
        if_not_exists: bool,
        primary_region: Option<String>,
        regions: Vec<String>,
        survival: Option<SurvivalGoal>,
        placement: Option<DataPlacement>,
    },
    /// `ALTER DATABASE d ADD REGION ...` and the other multi-region changes.
    AlterDatabase {
        name: String,
        action: AlterDatabase,
    },
    /// `CREATE TABLE ... LOCALITY ...`.
    CreateTable {
        create: Box<ast::CreateTable>,
        locality: LocalitySpec,
    },
    /// `ALTER TABLE t SET LOCALITY ...`.
    AlterTableLocality {
        table: String,
        if_exists: bool,
        locality: LocalitySpec,
    },
    /// `ALTER ... CONFIGURE ZONE USING ... | DISCARD`.
    ConfigureZone {
        target: ZoneTarget,
        change: ZoneChange,
    },
    ShowRegions(ShowRegions),
    /// `SHOW SURVIVAL GOAL [FROM DATABASE [d]]`.
    ShowSurvivalGoal {
        database: Option<String>,
    },
    /// `SHOW ZONE CONFIGURATION FOR ...`.
    ShowZoneConfiguration {
        target: ZoneTarget,
    },
    /// A SELECT (or `EXPLAIN SELECT`) with CockroachDB's `AS OF SYSTEM TIME
    /// <at>` clause: it reads the database as of that time, in a read-only
    /// transaction of its own, from the nearest replica that can serve it.
    SelectAsOf {
        query: Box<ast::Statement>,
        at: Box<ast::Expr>,
    },
    /// `BEGIN AS OF SYSTEM TIME <at>` (or `BEGIN TRANSACTION ...`,
    /// `START TRANSACTION ...`): a read-only transaction block as of then.
    BeginAsOf {
        at: Box<ast::Expr>,
    },
}

/// Parses `sql` into its statements (empty statements are dropped).
pub fn parse(sql: &str) -> Result<Vec<Statement>, SqlError> {
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(SqlError::new(
            crate::error::code::PROGRAM_LIMIT_EXCEEDED,
            format!(
                "statement of {} bytes is larger than the limit of {MAX_STATEMENT_BYTES}",
                sql.len()
            ),
        ));
    }
    let mut out = Vec::new();
    for piece in split_statements(sql) {
        if let Some(ours) = pre_parse(piece.text, sql, piece.offset)? {
            out.push(Statement::Meridian(ours));
            continue;
        }
        // psql's catalog queries, where they need what the planner lacks.
        let text = crate::psql_compat::rewrite(piece.text);
        let statements = Parser::parse_sql(&PostgreSqlDialect {}, &text)
            .map_err(|e| parser_error(e, sql, piece.offset))?;
        out.extend(statements.into_iter().map(|s| Statement::Sql(Box::new(s))));
    }
    Ok(out)
}

/// Parses `sql`, which must hold at most one statement (the extended
/// protocol's Parse message). `None` for an empty statement.
pub fn parse_one(sql: &str) -> Result<Option<Statement>, SqlError> {
    let mut statements = parse(sql)?;
    match statements.len() {
        0 => Ok(None),
        1 => Ok(statements.pop()),
        _ => Err(SqlError::syntax(
            "cannot insert multiple commands into a prepared statement",
        )),
    }
}

struct Piece<'a> {
    text: &'a str,
    /// Byte offset of `text` in the whole statement string.
    offset: usize,
}

/// Splits on top-level semicolons (outside quotes, dollar quotes and
/// comments), so each piece can go to the pre-parser on its own.
fn split_statements(sql: &str) -> Vec<Piece<'_>> {
    let bytes = sql.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => {
                let quote = bytes[i];
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    i += 1;
                }
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b'$' => {
                // A dollar quote `$tag$ ... $tag$` (but not a parameter `$1`).
                if let Some(len) = sql[i + 1..].find('$') {
                    let tag = &sql[i..i + len + 2];
                    if tag[1..tag.len() - 1]
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_')
                        && !tag[1..].starts_with(|c: char| c.is_ascii_digit())
                    {
                        if let Some(end) = sql[i + tag.len()..].find(tag) {
                            i += tag.len() + end + tag.len() - 1;
                        }
                    }
                }
            }
            b';' => {
                push_piece(&mut pieces, sql, start, i);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    push_piece(&mut pieces, sql, start, bytes.len().max(start));
    pieces
}

fn push_piece<'a>(pieces: &mut Vec<Piece<'a>>, sql: &'a str, start: usize, end: usize) {
    let end = end.min(sql.len());
    let text = &sql[start..end];
    if !is_blank(text) {
        pieces.push(Piece {
            text,
            offset: start,
        });
    }
}

/// Whether `text` holds only whitespace and comments.
fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix("--") {
            rest = after
                .split_once('\n')
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .split_once("*/")
                .map(|(_, r)| r)
                .unwrap_or("")
                .trim_start();
        } else {
            return false;
        }
    }
}

/// Recognizes Meridian's own statements by their leading words; `text`
/// starts at byte `offset` of the whole string `whole`.
fn pre_parse(
    text: &str,
    whole: &str,
    offset: usize,
) -> Result<Option<MeridianStatement>, SqlError> {
    let Some(mut t) = Tokens::new(text, whole[..offset].chars().count()) else {
        return Ok(None);
    };
    if let Some((clause, expr)) = t.as_of_system_time() {
        return as_of_system_time(text, clause, expr).map(Some);
    }
    if t.is_word("UPSERT") {
        let start = text.len() - text.trim_start().len();
        let as_insert = format!(
            "{}INSERT{}",
            &text[..start],
            &text[start + "UPSERT".len()..]
        );
        let parsed = Parser::parse_sql(&PostgreSqlDialect {}, &as_insert)
            .map_err(|e| parser_error(e, &as_insert, 0))?;
        return match parsed.into_iter().next() {
            Some(ast::Statement::Insert(insert)) => {
                Ok(Some(MeridianStatement::Upsert(Box::new(insert))))
            }
            _ => Err(SqlError::syntax("expected UPSERT INTO table ...")),
        };
    }
    if t.eat_words(&["SHOW", "RANGES"]) {
        t.expect_words(&["FROM", "TABLE"])?;
        let table = t.name("a table name")?;
        t.expect_end()?;
        return Ok(Some(MeridianStatement::ShowRangesFromTable { table }));
    }
    multiregion::parse(&mut t, text, whole, offset)
}

/// A statement with an `AS OF SYSTEM TIME` clause at bytes `clause` of
/// `text` (its expression at `expr`): a SELECT or a BEGIN.
fn as_of_system_time(
    text: &str,
    clause: std::ops::Range<usize>,
    expr: std::ops::Range<usize>,
) -> Result<MeridianStatement, SqlError> {
    let at = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&text[expr.clone()])
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| parser_error(e, text, expr.start))?;
    let rest = format!("{} {}", &text[..clause.start], &text[clause.end..]);
    let mut statements =
        Parser::parse_sql(&PostgreSqlDialect {}, &rest).map_err(|e| parser_error(e, &rest, 0))?;
    let only = (statements.len() == 1).then(|| statements.pop()).flatten();
    match only {
        Some(query @ ast::Statement::Query(_)) => Ok(MeridianStatement::SelectAsOf {
            query: Box::new(query),
            at: Box::new(at),
        }),
        Some(explain @ ast::Statement::Explain { .. })
            if matches!(&explain, ast::Statement::Explain { statement, .. }
                if matches!(statement.as_ref(), ast::Statement::Query(_))) =>
        {
            Ok(MeridianStatement::SelectAsOf {
                query: Box::new(explain),
                at: Box::new(at),
            })
        }
        Some(ast::Statement::StartTransaction { .. }) => {
            Ok(MeridianStatement::BeginAsOf { at: Box::new(at) })
        }
        _ => Err(SqlError::new(
            crate::error::code::FEATURE_NOT_SUPPORTED,
            "AS OF SYSTEM TIME is supported on SELECT, EXPLAIN SELECT and BEGIN only",
        )),
    }
}

/// Turns sqlparser's "... at Line: L, Column: C" into a position in the
/// whole statement string.
fn parser_error(e: ParserError, sql: &str, offset: usize) -> SqlError {
    let message = match e {
        ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nests too deeply".into(),
    };
    let position = location(&message).map(|(line, column)| {
        let piece = &sql[offset..];
        let line_start: usize = piece
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum();
        let byte = offset + line_start;
        let chars_before = sql[..byte.min(sql.len())].chars().count();
        (chars_before + column) as u32
    });
    let text = message
        .split(" at Line:")
        .next()
        .unwrap_or(&message)
        .to_string();
    SqlError::syntax(format!("syntax error: {text}")).at(position)
}

fn location(message: &str) -> Option<(usize, usize)> {
    let rest = &message[message.find("Line: ")? + 6..];
    let (line, rest) = rest.split_once(',')?;
    let column = rest.trim().strip_prefix("Column: ")?;
    let column: String = column.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}
