//! The set workload: clients insert unique keys (conditional puts on
//! absent keys) through a DistSender; at the end every acknowledged insert
//! must be present, and no insert that definitely failed.
//!
//! Owns: driving the clients, classifying each insert, reading the set
//! back once the faults are over (a scan per prefix, retried until it
//! answers), and the check. Ambiguous inserts may be present or not. An
//! insert refused with `ConditionFailed` is a definite failure: the key
//! was absent before (keys are unique), so a refusal means the database
//! sent the write twice (applied once, refused the second time), which the
//! DistSender promises never to do; the check then finds a "failed"
//! insert present and says so. Does not own: the faults, the scan's
//! routing (the DistSender's).

use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, Instant};

use meridian_kvapi::{Request, Response};

use super::history::{counts, excerpt, Counts, Entry, History, Outcome};
use super::register::is_ambiguous;
use super::rng::Rng;
use super::Stop;
use crate::{ClientError, DistSender};

#[derive(Debug, Clone)]
pub struct SetConfig {
    /// Client `i` inserts under `prefixes[i % len]`.
    pub prefixes: Vec<Vec<u8>>,
    pub clients: usize,
    pub op_timeout: Duration,
}

pub type SetHistory = History<String, ()>;

/// Runs the clients until `stop` is raised. Keys are `prefix` + `client-n`.
pub async fn run(ds: DistSender, history: SetHistory, seed: u64, stop: Stop, config: SetConfig) {
    let mut tasks = Vec::new();
    for client in 0..config.clients {
        let (ds, history, config, stop) =
            (ds.clone(), history.clone(), config.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = Rng::fork(seed, 3000 + client as u64);
            let prefix = String::from_utf8_lossy(&config.prefixes[client % config.prefixes.len()])
                .into_owned();
            let mut process = client as u64;
            let mut n = 0u64;
            while !stop.is_stopped() {
                n += 1 + rng.below(2);
                let key = format!("{prefix}{client:02}-{n:06}");
                let request = Request::ConditionalPut {
                    key: key.clone().into_bytes(),
                    value: b"1".to_vec(),
                    expected: None,
                };
                let invoked = history.now();
                let answer = tokio::time::timeout(config.op_timeout, ds.send(vec![request])).await;
                let outcome = match answer {
                    Err(_) => {
                        Outcome::Ambiguous(format!("no answer within {:?}", config.op_timeout))
                    }
                    Ok(Ok(r)) if r.first() == Some(&Response::ConditionalPut) => Outcome::Ok(()),
                    Ok(Ok(r)) => Outcome::Fail(format!("unexpected response {r:?}")),
                    Ok(Err(e)) if is_ambiguous(&e) => Outcome::Ambiguous(e.to_string()),
                    Ok(Err(e)) => Outcome::Fail(e.to_string()),
                };
                let ambiguous = outcome.is_ambiguous();
                history.record(process, key, invoked, outcome);
                if ambiguous {
                    process += config.clients as u64;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("a set client panicked");
    }
}

/// The first key after every key starting with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return end;
        }
    }
    vec![u8::MAX; prefix.len() + 1]
}

/// Reads every key under `prefixes`, retrying a failed scan until
/// `timeout`.
pub async fn read_final(
    ds: &DistSender,
    prefixes: &[Vec<u8>],
    timeout: Duration,
) -> Result<BTreeSet<String>, String> {
    let deadline = Instant::now() + timeout;
    let mut present = BTreeSet::new();
    for prefix in prefixes {
        let scan = Request::Scan {
            start: prefix.clone(),
            end: prefix_end(prefix),
            max_rows: 0,
        };
        let rows = loop {
            match ds.send(vec![scan.clone()]).await {
                Ok(mut r) => match r.pop() {
                    Some(Response::Scan { rows, .. }) => break rows,
                    other => return Err(format!("a scan answered {other:?}")),
                },
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!(
                        "the final scan of {:?} failed: {e}",
                        String::from_utf8_lossy(prefix)
                    ))
                }
                Err(ClientError::InvalidRequest(e)) => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        present.extend(
            rows.into_iter()
                .map(|(k, _)| String::from_utf8_lossy(&k).into_owned()),
        );
    }
    Ok(present)
}

#[derive(Debug, Clone)]
pub struct Summary {
    pub inserts: Counts,
    /// Ambiguous inserts found present at the end.
    pub ambiguous_present: usize,
    pub present: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "inserts: {} ({} of the ambiguous ones present); {} keys at the end",
            self.inserts, self.ambiguous_present, self.present
        )
    }
}

/// Every acknowledged insert present, no definitely failed one present,
/// nothing present that nobody inserted.
pub fn check(entries: &[Entry<String, ()>], present: &BTreeSet<String>) -> Result<Summary, String> {
    let around = |e: &Entry<String, ()>| {
        excerpt(
            entries,
            e.invoked.saturating_sub(Duration::from_secs(1)),
            e.completed + Duration::from_secs(1),
            30,
        )
    };
    let mut ambiguous_present = 0;
    for e in entries {
        let here = present.contains(&e.op);
        match &e.outcome {
            Outcome::Ok(()) if !here => {
                return Err(format!(
                    "an acknowledged insert is missing:\n  {e}\nthe history around it:\n{}",
                    around(e)
                ))
            }
            Outcome::Fail(_) if here => {
                return Err(format!(
                "an insert that failed definitely is present:\n  {e}\nthe history around it:\n{}",
                around(e)
            ))
            }
            Outcome::Ambiguous(_) if here => ambiguous_present += 1,
            _ => {}
        }
    }
    let inserted: BTreeSet<&String> = entries.iter().map(|e| &e.op).collect();
    if let Some(stray) = present.iter().find(|k| !inserted.contains(k)) {
        return Err(format!("{stray} is present but no client inserted it"));
    }
    Ok(Summary {
        inserts: counts(entries),
        ambiguous_present,
        present: present.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(key: &str, outcome: Outcome<()>) -> Entry<String, ()> {
        Entry {
            process: 1,
            op: key.to_string(),
            invoked: Duration::ZERO,
            completed: Duration::from_millis(1),
            outcome,
        }
    }

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn acknowledged_inserts_must_be_there_and_failed_ones_must_not() {
        let entries = vec![
            insert("a", Outcome::Ok(())),
            insert("b", Outcome::Ambiguous("lost".into())),
            insert("c", Outcome::Fail("refused".into())),
        ];
        let s = check(&entries, &set(&["a", "b"])).unwrap();
        assert_eq!(s.ambiguous_present, 1);
        assert!(check(&entries, &set(&["a"])).is_ok());
        let e = check(&entries, &set(&["b"])).unwrap_err();
        assert!(e.contains("acknowledged insert is missing"), "{e}");
        let e = check(&entries, &set(&["a", "c"])).unwrap_err();
        assert!(e.contains("failed definitely is present"), "{e}");
        let e = check(&entries, &set(&["a", "z"])).unwrap_err();
        assert!(e.contains("z is present but no client inserted it"), "{e}");
    }

    #[test]
    fn a_prefix_ends_just_after_its_last_key() {
        assert_eq!(prefix_end(b"f/"), b"f0".to_vec());
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b".to_vec());
    }
}
