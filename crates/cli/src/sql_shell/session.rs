//! A session: one connection and the output settings, running one
//! statement or backslash command at a time. It sends a statement with
//! the simple query protocol, prints its rows or its command tag (and the
//! time it took under `\timing`), and prints a server error as
//! `ERROR: ...` / `SQLSTATE: ...` on stderr. Input lines from the REPL
//! and from scripts go through [`Session::feed`], so both treat
//! statements and backslash commands alike.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio_postgres::error::{DbError, ErrorPosition};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::conn::{error_chain, is_connection_error, Conn, Target};
use super::format::{Format, Rows};
use super::meta::{self, Meta};
use super::split::Splitter;
use super::tag::command_tag;

/// Why a statement or command did not succeed. Each was reported on
/// stderr already, except `Lost`, whose handling depends on the mode.
#[derive(Debug)]
pub enum Failure {
    /// The server answered with an error, or a backslash command was
    /// wrong.
    Statement,
    /// The connection is gone: why.
    Lost(String),
    /// Standard output is closed (`meridian sql ... | head`).
    Output,
    /// `\q`.
    Quit,
}

pub struct Session {
    pub target: Target,
    conn: Conn,
    pub format: Format,
    pub timing: bool,
    /// Ctrl-C cancels the running statement (only in the REPL: elsewhere
    /// it ends the process, as it always did).
    pub interactive: bool,
    pub splitter: Splitter,
}

impl Session {
    pub async fn connect(target: Target, format: Format, interactive: bool) -> Result<Session> {
        let conn = Conn::open(&target).await?;
        Ok(Session {
            target,
            conn,
            format,
            timing: false,
            interactive,
            splitter: Splitter::default(),
        })
    }

    /// Replaces a lost connection with a new one.
    pub async fn reconnect(&mut self) -> Result<()> {
        self.conn = Conn::open(&self.target).await?;
        Ok(())
    }

    /// Why the connection is gone, if it is.
    pub fn lost(&self) -> Option<String> {
        self.conn.lost()
    }

    /// One line of input (with or without its newline): a backslash
    /// command when no statement is pending, otherwise SQL, of which every
    /// statement the line completes is run. The first failure stops the
    /// line's remaining statements.
    pub async fn feed(&mut self, line: &str) -> Result<(), Failure> {
        if !self.splitter.is_pending() && line.trim_start().starts_with('\\') {
            return self.command(line).await;
        }
        let mut text = line.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let statements = self.splitter.push(&text);
        for statement in statements {
            self.run(&statement).await?;
        }
        Ok(())
    }

    /// The end of the input: a last statement without `;` runs.
    pub async fn finish(&mut self) -> Result<(), Failure> {
        match self.splitter.finish() {
            Some(statement) => self.run(&statement).await,
            None => Ok(()),
        }
    }

    /// A backslash command.
    pub async fn command(&mut self, line: &str) -> Result<(), Failure> {
        match meta::parse(line) {
            Meta::Quit => Err(Failure::Quit),
            Meta::Help => print_out(&format!("{}\n", meta::HELP)),
            Meta::Timing(on) => {
                self.timing = on.unwrap_or(!self.timing);
                print_out(if self.timing {
                    "Timing is on.\n"
                } else {
                    "Timing is off.\n"
                })
            }
            Meta::Sql(statement) => self.run(&statement).await,
            Meta::Invalid(message) => {
                eprintln!("error: {message}");
                Err(Failure::Statement)
            }
        }
    }

    /// Sends one statement and prints what came back.
    pub async fn run(&mut self, statement: &str) -> Result<(), Failure> {
        let start = Instant::now();
        let result = self.query(statement).await;
        let elapsed = start.elapsed();
        let outcome = match result {
            Ok(messages) => self.print_results(statement, messages),
            Err(QueryError::Server(e)) => {
                let db = e.as_db_error().expect("a server error");
                eprint!("{}", describe_error(statement, db));
                Err(Failure::Statement)
            }
            Err(QueryError::Lost(why)) => return Err(Failure::Lost(why)),
        };
        if self.timing {
            print_out(&format!("Time: {}\n", millis(elapsed)))?;
        }
        outcome
    }

