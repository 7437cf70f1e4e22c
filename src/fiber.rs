//! Fibers: spawning, joining, cancelling, and what a fiber does about
//! itself ([`yield_now`], [`sleep`], [`park`], [`current`]).
//!
//! The functions mirror `std::thread`: [`spawn`] ~ `thread::spawn`,
//! [`Builder`] ~ `thread::Builder`, [`JoinHandle`] ~ `thread::JoinHandle`,
//! [`scope`] ~ `thread::scope`, [`park`]/[`Fiber::unpark`] ~
//! `thread::park`/`Thread::unpark`. Called on a plain thread, `yield_now`,
//! `sleep` and `park` behave like their std twins.

// Internals: the fiber header and the types the lower layers share live in
// `fiber/header.rs` (with its table of who touches which field); this file is
// the public API over it, plus the spawned task that carries a fiber's
// closure and join result.

mod builder;
pub(crate) mod header;
mod local;
mod scope;

pub(crate) use builder::current_executor;
pub use builder::Builder;
pub use header::{Cancelled, FiberId};
pub(crate) use header::{Executor, FiberRef, Header, RunTask, Suspend};
pub use local::LocalKey;
pub use scope::{scope, Scope, ScopedJoinHandle};

use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::context;
use crate::park::{self, Completion, Interrupted, WaitReason};

/// A handle to a fiber, like `std::thread::Thread`.
#[derive(Clone)]
pub struct Fiber {
    inner: FiberRef,
}

impl Fiber {
    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.inner.id()
    }

    /// The fiber's name, if it was given one with [`Builder::name`].
    pub fn name(&self) -> Option<&str> {
        self.inner.name()
    }

    /// Wakes the fiber if it is blocked in [`park`], or makes its next `park`
    /// return at once (std's token semantics).
    pub fn unpark(&self) {
        park::unpark_fiber(&self.inner);
    }
}

impl fmt::Debug for Fiber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// A spawned closure and the slot its result goes to, in one allocation.
/// The fiber sees it as `Arc<dyn RunTask>`, the `JoinHandle` as
/// `Arc<Task<T, dyn Body>>` (only its packet), so neither needs `F`'s type.
struct Task<T, F: ?Sized> {
    /// Where the fiber leaves its result for `join` (park/completion.rs).
    packet: Completion<thread::Result<T>>,
    body: BodyCell<F>,
}

/// Marker for the type-erased closure inside a [`Task`].
trait Body {}
impl<F> Body for F {}

/// The closure, until the fiber takes it out to run it.
struct BodyCell<F: ?Sized> {
    taken: Cell<bool>,
    f: UnsafeCell<ManuallyDrop<F>>,
}

// SAFETY: the closure is touched only by the fiber's runner: taken out (and
// run or dropped) once in `RunTask::run` on the fiber, or dropped by `Drop`
// when the fiber never ran, which needs exclusive access. `F: Send` for every
// fiber that can change threads before its first run; a `spawn_local` closure
// never leaves its worker. The same rule as for `Header`'s pending state.
unsafe impl<F: ?Sized> Send for BodyCell<F> {}
// SAFETY: as for Send: shared references never touch `f` or `taken` except
// on the one thread that runs the fiber.
unsafe impl<F: ?Sized> Sync for BodyCell<F> {}

impl<F: ?Sized> Drop for BodyCell<F> {
    fn drop(&mut self) {
        if !self.taken.get() {
            // SAFETY: not taken, so still initialised; dropped exactly once.
            unsafe { ManuallyDrop::drop(self.f.get_mut()) }
        }
    }
}

