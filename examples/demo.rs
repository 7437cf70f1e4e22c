//! The README's demo: an echo server and 1000 client fibers in one process.
//! Every client sends 64 bytes and waits for them to come back, over and
//! over, for about 5 seconds; the demo prints requests per second, latency
//! percentiles and the error count, and exits with status 1 on any error.
//!
//! Run: `cargo run --release --example demo`
//! Options: `--connections N` (default 1000), `--secs S` (default 5),
//! `--size BYTES` (default 64), `--workers N` (default: one per CPU).

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};

struct Options {
    connections: usize,
    secs: u64,
    size: usize,
    workers: Option<usize>,
}

fn options() -> Options {
    let mut o = Options {
        connections: 1000,
        secs: 5,
        size: 64,
        workers: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse::<u64>().ok());
        match (pair[0].as_str(), value) {
            ("--connections", Some(v)) => o.connections = v as usize,
            ("--secs", Some(v)) => o.secs = v,
            ("--size", Some(v)) => o.size = v.max(1) as usize,
            ("--workers", Some(v)) => o.workers = Some(v as usize),
            _ => {
                eprintln!("usage: demo [--connections N] [--secs S] [--size BYTES] [--workers N]");
                std::process::exit(2);
            }
        }
    }
    o
}

/// What one client saw during the measured window.
#[derive(Default)]
struct ClientResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn echo_server(listener: TcpListener) {
    for conn in listener.incoming() {
        let Ok(mut conn) = conn else { continue };
        threadlet::spawn(move || {
            let _ = conn.set_nodelay(true);
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

fn client(addr: std::net::SocketAddr, size: usize, start: Instant, end: Instant) -> ClientResult {
    let mut result = ClientResult::default();
    let fail = |result: &mut ClientResult, e: std::io::Error| {
        result.errors += 1;
        result.first_error.get_or_insert_with(|| e.to_string());
    };
    let mut stream = match TcpStream::connect(addr) {
        Ok(s) => s,
        Err(e) => {
            fail(&mut result, e);
            return result;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let msg = vec![0xabu8; size];
    let mut back = vec![0u8; size];
    // Warm up until `start`, measure until `end`.
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        if let Err(e) = stream
            .write_all(&msg)
            .and_then(|()| stream.read_exact(&mut back))
        {
            fail(&mut result, e);
            break;
        }
        if t0 >= start {
            let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
            result.latencies_us.push(us);
        }
    }
    result
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn main() {
    let o = options();
    let mut builder = threadlet::Runtime::builder();
    if let Some(n) = o.workers {
        builder = builder.workers(n);
    }
    let rt = builder.build().unwrap_or_else(|e| {
        eprintln!("cannot start the runtime: {e}");
        std::process::exit(1);
    });
    let workers = rt.stats().workers;
    let (connections, secs, size) = (o.connections, o.secs, o.size);
    let (results, wall) = rt.block_on(move || {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local_addr");
        threadlet::spawn(move || echo_server(listener));
        // Half a second to connect and warm up, then the measured window.
        let start = Instant::now() + Duration::from_millis(500);
        let end = start + Duration::from_secs(secs);
        let clients: Vec<_> = (0..connections)
            .map(|_| threadlet::spawn(move || client(addr, size, start, end)))
            .collect();
        let results: Vec<ClientResult> = clients
            .into_iter()
            .map(|c| c.join().expect("client fiber panicked"))
            .collect();
        (results, end.saturating_duration_since(start))
    });
    drop(rt);

    let errors: u64 = results.iter().map(|r| r.errors).sum();
    let per_client: Vec<usize> = results.iter().map(|r| r.latencies_us.len()).collect();
    let fewest = per_client.iter().min().copied().unwrap_or(0);
    let most = per_client.iter().max().copied().unwrap_or(0);
    let first_error = results.iter().find_map(|r| r.first_error.clone());
    let mut all: Vec<u32> = results.into_iter().flat_map(|r| r.latencies_us).collect();
    all.sort_unstable();
    let requests = all.len();
    println!("threadlet demo: echo server + {connections} client fibers, {size}-byte ping-pong, {workers} workers");
    println!("  measured      {:.1} s", wall.as_secs_f64());
    println!("  requests      {requests}");
    println!(
        "  requests/s    {:.0}",
        requests as f64 / wall.as_secs_f64()
    );
    println!(
        "  latency       p50 {} us, p99 {} us, p99.9 {} us, max {} us",
        percentile(&all, 50.0),
        percentile(&all, 99.0),
        percentile(&all, 99.9),
        all.last().copied().unwrap_or(0)
    );
    println!("  per client    {fewest} to {most} requests (fairness)");
    println!("  errors        {errors}");
    if let Some(e) = first_error {
        println!("  first error   {e}");
    }
    if errors > 0 || requests == 0 {
        std::process::exit(1);
    }
}
