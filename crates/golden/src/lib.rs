//! golden: the data-driven test runner every crate shares.
//!
//! A scenario is a text file of blocks separated by blank lines. A block is
//! optional `#` comment lines, exactly one command line, a `----` line, and
//! the command's expected output (which holds no blank line):
//!
//! ```text
//! # Versions are read as of a timestamp.
//! put k=a ts=10 v=one
//! ----
//! ok
//! ```
//!
//! A block of comments only is kept as it is. A block with two command lines
//! is refused (it would otherwise run one and silently drop the other).
//!
//! What a command means belongs to the crate under test: it implements
//! [`Runner`] (one command line in, its output as text out, errors included)
//! and this crate only reads files, compares and rewrites:
//!
//! 1. [`test_each_file!`] declares one `#[test]` per scenario file of a
//!    directory, plus one test that fails if the directory holds a file the
//!    list does not name, so a new file cannot go unrun;
//! 2. each test calls [`run_file`] with a fresh runner, which runs every
//!    block and panics naming *every* mismatching block of the file;
//! 3. with `UPDATE_GOLDEN` set in the environment ([`UPDATE_VAR`]), the
//!    file is rewritten with the actual outputs instead; read the diff.
//!
//! [`run_dir`] runs every file of a directory in one test and reports every
//! failing file, for a crate that prefers no list.
//!
//! Not here: parsing a command's arguments (each crate's scenarios have
//! their own vocabulary), and anything about Meridian itself: this crate
//! depends on nothing, so the lowest crates use it in their own unit tests.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Set (to anything) to rewrite the expected outputs instead of checking them.
pub const UPDATE_VAR: &str = "UPDATE_GOLDEN";

/// The extension of scenario files.
pub const EXTENSION: &str = "txt";

/// Runs the commands of one scenario file, in order, on one state.
pub trait Runner {
    /// Runs one command line (trimmed, never empty, never a comment) and
    /// returns its output. Failures of the code under test are output too;
    /// panic only for a malformed command.
    fn run(&mut self, command: &str) -> String;
}

impl<F: FnMut(&str) -> String> Runner for F {
    fn run(&mut self, command: &str) -> String {
        self(command)
    }
}

/// One block of a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// 1-based line of the block's first line in the file.
    pub line: usize,
    /// The `#` lines, each ending in a newline.
    pub comments: String,
    /// The command line; `None` for a block of comments only.
    pub command: Option<String>,
    /// The text below `----`, without surrounding newlines.
    pub expected: String,
    /// The block as written (for comment-only blocks, kept verbatim).
    pub text: String,
}

/// Splits a scenario file into blocks; every malformed block is an error
/// (`line N: why`), all of them reported at once.
pub fn parse(text: &str) -> Result<Vec<Block>, Vec<String>> {
    let mut blocks = Vec::new();
    let mut errors = Vec::new();
    let mut line = 1;
    for piece in text.split("\n\n") {
        let block_text = piece.trim_matches('\n');
        let block_line = line + (piece.len() - piece.trim_start_matches('\n').len());
        line += piece.matches('\n').count() + 2;
        if block_text.is_empty() {
            continue;
        }
        let (head, expected) = match block_text.split_once("\n----") {
            Some((head, rest)) => (head, rest.trim_start_matches('\n')),
            None => (block_text, ""),
        };
        let mut comments = String::new();
        let mut commands = Vec::new();
        for (offset, text_line) in head.lines().enumerate() {
            if text_line.starts_with('#') {
                comments.push_str(text_line);
                comments.push('\n');
            } else if !text_line.trim().is_empty() {
                commands.push((block_line + offset, text_line.trim().to_string()));
            }
        }
        if commands.len() > 1 {
            let listed: Vec<String> = commands
                .iter()
                .map(|(at, command)| format!("line {at}: {command}"))
                .collect();
            errors.push(format!(
                "line {block_line}: a block holds {} commands ({}); separate them with a blank line",
                commands.len(),
                listed.join("; ")
            ));
            continue;
        }
        blocks.push(Block {
            line: block_line,
            comments,
            command: commands.pop().map(|(_, command)| command),
            expected: expected.to_string(),
            text: block_text.to_string(),
        });
    }
    if errors.is_empty() {
        Ok(blocks)
    } else {
        Err(errors)
    }
}

/// The outcome of running one file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The file with every expected output replaced by the actual one.
    pub rewritten: String,
    /// One entry per block whose output differed, naming its line.
    pub failures: Vec<String>,
}

