//! RELIABILITY row 20: no fd leaks under load. Thousands of short TCP
//! connections (plus Unix pairs, UDP sockets, clones, `Async` pipes and
//! temporary `wait_readable` registrations) through one runtime; when the
//! runtime has shut down, `/proc/self/fd` is back to its baseline. Its own
//! test binary with a single test, so no other test's fds are counted.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream, UdpSocket, UnixStream};

const CONNECTIONS: usize = 5000;
const CONCURRENCY: usize = 200;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two fds pipe2 writes.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh fds from pipe2, owned by nobody else.
    unsafe {
        (
            OwnedFd::from_raw_fd(fds[0]).into(),
            OwnedFd::from_raw_fd(fds[1]).into(),
        )
    }
}

#[test]
fn fds_return_to_baseline_after_thousands_of_connections() {
    let baseline = open_fds();
    let alive_at_end = threadlet::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        threadlet::spawn(move || {
            for conn in listener.incoming() {
                let mut conn = conn.unwrap();
                threadlet::spawn(move || {
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        for batch in 0..CONNECTIONS / CONCURRENCY {
            let clients: Vec<_> = (0..CONCURRENCY)
                .map(|i| {
                    threadlet::spawn(move || {
                        let mut s = TcpStream::connect(addr).unwrap();
                        let msg = format!("{batch}:{i}");
                        s.write_all(msg.as_bytes()).unwrap();
                        let mut back = vec![0u8; msg.len()];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back, msg.as_bytes());
                        // Every other one also registers a clone.
                        if i % 2 == 0 {
                            let c = s.try_clone().unwrap();
                            c.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                            let _ = (&c).read(&mut [0u8; 1]);
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
        }
        // The other kinds of fds, each registered by a parked wait.
        for _ in 0..100 {
            let (a, mut b) = UnixStream::pair().unwrap();
            let reader = threadlet::spawn(move || (&a).read(&mut [0u8; 1]).unwrap());
            b.write_all(b"u").unwrap();
            assert_eq!(reader.join().unwrap(), 1);
            let u = UdpSocket::bind("127.0.0.1:0").unwrap();
            u.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
            let _ = u.recv(&mut [0u8; 1]);
            let (r, mut w) = pipe();
            let r = threadlet::io::Async::new(r).unwrap();
            let waiter = threadlet::spawn(move || {
                threadlet::io::wait_readable(&r, Some(Duration::from_secs(20))).unwrap();
                let mut r = r;
                r.read(&mut [0u8; 1]).unwrap()
            });
            w.write_all(b"p").unwrap();
            assert_eq!(waiter.join().unwrap(), 1);
        }
        // Every echo fiber ends once its client closed: back to the main
        // fiber and the accept loop.
        let start = std::time::Instant::now();
        loop {
            let alive = threadlet::runtime::stats().fibers_alive;
            if alive == 2 {
                break alive;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{alive} fibers still alive"
            );
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
    });
    let after = open_fds();
    eprintln!("fds: baseline {baseline}, after {CONNECTIONS} connections and shutdown {after}");
    assert_eq!(after, baseline, "fds leaked");
    assert_eq!(alive_at_end, 2);
}
