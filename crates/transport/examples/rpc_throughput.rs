//! Small-RPC latency percentiles and throughput over the transport, next to
//! a plain TCP request/response baseline, in one run.
//!
//! ```text
//! cargo run --release -p meridian-transport --example rpc_throughput -- [seconds] [--latency-only]
//! ```
//!
//! Latency: one caller, sequential round trips, each timed; p50/p99.
//! Throughput: N callers in parallel for `seconds` each (default 3). The
//! transport multiplexes all callers over its one connection; the TCP
//! baseline gives each caller its own connection (plain TCP has no
//! multiplexing). Both ends of both run in this process, in two layouts:
//! one tokio runtime with 2 workers shared by both nodes, and one runtime
//! with 1 worker per node (which is how two node processes would share this
//! 2-core machine).

#[path = "../benches/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{payload, QuicPair, TcpClient};

const LATENCY_SAMPLES: usize = 20_000;
const CALLERS: [usize; 4] = [1, 16, 64, 256];

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let latency_only = std::env::args().any(|a| a == "--latency-only");

    println!("# Layout 1: both nodes on one tokio runtime with 2 workers\n");
    support::runtime(2).block_on(run(duration, latency_only, None));

    println!("# Layout 2: one runtime of 1 worker per node (like two processes)\n");
    let server_rt = support::runtime(1);
    support::runtime(1).block_on(run(duration, latency_only, Some(server_rt.handle())));
}

async fn run(duration: Duration, latency_only: bool, server_rt: Option<&tokio::runtime::Handle>) {
    let pair = Arc::new(QuicPair::start(server_rt).await);
    let tcp_addr = support::tcp_server(server_rt).await;
    let req = payload();

    // Latency, measured in spawned tasks (on the runtime's workers, like
    // the servers), not on the thread blocked in `block_on`.
    let quic = {
        let pair = pair.clone();
        let req = req.clone();
        tokio::spawn(async move {
            let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
            for i in 0..LATENCY_SAMPLES + LATENCY_SAMPLES / 10 {
                let start = Instant::now();
                pair.call(&req).await;
                if i >= LATENCY_SAMPLES / 10 {
                    samples.push(start.elapsed());
                }
            }
            percentiles(samples)
        })
        .await
        .unwrap()
    };
    let tcp = {
        let req = req.clone();
        tokio::spawn(async move {
            let mut client = TcpClient::connect(tcp_addr).await;
            let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
            for i in 0..LATENCY_SAMPLES + LATENCY_SAMPLES / 10 {
                let start = Instant::now();
                client.call(&req).await;
                if i >= LATENCY_SAMPLES / 10 {
                    samples.push(start.elapsed());
                }
            }
            percentiles(samples)
        })
        .await
        .unwrap()
    };
    println!(
        "## Round trip, one caller, {PAYLOAD}-byte payload, {LATENCY_SAMPLES} samples",
        PAYLOAD = support::PAYLOAD
    );
    println!();
    println!("| | p50 | p99 | mean |");
    println!("|---|---|---|---|");
    println!(
        "| meridian-transport (QUIC) | {:.1} µs | {:.1} µs | {:.1} µs |",
        us(quic.0),
        us(quic.1),
        us(quic.2)
    );
    println!(
        "| plain TCP | {:.1} µs | {:.1} µs | {:.1} µs |",
        us(tcp.0),
        us(tcp.1),
        us(tcp.2)
    );
    println!(
        "| ratio QUIC/TCP | {:.2} | {:.2} | {:.2} |",
        ratio(quic.0, tcp.0),
        ratio(quic.1, tcp.1),
        ratio(quic.2, tcp.2)
    );
    println!();

    if latency_only {
        shutdown(pair).await;
        return;
    }
    // Throughput.
    println!(
        "## Throughput, {}-byte payload, {:?} per point",
        support::PAYLOAD,
        duration
    );
    println!();
    println!("| callers | QUIC RPC/s | TCP RPC/s | ratio QUIC/TCP |");
    println!("|---|---|---|---|");
    for callers in CALLERS {
        let q = throughput(callers, duration, |_| {
            let pair = pair.clone();
            let req = req.clone();
            async move {
                move || {
                    let pair = pair.clone();
                    let req = req.clone();
                    async move {
                        pair.call(&req).await;
                    }
                }
            }
        })
        .await;
        let t = tcp_throughput(callers, duration, tcp_addr, &req).await;
        println!("| {callers} | {q:.0} | {t:.0} | {:.2} |", q / t);
    }
    println!();
    shutdown(pair).await;
}

async fn shutdown(pair: Arc<QuicPair>) {
    match Arc::try_unwrap(pair) {
        Ok(pair) => pair.shutdown().await,
        Err(_) => unreachable!("all callers finished"),
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    (at(0.5), at(0.99), mean)
}

/// Runs `callers` tasks, each calling in a loop, for `duration` (after a
/// short warm-up); returns completed calls per second.
async fn throughput<M, MF, C, CF>(callers: usize, duration: Duration, make: M) -> f64
where
    M: Fn(usize) -> MF,
    MF: std::future::Future<Output = C>,
    C: Fn() -> CF + Send + 'static,
    CF: std::future::Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..callers {
        let call = make(i).await;
        let (done, stop, counting) = (done.clone(), stop.clone(), counting.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                call().await;
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    counting.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let n = done.load(Ordering::Relaxed);
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / elapsed.as_secs_f64()
}

async fn tcp_throughput(
    callers: usize,
    duration: Duration,
    addr: std::net::SocketAddr,
    req: &[u8],
) -> f64 {
    throughput(callers, duration, |_| {
        let req = req.to_vec();
        async move {
            let client = Arc::new(tokio::sync::Mutex::new(TcpClient::connect(addr).await));
            move || {
                let client = client.clone();
                let req = req.clone();
                async move {
                    client.lock().await.call(&req).await;
                }
            }
        }
    })
    .await
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}
