//! TCP behaviour of `threadlet::net`: round trips on fibers and on plain
//! threads, clones sharing one registration, timeouts, emulated nonblocking
//! mode, shutdown waking a parked reader (RELIABILITY row 5), and 2000
//! concurrent connections through one echo server.

use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, TcpStream};

/// Echoes every connection of `listener` on its own fiber until the runtime
/// shuts down.
fn spawn_echo_server(listener: TcpListener) {
    threadlet::spawn(move || {
        for conn in listener.incoming() {
            let mut conn = conn.expect("accept");
            threadlet::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
}

#[test]
fn round_trip_on_fibers() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo_server(listener);
        let mut s = TcpStream::connect(addr).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        for i in 0..100u32 {
            let msg = i.to_le_bytes();
            s.write_all(&msg).unwrap();
            let mut back = [0u8; 4];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, msg);
        }
    });
}

#[test]
fn round_trip_on_plain_threads() {
    // No runtime at all: the types wait in poll(2).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        assert_eq!(peer, conn.peer_addr().unwrap());
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    server.join().unwrap();
}

#[test]
fn fiber_talks_to_plain_thread() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"from a thread").unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        back
    });
    threadlet::run(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 13];
        conn.read_exact(&mut buf).unwrap();
        conn.write_all(&buf).unwrap();
    });
    assert_eq!(client.join().unwrap(), "from a thread");
}

#[test]
fn vectored_read_and_write() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let peer = threadlet::spawn(move || listener.accept().unwrap().0);
        let mut a = TcpStream::connect(addr).unwrap();
        let mut b = peer.join().unwrap();
        let n = a
            .write_vectored(&[IoSlice::new(b"abc"), IoSlice::new(b"defg")])
            .unwrap();
        assert_eq!(n, 7);
        let (mut x, mut y) = ([0u8; 3], [0u8; 4]);
        let mut got = 0;
        while got < 7 {
            let mut bufs = [
                IoSliceMut::new(&mut x[got.min(3)..]),
                IoSliceMut::new(&mut y[got.saturating_sub(3)..]),
            ];
            got += b.read_vectored(&mut bufs).unwrap();
        }
        assert_eq!((&x, &y), (b"abc", b"defg"));
    });
}

#[test]
fn clones_share_one_registration_reader_and_writer_fibers() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo_server(listener);
        let s = TcpStream::connect(addr).unwrap();
        let reader = s.try_clone().unwrap();
        assert_ne!(
            std::os::fd::AsRawFd::as_raw_fd(&reader),
            std::os::fd::AsRawFd::as_raw_fd(&s),
            "try_clone gives a new fd, like std"
        );
        // One fiber reads while another writes the same stream.
        let total = 1 << 20;
        let r = threadlet::spawn(move || {
            let mut reader = reader;
            let mut buf = vec![0u8; 8192];
            let mut got = 0usize;
            let mut sum = 0u64;
            while got < total {
                let n = reader.read(&mut buf).unwrap();
                assert!(n > 0, "unexpected EOF after {got} bytes");
                sum += buf[..n].iter().map(|&b| b as u64).sum::<u64>();
                got += n;
            }
            sum
        });
        let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
        (&s).write_all(&data).unwrap();
        let expected: u64 = data.iter().map(|&b| b as u64).sum();
        assert_eq!(r.join().unwrap(), expected);
    });
}

#[test]
fn read_timeout_on_silent_peer_is_timed_out() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect(addr).unwrap();
        let _silent = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(100)));
        let start = Instant::now();
        let err = (&s).read(&mut [0u8; 16]).unwrap_err();
        let waited = start.elapsed();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            waited >= Duration::from_millis(100),
            "returned early: {waited:?}"
        );
        assert!(
            waited < Duration::from_secs(30),
            "took {waited:?}, far beyond the 100 ms timeout (a lost timer)"
        );
    });
}

#[test]
fn read_timeout_on_plain_thread_is_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _silent = listener.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let err = (&s).read(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
}

#[test]
fn zero_timeout_is_invalid_input() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let err = s.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = s.set_write_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn emulated_nonblocking_returns_would_block() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        assert_eq!(listener.accept().unwrap_err().kind(), ErrorKind::WouldBlock);
        listener.set_nonblocking(false).unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        let (s, _) = listener.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        assert_eq!(
            (&s).read(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        c.write_all(b"ok").unwrap();
        s.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 2];
        (&s).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok");
    });
}

