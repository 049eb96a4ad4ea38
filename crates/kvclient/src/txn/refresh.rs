//! Read refresh: when a transaction's timestamp must move up (a write met
//! a newer read or version, a read met an uncertain value), its reads are
//! checked again at the new timestamp instead of restarting it. The
//! transaction keeps what each read returned; if every read returns the
//! same again at the new timestamp, running the whole transaction there
//! would have read and so written the same, and it carries on at the new
//! timestamp. Any difference (or reads too large to keep) means a restart.
//!
//! This validates by value where CockroachDB's span refresher asks each
//! range whether anything was written in the span between the two
//! timestamps; values need no server support and accept a rewrite of an
//! identical value, at the price of reading again (and of keeping what
//! was read, up to [`MAX_READ_BYTES`]). The re-reads are ordinary reads at
//! the new timestamp, so they also record it in the timestamp caches.

use std::collections::BTreeSet;

use meridian_kvapi::{Request, Response};

/// Reads kept for refreshing, in bytes of keys and values; a transaction
/// that read more restarts instead of refreshing.
pub const MAX_READ_BYTES: usize = 4 << 20;

/// What a transaction read, in order.
#[derive(Debug, Default, Clone)]
pub struct ReadSet {
    batches: Vec<(Vec<Request>, Vec<Response>)>,
    bytes: usize,
    /// Set once the reads outgrew [`MAX_READ_BYTES`].
    overflowed: bool,
}

impl ReadSet {
    /// Keeps a batch of reads and what they returned.
    pub fn record(&mut self, requests: &[Request], responses: &[Response]) {
        if self.overflowed {
            return;
        }
        self.bytes += requests.iter().map(request_bytes).sum::<usize>()
            + responses.iter().map(response_bytes).sum::<usize>();
        if self.bytes > MAX_READ_BYTES {
            self.overflowed = true;
            self.batches.clear();
            return;
        }
        self.batches.push((requests.to_vec(), responses.to_vec()));
    }

    /// The reads to repeat, or `None` when they were not all kept.
    pub fn batches(&self) -> Option<Vec<(Vec<Request>, Vec<Response>)>> {
        (!self.overflowed).then(|| self.batches.clone())
    }
}

/// Whether a repeated read returned what it returned before, leaving out
/// the keys in `written` (the transaction's successful writes).
pub fn unchanged(
    seen: &[Response],
    again: &[Response],
    requests: &[Request],
    written: &BTreeSet<Vec<u8>>,
) -> bool {
    if seen.len() != again.len() || seen.len() != requests.len() {
        return false;
    }
    seen.iter()
        .zip(again)
        .zip(requests)
        .all(|((before, now), request)| {
            if written.contains(request.span().0) && request.span().1.is_none() {
                return true;
            }
            match (before, now) {
                (Response::Scan { rows: a, .. }, Response::Scan { rows: b, .. }) => {
                    let outside = |rows: &[(Vec<u8>, Vec<u8>)]| -> Vec<(Vec<u8>, Vec<u8>)> {
                        rows.iter()
                            .filter(|(k, _)| !written.contains(k))
                            .cloned()
                            .collect()
                    };
                    outside(a) == outside(b)
                }
                (a, b) => a == b,
            }
        })
}

fn request_bytes(r: &Request) -> usize {
    let (start, end) = r.span();
    start.len() + end.map_or(0, <[u8]>::len)
}

fn response_bytes(r: &Response) -> usize {
    match r {
        Response::Get { value } => value.as_ref().map_or(0, Vec::len),
        Response::Scan { rows, .. } => rows.iter().map(|(k, v)| k.len() + v.len()).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transaction_s_own_writes_are_left_out_of_the_comparison() {
        let written: BTreeSet<Vec<u8>> = [b"mine".to_vec()].into();
        let get = |k: &[u8]| Request::Get { key: k.to_vec() };
        let value = |v: Option<&[u8]>| Response::Get {
            value: v.map(<[u8]>::to_vec),
        };
        assert!(unchanged(
            &[value(None)],
            &[value(Some(b"x"))],
            &[get(b"mine")],
            &written
        ));
        assert!(!unchanged(
            &[value(None)],
            &[value(Some(b"x"))],
            &[get(b"other")],
            &written
        ));
        let scan = Request::Scan {
            start: b"a".to_vec(),
            end: b"z".to_vec(),
            max_rows: 0,
        };
        let rows = |r: &[(&[u8], &[u8])]| Response::Scan {
            rows: r.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect(),
            resume_key: None,
        };
        let before = rows(&[(b"b", b"1")]);
        let with_mine = rows(&[(b"b", b"1"), (b"mine", b"2")]);
        let with_theirs = rows(&[(b"b", b"1"), (b"c", b"2")]);
        assert!(unchanged(
            std::slice::from_ref(&before),
            &[with_mine],
            std::slice::from_ref(&scan),
            &written
        ));
        assert!(
            !unchanged(&[before], &[with_theirs], &[scan], &written),
            "a phantom fails the refresh"
        );
    }

    #[test]
    fn reads_beyond_the_budget_make_refresh_impossible() {
        let mut set = ReadSet::default();
        let get = Request::Get { key: b"k".to_vec() };
        set.record(
            std::slice::from_ref(&get),
            &[Response::Get {
                value: Some(vec![1]),
            }],
        );
        assert_eq!(set.batches().unwrap().len(), 1);
        let huge = Response::Get {
            value: Some(vec![0; MAX_READ_BYTES]),
        };
        set.record(std::slice::from_ref(&get), &[huge]);
        assert!(set.batches().is_none());
        set.record(&[get], &[Response::Get { value: None }]);
        assert!(set.batches().is_none(), "stays impossible");
    }
}
