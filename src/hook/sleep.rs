//! Sleeps (`nanosleep`, `clock_nanosleep`, `usleep`, `sleep`) and `poll`: on a
//! fiber they park on the timer (and, for `poll`, on a temporary epoll set of
//! the polled fds); off a fiber, the real call.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use libc::{c_int, c_uint, clockid_t, nfds_t, pollfd, timespec};

use super::{cancelled, errno, guarded, on_fiber, set_errno, sys};
use crate::park;
use crate::park::WaitReason;

const SLEEPING: WaitReason = WaitReason::HookSleep;
/// `poll` on a fiber parks for at most this many fds; more take the real call.
const POLL_MAX: nfds_t = 64;

/// Parks the fiber until `deadline`; returns early only if it is cancelled.
fn fiber_sleep(deadline: Option<Instant>) {
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) || cancelled() {
            return;
        }
        park::park_until(deadline, SLEEPING);
    }
}

fn valid(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// `nanosleep(2)`: on a fiber, parks on the timer (an invalid `req` is
/// `EINVAL`, as the kernel says); `rem`, if given, is zeroed.
///
/// # Safety
/// The libc contract: `req` valid, `rem` null or valid.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !on_fiber() || req.is_null() {
        // SAFETY: the caller's contract; the same call glibc makes.
        return unsafe { sys::clock_nanosleep(libc::CLOCK_REALTIME, 0, req, rem) };
    }
    // SAFETY: `req` is valid (caller's contract).
    let Some(dur) = valid(unsafe { &*req }) else {
        set_errno(libc::EINVAL);
        return -1;
    };
    fiber_sleep(Instant::now().checked_add(dur));
    if !rem.is_null() {
        // SAFETY: `rem` is valid when non-null (caller's contract).
        unsafe {
            *rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    0
}

/// `clock_nanosleep(2)`: on a fiber, for `CLOCK_REALTIME`, `CLOCK_MONOTONIC`,
/// `CLOCK_BOOTTIME` and `CLOCK_TAI` (relative or `TIMER_ABSTIME`), parks on
/// the timer; other clocks (CPU-time clocks) take the real call. Returns 0
/// or the error number, like the libc function.
///
/// # Safety
/// The libc contract: `req` valid, `rem` null or valid.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let parkable = matches!(
        clock,
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if !on_fiber() || !parkable || req.is_null() {
        let e = errno();
        // SAFETY: the caller's contract.
        let r = unsafe { sys::clock_nanosleep(clock, flags, req, rem) };
        let r = if r < 0 { errno() } else { 0 };
        set_errno(e);
        return r;
    }
    // SAFETY: `req` is valid (caller's contract).
    let Some(req) = valid(unsafe { &*req }) else {
        return libc::EINVAL;
    };
    let dur = if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is valid for writes.
        unsafe { libc::clock_gettime(clock, &mut now) };
        req.saturating_sub(valid(&now).unwrap_or_default())
    } else {
        req
    };
    fiber_sleep(Instant::now().checked_add(dur));
    if !rem.is_null() && flags & libc::TIMER_ABSTIME == 0 {
        // SAFETY: `rem` is valid when non-null (caller's contract).
        unsafe {
            *rem = timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
    0
}

/// `usleep(3)`: on a fiber, parks on the timer.
#[no_mangle]
pub extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let dur = Duration::from_micros(usec as u64);
    if on_fiber() {
        fiber_sleep(Instant::now().checked_add(dur));
        return 0;
    }
    let ts = timespec {
        tv_sec: dur.as_secs() as libc::time_t,
        tv_nsec: dur.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `ts` is valid; no remainder wanted.
    unsafe { sys::clock_nanosleep(libc::CLOCK_REALTIME, 0, &ts, std::ptr::null_mut()) }
}

/// `sleep(3)`: on a fiber, parks on the timer and returns 0. Off a fiber,
/// the real sleep; interrupted by a signal, it returns the seconds left
/// (rounded up), as glibc does.
#[no_mangle]
pub extern "C" fn sleep(seconds: c_uint) -> c_uint {
    if on_fiber() {
        fiber_sleep(Instant::now().checked_add(Duration::from_secs(seconds as u64)));
        return 0;
    }
    let e = errno();
    let ts = timespec {
        tv_sec: seconds as libc::time_t,
        tv_nsec: 0,
    };
    let mut rem = timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` and `rem` are valid.
    let r = unsafe { sys::clock_nanosleep(libc::CLOCK_REALTIME, 0, &ts, &mut rem) };
    set_errno(e);
    if r < 0 {
        (rem.tv_sec as c_uint).saturating_add((rem.tv_nsec > 0) as c_uint)
    } else {
        0
    }
}

/// `poll(2)`: on a fiber, with a nonzero timeout and up to 64 fds, parks until
/// one of them is ready or the timeout passes (no fds: a sleep), then returns
/// what a `poll` with timeout 0 says. Otherwise the real call.
///
/// # Safety
/// The libc contract: `fds` valid for `nfds` entries.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, nfds: nfds_t, timeout: c_int) -> c_int {
    if !on_fiber() || timeout == 0 || nfds > POLL_MAX {
        // SAFETY: the caller's contract.
        return unsafe { sys::poll(fds, nfds, timeout) };
    }
    let deadline = (timeout > 0).then(|| Instant::now() + Duration::from_millis(timeout as u64));
    if nfds == 0 {
        fiber_sleep(deadline);
        return 0;
    }
    // SAFETY: the caller's contract.
    let r = unsafe { sys::poll(fds, nfds, 0) };
    if r != 0 {
        return r;
    }
    // SAFETY: the caller's contract.
    match unsafe { park_poll(fds, nfds, deadline) } {
        Some(r) => r,
        None => {
            // SAFETY: the caller's contract.
            unsafe { sys::poll(fds, nfds, timeout) }
        }
    }
}

/// Parks until one of `fds` is ready or `deadline` passes, through a
/// temporary epoll set of them (itself readable when any member is ready,
/// and waited on like any fd). `None` if no epoll could be made.
///
/// # Safety
/// `fds` valid for `nfds` entries.
unsafe fn park_poll(fds: *mut pollfd, nfds: nfds_t, deadline: Option<Instant>) -> Option<c_int> {
    // SAFETY: no pointers.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return None;
    }
    // SAFETY: the caller's contract.
    let list = unsafe { std::slice::from_raw_parts(fds, nfds as usize) };
    for p in list.iter().filter(|p| p.fd >= 0) {
        let mut ev = libc::epoll_event {
            events: (p.events as u16 as u32)
                & (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLPRI | libc::EPOLLRDHUP) as u32,
            u64: 0,
        };
        // SAFETY: `ev` is valid; a failure (EEXIST for a repeated fd, EPERM
        // for a regular file, which poll reported ready anyway) is harmless.
        unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, p.fd, &mut ev) };
    }
    // SAFETY: `ep` is open until the close below.
    let ep_fd = unsafe { BorrowedFd::borrow_raw(ep) };
    let result = loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let waited = guarded(|| crate::io::wait_readable(ep_fd, timeout));
        // SAFETY: the caller's contract.
        let r = unsafe { sys::poll(fds, nfds, 0) };
        if r != 0 {
            break r;
        }
        match waited {
            Err(()) => {
                set_errno(libc::ECANCELED);
                break -1;
            }
            Ok(Err(_)) if deadline.is_some_and(|d| Instant::now() >= d) => break 0,
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::TimedOut => {
                set_errno(super::io::to_errno(&e));
                break -1;
            }
            _ => {}
        }
    };
    let e = errno();
    sys::close(ep);
    set_errno(e);
    Some(result)
}
