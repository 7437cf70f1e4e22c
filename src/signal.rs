//! Unix signals as values: [`Signals`] waits for the signals it was created
//! for, on a fiber (parking it) or on a plain thread.
//!
//! ```no_run
//! use threadlet::signal::{Signals, SIGINT, SIGTERM};
//! # fn main() -> std::io::Result<()> {
//! let signals = Signals::new(&[SIGINT, SIGTERM])?;
//! for sig in &signals {
//!     println!("got signal {sig}, shutting down");
//!     break;
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # How delivery works
//! While at least one `Signals` wants a signal, threadlet's handler is
//! installed for it (`sigaction`, `SA_RESTART | SA_ONSTACK`). The handler does
//! only async-signal-safe things: it sets a per-signal pending flag and writes
//! the signal number to one process-wide self-pipe (non-blocking, close-on-exec,
//! created once), saving and restoring `errno`. So a signal sent to the
//! process arrives whichever thread the kernel runs the handler on.
//!
//! One dispatcher thread (`threadlet-signal`, started with the first
//! `Signals` and gone a moment after the last one is dropped) sleeps in
//! `poll(2)` on the pipe, drains it, and hands each signal to every live
//! `Signals` that asked for it (fan-out: two `Signals` for `SIGINT` both see
//! each `SIGINT`), waking their waiters through the park protocol. Waiting
//! therefore never blocks a worker thread and needs no runtime, and a
//! `Signals` may be waited on from any fiber or thread.
//!
//! # Semantics
//! - Like the kernel does for standard signals, arrivals of one signal that
//!   happen before the dispatcher reads the first are merged, and a signal
//!   already queued (not yet returned by `wait`) for a `Signals` is not queued
//!   twice. Distinct signals are returned in arrival order.
//! - While any `Signals` for a signal exists, that signal's previous
//!   disposition (default action, ignore, or another handler) is *replaced*,
//!   not chained; dropping the last `Signals` for it restores the previous
//!   disposition exactly.
//! - Signals that cannot be caught or must not be (SIGKILL, SIGSTOP, the
//!   synchronous fault signals SIGSEGV, SIGBUS, SIGILL, SIGFPE, the real-time
//!   signals glibc reserves for itself, numbers out of range) are rejected with
//!   `ErrorKind::InvalidInput` naming the signal and the reason.
//! - After `fork`, the child's first `Signals::new` gives it a self-pipe and
//!   a dispatcher of its own (the parent's dispatcher thread does not exist
//!   in the child, and the parent's pipe would carry the child's signals to
//!   the parent); from then on `Signals` created before the fork and kept
//!   in the child are served too.
//!
//! Protocol details (registry, flags, pipe, dispatcher lifetime) are at the
//! top of `signal/dispatch.rs`.

mod dispatch;

use std::fmt;
use std::io;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fiber::lock;
use crate::park::{self, Unparker, WaitReason};
use dispatch::Subscriber;

pub use libc::{
    SIGALRM, SIGCHLD, SIGCONT, SIGHUP, SIGINT, SIGIO, SIGPIPE, SIGPROF, SIGPWR, SIGQUIT, SIGSYS,
    SIGTERM, SIGTRAP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, SIGUSR1, SIGUSR2, SIGVTALRM, SIGWINCH,
    SIGXCPU, SIGXFSZ,
};

/// A set of signals to wait for. Each `Signals` gets its own copy of every
/// signal it asked for; see the [module docs](self) for the semantics.
/// `Send + Sync`: several fibers or threads may wait on one `Signals` (each
/// signal is returned to one of them).
pub struct Signals {
    sub: Arc<Subscriber>,
}

