//! The DistSender against a scripted cluster ([`super::fake`]): routing
//! through lease moves, splits and failures; batches cut by range and put
//! back in order; scans walking ranges with row limits and resume keys;
//! the deadline.

use std::sync::Arc;
use std::time::Duration;

use meridian_kvapi::{KvError, Request, Response};

use super::fake::{descriptor, FakeCluster};
use super::{DistSender, DistSenderConfig};
use crate::error::ClientError;

const MAX: &[u8] = b"\xff\xff";

/// A DistSender over `cluster`, with a deadline short enough for a test
/// that must run out of it and long enough for any that must not.
fn sender(cluster: &Arc<FakeCluster>, deadline: Duration) -> DistSender {
    DistSender::with_transport(
        cluster.clone(),
        cluster.clone(),
        DistSenderConfig {
            rpc_timeout: Duration::from_secs(1),
            deadline,
        },
    )
}

/// Range 1 (meta) on `["", "a")`, then user ranges split at `splits`,
/// numbered 2, 3, ...; every range on nodes 1-3 with its lease on node 1.
fn cluster(splits: &[&[u8]]) -> Arc<FakeCluster> {
    let cluster = Arc::new(FakeCluster::default());
    cluster.set_range(descriptor(1, b"", b"a", &[1, 2, 3], 0), 1);
    let mut bounds: Vec<&[u8]> = vec![b"a"];
    bounds.extend_from_slice(splits);
    bounds.push(MAX);
    for (i, pair) in bounds.windows(2).enumerate() {
        cluster.set_range(descriptor(i as u64 + 2, pair[0], pair[1], &[1, 2, 3], 0), 1);
    }
    cluster
}

fn rows(keys: &[&str]) -> Vec<(Vec<u8>, Vec<u8>)> {
    keys.iter()
        .map(|k| (k.as_bytes().to_vec(), k.to_uppercase().into_bytes()))
        .collect()
}

fn fill(cluster: &FakeCluster, keys: &[&str]) {
    for (k, v) in rows(keys) {
        cluster.put(&k, &v);
    }
}

fn scan(start: &str, end: &str, max_rows: u32, reverse: bool) -> Request {
    let (start, end) = (start.as_bytes().to_vec(), end.as_bytes().to_vec());
    if reverse {
        Request::ReverseScan {
            start,
            end,
            max_rows,
        }
    } else {
        Request::Scan {
            start,
            end,
            max_rows,
        }
    }
}

fn scan_response(keys: &[&str], resume_key: Option<&str>) -> Response {
    Response::Scan {
        rows: rows(keys),
        resume_key: resume_key.map(|k| k.as_bytes().to_vec()),
    }
}

const LONG: Duration = Duration::from_secs(10);

#[tokio::test]
async fn not_leaseholder_redirects_to_the_hint_and_caches_it() {
    let cluster = cluster(&[]);
    cluster.set_leaseholder(2, 3);
    cluster.put(b"b", b"B");
    let ds = sender(&cluster, LONG);

    assert_eq!(ds.get(b"b").await.unwrap(), Some(b"B".to_vec()));
    let nodes: Vec<_> = cluster.calls_to(2).into_iter().map(|(n, _)| n).collect();
    assert_eq!(nodes, vec![1, 3], "node 1 refuses and names node 3");
    assert_eq!(ds.cache().lookup(b"b").unwrap().leaseholder, Some(3));

    cluster.clear_calls();
    assert_eq!(ds.get(b"b").await.unwrap(), Some(b"B".to_vec()));
    let nodes: Vec<_> = cluster.calls().into_iter().map(|c| c.node).collect();
    assert_eq!(nodes, vec![3], "the cached leaseholder is asked first");
}

#[tokio::test]
async fn range_key_mismatch_replaces_the_cache_entry_and_reroutes() {
    // The truth: range 2 was split at "m" into 2 and 3.
    let cluster = cluster(&[b"m"]);
    cluster.put(b"p", b"P");
    let ds = sender(&cluster, LONG);
    // The cache still holds range 2 before the split.
    ds.cache().insert(descriptor(2, b"a", MAX, &[1, 2, 3], 0));
    ds.cache().set_leaseholder(b"p", 2, 1);

    assert_eq!(ds.get(b"p").await.unwrap(), Some(b"P".to_vec()));
    let ranges: Vec<_> = cluster.calls().into_iter().map(|c| c.range_id).collect();
    assert_eq!(
        ranges,
        vec![2, 1, 3],
        "refused by range 2, meta lookup in range 1, served by range 3"
    );
    let left = ds.cache().lookup(b"b").unwrap();
    assert_eq!(left.descriptor, descriptor(2, b"a", b"m", &[1, 2, 3], 0));
    assert_eq!(ds.cache().lookup(b"p").unwrap().descriptor.range_id, 3);
}

