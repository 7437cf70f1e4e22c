//! Unchanged std code parks (RELIABILITY row 24): this binary never names
//! the hooks — it uses `std::net`, `std::thread::sleep` and `libc::poll` as a
//! thread-per-connection program would — so it also proves the hooks are
//! linked into a program that only calls `threadlet::run`.
//!
//! Each test runs on ONE worker and is built so that it can only finish if
//! the blocking call parked the fiber: the fiber that would unblock it runs on
//! that same worker. Without hooks the worker blocks in the kernel and the
//! watchdog fails the test instead of hanging.
#![cfg(all(feature = "hook", target_os = "linux", target_env = "gnu"))]

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// Runs `f` on a fresh one-worker runtime on another thread; fails (instead
/// of hanging) when it does not finish within a minute.
fn one_worker<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
        let _ = tx.send(rt.block_on(f));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "{what}: the worker stayed blocked in a std call (are the syscall hooks linked?)"
            )
        })
}

/// Yields until some fiber of this runtime is parked with a state that
/// contains `what` (on one worker, reaching that state proves it parked).
fn wait_until_parked(what: &str) {
    while !threadlet::runtime::dump()
        .iter()
        .any(|f| f.state.contains(what))
    {
        threadlet::yield_now();
    }
}

#[test]
fn std_accept_connect_read_write_park_the_fiber() {
    let reply = one_worker("std echo on one worker", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = threadlet::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut c = TcpStream::connect(addr).unwrap();
        // On one worker, the server fiber runs only while this one is parked
        // (in `connect`, `write` or `read`).
        c.write_all(b"hello").unwrap();
        let mut reply = [0; 5];
        c.read_exact(&mut reply).unwrap();
        server.join().unwrap();
        reply
    });
    assert_eq!(&reply, b"hello");
}

#[test]
fn std_thread_sleep_parks_the_fiber() {
    let (other_ran, sleep_returned) = one_worker("std::thread::sleep on one worker", || {
        let other_ran = Arc::new(AtomicBool::new(false));
        let returned = Arc::new(AtomicBool::new(false));
        let r = returned.clone();
        // Sleeps for an hour: only parking lets the other fiber run; the
        // cancel then cuts the sleep short.
        let sleeper = threadlet::spawn(move || {
            std::thread::sleep(Duration::from_secs(3600));
            r.store(true, Ordering::SeqCst);
        });
        // This fiber shares the one worker: it gets past this line only
        // while the sleeper is parked in its sleep.
        wait_until_parked("sleeping");
        let o = other_ran.clone();
        threadlet::spawn(move || o.store(true, Ordering::SeqCst))
            .join()
            .unwrap();
        sleeper.cancel();
        let _ = sleeper.join(); // Err(Cancelled), as for any cancelled fiber
        (
            other_ran.load(Ordering::SeqCst),
            returned.load(Ordering::SeqCst),
        )
    });
    assert!(other_ran);
    assert!(
        sleep_returned,
        "a cancelled fiber's hooked sleep returns early"
    );
}

#[test]
fn std_udp_recv_from_parks_the_fiber() {
    let got = one_worker("std UDP on one worker", || {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a_addr = a.local_addr().unwrap();
        let receiver = threadlet::spawn(move || {
            let mut buf = [0; 16];
            let (n, from) = a.recv_from(&mut buf).unwrap();
            (buf[..n].to_vec(), from)
        });
        wait_until_parked("socket read");
        b.send_to(b"datagram", a_addr).unwrap();
        let (data, from) = receiver.join().unwrap();
        assert_eq!(from, b.local_addr().unwrap());
        data
    });
    assert_eq!(got, b"datagram");
}

#[test]
fn libc_poll_on_a_pipe_parks_the_fiber() {
    let revents = one_worker("poll on one worker", || {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two ends.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let [fd, w] = fds;
        let poller = threadlet::spawn(move || {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, 60_000) };
            (n, pfd.revents)
        });
        wait_until_parked("fd readable");
        // SAFETY: a valid buffer of one byte; then closing our two fds.
        unsafe {
            assert_eq!(libc::write(w, b"x".as_ptr().cast(), 1), 1);
            let r = poller.join().unwrap();
            libc::close(fd);
            libc::close(w);
            r
        }
    });
    assert_eq!(revents, (1, libc::POLLIN));
}

#[test]
fn std_write_all_of_8_mib_continues_partial_sends() {
    let n = one_worker("8 MiB std write on one worker", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = threadlet::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut all = Vec::new();
            s.read_to_end(&mut all).unwrap();
            all
        });
        let mut c = TcpStream::connect(addr).unwrap();
        let data: Vec<u8> = (0..8 << 20).map(|i| (i % 251) as u8).collect();
        // One write(2) of 8 MiB: a blocking socket sends all of it.
        let sent = c.write(&data).unwrap();
        drop(c);
        let got = reader.join().unwrap();
        assert_eq!(got, data[..sent]);
        sent
    });
    assert_eq!(n, 8 << 20);
}