/// Runs every block of `text` on `runner`.
pub fn check(text: &str, runner: &mut impl Runner) -> Result<Outcome, Vec<String>> {
    let blocks = parse(text)?;
    let mut rewritten = String::new();
    let mut failures = Vec::new();
    for block in blocks {
        let Some(command) = &block.command else {
            rewritten.push_str(&block.text);
            rewritten.push_str("\n\n");
            continue;
        };
        let actual = runner.run(command);
        if actual.trim_end() != block.expected.trim_end() {
            failures.push(format!(
                "line {}: {command}\n  expected: {:?}\n  actual:   {actual:?}",
                block.line, block.expected
            ));
        }
        write!(rewritten, "{}{command}\n----\n{actual}\n\n", block.comments)
            .expect("writing to a String");
    }
    Ok(Outcome {
        rewritten: rewritten.trim_end().to_string() + "\n",
        failures,
    })
}

/// Whether [`UPDATE_VAR`] asks for rewriting.
pub fn updating() -> bool {
    std::env::var_os(UPDATE_VAR).is_some()
}

/// Runs the scenario file at `path` on `runner`: panics naming every
/// mismatching block, or (with [`UPDATE_VAR`] set) rewrites the file.
/// A malformed file panics in both modes and is never rewritten.
pub fn run_file(path: &Path, mut runner: impl Runner) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let outcome = match check(&text, &mut runner) {
        Ok(outcome) => outcome,
        Err(errors) => panic!("{} is malformed:\n{}", path.display(), errors.join("\n")),
    };
    if updating() {
        if outcome.rewritten != text {
            std::fs::write(path, &outcome.rewritten)
                .unwrap_or_else(|e| panic!("cannot rewrite {}: {e}", path.display()));
        }
    } else if !outcome.failures.is_empty() {
        panic!(
            "{}: {} block(s) differ (rerun with {UPDATE_VAR}=1 to rewrite, then read the diff):\n{}",
            path.display(),
            outcome.failures.len(),
            outcome.failures.join("\n")
        );
    }
}

/// The scenario files (`*.txt`) of `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == EXTENSION))
        .collect();
    files.sort();
    files
}

/// Runs every scenario file of `dir`, each on a fresh runner from `make`,
/// and panics naming every failing file with its failures.
pub fn run_dir<R: Runner>(dir: &Path, mut make: impl FnMut() -> R) {
    let files = files_in(dir);
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    let mut failed = Vec::new();
    for file in &files {
        let runner = make();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| run_file(file, runner))) {
            failed.push(panic_message(&*panic));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} scenario files failed:\n\n{}",
            failed.len(),
            files.len(),
            failed.join("\n\n")
        );
    }
}

/// Panics unless the scenario files of `dir` are exactly `listed` (file
/// stems): a new file must get its test, a listed one must exist.
pub fn assert_listed(dir: &Path, listed: &[&str]) {
    let present: Vec<String> = files_in(dir)
        .iter()
        .filter_map(|p| p.file_stem()?.to_str().map(str::to_string))
        .collect();
    let unlisted: Vec<&String> = present
        .iter()
        .filter(|p| !listed.contains(&p.as_str()))
        .collect();
    let missing: Vec<&&str> = listed
        .iter()
        .filter(|l| !present.iter().any(|p| p == *l))
        .collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "the scenario list of {} is out of date: files without a test {unlisted:?} \
         (add them to the test_each_file! list), listed without a file {missing:?}",
        dir.display()
    );
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "a panic without a message".to_string()
    }
}

/// Declares one `#[test]` per scenario file, named after the file's stem,
/// plus `all_files_listed`, which fails if `dir` holds a `.txt` file that
/// is not listed (or a listed one is gone). `dir` is relative to the
/// calling crate's manifest directory; `make` builds a fresh [`Runner`]
/// for each file. Put it in a module of its own:
///
/// ```ignore
/// mod golden {
///     meridian_golden::test_each_file! {
///         dir: "testdata/mvcc",
///         runner: super::Scenario::new,
///         files: [basic, gc, intents],
///     }
/// }
/// ```
#[macro_export]
macro_rules! test_each_file {
    (dir: $dir:literal, runner: $make:expr, files: [$($name:ident),+ $(,)?] $(,)?) => {
        $(
            #[test]
            fn $name() {
                let path = ::std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join($dir)
                    .join(concat!(stringify!($name), ".", "txt"));
                $crate::run_file(&path, ($make)());
            }
        )+

        #[test]
        fn all_files_listed() {
            let dir = ::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join($dir);
            $crate::assert_listed(&dir, &[$(stringify!($name)),+]);
        }
    };
}

#[cfg(test)]
mod tests;
