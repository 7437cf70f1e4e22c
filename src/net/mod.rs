//! Networking for fibers: the types of [`std::net`] and
//! [`std::os::unix::net`] with the same names, methods and semantics, except
//! that a call that would block parks the calling fiber and lets its worker
//! run other fibers.
//!
//! Migrating thread-per-connection code is a change of `use` lines:
//!
//! ```text
//! use std::net::{TcpListener, TcpStream};      ->  use threadlet::net::{TcpListener, TcpStream};
//! use std::thread;                             ->  use threadlet as thread;
//! fn main() { serve() }                        ->  fn main() { threadlet::run(serve) }
//! ```
//!
//! What is the same as std:
//! - names and signatures, `Read`/`Write` for `T` and `&T` (vectored too),
//!   `AsFd`/`AsRawFd`/`IntoRawFd`/`FromRawFd`/`From<OwnedFd>`, `try_clone`,
//!   timeouts, `set_nonblocking` (then calls return `WouldBlock`);
//! - they work on plain threads too (waiting in `poll(2)`), so they can be
//!   used in ordinary `#[test]`s and shared between fibers and threads;
//! - every fd is close-on-exec, and writes use `MSG_NOSIGNAL`: a dead peer is
//!   `BrokenPipe`, never a SIGPIPE.
//!
//! What differs:
//! - a read or write timeout returns `ErrorKind::TimedOut` (std on Unix says
//!   `WouldBlock`; code written for std that checks both keeps working);
//! - errors from `bind`/`connect` name the address and the likely fix;
//! - `TcpListener::accept` that runs out of fds or memory parks for a back-off
//!   (5 ms doubling to 1 s) before returning the error, so accept loops that
//!   ignore errors do not spin;
//! - a fiber that finds its socket ready 128 times in a row
//!   yields, so one busy connection cannot starve the others or the timers;
//! - resolving a host name (`ToSocketAddrs`) runs on the calling worker and
//!   blocks it for the DNS lookup: pass IP addresses on hot paths;
//! - a socket registers with the poller of the worker whose fiber first waits
//!   on it (fibers of other workers waiting on it are still woken, one
//!   cross-thread wake slower); used after that runtime has shut down it
//!   still works, but waits in `poll(2)` and blocks its worker.
//!
//! Beyond std: [`serve`] runs a handler per connection on fresh fibers, with
//! accepting done by whichever worker is free (see its docs).
//!
//! The address types are re-exported from std, so `use` lines that name them
//! along with the sockets keep compiling.

mod serve;
mod source;
pub(crate) mod sys;
mod tcp;
mod udp;
pub mod unix;
pub(crate) mod wait;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

pub use serve::{serve, Server};
pub use std::net::{
    AddrParseError, IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6,
    ToSocketAddrs,
};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixListener, UnixStream};

/// Wraps `e` in an error of the same kind whose message starts with `what`.
pub(crate) fn annotate(e: io::Error, what: fmt::Arguments<'_>) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Resolves `addr` (std's `ToSocketAddrs`, so a host name means a blocking
/// DNS lookup), with an error that says what went wrong and what is expected.
/// Never returns an empty list.
pub(crate) fn resolve<A: ToSocketAddrs>(addr: A, what: &str) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| {
            annotate(
                e,
                format_args!(
                    "{what}: cannot resolve the address (expected \"host:port\", \"ip:port\", \
                     (host, port) or a SocketAddr)"
                ),
            )
        })?
        .collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what}: the address resolved to no socket addresses; check the host name"),
        ));
    }
    Ok(addrs)
}

/// `listen(2)` again with a larger backlog (Linux allows it on a listening
/// socket).
pub(crate) fn sys_listen(fd: &OwnedFd, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: plain syscall on an open socket fd we own.
    if unsafe { libc::listen(fd.as_raw_fd(), backlog) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Test hook (not part of the API): delivers a fake readiness event (read
/// and write, with a new tick) to `stream`'s registration, waking its parked
/// fibers although no data arrived. No-op before the stream registered.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn __inject_readiness(stream: &TcpStream) {
    stream
        .socket()
        .state()
        .reg
        .wake(crate::reactor::READABLE | crate::reactor::WRITABLE);
}
