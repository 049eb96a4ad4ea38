//! Which keys a batch may touch and which latches it takes.

use meridian_kvapi::ReplicaDescriptor;

use super::*;

fn range(start: &[u8], end: &[u8]) -> RangeDescriptor {
    RangeDescriptor {
        range_id: 7,
        start_key: start.to_vec(),
        end_key: end.to_vec(),
        replicas: vec![ReplicaDescriptor::voter(1)],
        generation: 0,
    }
}

fn get(key: &[u8]) -> Request {
    Request::Get { key: key.to_vec() }
}

fn scan(start: &[u8], end: &[u8]) -> Request {
    Request::Scan {
        start: start.to_vec(),
        end: end.to_vec(),
        max_rows: 0,
    }
}

#[test]
fn point_requests_must_lie_in_the_half_open_span() {
    let d = range(b"b", b"d");
    assert!(request_in_range(&d, &get(b"b")), "the start key is inside");
    assert!(request_in_range(&d, &get(b"c\xff")));
    assert!(!request_in_range(&d, &get(b"d")), "the end key is outside");
    assert!(!request_in_range(&d, &get(b"a")));
}

#[test]
fn span_requests_must_lie_wholly_in_the_range_and_be_ordered() {
    let d = range(b"b", b"d");
    assert!(request_in_range(&d, &scan(b"b", b"d")), "the whole range");
    assert!(!request_in_range(&d, &scan(b"a", b"c")), "starts before");
    assert!(!request_in_range(&d, &scan(b"c", b"e")), "ends after");
    assert!(!request_in_range(&d, &scan(b"c", b"b")), "reversed");
}

#[test]
fn writes_take_exclusive_latches_and_reads_shared_ones() {
    let put = Request::Put {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    };
    assert_eq!(latch_span(&put), LatchSpan::point(b"k", true));
    assert_eq!(latch_span(&get(b"k")), LatchSpan::point(b"k", false));
    let delete_range = Request::DeleteRange {
        start: b"a".to_vec(),
        end: b"c".to_vec(),
    };
    assert_eq!(
        latch_span(&delete_range),
        LatchSpan {
            start: b"a".to_vec(),
            end: b"c".to_vec(),
            write: true,
            ts: None,
        }
    );
    assert!(!latch_span(&scan(b"a", b"c")).write);
}
