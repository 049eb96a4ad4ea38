//! The timestamp cache against hand-picked cases and, by property, against
//! a list of every read recorded.

use proptest::prelude::*;

use super::*;

const T1: Option<TxnId> = Some(TxnId(1));
const T2: Option<TxnId> = Some(TxnId(2));

fn ts(wall: u64) -> Timestamp {
    Timestamp::new(wall, 0)
}

fn cache(low_water: u64) -> TimestampCache {
    TimestampCache::new(ts(low_water), TsCacheLimits::DEFAULT)
}

fn point(key: &[u8]) -> Span<'_> {
    (key, None)
}

fn span<'a>(start: &'a [u8], end: &'a [u8]) -> Span<'a> {
    (start, Some(end))
}

/// The segments are ordered, non-empty, non-overlapping, and the byte
/// count is their sum.
fn check_invariants(cache: &TimestampCache) {
    let mut previous_end: Option<&[u8]> = None;
    for (start, segment) in &cache.segments {
        assert!(start < &segment.end, "empty segment at {start:?}");
        if let Some(previous_end) = previous_end {
            assert!(previous_end <= start.as_slice(), "overlap at {start:?}");
        }
        previous_end = Some(&segment.end);
    }
    let bytes: usize = cache.segments.iter().map(|(k, s)| cost(k, s)).sum();
    assert_eq!(cache.bytes, bytes);
}

#[test]
fn an_empty_cache_answers_its_low_water_mark() {
    let c = cache(7);
    assert_eq!(c.max_over(point(b"k"), None), ts(7));
    assert_eq!(c.max_over(span(b"a", b"z"), T1), ts(7));
    assert!(c.is_empty());
}

#[test]
fn a_point_read_covers_its_key_only() {
    let mut c = cache(0);
    c.record(point(b"k"), ts(10), None);
    assert_eq!(c.max_over(point(b"k"), None), ts(10));
    assert_eq!(c.max_over(span(b"a", b"z"), None), ts(10));
    assert_eq!(c.max_over(point(b"k\0"), None), ts(0), "the next key");
    assert_eq!(c.max_over(point(b"j"), None), ts(0));
    assert_eq!(c.max_over(span(b"a", b"k"), None), ts(0), "ends before it");
    assert_eq!(c.max_over(span(b"k\0", b"z"), None), ts(0), "starts after");
    check_invariants(&c);
}

#[test]
fn a_scan_covers_its_half_open_span() {
    let mut c = cache(0);
    c.record(span(b"c", b"f"), ts(10), None);
    for key in [&b"c"[..], b"d", b"e\xff"] {
        assert_eq!(c.max_over(point(key), None), ts(10), "{key:?}");
    }
    for key in [&b"b"[..], b"f", b"g"] {
        assert_eq!(c.max_over(point(key), None), ts(0), "{key:?}");
    }
    assert_eq!(c.max_over(span(b"a", b"c\0"), None), ts(10));
    assert_eq!(c.max_over(span(b"e\xff", b"z"), None), ts(10));
}

#[test]
fn a_transactions_own_reads_do_not_count_for_it() {
    let mut c = cache(5);
    c.record(point(b"k"), ts(10), T1);
    assert_eq!(c.max_over(point(b"k"), T1), ts(5), "its own read");
    assert_eq!(c.max_over(point(b"k"), T2), ts(10));
    assert_eq!(c.max_over(point(b"k"), None), ts(10));

    // Another reader below: that read counts for the first transaction.
    c.record(point(b"k"), ts(8), T2);
    assert_eq!(c.max_over(point(b"k"), T1), ts(8));
    assert_eq!(c.max_over(point(b"k"), T2), ts(10));

    // Its own later read above everything: the others' highest remains.
    c.record(point(b"k"), ts(20), T1);
    assert_eq!(c.max_over(point(b"k"), T1), ts(8));
    assert_eq!(c.max_over(point(b"k"), T2), ts(20));
}

