//! A linearizability checker for histories of one object (Wing and Gong's
//! search with Lowe's memoization, as in Knossos and porcupine), and the
//! model of a register with read, write and compare-and-set.
//!
//! Owns: deciding whether some total order of the operations, respecting
//! real time (an operation that completed before another was invoked comes
//! first), explains every result under a sequential [`Model`]. Operations
//! whose outcome is unknown are given no completion: they may take effect
//! at any point after their invocation, or never (placing them last is the
//! same as never, since nothing observes them). Does not own: splitting a
//! history per key (each key is a separate object: P-compositionality) or
//! recording it ([`super::history`]).
//!
//! **The search.** Operations sorted by invocation; from a set of
//! linearized operations and the model's state, the candidates to go next
//! are the unlinearized operations invoked before the earliest completion
//! among the unlinearized ones. Depth-first, each candidate the model
//! accepts is linearized; a (set, state) pair seen before is not explored
//! again. Failing everywhere means no linearization exists; the deepest
//! point reached names the operations that could not go next, which is
//! what a failure message shows. A budget on explored states turns a
//! pathological history into [`Verdict::Unknown`] rather than a hang.
//!
//! Why not a crate: `porcupine-rs` 0.3 brings criterion, rand 0.10 and
//! regex as normal dependencies; stateright 0.31 is a whole model checker
//! (dashmap, tiny_http, ...) whose tester allows one pending operation per
//! thread and does not memoize. This file is small and its tests feed it
//! histories that must pass and histories that must fail.

use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

/// A sequential specification.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    /// An operation together with what its client observed.
    type Op: Debug;
    fn init(&self) -> Self::State;
    /// The state after `op`, or `None` if `op` with its observed result
    /// cannot happen in `state`.
    fn step(&self, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
}

/// One operation to check: `completed` is `None` when its outcome is
/// unknown (it may take effect at any time after `invoked`, or never).
#[derive(Debug, Clone)]
pub struct Operation<O> {
    pub invoked: Duration,
    pub completed: Option<Duration>,
    pub op: O,
}

/// Why no linearization exists, from the deepest point the search reached.
#[derive(Debug, Clone)]
pub struct Failure<S> {
    /// How many operations the longest linearizable prefix held.
    pub linearized: usize,
    pub total: usize,
    /// The model's state after that prefix.
    pub state: S,
    /// Indices (into the checked operations) of the candidates that could
    /// not go next there.
    pub stuck: Vec<usize>,
}

#[derive(Debug, Clone)]
pub enum Verdict<S> {
    Linearizable,
    Violation(Failure<S>),
    /// The search gave up after exploring its budget of states.
    Unknown(String),
}

/// The default budget: distinct (linearized set, state) pairs explored.
pub const DEFAULT_BUDGET: usize = 2_000_000;

struct Frame<S> {
    state: S,
    candidates: Vec<usize>,
    next: usize,
    /// The candidate this frame linearized to reach the frame above it.
    chosen: Option<usize>,
}

/// Checks `ops` against `model`, exploring at most `budget` states.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Op>], budget: usize) -> Verdict<M::State> {
    let n = ops.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| ops[i].invoked);
    let mut done = vec![0u64; n.div_ceil(64)];
    let mut count = 0usize;
    let mut seen: HashSet<(Vec<u64>, M::State)> = HashSet::new();
    let init = model.init();
    let mut frames = vec![Frame {
        candidates: candidates(ops, &order, &done),
        state: init.clone(),
        next: 0,
        chosen: None,
    }];
    let mut deepest = Failure {
        linearized: 0,
        total: n,
        state: init,
        stuck: frames[0].candidates.clone(),
    };
    loop {
        if count == n {
            return Verdict::Linearizable;
        }
        let top = frames.len() - 1;
        let frame = &mut frames[top];
        if frame.next == frame.candidates.len() {
            frames.pop();
            match frames.last_mut() {
                None => return Verdict::Violation(deepest),
                Some(parent) => {
                    let undo = parent.chosen.take().expect("a parent chose");
                    done[undo / 64] &= !(1 << (undo % 64));
                    count -= 1;
                    continue;
                }
            }
        }
        let x = frame.candidates[frame.next];
        frame.next += 1;
        let Some(state) = model.step(&frame.state, &ops[x].op) else {
            continue;
        };
        done[x / 64] |= 1 << (x % 64);
        count += 1;
        if !seen.insert((done.clone(), state.clone())) {
            done[x / 64] &= !(1 << (x % 64));
            count -= 1;
            continue;
        }
        if seen.len() > budget {
            return Verdict::Unknown(format!(
                "explored {budget} states of {n} operations without a verdict"
            ));
        }
        frame.chosen = Some(x);
        let next = Frame {
            candidates: candidates(ops, &order, &done),
            state,
            next: 0,
            chosen: None,
        };
        if count > deepest.linearized {
            deepest = Failure {
                linearized: count,
                total: n,
                state: next.state.clone(),
                stuck: next.candidates.clone(),
            };
        }
        frames.push(next);
    }
}

