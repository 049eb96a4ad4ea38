//! The register workload: clients read, write and compare-and-set a few
//! keys through a DistSender, each key a register checked for
//! linearizability on its own.
//!
//! Owns: driving the clients (choices from the seed, unique values per
//! write so that the checker can tell writes apart), classifying each
//! answer as ok, fail or ambiguous, and checking the history key by key
//! with [`super::linearizable`]. Does not own: the faults, nor the
//! DistSender's routing and retries (the product's, under test).
//!
//! Classification, as the KV API promises: a get's value, an acknowledged
//! put and an applied conditional put are ok; a conditional put refused
//! with `ConditionFailed` is ok too and observed the actual value; an
//! `AmbiguousResult`, the DistSender's deadline and the client's own
//! timeout are ambiguous; any other error is a definite failure, and the
//! checker holds the database to it (a failed write's value must never be
//! read).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use meridian_kvapi::{KvError, Request, Response};

use super::history::{counts, excerpt, Counts, Entry, History, Outcome};
use super::linearizable::{
    check_register, prune_register, CasResult, Operation, RegisterOp, Verdict, DEFAULT_BUDGET,
};
use super::rng::Rng;
use super::Stop;
use crate::{ClientError, DistSender};

/// What the clients do.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    pub keys: Vec<Vec<u8>>,
    pub clients: usize,
    /// A client gives up on an operation after this (ambiguous).
    pub op_timeout: Duration,
}

/// An operation as invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Read,
    Write(String),
    Cas {
        expected: Option<String>,
        new: String,
    },
}

/// What an ok operation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Return {
    Read(Option<String>),
    Written,
    Cas(CasResult<String>),
}

/// The operation of a history entry: the key and the call.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyedCall {
    pub key: String,
    pub call: Call,
}

impl fmt::Debug for KeyedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.key, self.call)
    }
}

pub type RegisterHistory = History<KeyedCall, Return>;

/// Runs `config.clients` clients on `ds` until `stop` is raised, recording into
/// `history`.
pub async fn run(
    ds: DistSender,
    history: RegisterHistory,
    seed: u64,
    stop: Stop,
    config: RegisterConfig,
) {
    let mut tasks = Vec::new();
    for client in 0..config.clients {
        let (ds, history, config, stop) =
            (ds.clone(), history.clone(), config.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            run_client(client, ds, history, seed, stop, config).await
        }));
    }
    for task in tasks {
        task.await.expect("a register client panicked");
    }
}

async fn run_client(
    client: usize,
    ds: DistSender,
    history: RegisterHistory,
    seed: u64,
    stop: Stop,
    config: RegisterConfig,
) {
    let mut rng = Rng::fork(seed, 1000 + client as u64);
    let mut process = client as u64;
    let mut last_seen: HashMap<Vec<u8>, Option<String>> = HashMap::new();
    let mut n = 0u64;
    while !stop.is_stopped() {
        let key = rng.pick(&config.keys).clone();
        n += 1;
        let value = format!("{client}.{n}");
        let call = match rng.below(4) {
            0 | 1 => Call::Read,
            2 => Call::Write(value),
            _ => Call::Cas {
                expected: last_seen.get(&key).cloned().flatten(),
                new: value,
            },
        };
        let request = match &call {
            Call::Read => Request::Get { key: key.clone() },
            Call::Write(v) => Request::Put {
                key: key.clone(),
                value: v.clone().into_bytes(),
            },
            Call::Cas { expected, new } => Request::ConditionalPut {
                key: key.clone(),
                value: new.clone().into_bytes(),
                expected: expected.clone().map(String::into_bytes),
            },
        };
        let invoked = history.now();
        let answer = tokio::time::timeout(config.op_timeout, ds.send(vec![request])).await;
        let outcome = classify(&call, answer, config.op_timeout);
        match (&call, &outcome) {
            (_, Outcome::Ok(Return::Read(v)))
            | (_, Outcome::Ok(Return::Cas(CasResult::Refused(v)))) => {
                last_seen.insert(key.clone(), v.clone());
            }
            (Call::Write(v) | Call::Cas { new: v, .. }, Outcome::Ok(_)) => {
                last_seen.insert(key.clone(), Some(v.clone()));
            }
            _ => {}
        }
        let ambiguous = outcome.is_ambiguous();
        let op = KeyedCall {
            key: String::from_utf8_lossy(&key).into_owned(),
            call,
        };
        history.record(process, op, invoked, outcome);
        if ambiguous {
            // The old operation may still be in flight: a new process.
            process += config.clients as u64;
        }
    }
}

