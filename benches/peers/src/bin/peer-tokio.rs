//! The workloads of the peer comparison on tokio's multi-thread runtime
//! (`--workers N` worker threads). Every measurement runs in a spawned task,
//! not in `block_on`'s future (which runs on the calling thread, outside the
//! workers). The HTTP server is hand-written on `TcpStream` with the same
//! `httparse` handling as the other peers (no hyper).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet_peers::{
    batches, emit, emit_spawn, http_handle, ns_per, raise_nofile, rss_kib, sizes, Args, BUF,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

const PEER: &str = "tokio";

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("peer-tokio: cannot build the runtime: {e}");
            std::process::exit(1)
        })
}

/// Runs `fut` as a task on the runtime's workers and waits for it.
fn on_worker<F>(rt: &Runtime, fut: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(fut).await.unwrap() })
}

fn spawn_join(args: &Args) {
    let n = args.n.unwrap_or(sizes::SPAWN_TASKS);
    let batch = args.batch;
    let took = on_worker(&runtime(args.workers), async move {
        let start = Instant::now();
        let mut sum = 0usize;
        for b in batches(n, batch) {
            let handles: Vec<_> = (0..b).map(|i| tokio::spawn(async move { i })).collect();
            for h in handles {
                sum = sum.wrapping_add(h.await.unwrap());
            }
        }
        std::hint::black_box(sum);
        start.elapsed()
    });
    emit_spawn(PEER, args, n, took);
}

fn yield_switch(args: &Args) {
    let n = args.n.unwrap_or(sizes::YIELD_ITERS);
    // One worker, so the two tasks really alternate on it.
    let took = on_worker(&runtime(1), async move {
        let other = tokio::spawn(async move {
            for _ in 0..n {
                tokio::task::yield_now().await;
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            tokio::task::yield_now().await;
        }
        other.await.unwrap();
        start.elapsed()
    });
    emit(
        PEER,
        "yield",
        ns_per(took, 2 * n),
        "ns/switch",
        &[("iters", n as f64)],
    );
}

fn pingpong(args: &Args) {
    let n = args.n.unwrap_or(sizes::PINGPONG_ROUNDS);
    // `pingpong-cross` runs as `pingpong` here: a task spawned by a task
    // sits in its worker's LIFO slot, which other workers never steal, so a
    // spawner spinning until it started would wait forever; and tokio moves a
    // task to the worker that wakes it anyway, so there is no placement to
    // force.
    let cross = false;
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo_started = started.clone();
    let took = on_worker(&runtime(args.workers), async move {
        let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<usize>();
        let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<usize>();
        let echo = tokio::spawn(async move {
            echo_started.store(true, std::sync::atomic::Ordering::Release);
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        threadlet_peers::wait_started(cross, &started);
        let start = Instant::now();
        for i in 0..n {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().await.unwrap(), i);
        }
        let took = start.elapsed();
        drop(ping_tx);
        echo.await.unwrap();
        took
    });
    emit(
        PEER,
        &args.workload,
        ns_per(took, n),
        "ns/roundtrip",
        &[("rounds", n as f64)],
    );
}

fn parked_rss(args: &Args) {
    let n = args.n.unwrap_or(sizes::RSS_TASKS);
    on_worker(&runtime(args.workers), async move {
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let parked = Arc::new(AtomicUsize::new(0));
        let before = rss_kib().unwrap();
        for _ in 0..n {
            let (tx, mut rx) = mpsc::unbounded_channel::<()>();
            let parked = parked.clone();
            handles.push(tokio::spawn(async move {
                parked.fetch_add(1, Ordering::Relaxed);
                let _ = rx.recv().await;
            }));
            senders.push(tx);
        }
        while parked.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = rss_kib().unwrap();
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
        emit(
            PEER,
            "rss",
            per,
            "B/task",
            &[
                ("tasks", n as f64),
                ("rss_before_kib", before as f64),
                ("rss_after_kib", after as f64),
            ],
        );
        drop(senders);
        for h in handles {
            h.await.unwrap();
        }
    });
}

async fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; BUF];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn http(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(BUF);
    let mut chunk = [0u8; BUF];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if http_handle(&mut buf, &mut out).is_err() {
            return;
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn serve(args: &Args, http_mode: bool) {
    raise_nofile();
    let addr = args.addr();
    on_worker(&runtime(args.workers), async move {
        let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("peer-tokio: bind {addr}: {e}");
            std::process::exit(1)
        });
        loop {
            match listener.accept().await {
                Ok((s, _)) if http_mode => drop(tokio::spawn(http(s))),
                Ok((s, _)) => drop(tokio::spawn(echo(s))),
                // EMFILE and friends: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
}

/// One connection of the mix workload: 64 B requests, echoed; a request
/// starting with `C` costs 50 ms of CPU first (on the worker, as a CPU-bound
/// handler would).
async fn mix(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut req = [0u8; threadlet_peers::MIX_SIZE];
    while s.read_exact(&mut req).await.is_ok() {
        threadlet_peers::mix_work(&req);
        if s.write_all(&req).await.is_err() {
            return;
        }
    }
}

fn serve_mix(args: &Args) {
    raise_nofile();
    let addr = args.addr();
    on_worker(&runtime(args.workers), async move {
        let listener = TcpListener::bind(&addr).await.unwrap_or_else(|e| {
            eprintln!("peer-tokio: bind {addr}: {e}");
            std::process::exit(1)
        });
        loop {
            match listener.accept().await {
                Ok((s, _)) => drop(tokio::spawn(mix(s))),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    })
}

fn main() {
    let args = Args::parse(PEER);
    match args.workload.as_str() {
        "spawn" => spawn_join(&args),
        "yield" => yield_switch(&args),
        "pingpong" | "pingpong-cross" => pingpong(&args),
        "rss" => parked_rss(&args),
        "echo-server" => serve(&args, false),
        "http-server" => serve(&args, true),
        "mix-server" | "mix-accept-server" => serve_mix(&args),
        _ => unreachable!("Args::parse checks the workload"),
    }
    // Exit at once: the measurement is printed, teardown is not measured.
    std::process::exit(0);
}
