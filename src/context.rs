//! The runtime's per-thread state, all of it in one place: the fiber running
//! on this thread (if any), the worker this thread is (if any) and its
//! poller, the IO test hook, and the select rng. (The op budget that used to
//! be a thread-local keyed by fiber address is per fiber, in the header.)
//!
//! Who touches what: only the worker loop writes `fiber`, immediately around
//! resuming a fiber, and `worker`/`poller`, once at worker start and exit.
//! Everyone else only reads them. `before_park` (feature `test-hooks`) is written by
//! the test hook `io::__set_before_park_hook` and read by the IO wait (reactor/
//! registration.rs); `rng` is read and written by `select!`. Every cell is
//! a plain `Cell` in one const-initialised thread-local without a destructor,
//! so reading it is cheap and never allocates.
//!
//! Validity: `fiber` points at the header of the fiber whose stack the thread
//! is executing; the worker holds a strong reference to that fiber for the
//! whole resume, so the pointer is valid whenever it is non-null and read
//! from this thread. `worker` is opaque here: only the scheduler knows its
//! type and lifetime (it points into the worker's own stack frame for as
//! long as the worker loop runs). `poller` is opaque too: the worker's own
//! poller (`reactor::Poller`, from `Arc::as_ptr`), set and cleared with
//! `worker`, while the worker holds a strong reference to it.
//!
//! What stays apart, and why: the stack-overflow handler's per-thread slots
//! in `stack.rs` (the running fiber's `OverflowInfo` and the alternate
//! signal stack). They are read from a SIGSEGV handler, which may run at any
//! instruction, so they must be async-signal-safe to reach: a bare
//! const-initialised thread-local in the same file as the handler, touched
//! with a compiler fence, nothing the handler reaches through other modules.
//! The alternate stack also needs a destructor (unmapped at thread exit),
//! which this thread-local must not have. And `stack.rs` compiles on its own
//! (`tests/stack_overflow.rs` includes it by path), so it cannot import this
//! file.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Arc;

use crate::fiber::header::Header;

/// Every piece of the runtime's per-thread state (module docs).
struct Context {
    fiber: Cell<*const Header>,
    worker: Cell<*const c_void>,
    poller: Cell<*const c_void>,
    #[cfg(feature = "test-hooks")]
    before_park: Cell<Option<fn()>>,
    rng: Cell<u64>,
}

thread_local! {
    static CONTEXT: Context = const {
        Context {
            fiber: Cell::new(std::ptr::null()),
            worker: Cell::new(std::ptr::null()),
            poller: Cell::new(std::ptr::null()),
            #[cfg(feature = "test-hooks")]
            before_park: Cell::new(None),
            rng: Cell::new(0),
        }
    };
}

/// The header of the fiber running on this thread, if any.
#[inline]
pub(crate) fn current_fiber_ptr() -> *const Header {
    CONTEXT.with(|c| c.fiber.get())
}

/// Runs `f` with the current fiber's header, or `None` on a plain thread.
#[inline]
pub(crate) fn with_current_fiber<R>(f: impl FnOnce(Option<&Header>) -> R) -> R {
    let ptr = current_fiber_ptr();
    // SAFETY: a non-null `fiber` is valid while this thread runs that
    // fiber (module docs); the reference does not escape `f`.
    f(unsafe { ptr.as_ref() })
}

/// A new strong reference to the current fiber's header.
pub(crate) fn current_fiber() -> Option<Arc<Header>> {
    let ptr = current_fiber_ptr();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the pointer came from `Arc::as_ptr` of a header the worker keeps
    // alive for the whole resume; adding one count and taking it as a new Arc
    // keeps the counts balanced.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

/// Worker side: publishes the fiber about to run on this thread (or null).
pub(crate) fn set_current_fiber(ptr: *const Header) {
    CONTEXT.with(|c| c.fiber.set(ptr));
}

/// The opaque worker pointer of this thread (null on other threads).
#[inline]
pub(crate) fn worker_ptr() -> *const c_void {
    CONTEXT.with(|c| c.worker.get())
}

/// Worker side: marks this thread as a worker (or not, with null).
pub(crate) fn set_worker_ptr(ptr: *const c_void) {
    CONTEXT.with(|c| c.worker.set(ptr));
}

/// The opaque poller pointer of this worker thread (null on other threads).
#[inline]
pub(crate) fn poller_ptr() -> *const c_void {
    CONTEXT.with(|c| c.poller.get())
}

/// Worker side: publishes this worker's poller (or null when it exits).
pub(crate) fn set_poller_ptr(ptr: *const c_void) {
    CONTEXT.with(|c| c.poller.set(ptr));
}

/// The hook run between publishing an IO waiter and parking (tests only).
#[cfg(feature = "test-hooks")]
#[inline]
pub(crate) fn before_park_hook() -> Option<fn()> {
    CONTEXT.with(|c| c.before_park.get())
}

/// Installs (or removes) the hook run between publishing an IO waiter and
/// parking, for IO waits on the calling thread (on a fiber: on every fiber
/// of its worker).
#[cfg(feature = "test-hooks")]
pub(crate) fn set_before_park_hook(hook: Option<fn()>) {
    CONTEXT.with(|c| c.before_park.set(hook));
}

/// A cheap per-thread random number in `0..n` (xorshift), for `select!`'s
/// fair start index. `n` must not be 0.
pub(crate) fn random_below(n: usize) -> usize {
    CONTEXT.with(|c| {
        let mut x = c.rng.get();
        if x == 0 {
            // Seed from std's per-process random hash keys.
            use std::hash::{BuildHasher, Hasher};
            x = std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
                | 1;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.rng.set(x);
        (x % n as u64) as usize
    })
}
