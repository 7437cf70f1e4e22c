//! Fibers: spawning, joining, cancelling, and what a fiber does about
//! itself ([`yield_now`], [`sleep`], [`park`], [`current`]).
//!
//! The functions mirror `std::thread`: [`spawn`] ~ `thread::spawn`,
//! [`Builder`] ~ `thread::Builder`, [`JoinHandle`] ~ `thread::JoinHandle`,
//! [`scope`] ~ `thread::scope`, [`park`]/[`Fiber::unpark`] ~
//! `thread::park`/`Thread::unpark`. Called on a plain thread, `yield_now`,
//! `sleep` and `park` behave like their std twins.

// Internals. A fiber is a corosensei coroutine on a `FiberStack` plus a
// `Header` owned by an `Arc`, referenced by run queues, wait lists, timers
// and its `JoinHandle`. Who touches what:
// - `run`, `yielder`, `timer`, `locals`, `overflow`: only
//   the thread that runs the
//   fiber (its home worker once started; before that, the single worker that
//   popped it from a queue). The scheduler guarantees one runner at a time.
// - `park`, `cancel`, `finished`, `home`, `reason`: atomics, any thread.
// - `name`, `id`, `exec`, `overflow`: immutable after spawn.

mod builder;
mod local;
mod scope;

pub(crate) use builder::current_executor;
pub use builder::Builder;
pub use local::LocalKey;
pub use scope::{scope, Scope, ScopedJoinHandle};

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::num::NonZeroU64;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, Yielder};

use crate::context;
use crate::park::{self, state::ParkState, Completion, Interrupted};
use crate::stack::{FiberStack, OverflowInfo};

/// A strong reference to a fiber's header.
pub(crate) type FiberRef = Arc<Header>;

/// Why a fiber handed control back to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspend {
    /// `yield_now`: run again after the other runnable fibers.
    Yield,
    /// `park`: commit the park (park.rs), then wait for a wake.
    Park,
}

/// The coroutine type of every fiber.
pub(crate) type Coro = Coroutine<(), Suspend, (), FiberStack>;

/// A fiber's run state (home worker only, see the module notes).
enum Run {
    /// Spawned, not started: the stack reserved for it at spawn (so that
    /// running out of mappings is an error at spawn, not later) and its task,
    /// type-erased. Nothing touches the stack before the first run.
    Pending {
        stack: FiberStack,
        task: Arc<dyn RunTask>,
    },
    /// Started: the coroutine, which owns the stack.
    Started(Coro),
    /// Finished; the stack went back to the pool.
    Done,
}

/// A spawned task's body, type-erased so the header need not be generic.
trait RunTask {
    /// Runs the closure (once) on the fiber and publishes its result.
    fn run(&self, header: &Header);
}

/// What the layers below the scheduler need from it. Implemented by the
/// scheduler; fibers hold it as `Arc<dyn Executor>` so that `fiber` and `park`
/// never import the scheduler.
pub(crate) trait Executor: Send + Sync + 'static {
    /// A parked fiber was woken: make it runnable on its home worker.
    fn wake(&self, fiber: FiberRef);
    /// Wake the OS thread of worker `home` (a fiber waits there in place).
    fn unpark_worker_thread(&self, home: usize);
    /// Called by a fiber blocking its worker in place while it unwinds
    /// (`waiting`, the current fiber): run one runnable *cancelled* fiber of
    /// this worker, nested on the current stack (park.rs, "Unwinding").
    /// `false` if there was none.
    fn run_cancelled(&self, waiting: &Header) -> bool;
    /// The runtime's stall threshold (how long a worker may be held before
    /// it is reported).
    fn stall_threshold(&self) -> Duration;
    /// Queue a new fiber. `local`: pin it to the calling worker. `false`:
    /// refused, the runtime has shut down (its workers are gone or exiting
    /// and will run nothing more); the fiber was not queued.
    fn submit(&self, fiber: FiberRef, local: bool) -> bool;
    /// A stack of `size` bytes (`None`: the runtime's default size).
    fn alloc_stack(&self, size: Option<usize>) -> io::Result<FiberStack>;
    /// Arm the current fiber's timer (called on its home worker only).
    fn add_timer(&self, deadline: Instant, fiber: &Header);
    /// Disarm the current fiber's timer if still armed (home worker only).
    fn cancel_timer(&self, fiber: &Header);
    /// A fiber's body returned (called on the fiber, before its join
    /// result is published).
    fn fiber_finished(&self);
    /// The executor as `Any`, so the runtime layer can recover its type.
    fn as_any(&self) -> &dyn Any;
}

