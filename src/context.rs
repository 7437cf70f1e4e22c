//! Per-thread "where am I": the fiber running on this thread (if any) and the
//! worker this thread is (if any).
//!
//! Who touches what: only the worker loop writes these cells, immediately
//! around resuming a fiber (`CURRENT_FIBER`) and once at worker start/exit
//! (`WORKER`). Everyone else only reads them. Both are plain `Cell`s of raw
//! pointers, const-initialised and without destructors, so reading them is
//! cheap and also safe from a signal handler.
//!
//! Validity: `CURRENT_FIBER` points at the header of the fiber whose stack the
//! thread is executing; the worker holds a strong reference to that fiber for
//! the whole resume, so the pointer is valid whenever it is non-null and read
//! from this thread. `WORKER` is opaque here: only the scheduler knows its type
//! and lifetime (it points into the worker's own stack frame for as long as
//! the worker loop runs). `POLLER` is opaque too: the worker's own poller
//! (`reactor::Poller`, from `Arc::as_ptr`), set and cleared with `WORKER`,
//! while the worker holds a strong reference to it.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Arc;

use crate::fiber::header::Header;

thread_local! {
    static CURRENT_FIBER: Cell<*const Header> = const { Cell::new(std::ptr::null()) };
    static WORKER: Cell<*const c_void> = const { Cell::new(std::ptr::null()) };
    static POLLER: Cell<*const c_void> = const { Cell::new(std::ptr::null()) };
}

/// The header of the fiber running on this thread, if any.
#[inline]
pub(crate) fn current_fiber_ptr() -> *const Header {
    CURRENT_FIBER.with(|c| c.get())
}

/// Runs `f` with the current fiber's header, or `None` on a plain thread.
#[inline]
pub(crate) fn with_current_fiber<R>(f: impl FnOnce(Option<&Header>) -> R) -> R {
    let ptr = current_fiber_ptr();
    // SAFETY: non-null CURRENT_FIBER is valid while this thread runs that
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
    CURRENT_FIBER.with(|c| c.set(ptr));
}

/// The opaque worker pointer of this thread (null on other threads).
#[inline]
pub(crate) fn worker_ptr() -> *const c_void {
    WORKER.with(|c| c.get())
}

/// Worker side: marks this thread as a worker (or not, with null).
pub(crate) fn set_worker_ptr(ptr: *const c_void) {
    WORKER.with(|c| c.set(ptr));
}

/// The opaque poller pointer of this worker thread (null on other threads).
#[inline]
pub(crate) fn poller_ptr() -> *const c_void {
    POLLER.with(|c| c.get())
}

/// Worker side: publishes this worker's poller (or null when it exits).
pub(crate) fn set_poller_ptr(ptr: *const c_void) {
    POLLER.with(|c| c.set(ptr));
}