#[tokio::test]
async fn an_unreachable_node_or_a_missing_replica_passes_to_the_next_replica() {
    let cluster = cluster(&[]);
    cluster.set_leaseholder(2, 3);
    cluster.set_down(1);
    cluster.refuse_once(2, 2, KvError::RangeNotFound { range_id: 2 });
    cluster.put(b"b", b"B");
    let ds = sender(&cluster, LONG);
    // The meta lookup is not what this test is about: cache the range.
    ds.cache().insert(descriptor(2, b"a", MAX, &[1, 2, 3], 0));

    assert_eq!(ds.get(b"b").await.unwrap(), Some(b"B".to_vec()));
    let nodes: Vec<_> = cluster.calls_to(2).into_iter().map(|(n, _)| n).collect();
    assert_eq!(nodes, vec![1, 2, 3]);
    assert_eq!(cluster.reported_unreachable(), vec![1]);
    assert_eq!(ds.cache().lookup(b"b").unwrap().leaseholder, Some(3));
}

#[tokio::test]
async fn a_failed_pass_evicts_the_range_and_the_next_one_rereads_meta() {
    let cluster = cluster(&[]);
    cluster.put(b"b", b"B");
    // Every replica refuses once: the whole first pass fails.
    for node in 1..=3 {
        cluster.refuse_once(
            node,
            2,
            KvError::Unavailable {
                range_id: 2,
                reason: "scripted".into(),
            },
        );
    }
    let ds = sender(&cluster, LONG);
    assert_eq!(ds.get(b"b").await.unwrap(), Some(b"B".to_vec()));
    let ranges: Vec<_> = cluster.calls().into_iter().map(|c| c.range_id).collect();
    assert_eq!(
        ranges,
        vec![1, 2, 2, 2, 1, 2],
        "meta, a failed pass, meta, served"
    );
}

#[tokio::test]
async fn a_non_retryable_error_is_returned_at_once() {
    let cluster = cluster(&[]);
    let refusal = KvError::ConditionFailed { actual: None };
    cluster.refuse_once(1, 2, refusal.clone());
    let ds = sender(&cluster, LONG);
    match ds.put(b"b", b"B").await {
        Err(ClientError::Kv(e)) => assert_eq!(e, refusal),
        other => panic!("expected the refusal, got {other:?}"),
    }
    assert_eq!(cluster.calls_to(2).len(), 1, "no retry");
    assert_eq!(cluster.value(b"b"), None);
}

#[tokio::test]
async fn point_requests_are_cut_per_range_and_answered_in_batch_order() {
    let cluster = cluster(&[b"m"]);
    fill(&cluster, &["b", "n"]);
    let ds = sender(&cluster, LONG);
    let get = |k: &str| Request::Get {
        key: k.as_bytes().to_vec(),
    };
    let put_c = Request::Put {
        key: b"c".to_vec(),
        value: b"C".to_vec(),
    };
    let batch = vec![get("n"), get("b"), put_c.clone(), get("z"), get("c")];

    let responses = ds.send(batch).await.unwrap();
    assert_eq!(
        responses,
        vec![
            Response::Get {
                value: Some(b"N".to_vec())
            },
            Response::Get {
                value: Some(b"B".to_vec())
            },
            Response::Put,
            Response::Get { value: None },
            Response::Get {
                value: Some(b"C".to_vec())
            },
        ]
    );
    // One call per range, each with its requests in batch order.
    assert_eq!(
        cluster.calls_to(2),
        vec![(1, vec![get("b"), put_c, get("c")])]
    );
    assert_eq!(cluster.calls_to(3), vec![(1, vec![get("n"), get("z")])]);
}

