//! The data calls: `read`, `write`, `readv`, `writev`, `recv`, `recvfrom`,
//! `recvmsg`, `send`, `sendto`, `sendmsg`. Off a fiber, and on a fiber for
//! anything but a socket, each is the raw syscall. On a fiber, for a socket,
//! [`wait_call`] makes the call with `MSG_DONTWAIT` and parks on `EAGAIN`
//! unless the user made the socket nonblocking (see `hook/mod.rs`).

use std::io;
use std::time::Instant;

use libc::{c_int, c_void, iovec, msghdr, sockaddr, socklen_t, ssize_t};

use super::fd::{self, Kind};
use super::{errno, guarded, on_fiber, set_errno, sys};
use crate::net::wait::{io_loop, spend_budget, IoCall};
use crate::park::WaitReason;
use crate::reactor::{Direction, ScheduledIo};

const READ: WaitReason = WaitReason::HookRead;
const WRITE: WaitReason = WaitReason::HookWrite;
/// Linux `UIO_MAXIOV`.
const MAX_IOV: c_int = 1024;

/// The errno a hook reports for an `io::Error` from the wait: the OS error
/// itself, `EAGAIN` for an expired socket timeout (what the kernel says),
/// `EIO` for anything else (not expected).
pub(super) fn to_errno(e: &io::Error) -> c_int {
    match (e.raw_os_error(), e.kind()) {
        (Some(n), _) => n,
        (None, io::ErrorKind::TimedOut) => libc::EAGAIN,
        (None, io::ErrorKind::InvalidInput) => libc::EBADF,
        _ => libc::EIO,
    }
}

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Fiber path of one call on a socket: `op` makes it with `MSG_DONTWAIT`.
/// Returns what the blocking call returns (-1 with errno on error).
pub(super) fn wait_call(fd: c_int, dir: Direction, mut op: impl FnMut() -> isize) -> isize {
    if guarded(spend_budget).is_err() {
        set_errno(libc::ECANCELED);
        return -1;
    }
    // A registered fd whose readiness says "nothing since the last EAGAIN"
    // would say EAGAIN again: skip that syscall. Otherwise the readiness word
    // read before the call lets an EAGAIN clear it (tick-checked, as in
    // `io_loop`), so `io_loop` parks at once instead of trying again.
    let known = fd::registered(fd);
    let seen = known
        .as_ref()
        .and_then(|r| r.live())
        .map(|l| l.io.readiness());
    let skip = seen.is_some_and(|w| !ScheduledIo::is_ready(w, dir));
    let r = if skip {
        set_errno(libc::EAGAIN);
        -1
    } else {
        op()
    };
    if r >= 0 || errno() != libc::EAGAIN {
        return r;
    }
    if sys::getfl(fd) & libc::O_NONBLOCK != 0 {
        // The user's own nonblocking socket: EAGAIN is the answer.
        set_errno(libc::EAGAIN);
        return -1;
    }
    let (opt, reason) = match dir {
        Direction::Read => (libc::SO_RCVTIMEO, READ),
        Direction::Write => (libc::SO_SNDTIMEO, WRITE),
    };
    let deadline = sys::sock_timeout(fd, opt).and_then(|t| Instant::now().checked_add(t));
    let Some(reg) = known.or_else(|| fd::registration(fd)) else {
        // Beyond the table: wait like a plain thread.
        return poll_retry(fd, dir, deadline, op);
    };
    if let (Some(seen), Some(live), false) = (seen, reg.live(), skip) {
        live.io.clear(dir, seen);
    }
    let call = IoCall {
        dir,
        deadline,
        nonblocking: false,
        reason,
    };
    match guarded(|| io_loop(&reg, fd, call, |_: &usize| false, || cvt(op()))) {
        Ok(Ok(n)) => n as isize,
        Ok(Err(e)) => {
            set_errno(to_errno(&e));
            -1
        }
        Err(()) => {
            set_errno(libc::ECANCELED);
            -1
        }
    }
}

/// Waits in `poll(2)` and retries `op` until it does not say `EAGAIN` or
/// `deadline` passes (then `EAGAIN`).
pub(super) fn poll_retry(
    fd: c_int,
    dir: Direction,
    deadline: Option<Instant>,
    mut op: impl FnMut() -> isize,
) -> isize {
    let events = match dir {
        Direction::Read => libc::POLLIN,
        Direction::Write => libc::POLLOUT,
    };
    loop {
        let timeout = match deadline {
            None => -1,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    set_errno(libc::EAGAIN);
                    return -1;
                }
                (d - now).as_millis().clamp(1, c_int::MAX as u128) as c_int
            }
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        unsafe { sys::poll(&mut pfd, 1, timeout) };
        let r = op();
        if r >= 0 || errno() != libc::EAGAIN {
            return r;
        }
    }
}

