//! The workloads of the peer comparison on may (stackful coroutines,
//! `--workers N` workers, everything else at may's defaults: 32 KiB stacks,
//! pinned workers). Every measurement runs inside a coroutine.
//!
//! may's `spawn` is an `unsafe fn` (a coroutine may migrate between threads,
//! so thread-locals are unsound in it); the `go!` macro wraps that call. The
//! closures here touch no thread-locals.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use may::go;
use may::net::{TcpListener, TcpStream};
use may::sync::mpsc;
use threadlet_peers::{
    batches, emit, emit_error, emit_spawn, http_handle, ns_per, raise_nofile, rss_kib, sizes, Args,
    BUF,
};

const PEER: &str = "may";

/// Configures may's scheduler (before its first use), runs `f` in a coroutine and waits for it.
fn in_coroutine<T: Send + 'static>(workers: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
    may::config().set_workers(workers);
    go!(f).join().unwrap_or_else(|_| {
        eprintln!("peer-may: the measuring coroutine panicked");
        std::process::exit(1)
    })
}

/// `go!`, but a failure to allocate the coroutine's stack (mmap fails once
/// `vm.max_map_count` is reached: two mappings per stack) is an `Err`.
fn try_go<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<may::coroutine::JoinHandle<T>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || go!(f))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("may could not spawn a coroutine ({msg})")
    })
}

fn spawn_join(args: &Args) {
    let n = args.n.unwrap_or(sizes::SPAWN_TASKS);
    let batch = args.batch;
    let took = in_coroutine(args.workers, move || {
        let start = Instant::now();
        let mut sum = 0usize;
        for b in batches(n, batch) {
            let mut handles = Vec::with_capacity(b);
            for i in 0..b {
                match try_go(move || i) {
                    Ok(h) => handles.push(h),
                    Err(e) => return Err(format!("{e} with {} coroutines alive", handles.len())),
                }
            }
            for h in handles {
                sum = sum.wrapping_add(h.join().unwrap());
            }
        }
        std::hint::black_box(sum);
        Ok(start.elapsed())
    });
    match took {
        Ok(took) => emit_spawn(PEER, args, n, took),
        Err(e) => emit_error(PEER, "spawn", &e),
    }
}

fn yield_switch(args: &Args) {
    let n = args.n.unwrap_or(sizes::YIELD_ITERS);
    // One worker, so the two coroutines really alternate on it.
    let took = in_coroutine(1, move || {
        let other = go!(move || {
            for _ in 0..n {
                may::coroutine::yield_now();
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            may::coroutine::yield_now();
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
    let took = in_coroutine(args.workers, move || {
        let (ping_tx, ping_rx) = mpsc::channel::<usize>();
        let (pong_tx, pong_rx) = mpsc::channel::<usize>();
        let echo = go!(move || {
            echo_started.store(true, std::sync::atomic::Ordering::Release);
            while let Ok(v) = ping_rx.recv() {
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
    in_coroutine(args.workers, move || {
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let parked = Arc::new(AtomicUsize::new(0));
        let before = rss_kib().unwrap();
        let mut failed = None;
        for _ in 0..n {
            let (tx, rx) = mpsc::channel::<()>();
            let parked = parked.clone();
            let spawned = try_go(move || {
                parked.fetch_add(1, Ordering::Relaxed);
                let _ = rx.recv();
            });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // Measure what fits (the default vm.max_map_count caps may near 32k).
                    failed = Some(e);
                    break;
                }
            }
            senders.push(tx);
        }
        let n = handles.len();
        if let Some(e) = &failed {
            eprintln!("peer-may: rss: stopped at {n} coroutines: {e}");
        }
        while parked.load(Ordering::Relaxed) < n {
            may::coroutine::sleep(Duration::from_millis(1));
        }
        may::coroutine::sleep(Duration::from_millis(50));
        let after = rss_kib().unwrap();
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
        let fail = if failed.is_some() { 1.0 } else { 0.0 };
        emit(
            PEER,
            "rss",
            per,
            "B/task",
            &[
                ("tasks", n as f64),
                ("rss_before_kib", before as f64),
                ("rss_after_kib", after as f64),
                ("spawn_failed", fail),
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
    in_coroutine(args.workers, move || {
        let listener = TcpListener::bind(&addr).unwrap_or_else(|e| {
            eprintln!("peer-may: bind {addr}: {e}");
            std::process::exit(1)
        });
        loop {
            match listener.accept() {
                Ok((s, _)) => drop(go!(move || handler(s))),
                // EMFILE and friends: back off instead of spinning.
                Err(_) => may::coroutine::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// Keeps the default panic report, except for the stack-allocation failure
/// that [`try_go`] turns into a result.
fn quiet_stack_alloc_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("");
        if !msg.contains("failed to alloc sys stack") {
            default(info);
        }
    }));
}

fn main() {
    let args = Args::parse(PEER);
    quiet_stack_alloc_panics();
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