#[test]
fn two_readers_at_the_same_timestamp_count_for_both() {
    let mut c = cache(0);
    c.record(point(b"k"), ts(10), T1);
    c.record(point(b"k"), ts(10), T2);
    assert_eq!(c.max_over(point(b"k"), T1), ts(10));
    assert_eq!(c.max_over(point(b"k"), T2), ts(10));

    let mut c = cache(0);
    c.record(point(b"k"), ts(10), T1);
    c.record(point(b"k"), ts(10), None);
    assert_eq!(c.max_over(point(b"k"), T1), ts(10), "a non-txn read");
}

#[test]
fn overlapping_spans_split_and_keep_the_higher_read() {
    let mut c = cache(0);
    c.record(span(b"a", b"e"), ts(10), None);
    c.record(span(b"c", b"g"), ts(20), None);
    c.record(span(b"b", b"d"), ts(5), None);
    assert_eq!(c.max_over(span(b"a", b"c"), None), ts(10));
    assert_eq!(c.max_over(span(b"c", b"e"), None), ts(20));
    assert_eq!(c.max_over(point(b"f"), None), ts(20));
    assert_eq!(c.max_over(point(b"g"), None), ts(0));
    assert_eq!(c.len(), 2, "{:?}", c.segments);
    check_invariants(&c);
}

#[test]
fn a_read_dominating_many_segments_leaves_one() {
    let mut c = cache(0);
    for (i, key) in [b"a", b"c", b"e", b"g"].iter().enumerate() {
        c.record(point(&key[..]), ts(10 + i as u64), None);
    }
    assert_eq!(c.len(), 4);
    c.record(span(b"a", b"z"), ts(50), None);
    assert_eq!(c.len(), 1, "{:?}", c.segments);
    assert_eq!(c.max_over(point(b"b"), None), ts(50));
    check_invariants(&c);
}

#[test]
fn a_read_at_or_below_the_low_water_mark_records_nothing() {
    let mut c = cache(10);
    c.record(point(b"k"), ts(10), None);
    c.record(span(b"a", b"z"), ts(3), T1);
    assert!(c.is_empty());
}

#[test]
fn eviction_raises_the_low_water_mark_over_every_evicted_read() {
    let limits = TsCacheLimits {
        max_entries: 16,
        max_bytes: usize::MAX,
    };
    let mut c = TimestampCache::new(ts(1), limits);
    let keys: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_be_bytes().to_vec()).collect();
    for (i, key) in keys.iter().enumerate() {
        // Timestamps out of key order, so eviction must pick by time.
        let at = ts(2 + (i as u64 * 37) % 100);
        c.record(point(key), at, T1);
        assert!(c.len() <= 16);
        check_invariants(&c);
    }
    assert!(c.low_water() > ts(1));
    for (i, key) in keys.iter().enumerate() {
        let at = ts(2 + (i as u64 * 37) % 100);
        assert!(c.max_over(point(key), T2) >= at, "lost the read of {key:?}");
    }
}

#[test]
fn eviction_honours_the_byte_limit() {
    let limits = TsCacheLimits {
        max_entries: usize::MAX,
        max_bytes: 10 * (ENTRY_OVERHEAD + 2 * 101),
    };
    let mut c = TimestampCache::new(ts(0), limits);
    for i in 0..50u64 {
        let key = vec![i as u8; 100];
        c.record(point(&key), ts(i + 1), None);
        assert!(c.bytes() <= limits.max_bytes);
        check_invariants(&c);
    }
    assert!(c.low_water() >= ts(40));
}

