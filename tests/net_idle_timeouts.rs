//! RELIABILITY row 17: idle connections are bounded by read timeouts (the
//! slowloris defence). Up to 10,000 silent clients connect; the server gives
//! every connection a 500 ms read timeout, each read returns `TimedOut`, the
//! server closes, every client sees EOF, and after shutdown the fd count is
//! back to its baseline. Its own test binary with a single test (fd counts).
//!
//! Both ends live in this process, so 10,000 connections need 20,000 fds: the
//! test raises the soft `RLIMIT_NOFILE` to the hard limit and, if that is
//! still too low, scales the connection count down to what fits (printed).

use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};

const WANTED: usize = 10_000;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Raises the soft fd limit to the hard one; returns the new soft limit.
fn raise_fd_limit() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit for the call.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: valid rlimit; raising soft up to hard needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    lim.rlim_cur as usize
}

#[test]
fn idle_connections_time_out_close_and_fds_return_to_baseline() {
    let limit = raise_fd_limit();
    let baseline = open_fds();
    let conns = WANTED.min(limit.saturating_sub(baseline + 200) / 2);
    eprintln!("fd limit {limit}: testing {conns} idle connections (wanted {WANTED})");
    assert!(
        conns >= 1000,
        "fd limit {limit} is too low for a meaningful test"
    );

    let (timed_out, eofs) = threadlet::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let timed_out = Arc::new(AtomicUsize::new(0));
        let counter = timed_out.clone();
        let server = threadlet::spawn(move || {
            let mut handlers = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (conn, _) = listener.accept().unwrap();
                let counter = counter.clone();
                handlers.push(threadlet::spawn(move || {
                    conn.set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    let start = Instant::now();
                    let err = (&conn).read(&mut [0u8; 16]).unwrap_err();
                    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
                    assert!(start.elapsed() >= Duration::from_millis(500));
                    counter.fetch_add(1, Ordering::Relaxed);
                    // Dropping `conn` closes the idle connection.
                }));
            }
            for h in handlers {
                h.join().unwrap();
            }
        });
        // The silent clients: connect and say nothing.
        let clients: Vec<TcpStream> = (0..conns)
            .map(|_| TcpStream::connect(addr).unwrap())
            .collect();
        server.join().unwrap();
        // Every client sees the server's close as EOF.
        let mut eofs = 0;
        for mut c in clients {
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            assert_eq!(c.read(&mut [0u8; 1]).unwrap(), 0);
            eofs += 1;
        }
        (timed_out.load(Ordering::Relaxed), eofs)
    });
    assert_eq!(timed_out, conns);
    assert_eq!(eofs, conns);
    let after = open_fds();
    eprintln!("fds: baseline {baseline}, after {conns} idle connections and shutdown {after}");
    assert_eq!(after, baseline, "fds leaked");
}
