//! `TcpListener` and `TcpStream`: std's API, fiber-blocking behaviour.
//!
//! Every call tries its syscall first and parks the fiber only on
//! `WouldBlock` (see `net/wait.rs`); on a plain thread it waits in `poll(2)`.
//! Connecting resolves the address with `ToSocketAddrs` on the calling
//! thread: a host name means a DNS lookup that blocks the worker (use an IP
//! address, or resolve it elsewhere, on hot paths).

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use super::source::{fd_traits, stream_io, Socket};
use super::{annotate, resolve};
use crate::park::WaitReason;
use crate::reactor::Direction;

const ACCEPT: WaitReason = WaitReason::TcpAccept;
const CONNECT: WaitReason = WaitReason::TcpConnect;
const READ: WaitReason = WaitReason::TcpRead;
const WRITE: WaitReason = WaitReason::TcpWrite;

/// Backlog of listening sockets (std uses 128; a burst of a thousand
/// connects then overflows the queue and costs SYN retransmits of a second).
const BACKLOG: libc::c_int = 1024;

/// A TCP server socket, like [`std::net::TcpListener`]; `accept` parks the
/// calling fiber instead of blocking its thread.
///
/// ```
/// use std::io::{Read, Write};
/// use threadlet::net::{TcpListener, TcpStream};
///
/// threadlet::run(|| {
///     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = threadlet::spawn(move || {
///         let (mut conn, _) = listener.accept().unwrap();
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap();
///     });
///     let mut client = TcpStream::connect(addr).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut buf = [0; 5];
///     client.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hello");
///     server.join().unwrap();
/// });
/// ```
pub struct TcpListener {
    sock: Socket,
}

/// A TCP connection, like [`std::net::TcpStream`]; reads, writes and
/// connects park the calling fiber instead of blocking its thread.
pub struct TcpStream {
    sock: Socket,
}

/// An iterator over the connections of a [`TcpListener`], like
/// [`std::net::Incoming`]; it never returns `None`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

impl TcpListener {
    /// Creates a listener bound to `addr` (each resolved address is tried in
    /// turn), with `SO_REUSEADDR` and a backlog of 1024.
    ///
    /// # Errors
    /// An unresolvable address, or the bind failing for every address (the
    /// message names the address; `AddrInUse` says to pick another port).
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        let addrs = resolve(addr, "TcpListener::bind")?;
        let mut last = None;
        for addr in addrs {
            match bind_one(addr) {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Accepts a connection, parking until one arrives. `ECONNABORTED` is
    /// retried at once; on EMFILE/ENFILE/ENOBUFS/ENOMEM the caller parks for a
    /// back-off (5 ms, doubling to 1 s while the condition persists) before
    /// the error is returned, so an accept loop never spins.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let listener = self.sock.as_std::<mio::net::TcpListener>();
        self.sock
            .accept(ACCEPT, || listener.accept())
            .map(|(s, addr)| {
                (
                    TcpStream {
                        sock: Socket::from_nonblocking(OwnedFd::from(s)),
                    },
                    addr,
                )
            })
    }

    /// An endless iterator of `accept` results.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<std::net::TcpListener>().local_addr()
    }

    /// A second handle to the same listener (a new fd sharing one reactor
    /// registration).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.as_std::<std::net::TcpListener>().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.as_std::<std::net::TcpListener>().ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.as_std::<std::net::TcpListener>().take_error()
    }

    /// Emulated nonblocking mode: while on, `accept` returns `WouldBlock`
    /// instead of parking.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }
}

