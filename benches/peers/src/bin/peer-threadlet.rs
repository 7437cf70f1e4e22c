//! The workloads of the peer comparison on threadlet (fibers on a
//! `Runtime` with `--workers N` workers). Every measurement runs inside the
//! runtime (on a fiber), like the other peers run theirs inside a task.
//! See `benches/README.md` for what each workload measures.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};
use threadlet::sync::mpsc;
use threadlet::{fiber, Runtime};
use threadlet_peers::{
    batches, emit, emit_spawn, http_handle, ns_per, raise_nofile, rss_kib, sizes, Args, BUF,
};

const PEER: &str = "threadlet";

fn runtime(workers: usize) -> Runtime {
    Runtime::builder()
        .workers(workers)
        .build()
        .unwrap_or_else(|e| {
            eprintln!("peer-threadlet: cannot build the runtime: {e}");
            std::process::exit(1)
        })
}

fn spawn_join(args: &Args) {
    let n = args.n.unwrap_or(sizes::SPAWN_TASKS);
    let batch = args.batch;
    let took = runtime(args.workers).block_on(move || {
        let start = Instant::now();
        let mut sum = 0usize;
        for b in batches(n, batch) {
            let handles: Vec<_> = (0..b).map(|i| threadlet::spawn(move || i)).collect();
            for h in handles {
                sum = sum.wrapping_add(h.join().unwrap());
            }
        }
        std::hint::black_box(sum);
        start.elapsed()
    });
    emit_spawn(PEER, args, n, took);
}

fn yield_switch(args: &Args) {
    let n = args.n.unwrap_or(sizes::YIELD_ITERS);
    // One worker, so the two fibers really switch to each other.
    let took = runtime(1).block_on(move || {
        let other = threadlet::spawn(move || {
            for _ in 0..n {
                fiber::yield_now();
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            fiber::yield_now();
        }
        other.join().unwrap();
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
    let cross = args.workload == "pingpong-cross";
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo_started = started.clone();
    let took = runtime(args.workers).block_on(move || {
        let (ping_tx, ping_rx) = mpsc::channel::<usize>();
        let (pong_tx, pong_rx) = mpsc::channel::<usize>();
        let echo = threadlet::spawn(move || {
            echo_started.store(true, std::sync::atomic::Ordering::Release);
            for v in ping_rx {
                if pong_tx.send(v).is_err() {
                    break;
                }
            }
        });
        threadlet_peers::wait_started(cross, &started);
        let start = Instant::now();
        for i in 0..n {
            ping_tx.send(i).unwrap();
            assert_eq!(pong_rx.recv().unwrap(), i);
        }
        let took = start.elapsed();
        drop(ping_tx);
        echo.join().unwrap();
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
    runtime(args.workers).block_on(move || {
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let parked = Arc::new(AtomicUsize::new(0));
        let before = rss_kib().unwrap();
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<()>();
            let parked = parked.clone();
            handles.push(threadlet::spawn(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                let _ = rx.recv();
            }));
            senders.push(tx);
        }
        while parked.load(Ordering::Relaxed) < n {
            fiber::sleep(Duration::from_millis(1));
        }
        fiber::sleep(Duration::from_millis(50));
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
            h.join().unwrap();
        }
    });
}

fn echo(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; BUF];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

fn http(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::with_capacity(BUF);
    let mut out = Vec::with_capacity(BUF);
    let mut chunk = [0u8; BUF];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if http_handle(&mut buf, &mut out).is_err() {
            return;
        }
        if !out.is_empty() {
            if s.write_all(&out).is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn serve(args: &Args, handler: fn(TcpStream)) {
    raise_nofile();
    let addr = args.addr();
    runtime(args.workers).block_on(move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("peer-threadlet: bind {addr}: {e}");
            std::process::exit(1)
        });
        loop {
            // accept backs off by itself on EMFILE; other errors are per connection.
            if let Ok((s, _)) = listener.accept() {
                threadlet::spawn(move || handler(s));
            }
        }
    })
}

/// One connection of the mix workload: 64 B requests, echoed; a request
/// starting with `C` costs 50 ms of CPU first.
fn mix(mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut req = [0u8; threadlet_peers::MIX_SIZE];
    while s.read_exact(&mut req).is_ok() {
        threadlet_peers::mix_work(&req);
        if s.write_all(&req).is_err() {
            return;
        }
    }
}

/// The mix workload on `threadlet::net::serve`: accepting belongs to the
/// runtime.
fn serve_mix(args: &Args) {
    raise_nofile();
    let addr = args.addr();
    runtime(args.workers).block_on(move || {
        let server = threadlet::net::serve(addr.as_str(), mix).unwrap_or_else(|e| {
            eprintln!("peer-threadlet: serve {addr}: {e}");
            std::process::exit(1)
        });
        loop {
            fiber::sleep(Duration::from_secs(3600));
            let _ = &server;
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
        "echo-server" => serve(&args, echo),
        "http-server" => serve(&args, http),
        "mix-server" => serve_mix(&args),
        "mix-accept-server" => serve(&args, mix),
        _ => unreachable!("Args::parse checks the workload"),
    }
    // Exit at once: the measurement is printed, teardown is not measured.
    std::process::exit(0);
}