fn text(bytes: Option<Vec<u8>>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Whether an error leaves a write's fate unknown.
pub fn is_ambiguous(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Kv(KvError::AmbiguousResult { .. }) | ClientError::Timeout { .. }
    )
}

fn classify(
    call: &Call,
    answer: Result<Result<Vec<Response>, ClientError>, tokio::time::error::Elapsed>,
    timeout: Duration,
) -> Outcome<Return> {
    let answer = match answer {
        Err(_) => return Outcome::Ambiguous(format!("no answer within {timeout:?}")),
        Ok(answer) => answer,
    };
    match (call, answer) {
        (Call::Read, Ok(r)) if matches!(r.first(), Some(Response::Get { .. })) => {
            let Some(Response::Get { value }) = r.into_iter().next() else {
                unreachable!()
            };
            Outcome::Ok(Return::Read(text(value)))
        }
        (Call::Write(_), Ok(r)) if r.first() == Some(&Response::Put) => {
            Outcome::Ok(Return::Written)
        }
        (Call::Cas { .. }, Ok(r)) if r.first() == Some(&Response::ConditionalPut) => {
            Outcome::Ok(Return::Cas(CasResult::Applied))
        }
        (_, Ok(r)) => Outcome::Fail(format!("unexpected response {r:?}")),
        (Call::Cas { .. }, Err(ClientError::Kv(KvError::ConditionFailed { actual }))) => {
            Outcome::Ok(Return::Cas(CasResult::Refused(text(actual))))
        }
        (_, Err(e)) if is_ambiguous(&e) => Outcome::Ambiguous(e.to_string()),
        (_, Err(e)) => Outcome::Fail(e.to_string()),
    }
}

/// What a check found, when it found nothing wrong.
#[derive(Debug, Clone)]
pub struct Summary {
    pub outcomes: Counts,
    /// Operations the checker had to place (after pruning), over all keys.
    pub checked: usize,
    pub keys: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} over {} keys; {} operations linearized",
            self.outcomes, self.keys, self.checked
        )
    }
}

/// The checker's view of one entry: `None` when it cannot have had an
/// effect (a definite failure).
fn operation(e: &Entry<KeyedCall, Return>) -> Option<Operation<RegisterOp<String>>> {
    let (completed, op) = match (&e.op.call, &e.outcome) {
        (_, Outcome::Fail(_)) => return None,
        (Call::Read, Outcome::Ok(Return::Read(v))) => {
            (Some(e.completed), RegisterOp::Read(v.clone()))
        }
        (Call::Write(v), Outcome::Ok(_)) => (Some(e.completed), RegisterOp::Write(v.clone())),
        (Call::Cas { expected, new }, Outcome::Ok(Return::Cas(result))) => (
            Some(e.completed),
            RegisterOp::Cas {
                expected: expected.clone(),
                new: new.clone(),
                result: result.clone(),
            },
        ),
        (Call::Read, Outcome::Ambiguous(_)) => return None,
        (Call::Write(v), Outcome::Ambiguous(_)) => (None, RegisterOp::Write(v.clone())),
        (Call::Cas { expected, new }, Outcome::Ambiguous(_)) => (
            None,
            RegisterOp::Cas {
                expected: expected.clone(),
                new: new.clone(),
                result: CasResult::Unknown,
            },
        ),
        (call, Outcome::Ok(r)) => panic!("{call:?} cannot return {r:?}"),
    };
    Some(Operation {
        invoked: e.invoked,
        completed,
        op,
    })
}