/// Marker for "not started yet" in `Header::home`.
const NO_HOME: usize = usize::MAX;

/// Everything a fiber is, besides its stack contents.
pub(crate) struct Header {
    id: FiberId,
    name: Option<Box<str>>,
    /// The park state word (park.rs).
    pub(crate) park: ParkState,
    cancel: AtomicBool,
    /// Set when its body has returned (just before `join` can see it).
    finished: AtomicBool,
    /// The runtime that runs this fiber.
    pub(crate) exec: Arc<dyn Executor>,
    home: AtomicUsize,
    reason: AtomicPtr<&'static str>,
    yielder: Cell<*const Yielder<(), Suspend>>,
    run: UnsafeCell<Run>,
    /// Sequence number of the armed timer, 0 if none (home worker only).
    pub(crate) timer: Cell<u64>,
    /// Set while the fiber runs nested on the stack of a sibling that is
    /// unwinding (park.rs, "Unwinding"): `thread::panicking()` then speaks
    /// for that sibling, not for this fiber.
    nested: Cell<bool>,
    /// Valgrind's id for the stack the fiber runs on (0: none, or not under
    /// valgrind); registered at start, deregistered when the stack goes.
    valgrind_stack: Cell<usize>,
    /// Set by `check_cancel` as it starts unwinding this fiber; what tells a
    /// nested fiber that it is unwinding itself.
    cancel_unwinding: Cell<bool>,
    locals: UnsafeCell<local::Locals>,
    /// Written once by `start` (before the fiber ever runs), then read by
    /// the overflow handler on the fiber's thread.
    overflow: UnsafeCell<OverflowInfo>,
    /// Index in the home worker's fiber registry (guarded by its mutex).
    pub(crate) slot: AtomicUsize,
    /// Debug builds: set while some thread runs the fiber, to catch a double
    /// resume (RELIABILITY row 2) the moment it would happen.
    #[cfg(debug_assertions)]
    running_on: AtomicU64,
}

// SAFETY: the non-Sync fields (`yielder`, `run`, `timer`, `nested`,
// `valgrind_stack`,
// `cancel_unwinding`, `locals`, `overflow`) are only touched by the one thread that currently runs the
// fiber (module docs): the scheduler hands a fiber to one worker at a time and
// never moves a started fiber to another thread. Before the first run `run`
// holds only the reserved stack and the task with the spawned closure, which
// is `Send` (or, for `spawn_local`, never leaves its thread). The rest are
// atomics or immutable.
unsafe impl Send for Header {}
// SAFETY: as for Send: shared access from other threads only reads immutable
// fields or atomics.
unsafe impl Sync for Header {}

impl Header {
    /// The fiber's id.
    pub(crate) fn id(&self) -> FiberId {
        self.id
    }

    /// The fiber's name.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Worker index that runs it (`usize::MAX` before its first run).
    pub(crate) fn home(&self) -> usize {
        self.home.load(Ordering::Acquire)
    }

    /// Scheduler: records the worker on the first run.
    pub(crate) fn set_home(&self, index: usize) {
        self.home.store(index, Ordering::Release);
    }

    /// Has the fiber run at least once?
    pub(crate) fn started(&self) -> bool {
        self.home() != NO_HOME
    }

