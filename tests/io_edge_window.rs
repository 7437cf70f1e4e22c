//! RELIABILITY row 3: an edge-triggered readiness event that arrives between
//! `EAGAIN` and the park is not lost. A test hook runs exactly in that window
//! (after the reader published its waiter, before it parks) and makes the
//! peer write one byte there; the reader reads one byte at a time, so every
//! byte it ever gets arrives in the window. A lost event shows as a read that
//! waits for its 10 s timeout.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use threadlet::net::{TcpListener, UnixStream};

const BYTES: usize = 500;

/// The peer the hook writes through, and how many bytes it wrote.
static PEER: Mutex<Option<std::net::TcpStream>> = Mutex::new(None);
static UNIX_PEER: Mutex<Option<std::os::unix::net::UnixStream>> = Mutex::new(None);
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

fn write_in_window() {
    if let Some(peer) = PEER.lock().unwrap().as_mut() {
        if WRITTEN.fetch_add(1, Ordering::SeqCst) < BYTES {
            peer.write_all(b"x").unwrap();
        }
    }
}

fn write_in_window_unix() {
    if let Some(peer) = UNIX_PEER.lock().unwrap().as_mut() {
        peer.write_all(b"u").unwrap();
    }
}

/// Reads `n` bytes one at a time. A lost wakeup leaves a read parked until
/// its 60 s timeout, so a read that took 30 s or more is a lost wakeup (the
/// margin is that wide so a loaded CI machine never trips it).
fn read_bytewise(mut r: impl Read, n: usize) -> usize {
    let mut got = 0;
    let mut byte = [0u8; 1];
    while got < n {
        let start = Instant::now();
        let k = r.read(&mut byte).expect("read");
        let took = start.elapsed();
        assert!(
            took < Duration::from_secs(30),
            "read {got} waited {took:?}: the event in the window was lost"
        );
        assert_eq!(k, 1);
        got += 1;
    }
    got
}

#[test]
fn event_between_eagain_and_park_is_not_lost() {
    // One worker: nothing else can run in the window, so the event must be
    // found by the re-check after publishing, or delivered as a park token.
    let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
    let got = rt.block_on(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        peer.set_nodelay(true).unwrap();
        *PEER.lock().unwrap() = Some(peer);
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        // The hook is per worker thread: install it from the reading fiber.
        threadlet::io::__set_before_park_hook(Some(write_in_window));
        let got = read_bytewise(&conn, BYTES);
        threadlet::io::__set_before_park_hook(None);
        *PEER.lock().unwrap() = None;
        got
    });
    assert_eq!(got, BYTES);
    assert!(
        WRITTEN.load(Ordering::SeqCst) >= BYTES,
        "the reader must have parked (and the hook written) for every byte"
    );
}

#[test]
fn event_in_the_window_on_a_unix_stream_with_two_workers() {
    let rt = threadlet::Runtime::builder().workers(2).build().unwrap();
    let got = rt.block_on(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let b = b.into_std().unwrap();
        *UNIX_PEER.lock().unwrap() = Some(b);
        a.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        threadlet::io::__set_before_park_hook(Some(write_in_window_unix));
        let got = read_bytewise(&a, BYTES);
        threadlet::io::__set_before_park_hook(None);
        *UNIX_PEER.lock().unwrap() = None;
        got
    });
    assert_eq!(got, BYTES);
}
