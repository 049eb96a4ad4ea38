//! Scripts: `-e STATEMENT`, `-f FILE` and statements piped into standard
//! input. Everything runs in order on one connection; the first failure
//! stops the script with a non-zero exit status (the server's message and
//! SQLSTATE are on stderr), as does a lost connection.

use std::path::Path;

use anyhow::{Context, Result};

use super::session::{Failure, Session};
use super::{Reported, ScriptArgs};

/// Where a script's statements come from.
pub enum Source<'a> {
    /// One `-e`: SQL (any number of statements) or one backslash command.
    Execute(&'a str),
    /// A file, or `-` for standard input.
    File(&'a Path),
    Stdin,
}

/// Runs the sources one after the other.
pub async fn run(session: &mut Session, args: &ScriptArgs) -> Result<()> {
    let mut sources: Vec<Source> = args.execute.iter().map(|e| Source::Execute(e)).collect();
    sources.extend(args.file.iter().map(|f| Source::File(f)));
    if sources.is_empty() {
        sources.push(Source::Stdin);
    }
    for source in sources {
        let text = match source {
            Source::Execute(text) => text.to_string(),
            Source::File(path) if path == Path::new("-") => read_stdin().await?,
            Source::File(path) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?,
            Source::Stdin => read_stdin().await?,
        };
        match run_text(session, &text).await {
            Ok(()) => {}
            Err(Failure::Quit) => return Ok(()),
            Err(Failure::Lost(why)) => {
                eprintln!(
                    "ERROR: the connection to {} was lost: {why}",
                    session.target.addr
                );
                return Err(Reported.into());
            }
            // A closed stdout, or a failure already printed.
            Err(Failure::Output | Failure::Statement) => return Err(Reported.into()),
        }
    }
    Ok(())
}

/// All of standard input, read on a blocking thread: a read that waits
/// for input on a runtime worker holds that worker and the tasks queued
/// behind it. (A `meridian demo` whose shell waited on an open, empty
/// standard input once did not answer SIGTERM within 20 s on two cores;
/// this is the likeliest cause found.)
async fn read_stdin() -> Result<String> {
    let read = tokio::task::spawn_blocking(|| {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    });
    read.await
        .context("reading statements from standard input")?
        .context("reading statements from standard input")
}

/// One source's text, line by line (so backslash commands work in files
/// too), then its last statement if it lacks a `;`.
async fn run_text(session: &mut Session, text: &str) -> Result<(), Failure> {
    for line in text.split_inclusive('\n') {
        session.feed(line).await?;
    }
    session.finish().await
}