#[test]
fn read_timeout_expires_as_would_block_and_flags_stay_blocking() {
    let (kind, waited, nonblocking) = one_worker("SO_RCVTIMEO on one worker", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let t = Instant::now();
        let e = (&c).read(&mut [0; 4]).unwrap_err();
        // SAFETY: F_GETFL on an open fd.
        let fl = unsafe { libc::fcntl(c.as_raw_fd(), libc::F_GETFL) };
        (e.kind(), t.elapsed(), fl & libc::O_NONBLOCK != 0)
    });
    assert_eq!(
        kind,
        ErrorKind::WouldBlock,
        "the kernel's EAGAIN, as std reports it"
    );
    assert!(
        waited >= Duration::from_millis(90),
        "returned after {waited:?}"
    );
    assert!(!nonblocking, "the user's socket must still look blocking");
}

#[test]
fn refused_connect_and_eof_are_what_the_kernel_says() {
    let (refused, eof) = one_worker("connect/EOF on one worker", || {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let refused = TcpStream::connect(port).unwrap_err().kind();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let closer = threadlet::spawn(move || drop(listener.accept().unwrap()));
        let n = c.read(&mut [0; 8]).unwrap();
        closer.join().unwrap();
        (refused, n)
    });
    assert_eq!(refused, ErrorKind::ConnectionRefused);
    assert_eq!(eof, 0);
}

#[test]
fn user_nonblocking_socket_passes_through() {
    let kind = one_worker("nonblocking std socket", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, _) = listener.accept().unwrap();
        c.set_nonblocking(true).unwrap();
        (&c).read(&mut [0; 4]).unwrap_err().kind()
    });
    assert_eq!(kind, ErrorKind::WouldBlock);
}

#[test]
fn reused_fd_numbers_park_again_after_close() {
    // A socket registered by a parked read is closed; the next socket gets
    // the same fd number and must park (and wake) correctly again.
    let rounds = one_worker("fd reuse on one worker", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut fds = Vec::new();
        for _ in 0..5 {
            let mut c = TcpStream::connect(addr).unwrap();
            let (mut s, _) = listener.accept().unwrap();
            fds.push(c.as_raw_fd());
            let writer = threadlet::spawn(move || s.write_all(b"ok").unwrap());
            let mut buf = [0; 2];
            c.read_exact(&mut buf).unwrap();
            writer.join().unwrap();
            assert_eq!(&buf, b"ok");
        }
        fds
    });
    assert_eq!(rounds.len(), 5);
}

#[test]
fn cancelled_fiber_gets_ecanceled_from_a_parked_read() {
    let err = one_worker("cancel a parked std read", || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_s, _) = listener.accept().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(None));
        let seen2 = seen.clone();
        let reader = threadlet::spawn(move || {
            let r = (&c).read(&mut [0; 4]).map_err(|e| e.raw_os_error());
            *seen2.lock().unwrap() = Some(r);
        });
        wait_until_parked("socket read");
        reader.cancel();
        let _ = reader.join(); // Err(Cancelled), as for any cancelled fiber
        let r = seen.lock().unwrap().take();
        r
    });
    // The hook cannot unwind through `extern "C"`: the read fails instead.
    assert_eq!(err, Some(Err(Some(libc::ECANCELED))));
}

#[test]
fn plain_threads_keep_the_real_calls() {
    // Off a fiber nothing changes: a read timeout is the kernel's.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(
        (&c).read(&mut [0; 1]).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    s.write_all(b"z").unwrap();
    let mut b = [0; 1];
    (&c).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"z");
}

#[test]
fn a_plain_thread_and_fibers_share_one_blocking_listener() {
    // Fibers accept with O_NONBLOCK toggled on for an instant; a plain
    // thread's blocking accept on the same listener must never see EAGAIN.
    const N: usize = 400;
    let listener = Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (l, a, d) = (listener.clone(), accepted.clone(), done.clone());
    let thread = std::thread::spawn(move || loop {
        match l.accept() {
            Ok(_) if d.load(Ordering::SeqCst) => return Ok(()),
            Ok(_) => {
                a.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => return Err(e),
        }
    });
    let rt = threadlet::Runtime::builder().workers(2).build().unwrap();
    for _ in 0..4 {
        let (l, a) = (listener.clone(), accepted.clone());
        rt.spawn(move || loop {
            l.accept().unwrap();
            a.fetch_add(1, Ordering::SeqCst);
        });
    }
    let clients: Vec<_> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
    while accepted.load(Ordering::SeqCst) < N {
        std::thread::yield_now();
    }
    done.store(true, Ordering::SeqCst);
    // Extra connections until the thread takes one and stops.
    let mut extra = Vec::new();
    while !thread.is_finished() {
        extra.push(TcpStream::connect(addr).unwrap());
        std::thread::yield_now();
    }
    thread
        .join()
        .unwrap()
        .expect("the thread's blocking accept failed");
    drop((clients, extra, rt));
}
