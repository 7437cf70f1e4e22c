//! Thin libc wrappers for the socket calls std does not expose the way the
//! runtime needs them: `send`/`sendmsg` with `MSG_NOSIGNAL` (a dead peer is
//! `EPIPE`, never a SIGPIPE death), `recv` with flags (peek), vectored IO,
//! `O_NONBLOCK`, `shutdown`, `SO_LINGER` and `poll(2)` for waits outside the
//! reactor. No state lives here.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::reactor::Direction;

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn cvt_int(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `recv(2)` into `buf` with `flags` (0, or `MSG_PEEK`).
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    cvt(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), flags) })
}

/// `send(2)` with `MSG_NOSIGNAL`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
    cvt(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

/// Largest iovec count one call takes (Linux `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// `readv(2)`.
pub(crate) fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOV);
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` (std guarantees it
    // on Unix); the `n` buffers are valid for writes for the call.
    cvt(unsafe { libc::readv(fd, bufs.as_mut_ptr().cast(), n as libc::c_int) })
}

/// `sendmsg(2)` of `bufs` with `MSG_NOSIGNAL` (a `writev` that cannot raise
/// SIGPIPE).
pub(crate) fn sendmsg(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero `msghdr` is a valid "no address, no control" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(MAX_IOV) as _;
    // SAFETY: `IoSlice` is ABI-compatible with `iovec`; the kernel only reads
    // the buffers, which stay borrowed for the call.
    cvt(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })
}

/// Sets or clears `O_NONBLOCK`; returns whether it was set before.
pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<bool> {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    let flags = cvt_int(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let was = flags & libc::O_NONBLOCK != 0;
    let wanted = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if wanted != flags {
        // SAFETY: F_SETFL with an int argument changes only the status flags.
        cvt_int(unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) })?;
    }
    Ok(was)
}

/// `shutdown(2)`.
pub(crate) fn shutdown(fd: RawFd, how: Shutdown) -> io::Result<()> {
    let how = match how {
        Shutdown::Read => libc::SHUT_RD,
        Shutdown::Write => libc::SHUT_WR,
        Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: plain syscall on an fd the caller owns.
    cvt_int(unsafe { libc::shutdown(fd, how) }).map(drop)
}

/// Sets `SO_LINGER`.
pub(crate) fn set_linger(fd: RawFd, linger: Option<Duration>) -> io::Result<()> {
    let value = libc::linger {
        l_onoff: linger.is_some() as libc::c_int,
        l_linger: linger.map_or(0, |d| {
            d.as_secs().min(libc::c_int::MAX as u64) as libc::c_int
        }),
    };
    // SAFETY: `value` is a valid `linger` for the call; the length matches.
    cvt_int(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&value as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Reads `SO_LINGER`.
pub(crate) fn linger(fd: RawFd) -> io::Result<Option<Duration>> {
    let mut value = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes; `len` holds its size.
    cvt_int(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut value as *mut libc::linger).cast(),
            &mut len,
        )
    })?;
    Ok((value.l_onoff != 0).then(|| Duration::from_secs(value.l_linger.max(0) as u64)))
}

fn poll_events(dir: Direction) -> libc::c_short {
    match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    }
}

/// One `poll(2)` of `fd` for `dir` with a timeout in ms (-1: none). True when
/// ready (errors and hang-ups count as ready: the next syscall reports them).
pub(crate) fn poll_once(fd: RawFd, dir: Direction, timeout_ms: libc::c_int) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: poll_events(dir),
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd for the call.
    let n = cvt_int(unsafe { libc::poll(&mut pfd, 1, timeout_ms) })?;
    if n > 0 && pfd.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "fd {fd} is not open (poll reported POLLNVAL); was it closed while still in use?"
            ),
        ));
    }
    Ok(n > 0)
}

/// Blocks the calling thread in `poll(2)` until `fd` is ready for `dir` or
/// `deadline` passes (then returns `Ok` too: the caller retries its syscall
/// and reports the timeout). `EINTR` is retried with the remaining time.
pub(crate) fn poll_until(fd: RawFd, dir: Direction, deadline: Option<Instant>) -> io::Result<()> {
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Ok(());
                }
                // Round up so a wait never wakes just before its deadline.
                let ms = (d - now).as_nanos().div_ceil(1_000_000);
                ms.min(libc::c_int::MAX as u128) as libc::c_int
            }
        };
        match poll_once(fd, dir, timeout_ms) {
            Ok(true) => return Ok(()),
            Ok(false) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}
