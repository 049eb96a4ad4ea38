//! The checker against histories whose answer is known: it must accept
//! the linearizable ones and reject the others, naming where it got stuck.

use super::*;
use crate::nemesis::rng::Rng;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn done(i: u64, c: u64, op: RegisterOp<u32>) -> Operation<RegisterOp<u32>> {
    Operation {
        invoked: ms(i),
        completed: Some(ms(c)),
        op,
    }
}

fn unknown(i: u64, op: RegisterOp<u32>) -> Operation<RegisterOp<u32>> {
    Operation {
        invoked: ms(i),
        completed: None,
        op,
    }
}

use RegisterOp::{Read, Write};

fn cas(expected: Option<u32>, new: u32, result: CasResult<u32>) -> RegisterOp<u32> {
    RegisterOp::Cas {
        expected,
        new,
        result,
    }
}

fn ok(ops: &[Operation<RegisterOp<u32>>]) -> bool {
    match check_register(ops, DEFAULT_BUDGET) {
        Verdict::Linearizable => true,
        Verdict::Violation(_) => false,
        Verdict::Unknown(why) => panic!("no verdict: {why}"),
    }
}

#[test]
fn sequential_reads_see_the_last_write() {
    assert!(ok(&[
        done(0, 1, Read(None)),
        done(2, 3, Write(1)),
        done(4, 5, Read(Some(1))),
        done(6, 7, Write(2)),
        done(8, 9, Read(Some(2))),
    ]));
    assert!(ok(&[]));
}

#[test]
fn a_read_after_an_acknowledged_write_cannot_see_the_older_value() {
    assert!(!ok(&[done(0, 1, Write(1)), done(2, 3, Read(None))]));
    // A stale read after a newer one was seen: the value went back in time.
    assert!(!ok(&[
        done(0, 1, Write(1)),
        done(2, 10, Write(2)),
        done(3, 4, Read(Some(2))),
        done(5, 6, Read(Some(1))),
    ]));
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    for seen in [None, Some(1)] {
        assert!(ok(&[done(0, 10, Write(1)), done(2, 3, Read(seen))]));
    }
    // ... but two reads inside the write cannot see new then old.
    assert!(!ok(&[
        done(0, 10, Write(1)),
        done(2, 3, Read(Some(1))),
        done(4, 5, Read(None)),
    ]));
}

#[test]
fn a_value_nobody_wrote_is_a_violation() {
    assert!(!ok(&[done(0, 1, Write(1)), done(2, 3, Read(Some(7)))]));
}

#[test]
fn an_ambiguous_write_may_apply_late_or_never_but_not_twice() {
    // Seen long after the client gave up: fine.
    assert!(ok(&[
        unknown(0, Write(1)),
        done(5, 6, Read(None)),
        done(50, 51, Read(Some(1))),
    ]));
    // Never seen: fine.
    assert!(ok(&[unknown(0, Write(1)), done(5, 6, Read(None))]));
    // Seen, then gone back to the value before it with no write between.
    assert!(!ok(&[
        unknown(0, Write(1)),
        done(5, 6, Read(Some(1))),
        done(7, 8, Read(None)),
    ]));
    // Not before its invocation.
    assert!(!ok(&[done(0, 1, Read(Some(1))), unknown(5, Write(1))]));
}

#[test]
fn compare_and_set_applies_only_from_its_expected_value() {
    assert!(ok(&[
        done(0, 1, Write(1)),
        done(2, 3, cas(Some(1), 2, CasResult::Applied)),
        done(4, 5, cas(Some(1), 3, CasResult::Refused(Some(2)))),
        done(6, 7, Read(Some(2))),
    ]));
    // Two concurrent CASes from the same value cannot both apply.
    assert!(!ok(&[
        done(0, 1, Write(1)),
        done(2, 10, cas(Some(1), 2, CasResult::Applied)),
        done(3, 9, cas(Some(1), 3, CasResult::Applied)),
    ]));
    // A refusal must report the value actually there.
    assert!(!ok(&[
        done(0, 1, Write(1)),
        done(2, 3, cas(Some(5), 2, CasResult::Refused(None))),
    ]));
    // A CAS from absent applies on an empty register.
    assert!(ok(&[
        done(0, 1, cas(None, 4, CasResult::Applied)),
        done(2, 3, Read(Some(4))),
    ]));
}

