//! RELIABILITY row 18, EINTR: signals fired at the worker threads (and at
//! plain threads doing IO) during connects, accepts, reads, writes, timed
//! waits and `epoll_wait` cause no spurious errors. The handler is installed
//! without `SA_RESTART`, so every interrupted syscall really returns EINTR.
//! Its own test binary: it installs a process-wide signal handler.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream, UnixStream};

static DELIVERED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    DELIVERED.fetch_add(1, Ordering::Relaxed);
}

fn install_handler() {
    // SAFETY: a zeroed sigaction is valid; we set a plain handler (no
    // SA_RESTART, so syscalls fail with EINTR) and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = 0;
        libc::sigemptyset(&mut sa.sa_mask);
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Thread ids of this process whose name starts with `prefix`.
fn tids_named(prefix: &str) -> Vec<libc::pid_t> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with(prefix) {
            if let Ok(tid) = task.file_name().to_string_lossy().parse() {
                out.push(tid);
            }
        }
    }
    out
}

/// Fires SIGUSR1 at every thread named `eintr-*` until `stop`.
fn start_signaller(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // SAFETY: getpid has no preconditions.
        let pid = unsafe { libc::getpid() };
        while !stop.load(Ordering::Relaxed) {
            for tid in tids_named("eintr-") {
                // SAFETY: tgkill to a thread of our own process; the handler
                // is installed.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, libc::SIGUSR1) };
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    })
}

fn echo_loop(mut conn: impl Read + Write) {
    let mut buf = [0u8; 512];
    while let Ok(n @ 1..) = conn.read(&mut buf) {
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

#[test]
fn signals_during_io_cause_no_spurious_errors() {
    install_handler();
    let stop = Arc::new(AtomicBool::new(false));
    let signaller = start_signaller(stop.clone());

    let rt = threadlet::Runtime::builder()
        .workers(2)
        .thread_name("eintr-w")
        .build()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(move || {
        for conn in listener.incoming() {
            let conn = conn.unwrap();
            threadlet::spawn(move || echo_loop(conn));
        }
    });

    // Plain threads doing blocking-style IO (poll(2) path) get signals too.
    let plain: Vec<_> = (0..2)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("eintr-plain-{t}"))
                .spawn(move || {
                    for round in 0..20 {
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        for i in 0..20 {
                            let msg = format!("plain {t} {round} {i}");
                            s.write_all(msg.as_bytes()).unwrap();
                            let mut back = vec![0u8; msg.len()];
                            s.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg.as_bytes());
                        }
                    }
                })
                .unwrap()
        })
        .collect();

    let fibers = rt.block_on(move || {
        let clients: Vec<_> = (0..50)
            .map(|c| {
                threadlet::spawn(move || {
                    for round in 0..10 {
                        let mut s = TcpStream::connect(addr).unwrap();
                        // A timeout arms a timer for every wait, too.
                        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        for i in 0..20 {
                            let msg = format!("fiber {c} {round} {i}");
                            s.write_all(msg.as_bytes()).unwrap();
                            let mut back = vec![0u8; msg.len()];
                            s.read_exact(&mut back).unwrap();
                            assert_eq!(back, msg.as_bytes());
                        }
                        threadlet::time::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        // Unix pairs and short timed waits as well.
        let (a, b) = UnixStream::pair().unwrap();
        let unix = threadlet::spawn(move || echo_loop(b));
        let mut a = a;
        for i in 0..500u32 {
            a.write_all(&i.to_le_bytes()).unwrap();
            let mut back = [0u8; 4];
            a.read_exact(&mut back).unwrap();
            assert_eq!(u32::from_le_bytes(back), i);
        }
        drop(a);
        unix.join().unwrap();
        let n = clients.len();
        for c in clients {
            c.join().unwrap();
        }
        n
    });
    for p in plain {
        p.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    signaller.join().unwrap();
    drop(rt);
    assert_eq!(fibers, 50);
    let delivered = DELIVERED.load(Ordering::Relaxed);
    eprintln!("signals delivered during the test: {delivered}");
    assert!(
        delivered > 100,
        "only {delivered} signals were delivered; the test proved little"
    );
}
