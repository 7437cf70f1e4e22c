//! Memory after a burst (RELIABILITY row 26): an echo server's resident
//! memory before, at the peak of, and after a burst of 10k connections that
//! all stay open at once, then close.
//!
//! Run: `cargo run --release --example burst_rss [-- CONNECTIONS]`
//! (default 10000; needs that many fds in each process). The server runs in
//! this process; the clients run in a child process (this program re-run as
//! `burst_rss client ADDR N`), so only the server's memory is measured.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};
use threadlet::Runtime;

/// Resident set size of this process, in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

/// Number of memory mappings of this process, and its virtual size in MiB.
fn maps() -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let vm_kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!("{maps} ({} MiB virtual)", vm_kib / 1024)
}

/// The echo loop of one connection, as in `examples/echo_server.rs`.
fn serve(mut stream: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// The child: opens `n` connections (1000 at a time), echoes one message on
/// each, says "connected", and closes them all when stdin closes.
fn client(addr: String, n: usize) {
    threadlet::run(move || {
        let mut streams = Vec::with_capacity(n);
        while streams.len() < n {
            let batch = (n - streams.len()).min(1000);
            let connects: Vec<_> = (0..batch)
                .map(|_| {
                    let addr = addr.clone();
                    threadlet::spawn(move || {
                        let mut s = TcpStream::connect(&addr).expect("connect");
                        s.write_all(&[7u8; 64]).unwrap();
                        let mut back = [0u8; 64];
                        s.read_exact(&mut back).unwrap();
                        s
                    })
                })
                .collect();
            streams.extend(connects.into_iter().map(|h| h.join().unwrap()));
        }
        println!("connected");
        std::io::stdout().flush().unwrap();
        threadlet::unblock(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        });
        drop(streams);
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        return client(args[2].clone(), args[3].parse().unwrap());
    }
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rt = Runtime::builder().workers(2).build().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(move || {
        for stream in listener.incoming().flatten() {
            threadlet::spawn(move || serve(stream));
        }
    });
    let base = rss_kib();
    let base_maps = maps();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["client", &addr.to_string(), &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = Instant::now();
    assert_eq!(lines.next().unwrap().unwrap(), "connected");
    let peak = rss_kib();
    let peak_maps = maps();
    println!(
        "{n} connections open after {:?}: live fibers {}",
        started.elapsed(),
        rt.stats().fibers_alive
    );
    drop(child.stdin.take()); // the clients close everything
    child.wait().unwrap();
    let closed = Instant::now();
    println!(
        "RSS KiB: base {base}, peak {peak} (+{}); mappings: base {base_maps}, peak {peak_maps}",
        peak - base
    );
    for at in [0, 500, 1000, 2000, 3000, 5000, 10000] {
        let at = Duration::from_millis(at);
        if let Some(wait) = at.checked_sub(closed.elapsed()) {
            std::thread::sleep(wait);
        }
        let rss = rss_kib();
        println!(
            "  {:>5} ms after close: {rss} (+{}, {:.1}% of the growth), live fibers {}, mappings {}",
            at.as_millis(),
            rss.saturating_sub(base),
            100.0 * rss.saturating_sub(base) as f64 / (peak - base).max(1) as f64,
            rt.stats().fibers_alive,
            maps()
        );
    }
}
