//! A round trip for every net type besides TCP (UDP, Unix stream, Unix
//! datagram), on fibers and on plain threads, plus their clones, timeouts,
//! emulated nonblocking mode and std conversions.

use std::io::{ErrorKind, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use threadlet::net::{UdpSocket, UnixDatagram, UnixListener, UnixStream};

/// A fresh socket path in a fresh temp dir (removed on drop).
struct TempPath {
    dir: PathBuf,
}

impl TempPath {
    fn new(tag: &str) -> TempPath {
        let dir = std::env::temp_dir().join(format!("threadlet-net-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempPath { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn udp_send_to_recv_from_on_fibers() {
    threadlet::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let a_addr = a.local_addr().unwrap();
        let b_addr = b.local_addr().unwrap();
        // The receiver parks first; the sender runs after it.
        let receiver = threadlet::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).unwrap();
            b.send_to(&buf[..n], from).unwrap();
            (buf[..n].to_vec(), from)
        });
        a.send_to(b"datagram", b_addr).unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = a.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"datagram"[..], b_addr));
        assert_eq!(receiver.join().unwrap(), (b"datagram".to_vec(), a_addr));
    });
}

#[test]
fn udp_connected_send_recv_peek() {
    threadlet::run(|| {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
        a.send(b"one").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(b.peek(&mut buf).unwrap(), 3);
        let (n, from) = b.peek_from(&mut buf).unwrap();
        assert_eq!((n, from), (3, a.local_addr().unwrap()));
        assert_eq!(b.recv(&mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"one");
    });
}

#[test]
fn udp_read_timeout_and_nonblocking() {
    threadlet::run(|| {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(
            s.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        s.set_nonblocking(true).unwrap();
        assert_eq!(
            s.recv_from(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::WouldBlock
        );
        s.set_broadcast(true).unwrap();
        assert!(s.broadcast().unwrap());
        s.set_ttl(9).unwrap();
        assert_eq!(s.ttl().unwrap(), 9);
    });
}

#[test]
fn udp_on_plain_threads() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_addr = b.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 8];
        let (n, _) = b.recv_from(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    a.send_to(b"thread", b_addr).unwrap();
    assert_eq!(t.join().unwrap(), b"thread");
}

#[test]
fn unix_listener_and_stream_round_trip() {
    let tmp = TempPath::new("stream");
    let path = tmp.path("sock");
    threadlet::run(move || {
        let listener = UnixListener::bind(&path).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.as_path())
        );
        let server = threadlet::spawn(move || {
            for conn in listener.incoming().take(2) {
                let mut conn = conn.unwrap();
                let mut buf = [0u8; 5];
                conn.read_exact(&mut buf).unwrap();
                conn.write_all(&buf).unwrap();
            }
        });
        for _ in 0..2 {
            let mut c = UnixStream::connect(&path).unwrap();
            c.write_all(b"unix!").unwrap();
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"unix!");
        }
        server.join().unwrap();
    });
}

#[test]
fn unix_stream_pair_clone_peek_and_shutdown() {
    threadlet::run(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let a2 = a.try_clone().unwrap();
        let reader = threadlet::spawn(move || {
            let mut all = Vec::new();
            (&b).read_to_end(&mut all).unwrap();
            all
        });
        (&a2).write_all(b"hello ").unwrap();
        (&a).write_all(b"world").unwrap();
        a.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(reader.join().unwrap(), b"hello world");
    });
}

#[test]
fn unix_stream_peek_and_timeout() {
    threadlet::run(|| {
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
        assert_eq!(
            (&a).read(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        b.write_all(b"pk").unwrap();
        let mut buf = [0u8; 2];
        assert_eq!(a.peek(&mut buf).unwrap(), 2);
        (&a).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"pk");
    });
}

#[test]
fn unix_stream_on_plain_threads() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 3];
        b.read_exact(&mut buf).unwrap();
        b.write_all(&buf).unwrap();
    });
    a.write_all(b"thr").unwrap();
    let mut buf = [0u8; 3];
    a.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"thr");
    t.join().unwrap();
}

#[test]
fn unix_datagram_bound_unbound_and_pair() {
    let tmp = TempPath::new("dgram");
    let path = tmp.path("dgram.sock");
    threadlet::run(move || {
        let server = UnixDatagram::bind(&path).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let receiver = threadlet::spawn(move || {
            let mut buf = [0u8; 16];
            let (n, _) = server.recv_from(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        client.send_to(b"unbound", &path).unwrap();
        assert_eq!(receiver.join().unwrap(), b"unbound");

        let (x, y) = UnixDatagram::pair().unwrap();
        let reader = threadlet::spawn(move || {
            let mut buf = [0u8; 16];
            let n = y.recv(&mut buf).unwrap();
            buf[..n].to_vec()
        });
        x.send(b"paired").unwrap();
        assert_eq!(reader.join().unwrap(), b"paired");
    });
}

#[test]
fn std_conversions_for_unix_and_udp() {
    threadlet::run(|| {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut a = UnixStream::from(a);
        let mut b = UnixStream::from(b).into_std().unwrap();
        a.write_all(b"x").unwrap();
        let mut buf = [0u8; 1];
        b.read_exact(&mut buf).unwrap();
        let u = UdpSocket::from(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = u.local_addr().unwrap();
        assert_eq!(u.into_std().unwrap().local_addr().unwrap(), addr);
    });
}
