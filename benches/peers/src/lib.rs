//! Shared pieces of the peer comparison harness (issue 5): argument parsing,
//! the one-JSON-line result format, VmRSS reading, the fd limit, and the HTTP
//! request handling that every HTTP server uses (so they all parse with
//! `httparse` the same way and answer with the same bytes).
//!
//! Protocol between the binaries and `benches/run.sh`: each `peer-<runtime>`
//! binary runs ONE workload per process and prints ONE line of JSON on stdout
//! (`{"peer":..,"workload":..,"value":..,"unit":..,...}`), or, for the servers,
//! serves until it is killed. The driver collects the lines in
//! `benches/results/raw/` and `benches/report.py` turns them into the table.

use std::fmt::Write as _;
use std::io;
use std::time::Duration;

/// Workload sizes; the driver may override them with flags.
pub mod sizes {
    /// Tasks spawned and joined by the runtimes.
    pub const SPAWN_TASKS: usize = 100_000;
    /// Threads spawned and joined by the std-threads peer.
    pub const SPAWN_THREADS: usize = 10_000;
    /// Yield iterations per task (each is two switches: there and back).
    pub const YIELD_ITERS: usize = 500_000;
    /// Yield iterations for std threads (a syscall each, so fewer).
    pub const YIELD_ITERS_STD: usize = 200_000;
    /// Channel round trips.
    pub const PINGPONG_ROUNDS: usize = 200_000;
    /// Channel round trips for std threads (each is two futex wake-ups, so
    /// fewer keep the run short; the result is per round trip).
    pub const PINGPONG_ROUNDS_STD: usize = 50_000;
    /// Parked tasks for the memory workload.
    pub const RSS_TASKS: usize = 100_000;
    /// Parked threads for the memory workload (std).
    pub const RSS_THREADS: usize = 10_000;
}

/// Parsed command line: `peer-<rt> <workload> [--workers N] [--n N] [--batch B] [--port P]`.
#[derive(Debug, Clone)]
pub struct Args {
    /// The workload name (`spawn`, `yield`, `pingpong`, `rss`, `echo-server`, `http-server`).
    pub workload: String,
    /// Worker threads for the runtime (default 2).
    pub workers: usize,
    /// Size override (tasks, iterations, round trips); `None` = the default in [`sizes`].
    pub n: Option<usize>,
    /// Port for the servers (they bind 127.0.0.1 only).
    pub port: u16,
    /// spawn: how many tasks are alive at once (spawn a batch, join it, repeat);
    /// `None` = all of them.
    pub batch: Option<usize>,
}

/// The workloads every peer binary understands.
pub const WORKLOADS: &[&str] = &[
    "spawn",
    "yield",
    "pingpong",
    "pingpong-cross",
    "rss",
    "echo-server",
    "http-server",
    "mix-server",
    "mix-accept-server",
];

/// `pingpong-cross`: the spawner of the echo task spins (never yields) until
/// the echo task has started, so the echo task starts on another worker and
/// the two ends of the ping-pong are on two workers (threadlet never moves a
/// started fiber; tokio and may move tasks afterwards as they see fit). Plain
/// `pingpong` (`cross` false) leaves the placement to the runtime.
pub fn wait_started(cross: bool, started: &std::sync::atomic::AtomicBool) {
    while cross && !started.load(std::sync::atomic::Ordering::Acquire) {
        std::hint::spin_loop();
    }
}

/// The request size of the mix workload (`mixgen`).
pub const MIX_SIZE: usize = 64;
/// CPU time a mix request whose first byte is `b'C'` costs the server.
pub const MIX_CPU: Duration = Duration::from_millis(50);

/// The mix workload's server side of one request: a request starting with
/// `b'C'` burns [`MIX_CPU`] of CPU (a CPU-bound request); every request is
/// echoed.
pub fn mix_work(request: &[u8]) {
    if request.first() == Some(&b'C') {
        let until = std::time::Instant::now() + MIX_CPU;
        while std::time::Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

impl Args {
    /// Parses `std::env::args()`; on bad input prints usage and exits with status 2.
    pub fn parse(peer: &str) -> Args {
        match Args::try_parse(std::env::args().skip(1)) {
            Ok(a) => a,
            Err(msg) => {
                eprintln!("peer-{peer}: {msg}");
                eprintln!(
                    "usage: peer-{peer} <{}> [--workers N] [--n N] [--batch B] [--port P]",
                    WORKLOADS.join("|")
                );
                std::process::exit(2);
            }
        }
    }

    /// Parses an argument list (without the program name).
    pub fn try_parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut args = Args {
            workload: String::new(),
            workers: 2,
            n: None,
            port: 0,
            batch: None,
        };
        while let Some(a) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| format!("{name} needs a value"))
                    .and_then(|v| v.parse::<usize>().map_err(|e| format!("{name} {v}: {e}")))
            };
            match a.as_str() {
                "--workers" => args.workers = value("--workers")?.max(1),
                "--n" => args.n = Some(value("--n")?),
                "--batch" => args.batch = Some(value("--batch")?.max(1)),
                "--port" => {
                    args.port = u16::try_from(value("--port")?)
                        .map_err(|_| "--port must be below 65536".to_string())?
                }
                w if !w.starts_with('-') && args.workload.is_empty() => {
                    args.workload = w.to_string()
                }
                other => return Err(format!("unexpected argument {other:?}")),
            }
        }
        if !WORKLOADS.contains(&args.workload.as_str()) {
            return Err(format!("unknown workload {:?}", args.workload));
        }
        if args.workload.ends_with("-server") && args.port == 0 {
            return Err("servers need --port P (they bind 127.0.0.1:P)".into());
        }
        Ok(args)
    }

    /// The server address, always on loopback.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// One result line. `value` is the headline number in `unit`.
