//! What a node refuses: peers of another CA, malformed and oversized frames,
//! and messages from a clock beyond the max offset.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use meridian_hlc::{HybridClock, SkewedClock, SystemClock};
use meridian_transport::certs::CA_CERT_FILE;
use meridian_transport::frame::{
    decode_full_frame, encode_frame, Envelope, WireError, FRAME_VERSION,
};
use meridian_transport::{create_ca, create_node_cert, Rpc, TransportError};

#[tokio::test]
async fn a_node_of_another_ca_cannot_connect() {
    let cluster = certs();
    // The intruder's certificate is signed by its own CA. It trusts both
    // CAs, so the only thing that stops it dialing the cluster is the
    // cluster's check of client certificates.
    let intruder_certs = tempfile::tempdir().unwrap();
    create_ca(intruder_certs.path()).unwrap();
    create_node_cert(intruder_certs.path(), &["127.0.0.1"]).unwrap();
    let both = std::fs::read_to_string(intruder_certs.path().join(CA_CERT_FILE)).unwrap()
        + &std::fs::read_to_string(cluster.path().join(CA_CERT_FILE)).unwrap();
    std::fs::remove_file(intruder_certs.path().join(CA_CERT_FILE)).unwrap();
    std::fs::write(intruder_certs.path().join(CA_CERT_FILE), both).unwrap();

    let a = start(cluster.path(), config(1, "r")).await;
    let b = start(cluster.path(), config(2, "r")).await;
    let m = start(intruder_certs.path(), config(3, "r")).await;
    introduce(&[&a, &b, &m]);

    // The intruder dials a cluster node: refused by the server side.
    let err = echo(&m, &a, "let me in", LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::Tls { to: 1, .. }), "{err}");
    assert!(!err.is_retryable());
    // A cluster node dials the intruder: refused by the client side.
    let err = echo(&a, &m, "who are you", LONG).await.unwrap_err();
    assert!(matches!(err, TransportError::Tls { to: 3, .. }), "{err}");
    assert_eq!((a.calls(), m.calls()), (0, 0));

    // The cluster itself is unaffected.
    assert_eq!(
        echo(&b, &a, "members only", LONG).await.unwrap(),
        "members only"
    );
    for n in [&a, &b, &m] {
        n.transport.shutdown().await;
    }
}

#[tokio::test]
async fn garbage_and_oversized_frames_do_not_hurt_the_receiver() {
    let certs = certs();
    let a = start(certs.path(), config(1, "r")).await;
    let mut small = config(2, "r");
    small.max_frame_size = 64 << 10;
    let b = start(certs.path(), small).await;
    introduce(&[&a, &b]);
    assert_eq!(echo(&a, &b, "warm up", LONG).await.unwrap(), "warm up");

    let refusal = |reply: Vec<u8>| -> WireError {
        let (env, body) = decode_full_frame(&reply).expect("the receiver answers with a frame");
        assert_eq!(env.from, 2);
        assert!(body.is_empty());
        env.error.expect("an error reply")
    };

    // Text instead of a frame: its first four bytes read as a length of
    // about 1.2 GB, beyond the limit.
    let reply = a
        .transport
        .exchange_raw_bytes(2, b"GET / HTTP/1.1\r\n\r\n", LONG)
        .await
        .unwrap();
    assert!(matches!(refusal(reply), WireError::FrameTooLarge { .. }));

    // A frame of the right length and version whose envelope is garbage.
    let reply = a
        .transport
        .exchange_raw_bytes(2, &[0, 0, 0, 4, FRAME_VERSION, 0xff, 0xff, 0xff], LONG)
        .await
        .unwrap();
    assert!(matches!(refusal(reply), WireError::Decode(_)));

    // A stream that ends before the length its prefix announced.
    let reply = a
        .transport
        .exchange_raw_bytes(2, &[0, 0, 0, 100, FRAME_VERSION, 1, 2, 3], LONG)
        .await
        .unwrap();
    assert!(matches!(refusal(reply), WireError::Decode(_)));

    // A well-sized frame of an unknown version.
    let mut frame = encode_frame(
        &Envelope {
            kind: Echo::KIND,
            from: 1,
            timestamp: a.transport.clock().now(),
            error: None,
        },
        b"",
        u32::MAX,
    )
    .unwrap();
    frame[4] = FRAME_VERSION + 1;
    let reply = a
        .transport
        .exchange_raw_bytes(2, &frame, LONG)
        .await
        .unwrap();
    assert!(matches!(refusal(reply), WireError::Decode(_)));

    // A length prefix of 4 GiB, followed by some bytes: refused before the
    // receiver allocates or reads the rest.
    let mut huge = u32::MAX.to_be_bytes().to_vec();
    huge.extend_from_slice(&[0u8; 1000]);
    let reply = a
        .transport
        .exchange_raw_bytes(2, &huge, LONG)
        .await
        .unwrap();
    assert_eq!(
        refusal(reply),
        WireError::FrameTooLarge {
            len: u64::from(u32::MAX),
            max: 64 << 10
        }
    );
    assert_eq!(b.transport.malformed_frames(), 5);

    // A real request that is too big for the receiver's limit.
    let big = "x".repeat(100 << 10);
    let err = echo(&a, &b, &big, LONG).await.unwrap_err();
    assert!(
        matches!(err, TransportError::FrameTooLarge { max, .. } if max == 64 << 10),
        "{err}"
    );
    // And one too big for the sender's own limit, refused before sending.
    let err = echo(&b, &a, &"y".repeat(100 << 10), LONG)
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::FrameTooLarge { .. }), "{err}");

    // Same connection, still serving.
    assert_eq!(
        echo(&a, &b, "still here", LONG).await.unwrap(),
        "still here"
    );
    assert_eq!(a.transport.open_connections(), 1);
    assert_eq!(b.calls(), 2);
    a.transport.shutdown().await;
    b.transport.shutdown().await;
}

