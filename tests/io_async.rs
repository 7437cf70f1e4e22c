//! `threadlet::io`: `wait_readable`/`wait_writable` on arbitrary fds (pipes,
//! fds already registered, several waiters at once, plain threads) and the
//! `Async<T>` wrapper (pipes, `&Async` reads and writes, `read_with` on an
//! eventfd, `into_inner` restoring blocking mode).

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use threadlet::io::{wait_readable, wait_writable, Async};

fn pipe() -> (File, File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just returned these two fds, owned by nobody else.
    unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    }
}

fn is_nonblocking(fd: &impl AsRawFd) -> bool {
    // SAFETY: F_GETFL only reads the flags of an open fd.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags & libc::O_NONBLOCK != 0
}

#[test]
fn wait_readable_times_out_on_a_silent_pipe() {
    threadlet::run(|| {
        let (r, _w) = pipe();
        let start = Instant::now();
        let err = wait_readable(&r, Some(Duration::from_millis(50))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
}

#[test]
fn wait_readable_wakes_when_another_fiber_writes() {
    threadlet::run(|| {
        let (r, mut w) = pipe();
        let waiter =
            threadlet::spawn(move || wait_readable(&r, Some(Duration::from_secs(20))).map(|()| r));
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.id == waiter.fiber().id() && f.state == "parked: fd readable")
        {
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
        w.write_all(b"!").unwrap();
        let mut r = waiter.join().unwrap().unwrap();
        let mut buf = [0u8; 1];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"!");
    });
}

#[test]
fn many_fibers_wait_on_one_fd_at_once() {
    threadlet::run(|| {
        let (r, mut w) = pipe();
        let r = std::sync::Arc::new(r);
        let waiters: Vec<_> = (0..20)
            .map(|_| {
                let r = r.clone();
                threadlet::spawn(move || wait_readable(&*r, Some(Duration::from_secs(20))))
            })
            .collect();
        threadlet::fiber::sleep(Duration::from_millis(20));
        w.write_all(b"x").unwrap();
        for w in waiters {
            w.join().unwrap().unwrap();
        }
    });
}

#[test]
fn wait_on_an_fd_threadlet_already_registered() {
    threadlet::run(|| {
        let (a, mut b) = threadlet::net::UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        // Registers `a` with the reactor (the read times out).
        assert_eq!(
            (&a).read(&mut [0u8; 1]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        let waiter = threadlet::spawn(move || wait_readable(&a, Some(Duration::from_secs(20))));
        threadlet::fiber::sleep(Duration::from_millis(10));
        b.write_all(b"y").unwrap();
        waiter.join().unwrap().unwrap();
    });
}

#[test]
fn wait_writable_is_immediate_on_an_empty_pipe() {
    threadlet::run(|| {
        let (_r, w) = pipe();
        wait_writable(&w, Some(Duration::from_secs(5))).unwrap();
    });
}

#[test]
fn waits_work_on_plain_threads() {
    let (r, mut w) = pipe();
    let err = wait_readable(&r, Some(Duration::from_millis(20))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    w.write_all(b"z").unwrap();
    wait_readable(&r, None).unwrap();
}

#[test]
fn async_pipe_round_trip_parks_instead_of_would_block() {
    threadlet::run(|| {
        let (r, w) = pipe();
        let mut r = Async::new(r).unwrap();
        let mut w = Async::new(w).unwrap();
        assert!(is_nonblocking(r.get_ref()));
        let reader = threadlet::spawn(move || {
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all
        });
        // More than a pipe buffer (64 KiB): the writer parks too.
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        w.write_all(&data).unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), data);
    });
}

#[test]
fn async_shared_reference_reads_and_writes() {
    threadlet::run(|| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(Async::new(a).unwrap());
        let b = Async::new(b).unwrap();
        let a2 = a.clone();
        let reader = threadlet::spawn(move || {
            let mut buf = [0u8; 3];
            (&*a2).read_exact(&mut buf).unwrap();
            buf
        });
        (&b).write_all(b"abc").unwrap();
        assert_eq!(&reader.join().unwrap(), b"abc");
    });
}

#[test]
fn async_read_with_on_an_eventfd() {
    threadlet::run(|| {
        // SAFETY: eventfd returns a new fd (checked below) that we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` is a fresh, owned fd.
        let efd = Async::new(unsafe { OwnedFd::from_raw_fd(fd) }).unwrap();
        let efd = std::sync::Arc::new(efd);
        let reader_side = efd.clone();
        let reader = threadlet::spawn(move || {
            reader_side.read_with(|fd| {
                let mut v = 0u64;
                // SAFETY: reads 8 bytes into `v`.
                let n = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
                if n < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(v)
                }
            })
        });
        threadlet::fiber::sleep(Duration::from_millis(10));
        let one = 5u64;
        // SAFETY: writes 8 bytes from `one`.
        let n = unsafe { libc::write(efd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        assert_eq!(n, 8);
        assert_eq!(reader.join().unwrap().unwrap(), 5);
    });
}

#[test]
fn into_inner_restores_blocking_mode() {
    let (r, _w) = pipe();
    assert!(!is_nonblocking(&r));
    let a = Async::new(r).unwrap();
    let r = a.into_inner().unwrap();
    assert!(!is_nonblocking(&r));
}
