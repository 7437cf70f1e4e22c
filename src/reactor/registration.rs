//! The one wait routine every fiber IO call goes through ([`io_loop`]), lazy
//! registration with a runtime's reactor ([`Registration`]), the operation
//! budget, and the test hook for the EAGAIN-to-park window.
//!
//! # Protocol of one IO call (`io_loop`)
//! ```text
//! loop:
//!   seen = readiness word (if registered)      -- read BEFORE the syscall
//!   registered and not ready     -> wait (as below), retry
//!   r = syscall()
//!   r is a short stream read/write -> clear_drained(dir, seen), return r
//!                                  (the plain bit only: closed/error bits stay)
//!   r is not WouldBlock          -> return r   (EINTR: retry at once)
//!   emulated nonblocking         -> return WouldBlock
//!   deadline passed              -> return TimedOut
//!   plain thread, or unwinding   -> poll(2) on the fd; retry
//!   not registered yet           -> register now (readiness 0), skip the clear
//!   else clear(dir, seen)        -- only if the tick is still seen's tick
//!   publish waiter; re-check readiness; park unless ready
//!   remove waiter; check_cancel; retry
//! ```
//! An event between the syscall and the clear bumps the tick, so the clear
//! leaves it alone; an event between the clear and the publish is seen by the
//! re-check; an event after the publish unparks the waiter (or leaves a park
//! token). So an edge is never lost (RELIABILITY row 3). A wake without data
//! (spurious unpark, stale event) retries the syscall and parks again
//! (row 4).
//!
//! # Registration
//! A source registers with the poller of the worker whose fiber first has to
//! wait on it (`current_poller()`), once, and keeps that poller (an `Arc`), so
//! deregistration goes to the epoll instance that holds the entry. Events of
//! the source are seen by that worker only; a fiber of another worker waiting
//! on it is woken through its own worker's inbox. A registration that failed (the runtime was
//! shutting down, `EPERM` for a regular file) or whose reactor has since been
//! closed (the socket outlived its runtime) is never retried: the source then
//! waits with `poll(2)`, which blocks the worker thread. Using a socket after
//! its runtime shut down therefore works but does not scale; create sockets
//! inside the runtime that serves them.
//!
//! Who touches what: the `OnceLock` is written once by whichever waiter
//! registers first; the `ScheduledIo` behind it follows the reactor's rules
//! (scheduled_io.rs). The budget is a field of the fiber's header, read and
//! written only by that fiber; the test hook (feature `test-hooks`) is in the per-thread `context`.
//!
//! # Operation budget
//! A fiber whose socket is always ready never parks, so without help it would
//! keep its worker forever and starve timers and the worker's other fibers
//! (row 15). Every IO call on a fiber counts one; after [`BUDGET`] calls in a
//! row without parking the fiber yields. Parking resets the count, and so does
//! the budget's own yield. The count is the fiber's own (a header field), so
//! its siblings' calls never count against it.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::sys;
use super::{current_poller, Direction, Poller, ScheduledIo};
use crate::context;
use crate::park::{self, Unparker, WaitReason};

/// IO calls a fiber may make in a row without parking before it yields.
pub(crate) const BUDGET: u32 = 128;

/// Counts one IO call of the current fiber; yields once the budget is spent.
pub(crate) fn spend_budget() {
    // Not on a fiber, or unwinding (`park::unwinding` for a fiber): no budget.
    let exhausted =
        context::with_current_fiber(|f| f.is_some_and(|f| !f.is_unwinding() && f.spend_op(BUDGET)));
    if exhausted {
        crate::fiber::yield_now();
    }
}

fn reset_budget() {
    context::with_current_fiber(|f| {
        if let Some(f) = f {
            f.reset_ops();
        }
    });
}

/// May the caller park its fiber (rather than block its thread)?
pub(crate) fn can_park() -> bool {
    !context::current_fiber_ptr().is_null() && !crate::park::unwinding()
}

/// A live registration: the poller it was made with (deregistration goes
/// there too), and the source's readiness state in it.
pub(crate) struct Registered {
    poller: Arc<Poller>,
    pub(crate) io: Arc<ScheduledIo>,
}

/// A source's registration, made lazily by its first waiter (module docs).
#[derive(Default)]
pub(crate) struct Registration {
    cell: OnceLock<Option<Registered>>,
}

impl Registration {
    /// Not registered yet.
    pub(crate) const fn new() -> Registration {
        Registration {
            cell: OnceLock::new(),
        }
    }

    /// The registration, if one was made and its reactor still runs.
    pub(crate) fn live(&self) -> Option<&Registered> {
        self.cell.get()?.as_ref().filter(|r| !r.io.is_shutdown())
    }

    /// Registers `fd` with the calling fiber's runtime unless that was tried
    /// before; returns the live registration, if any.
    pub(crate) fn register(&self, fd: RawFd) -> Option<&Registered> {
        self.cell
            .get_or_init(|| {
                let poller = current_poller()?;
                let io = poller.register(fd).ok()?;
                Some(Registered { poller, io })
            })
            .as_ref()
            .filter(|r| !r.io.is_shutdown())
    }