impl<T, F: FnOnce() -> T> RunTask for Task<T, F> {
    fn run(&self, header: &Header) {
        assert!(!self.body.taken.replace(true), "fiber body ran twice");
        // SAFETY: `taken` was false, so `f` is initialised and this is its
        // only taker; only the fiber's runner gets here (see `BodyCell`).
        let f = unsafe { ManuallyDrop::take(&mut *self.body.f.get()) };
        let result = if header.is_cancelled() {
            // Cancelled (or shut down) before it ever ran: drop the closure
            // here, on the fiber, so destructors that block may park.
            let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
            Err(dropped.err().unwrap_or_else(|| Box::new(Cancelled)))
        } else {
            panic::catch_unwind(AssertUnwindSafe(f))
        };
        // Fiber-locals are destroyed on the fiber, like thread-locals at exit.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| {
            header::Locals::clear_from(
                || header.locals_ptr(),
                || {
                    format!(
                        "fiber '{}' (id {})",
                        header.name().unwrap_or("<unnamed>"),
                        header.id().as_u64()
                    )
                },
            )
        }));
        // Count it finished before `join` can return, so `stats()` and
        // `dump()` taken after a join never still show it.
        header.set_finished();
        header.exec().fiber_finished();
        self.packet.set(result);
    }
}

impl<T, F: FnOnce() -> T> Task<T, F> {
    /// The fiber will never run (its runtime is gone): drop the closure now,
    /// on the spawning thread, and complete the join with `Cancelled`.
    fn refuse(&self) {
        if self.body.taken.replace(true) {
            return;
        }
        // SAFETY: `taken` was false, so `f` is initialised; the fiber was
        // never queued, so this thread is its only taker.
        let f = unsafe { ManuallyDrop::take(&mut *self.body.f.get()) };
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(f)));
        self.packet
            .set(Err(dropped.err().unwrap_or_else(|| Box::new(Cancelled))));
    }
}

/// Locks an internal mutex, ignoring poison (the data is always consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An owned permission to join a fiber, like `std::thread::JoinHandle`.
/// Dropping it detaches the fiber.
pub struct JoinHandle<T> {
    fiber: Fiber,
    task: Arc<Task<T, dyn Body>>,
}

impl<T> JoinHandle<T> {
    /// Waits for the fiber to finish. `Err` holds its panic payload, or
    /// [`Cancelled`] if it was cancelled. Parks when called on a fiber, blocks
    /// the thread otherwise.
    ///
    /// If the joining fiber is cancelled while it waits, it unwinds (with
    /// [`Cancelled`]) and this handle is dropped, which detaches the fiber
    /// it was joining, as dropping a handle always does.
    ///
    /// # Panics
    /// When a fiber joins its own handle (it would wait for its own end
    /// forever; std reports `EDEADLK` for a thread that does this).
    pub fn join(self) -> thread::Result<T> {
        if std::ptr::eq(context::current_fiber_ptr(), Arc::as_ptr(&self.fiber.inner)) {
            let name = self.fiber.name().unwrap_or("<unnamed>");
            panic!(
                "fiber '{name}' ({:?}) called join() on its own JoinHandle, which would wait \
                 forever for its own end (a deadlock, EDEADLK for std threads); return the value \
                 from the fiber instead, or join the handle from another fiber or thread",
                self.fiber.id()
            );
        }
        match self.task.packet.wait(WaitReason::Join) {
            Ok(result) => result,
            Err(_) => park::unwind_cancelled(),
        }
    }

    /// The fiber's handle.
    pub fn fiber(&self) -> &Fiber {
        &self.fiber
    }

    /// Waits for the fiber's result until `deadline`, like [`JoinHandle::join`]
    /// but keeping the handle when interrupted. `cancellable: false` waits
    /// even if the calling fiber is cancelled.
    pub(crate) fn join_until(
        &self,
        deadline: Option<Instant>,
        cancellable: bool,
    ) -> Result<thread::Result<T>, Interrupted> {
        match cancellable {
            true => self.task.packet.wait_until(deadline, WaitReason::Join),
            false => self
                .task
                .packet
                .wait_uncancellable(deadline, WaitReason::Join),
        }
    }

    /// Has the fiber finished (returned, panicked or been cancelled)?
    pub fn is_finished(&self) -> bool {
        self.task.packet.is_set()
    }

