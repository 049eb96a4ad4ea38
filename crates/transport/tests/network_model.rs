//! The injected network model over real QUIC: region latency, partitions
//! (both ways and one way), isolation, drops, and healing.

mod common;

use std::time::{Duration, Instant};

use common::*;
use meridian_transport::{LatencyMatrix, NetworkModel, TransportError};

/// Slack allowed above a configured delay: scheduling on a loaded 2-core
/// machine, debug builds, and tokio's 1 ms timer resolution.
const SLACK: Duration = Duration::from_millis(150);

#[tokio::test]
async fn calls_pay_the_configured_round_trip() {
    let net = NetworkModel::demo_3_region();
    let certs = certs();
    let mut nodes = Vec::new();
    for (id, region) in [
        (1, "us-east1"),
        (2, "us-west1"),
        (3, "europe-west1"),
        (4, "us-east1"),
    ] {
        let mut c = config(id, region);
        c.network = Some(net.clone());
        nodes.push(start(certs.path(), c).await);
    }
    introduce(&nodes.iter().collect::<Vec<_>>());
    let matrix = LatencyMatrix::demo_3_region();

    for (from, to) in [(0, 1), (0, 2), (1, 2), (2, 0), (0, 3)] {
        let (a, b) = (&nodes[from], &nodes[to]);
        let rtt = matrix
            .round_trip(
                &a.transport.locality().region,
                &b.transport.locality().region,
            )
            .unwrap();
        // The first call also dials; measure the second.
        echo(a, b, "dial", LONG).await.unwrap();
        let start = Instant::now();
        echo(a, b, "measure", LONG).await.unwrap();
        let took = start.elapsed();
        assert!(
            took >= rtt && took < rtt + SLACK,
            "{} -> {}: round trip {took:?}, configured {rtt:?}",
            a.transport.locality(),
            b.transport.locality()
        );
    }

    // Pings see the injected latency; quinn's own RTT does not.
    let rtt = nodes[1].transport.ping(3, LONG).await.unwrap();
    assert!(rtt >= Duration::from_millis(146), "{rtt:?}");
    let stats = &nodes[1].transport.peer_stats()[&3];
    assert!(stats.rtt.unwrap() >= Duration::from_millis(146));
    assert!(stats.quic_rtt.unwrap() < Duration::from_millis(50));

    // One-way messages are delayed by one way only, and arrive.
    let start = Instant::now();
    nodes[0].transport.send::<Note>(2, &1).await.unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(32),
        "send waited for the delay"
    );
    wait_for("the delayed note", LONG, || nodes[1].notes() == 1).await;
    assert!(start.elapsed() >= Duration::from_millis(33));

    for n in &nodes {
        n.transport.shutdown().await;
    }
}

#[tokio::test]
async fn partitions_block_calls_until_healed() {
    let net = model();
    let certs = certs();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        let mut c = config(id, "r");
        c.network = Some(net.clone());
        nodes.push(start(certs.path(), c).await);
    }
    let [a, b, c] = &nodes[..] else {
        unreachable!()
    };
    introduce(&[a, b, c]);
    echo(a, b, "before", LONG).await.unwrap();

    // Both directions.
    net.partition(&[1], &[2]);
    let started = Instant::now();
    let err = echo(a, b, "blocked", SHORT).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { to: 2, .. }),
        "{err}"
    );
    assert!(err.is_retryable() && err.may_have_executed());
    assert!(started.elapsed() >= SHORT);
    let err = echo(b, a, "blocked", SHORT).await.unwrap_err();
    assert!(
        matches!(err, TransportError::Timeout { to: 1, .. }),
        "{err}"
    );
    echo(a, c, "around", LONG).await.unwrap();
    echo(c, b, "around", LONG).await.unwrap();
    net.heal();
    assert_eq!(echo(a, b, "healed", LONG).await.unwrap(), "healed");
    assert_eq!(echo(b, a, "healed", LONG).await.unwrap(), "healed");

    // One direction: 1 cannot reach 2. 2's requests reach 1, but the
    // responses cannot come back, so both sides' calls time out; 1's
    // handler runs for 2's requests.
    let calls_at_1 = a.calls();
    net.partition_one_way(&[1], &[2]);
    assert!(echo(a, b, "x", SHORT).await.is_err());
    let err = echo(b, a, "y", SHORT).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert_eq!(a.calls(), calls_at_1 + 1);
    net.heal();

    // Isolation.
    net.isolate(3);
    assert!(echo(a, c, "x", SHORT).await.is_err());
    assert!(echo(c, b, "y", SHORT).await.is_err());
    echo(a, b, "unaffected", LONG).await.unwrap();
    net.heal();
    echo(c, a, "back", LONG).await.unwrap();

    // Every message dropped.
    net.set_drop_probability(1.0);
    assert!(matches!(
        echo(a, b, "x", SHORT).await,
        Err(TransportError::Timeout { .. })
    ));
    a.transport.send::<Note>(2, &1).await.unwrap();
    net.heal();
    a.transport.send::<Note>(2, &10).await.unwrap();
    wait_for("the note after healing", LONG, || b.notes() >= 10).await;
    assert_eq!(b.notes(), 10, "a dropped note arrived");
    assert!(a.transport.peer_stats()[&2].dropped_by_model >= 4);

    for n in &nodes {
        n.transport.shutdown().await;
    }
}

#[tokio::test]
async fn a_node_can_isolate_itself_with_its_own_model() {
    // Node 1 has a model of its own; node 2 has none. Node 1's receive-side
    // check alone must keep node 2's calls out.
    let own = model();
    let certs = certs();
    let mut c1 = config(1, "r");
    c1.network = Some(own.clone());
    let a = start(certs.path(), c1).await;
    let b = start(certs.path(), config(2, "r")).await;
    introduce(&[&a, &b]);
    echo(&b, &a, "before", LONG).await.unwrap();

    own.isolate(1);
    let err = echo(&b, &a, "anyone there?", SHORT).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert!(echo(&a, &b, "out", SHORT).await.is_err());
    assert_eq!(a.calls(), 1);

    own.heal();
    echo(&b, &a, "after", LONG).await.unwrap();
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}