#[tokio::test]
async fn a_scan_walks_its_ranges_in_order() {
    let cluster = cluster(&[b"g", b"p"]);
    fill(&cluster, &["b", "c", "h", "i", "j", "q", "r"]);
    let ds = sender(&cluster, LONG);

    let all = ds.send(vec![scan("a", "z", 0, false)]).await.unwrap();
    assert_eq!(
        all,
        vec![scan_response(&["b", "c", "h", "i", "j", "q", "r"], None)]
    );
    let parts: Vec<_> = [2, 3, 4]
        .iter()
        .map(|&r| cluster.calls_to(r).pop().unwrap().1)
        .collect();
    assert_eq!(
        parts,
        vec![
            vec![scan("a", "g", 0, false)],
            vec![scan("g", "p", 0, false)],
            vec![scan("p", "z", 0, false)],
        ],
        "each range gets the part of the span it holds"
    );
}

#[tokio::test]
async fn a_scan_stops_at_its_row_limit_with_a_resume_key() {
    let cluster = cluster(&[b"g", b"p"]);
    fill(&cluster, &["b", "c", "h", "i", "j", "q", "r"]);
    let ds = sender(&cluster, LONG);

    // The limit falls inside range 3: its own resume key is returned.
    let got = ds.send(vec![scan("a", "z", 4, false)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["b", "c", "h", "i"], Some("j"))]);
    assert_eq!(
        cluster.calls_to(3).pop().unwrap().1,
        vec![scan("g", "p", 2, false)],
        "the next range is asked only for the rows still wanted"
    );
    assert!(cluster.calls_to(4).is_empty(), "range 4 is not read");

    // The limit falls on a range boundary: the resume key is the boundary.
    let got = ds.send(vec![scan("a", "z", 2, false)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["b", "c"], Some("g"))]);

    // Resuming from there reads the rest.
    let got = ds.send(vec![scan("g", "z", 0, false)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["h", "i", "j", "q", "r"], None)]);
}

#[tokio::test]
async fn a_reverse_scan_walks_its_ranges_backwards() {
    let cluster = cluster(&[b"g", b"p"]);
    fill(&cluster, &["b", "c", "h", "i", "j", "q", "r"]);
    let ds = sender(&cluster, LONG);

    let all = ds.send(vec![scan("a", "z", 0, true)]).await.unwrap();
    assert_eq!(
        all,
        vec![scan_response(&["r", "q", "j", "i", "h", "c", "b"], None)]
    );
    let ranges: Vec<_> = cluster
        .calls()
        .into_iter()
        .filter(|c| c.range_id != 1)
        .map(|c| c.range_id)
        .collect();
    assert_eq!(ranges, vec![4, 3, 2]);

    // The limit inside range 3: the resume key is the next exclusive end.
    let got = ds.send(vec![scan("a", "z", 3, true)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["r", "q", "j"], Some("j"))]);

    // The limit on a boundary: the resume key is the boundary.
    let got = ds.send(vec![scan("a", "z", 2, true)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["r", "q"], Some("p"))]);

    // A span ending exactly at a range's start begins in the range below.
    let got = ds.send(vec![scan("a", "g", 0, true)]).await.unwrap();
    assert_eq!(got, vec![scan_response(&["c", "b"], None)]);
}

#[tokio::test]
async fn a_delete_range_across_ranges_reports_every_deleted_key() {
    let cluster = cluster(&[b"g", b"p"]);
    fill(&cluster, &["b", "h", "q", "r"]);
    let ds = sender(&cluster, LONG);
    let responses = ds
        .send(vec![Request::DeleteRange {
            start: b"c".to_vec(),
            end: b"r".to_vec(),
        }])
        .await
        .unwrap();
    assert_eq!(
        responses,
        vec![Response::DeleteRange {
            deleted: vec![b"h".to_vec(), b"q".to_vec()]
        }]
    );
    assert_eq!(cluster.value(b"b"), Some(b"B".to_vec()));
    assert_eq!(cluster.value(b"r"), Some(b"R".to_vec()));
}

#[tokio::test]
async fn admin_split_caches_both_sides_and_is_idempotent() {
    let cluster = cluster(&[]);
    let ds = sender(&cluster, LONG);
    let (left, right) = ds.admin_split(b"h", 9).await.unwrap();
    assert_eq!((left.range_id, right.range_id), (2, 9));
    assert_eq!(ds.cache().lookup(b"b").unwrap().descriptor, left);
    assert_eq!(ds.cache().lookup(b"h").unwrap().descriptor, right);

    cluster.clear_calls();
    let again = ds.admin_split(b"h", 10).await.unwrap();
    assert_eq!(
        again,
        (left, right),
        "already split: the sides, no new range"
    );
    assert!(cluster.calls().is_empty());
}