    /// Has its body returned? (It may still be unwinding off its stack.)
    pub(crate) fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// Has `cancel` been requested?
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }

    /// Requests cancellation and wakes the fiber so it notices.
    pub(crate) fn request_cancel(self: &Arc<Self>) {
        self.cancel.store(true, Ordering::Release);
        park::unpark_fiber(self);
    }

    /// Marks the fiber cancelled without waking it (it is about to run).
    pub(crate) fn request_cancel_quiet(&self) {
        self.cancel.store(true, Ordering::Release);
    }

    /// Is this fiber unwinding (a panic or a cancellation)? Outside nesting
    /// that is `thread::panicking()`, exact because an unwinding fiber never
    /// switches stacks. A fiber resumed nested on an unwinding sibling's
    /// stack sees that sibling's panic in `thread::panicking()`, so it is
    /// unwinding only once `check_cancel` has started its own unwind (it was
    /// resumed because it is cancelled, and unwinds at its next check).
    /// Only the fiber itself (its running thread) may ask.
    pub(crate) fn is_unwinding(&self) -> bool {
        if self.nested.get() {
            self.cancel_unwinding.get()
        } else {
            thread::panicking()
        }
    }

    /// `check_cancel`, just before it unwinds this fiber.
    pub(crate) fn set_cancel_unwinding(&self) {
        self.cancel_unwinding.set(true);
    }

    /// Scheduler, on the fiber's thread, around a nested resume (see
    /// [`Header::is_unwinding`]). A fiber in a run queue is not mid-unwind
    /// (an unwinding fiber never suspends), so a stale mark from a
    /// `Cancelled` payload its code caught is cleared.
    pub(crate) fn set_nested(&self, nested: bool) {
        self.nested.set(nested);
        self.cancel_unwinding.set(false);
    }

    /// What the fiber waits for (meaningful while parked).
    pub(crate) fn reason(&self) -> &'static str {
        // SAFETY: the pointer is always a `&'static &'static str` (set in
        // `new` and `set_reason`).
        unsafe { *self.reason.load(Ordering::Relaxed) }
    }

    pub(crate) fn set_reason(&self, reason: &'static &'static str) {
        self.reason
            .store(reason as *const &str as *mut &str, Ordering::Relaxed);
    }

    /// Is the fiber parked (committed or in place)?
    pub(crate) fn is_parked(&self) -> bool {
        self.park.is_parked()
    }

    /// Overflow info for the stack-overflow handler (stable address).
    pub(crate) fn overflow_info(&self) -> *const OverflowInfo {
        self.overflow.get()
    }

    /// Scheduler, at the fiber's first run: picks the stack it runs on
    /// (`bind` may trade the one reserved at spawn for a warm one) and builds
    /// its coroutine there.
    ///
    /// # Safety
    /// As for [`Header::resume`], and before the first `resume`.
    pub(crate) unsafe fn start(&self, bind: impl FnOnce(FiberStack) -> FiberStack) {
        // SAFETY: exclusive access per the contract; nobody reads `run` or
        // `overflow` concurrently before the first resume.
        let (run, overflow) = unsafe { (&mut *self.run.get(), &mut *self.overflow.get()) };
        let Run::Pending { stack, task } = std::mem::replace(run, Run::Done) else {
            return;
        };
        let stack = bind(stack);
        (overflow.guard_lo, overflow.guard_hi) = stack.guard_range();
        self.valgrind_stack.set(crate::valgrind::stack_register(
            overflow.guard_hi,
            corosensei::stack::Stack::base(&stack).get(),
        ));
        overflow.stack_size = stack.size();
        *run = Run::Started(Coroutine::with_stack(stack, move |yielder, ()| {
            let header = context::current_fiber_ptr();
            // SAFETY: the worker published this fiber's header before
            // resuming it, and holds a reference while it runs.
            let header = unsafe { &*header };
            header.yielder.set(yielder);
            task.run(header);
        }));
    }

    /// Fiber side: switch to the worker with `why`.
    pub(crate) fn suspend(&self, why: Suspend) {
        let yielder = self.yielder.get();
        debug_assert!(!yielder.is_null(), "suspend before the fiber started");
        // SAFETY: `yielder` was set by this fiber's body when it started and
        // stays valid for the coroutine's life; only this fiber's own thread
        // calls `suspend`, from the fiber's stack.
        unsafe { (*yielder).suspend(why) }
    }

    /// Scheduler: resumes the fiber on the calling (home) worker. Returns
    /// `Some(why)` when it suspended, `None` when it finished (its stack is
    /// then handed back through `take_stack`).
    ///
    /// # Safety
    /// Only the one worker that currently owns the fiber may call this, never
    /// concurrently, and always from the fiber's home thread once started.
    pub(crate) unsafe fn resume(&self) -> Option<Suspend> {
        #[cfg(debug_assertions)]
        let me = {
            let me = thread_key();
            let other = self.running_on.swap(me, Ordering::AcqRel);
            assert_eq!(
                other, 0,
                "fiber {:?} resumed while already running (double resume)",
                self.id
            );
            me
        };
        // SAFETY: exclusive access per this function's contract.
        let Run::Started(coro) = (unsafe { &mut *self.run.get() }) else {
            panic!("resumed a fiber that is not started or has finished");
        };
        let outcome = match coro.resume(()) {
            corosensei::CoroutineResult::Yield(why) => Some(why),
            corosensei::CoroutineResult::Return(()) => None,
        };
        #[cfg(debug_assertions)]
        {
            let was = self.running_on.swap(0, Ordering::AcqRel);
            assert_eq!(was, me, "fiber {:?} ran on two threads at once", self.id);
        }
        outcome
    }

    /// Scheduler: takes the stack of a finished fiber.
    ///
    /// # Safety
    /// As for [`Header::resume`]; the fiber must have finished.
    pub(crate) unsafe fn take_stack(&self) -> Option<FiberStack> {
        crate::valgrind::stack_deregister(self.valgrind_stack.replace(0));
        // SAFETY: exclusive access per the contract.
        match std::mem::replace(unsafe { &mut *self.run.get() }, Run::Done) {
            Run::Started(coro) => Some(coro.into_stack()),
            Run::Pending { stack, .. } => Some(stack),
            Run::Done => None,
        }
    }

    /// This fiber's fiber-local table. Only the fiber itself may use it.
    pub(crate) fn locals_ptr(&self) -> *mut local::Locals {
        self.locals.get()
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fiber")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A number unique to the calling thread (debug double-resume check).
#[cfg(debug_assertions)]
fn thread_key() -> u64 {
    thread_local!(static KEY: u8 = const { 0 });
    KEY.with(|k| k as *const u8 as u64)
}

/// A fiber's unique id (never reused in a process), like `std::thread::ThreadId`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct FiberId(NonZeroU64);

impl FiberId {
    fn next() -> FiberId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        FiberId(NonZeroU64::new(id).expect("fiber id counter overflowed"))
    }

    /// The id as a number (for logs and metrics).
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

/// A handle to a fiber, like `std::thread::Thread`.
#[derive(Clone)]
pub struct Fiber {
    inner: FiberRef,
}

impl Fiber {
    /// The fiber's id.
    pub fn id(&self) -> FiberId {
        self.inner.id
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

/// The payload of a fiber that was cancelled with [`JoinHandle::cancel`] or by
/// runtime shutdown; `join` returns it as the `Err` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fiber was cancelled")
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
            local::Locals::clear_from(
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
        header.finished.store(true, Ordering::Release);
        header.exec.fiber_finished();
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
        match self.task.packet.wait(&"join") {
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
            true => self.task.packet.wait_until(deadline, &"join"),
            false => self.task.packet.wait_uncancellable(deadline, &"join"),
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
            park::park(&"sleeping");
            park::check_cancel();
        },
    }
}

/// Puts the calling fiber (or thread) to sleep until `deadline`.
pub fn sleep_until(deadline: Instant) {
    while Instant::now() < deadline {
        park::park_until(Some(deadline), &"sleeping");
        park::check_cancel();
    }
}

/// Blocks the calling fiber until its [`Fiber::unpark`] is called (or
/// spuriously), with std's token semantics. On a plain thread this is
/// `std::thread::park`.
pub fn park() {
    park::park(park::PARKED);
    park::check_cancel();
}

/// Like [`park`] with a time limit.
pub fn park_timeout(dur: Duration) {
    let deadline = Instant::now().checked_add(dur);
    park::park_until(deadline, park::PARKED);
    park::check_cancel();
}
