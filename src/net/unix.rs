//! Unix domain sockets for fibers: the types of [`std::os::unix::net`] with
//! the same names and methods. They are also re-exported from
//! [`threadlet::net`](crate::net); this module adds the Unix `SocketAddr` so
//! that `use std::os::unix::net::{UnixStream, SocketAddr}` becomes
//! `use threadlet::net::unix::{UnixStream, SocketAddr}`.
//!
//! Connecting never blocks a worker: the socket is nonblocking, and a
//! listener whose backlog is full (`EAGAIN`) is retried after a short,
//! growing pause.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

pub use std::os::unix::net::SocketAddr;

use super::annotate;
use super::source::{fd_traits, stream_io, Socket};
use crate::park::WaitReason;
use crate::reactor::Direction;

const ACCEPT: WaitReason = WaitReason::UnixAccept;
const READ: WaitReason = WaitReason::UnixRead;
const WRITE: WaitReason = WaitReason::UnixWrite;

/// A Unix stream server socket, like [`std::os::unix::net::UnixListener`].
pub struct UnixListener {
    sock: Socket,
}

/// A Unix stream connection, like [`std::os::unix::net::UnixStream`].
///
/// ```
/// use std::io::{Read, Write};
/// use threadlet::net::UnixStream;
///
/// threadlet::run(|| {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     let echo = threadlet::spawn(move || {
///         let mut buf = [0; 4];
///         b.read_exact(&mut buf).unwrap();
///         b.write_all(&buf).unwrap();
///     });
///     a.write_all(b"ping").unwrap();
///     let mut buf = [0; 4];
///     a.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"ping");
///     echo.join().unwrap();
/// });
/// ```
pub struct UnixStream {
    sock: Socket,
}

/// A Unix datagram socket, like [`std::os::unix::net::UnixDatagram`].
pub struct UnixDatagram {
    sock: Socket,
}

/// An endless iterator over a [`UnixListener`]'s connections.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

fn path_error(e: io::Error, what: &str, path: &Path) -> io::Error {
    let hint = match e.kind() {
        io::ErrorKind::NotFound => " (no socket file there; is the server running?)",
        io::ErrorKind::ConnectionRefused => " (the socket file exists but nobody listens on it)",
        io::ErrorKind::AddrInUse => " (the file exists; remove the stale socket file first)",
        _ => "",
    };
    annotate(e, format_args!("{what} {}{hint}", path.display()))
}

fn addr_error(e: io::Error, what: &str, addr: &SocketAddr) -> io::Error {
    annotate(e, format_args!("{what} {addr:?}"))
}