    /// Removes `fd` from epoll and frees the slot, waking every waiter. Call
    /// it before closing the fd whose number was registered (or any fd of the
    /// same file: a failed `EPOLL_CTL_DEL` is harmless, the entry goes away
    /// with the file's last fd).
    pub(crate) fn deregister(&self, fd: RawFd) {
        if let Some(Some(r)) = self.cell.get() {
            r.poller.deregister(fd, &r.io);
        }
    }

    /// Sets readiness `bits` (with a new tick) and wakes the waiters that
    /// care, as an event would. No-op when not registered.
    pub(crate) fn wake(&self, bits: usize) {
        if let Some(r) = self.live() {
            r.io.set_ready(bits);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Idempotent after `deregister`; otherwise the fd is already closed
        // (see `Registration::deregister`) and only the slot is left.
        if let Some(Some(r)) = self.cell.get() {
            r.poller.forget(&r.io);
        }
    }
}

/// The error of a wait that hit its deadline.
pub(crate) fn timed_out(reason: WaitReason) -> io::Error {
    let what = reason.what();
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{what} timed out (the timeout set on the socket, or the one passed in, expired)"),
    )
}

/// The settings of one IO call (see [`io_loop`]).
#[derive(Clone, Copy)]
pub(crate) struct IoCall {
    /// Which readiness the call needs.
    pub(crate) dir: Direction,
    /// `TimedOut` once it passes.
    pub(crate) deadline: Option<Instant>,
    /// Emulated nonblocking mode: return `WouldBlock` at once.
    pub(crate) nonblocking: bool,
    /// What `runtime::dump` shows while parked.
    pub(crate) reason: WaitReason,
}

/// Runs `op` until it does not return `WouldBlock`, parking the fiber (or
/// polling on a thread) in between; see the module docs for the protocol.
///
/// - `fd`: the fd `op` uses (registered lazily, polled on threads);
/// - `call`: direction, deadline, emulated nonblocking mode, dump reason;
/// - `drained`: does this result mean the socket has nothing more for `dir`
///   (a short read or write on a stream)? Then its readiness is cleared and
///   the next call parks before trying the syscall.
pub(crate) fn io_loop<R>(
    reg: &Registration,
    fd: RawFd,
    call: IoCall,
    drained: impl Fn(&R) -> bool,
    mut op: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    let IoCall {
        dir,
        deadline,
        nonblocking,
        reason,
    } = call;
    spend_budget();
    loop {
        let live = reg.live();
        let seen = live.map(|r| r.io.readiness());
        // Known not ready (an earlier call drained it and no event came
        // since): park first instead of paying for a syscall that would
        // only say EAGAIN.
        if let (Some(r), Some(seen)) = (live, seen) {
            if !nonblocking && can_park() && !ScheduledIo::is_ready(seen, dir) {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(timed_out(reason));
                }
                wait_on(&r.io, dir, deadline, reason);
                continue;
            }
        }
        match op() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(value) => {
                // A short stream read or write emptied the socket buffer (or
                // filled the send buffer): the next call would hit EAGAIN, so
                // forget the readiness now — tick-checked like the clear
                // after EAGAIN, so an event that came meanwhile is kept.
                if let (Some(r), Some(seen)) = (live, seen) {
                    if drained(&value) {
                        r.io.clear_drained(dir, seen);
                    }
                }
                return Ok(value);
            }
            result => return result,
        }
        if nonblocking {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(timed_out(reason));
        }
        if !can_park() {
            sys::poll_until(fd, dir, deadline)?;
            continue;
        }
        let (r, seen) = match (live, seen) {
            (Some(r), Some(seen)) => (r, Some(seen)),
            // Not registered when `seen` was read: register now. A fresh
            // registration starts with no readiness and the add reports any
            // readiness the fd has by then, so there is nothing to clear (and
            // if another waiter registered it meanwhile, not clearing costs
            // at most one more try of the syscall).
            _ => match reg.register(fd) {
                Some(r) => (r, None),
                None => {
                    // Registration failed (now or earlier), or its reactor
                    // has closed: wait like a plain thread.
                    sys::poll_until(fd, dir, deadline)?;
                    continue;
                }
            },
        };
        if let Some(seen) = seen {
            r.io.clear(dir, seen);
        }
        wait_on(&r.io, dir, deadline, reason);
    }
}

/// Publishes the caller as a waiter of `io` for `dir`, parks unless `io` is
/// ready for `dir` by then, and unpublishes. Unwinds if the fiber was
/// cancelled (with no waiter published).
pub(crate) fn wait_on(
    io: &ScheduledIo,
    dir: Direction,
    deadline: Option<Instant>,
    reason: WaitReason,
) {
    let me = Unparker::current();
    io.add_waiter(dir, me.clone());
    if !ScheduledIo::is_ready(io.readiness(), dir) {
        #[cfg(feature = "test-hooks")]
        if let Some(hook) = context::before_park_hook() {
            hook();
        }
        park::park_until(deadline, reason);
        reset_budget();
    }
    io.remove_waiter(dir, &me);
    park::check_cancel();
}