/// Which path a call on `fd` takes: `None` for the real call, else the kind
/// of socket (fiber, socket, no `MSG_DONTWAIT` of the caller's own).
#[inline(always)]
fn hooked(fd: c_int, flags: c_int) -> Option<Kind> {
    if !on_fiber() || flags & libc::MSG_DONTWAIT != 0 {
        return None;
    }
    match fd::kind(fd) {
        k @ (Kind::Stream | Kind::Dgram) => Some(k),
        _ => None,
    }
}

/// A socket call said `ENOTSOCK`: the fd number was reused by something else
/// behind the hooks' back. Forget it and make the plain call.
fn not_socket(fd: c_int, r: isize, plain: impl FnOnce() -> isize) -> isize {
    if r < 0 && errno() == libc::ENOTSOCK {
        fd::reset(fd);
        return plain();
    }
    r
}

/// Sends until `total` bytes went out on a stream socket (a blocking send
/// does not return early), or once on other sockets. `op(done)` sends from
/// offset `done`. An error after progress returns the progress, as the kernel
/// does.
fn send_all(fd: c_int, kind: Kind, total: usize, mut op: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let r = wait_call(fd, Direction::Write, || op(done));
        if r < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += r as usize;
        if kind != Kind::Stream || done >= total || r == 0 {
            return done as isize;
        }
    }
}

/// Receives until `total` bytes came, EOF, or an error (`MSG_WAITALL` on a
/// stream socket); `op(done)` receives at offset `done`.
fn recv_all(fd: c_int, total: usize, mut op: impl FnMut(usize) -> isize) -> isize {
    let mut done = 0usize;
    loop {
        let r = wait_call(fd, Direction::Read, || op(done));
        if r < 0 {
            return if done > 0 { done as isize } else { -1 };
        }
        done += r as usize;
        if r == 0 || done >= total {
            return done as isize;
        }
    }
}

/// The `iovec`s of `iov` that remain after skipping `skip` bytes.
///
/// # Safety
/// `iov` valid for `cnt` entries.
unsafe fn iov_after(iov: *const iovec, cnt: c_int, mut skip: usize) -> Vec<iovec> {
    // SAFETY: forwarded from the caller.
    let all = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    let mut out = Vec::with_capacity(all.len());
    for v in all {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(iovec {
            // SAFETY: `skip < iov_len`, inside the caller's buffer.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    out
}

/// # Safety
/// `iov` valid for `cnt` entries.
unsafe fn iov_total(iov: *const iovec, cnt: c_int) -> usize {
    // SAFETY: forwarded from the caller.
    let all = unsafe { std::slice::from_raw_parts(iov, cnt.max(0) as usize) };
    all.iter().fold(0usize, |a, v| a.saturating_add(v.iov_len))
}

fn msg_of(iov: *mut iovec, cnt: usize) -> msghdr {
    // SAFETY: an all-zero `msghdr` is "no address, no control".
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = cnt as _;
    msg
}

/// `read(2)`: parks on a blocking socket (as `recvfrom`, the same call there).
///
/// # Safety
/// The libc contract: `buf` valid for `count` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: usize) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `buf`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::read(fd, buf, count) };
    if hooked(fd, 0).is_none() {
        return plain();
    }
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = wait_call(fd, Direction::Read, || unsafe {
        sys::recvfrom(
            fd,
            buf,
            count,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    });
    not_socket(fd, r, plain)
}

/// `write(2)`: parks on a blocking socket; sends everything on a stream.
///
/// # Safety
/// The libc contract: `buf` valid for `count` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: usize) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `buf`; offsets stay
    // below `count`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::write(fd, buf, count) };
    let Some(kind) = hooked(fd, 0) else {
        return plain();
    };
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = send_all(fd, kind, count, |done| unsafe {
        sys::sendto(
            fd,
            buf.cast::<u8>().add(done).cast(),
            count - done,
            libc::MSG_DONTWAIT,
            std::ptr::null(),
            0,
        )
    });
    not_socket(fd, r, plain)
}

/// `readv(2)`: parks on a blocking socket (as `recvmsg`).
///
/// # Safety
/// The libc contract: `iov` valid for `iovcnt` entries of valid buffers.
#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `iov`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::sc3(libc::SYS_readv, fd as usize, iov as usize, iovcnt as usize) };
    if !(0..=MAX_IOV).contains(&iovcnt) || hooked(fd, 0).is_none() {
        return plain();
    }
    let mut msg = msg_of(iov as *mut iovec, iovcnt as usize);
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = wait_call(fd, Direction::Read, || unsafe {
        sys::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT)
    });
    not_socket(fd, r, plain)
}

