use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn manual(start: u64, max_offset_ms: u64) -> (Arc<ManualClock>, HybridClock) {
    let physical = Arc::new(ManualClock::new(start));
    let clock = HybridClock::new(physical.clone(), Duration::from_millis(max_offset_ms));
    (physical, clock)
}

#[test]
fn now_follows_physical_time() {
    let (physical, clock) = manual(1_000, 500);
    assert_eq!(clock.now(), Timestamp::new(1_000, 0));
    assert_eq!(clock.now(), Timestamp::new(1_000, 1));
    physical.advance(Duration::from_nanos(5));
    assert_eq!(clock.now(), Timestamp::new(1_005, 0));
}

#[test]
fn now_is_monotonic_when_physical_clock_steps_back() {
    let (physical, clock) = manual(10_000, 500);
    let before = clock.now();
    physical.set(5_000);
    let after = clock.now();
    assert!(after > before, "{after} must be after {before}");
}

#[test]
fn update_moves_past_remote() {
    let (_physical, clock) = manual(1_000, 500);
    let remote = Timestamp::new(2_000, 7);
    let ts = clock.update(remote).unwrap();
    assert_eq!(ts, Timestamp::new(2_000, 8));
    assert!(clock.now() > remote);
}

#[test]
fn update_refuses_remote_beyond_max_offset() {
    let (_physical, clock) = manual(1_000_000_000, 500);
    let before = clock.now();
    let remote = Timestamp::new(1_000_000_000 + 501_000_000, 0);
    let err = clock.update(remote).unwrap_err();
    assert_eq!(err.remote, remote);
    assert_eq!(err.ahead, Duration::from_millis(501));
    // The refused timestamp must not have moved the clock.
    assert_eq!(clock.now(), before.next());
    // Exactly max_offset ahead is still accepted.
    let at_limit = Timestamp::new(1_000_000_000 + 500_000_000, 0);
    assert!(clock.update(at_limit).is_ok());
}

#[test]
fn skewed_clock_shifts_base() {
    let base = Arc::new(ManualClock::new(1_000));
    let skewed = SkewedClock::new(base.clone());
    skewed.set_skew_nanos(-400);
    assert_eq!(skewed.now_nanos(), 600);
    skewed.set_skew_nanos(-4_000);
    assert_eq!(skewed.now_nanos(), 0);
    skewed.set_skew_nanos(250);
    assert_eq!(skewed.now_nanos(), 1_250);
}

#[test]
fn next_and_prev_carry_over_logical() {
    let t = Timestamp::new(5, u32::MAX);
    assert_eq!(t.next(), Timestamp::new(6, 0));
    assert_eq!(Timestamp::new(6, 0).prev(), t);
    assert_eq!(Timestamp::MAX.next(), Timestamp::MAX);
    assert_eq!(Timestamp::ZERO.prev(), Timestamp::ZERO);
}

#[test]
fn display_matches_cockroach_format() {
    let t = Timestamp::new(1_700_000_000_123_456_789, 3);
    assert_eq!(t.to_string(), "1700000000.123456789,3");
}

#[test]
fn concurrent_now_is_unique_and_increasing_per_thread() {
    let clock = Arc::new(HybridClock::system());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let clock = clock.clone();
            std::thread::spawn(move || {
                let mut seen = Vec::with_capacity(10_000);
                for _ in 0..10_000 {
                    seen.push(clock.now());
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let seen = t.join().unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        all.extend(seen);
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "two callers got the same timestamp");
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    StepBack(u64),
    Now,
    Update { ahead_nanos: i64, logical: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..1_000_000).prop_map(Op::Advance),
        (0u64..1_000_000).prop_map(Op::StepBack),
        Just(Op::Now),
        (-2_000_000i64..2_000_000, any::<u32>()).prop_map(|(ahead_nanos, logical)| Op::Update {
            ahead_nanos,
            logical
        }),
    ]
}

proptest! {
    /// Whatever the physical clock does and whatever remote timestamps
    /// arrive: every returned timestamp exceeds all earlier ones, an accepted
    /// update exceeds the remote timestamp, and a refused one was beyond
    /// max_offset.
    #[test]
    fn monotonic_causal_and_bounded(ops in proptest::collection::vec(op(), 1..200)) {
        let max_offset = Duration::from_nanos(1_000_000);
        let physical = Arc::new(ManualClock::new(1_000_000_000));
        let clock = HybridClock::new(physical.clone(), max_offset);
        let mut last = Timestamp::ZERO;
        for op in ops {
            match op {
                Op::Advance(n) => physical.advance(Duration::from_nanos(n)),
                Op::StepBack(n) => physical.set(physical.now_nanos() - n),
                Op::Now => {
                    let ts = clock.now();
                    prop_assert!(ts > last);
                    last = ts;
                }
                Op::Update { ahead_nanos, logical } => {
                    let local = physical.now_nanos();
                    let remote = Timestamp::new(local.saturating_add_signed(ahead_nanos), logical);
                    match clock.update(remote) {
                        Ok(ts) => {
                            prop_assert!(ts > remote);
                            prop_assert!(ts > last);
                            prop_assert!(ahead_nanos <= 1_000_000);
                            last = ts;
                        }
                        Err(err) => {
                            prop_assert!(ahead_nanos > 1_000_000);
                            prop_assert!(err.ahead > max_offset);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn ordering_is_wall_then_logical(a in any::<(u64, u32)>(), b in any::<(u64, u32)>()) {
        let ta = Timestamp::new(a.0, a.1);
        let tb = Timestamp::new(b.0, b.1);
        prop_assert_eq!(ta.cmp(&tb), a.cmp(&b));
    }
}