#[test]
fn an_unknown_cas_applies_only_where_its_expected_value_holds() {
    assert!(ok(&[
        done(0, 1, Write(1)),
        unknown(2, cas(Some(1), 2, CasResult::Unknown)),
        done(5, 6, Read(Some(2))),
    ]));
    assert!(!ok(&[
        done(0, 1, Write(1)),
        unknown(2, cas(Some(9), 2, CasResult::Unknown)),
        done(5, 6, Read(Some(2))),
    ]));
}

#[test]
fn a_failure_names_the_operations_that_could_not_go_next() {
    let ops = [
        done(0, 1, Write(1)),
        done(2, 3, Write(2)),
        done(4, 5, Read(Some(1))),
    ];
    match check_register(&ops, DEFAULT_BUDGET) {
        Verdict::Violation(f) => {
            assert_eq!((f.linearized, f.total), (2, 3));
            assert_eq!(f.state, Some(2));
            assert_eq!(f.stuck, vec![2]);
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn the_budget_turns_a_huge_search_into_no_verdict() {
    // Many writes all concurrent with one impossible read.
    let mut ops: Vec<_> = (0..20).map(|v| done(0, 100, Write(v))).collect();
    ops.push(done(200, 201, Read(Some(99))));
    assert!(matches!(check_register(&ops, 1000), Verdict::Unknown(_)));
}

#[test]
fn pruning_drops_unknown_reads_and_unobserved_unknown_writes_only() {
    let ops = vec![
        unknown(0, Read(Some(3))),
        unknown(1, Write(1)),
        unknown(2, Write(2)),
        unknown(3, cas(Some(2), 5, CasResult::Unknown)),
        done(4, 5, Read(Some(2))),
    ];
    assert_eq!(prune_register(&ops), vec![2, 4]);
}

fn pruned(ops: &[Operation<RegisterOp<u32>>]) -> Vec<Operation<RegisterOp<u32>>> {
    prune_register(ops)
        .into_iter()
        .map(|i| ops[i].clone())
        .collect()
}

/// A real register driven by overlapping clients: its history must pass;
/// the same history with one read's result changed to a value that was
/// never written must fail.
#[test]
fn random_histories_of_a_real_register_pass_and_a_corrupted_one_fails() {
    for seed in 0..30 {
        let mut rng = Rng::new(seed);
        let mut value: Option<u32> = None;
        let mut ops = Vec::new();
        let mut t = 0u64;
        for n in 0..60u32 {
            // Each operation takes effect at `t`, and its interval is
            // stretched around it at random so that many overlap.
            t += rng.range(1, 5);
            let invoked = t.saturating_sub(rng.range(0, 12));
            let completed = t + rng.range(0, 12);
            let op = match rng.below(3) {
                0 => Read(value),
                1 => {
                    value = Some(n);
                    Write(n)
                }
                _ => {
                    let expected = if rng.chance(50) {
                        value
                    } else {
                        Some(n + 1000)
                    };
                    if expected == value {
                        value = Some(n);
                        cas(expected, n, CasResult::Applied)
                    } else {
                        cas(expected, n, CasResult::Refused(value))
                    }
                }
            };
            ops.push(if rng.chance(10) && !matches!(op, Read(_)) {
                unknown(invoked, op)
            } else {
                done(invoked, completed, op)
            });
        }
        assert!(
            ok(&pruned(&ops)),
            "seed {seed}: a real register's history failed"
        );
        let read = ops
            .iter()
            .rposition(|o| matches!(o.op, Read(_)))
            .expect("some read");
        ops[read].op = Read(Some(9999));
        assert!(!ok(&pruned(&ops)), "seed {seed}: a corrupted read passed");
    }
}
