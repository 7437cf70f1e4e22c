//! Load generator of the mix workload: a connection per request, with a
//! CPU-bound request in the mix.
//!
//! `mixgen --addr 127.0.0.1:P [--duration 3] [--threads 4] [--cpu-every-ms 100] [--rate 1000]
//!  [--peer NAME] [--workload serve-mix]` prints one JSON line:
//! `{"peer":NAME,"workload":WORKLOAD,"value":<p99 us>,"unit":"us p99","p50_us":..,
//! "requests":..,"cpu_requests":..,"errors":..}`
//!
//! `threads` plain threads each make `rate` requests per second (open loop,
//! default 1000): connect, send one 64 B request, read the 64 B echo, close;
//! the time from when the request was due to the echo is one latency.
//! Meanwhile one more thread keeps four connections open and, every
//! `cpu-every-ms`, sends on one of them in turn a request starting with `C`,
//! which costs the server 50 ms of CPU (`threadlet_peers::mix_work`) on the
//! worker that runs that connection. The headline is the p99 latency of the
//! ordinary requests: a server whose accepting waits behind the CPU-bound
//! handler (an accept loop on the worker that is held) shows it there.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use threadlet_peers::MIX_SIZE;

struct Opts {
    addr: String,
    duration: f64,
    threads: usize,
    cpu_every_ms: u64,
    rate: f64,
    peer: String,
    workload: String,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        addr: String::new(),
        duration: 3.0,
        threads: 4,
        cpu_every_ms: 100,
        rate: 1000.0,
        peer: String::new(),
        workload: "serve-mix".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--addr" => o.addr = v,
            "--duration" => o.duration = num(&v)?,
            "--threads" => o.threads = (num(&v)? as usize).max(1),
            "--cpu-every-ms" => o.cpu_every_ms = (num(&v)? as u64).max(1),
            "--rate" => o.rate = num(&v)?.max(1.0),
            "--peer" => o.peer = v,
            "--workload" => o.workload = v,
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    if !o.addr.starts_with("127.0.0.1:") {
        return Err("--addr must be 127.0.0.1:PORT (loopback only)".into());
    }
    Ok(o)
}

/// One request on a fresh connection; its latency.
fn request(addr: &str, first: u8) -> io::Result<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut msg = [b'x'; MIX_SIZE];
    msg[0] = first;
    s.write_all(&msg)?;
    let mut back = [0u8; MIX_SIZE];
    s.read_exact(&mut back)?;
    Ok(t.elapsed())
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let o = parse().unwrap_or_else(|msg| {
        eprintln!("mixgen: {msg}");
        eprintln!("usage: mixgen --addr 127.0.0.1:PORT [--duration 3] [--threads 4] [--cpu-every-ms 100] [--rate 1000] [--peer NAME] [--workload NAME]");
        std::process::exit(2)
    });
    // Warm up (and wait for the server): one plain request.
    let deadline = Instant::now() + Duration::from_secs(10);
    while request(&o.addr, b'x').is_err() {
        if Instant::now() > deadline {
            eprintln!("mixgen: no server at {}", o.addr);
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let stop = AtomicBool::new(false);
    let end = Instant::now() + Duration::from_secs_f64(o.duration);
    let o = &o;
    let (lat, errors, cpu) = std::thread::scope(|sc| {
        let stop = &stop;
        let cpu = sc.spawn(move || {
            // Four long-lived connections take turns sending the CPU-bound
            // requests, so one worker at a time is held (whichever runs that
            // connection's handler), never both.
            let mut conns: Vec<TcpStream> = (0..4)
                .filter_map(|_| TcpStream::connect(&o.addr).ok())
                .collect();
            let mut msg = [b'x'; MIX_SIZE];
            msg[0] = b'C';
            let mut back = [0u8; MIX_SIZE];
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && !conns.is_empty() {
                let i = n as usize % conns.len();
                if conns[i].write_all(&msg).is_err() || conns[i].read_exact(&mut back).is_err() {
                    conns.swap_remove(i);
                    continue;
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(o.cpu_every_ms));
            }
            n
        });
        let hs: Vec<_> = (0..o.threads)
            .map(|_| {
                sc.spawn(move || {
                    let (mut lat, mut errors) = (Vec::new(), 0u64);
                    // Open loop: requests are due at a fixed rate, and each
                    // latency counts from when it was due, so a stall shows
                    // in every request it held up (no coordinated omission).
                    let period = Duration::from_secs_f64(1.0 / o.rate);
                    let mut due = Instant::now();
                    while due < end {
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                        match request(&o.addr, b'x') {
                            Ok(_) => lat.push(due.elapsed().as_nanos() as u64),
                            Err(_) => errors += 1,
                        }
                        due += period;
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut lat, mut errors) = (Vec::new(), 0);
        for h in hs {
            let (l, e) = h.join().expect("mixgen thread panicked");
            lat.extend(l);
            errors += e;
        }
        stop.store(true, Ordering::Relaxed);
        (lat, errors, cpu.join().expect("mixgen cpu thread panicked"))
    });
    let mut lat = lat;
    lat.sort_unstable();
    println!(
        r#"{{"peer":"{}","workload":"{}","value":{:.1},"unit":"us p99","p50_us":{:.1},"requests":{},"cpu_requests":{},"errors":{}}}"#,
        o.peer,
        o.workload,
        percentile_us(&lat, 0.99),
        percentile_us(&lat, 0.50),
        lat.len(),
        cpu,
        errors
    );
    std::process::exit(0);
}
