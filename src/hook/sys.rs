//! The real calls behind the hooks: raw `syscall(2)`s with exactly the
//! arguments glibc's own wrappers pass (glibc's wrappers cannot be called by
//! name from here: the name now resolves to the hook). Each returns what the
//! syscall wrapper returns: the result, or -1 with errno set.

use libc::{c_int, c_long, c_void};

/// `syscall(nr, a, b, c, d, e, f)` as the signed result.
///
/// # Safety
/// The arguments must be valid for syscall `nr` (pointers valid for what the
/// kernel reads or writes through them).
#[inline(always)]
pub(super) unsafe fn sc6(
    nr: c_long,
    a: usize,
    b: usize,
    c: usize,
    d: usize,
    e: usize,
    f: usize,
) -> isize {
    // SAFETY: forwarded to the caller's contract.
    unsafe { libc::syscall(nr, a, b, c, d, e, f) as isize }
}

/// Three-argument syscall.
///
/// # Safety
/// As [`sc6`].
#[inline(always)]
pub(super) unsafe fn sc3(nr: c_long, a: usize, b: usize, c: usize) -> isize {
    // SAFETY: forwarded to the caller's contract.
    unsafe { libc::syscall(nr, a, b, c) as isize }
}

/// `read(2)`.
///
/// # Safety
/// `buf` valid for `len` bytes of writes.
#[inline(always)]
pub(super) unsafe fn read(fd: c_int, buf: *mut c_void, len: usize) -> isize {
    // SAFETY: forwarded.
    unsafe { sc3(libc::SYS_read, fd as usize, buf as usize, len) }
}

/// `write(2)`.
///
/// # Safety
/// `buf` valid for `len` bytes of reads.
#[inline(always)]
pub(super) unsafe fn write(fd: c_int, buf: *const c_void, len: usize) -> isize {
    // SAFETY: forwarded.
    unsafe { sc3(libc::SYS_write, fd as usize, buf as usize, len) }
}

/// `recvfrom(2)` (glibc's `recv` is `recvfrom` with no address).
///
/// # Safety
/// `buf` valid for `len` bytes of writes; `addr`/`alen` null or valid.
#[inline(always)]
pub(super) unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> isize {
    // SAFETY: forwarded.
    unsafe {
        sc6(
            libc::SYS_recvfrom,
            fd as usize,
            buf as usize,
            len,
            flags as usize,
            addr as usize,
            alen as usize,
        )
    }
}

/// `sendto(2)` (glibc's `send` is `sendto` with no address).
///
/// # Safety
/// `buf` valid for `len` bytes of reads; `addr` null or valid for `alen`.
#[inline(always)]
pub(super) unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> isize {
    // SAFETY: forwarded.
    unsafe {
        sc6(
            libc::SYS_sendto,
            fd as usize,
            buf as usize,
            len,
            flags as usize,
            addr as usize,
            alen as usize,
        )
    }
}

/// `recvmsg(2)`.
///
/// # Safety
/// `msg` valid, with valid buffers.
#[inline(always)]
pub(super) unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> isize {
    // SAFETY: forwarded.
    unsafe { sc3(libc::SYS_recvmsg, fd as usize, msg as usize, flags as usize) }
}

/// `sendmsg(2)`.
///
/// # Safety
/// `msg` valid, with valid buffers.
#[inline(always)]
pub(super) unsafe fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> isize {
    // SAFETY: forwarded.
    unsafe { sc3(libc::SYS_sendmsg, fd as usize, msg as usize, flags as usize) }
}

