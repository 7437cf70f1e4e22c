//! RELIABILITY row 18, CLOEXEC: a child process started while a runtime and
//! sockets of every kind are open (listeners, accepted, connected and cloned
//! streams, UDP, Unix stream/datagram pairs, `Async` pipes, and a fiber
//! parked in `wait_readable` holding its temporary registration) inherits
//! none of their fds.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Command;
use std::time::Duration;

use threadlet::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixStream};

/// `ls -l /proc/self/fd` of a child: lines "N -> target" for each of its fds.
fn child_fds() -> Vec<(u32, String)> {
    let out = Command::new("ls")
        .args(["-l", "/proc/self/fd"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (left, target) = line.split_once(" -> ")?;
            let fd = left.split_whitespace().last()?.parse().ok()?;
            Some((fd, target.to_owned()))
        })
        .collect()
}

/// Targets of this process's fds (to tell fds inherited from whoever started
/// the test apart from the ones threadlet opened).
fn own_fd_targets() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|t| t.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn child_processes_inherit_no_runtime_or_socket_fds() {
    let before = own_fd_targets();
    let rt = threadlet::Runtime::new().unwrap();
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (parked_tx, parked_rx) = std::sync::mpsc::channel();
    rt.spawn(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        let clone = accepted.try_clone().unwrap();
        // Register them with the reactor (a read that times out).
        clone
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let _ = (&clone).read(&mut [0u8; 1]);
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let unix = UnixStream::pair().unwrap();
        let dgram = UnixDatagram::pair().unwrap();
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh fds from pipe2, owned by nobody else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let r = threadlet::io::Async::new(std::fs::File::from(r)).unwrap();
        // A fiber parked in wait_readable holds a temporary duplicate fd.
        let waiter = threadlet::spawn(move || {
            threadlet::io::wait_readable(&r, Some(Duration::from_secs(60))).map(|()| r)
        });
        while !threadlet::runtime::dump()
            .iter()
            .any(|f| f.id == waiter.fiber().id() && f.state == "parked: fd readable")
        {
            threadlet::fiber::sleep(Duration::from_millis(1));
        }
        parked_tx.send(()).unwrap();
        held_tx
            .send((
                listener, client, accepted, clone, udp, unix, dgram, w, waiter,
            ))
            .unwrap();
    });
    parked_rx.recv().unwrap();
    let held = held_rx.recv().unwrap();

    let fds = child_fds();
    let leaked: Vec<_> = fds
        .iter()
        .filter(|(fd, target)| {
            *fd > 2
                && !before.contains(target)
                && (target.starts_with("socket:")
                    || target.starts_with("anon_inode:")
                    || target.starts_with("pipe:"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the child inherited {leaked:?} (all of its fds: {fds:?})"
    );
    assert!(
        fds.iter().any(|(fd, _)| *fd == 0),
        "sanity: the listing has stdin: {fds:?}"
    );
    drop(held);
    drop(rt);
}
