//! What the syscall hooks cost (issue 10, item 5). Run:
//! `cargo bench --bench hook`.
//!
//! - `offfiber/*`: a 1-byte `write` to /dev/null and `read` from /dev/zero
//!   on a plain thread, three ways: the raw `syscall(2)`, glibc's own
//!   function (found with `dlsym(RTLD_NEXT)`, i.e. what the call was before
//!   the hooks), and `libc::write`/`libc::read`, which now resolve to the
//!   hooks. Target: hooked within 2% of glibc's.
//! - `echo/*`: a 64-byte echo, 64 connections x 100 round trips per
//!   iteration on 2 workers, with the server written against `std::net`
//!   (parked through the hooks) and against `threadlet::net`; the clients
//!   are `threadlet::net` in both. Target: std >= 0.9x threadlet.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use threadlet::Runtime;

type Rw = unsafe extern "C" fn(libc::c_int, *mut libc::c_void, usize) -> isize;

/// glibc's own definition of `name` (the hooks' definitions come first).
fn glibc(name: &std::ffi::CStr) -> Rw {
    // SAFETY: RTLD_NEXT with a NUL-terminated name.
    let p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
    assert!(!p.is_null(), "no glibc {name:?}");
    // SAFETY: read/write share this ABI (the const-ness of write's buffer
    // does not change it).
    unsafe { std::mem::transmute::<*mut libc::c_void, Rw>(p) }
}

fn off_fiber(c: &mut Criterion) {
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let (wfd, rfd) = (null.as_raw_fd(), zero.as_raw_fd());
    let mut byte = [0u8; 1];
    let buf = byte.as_mut_ptr().cast::<libc::c_void>();
    let glibc_write = glibc(c"write");
    let glibc_read = glibc(c"read");
    let mut g = c.benchmark_group("offfiber");
    // Interleaved, so machine noise hits all variants alike.
    for round in 0..2 {
        let tag = |s: &str| format!("{s}/{round}");
        g.bench_function(tag("write_raw_syscall"), |b| {
            // SAFETY: a valid 1-byte buffer.
            b.iter(|| unsafe { libc::syscall(libc::SYS_write, wfd, buf, 1usize) })
        });
        g.bench_function(tag("write_glibc"), |b| {
            // SAFETY: glibc's write with a valid 1-byte buffer.
            b.iter(|| unsafe { glibc_write(wfd, buf, 1) })
        });
        g.bench_function(tag("write_hooked"), |b| {
            // SAFETY: a valid 1-byte buffer.
            b.iter(|| unsafe { libc::write(wfd, buf, 1) })
        });
        g.bench_function(tag("read_raw_syscall"), |b| {
            // SAFETY: a valid 1-byte buffer.
            b.iter(|| unsafe { libc::syscall(libc::SYS_read, rfd, buf, 1usize) })
        });
        g.bench_function(tag("read_glibc"), |b| {
            // SAFETY: glibc's read with a valid 1-byte buffer.
            b.iter(|| unsafe { glibc_read(rfd, buf, 1) })
        });
        g.bench_function(tag("read_hooked"), |b| {
            // SAFETY: a valid 1-byte buffer.
            b.iter(|| unsafe { libc::read(rfd, buf, 1) })
        });
    }
    g.finish();
    drop((null, zero));
}

const CONNS: usize = 64;
const ROUNDS: usize = 100;

/// One iteration: CONNS threadlet clients x ROUNDS 64-byte round trips
/// against `addr`.
fn clients(addr: std::net::SocketAddr) {
    let fibers: Vec<_> = (0..CONNS)
        .map(|_| {
            threadlet::spawn(move || {
                let mut s = threadlet::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let mut buf = [7u8; 64];
                for _ in 0..ROUNDS {
                    s.write_all(&buf).unwrap();
                    s.read_exact(&mut buf).unwrap();
                }
            })
        })
        .collect();
    for f in fibers {
        f.join().unwrap();
    }
}

fn echo(c: &mut Criterion) {
    let rt = Runtime::builder().workers(2).build().unwrap();
    // Two servers on the same runtime, one per API, each thread-per-connection.
    let (std_addr, tl_addr) = rt.block_on(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let std_addr = std_listener.local_addr().unwrap();
        threadlet::spawn(move || {
            for s in std_listener.incoming() {
                // ECANCELED once the runtime shuts down.
                let Ok(mut s) = s else { return };
                s.set_nodelay(true).unwrap();
                threadlet::spawn(move || {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
                });
            }
        });
        let tl_listener = threadlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let tl_addr = tl_listener.local_addr().unwrap();
        threadlet::spawn(move || {
            for s in tl_listener.incoming() {
                let Ok(mut s) = s else { return };
                s.set_nodelay(true).unwrap();
                threadlet::spawn(move || {
                    let mut buf = [0u8; 64];
                    while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
                });
            }
        });
        (std_addr, tl_addr)
    });
    let mut g = c.benchmark_group("echo");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(8));
    for round in 0..2 {
        for (name, addr) in [
            ("std_net_server", std_addr),
            ("threadlet_net_server", tl_addr),
        ] {
            g.bench_function(format!("{name}/{round}"), |b| {
                b.iter_custom(|iters| {
                    rt.block_on(move || {
                        let start = Instant::now();
                        for _ in 0..iters {
                            clients(addr);
                        }
                        start.elapsed()
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, off_fiber, echo);
criterion_main!(benches);
