//! The one echo load generator used for every server: closed-loop
//! ping-pong of fixed-size messages over N connections, on plain epoll (no
//! runtime, so it favours no peer).
//!
//! `loadgen --addr 127.0.0.1:P --conns N [--size 64] [--duration 3]
//!  [--warmup 0.5] [--threads 1] [--peer NAME]` prints one JSON line:
//! `{"peer":NAME,"workload":"echo-N","value":<req/s>,"unit":"req/s","p50_us":..,
//! "p99_us":..,"errors":..,"connect_s":..}`
//! (`connect_s`: how long setting up the connections took, not measured).
//!
//! Protocol per connection (the state machine is the `Conn` struct): write
//! one message, stamp the time, wait for readability, read until the whole
//! message is back, record the latency, write the next one. Each thread owns
//! its connections and its epoll fd outright; nothing is shared until the
//! threads return their counts and latencies. Requests that complete in the
//! warm-up are not counted; the measured window is `duration` seconds.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use threadlet_peers::raise_nofile;

/// Connections set up at a time (below the smallest listen backlog, 128).
const CONNECT_BATCH: usize = 64;

struct Opts {
    addr: String,
    conns: usize,
    size: usize,
    duration: f64,
    warmup: f64,
    threads: usize,
    peer: String,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        addr: String::new(),
        conns: 100,
        size: 64,
        duration: 3.0,
        warmup: 0.5,
        threads: 1,
        peer: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{a} {v}: {e}"));
        match a.as_str() {
            "--addr" => o.addr = v,
            "--conns" => o.conns = num(&v)? as usize,
            "--size" => o.size = num(&v)? as usize,
            "--duration" => o.duration = num(&v)?,
            "--warmup" => o.warmup = num(&v)?,
            "--threads" => o.threads = (num(&v)? as usize).max(1),
            "--peer" => o.peer = v,
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    if !o.addr.starts_with("127.0.0.1:") {
        return Err("--addr must be 127.0.0.1:PORT (loopback only)".into());
    }
    if o.conns == 0 || o.size == 0 || o.size > 4096 {
        return Err("--conns must be > 0 and --size in 1..=4096".into());
    }
    Ok(o)
}

/// Connects, retrying for up to 10 s (the server may still be starting, or
/// its accept queue may be full for a moment).
fn connect(addr: &str) -> io::Result<TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() > deadline => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("connect {addr}: {e} (is the server running?)"),
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

struct Conn {
    stream: TcpStream,
    sent_at: Instant,
    got: usize,
    dead: bool,
}

struct Tally {
    done: u64,
    errors: u64,
    lat_ns: Vec<u64>,
}

fn epoll_add(ep: i32, fd: i32, token: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ep` and `fd` are open fds owned by this thread; `ev` is valid for the call.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn drive(streams: Vec<TcpStream>, o: &Opts, start: Instant) -> io::Result<Tally> {
    // SAFETY: plain syscall; the returned fd is checked and closed below.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(io::Error::last_os_error());
    }
    let msg = vec![b'x'; o.size];
    let mut buf = vec![0u8; o.size];
    let mut conns: Vec<Conn> = Vec::with_capacity(streams.len());
    for (i, s) in streams.into_iter().enumerate() {
        s.set_nonblocking(true)?;
        epoll_add(ep, s.as_raw_fd(), i as u64)?;
        conns.push(Conn {
            stream: s,
            sent_at: Instant::now(),
            got: 0,
            dead: false,
        });
    }
    let mut t = Tally {
        done: 0,
        errors: 0,
        lat_ns: Vec::with_capacity(1 << 20),
    };
    let measure_from = start + Duration::from_secs_f64(o.warmup);
    let end = measure_from + Duration::from_secs_f64(o.duration);
    for c in conns.iter_mut() {
        c.sent_at = Instant::now();
        if c.stream.write(&msg).ok() != Some(o.size) {
            c.dead = true;
            t.errors += 1;
        }
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let timeout = (end - now).as_millis().min(100) as i32 + 1;
        // SAFETY: `events` has room for `events.len()` entries for the duration of the call.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in &events[..n as usize] {
            let c = &mut conns[ev.u64 as usize];
            if c.dead {
                continue;
            }
            loop {
                match c.stream.read(&mut buf[..o.size - c.got]) {
                    Ok(0) => {
                        c.dead = true;
                        t.errors += 1;
                        break;
                    }
                    Ok(k) => {
                        c.got += k;
                        if c.got < o.size {
                            continue;
                        }
                        let now = Instant::now();
                        if now >= measure_from && now < end {
                            t.done += 1;
                            t.lat_ns.push((now - c.sent_at).as_nanos() as u64);
                        }
                        c.got = 0;
                        c.sent_at = now;
                        if c.stream.write(&msg).ok() != Some(o.size) {
                            c.dead = true;
                            t.errors += 1;
                        }
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        c.dead = true;
                        t.errors += 1;
                        break;
                    }
                }
            }
        }
    }
    // SAFETY: `ep` is our epoll fd, closed exactly once.
    unsafe { libc::close(ep) };
    Ok(t)
}

fn percentile_us(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

fn run(o: Opts) -> io::Result<()> {
    raise_nofile();
    let mut per_thread: Vec<Vec<TcpStream>> = (0..o.threads).map(|_| Vec::new()).collect();
    let connecting = Instant::now();
    let msg = vec![b'x'; o.size];
    let mut back = vec![0u8; o.size];
    let mut i = 0;
    while i < o.conns {
        // Connect a batch, then wait for one echo on each: the server has
        // accepted them all before the next batch, so a listen backlog of 128
        // (std, mio) never overflows into 1 s SYN retransmits.
        let batch: Vec<TcpStream> = (i..o.conns.min(i + CONNECT_BATCH))
            .map(|_| {
                let s = connect(&o.addr)?;
                s.set_nodelay(true)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                (&s).write_all(&msg)?;
                Ok(s)
            })
            .collect::<io::Result<_>>()?;
        for s in batch {
            (&s).read_exact(&mut back).map_err(|e| {
                io::Error::new(e.kind(), format!("first echo from {}: {e}", o.addr))
            })?;
            per_thread[i % o.threads].push(s);
            i += 1;
        }
    }
    let connect_s = connecting.elapsed().as_secs_f64();
    let start = Instant::now();
    let o = &o;
    let tallies: Vec<io::Result<Tally>> = std::thread::scope(|sc| {
        let hs: Vec<_> = per_thread
            .into_iter()
            .map(|streams| sc.spawn(move || drive(streams, o, start)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("loadgen thread panicked"))
            .collect()
    });
    let (mut done, mut errors, mut lat) = (0u64, 0u64, Vec::new());
    for t in tallies {
        let t = t?;
        done += t.done;
        errors += t.errors;
        lat.extend(t.lat_ns);
    }
    lat.sort_unstable();
    println!(
        r#"{{"peer":"{}","workload":"echo-{}","value":{:.1},"unit":"req/s","p50_us":{:.1},"p99_us":{:.1},"errors":{},"connect_s":{:.3}}}"#,
        o.peer,
        o.conns,
        done as f64 / o.duration,
        percentile_us(&lat, 0.50),
        percentile_us(&lat, 0.99),
        errors,
        connect_s
    );
    Ok(())
}

fn main() {
    let o = parse().unwrap_or_else(|msg| {
        eprintln!("loadgen: {msg}");
        eprintln!("usage: loadgen --addr 127.0.0.1:PORT --conns N [--size 64] [--duration 3] [--warmup 0.5] [--threads 1] [--peer NAME]");
        std::process::exit(2)
    });
    if let Err(e) = run(o) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
    // Exit without closing 10,000 sockets one by one.
    std::process::exit(0);
}