fn bind_one(addr: SocketAddr) -> io::Result<TcpListener> {
    let fail = |e: io::Error| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            " (another socket is bound to it; pick another port, or port 0 for any free one)"
        } else {
            ""
        };
        annotate(
            e,
            format_args!("cannot bind a TCP listener to {addr}{hint}"),
        )
    };
    let listener = mio::net::TcpListener::bind(addr).map_err(fail)?;
    let fd = OwnedFd::from(listener);
    super::sys_listen(&fd, BACKLOG).map_err(fail)?;
    Ok(TcpListener {
        sock: Socket::from_nonblocking(fd),
    })
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl TcpStream {
    /// A connection `accept4` returned with `SOCK_NONBLOCK` (net::serve).
    pub(crate) fn from_accepted(fd: OwnedFd) -> TcpStream {
        TcpStream {
            sock: Socket::from_nonblocking(fd),
        }
    }

    /// Connects to `addr`, trying each resolved address in turn and parking
    /// while each connect is in progress. Returns the last error if none
    /// connects; the message names the address (`ConnectionRefused`: nothing
    /// listens there).
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        let addrs = resolve(addr, "TcpStream::connect")?;
        let mut last = None;
        for addr in addrs {
            match connect_one(addr, None) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("resolve returns at least one address"))
    }

    /// Connects to `addr`, giving up with `TimedOut` after `timeout`.
    ///
    /// # Errors
    /// As `connect`; a zero timeout is `InvalidInput` (as in std).
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "cannot connect with a 0 duration timeout; pass a positive duration or use connect",
            ));
        }
        connect_one(*addr, Instant::now().checked_add(timeout))
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<std::net::TcpStream>().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<std::net::TcpStream>().local_addr()
    }

    /// Shuts down one or both directions. Fibers parked on the stream (in any
    /// clone) wake and see EOF / an error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// A second handle to the same connection: a new fd (like std) sharing
    /// one reactor registration, the timeouts and the nonblocking flag.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// Read timeout: a read that waits longer returns `TimedOut` (std on Unix
    /// says `WouldBlock`; check both). `Some(ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Write timeout, as [`TcpStream::set_read_timeout`].
    pub fn set_write_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Write, dur)
    }

    /// The read timeout.
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Read))
    }

    /// The write timeout.
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.timeout(Direction::Write))
    }

    /// Reads without consuming (parks until data or EOF).
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK, READ)
    }

    /// Sets `SO_LINGER` (`Some(ZERO)`: close sends RST).
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        super::sys::set_linger(self.sock.raw(), linger)
    }

    /// Reads `SO_LINGER`.
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        super::sys::linger(self.sock.raw())
    }

    /// Sets `TCP_NODELAY`.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock
            .as_std::<std::net::TcpStream>()
            .set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.as_std::<std::net::TcpStream>().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.sock.as_std::<std::net::TcpStream>().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.sock.as_std::<std::net::TcpStream>().ttl()
    }

    /// Takes the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.as_std::<std::net::TcpStream>().take_error()
    }

    /// Emulated nonblocking mode: while on, reads and writes that cannot
    /// proceed return `WouldBlock` instead of parking. Shared by all clones.
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// The socket underneath (for the `test-hooks` readiness injection).
    #[cfg(feature = "test-hooks")]
    pub(crate) fn socket(&self) -> &Socket {
        &self.sock
    }
}

fn connect_one(addr: SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
    let fail = |e: io::Error| {
        let hint = match e.kind() {
            io::ErrorKind::ConnectionRefused => " (is a server listening there?)",
            io::ErrorKind::TimedOut => " (no answer; is the host reachable?)",
            _ => "",
        };
        annotate(e, format_args!("cannot connect to {addr}{hint}"))
    };
    let stream = mio::net::TcpStream::connect(addr).map_err(fail)?;
    let sock = Socket::from_nonblocking(OwnedFd::from(stream));
    // Writable means the connect finished: SO_ERROR says how; a wake while it
    // is still in progress (no error, no peer yet) parks again.
    sock.io_until(Direction::Write, deadline, CONNECT, || {
        let std = sock.as_std::<std::net::TcpStream>();
        if let Some(e) = std.take_error()? {
            return Err(e);
        }
        match std.peer_addr() {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            Err(e) => Err(e),
        }
    })
    .map_err(fail)?;
    Ok(TcpStream { sock })
}

stream_io!(TcpStream, READ, WRITE);

fd_traits!(TcpListener, std::net::TcpListener);
fd_traits!(TcpStream, std::net::TcpStream);

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.sock.raw()).finish()
    }
}
