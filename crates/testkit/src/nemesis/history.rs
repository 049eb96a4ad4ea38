//! Histories: what clients asked, when, and what they were told.
//!
//! Owns: recording operations concurrently from many client tasks, each
//! with its process id, its invocation and completion instants (measured
//! from the history's start on one monotonic clock), and its [`Outcome`];
//! printing an excerpt of a history around a time for failure messages.
//! Does not own: what the operations are (each workload has its own `O`
//! and result `R`) nor what a history must satisfy (the checkers).
//!
//! **Outcomes.** As in Jepsen: `Ok` means the operation happened, once,
//! somewhere between its invocation and its completion, with the result
//! recorded; `Fail` means it definitely did not happen (a definite error
//! from the database); `Ambiguous` means the client cannot know (an
//! `AmbiguousResult`, a timeout): it may have happened at any time after its
//! invocation, even long after the client gave up, or never. A checker
//! must accept both for an ambiguous write and must not treat a `Fail` as
//! possibly applied: a failed write found applied is a violation.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How an operation ended, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<R> {
    Ok(R),
    /// Definitely not applied.
    Fail(String),
    /// Possibly applied, at any time after the invocation.
    Ambiguous(String),
}

impl<R> Outcome<R> {
    pub fn is_ok(&self) -> bool {
        matches!(self, Outcome::Ok(_))
    }

    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Outcome::Ambiguous(_))
    }
}

/// One operation of a history.
#[derive(Debug, Clone)]
pub struct Entry<O, R> {
    /// The client (Jepsen's process). A client whose operation ended
    /// ambiguous goes on under a new process id, since the old operation
    /// may still be in flight.
    pub process: u64,
    pub op: O,
    /// Since the history's start.
    pub invoked: Duration,
    /// When the client got its answer or gave up, since the start. For an
    /// ambiguous outcome this is not a bound on when the operation applied.
    pub completed: Duration,
    pub outcome: Outcome<R>,
}

impl<O: fmt::Debug, R: fmt::Debug> fmt::Display for Entry<O, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} .. {}] p{} {:?} -> ",
            secs(self.invoked),
            secs(self.completed),
            self.process,
            self.op
        )?;
        match &self.outcome {
            Outcome::Ok(r) => write!(f, "ok {r:?}"),
            Outcome::Fail(why) => write!(f, "FAIL ({})", short(why)),
            Outcome::Ambiguous(why) => write!(f, "AMBIGUOUS ({})", short(why)),
        }
    }
}

/// Seconds with milliseconds: `12.345s`.
pub fn secs(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

fn short(text: &str) -> String {
    const MAX: usize = 120;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A history being recorded; clones share it.
pub struct History<O, R> {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry<O, R>>>>,
}

impl<O, R> Clone for History<O, R> {
    fn clone(&self) -> Self {
        History {
            start: self.start,
            entries: self.entries.clone(),
        }
    }
}

impl<O: Clone, R: Clone> Default for History<O, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Clone, R: Clone> History<O, R> {
    /// An empty history starting now.
    pub fn new() -> Self {
        History {
            start: Instant::now(),
            entries: Arc::default(),
        }
    }

    /// The instant offsets are measured from.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The current instant, as an offset from the start: take it just
    /// before invoking an operation.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Records an operation invoked at `invoked` (from [`History::now`])
    /// that completes now with `outcome`.
    pub fn record(&self, process: u64, op: O, invoked: Duration, outcome: Outcome<R>) {
        let completed = self.now();
        self.entries.lock().expect("history lock").push(Entry {
            process,
            op,
            invoked,
            completed,
            outcome,
        });
    }

    /// Every operation so far, by invocation.
    pub fn entries(&self) -> Vec<Entry<O, R>> {
        let mut entries = self.entries.lock().expect("history lock").clone();
        entries.sort_by_key(|e| (e.invoked, e.completed));
        entries
    }
}

/// How many operations ended in each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: usize,
    pub fail: usize,
    pub ambiguous: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ok, {} failed, {} ambiguous",
            self.ok, self.fail, self.ambiguous
        )
    }
}

/// Counts the outcomes of `entries`.
pub fn counts<O, R>(entries: &[Entry<O, R>]) -> Counts {
    let mut c = Counts::default();
    for e in entries {
        match e.outcome {
            Outcome::Ok(_) => c.ok += 1,
            Outcome::Fail(_) => c.fail += 1,
            Outcome::Ambiguous(_) => c.ambiguous += 1,
        }
    }
    c
}

/// The entries whose interval meets `[from, to]` (ambiguous ones reach to
/// the end of time), at most `max` of them, one per line: the excerpt a
/// failure message shows.
pub fn excerpt<O: fmt::Debug, R: fmt::Debug>(
    entries: &[Entry<O, R>],
    from: Duration,
    to: Duration,
    max: usize,
) -> String {
    let near: Vec<String> = entries
        .iter()
        .filter(|e| e.invoked <= to && (e.completed >= from || e.outcome.is_ambiguous()))
        .map(|e| format!("  {e}"))
        .collect();
    let mut text = near
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    if near.len() > max {
        text.push_str(&format!("\n  ... and {} more", near.len() - max));
    }
    text
}

/// Writes every entry, one per line, to `<temp dir>/meridian-nemesis-
/// <name>-<seed>.txt` for a failure message to point at; says where, or
/// why it could not.
pub fn save<O: fmt::Debug, R: fmt::Debug>(
    name: &str,
    seed: u64,
    entries: &[Entry<O, R>],
) -> String {
    let path = std::env::temp_dir().join(format!("meridian-nemesis-{name}-{seed}.txt"));
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    match std::fs::write(&path, text) {
        Ok(()) => format!(
            "the whole history ({} operations): {}",
            entries.len(),
            path.display()
        ),
        Err(e) => format!(
            "the whole history could not be saved to {}: {e}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_in_invocation_order_with_their_outcomes() {
        let history: History<&'static str, u32> = History::new();
        let early = history.now();
        let late = early + Duration::from_millis(5);
        history.record(2, "b", late, Outcome::Ambiguous("timeout".into()));
        history.record(1, "a", early, Outcome::Ok(7));
        let entries = history.entries();
        assert_eq!(entries[0].op, "a");
        assert_eq!(entries[1].op, "b");
        assert!(entries.iter().all(|e| e.completed >= early));
        let c = counts(&entries);
        assert_eq!((c.ok, c.fail, c.ambiguous), (1, 0, 1));
        let text = entries[1].to_string();
        assert!(
            text.contains("p2") && text.contains("AMBIGUOUS (timeout)"),
            "{text}"
        );
    }

    #[test]
    fn an_excerpt_keeps_what_overlaps_the_window_and_every_ambiguous_op_before_it() {
        let at = |ms| Duration::from_millis(ms);
        let entry = |op, i, c, outcome| Entry {
            process: 1,
            op,
            invoked: at(i),
            completed: at(c),
            outcome,
        };
        let entries = vec![
            entry("old", 0, 10, Outcome::Ok(())),
            entry("pending", 5, 6, Outcome::Ambiguous("lost".into())),
            entry("near", 90, 110, Outcome::Ok(())),
            entry("later", 300, 310, Outcome::Ok(())),
        ];
        let text = excerpt(&entries, at(100), at(200), 10);
        assert!(!text.contains("old") && !text.contains("later"), "{text}");
        assert!(text.contains("pending") && text.contains("near"), "{text}");
        let cut = excerpt(&entries, at(0), at(1000), 2);
        assert!(cut.contains("and 2 more"), "{cut}");
    }
}
