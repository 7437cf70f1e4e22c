//! `connect`, `accept`, `accept4` (which park), and the bookkeeping calls that
//! keep the fd table true: `socket`, `socketpair`, `close`, `dup`, `dup2`,
//! `dup3`, `fcntl`, `ioctl`. See `hook/mod.rs` for the states they move.

use std::time::Instant;

use libc::{c_int, c_ulong, sockaddr, socklen_t};

use super::fd::{self, Kind};
use super::io::{poll_retry, to_errno, wait_call};
use super::{errno, guarded, on_fiber, set_errno, sys};
use crate::net::wait::{io_loop, IoCall};
use crate::park::WaitReason;
use crate::reactor::Direction;

const CONNECT: WaitReason = WaitReason::HookConnect;

/// The real `accept4`.
///
/// # Safety
/// `addr`/`len` null or valid.
unsafe fn real_accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        sys::sc6(
            libc::SYS_accept4,
            fd as usize,
            addr as usize,
            len as usize,
            flags as usize,
            0,
            0,
        ) as c_int
    }
}

/// The real `connect`.
///
/// # Safety
/// `addr` valid for `len` bytes.
unsafe fn real_connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { sys::sc3(libc::SYS_connect, fd as usize, addr as usize, len as usize) as c_int }
}

/// Is `fd` a socket that a fiber's call should park on, with the user's
/// file flags? `None`: make the real call.
fn blocking_socket(fd: c_int) -> Option<c_int> {
    if !on_fiber() || matches!(fd::kind(fd), Kind::Other | Kind::Unknown) {
        return None;
    }
    let flags = sys::getfl(fd);
    (flags & libc::O_NONBLOCK == 0).then_some(flags)
}

/// `accept(2)`; see [`accept4`].
///
/// # Safety
/// The libc contract: `addr`/`len` null or valid.
#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded.
    unsafe { accept4(fd, addr, len, 0) }
}

/// `accept4(2)`: on a fiber and a blocking listener, parks until a connection
/// comes (accepting with `O_NONBLOCK` toggled on for the call). Off a fiber,
/// the real call; an `EAGAIN` caused by a fiber's toggle is waited out.
///
/// # Safety
/// The libc contract: `addr`/`len` null or valid.
#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    // SAFETY (all calls below): the caller's contract on `addr`/`len`.
    let r = match blocking_socket(fd) {
        None => {
            let before = fd::epoch(fd);
            // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
            let r = unsafe { real_accept4(fd, addr, len, flags) };
            if r < 0 && errno() == libc::EAGAIN && fd::toggled_during(fd, before) {
                // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
                poll_retry(fd, Direction::Read, None, || unsafe {
                    real_accept4(fd, addr, len, flags) as isize
                }) as c_int
            } else {
                r
            }
        }
        Some(fl) => wait_call(fd, Direction::Read, || {
            // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
            fd::toggled(fd, fl, || unsafe { real_accept4(fd, addr, len, flags) }) as isize
        }) as c_int,
    };
    if r >= 0 {
        fd::reset(r);
    }
    r
}

/// `connect(2)`: on a fiber and a blocking socket, starts the connection with
/// `O_NONBLOCK` toggled on, parks until it completes, and returns its result
/// (`SO_ERROR`: `ECONNREFUSED`, `ETIMEDOUT`...), or `EINPROGRESS` when
/// `SO_SNDTIMEO` expires, as the kernel does.
///
/// # Safety
/// The libc contract: `addr` valid for `len` bytes.
#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY (all calls below): the caller's contract on `addr`.
    let Some(fl) = blocking_socket(fd) else {
        let before = fd::epoch(fd);
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        let r = unsafe { real_connect(fd, addr, len) };
        if r < 0
            && matches!(errno(), libc::EAGAIN | libc::EINPROGRESS)
            && fd::toggled_during(fd, before)
        {
            // A fiber toggled the socket under our blocking connect: finish
            // the wait here.
            return finish_connect_thread(fd);
        }
        return r;
    };
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = fd::toggled(fd, fl, || unsafe { real_connect(fd, addr, len) });
    if r == 0 || errno() != libc::EINPROGRESS {
        return r;
    }
    let deadline =
        sys::sock_timeout(fd, libc::SO_SNDTIMEO).and_then(|t| Instant::now().checked_add(t));
    let writable = || {
        if sys::poll_now(fd, libc::POLLOUT) != 0 {
            Ok(0usize)
        } else {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    };
    let waited = match fd::registration(fd) {
        Some(reg) => {
            let call = IoCall {
                dir: Direction::Write,
                deadline,
                nonblocking: false,
                reason: CONNECT,
            };
            guarded(|| io_loop(&reg, fd, call, |_: &usize| false, writable))
        }
        None => Ok(
            match poll_retry(fd, Direction::Write, deadline, || {
                writable().map_or(-1, |_| 0)
            }) {
                0 => Ok(0),
                _ => Err(std::io::Error::from_raw_os_error(libc::EAGAIN)),
            },
        ),
    };
    match waited {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            let e = to_errno(&e);
            // An expired SO_SNDTIMEO: the kernel answers EINPROGRESS.
            set_errno(if e == libc::EAGAIN {
                libc::EINPROGRESS
            } else {
                e
            });
            return -1;
        }
        Err(()) => {
            set_errno(libc::ECANCELED);
            return -1;
        }
    }
    match sys::sock_error(fd) {
        0 => 0,
        e => {
            set_errno(e);
            -1
        }
    }
}

/// A plain thread's blocking connect that a toggle turned nonblocking:
/// wait for the outcome in `poll(2)`.
fn finish_connect_thread(fd: c_int) -> c_int {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call.
    while unsafe { sys::poll(&mut pfd, 1, -1) } < 0 && errno() == libc::EINTR {}
    match sys::sock_error(fd) {
        0 => 0,
        e => {
            set_errno(e);
            -1
        }
    }
}