/// The unlinearized operations that may go next: those invoked no later
/// than the earliest completion among the unlinearized ones.
fn candidates<O>(ops: &[Operation<O>], order: &[usize], done: &[u64]) -> Vec<usize> {
    let pending = || {
        order
            .iter()
            .copied()
            .filter(|&i| done[i / 64] & (1 << (i % 64)) == 0)
    };
    let horizon = pending().filter_map(|i| ops[i].completed).min();
    pending()
        .take_while(|&i| horizon.is_none_or(|h| ops[i].invoked <= h))
        .collect()
}

/// A register holding `Option<V>` (absent at first).
#[derive(Debug, Clone, Copy)]
pub struct Register<V>(std::marker::PhantomData<V>);

impl<V> Default for Register<V> {
    fn default() -> Self {
        Register(std::marker::PhantomData)
    }
}

/// A register operation with what its client observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOp<V> {
    /// Read, and saw this.
    Read(Option<V>),
    /// Wrote this (acknowledged, or unknown).
    Write(V),
    /// Compare-and-set from `expected` to `new`.
    Cas {
        expected: Option<V>,
        new: V,
        result: CasResult<V>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasResult<V> {
    Applied,
    /// Refused; the register held this instead.
    Refused(Option<V>),
    /// The client does not know.
    Unknown,
}

impl<V: Clone + Eq + Hash + Debug> Model for Register<V> {
    type State = Option<V>;
    type Op = RegisterOp<V>;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(&self, state: &Option<V>, op: &RegisterOp<V>) -> Option<Option<V>> {
        match op {
            RegisterOp::Read(seen) => (seen == state).then(|| state.clone()),
            RegisterOp::Write(v) => Some(Some(v.clone())),
            RegisterOp::Cas {
                expected,
                new,
                result,
            } => match result {
                CasResult::Applied => (expected == state).then(|| Some(new.clone())),
                CasResult::Refused(actual) => {
                    (expected != state && actual == state).then(|| state.clone())
                }
                CasResult::Unknown if expected == state => Some(Some(new.clone())),
                CasResult::Unknown => Some(state.clone()),
            },
        }
    }
}

/// Checks one register's history.
pub fn check_register<V: Clone + Eq + Hash + Debug>(
    ops: &[Operation<RegisterOp<V>>],
    budget: usize,
) -> Verdict<Option<V>> {
    check(&Register::default(), ops, budget)
}

/// The operations a linearization needs, as indices into `ops`: all but
/// reads whose outcome is unknown (they change nothing and observed
/// nothing) and writes whose outcome is unknown and whose value no
/// operation observed (read, found by a refused compare-and-set, or
/// expected by one): such a write can always be placed last, where nothing
/// sees it. Sound only when each write's value is unique.
pub fn prune_register<V: Clone + Eq + Hash>(ops: &[Operation<RegisterOp<V>>]) -> Vec<usize> {
    let mut observed: HashSet<&V> = HashSet::new();
    for o in ops {
        match &o.op {
            RegisterOp::Read(Some(v)) => {
                observed.insert(v);
            }
            RegisterOp::Cas {
                expected, result, ..
            } => {
                observed.extend(expected.as_ref());
                if let CasResult::Refused(Some(actual)) = result {
                    observed.insert(actual);
                }
            }
            _ => {}
        }
    }
    (0..ops.len())
        .filter(|&i| {
            let o = &ops[i];
            o.completed.is_some()
                || match &o.op {
                    RegisterOp::Read(_) => false,
                    RegisterOp::Write(v) | RegisterOp::Cas { new: v, .. } => observed.contains(v),
                }
        })
        .collect()
}

#[cfg(test)]
#[path = "linearizable_tests.rs"]
mod tests;
