//! Peers that stop, crash, restart or move: connections are re-dialed, and
//! a dead peer is noticed within the configured bound.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use meridian_transport::{TransportConfig, TransportError};

/// A node running on a runtime of its own, so that the test can crash it:
/// shutting that runtime down stops every task of the node at once, without
/// a QUIC close going out, like a killed process.
struct Crashable {
    runtime: tokio::runtime::Runtime,
    node: Node,
}

impl Crashable {
    async fn start(certs: &std::path::Path, config: TransportConfig) -> Crashable {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let certs = certs.to_path_buf();
        let node = runtime
            .spawn(async move { start(&certs, config).await })
            .await
            .unwrap();
        Crashable { runtime, node }
    }

    fn crash(self) {
        self.runtime.shutdown_background();
        drop(self.node);
    }
}

fn at(id: u64, addr: SocketAddr) -> TransportConfig {
    let mut c = config(id, "r");
    c.listen_addr = addr;
    c
}

#[tokio::test]
async fn calls_succeed_after_a_clean_restart() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    echo(&a, &b, "first life", LONG).await.unwrap();

    let addr = b.transport.local_addr();
    b.transport.shutdown().await;
    drop(b);
    let b = start(certs.path(), at(2, addr)).await;
    // Same address: the address book needs no change. The old connection
    // was closed by the shutdown, so the first call dials the new node.
    assert_eq!(
        echo(&a, &b, "second life", LONG).await.unwrap(),
        "second life"
    );
    assert_eq!(b.calls(), 1);
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn calls_succeed_after_a_crash_and_restart_on_the_same_address() {
    let certs = certs();
    // A peer timeout (on both ends: the smaller wins) far beyond the call
    // timeout, so that only the stateless reset sent by the new incarnation
    // can tell node 1 in time that its connection is dead.
    let patient = |mut c: TransportConfig| {
        c.peer_timeout = Duration::from_secs(60);
        c
    };
    let a = start(certs.path(), patient(config(1, "r"))).await;
    let b = Crashable::start(certs.path(), patient(config(2, "r"))).await;
    introduce(&[&a, &b.node]);
    echo(&a, &b.node, "first life", LONG).await.unwrap();
    let addr = b.node.transport.local_addr();
    b.crash();

    let b = Crashable::start(certs.path(), patient(at(2, addr))).await;
    // An idempotent call is retried on a new connection within its timeout.
    let started = Instant::now();
    let reply = a
        .transport
        .call::<IdempotentEcho>(2, &"second life".to_string(), LONG)
        .await
        .unwrap();
    assert_eq!(reply, "second life");
    assert!(started.elapsed() < LONG);
    assert_eq!(b.node.calls(), 1);

    // Crash again. A non-idempotent call on the stale connection may fail
    // with an ambiguous error (the transport cannot know whether the old
    // node ran it), but never hangs, and the next call succeeds.
    b.crash();
    let b = Crashable::start(certs.path(), patient(at(2, addr))).await;
    match echo(&a, &b.node, "maybe", LONG).await {
        Ok(reply) => assert_eq!(reply, "maybe"),
        Err(e) => {
            assert!(
                matches!(e, TransportError::ConnectionLost { to: 2, .. }),
                "{e}"
            );
            assert!(e.is_retryable() && e.may_have_executed());
        }
    }
    assert_eq!(echo(&a, &b.node, "surely", LONG).await.unwrap(), "surely");
    a.transport.shutdown().await;
    b.crash();
}

#[tokio::test]
async fn a_peer_that_moved_is_dialed_at_its_new_address() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    echo(&a, &b, "old address", LONG).await.unwrap();
    b.transport.shutdown().await;

    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    assert_eq!(
        echo(&a, &b, "new address", LONG).await.unwrap(),
        "new address"
    );
    a.transport.remove_peer(2);
    let err = echo(&a, &b, "gone", LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::UnknownNode(2)), "{err}");
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn a_dead_peer_is_detected_within_the_peer_timeout() {
    let certs = certs();
    let bound = Duration::from_secs(1);
    let mut c1 = config(1, "r");
    c1.peer_timeout = bound;
    let a = start(certs.path(), c1).await;
    let b = Crashable::start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b.node]);
    echo(&a, &b.node, "alive", LONG).await.unwrap();
    assert!(a.transport.peer_stats()[&2].connected);

    // Quiet but alive: keep-alives hold the connection open past the bound.
    tokio::time::sleep(bound * 2).await;
    assert!(
        a.transport.peer_stats()[&2].connected,
        "a live peer was dropped"
    );

    let crashed_at = Instant::now();
    b.crash();
    wait_for("the dead peer's connection to close", bound * 4, || {
        !a.transport.peer_stats()[&2].connected
    })
    .await;
    let detected = crashed_at.elapsed();
    // Slack: the idle timer runs from the last packet received.
    assert!(
        detected < bound + Duration::from_millis(1500),
        "took {detected:?}"
    );
    a.transport.shutdown().await;
}