#[tokio::test]
async fn running_out_of_deadline_is_an_error_naming_the_last_failure() {
    let cluster = cluster(&[]);
    for node in 1..=3 {
        cluster.set_down(node);
    }
    let ds = sender(&cluster, Duration::from_millis(50));
    ds.cache().insert(descriptor(2, b"a", MAX, &[1, 2, 3], 0));
    match ds.get(b"b").await {
        Err(ClientError::Timeout { last_error, .. }) => {
            assert!(last_error.contains("node"), "{last_error}")
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let mut told = cluster.reported_unreachable();
    told.sort();
    told.dedup();
    assert_eq!(told, vec![1, 2, 3], "every replica was tried");
}

#[tokio::test]
async fn invalid_batches_are_refused_before_anything_is_sent() {
    let cluster = cluster(&[]);
    let ds = sender(&cluster, LONG);
    assert!(matches!(
        ds.send(vec![]).await,
        Err(ClientError::InvalidRequest(_))
    ));
    assert!(matches!(
        ds.send(vec![scan("z", "a", 0, false)]).await,
        Err(ClientError::InvalidRequest(_))
    ));
    assert!(cluster.calls().is_empty());
}

/// A conditional put applied at the leaseholder whose reply is lost, with
/// the lease then moving: sent again to the new leaseholder it would fail on
/// its own value (`ConditionFailed` for a write that succeeded). It must come
/// back ambiguous instead, and be sent once.
#[tokio::test]
async fn lost_reply_to_a_conditional_put_is_ambiguous_not_resent() {
    let cluster = cluster(&[]);
    let ds = sender(&cluster, Duration::from_secs(5));
    cluster.lose_reply_once(1, 2, Some(2));
    let cput = Request::ConditionalPut {
        key: b"k".to_vec(),
        value: b"v".to_vec(),
        expected: None,
    };
    let err = ds.send(vec![cput]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Kv(KvError::AmbiguousResult { range_id: 2, .. })
        ),
        "{err:?}"
    );
    assert_eq!(
        cluster.value(b"k"),
        Some(b"v".to_vec()),
        "the write applied"
    );
    assert_eq!(cluster.calls_to(2).len(), 1, "the write was sent again");
}

/// A blind put whose reply is lost is not sent again either: applied twice,
/// around another writer's put, a reader would see a, b, a.
#[tokio::test]
async fn lost_reply_to_a_put_is_ambiguous_not_resent() {
    let cluster = cluster(&[]);
    let ds = sender(&cluster, Duration::from_secs(5));
    cluster.lose_reply_once(1, 2, Some(3));
    let err = ds.put(b"k", b"a").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Kv(KvError::AmbiguousResult { .. })),
        "{err:?}"
    );
    assert_eq!(cluster.calls_to(2).len(), 1, "the write was sent again");
}

/// Reads may run twice: a lost reply to a read is retried at the next replica.
#[tokio::test]
async fn lost_reply_to_a_read_is_retried() {
    let cluster = cluster(&[]);
    fill(&cluster, &["k"]);
    let ds = sender(&cluster, Duration::from_secs(5));
    cluster.lose_reply_once(1, 2, Some(2));
    assert_eq!(ds.get(b"k").await.unwrap(), Some(b"K".to_vec()));
    assert_eq!(cluster.calls_to(2).len(), 2);
}

/// A batch cut across two ranges, one refusing its part definitely and
/// the other losing its reply: the batch's outcome is unknown (the second
/// part applied), so the error is ambiguous whatever order the parts
/// answer in. A definite error here would let a caller believe nothing
/// applied, as a parallel commit's coordinator must not.
#[tokio::test]
async fn a_batch_with_an_ambiguous_part_is_ambiguous_whatever_else_failed() {
    let cluster = cluster(&[b"m"]);
    let ds = sender(&cluster, Duration::from_secs(5));
    cluster.refuse_once(
        1,
        2,
        KvError::WriteTooOld {
            requested: meridian_hlc::Timestamp::new(1, 0),
            existing: meridian_hlc::Timestamp::new(2, 0),
        },
    );
    cluster.lose_reply_once(1, 3, Some(2));
    let puts = [b"b", b"n"]
        .map(|k| Request::Put {
            key: k.to_vec(),
            value: b"v".to_vec(),
        })
        .to_vec();
    let err = ds.send(puts).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Kv(KvError::AmbiguousResult { range_id: 3, .. })
        ),
        "{err:?}"
    );
    assert_eq!(cluster.value(b"n"), Some(b"v".to_vec()), "the part applied");
}