/// Checks every key's history for linearizability. The error names the
/// key, where the search got stuck, and the key's history around it.
pub fn check(entries: &[Entry<KeyedCall, Return>]) -> Result<Summary, String> {
    let mut by_key: BTreeMap<&str, Vec<&Entry<KeyedCall, Return>>> = BTreeMap::new();
    for e in entries {
        by_key.entry(&e.op.key).or_default().push(e);
    }
    let mut checked = 0;
    for (key, key_entries) in &by_key {
        let (sources, ops): (Vec<&Entry<_, _>>, Vec<_>) = key_entries
            .iter()
            .filter_map(|e| operation(e).map(|o| (*e, o)))
            .unzip();
        let kept = prune_register(&ops);
        let ops: Vec<_> = kept.iter().map(|&i| ops[i].clone()).collect();
        let sources: Vec<_> = kept.iter().map(|&i| sources[i]).collect();
        checked += ops.len();
        match check_register(&ops, DEFAULT_BUDGET) {
            Verdict::Linearizable => {}
            Verdict::Unknown(why) => return Err(format!("key {key}: the checker gave up: {why}")),
            Verdict::Violation(f) => {
                let stuck: Vec<String> = f
                    .stuck
                    .iter()
                    .map(|&i| format!("  {}", sources[i]))
                    .collect();
                let from = f
                    .stuck
                    .iter()
                    .map(|&i| ops[i].invoked)
                    .min()
                    .unwrap_or_default();
                let to = f
                    .stuck
                    .iter()
                    .filter_map(|&i| ops[i].completed)
                    .max()
                    .unwrap_or(from);
                let all: Vec<_> = key_entries.iter().map(|e| (*e).clone()).collect();
                return Err(format!(
                    "key {key} is not linearizable: the longest linearizable prefix places {} of {} \
                     operations and leaves the register at {:?}; none of these can come next:\n{}\n\
                     the history of {key} around them:\n{}",
                    f.linearized,
                    f.total,
                    f.state,
                    stuck.join("\n"),
                    excerpt(&all, from.saturating_sub(Duration::from_millis(500)), to, 40)
                ));
            }
        }
    }
    Ok(Summary {
        outcomes: counts(entries),
        checked,
        keys: by_key.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, call: Call, at: u64, outcome: Outcome<Return>) -> Entry<KeyedCall, Return> {
        Entry {
            process: at,
            op: KeyedCall {
                key: key.to_string(),
                call,
            },
            invoked: Duration::from_millis(at),
            completed: Duration::from_millis(at + 5),
            outcome,
        }
    }

    /// A write whose value is read later: fine if its outcome was
    /// ambiguous, a violation if it had failed definitely, and the message
    /// names the key and shows the operations.
    #[test]
    fn a_definitely_failed_write_must_never_be_read_but_an_ambiguous_one_may() {
        let history = |write: Outcome<Return>| {
            vec![
                entry("k", Call::Write("1.1".into()), 0, write),
                entry(
                    "k",
                    Call::Read,
                    10,
                    Outcome::Ok(Return::Read(Some("1.1".into()))),
                ),
                entry("other", Call::Read, 10, Outcome::Ok(Return::Read(None))),
            ]
        };
        let summary = check(&history(Outcome::Ambiguous("timeout".into()))).unwrap();
        assert_eq!((summary.keys, summary.outcomes.ambiguous), (2, 1));
        let e = check(&history(Outcome::Fail("refused".into()))).unwrap_err();
        assert!(e.contains("key k is not linearizable"), "{e}");
        assert!(
            e.contains("FAIL (refused)") && e.contains("Read(Some(\"1.1\"))"),
            "{e}"
        );
    }

    #[test]
    fn a_refused_conditional_put_observes_the_value_it_found() {
        let cas = |found: &str| Call::Cas {
            expected: None,
            new: format!("2.{found}"),
        };
        let refused =
            |found: &str| Outcome::Ok(Return::Cas(CasResult::Refused(Some(found.into()))));
        let ok = vec![
            entry(
                "k",
                Call::Write("1.1".into()),
                0,
                Outcome::Ok(Return::Written),
            ),
            entry("k", cas("a"), 10, refused("1.1")),
        ];
        assert!(check(&ok).is_ok());
        let wrong = vec![
            entry(
                "k",
                Call::Write("1.1".into()),
                0,
                Outcome::Ok(Return::Written),
            ),
            entry("k", cas("b"), 10, refused("9.9")),
        ];
        assert!(check(&wrong).is_err());
    }
}
