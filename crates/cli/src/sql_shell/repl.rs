//! The interactive shell: rustyline line editing, history in
//! `~/.meridian_sql_history`, the `user@host/db> ` prompt and the `-> `
//! continuation prompt while a statement is unfinished. Ctrl-C drops the
//! line being typed (or cancels the running statement), Ctrl-D quits. A
//! lost connection is reopened once; if that fails the shell exits with a
//! non-zero status.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor};

use super::session::{Failure, Session};
use super::Reported;

const HISTORY_FILE: &str = ".meridian_sql_history";
const CONTINUATION: &str = "-> ";

pub async fn run(session: &mut Session) -> Result<()> {
    let config = Config::builder()
        .max_history_size(1000)?
        .history_ignore_dups(true)?
        .auto_add_history(false)
        .build();
    let mut editor = DefaultEditor::with_config(config).context("starting line editing")?;
    let history = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(HISTORY_FILE));
    if let Some(path) = &history {
        // A missing file is the first run.
        let _ = editor.load_history(path);
    }
    println!(
        "# meridian sql: connected to {}. \\? for help, \\q to quit.",
        session.target.label
    );
    let prompt = format!("{}> ", session.target.label);
    // The lines of the statement being typed, one history entry once
    // complete.
    let mut typed = String::new();
    let outcome = loop {
        let current = if session.splitter.is_pending() {
            CONTINUATION
        } else {
            prompt.as_str()
        };
        let line = match tokio::task::block_in_place(|| editor.readline(current)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                session.splitter.clear();
                typed.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break Ok(()),
            Err(e) => break Err(anyhow::Error::new(e).context("reading input")),
        };
        if !typed.is_empty() {
            typed.push('\n');
        }
        typed.push_str(&line);

        // A connection that died while idle is reopened before the next
        // statement goes out; nothing was lost with it but the session.
        if let Some(why) = session.lost() {
            if let Err(e) = reconnect(session, &why).await {
                break Err(e);
            }
        }
        let result = session.feed(&line).await;
        if !session.splitter.is_pending() {
            let entry = std::mem::take(&mut typed);
            if !entry.trim().is_empty() {
                let _ = editor.add_history_entry(entry);
            }
        }
        match result {
            Ok(()) | Err(Failure::Statement) => {}
            Err(Failure::Quit) => break Ok(()),
            Err(Failure::Output) => break Err(Reported.into()),
            Err(Failure::Lost(why)) => {
                // The rest of what was typed is dropped: it may have
                // depended on what failed.
                session.splitter.clear();
                if let Err(e) = reconnect(session, &why).await {
                    break Err(e);
                }
                eprintln!("the statement was not retried; a transaction that was open is gone");
            }
        }
    };
    if let Some(path) = &history {
        if let Err(e) = editor.save_history(path) {
            eprintln!(
                "warning: could not save the history to {}: {e}",
                path.display()
            );
        }
    }
    outcome
}

/// One attempt to reopen a lost connection.
async fn reconnect(session: &mut Session, why: &str) -> Result<()> {
    eprintln!(
        "the connection to {} was lost ({why}); reconnecting",
        session.target.addr
    );
    match session.reconnect().await {
        Ok(()) => {
            eprintln!("reconnected");
            Ok(())
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            Err(Reported.into())
        }
    }
}
