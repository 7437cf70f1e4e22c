//! Thin libc wrappers for the socket calls std does not expose the way the
//! runtime needs them: `send`/`sendmsg` with `MSG_NOSIGNAL` (a dead peer is
//! `EPIPE`, never a SIGPIPE death), `recv` with flags (peek), vectored IO,
//! `shutdown` and `SO_LINGER`. No state lives here. (`O_NONBLOCK` and the
//! `poll(2)` waits outside the reactor live in `reactor/sys.rs` and are
//! re-exported here.)

use std::io::{self, IoSlice, IoSliceMut};
use std::net::Shutdown;
use std::os::fd::RawFd;
use std::time::Duration;

#[allow(unused_imports)]
pub(crate) use crate::reactor::sys::{poll_once, poll_until, set_nonblocking};

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

// The data calls below are raw `syscall(2)`s, not libc's `recv`/`send`/...:
// the runtime's own sockets are nonblocking and registered already, so the
// syscall hooks' per-fd bookkeeping (which those names now resolve to) has
// nothing to do for them, and neither has glibc's cancellation-point wrapper
// (threadlet never uses pthread cancellation). Measured: ~1.5% of an echo
// server's CPU went to those two layers.

/// `syscall(nr, a, b, c, d, 0, 0)` as the wrapper's signed result.
///
/// # Safety
/// The arguments must be valid for syscall `nr` (pointers valid for what the
/// kernel reads or writes through them for the call).
unsafe fn raw_syscall(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: forwarded to the caller's contract; the two unused arguments
    // are null (no address for recvfrom/sendto, ignored by the others).
    unsafe { libc::syscall(nr, a, b, c, d, 0usize, 0usize) as isize }
}

/// `recv(2)` into `buf` with `flags` (0, or `MSG_PEEK`).
pub(crate) fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    let (ptr, len) = (buf.as_mut_ptr() as usize, buf.len());
    // SAFETY: `buf` is valid for writes of `len` bytes for the call; no
    // source address is asked for.
    cvt(unsafe { raw_syscall(libc::SYS_recvfrom, fd as usize, ptr, len, flags as usize) })
}

/// `send(2)` with `MSG_NOSIGNAL`.
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    let (ptr, len) = (buf.as_ptr() as usize, buf.len());
    let flags = libc::MSG_NOSIGNAL as usize;
    // SAFETY: `buf` is valid for reads of `len` bytes for the call; no
    // destination address (a connected stream).
    cvt(unsafe { raw_syscall(libc::SYS_sendto, fd as usize, ptr, len, flags) })
}

/// Largest iovec count one call takes (Linux `UIO_MAXIOV`).
const MAX_IOV: usize = 1024;

/// `readv(2)`.
pub(crate) fn readv(fd: RawFd, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOV);
    // SAFETY: `IoSliceMut` is ABI-compatible with `iovec` (std guarantees it
    // on Unix); the `n` buffers are valid for writes for the call.
    cvt(unsafe {
        raw_syscall(
            libc::SYS_readv,
            fd as usize,
            bufs.as_mut_ptr() as usize,
            n,
            0,
        )
    })
}

/// `sendmsg(2)` of `bufs` with `MSG_NOSIGNAL` (a `writev` that cannot raise
/// SIGPIPE).
pub(crate) fn sendmsg(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero `msghdr` is a valid "no address, no control" header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = bufs.len().min(MAX_IOV) as _;
    let flags = libc::MSG_NOSIGNAL as usize;
    // SAFETY: `IoSlice` is ABI-compatible with `iovec`; the kernel only reads
    // the buffers, which stay borrowed for the call.
    cvt(unsafe {
        raw_syscall(
            libc::SYS_sendmsg,
            fd as usize,
            &msg as *const _ as usize,
            flags,
            0,
        )
    })
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