#[tokio::test]
async fn messages_from_a_clock_beyond_max_offset_are_refused() {
    let max_offset = Duration::from_millis(500);
    let skewed = Arc::new(SkewedClock::new(Arc::new(SystemClock)));
    let fast_clock = Arc::new(HybridClock::new(skewed.clone(), max_offset));
    let normal_clock = Arc::new(HybridClock::new(Arc::new(SystemClock), max_offset));

    let certs = certs();
    let fast = start_with_clock(certs.path(), config(1, "r"), fast_clock).await;
    let normal = start_with_clock(certs.path(), config(2, "r"), normal_clock.clone()).await;
    introduce(&[&fast, &normal]);

    // Within the offset: accepted, and the receiver's clock moves past the
    // sender's timestamp.
    skewed.set_skew_nanos(200_000_000);
    let before = fast.transport.clock().now();
    echo(&fast, &normal, "close enough", LONG).await.unwrap();
    assert_eq!(normal.calls(), 1);
    assert!(normal.transport.clock().now() > before);

    // Two seconds ahead: the receiver refuses, without running the handler.
    skewed.set_skew_nanos(2_000_000_000);
    let sent_at = fast.transport.clock().now();
    let err = echo(&fast, &normal, "from the future", LONG)
        .await
        .unwrap_err();
    match err {
        TransportError::ClockOffset {
            refused_by,
            from,
            max_offset: m,
            ahead,
            ..
        } => {
            assert_eq!((refused_by, from, m), (2, 1, max_offset));
            assert!(ahead > max_offset);
        }
        other => panic!("expected ClockOffset, got {other}"),
    }
    assert_eq!(normal.calls(), 1);
    assert!(
        normal.transport.clock().now() < sent_at,
        "a refused timestamp moved the clock"
    );

    // The other way: the request is fine, the response comes from the
    // future, and the caller refuses it.
    let err = echo(&normal, &fast, "how late is it", LONG)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TransportError::ClockOffset {
                refused_by: 2,
                from: 1,
                ..
            }
        ),
        "{err}"
    );
    // Refused: one request and one response from node 1.
    assert_eq!(normal.transport.peer_stats()[&1].refused_frames, 2);

    // One-way messages from the future are dropped too. (Node 1's hybrid
    // clock never goes back, so everything it sends from now on is refused.)
    fast.transport.send::<Note>(2, &5).await.unwrap();
    wait_for("the refused note", LONG, || {
        normal.transport.peer_stats()[&1].refused_frames == 3
    })
    .await;
    assert_eq!(normal.notes(), 0);

    fast.transport.shutdown().await;
    normal.transport.shutdown().await;
}