#[test]
fn shutdown_wakes_a_reader_parked_on_a_clone() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        let (conn, _) = listener.accept().unwrap();
        let reader = conn.try_clone().unwrap();
        let a = threadlet::spawn(move || {
            let mut buf = [0u8; 16];
            (&reader).read(&mut buf)
        });
        // Make sure A really is parked in its read before shutting down.
        // (Poll with a sleep: a `yield_now` loop would keep A, still in
        // this worker's fresh queue, from ever starting.)
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.id == a.fiber().id() && f.state == "parked: tcp read")
        {
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
        conn.shutdown(Shutdown::Both).unwrap();
        let result = a.join().unwrap();
        match result {
            Ok(0) => {}
            Ok(n) => panic!("read {n} bytes from a shut-down stream"),
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::NotConnected | ErrorKind::BrokenPipe
                ),
                "{e}"
            ),
        }
    });
}

#[test]
fn peek_nodelay_ttl_linger() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        c.write_all(b"peek").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(s.peek(&mut buf).unwrap(), 4);
        assert_eq!(&buf, b"peek");
        (&s).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"peek");
        s.set_nodelay(true).unwrap();
        assert!(s.nodelay().unwrap());
        s.set_ttl(42).unwrap();
        assert_eq!(s.ttl().unwrap(), 42);
        s.set_linger(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(s.linger().unwrap(), Some(Duration::from_secs(3)));
        assert!(s.take_error().unwrap().is_none());
        listener.set_ttl(7).unwrap();
        assert_eq!(listener.ttl().unwrap(), 7);
    });
}

#[test]
fn std_conversions_round_trip() {
    threadlet::run(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let listener = TcpListener::from(std_listener);
        let addr = listener.local_addr().unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        let mut c = TcpStream::from(c);
        let (s, _) = listener.accept().unwrap();
        // Back to std: blocking mode again.
        let mut s = s.into_std().unwrap();
        c.write_all(b"std").unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"std");
        let listener = listener.into_std().unwrap();
        assert_eq!(listener.local_addr().unwrap(), addr);
    });
}

#[test]
fn connect_timeout_connects() {
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
        assert_eq!(s.peer_addr().unwrap(), addr);
        let err = TcpStream::connect_timeout(&addr, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn two_thousand_concurrent_connections_through_one_echo_server() {
    const CONNS: usize = 2000;
    const ROUNDS: usize = 5;
    threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        spawn_echo_server(listener);
        // Every client connects first, then all wait at a barrier so the
        // 2000 connections are open at the same time.
        let connected = std::sync::Arc::new(fiber_sync::Latch::new(CONNS));
        let start_gate = std::sync::Arc::new(fiber_sync::Gate::default());
        let clients: Vec<_> = (0..CONNS)
            .map(|i| {
                let connected = connected.clone();
                let gate = start_gate.clone();
                threadlet::spawn(move || {
                    let mut s = TcpStream::connect(addr).expect("connect");
                    connected.count_down();
                    gate.wait();
                    for r in 0..ROUNDS {
                        let msg = format!("{i:>6}:{r}");
                        s.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes());
                    }
                })
            })
            .collect();
        connected.wait();
        start_gate.open();
        for c in clients {
            c.join().unwrap();
        }
    });
}

/// Fiber-only synchronisation built on `Fiber::park`/`unpark` (the tests do
/// not depend on threadlet::sync, and std's blocking primitives would block
/// a worker thread).
mod fiber_sync {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A one-shot gate.
    #[derive(Default)]
    pub(crate) struct Gate {
        open: AtomicBool,
        waiters: Mutex<Vec<threadlet::fiber::Fiber>>,
    }

    impl Gate {
        pub(crate) fn wait(&self) {
            loop {
                self.waiters
                    .lock()
                    .unwrap()
                    .push(threadlet::fiber::current());
                if self.open.load(Ordering::SeqCst) {
                    return;
                }
                threadlet::fiber::park();
            }
        }

        pub(crate) fn open(&self) {
            self.open.store(true, Ordering::SeqCst);
            for f in self.waiters.lock().unwrap().drain(..) {
                f.unpark();
            }
        }
    }

    /// Counts down to zero; one fiber waits for zero.
    pub(crate) struct Latch {
        left: AtomicUsize,
        gate: Gate,
    }

    impl Latch {
        pub(crate) fn new(n: usize) -> Latch {
            Latch {
                left: AtomicUsize::new(n),
                gate: Gate::default(),
            }
        }

        pub(crate) fn count_down(&self) {
            if self.left.fetch_sub(1, Ordering::SeqCst) == 1 {
                self.gate.open();
            }
        }

        pub(crate) fn wait(&self) {
            self.gate.wait();
        }
    }
}
