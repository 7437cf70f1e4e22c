//! `threadlet::net::serve` and the per-worker pollers behind it: accepting
//! belongs to the runtime (a CPU-bound handler never holds up new
//! connections while another worker is free), connections spread over the
//! workers, `Server::shutdown` closes the port and waits for its handlers,
//! and a fiber on one worker is woken by a socket registered with another
//! worker's poller.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use threadlet::net::{self, TcpStream, UnixStream};
use threadlet::runtime::Runtime;
use threadlet::sync::mpsc;

fn two_workers() -> Runtime {
    Runtime::builder().workers(2).build().expect("runtime")
}

/// One request byte, one reply byte, over a fresh std connection (a plain
/// thread, so it never waits behind a fiber).
fn round_trip(addr: std::net::SocketAddr, request: u8) -> u8 {
    let mut conn = std::net::TcpStream::connect(addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(&[request]).unwrap();
    let mut reply = [0u8; 1];
    conn.read_exact(&mut reply).expect("reply");
    reply[0]
}

/// A handler spins for 2 s on one worker; 20 new connections made during
/// the spin are each accepted and answered by the other worker in well under
/// a second. With an accept loop pinned behind the spinning fiber the first
/// of them waits for the spin to end (about 2 s) and the test fails.
#[test]
fn spinning_handler_does_not_delay_new_connections() {
    let rt = two_workers();
    rt.block_on(|| {
        let spin_done = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let started_tx = Mutex::new(started_tx);
        let done = spin_done.clone();
        let server = net::serve("127.0.0.1:0", move |mut conn: TcpStream| {
            let mut req = [0u8; 1];
            if conn.read_exact(&mut req).is_err() {
                return;
            }
            if req[0] == b'S' {
                let _ = started_tx.lock().unwrap().send(());
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
                done.store(true, Ordering::SeqCst);
            }
            let _ = conn.write_all(&req);
        })
        .expect("serve");
        let addr = server.local_addr();
        let spin_done = spin_done.clone();
        let client = thread::spawn(move || {
            let spinner = thread::spawn(move || round_trip(addr, b'S'));
            started_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the spinning handler never started");
            let mut worst = Duration::ZERO;
            let mut first_during_spin = false;
            for i in 0..20u8 {
                let t = Instant::now();
                assert_eq!(round_trip(addr, i), i);
                worst = worst.max(t.elapsed());
                if i == 0 {
                    first_during_spin = !spin_done.load(Ordering::SeqCst);
                }
            }
            assert_eq!(spinner.join().unwrap(), b'S');
            (worst, first_during_spin)
        });
        let (worst, first_during_spin) = threadlet::unblock(move || client.join().unwrap());
        assert!(
            first_during_spin,
            "the first new connection was answered only after the 2 s spin ended"
        );
        assert!(
            worst < Duration::from_millis(1500),
            "a new connection waited {worst:?} while one handler spun"
        );
        server.shutdown();
    });
}

/// Handlers that mostly wait (a short sleep per request): the connections
/// still run on both workers, because the worker that accepted goes to the
/// back of the listening socket's queue.
#[test]
fn connections_spread_over_both_workers() {
    let rt = two_workers();
    rt.block_on(|| {
        let seen: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
        let seen2 = seen.clone();
        let server = net::serve("127.0.0.1:0", move |mut conn: TcpStream| {
            seen2.lock().unwrap().insert(thread::current().id());
            let mut req = [0u8; 1];
            if conn.read_exact(&mut req).is_ok() {
                threadlet::time::sleep(Duration::from_millis(2));
                let _ = conn.write_all(&req);
            }
        })
        .expect("serve");
        let addr = server.local_addr();
        // One connection at a time: with an accept loop pinned to one worker
        // every handler would start there, and, since each mostly waits, run
        // there too.
        let clients = thread::spawn(move || {
            for i in 0..40u8 {
                assert_eq!(round_trip(addr, i), i);
            }
        });
        threadlet::unblock(move || clients.join().unwrap());
        server.shutdown();
        let workers = seen.lock().unwrap().len();
        assert_eq!(workers, 2, "40 connections all ran on one worker");
    });
}

/// `shutdown` closes the port before it returns (a new connect is refused)
/// and returns only after the running handler has finished.
#[test]
fn shutdown_closes_the_port_and_waits_for_running_handlers() {
    let rt = two_workers();
    rt.block_on(|| {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Mutex::new(Some(release_rx));
        let finished = Arc::new(AtomicBool::new(false));
        let finished2 = finished.clone();
        let server = net::serve("127.0.0.1:0", move |_conn: TcpStream| {
            // Only the first connection's handler holds on.
            let Some(rx) = release_rx.lock().unwrap().take() else {
                return;
            };
            started_tx.send(()).unwrap();
            rx.recv().unwrap();
            finished2.store(true, Ordering::SeqCst);
        })
        .expect("serve");
        let addr = server.local_addr();
        let conn = TcpStream::connect(addr).expect("connect");
        started_rx.recv().expect("handler started");
        let finished3 = finished.clone();
        let stopper = threadlet::spawn(move || {
            server.shutdown();
            finished3.load(Ordering::SeqCst)
        });
        // The port closes while the handler still runs.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match std::net::TcpStream::connect(addr) {
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
                Err(e) => panic!("unexpected connect error: {e}"),
                Ok(_) => {
                    assert!(Instant::now() < deadline, "the port never closed");
                    threadlet::yield_now();
                }
            }
        }
        assert!(!finished.load(Ordering::SeqCst));
        release_tx.send(()).unwrap();
        assert!(
            stopper.join().unwrap(),
            "shutdown returned before the running handler finished"
        );
        drop(conn);
    });
}