#[test]
fn requests_read_what_they_looked_at() {
    let key = b"k".to_vec();
    let (a, z) = (b"a".to_vec(), b"z".to_vec());
    let get = Request::Get { key: key.clone() };
    assert_eq!(read_span(&get, None), Some(point(b"k")));
    let cput = Request::ConditionalPut {
        key: key.clone(),
        value: vec![],
        expected: None,
    };
    assert_eq!(read_span(&cput, None), Some(point(b"k")));
    assert_eq!(write_span(&cput), Some(point(b"k")));
    let put = Request::Put {
        key: key.clone(),
        value: vec![],
    };
    assert_eq!(read_span(&put, None), None, "a blind write");
    assert_eq!(write_span(&put), Some(point(b"k")));
    let delete_range = Request::DeleteRange {
        start: a.clone(),
        end: z.clone(),
    };
    assert_eq!(read_span(&delete_range, None), Some(span(b"a", b"z")));
    assert_eq!(write_span(&delete_range), Some(span(b"a", b"z")));

    let stopped_at = |resume: &[u8]| Response::Scan {
        rows: vec![],
        resume_key: Some(resume.to_vec()),
    };
    let scan = Request::Scan {
        start: a.clone(),
        end: z.clone(),
        max_rows: 2,
    };
    assert_eq!(read_span(&scan, None), Some(span(b"a", b"z")));
    assert_eq!(
        read_span(&scan, Some(&stopped_at(b"c\0"))),
        Some(span(b"a", b"c\0"))
    );
    assert_eq!(write_span(&scan), None);
    let reverse = Request::ReverseScan {
        start: a,
        end: z,
        max_rows: 2,
    };
    assert_eq!(
        read_span(&reverse, Some(&stopped_at(b"x"))),
        Some(span(b"x", b"z"))
    );
}

/// A read the model remembers: `[start, end)` at `ts` by `txn`.
#[derive(Debug, Clone)]
struct ModelRead {
    start: Vec<u8>,
    end: Vec<u8>,
    ts: Timestamp,
    txn: Option<TxnId>,
}

/// Short keys over a tiny alphabet (with `\0`, so `key\0` successors meet
/// other keys), and spans that are points, ranges or empty.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![0u8, 1, 2]), 0..3)
}

fn span_strategy() -> impl Strategy<Value = (Vec<u8>, Option<Vec<u8>>)> {
    (key(), prop::option::weighted(0.6, key()))
}

fn txn() -> impl Strategy<Value = Option<TxnId>> {
    prop::option::of((1u128..4).prop_map(TxnId))
}

fn end_of(start: &[u8], end: &Option<Vec<u8>>) -> Vec<u8> {
    end.clone().unwrap_or_else(|| successor(start))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// After any reads, a lookup returns at least the highest overlapping
    /// read by another reader and at most that or the low-water mark; with
    /// room to spare (no eviction) exactly the larger of the two.
    #[test]
    fn lookups_agree_with_a_list_of_every_read(
        reads in prop::collection::vec((span_strategy(), 1u64..40, txn()), 0..40),
        lookups in prop::collection::vec((span_strategy(), txn()), 1..20),
        max_entries in prop::sample::select(vec![2usize, 5, 1_000]),
    ) {
        let limits = TsCacheLimits { max_entries, max_bytes: usize::MAX };
        let initial = ts(3);
        let mut cache = TimestampCache::new(initial, limits);
        let mut model: Vec<ModelRead> = Vec::new();
        for ((start, end), at, txn) in reads {
            cache.record((&start, end.as_deref()), ts(at), txn);
            model.push(ModelRead {
                end: end_of(&start, &end),
                start,
                ts: ts(at),
                txn,
            });
            check_invariants(&cache);
            prop_assert!(cache.len() <= max_entries);
        }
        prop_assert!(cache.low_water() >= initial);
        for ((start, end), txn) in lookups {
            let query_end = end_of(&start, &end);
            let others = model
                .iter()
                .filter(|r| r.start < query_end && start < r.end && r.start < r.end)
                .filter(|r| txn.is_none() || r.txn != txn)
                .map(|r| r.ts)
                .max()
                .unwrap_or(Timestamp::ZERO);
            let got = cache.max_over((&start, end.as_deref()), txn);
            if start >= query_end {
                prop_assert_eq!(got, cache.low_water(), "an empty span");
                continue;
            }
            prop_assert!(got >= others, "lost a read: {got} < {others}");
            prop_assert!(got >= initial);
            prop_assert!(got <= others.max(cache.low_water()), "{got} above every read");
            if max_entries == 1_000 {
                prop_assert_eq!(got, others.max(initial));
            }
        }
    }
}