impl UnixListener {
    /// Binds a listener to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let path = path.as_ref();
        let l = mio::net::UnixListener::bind(path)
            .map_err(|e| path_error(e, "cannot bind a Unix listener to", path))?;
        UnixListener::listening(OwnedFd::from(l))
    }

    /// Binds a listener to `addr` (a path or, on Linux, an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let l = mio::net::UnixListener::bind_addr(addr)
            .map_err(|e| addr_error(e, "cannot bind a Unix listener to", addr))?;
        UnixListener::listening(OwnedFd::from(l))
    }

    /// Wraps a bound, listening socket, raising its backlog to 1024 (std
    /// and mio use 128, which a burst of connects overflows).
    fn listening(fd: OwnedFd) -> io::Result<UnixListener> {
        super::sys_listen(&fd, 1024)?;
        Ok(UnixListener {
            sock: Socket::from_nonblocking(fd),
        })
    }

    /// Accepts a connection, parking until one arrives (with the same
    /// back-off on fd exhaustion as `TcpListener::accept`).
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let listener = self.sock.as_std::<mio::net::UnixListener>();
        self.sock
            .accept(ACCEPT, || listener.accept())
            .map(|(s, addr)| {
                (
                    UnixStream {
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

    /// A second handle (new fd, shared registration).
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            sock: self.sock.try_clone()?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .as_std::<std::os::unix::net::UnixListener>()
            .local_addr()
    }

    /// Emulated nonblocking mode (`accept` returns `WouldBlock`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock
            .as_std::<std::os::unix::net::UnixListener>()
            .take_error()
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;
    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

/// Retries a nonblocking Unix connect while the listener's backlog is full.
fn connect_retrying(
    mut connect: impl FnMut() -> io::Result<mio::net::UnixStream>,
) -> io::Result<UnixStream> {
    let mut pause = Duration::from_millis(1);
    loop {
        match connect() {
            Ok(s) => {
                return Ok(UnixStream {
                    sock: Socket::from_nonblocking(OwnedFd::from(s)),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                crate::fiber::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

impl UnixStream {
    /// Connects to the socket file `path`.
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let path = path.as_ref();
        connect_retrying(|| mio::net::UnixStream::connect(path))
            .map_err(|e| path_error(e, "cannot connect to", path))
    }

    /// Connects to `addr` (a path or an abstract name).
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        connect_retrying(|| mio::net::UnixStream::connect_addr(addr))
            .map_err(|e| addr_error(e, "cannot connect to", addr))
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                sock: Socket::from_nonblocking(OwnedFd::from(a)),
            },
            UnixStream {
                sock: Socket::from_nonblocking(OwnedFd::from(b)),
            },
        ))
    }

    /// A second handle (new fd, shared registration and options).
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: self.sock.try_clone()?,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .as_std::<std::os::unix::net::UnixStream>()
            .local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock
            .as_std::<std::os::unix::net::UnixStream>()
            .peer_addr()
    }

    /// Read timeout (`TimedOut` when it expires). `Some(ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Write timeout (`TimedOut` when it expires).
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

    /// Emulated nonblocking mode (calls return `WouldBlock`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock
            .as_std::<std::os::unix::net::UnixStream>()
            .take_error()
    }

    /// Shuts down one or both directions; parked fibers wake and see EOF or
    /// an error.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }

    /// Reads without consuming.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK, READ)
    }
}

stream_io!(UnixStream, READ, WRITE);

type StdDgram = std::os::unix::net::UnixDatagram;

impl UnixDatagram {
    /// A datagram socket bound to the socket file `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let path = path.as_ref();
        let s = mio::net::UnixDatagram::bind(path)
            .map_err(|e| path_error(e, "cannot bind a Unix datagram socket to", path))?;
        Ok(UnixDatagram {
            sock: Socket::from_nonblocking(OwnedFd::from(s)),
        })
    }

    /// A datagram socket bound to `addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        let s = mio::net::UnixDatagram::bind_addr(addr)
            .map_err(|e| addr_error(e, "cannot bind a Unix datagram socket to", addr))?;
        Ok(UnixDatagram {
            sock: Socket::from_nonblocking(OwnedFd::from(s)),
        })
    }

    /// A datagram socket bound to no address.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let s = mio::net::UnixDatagram::unbound()?;
        Ok(UnixDatagram {
            sock: Socket::from_nonblocking(OwnedFd::from(s)),
        })
    }

    /// A connected pair of datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((
            UnixDatagram {
                sock: Socket::from_nonblocking(OwnedFd::from(a)),
            },
            UnixDatagram {
                sock: Socket::from_nonblocking(OwnedFd::from(b)),
            },
        ))
    }

    /// Sets the default peer to the socket file `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        let path = path.as_ref();
        self.sock
            .as_std::<StdDgram>()
            .connect(path)
            .map_err(|e| path_error(e, "cannot connect to", path))
    }

    /// Sets the default peer to `addr`.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.sock
            .as_std::<StdDgram>()
            .connect_addr(addr)
            .map_err(|e| addr_error(e, "cannot connect to", addr))
    }

    /// A second handle (new fd, shared registration and options).
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            sock: self.sock.try_clone()?,
        })
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<StdDgram>().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.sock.as_std::<StdDgram>().peer_addr()
    }

    /// Receives one datagram and its sender, parking until one arrives.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let std = self.sock.as_std::<StdDgram>();
        self.sock.io(Direction::Read, READ, || std.recv_from(buf))
    }

    /// Receives one datagram from the connected peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let std = self.sock.as_std::<StdDgram>();
        self.sock.io(Direction::Read, READ, || std.recv(buf))
    }

    /// Like `recv` but leaves the datagram queued.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.recv(buf, libc::MSG_PEEK, READ)
    }

    /// Sends to the socket file `path`, parking while the peer's queue is full.
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let path = path.as_ref();
        let std = self.sock.as_std::<StdDgram>();
        self.sock
            .io(Direction::Write, WRITE, || std.send_to(buf, path))
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
                    path_error(e, "cannot send to", path)
                }
                _ => e,
            })
    }

    /// Sends to `addr`.
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        let std = self.sock.as_std::<StdDgram>();
        self.sock
            .io(Direction::Write, WRITE, || std.send_to_addr(buf, addr))
    }

    /// Sends to the connected peer.
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let std = self.sock.as_std::<StdDgram>();
        self.sock.io(Direction::Write, WRITE, || std.send(buf))
    }

    /// Read timeout (`TimedOut` when it expires). `Some(ZERO)` is `InvalidInput`.
    pub fn set_read_timeout(&self, dur: Option<Duration>) -> io::Result<()> {
        self.sock.set_timeout(Direction::Read, dur)
    }

    /// Write timeout (`TimedOut` when it expires).
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

    /// Emulated nonblocking mode (calls return `WouldBlock`).
    pub fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        self.sock.set_nonblocking(nonblocking);
        Ok(())
    }

    /// Takes the pending socket error.
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.sock.as_std::<StdDgram>().take_error()
    }

    /// Shuts down one or both directions; parked fibers wake.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.shutdown(how)
    }
}

fd_traits!(UnixListener, std::os::unix::net::UnixListener);
fd_traits!(UnixStream, std::os::unix::net::UnixStream);
fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);

macro_rules! debug_unix {
    ($ty:ident, $std:ty) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut d = f.debug_struct(stringify!($ty));
                let std = self.sock.as_std::<$std>();
                if let Ok(addr) = std.local_addr() {
                    d.field("local", &addr);
                }
                d.field("fd", &self.sock.raw()).finish()
            }
        }
    };
}
debug_unix!(UnixListener, std::os::unix::net::UnixListener);
debug_unix!(UnixStream, std::os::unix::net::UnixStream);
debug_unix!(UnixDatagram, StdDgram);