/// `socket(2)`: the real call; the new fd number starts with a clean entry.
#[no_mangle]
pub extern "C" fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    // SAFETY: no pointers.
    let r = unsafe {
        sys::sc3(
            libc::SYS_socket,
            domain as usize,
            ty as usize,
            protocol as usize,
        )
    } as c_int;
    if r >= 0 {
        fd::reset(r);
    }
    r
}

/// `socketpair(2)`: the real call; both fds start with a clean entry.
///
/// # Safety
/// The libc contract: `sv` valid for two ints.
#[no_mangle]
pub unsafe extern "C" fn socketpair(
    domain: c_int,
    ty: c_int,
    protocol: c_int,
    sv: *mut c_int,
) -> c_int {
    // SAFETY: `sv` valid for two ints (caller's contract).
    let r = unsafe {
        sys::sc6(
            libc::SYS_socketpair,
            domain as usize,
            ty as usize,
            protocol as usize,
            sv as usize,
            0,
            0,
        )
    } as c_int;
    if r == 0 {
        // SAFETY: the kernel filled both.
        unsafe {
            fd::reset(*sv);
            fd::reset(*sv.add(1));
        }
    }
    r
}

/// `close(2)`: deregisters the fd from the reactor first if a fiber
/// registered it (waking any fiber parked on it), then the real call.
#[no_mangle]
pub extern "C" fn close(fd: c_int) -> c_int {
    fd::reset(fd);
    sys::close(fd)
}

/// `dup(2)`: the real call; the new fd starts with a clean entry.
#[no_mangle]
pub extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: no pointers.
    let r = unsafe { sys::sc3(libc::SYS_dup, fd as usize, 0, 0) } as c_int;
    if r >= 0 {
        fd::reset(r);
    }
    r
}

/// `dup2(2)`: deregisters `new` (which the call closes), then the real call
/// (`dup3`, or a validity check when `old == new`, as glibc does on
/// architectures without `dup2`).
#[no_mangle]
pub extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // SAFETY: F_GETFL takes no argument.
        let r = unsafe { sys::fcntl(old, libc::F_GETFL, 0) };
        return if r < 0 { r } else { new };
    }
    fd::reset(new);
    // SAFETY: no pointers.
    unsafe { sys::sc3(libc::SYS_dup3, old as usize, new as usize, 0) as c_int }
}

/// `dup3(2)`: deregisters `new` (which the call closes), then the real call.
#[no_mangle]
pub extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        fd::reset(new);
    }
    // SAFETY: no pointers.
    unsafe { sys::sc3(libc::SYS_dup3, old as usize, new as usize, flags as usize) as c_int }
}

/// `fcntl(2)`: the real call. Setting `O_NONBLOCK` hands the fd to its user's
/// own readiness handling (say, `threadlet::net` adopting a std socket), so a
/// fiber's registration is dropped first; `F_DUPFD*` give the new fd a clean
/// entry; `F_GETFL` during a fiber's toggle reports the user's (blocking)
/// flag.
///
/// # Safety
/// The libc contract for `cmd`'s argument. `fcntl` is variadic in C; this
/// definition takes the optional third argument as one `usize`. That is the
/// same call on x86_64 and aarch64 Linux: variadic and fixed integer or
/// pointer arguments travel in the same registers there (the SysV x86_64
/// caller's `%al` vector-register count is simply ignored), every `fcntl`
/// command takes at most one argument, and it is an int or a pointer, both
/// of which fit in the register read as `usize` (the kernel reads only the
/// low 32 bits of an int argument). A caller that passes no argument leaves
/// an unspecified value, which the kernel ignores for such commands.
#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if cmd == libc::F_SETFL && arg as c_int & libc::O_NONBLOCK != 0 {
        fd::reset(fd);
    }
    // SAFETY: the caller's contract on `arg`.
    let r = unsafe { sys::fcntl(fd, cmd, arg) };
    if r >= 0 && (cmd == libc::F_DUPFD || cmd == libc::F_DUPFD_CLOEXEC) {
        fd::reset(r);
    }
    if r >= 0 && cmd == libc::F_GETFL && fd::epoch(fd) & 1 == 1 {
        // A fiber's accept/connect has O_NONBLOCK on for a moment; only
        // blocking sockets are toggled, so the user's flag is clear.
        return r & !libc::O_NONBLOCK;
    }
    r
}

/// `fcntl64`, the name glibc's headers use with `_FILE_OFFSET_BITS=64`: the
/// same as [`fcntl`] on 64-bit targets.
///
/// # Safety
/// As [`fcntl`].
#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    // SAFETY: forwarded.
    unsafe { fcntl(fd, cmd, arg) }
}

/// `ioctl(2)`: the real call; `FIONBIO` turning nonblocking on drops a
/// fiber's registration first (as `fcntl` does).
///
/// # Safety
/// The libc contract for `request`'s argument. `ioctl` is variadic in C; the
/// one optional argument is taken as a `usize`, as for [`fcntl`] (same
/// registers on x86_64 and aarch64 Linux; ioctl arguments are an int or a
/// pointer).
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: usize) -> c_int {
    if request == libc::FIONBIO as c_ulong && arg != 0 {
        // SAFETY: FIONBIO's argument is a pointer to an int (caller's
        // contract); it is read once before the kernel reads it too.
        if unsafe { *(arg as *const c_int) } != 0 {
            fd::reset(fd);
        }
    }
    // SAFETY: the caller's contract on `arg`.
    unsafe { sys::sc3(libc::SYS_ioctl, fd as usize, request as usize, arg) as c_int }
}
