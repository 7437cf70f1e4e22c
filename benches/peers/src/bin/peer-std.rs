//! The workloads of the peer comparison on plain std threads (the baseline
//! threadlet promises to replace by a change of `use` lines). There is no
//! worker pool: one OS thread per task, per connection.
//! - spawn+join: 10,000 threads (not 100k: each is a kernel thread);
//! - yield: `thread::yield_now` (sched_yield) in two unpinned threads; on a
//!   machine with two idle cores each thread usually has its own core, so
//!   this measures the syscall rather than a switch between the two;
//! - ping-pong: `std::sync::mpsc` between two threads (50k round trips:
//!   each wakes a sleeping thread twice; the result is per round trip);
//! - memory: 10,000 threads blocked in `recv` (default 2 MiB stacks, of
//!   which only touched pages count);
//! - servers: a thread per connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use threadlet_peers::{
    batches, emit, emit_spawn, http_handle, ns_per, raise_nofile, rss_kib, sizes, wait_until, Args,
    BUF,
};

const PEER: &str = "std";

fn spawn_join(args: &Args) {
    let n = args.n.unwrap_or(sizes::SPAWN_THREADS);
    let batch = args.batch;
    let start = Instant::now();
    let mut sum = 0usize;
    for b in batches(n, batch) {
        let handles: Vec<_> = (0..b).map(|i| thread::spawn(move || i)).collect();
        for h in handles {
            sum = sum.wrapping_add(h.join().unwrap());
        }
    }
    std::hint::black_box(sum);
    let took = start.elapsed();
    emit_spawn(PEER, args, n, took);
}

fn yield_switch(args: &Args) {
    let n = args.n.unwrap_or(sizes::YIELD_ITERS_STD);
    let other = thread::spawn(move || {
        for _ in 0..n {
            thread::yield_now();
        }
    });
    let start = Instant::now();
    for _ in 0..n {
        thread::yield_now();
    }
    other.join().unwrap();
    let took = start.elapsed();
    emit(
        PEER,
        "yield",
        ns_per(took, 2 * n),
        "ns/switch",
        &[("iters", n as f64)],
    );
}

fn pingpong(args: &Args) {
    let n = args.n.unwrap_or(sizes::PINGPONG_ROUNDS_STD);
    let cross = args.workload == "pingpong-cross";
    let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let echo_started = started.clone();
    let (ping_tx, ping_rx) = mpsc::channel::<usize>();
    let (pong_tx, pong_rx) = mpsc::channel::<usize>();
    let echo = thread::spawn(move || {
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
    emit(
        PEER,
        &args.workload,
        ns_per(took, n),
        "ns/roundtrip",
        &[("rounds", n as f64)],
    );
}

fn parked_rss(args: &Args) {
    let n = args.n.unwrap_or(sizes::RSS_THREADS);
    let mut senders = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    let parked = Arc::new(AtomicUsize::new(0));
    let before = rss_kib().unwrap();
    for _ in 0..n {
        let (tx, rx) = mpsc::channel::<()>();
        let parked = parked.clone();
        handles.push(thread::spawn(move || {
            parked.fetch_add(1, Ordering::Relaxed);
            let _ = rx.recv();
        }));
        senders.push(tx);
    }
    wait_until(|| parked.load(Ordering::Relaxed) >= n);
    thread::sleep(Duration::from_millis(50));
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
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
        eprintln!("peer-std: bind {addr}: {e}");
        std::process::exit(1)
    });
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                // Default stacks (2 MiB of address space each, touched pages only).
                if thread::Builder::new().spawn(move || handler(s)).is_err() {
                    thread::sleep(Duration::from_millis(5));
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
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
        "mix-server" | "mix-accept-server" => {
            eprintln!("peer-{PEER}: the mix workload is run for threadlet and tokio only");
            std::process::exit(1)
        }
        _ => unreachable!("Args::parse checks the workload"),
    }
    // Exit at once: the measurement is printed, teardown is not measured.
    std::process::exit(0);
}
