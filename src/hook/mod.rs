//! Syscall hooks: threadlet defines the libc entry points that std and C
//! libraries call for socket IO, sleeping and name resolution, so that code
//! written for threads — `std::net`, `std::thread::sleep`, `ToSocketAddrs`,
//! and every crate built on them — parks the calling fiber instead of
//! blocking its worker. Cargo feature `hook` (on by default), glibc Linux
//! only (the module is not compiled elsewhere).
//!
//! # Who takes which path
//! Every hook first asks "am I on a fiber?" ([`on_fiber`]): a non-null
//! current-fiber pointer (a const-initialised thread-local `Cell`) and not
//! unwinding (`park::unwinding()`: `thread::panicking()`, or the fiber's own
//! flag while it runs nested on an unwinding sibling, park.rs "Unwinding").
//! Off a fiber — plain threads, the blocking pool, a
//! worker between fibers, a signal handler on such a thread, a fiber that is
//! unwinding — the hook makes exactly the real call (a raw `syscall`, or the
//! next definition found with `dlsym(RTLD_NEXT)`), errno and all, with no
//! allocation and no lock. The one exception is bookkeeping for an fd a fiber
//! registered (see below): `close`, `dup2`/`dup3` onto it, or switching it to
//! nonblocking, first deregisters it (a lock, once).
//!
//! # The per-fd table (`fd.rs`)
//! A lock-free two-level array indexed by fd number: chunks of 4096 slots,
//! the first one static, the others allocated the first time a fiber meets
//! an fd in their range. One slot:
//! ```text
//! word:  kind (2 bits: UNKNOWN, OTHER = not a socket, STREAM, DGRAM)
//!        | REGISTERED | TOGGLE (lock bit) | toggle epoch (counts 0, 1, 2...)
//! reg:   Mutex<Option<Arc<Registration>>>   -- the fd's reactor registration
//! ```
//! States of one fd number and their transitions:
//! ```text
//! UNKNOWN --first hooked call on a fiber: fstat + SO_TYPE--> OTHER | STREAM | DGRAM
//! STREAM/DGRAM --first call that must wait--> + REGISTERED (reg = Some)
//! any --close, dup2/dup3 onto it, a new fd at that number (socket, accept,
//!       dup), F_SETFL O_NONBLOCK, FIONBIO on--> UNKNOWN (deregistered first)
//! any --a socket call answers ENOTSOCK (the fd was reused behind our back)--> UNKNOWN
//! ```
//! Who touches what: `kind` is written by whoever classifies (any fiber;
//! two racing classifiers write the same value); `REGISTERED` and `reg` change
//! only under the `reg` mutex; `TOGGLE` is a spin bit held for the three
//! syscalls of a toggled `accept`/`connect` (never across a park); the epoch
//! is bumped when the bit is taken and again when it is released, so it is
//! odd exactly while a toggle is in progress.
//!
//! # What a fiber's call does on a socket the caller sees as blocking
//! The kernel's blocking flag is never changed for good: threadlet does not
//! set `O_NONBLOCK` behind the user's back, so `fcntl(F_GETFL)`, `dup`s,
//! children after `fork` and other processes sharing the socket all see what
//! the user set.
//! - No `setsockopt` hook: the timeouts are read from the kernel
//!   (`getsockopt`) when a call has to wait, so they are right for every dup
//!   of the socket and however they were set.
//! - Data calls (`read`, `write`, `readv`, `writev`, `recv*`, `send*`) add
//!   `MSG_DONTWAIT` (a per-call nonblocking flag; `read` becomes `recvfrom`,
//!   `readv` becomes `recvmsg`, which are the same call on a socket). On
//!   `EAGAIN`, `F_GETFL` tells whether the *user* made the socket
//!   nonblocking: then `EAGAIN` is the answer. Otherwise the fiber parks on
//!   the fd's registration (`io_loop`, the same wait every threadlet socket
//!   uses) with the deadline of `SO_RCVTIMEO`/`SO_SNDTIMEO` read from the
//!   kernel, and an expired deadline is `EAGAIN`, as the kernel says. A
//!   blocking send on a stream socket sends everything (partial sends are
//!   continued), and `MSG_WAITALL` receives everything, as the kernel does.
//! - `accept`/`connect` have no per-call flag. They *toggle*: under the slot's
//!   `TOGGLE` bit they set `O_NONBLOCK`, make the call, and restore the flags
//!   at once (three syscalls, never a park). `connect` then parks until the
//!   socket is writable and reports `SO_ERROR` (`ECONNREFUSED`...), or
//!   `EINPROGRESS` when `SO_SNDTIMEO` expires (the kernel's answer). A plain
//!   thread that shares the socket and gets `EAGAIN` during a toggle sees the
//!   odd (or changed) epoch, waits in `poll(2)` and retries, so it still sees
//!   a blocking call.
//! - `poll` (up to 64 fds) on a fiber builds a temporary epoll set of the fds
//!   and parks until that set is readable: any mix of sockets, pipes and
//!   ttys.
//! - Sleeps (`nanosleep`, `clock_nanosleep`, `usleep`, `sleep`) park on the
//!   timer. `getaddrinfo` runs on the blocking pool (`unblock`); the list it
//!   returns is glibc's own, so the real `freeaddrinfo` frees it.
//! - Non-sockets (files, pipes, ttys, eventfds) and fds 0-2 take the real call:
//!   their blocking flag is shared with other processes, so it is not ours to
//!   change (the monitor reports a worker they hold).
//!
//! # Cost
//! Off a fiber: one thread-local load and a branch before the raw syscall
//! (no cancellation-point bookkeeping, so a hooked `read`/`write` is as fast
//! as the raw syscall and slightly faster than glibc's own, `benches/hook.rs`).
//! On a fiber, a call that must wait pays, besides the park, an `F_GETFL`
//! and a `getsockopt`; caching the flags and timeouts per fd (dups make that
//! subtle) would remove them. A registered fd whose readiness says "nothing
//! since the last `EAGAIN`" skips the syscall, and an `EAGAIN` clears the
//! readiness it was tried under, so `io_loop` parks without a second try.
//!
//! # Cancellation
//! A hook must not unwind: its caller is C, or Rust code that imported it as
//! `extern "C"`. A fiber cancelled while parked in a hook therefore gets an
//! error instead — `ECANCELED` for IO, connect, accept and poll, `EAI_SYSTEM`
//! with `ECANCELED` for getaddrinfo, an early return for sleeps — and unwinds
//! at its next threadlet call.
//!
//! # Linking
//! The definitions live in an rlib; a linker drops archive members nobody
//! references, so [`link`] (called by every runtime at start) references
//! each hook. Static linking against glibc is untested (libc.a defines some of
//! these names as strong symbols: expect duplicate-symbol errors; build with
//! `default-features = false`). On musl and non-Linux targets the hooks are
//! not compiled at all, and blocking calls block the worker as before. Code
//! that makes raw syscalls itself (rustix's linux_raw backend, io_uring)
//! bypasses libc and so the hooks.

