//! Small RPCs over the transport next to a plain TCP request/response, in
//! the same run: one caller's round trip, and throughput with 64 callers.
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo bench -p meridian-transport --bench rpc
//! ```
//!
//! Criterion reports the mean time per RPC (round trip, and per RPC with 64
//! concurrent callers, shown as RPCs/s). For percentiles and more caller
//! counts run `examples/rpc_throughput.rs`. Both nodes and both TCP ends run
//! in this process on one 2-worker tokio runtime; calls run in spawned tasks.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use support::{payload, QuicPair, TcpClient};

const CALLERS: u64 = 64;

fn round_trip(c: &mut Criterion) {
    let rt = support::runtime(2);
    let pair = Arc::new(rt.block_on(QuicPair::start(None)));
    let tcp_addr = rt.block_on(support::tcp_server(None));
    let req = payload();

    let mut group = c.benchmark_group("round_trip_32B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("quic_transport", |b| {
        b.iter_custom(|iters| {
            let (pair, req) = (pair.clone(), req.clone());
            rt.block_on(async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..iters {
                        pair.call(&req).await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    group.bench_function("plain_tcp", |b| {
        b.iter_custom(|iters| {
            let req = req.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut client = TcpClient::connect(tcp_addr).await;
                    let start = Instant::now();
                    for _ in 0..iters {
                        client.call(&req).await;
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            })
        })
    });
    group.finish();

    let mut group = c.benchmark_group("throughput_32B_64_callers");
    group.throughput(Throughput::Elements(1));
    group.bench_function("quic_transport", |b| {
        b.iter_custom(|iters| {
            let per_caller = iters.div_ceil(CALLERS);
            rt.block_on(async {
                let start = Instant::now();
                let mut tasks = Vec::new();
                for _ in 0..CALLERS {
                    let (pair, req) = (pair.clone(), req.clone());
                    tasks.push(tokio::spawn(async move {
                        for _ in 0..per_caller {
                            pair.call(&req).await;
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("plain_tcp_conn_per_caller", |b| {
        // Connections are made once, outside the measured time.
        let clients: Vec<_> = rt.block_on(async {
            let mut clients = Vec::new();
            for _ in 0..CALLERS {
                clients.push(Arc::new(tokio::sync::Mutex::new(
                    TcpClient::connect(tcp_addr).await,
                )));
            }
            clients
        });
        b.iter_custom(|iters| {
            let per_caller = iters.div_ceil(CALLERS);
            rt.block_on(async {
                let start = Instant::now();
                let mut tasks = Vec::new();
                for client in &clients {
                    let (client, req) = (client.clone(), req.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut client = client.lock().await;
                        for _ in 0..per_caller {
                            client.call(&req).await;
                        }
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    let pair = Arc::try_unwrap(pair).unwrap_or_else(|_| unreachable!("benchmarks are done"));
    rt.block_on(pair.shutdown());
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = round_trip
}
criterion_main!(benches);
