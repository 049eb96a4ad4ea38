//! Request/response, concurrency, one-way messages and error replies over
//! real QUIC on loopback.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use meridian_transport::{Rpc, TransportError};

#[tokio::test]
async fn request_response() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);

    assert_eq!(echo(&a, &b, "hello", LONG).await.unwrap(), "hello");
    assert_eq!(echo(&b, &a, "back", LONG).await.unwrap(), "back");
    assert_eq!((a.calls(), b.calls()), (1, 1));

    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn a_node_of_unknown_id_is_called_by_address() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    // No introductions: `a` knows only `b`'s address.
    let answer = a
        .transport
        .call_addr::<Echo>(b.transport.local_addr(), &"hi".to_string(), LONG)
        .await
        .unwrap();
    assert_eq!(answer, "hi");
    assert!(matches!(
        echo(&a, &b, "by id", LONG).await,
        Err(TransportError::UnknownNode(2))
    ));
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

struct Slow;
impl Rpc for Slow {
    const KIND: u16 = 200;
    const NAME: &'static str = "slow";
    type Request = u32;
    type Response = u32;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_calls_share_one_connection() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);

    // Each handler holds its stream for a while, so many are in flight at
    // once: more than quinn's default limit of 100 concurrent streams.
    let in_flight = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let (cur, max) = (in_flight.clone(), max_in_flight.clone());
    b.transport
        .register::<Slow, _, _>(move |_, n: u32| {
            let (cur, max) = (cur.clone(), max.clone());
            async move {
                let now = cur.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                cur.fetch_sub(1, Ordering::SeqCst);
                n * 2
            }
        })
        .unwrap();

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000u32 {
        let t = a.transport.clone();
        calls.spawn(async move { (i, t.call::<Slow>(2, &i, Duration::from_secs(60)).await) });
    }
    let mut done = 0;
    while let Some(joined) = calls.join_next().await {
        let (i, result) = joined.unwrap();
        assert_eq!(result.unwrap(), i * 2);
        done += 1;
    }
    assert_eq!(done, 1000);
    let max = max_in_flight.load(Ordering::SeqCst);
    assert!(max > 100, "only {max} calls were in flight at once");
    // Node 1 dialed node 2 once; node 2 never dialed.
    assert_eq!(a.transport.open_connections(), 1);
    assert_eq!(b.transport.open_connections(), 1);

    let stats = &a.transport.peer_stats()[&2];
    assert_eq!(stats.calls, 1000);
    assert_eq!(stats.call_errors, 0);
    assert_eq!(stats.messages_sent, 1000);
    assert_eq!(stats.messages_received, 1000);
    assert!(stats.bytes_sent > 1000 * 5 && stats.connected);
    assert!(stats.quic_rtt.is_some());
    let theirs = &b.transport.peer_stats()[&1];
    assert_eq!(theirs.messages_received, 1000);
    assert_eq!(theirs.bytes_received, stats.bytes_sent);
    assert_eq!(theirs.bytes_sent, stats.bytes_received);

    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn one_way_messages_arrive() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);

    for v in 1..=10u64 {
        a.transport.send::<Note>(2, &v).await.unwrap();
    }
    wait_for("ten notes", LONG, || b.notes() == 55).await;
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

struct Unregistered;
impl Rpc for Unregistered {
    const KIND: u16 = 999;
    const NAME: &'static str = "unregistered";
    type Request = ();
    type Response = ();
}

struct Panics;
impl Rpc for Panics {
    const KIND: u16 = 201;
    const NAME: &'static str = "panics";
    type Request = ();
    type Response = ();
}

#[tokio::test]
async fn typed_errors_leave_the_connection_usable() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    b.transport
        .register::<Panics, _, _>(|_, ()| async { panic!("handler panic (expected by this test)") })
        .unwrap();

    let err = a
        .transport
        .call::<Unregistered>(2, &(), LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::UnknownKind { to: 2, kind: 999 }),
        "{err}"
    );
    assert!(!err.is_retryable());

    let err = a.transport.call::<Panics>(2, &(), LONG).await.unwrap_err();
    assert!(
        matches!(err, TransportError::HandlerPanicked { to: 2, .. }),
        "{err}"
    );

    // A body that is not a String for the Echo handler.
    let err = a
        .transport
        .call_raw(2, Echo::KIND, Bytes::from_static(&[0xff, 0xff]), LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Decode(_)), "{err}");

    let err = a
        .transport
        .call::<Echo>(3, &"x".into(), LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::UnknownNode(3)), "{err}");

    assert_eq!(
        echo(&a, &b, "still fine", LONG).await.unwrap(),
        "still fine"
    );
    assert_eq!(a.transport.open_connections(), 1);

    a.transport.shutdown().await;
    let err = echo(&a, &b, "after shutdown", LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed), "{err}");
    b.transport.shutdown().await;
}

#[tokio::test]
async fn ping_feeds_the_rtt_estimate() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    assert!(a
        .transport
        .peer_stats()
        .get(&2)
        .is_none_or(|s| s.rtt.is_none()));
    let rtt = a.transport.ping(2, LONG).await.unwrap();
    let stats = &a.transport.peer_stats()[&2];
    assert_eq!(stats.rtt, Some(rtt));
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}