mod dns;
mod fd;
mod io;
mod sleep;
mod sock;
mod sys;

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use crate::context;
use crate::fiber::Cancelled;

/// Is the caller a fiber that may park? (Module docs: "Who takes which path".)
#[inline(always)]
pub(crate) fn on_fiber() -> bool {
    !context::current_fiber_ptr().is_null() && !crate::park::unwinding()
}

/// Has the calling fiber been cancelled?
fn cancelled() -> bool {
    context::with_current_fiber(|f| f.is_some_and(|f| f.is_cancelled()))
}

/// Sets the calling thread's errno.
#[inline]
fn set_errno(e: libc::c_int) {
    // SAFETY: `__errno_location` returns the calling thread's errno slot,
    // valid for the thread's lifetime.
    unsafe { *libc::__errno_location() = e }
}

/// The calling thread's errno.
#[inline]
fn errno() -> libc::c_int {
    // SAFETY: as in `set_errno`.
    unsafe { *libc::__errno_location() }
}

/// Runs the fiber path of a hook, turning the `Cancelled` unwind of a park
/// into `Err(())` (a hook must not unwind, see "Cancellation"). Any other
/// panic keeps unwinding, and the `extern "C"` boundary turns it into an
/// abort with the panic's message, as for any panic in an `extern "C"` fn.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, ()> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Ok(r),
        Err(payload) if is_cancel(&*payload) => Err(()),
        Err(payload) => panic::resume_unwind(payload),
    }
}

fn is_cancel(payload: &(dyn Any + Send)) -> bool {
    payload.is::<Cancelled>()
}

/// Keeps every hook in the final binary: called by each runtime at start.
/// (An rlib's object files reach the link only when something references
/// them, and std's own references to `read` & co. come later on the linker's
/// command line than this crate, so without this the hooks would be dropped
/// and libc's definitions used.) Also resolves the `dlsym` lookups now, so
/// the first hooked call off a fiber never allocates.
#[inline(never)]
pub(crate) fn link() {
    let hooks: &[*const ()] = &[
        io::read as *const (),
        io::write as *const (),
        io::readv as *const (),
        io::writev as *const (),
        io::recv as *const (),
        io::recvfrom as *const (),
        io::recvmsg as *const (),
        io::send as *const (),
        io::sendto as *const (),
        io::sendmsg as *const (),
        sock::connect as *const (),
        sock::accept as *const (),
        sock::accept4 as *const (),
        sock::socket as *const (),
        sock::socketpair as *const (),
        sock::close as *const (),
        sock::dup as *const (),
        sock::dup2 as *const (),
        sock::dup3 as *const (),
        sock::fcntl as *const (),
        sock::fcntl64 as *const (),
        sock::ioctl as *const (),
        sleep::poll as *const (),
        sleep::nanosleep as *const (),
        sleep::clock_nanosleep as *const (),
        sleep::usleep as *const (),
        sleep::sleep as *const (),
        dns::getaddrinfo as *const (),
    ];
    std::hint::black_box(hooks);
    dns::resolve_real();
}