    async fn query(&self, statement: &str) -> Result<Vec<SimpleQueryMessage>, QueryError> {
        let lost = |e: tokio_postgres::Error| {
            if is_connection_error(&e) {
                QueryError::Lost(self.conn.lost().unwrap_or_else(|| error_chain(&e)))
            } else {
                QueryError::Server(e)
            }
        };
        if !self.interactive {
            return self.conn.client.simple_query(statement).await.map_err(lost);
        }
        let query = self.conn.client.simple_query(statement);
        tokio::pin!(query);
        let mut interrupted = false;
        loop {
            tokio::select! {
                result = &mut query => return result.map_err(lost),
                _ = tokio::signal::ctrl_c() => {
                    if interrupted {
                        return Err(QueryError::Lost(
                            "the statement was abandoned after a second Ctrl-C".into(),
                        ));
                    }
                    interrupted = true;
                    eprintln!("cancelling the statement (Ctrl-C again to abandon it and reconnect)");
                    let token = self.conn.client.cancel_token();
                    tokio::spawn(async move {
                        if let Err(e) = token.cancel_query(NoTls).await {
                            eprintln!("could not send the cancel request: {e}");
                        }
                    });
                }
            }
        }
    }

    fn print_results(
        &self,
        statement: &str,
        messages: Vec<SimpleQueryMessage>,
    ) -> Result<(), Failure> {
        let mut out = String::new();
        let mut rows: Option<Rows> = None;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(columns) => {
                    rows = Some(Rows {
                        columns: columns.iter().map(|c| c.name().to_string()).collect(),
                        rows: Vec::new(),
                    });
                }
                SimpleQueryMessage::Row(row) => {
                    let rows = rows.get_or_insert_with(|| Rows {
                        columns: row.columns().iter().map(|c| c.name().to_string()).collect(),
                        rows: Vec::new(),
                    });
                    rows.rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(count) => {
                    let tag = command_tag(statement, count);
                    match (rows.take(), self.format) {
                        (Some(rows), Format::Table) => {
                            out.push_str(&rows.render(Format::Table));
                            out.push('\n');
                            // INSERT ... RETURNING and the like: psql
                            // prints the tag after the rows.
                            if ["INSERT", "UPDATE", "DELETE"]
                                .iter()
                                .any(|dml| tag.starts_with(dml))
                            {
                                out.push_str(&tag);
                                out.push('\n');
                            }
                        }
                        (Some(rows), format) => out.push_str(&rows.render(format)),
                        (None, Format::Table) => {
                            out.push_str(&tag);
                            out.push('\n');
                        }
                        // CSV and TSV hold rows only.
                        (None, _) => {}
                    }
                }
                _ => {}
            }
        }
        print_out(&out)
    }
}

enum QueryError {
    /// The server answered with an error.
    Server(tokio_postgres::Error),
    Lost(String),
}

fn print_out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|_| Failure::Output)
}

/// `1.234 ms`, as psql's `\timing`.
fn millis(elapsed: Duration) -> String {
    format!("{:.3} ms", elapsed.as_secs_f64() * 1000.0)
}

/// A server error as the shell prints it: message, SQLSTATE, detail and
/// hint when given, and where in the statement it points, if it does.
pub fn describe_error(statement: &str, db: &DbError) -> String {
    let mut out = format!(
        "{}: {}\nSQLSTATE: {}\n",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(detail) = db.detail() {
        out.push_str(&format!("DETAIL: {detail}\n"));
    }
    if let Some(hint) = db.hint() {
        out.push_str(&format!("HINT: {hint}\n"));
    }
    if let Some(ErrorPosition::Original(position)) = db.position() {
        out.push_str(&point_at(statement, *position as usize));
    }
    out
}

/// psql's pointer at an error's position (1-based, in characters):
/// `LINE 2: the line` and a caret under the character.
pub fn point_at(statement: &str, position: usize) -> String {
    let before: String = statement.chars().take(position.saturating_sub(1)).collect();
    let line_number = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count();
    let line = statement[line_start..].lines().next().unwrap_or("");
    let prefix = format!("LINE {line_number}: ");
    format!("{prefix}{line}\n{}^\n", " ".repeat(prefix.len() + column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_the_position() {
        assert_eq!(
            point_at("SELECT nope FROM t", 8),
            "LINE 1: SELECT nope FROM t\n               ^\n"
        );
        assert_eq!(
            point_at("SELECT 1,\n  nope\nFROM t", 13),
            "LINE 2:   nope\n          ^\n"
        );
        // Past the end: the caret goes after the last character.
        assert_eq!(point_at("SELECT", 7), "LINE 1: SELECT\n              ^\n");
    }

    #[test]
    fn timing_in_milliseconds() {
        assert_eq!(millis(Duration::from_micros(1234)), "1.234 ms");
    }
}