/// `writev(2)`: parks on a blocking socket (as `sendmsg`); sends everything
/// on a stream.
///
/// # Safety
/// The libc contract: `iov` valid for `iovcnt` entries of valid buffers.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `iov`.
    let plain =
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        || unsafe { sys::sc3(libc::SYS_writev, fd as usize, iov as usize, iovcnt as usize) };
    if !(0..=MAX_IOV).contains(&iovcnt) {
        return plain();
    }
    let Some(kind) = hooked(fd, 0) else {
        return plain();
    };
    // SAFETY: the caller's contract on `iov`.
    let total = unsafe { iov_total(iov, iovcnt) };
    let r = send_all(fd, kind, total, |done| {
        let mut rest = if done == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
            unsafe { iov_after(iov, iovcnt, done) }
        };
        let msg = if done == 0 {
            msg_of(iov as *mut iovec, iovcnt as usize)
        } else {
            msg_of(rest.as_mut_ptr(), rest.len())
        };
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        unsafe { sys::sendmsg(fd, &msg, libc::MSG_DONTWAIT) }
    });
    not_socket(fd, r, plain)
}

/// `recv(2)`: parks on a blocking socket unless `MSG_DONTWAIT` is given;
/// `MSG_WAITALL` on a stream receives everything.
///
/// # Safety
/// The libc contract: `buf` valid for `len` bytes of writes.
#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, len: usize, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract, forwarded.
    unsafe {
        recvfrom(
            fd,
            buf,
            len,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// `recvfrom(2)`; see [`recv`].
///
/// # Safety
/// The libc contract: `buf` valid for `len` bytes of writes, `addr`/`alen`
/// null or valid.
#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    // SAFETY (all calls below): the caller's contract; offsets stay below `len`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::recvfrom(fd, buf, len, flags, addr, alen) };
    let Some(kind) = hooked(fd, flags) else {
        return plain();
    };
    let nb = flags | libc::MSG_DONTWAIT;
    let r = if kind == Kind::Stream && flags & libc::MSG_WAITALL != 0 && flags & libc::MSG_PEEK == 0
    {
        let once = nb & !libc::MSG_WAITALL;
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        recv_all(fd, len, |done| unsafe {
            sys::recvfrom(
                fd,
                buf.cast::<u8>().add(done).cast(),
                len - done,
                once,
                addr,
                alen,
            )
        })
    } else {
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        wait_call(fd, Direction::Read, || unsafe {
            sys::recvfrom(fd, buf, len, nb, addr, alen)
        })
    };
    not_socket(fd, r, plain)
}

/// `recvmsg(2)`: parks on a blocking socket unless `MSG_DONTWAIT` is given.
///
/// # Safety
/// The libc contract: `msg` valid with valid buffers.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `msg`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::recvmsg(fd, msg, flags) };
    if hooked(fd, flags).is_none() {
        return plain();
    }
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = wait_call(fd, Direction::Read, || unsafe {
        sys::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT)
    });
    not_socket(fd, r, plain)
}

/// `send(2)`: parks on a blocking socket unless `MSG_DONTWAIT` is given;
/// sends everything on a stream.
///
/// # Safety
/// The libc contract: `buf` valid for `len` bytes of reads.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: usize, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract, forwarded.
    unsafe { sendto(fd, buf, len, flags, std::ptr::null(), 0) }
}

/// `sendto(2)`; see [`send`].
///
/// # Safety
/// The libc contract: `buf` valid for `len` bytes of reads, `addr` null or
/// valid for `alen` bytes.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    // SAFETY (all calls below): the caller's contract; offsets stay below `len`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::sendto(fd, buf, len, flags, addr, alen) };
    let Some(kind) = hooked(fd, flags) else {
        return plain();
    };
    let nb = flags | libc::MSG_DONTWAIT;
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let r = send_all(fd, kind, len, |done| unsafe {
        sys::sendto(
            fd,
            buf.cast::<u8>().add(done).cast(),
            len - done,
            nb,
            addr,
            alen,
        )
    });
    not_socket(fd, r, plain)
}

/// `sendmsg(2)`: parks on a blocking socket unless `MSG_DONTWAIT` is given;
/// sends everything on a stream (ancillary data goes with the first part).
///
/// # Safety
/// The libc contract: `msg` valid with valid buffers.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY (all calls below): the caller's contract on `msg`.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let plain = || unsafe { sys::sendmsg(fd, msg, flags) };
    if msg.is_null() {
        return plain();
    }
    let Some(kind) = hooked(fd, flags) else {
        return plain();
    };
    // SAFETY: `msg` is valid (caller's contract).
    let m = unsafe { &*msg };
    let cnt = m.msg_iovlen.min(MAX_IOV as usize) as c_int;
    // SAFETY: the caller's contract on the iovecs.
    let total = unsafe { iov_total(m.msg_iov, cnt) };
    let nb = flags | libc::MSG_DONTWAIT;
    let r = send_all(fd, kind, total, |done| {
        if done == 0 {
            // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
            return unsafe { sys::sendmsg(fd, msg, nb) };
        }
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        let mut rest = unsafe { iov_after(m.msg_iov, cnt, done) };
        let mut next = msg_of(rest.as_mut_ptr(), rest.len());
        next.msg_name = m.msg_name;
        next.msg_namelen = m.msg_namelen;
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        unsafe { sys::sendmsg(fd, &next, nb) }
    });
    not_socket(fd, r, plain)
}