/// `fcntl(2)` with an integer (or pointer) argument. `F_GETOWN` goes through
/// `F_GETOWN_EX`, as glibc does, so a process group owner comes back negative
/// rather than as an error.
///
/// # Safety
/// `arg` valid for `cmd` (a pointer the kernel uses for the lock commands).
pub(super) unsafe fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    if cmd == libc::F_GETOWN {
        /// `struct f_owner_ex` and its constants (not in the libc crate).
        #[repr(C)]
        struct OwnerEx {
            type_: c_int,
            pid: libc::pid_t,
        }
        const F_GETOWN_EX: c_int = 16;
        const F_OWNER_PGRP: c_int = 2;
        let mut ex = OwnerEx { type_: 0, pid: 0 };
        // SAFETY: `ex` is a valid `f_owner_ex` for the kernel to fill.
        let r = unsafe {
            sc3(
                libc::SYS_fcntl,
                fd as usize,
                F_GETOWN_EX as usize,
                &mut ex as *mut _ as usize,
            )
        };
        if r < 0 {
            return r as c_int;
        }
        return if ex.type_ == F_OWNER_PGRP {
            -ex.pid
        } else {
            ex.pid
        };
    }
    // SAFETY: forwarded.
    unsafe { sc3(libc::SYS_fcntl, fd as usize, cmd as usize, arg) as c_int }
}

/// `F_GETFL`, or 0 when it fails (then the fd is gone and the caller's next
/// syscall reports it).
pub(super) fn getfl(fd: c_int) -> c_int {
    // SAFETY: F_GETFL takes no argument and only reads the fd's flags.
    unsafe { fcntl(fd, libc::F_GETFL, 0) }.max(0)
}

/// `close(2)`.
pub(super) fn close(fd: c_int) -> c_int {
    // SAFETY: closing an fd number has no memory effects.
    unsafe { sc3(libc::SYS_close, fd as usize, 0, 0) as c_int }
}

/// `poll(2)` as glibc makes it on every architecture: `ppoll` with a
/// timespec (aarch64 has no `poll` syscall).
///
/// # Safety
/// `fds` valid for `n` entries.
pub(super) unsafe fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int {
    let ts = libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
    };
    let tsp = if timeout_ms < 0 {
        std::ptr::null()
    } else {
        &ts as *const libc::timespec
    };
    // SAFETY: forwarded; `ts` lives for the call; no signal mask.
    unsafe {
        sc6(
            libc::SYS_ppoll,
            fds as usize,
            n as usize,
            tsp as usize,
            0,
            8,
            0,
        ) as c_int
    }
}

/// One `poll(2)` of `fd` for `events`, without waiting: its revents, or 0.
pub(super) fn poll_now(fd: c_int, events: libc::c_short) -> libc::c_short {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the call.
    if unsafe { poll(&mut pfd, 1, 0) } > 0 {
        pfd.revents
    } else {
        0
    }
}

/// `clock_nanosleep(2)` as the raw syscall: returns 0 or -1 with errno (the
/// libc function returns the error number instead; callers convert).
///
/// # Safety
/// `req` valid; `rem` null or valid.
pub(super) unsafe fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    // SAFETY: forwarded.
    unsafe {
        sc6(
            libc::SYS_clock_nanosleep,
            clock as usize,
            flags as usize,
            req as usize,
            rem as usize,
            0,
            0,
        ) as c_int
    }
}

/// `getsockopt` of a `timeval` option (`SO_RCVTIMEO`/`SO_SNDTIMEO`): the
/// timeout, or `None` for "none" (zero) and on error.
pub(super) fn sock_timeout(fd: c_int, opt: c_int) -> Option<std::time::Duration> {
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: `tv` and `len` are valid for writes; `len` holds tv's size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut tv as *mut libc::timeval).cast(),
            &mut len,
        )
    };
    if r != 0 || (tv.tv_sec <= 0 && tv.tv_usec <= 0) {
        return None;
    }
    Some(std::time::Duration::new(
        tv.tv_sec as u64,
        tv.tv_usec as u32 * 1000,
    ))
}

/// `getsockopt(SO_ERROR)`: the pending error (0: none).
pub(super) fn sock_error(fd: c_int) -> c_int {
    let mut err: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: `err` and `len` are valid for writes; `len` holds err's size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut c_int).cast(),
            &mut len,
        )
    };
    if r != 0 {
        super::errno()
    } else {
        err
    }
}
