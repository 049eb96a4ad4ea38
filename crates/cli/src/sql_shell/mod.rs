//! `meridian sql`: a SQL shell over the PostgreSQL wire protocol.
//!
//! With `-e`/`-f`, or with statements piped into standard input, it runs
//! them and exits (non-zero at the first error); on a terminal it is an
//! interactive shell. The modules, one concern each:
//! - [`conn`]: where to connect (`--url`, `--host`, ...) and the connection;
//! - [`split`]: cutting input into statements at `;`;
//! - [`session`]: running a statement or backslash command and printing
//!   what came back;
//! - [`format`]: tables, CSV and TSV;
//! - [`tag`]: command tags such as `INSERT 0 1`;
//! - [`meta`]: the backslash commands;
//! - [`script`] and [`repl`]: the two ways to run.

mod conn;
mod format;
mod meta;
mod repl;
mod script;
mod session;
mod split;
mod tag;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;

pub use conn::{ConnFlags, Target};
use format::Format;
use session::Session;

/// `meridian sql`.
#[derive(clap::Args, Debug)]
pub struct SqlArgs {
    #[command(flatten)]
    pub conn: ConnFlags,
    #[command(flatten)]
    pub script: ScriptArgs,
}

/// What to run and how to print it: shared by `meridian sql` and
/// `meridian demo`.
#[derive(clap::Args, Debug, Default)]
pub struct ScriptArgs {
    /// Run STATEMENT (one or more, separated by `;`, or one backslash
    /// command) and exit; repeatable, run in order before any -f.
    #[arg(short = 'e', long = "execute", value_name = "STATEMENT")]
    pub execute: Vec<String>,
    /// Run the statements in FILE (`-` for standard input) and exit;
    /// repeatable.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Vec<PathBuf>,
    /// How rows are printed.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

impl ScriptArgs {
    /// Whether the shell will be interactive: no -e, no -f, and a
    /// terminal on standard input.
    pub fn is_interactive(&self) -> bool {
        self.execute.is_empty() && self.file.is_empty() && std::io::stdin().is_terminal()
    }
}

/// An error already reported on stderr: the process exits non-zero
/// without printing it again.
#[derive(Debug)]
pub struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("reported")
    }
}

impl std::error::Error for Reported {}

pub async fn run(args: SqlArgs) -> Result<()> {
    let target = conn::Target::from_flags(&args.conn)?;
    run_on(target, &args.script).await
}

/// Connects to `target`, then runs `script` (or, when
/// [`ScriptArgs::is_interactive`], the interactive shell) on it.
pub async fn run_on(target: conn::Target, script: &ScriptArgs) -> Result<()> {
    let interactive = script.is_interactive();
    if let Some(note) = &target.tls_note {
        eprintln!("{note}");
    }
    let mut session = Session::connect(target, script.format, interactive).await?;
    if interactive {
        repl::run(&mut session).await
    } else {
        script::run(&mut session, script).await
    }
}