impl Signals {
    /// Starts catching `signals` (duplicates are ignored) and returns the set
    /// to wait on. Signals that arrive from now on are queued until waited
    /// for.
    ///
    /// # Errors
    /// `InvalidInput` for an empty list or a signal that cannot be waited for
    /// (the message names it and says why; nothing is installed then); the OS
    /// error if the self-pipe, the handler or the dispatcher thread cannot be
    /// set up.
    pub fn new(signals: &[c_int]) -> io::Result<Signals> {
        if signals.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Signals::new(&[]): no signals given, so wait() could never return; \
                 pass the signals to catch, e.g. &[SIGINT, SIGTERM]",
            ));
        }
        let mut mask = 0u128;
        for &sig in signals {
            check(sig)?;
            mask |= 1 << sig;
        }
        Ok(Signals {
            sub: dispatch::subscribe(mask)?,
        })
    }

    /// Waits for the next signal of this set and returns its number. Parks the
    /// calling fiber (or blocks the calling thread) meanwhile.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for OS errors.
    pub fn wait(&self) -> io::Result<c_int> {
        self.wait_until(None)
    }

    /// Like [`Signals::wait`], giving up after `timeout` with
    /// `ErrorKind::TimedOut`.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<c_int> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// The next signal already received, without waiting.
    pub fn try_next(&self) -> Option<c_int> {
        lock(&self.sub.state).pop()
    }

    /// An iterator over the signals already received; it ends when none is
    /// left (it never waits).
    pub fn pending(&self) -> Pending<'_> {
        Pending { signals: self }
    }

    /// An endless iterator of signals: each `next` is [`Signals::wait`]. The
    /// same as `for sig in &signals`.
    pub fn forever(&self) -> Forever<'_> {
        Forever { signals: self }
    }

    fn wait_until(&self, deadline: Option<Instant>) -> io::Result<c_int> {
        static WAITER_IDS: AtomicU64 = AtomicU64::new(0);
        let id = WAITER_IDS.fetch_add(1, Ordering::Relaxed);
        loop {
            {
                let mut st = lock(&self.sub.state);
                if let Some(sig) = st.pop() {
                    return Ok(sig);
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "Signals::wait_timeout: no signal arrived in time",
                    ));
                }
                st.waiters.push((id, Unparker::current()));
            }
            park::park_until(deadline, WaitReason::Signal);
            lock(&self.sub.state).waiters.retain(|(w, _)| *w != id);
            park::check_cancel();
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        dispatch::unsubscribe(&self.sub);
    }
}

impl fmt::Debug for Signals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let signals: Vec<c_int> = (1..dispatch::NSIG as c_int)
            .filter(|&s| self.sub.mask & (1 << s) != 0)
            .collect();
        f.debug_struct("Signals")
            .field("signals", &signals)
            .finish()
    }
}

impl<'a> IntoIterator for &'a Signals {
    type Item = c_int;
    type IntoIter = Forever<'a>;

    fn into_iter(self) -> Forever<'a> {
        self.forever()
    }
}

/// Endless iterator of signals, from [`Signals::forever`] or `&Signals`.
#[derive(Debug)]
pub struct Forever<'a> {
    signals: &'a Signals,
}

impl Iterator for Forever<'_> {
    type Item = c_int;

    fn next(&mut self) -> Option<c_int> {
        self.signals.wait().ok()
    }
}

/// Iterator over already received signals, from [`Signals::pending`].
#[derive(Debug)]
pub struct Pending<'a> {
    signals: &'a Signals,
}

impl Iterator for Pending<'_> {
    type Item = c_int;

    fn next(&mut self) -> Option<c_int> {
        self.signals.try_next()
    }
}

/// Rejects signals that cannot or must not be caught, with the reason.
fn check(sig: c_int) -> io::Result<()> {
    let invalid = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
    let max = libc::SIGRTMAX().min(dispatch::NSIG as c_int - 1);
    if sig < 1 || sig > max {
        return invalid(format!(
            "signal number {sig} is out of range: valid signals are 1..={max}; \
             use the libc::SIG* constants"
        ));
    }
    let name = signal_name(sig);
    match sig {
        libc::SIGKILL | libc::SIGSTOP => invalid(format!(
            "signal {sig} ({name}) cannot be caught: the kernel never delivers it to a \
             process; remove it from the list"
        )),
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE => invalid(format!(
            "signal {sig} ({name}) is raised by a faulting instruction and must be handled \
             where it happens, not waited for (threadlet also uses SIGSEGV/SIGBUS to report \
             fiber stack overflows); remove it from the list"
        )),
        _ if sig > libc::SIGSYS && sig < libc::SIGRTMIN() => invalid(format!(
            "signal {sig} is reserved by the C library for its own threads; real-time \
             signals for applications are SIGRTMIN ({}) ..= SIGRTMAX ({max})",
            libc::SIGRTMIN()
        )),
        _ => Ok(()),
    }
}

/// A readable name for error messages.
fn signal_name(sig: c_int) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("SIGRTMIN+{}", sig - libc::SIGRTMIN()),
    };
    name.to_owned()
}