    /// Cancels the fiber: it unwinds at its current or next park point (every
    /// blocking threadlet call, `yield_now` and `sleep`), running its
    /// destructors; `join` then returns `Err` holding [`Cancelled`]. A fiber
    /// that never blocks is not interrupted.
    ///
    /// Cancellation unwinds like a panic, and it poisons like one: a
    /// [`sync::Mutex`](crate::sync::Mutex) or
    /// [`sync::RwLock`](crate::sync::RwLock) (or a std lock) whose guard the
    /// fiber held when it was cancelled is poisoned, because the critical
    /// section stopped at an arbitrary blocking call inside it and its data
    /// may be half updated. This is std's rule for an interrupted critical
    /// section, kept on purpose; a caller that knows the data is still
    /// consistent takes it with `PoisonError::into_inner` or `clear_poison`.
    /// A guard released before the cancellation is not affected.
    pub fn cancel(&self) {
        self.fiber.inner.request_cancel();
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("fiber", &self.fiber)
            .finish_non_exhaustive()
    }
}

/// Spawns a new fiber on the current runtime, like `std::thread::spawn`.
///
/// # Panics
/// Outside a threadlet runtime (use [`crate::run`] to start one), or if no
/// stack can be mapped for it (use [`Builder::spawn`] to get that as an error).
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let exec = current_executor("threadlet::spawn");
    Builder::new()
        .spawn_on(exec, f)
        .unwrap_or_else(|e| panic!("threadlet::spawn failed: {e}"))
}

/// Spawns a fiber pinned to the current worker thread from birth, so `f`
/// need not be `Send` (like tokio's `LocalSet`). It never runs on another
/// thread, and neither does its result.
///
/// # Panics
/// When not called from a fiber, or if no stack can be mapped for it.
pub fn spawn_local<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_local(f)
        .unwrap_or_else(|e| panic!("threadlet::fiber::spawn_local failed: {e}"))
}

/// The handle of the calling fiber.
///
/// # Panics
/// When not called from a fiber.
pub fn current() -> Fiber {
    try_current().expect(
        "fiber::current() called outside a fiber; run your code with `threadlet::run(|| ...)`",
    )
}

/// The handle of the calling fiber, or `None` on a plain thread.
pub fn try_current() -> Option<Fiber> {
    context::current_fiber().map(|inner| Fiber { inner })
}

/// Lets the other runnable fibers of this worker run, then continues. On a
/// plain thread this is `std::thread::yield_now`.
pub fn yield_now() {
    let ptr = context::current_fiber_ptr();
    // SAFETY: current fiber pointer is valid while it runs (context.rs).
    if ptr.is_null() || unsafe { &*ptr }.is_unwinding() {
        thread::yield_now();
        return;
    }
    // SAFETY: current fiber pointer is valid while it runs (context.rs).
    unsafe { &*ptr }.suspend(Suspend::Yield);
    park::check_cancel();
}

/// Puts the calling fiber (or thread) to sleep for at least `dur`.
pub fn sleep(dur: Duration) {
    match Instant::now().checked_add(dur) {
        Some(deadline) => sleep_until(deadline),
        None => loop {
            park::park(WaitReason::Sleeping);
            park::check_cancel();
        },
    }
}

/// Puts the calling fiber (or thread) to sleep until `deadline`.
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        park::park_until(Some(deadline), WaitReason::Sleeping);
        park::check_cancel();
    }
}

/// Blocks the calling fiber until its [`Fiber::unpark`] is called (or
/// spuriously), with std's token semantics. On a plain thread this is
/// `std::thread::park`.
pub fn park() {
    park::park(WaitReason::Parked);
    park::check_cancel();
}

/// Like [`park`] with a time limit.
pub fn park_timeout(dur: Duration) {
    let deadline = Instant::now().checked_add(dur);
    park::park_until(deadline, WaitReason::Parked);
    park::check_cancel();
}