/// Dropping the server stops accepting too: the port is closed.
#[test]
fn dropping_the_server_closes_the_port() {
    let rt = two_workers();
    rt.block_on(|| {
        let server = net::serve("127.0.0.1:0", |_conn: TcpStream| {}).expect("serve");
        let addr = server.local_addr();
        drop(server);
        let e = std::net::TcpStream::connect(addr).expect_err("port still open");
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
    });
}

/// Outside a runtime `serve` returns an error that says where to call it.
#[test]
fn serve_outside_a_runtime_is_an_error() {
    let e = net::serve("127.0.0.1:0", |_conn: TcpStream| {}).expect_err("no runtime");
    assert!(e.to_string().contains("threadlet::run"), "{e}");
}

type Job = Box<dyn FnOnce() + Send>;

/// A fiber that reports its worker thread and then runs the jobs it is sent.
fn probe(report: mpsc::Sender<(ThreadId, mpsc::Sender<Job>)>) {
    let (tx, rx) = mpsc::channel::<Job>();
    report.send((thread::current().id(), tx)).unwrap();
    for job in rx {
        job();
    }
}

/// A fiber on worker B parks reading a socket that a fiber on worker A
/// registered (so its events arrive at A's poller); data sent to it wakes B's
/// fiber on B, through B's inbox.
#[test]
fn fiber_on_one_worker_woken_by_a_socket_registered_with_another() {
    let rt = two_workers();
    rt.block_on(|| {
        // Fibers on both workers: fresh fibers are stolen by an idle sibling.
        let (report_tx, report_rx) = mpsc::channel();
        let mut by_thread: Vec<(ThreadId, mpsc::Sender<Job>)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while by_thread.len() < 2 {
            assert!(
                Instant::now() < deadline,
                "no fiber ever ran on the second worker"
            );
            for _ in 0..8 {
                let tx = report_tx.clone();
                threadlet::spawn(move || probe(tx));
            }
            for _ in 0..8 {
                let (id, jobs) = report_rx.recv().unwrap();
                if by_thread.iter().all(|(t, _)| *t != id) {
                    by_thread.push((id, jobs));
                }
                // Other probes end when their job sender is dropped here.
            }
        }
        let (thread_b, jobs_b) = by_thread.pop().unwrap();
        let (thread_a, jobs_a) = by_thread.pop().unwrap();
        assert_ne!(thread_a, thread_b);

        let (a, b) = StdUnixStream::pair().unwrap();
        let a = UnixStream::from(a);
        // A: a read that times out registers `a` with A's poller.
        let (back_tx, back_rx) = mpsc::channel::<UnixStream>();
        jobs_a
            .send(Box::new(move || {
                let mut a = a;
                a.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                let e = a.read(&mut [0u8; 1]).expect_err("nothing was sent yet");
                assert_eq!(e.kind(), ErrorKind::TimedOut);
                a.set_read_timeout(None).unwrap();
                back_tx.send(a).unwrap();
            }))
            .unwrap();
        let a = back_rx.recv().unwrap();
        // B: parks reading `a`.
        let (done_tx, done_rx) = mpsc::channel::<(ThreadId, u8)>();
        jobs_b
            .send(Box::new(move || {
                let mut a = a;
                let mut buf = [0u8; 1];
                a.read_exact(&mut buf).unwrap();
                done_tx.send((thread::current().id(), buf[0])).unwrap();
            }))
            .unwrap();
        // Wait until B's fiber is parked in the read before sending.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.state == "parked: unix read")
        {
            assert!(Instant::now() < deadline, "B never parked in its read");
            threadlet::yield_now();
        }
        let mut b = b;
        b.write_all(b"z").unwrap();
        let (woken_on, byte) = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("B's fiber was never woken");
        assert_eq!(byte, b'z');
        assert_eq!(woken_on, thread_b, "the fiber moved to another worker");
        drop((jobs_a, jobs_b));
    });
}