pub fn emit(peer: &str, workload: &str, value: f64, unit: &str, extra: &[(&str, f64)]) {
    let mut s =
        format!(r#"{{"peer":"{peer}","workload":"{workload}","value":{value:.3},"unit":"{unit}""#);
    for (k, v) in extra {
        let _ = write!(s, r#","{k}":{v:.3}"#);
    }
    s.push('}');
    println!("{s}");
}

/// The `spawn` workload's result line: `name` is `spawn` (all alive at once)
/// or `spawn-b<batch>`.
pub fn emit_spawn(peer: &str, args: &Args, n: usize, took: Duration) {
    let name = match args.batch {
        Some(b) if b < n => format!("spawn-b{b}"),
        _ => "spawn".to_string(),
    };
    emit(
        peer,
        &name,
        ns_per(took, n),
        "ns/task",
        &[("tasks", n as f64)],
    );
}

/// Batch sizes that add up to `n`, each at most `batch` (default: one batch of `n`).
pub fn batches(n: usize, batch: Option<usize>) -> impl Iterator<Item = usize> {
    let b = batch.unwrap_or(n).max(1);
    (0..n.div_ceil(b)).map(move |i| b.min(n - i * b))
}

/// A result line for a workload that could not run to the end; `error` says why.
pub fn emit_error(peer: &str, workload: &str, error: &str) {
    let error = error.replace(['"', '\\', '\n'], " ");
    println!(r#"{{"peer":"{peer}","workload":"{workload}","error":"{error}"}}"#);
}

/// Nanoseconds per item.
pub fn ns_per(d: Duration, items: usize) -> f64 {
    d.as_nanos() as f64 / items.max(1) as f64
}

/// The process's resident set size in KiB, from `/proc/self/status` (VmRSS).
pub fn rss_kib() -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS line in /proc/self/status (needs Linux procfs)"))
}

/// Raises the soft fd limit to the hard limit (10,000 connections need it).
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// Waits until `f()` is true, sleeping 1 ms between checks (benchmark setup only).
pub fn wait_until(mut f: impl FnMut() -> bool) {
    while !f() {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The one response every HTTP server sends.
pub const HTTP_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: peers\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";

/// HTTP/1.1 keep-alive handling shared by all servers: parses every complete
/// request at the front of `buf` with `httparse`, removes it, and appends one
/// response per request to `out`. Returns `Err` on a malformed request (the
/// server then closes the connection).
pub fn http_handle(buf: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), httparse::Error> {
    let mut start = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[start..])? {
            httparse::Status::Complete(n) => {
                // Hello world ignores bodies: wrk sends GET without one.
                start += n;
                out.extend_from_slice(HTTP_RESPONSE);
            }
            httparse::Status::Partial => break,
        }
    }
    buf.drain(..start);
    Ok(())
}

/// Echo/HTTP read buffer size.
pub const BUF: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_workload_and_flags() {
        let a = Args::try_parse(
            ["echo-server", "--port", "9000", "--workers", "3"]
                .map(String::from)
                .into_iter(),
        )
        .unwrap();
        assert_eq!(
            (a.workload.as_str(), a.port, a.workers),
            ("echo-server", 9000, 3)
        );
    }

    #[test]
    fn batches_add_up() {
        assert_eq!(
            batches(2500, Some(1000)).collect::<Vec<_>>(),
            [1000, 1000, 500]
        );
        assert_eq!(batches(7, None).collect::<Vec<_>>(), [7]);
    }

    #[test]
    fn server_without_port_is_an_error() {
        assert!(Args::try_parse(["http-server"].map(String::from).into_iter()).is_err());
    }

    #[test]
    fn http_handles_two_pipelined_requests_and_keeps_a_partial_one() {
        let mut buf =
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HT".to_vec();
        let mut out = Vec::new();
        http_handle(&mut buf, &mut out).unwrap();
        assert_eq!(out.len(), 2 * HTTP_RESPONSE.len());
        assert_eq!(buf, b"GET / HT");
    }
}
