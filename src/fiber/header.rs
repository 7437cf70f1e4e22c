//! The fiber header: everything a fiber is besides its stack contents, and
//! the small types the layers below the public fiber API need ([`FiberRef`],
//! [`Suspend`], [`RunTask`], [`Executor`], [`FiberId`], [`Cancelled`], the
//! fiber-local table). `context` and `park` read the header from here, so
//! neither imports the public API in `fiber.rs`; this file imports only
//! `stack`, `park::state`, `park::reason`, `valgrind` and `diag`.
//!
//! A fiber is a corosensei coroutine on a `FiberStack` plus a `Header` owned
//! by an `Arc` ([`FiberRef`]) that run queues, wait lists, timers, the home
//! worker's registry and the `JoinHandle` share. One thread at a time runs a
//! fiber: before its first run, the single worker that popped it from a
//! queue; from then on its home worker, forever (the scheduler never moves a
//! started fiber). "Runner" below means that thread.
//!
//! # Fields of the header
//!
//! Every field is private to this file; the other layers go through the
//! methods, which keep to this table.
//!
//! | field | written by | read by | ordering / guard |
//! |---|---|---|---|
//! | `id`, `name` | `Header::new` | anyone | immutable after spawn |
//! | `exec` | `Header::new` | anyone (`park`, `builder`, `runtime`) | immutable after spawn |
//! | `park` | `park` (park/unpark), the runner's worker (commit) | anyone | its own atomic protocol, see park/state.rs |
//! | `cancel` | any thread (`request_cancel*`) | anyone | Release store / Acquire load |
//! | `finished` | the fiber at its end; the spawner if refused | anyone (`is_finished`) | Release / Acquire, stored before the join result is published |
//! | `home` | the first runner (`set_home`), once | anyone | Release / Acquire |
//! | `reason` | the fiber before it parks | `runtime::dump`, stall reports (any thread) | Relaxed: a report may show the previous reason |
//! | `yielder` | the fiber's body, at its start | the fiber (`suspend`) | runner only (`Cell`) |
//! | `run` | `Header::new`, then the runner (`start`, `resume`, `take_stack`) | the runner | runner only (`UnsafeCell`) |
//! | `timer` (heap entry, wanted deadline) | `time::Timers` on the home worker | `time::Timers` | home worker only (`Cell`) |
//! | `nested`, `cancel_unwinding` | the runner around a nested resume; `park::check_cancel` | the fiber (`is_unwinding`) | runner only (`Cell`) |
//! | `valgrind_stack` | the runner (`start`, `take_stack`) | the runner | runner only (`Cell`) |
//! | `ops` | the fiber (each IO call, and after an IO park) | the fiber | runner only (`Cell`) |
//! | `locals` | the fiber (`fiber_local!`, `clear_from` at its end) | the fiber | runner only (`UnsafeCell`) |
//! | `overflow` | `Header::new`, then `start` before the first resume | the SIGSEGV handler on the runner | runner only; written before the fiber's stack is in use |
//! | `slot` | the home worker's registry | the home worker's registry | Relaxed; guarded by the registry's mutex |
//! | `running_on` (debug) | the runner, around each resume | the runner | AcqRel swap: a second runner panics (double resume) |
//!
//! The non-`Sync` fields are why `Header` implements `Send`/`Sync` by hand:
//! the one-runner rule above is what makes that sound.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::io;
use std::num::NonZeroU64;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::{Coroutine, Yielder};

use crate::park::reason::WaitReason;
use crate::park::state::ParkState;
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

/// A spawned task's body, type-erased so the header need not be generic
/// (implemented by `fiber.rs`'s task, which owns the closure and the join
/// result).
pub(crate) trait RunTask {
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
    /// Arm the timer of `fiber`, the current fiber (called on its home
    /// worker only); the timer holds it until it fires or is cancelled.
    fn add_timer(&self, deadline: Instant, fiber: FiberRef);
    /// Disarm the current fiber's timer if still armed (home worker only).
    fn cancel_timer(&self, fiber: &Header);
    /// A fiber's body returned (called on the fiber, before its join
    /// result is published).
    fn fiber_finished(&self);
}

/// Marker for "not started yet" in `Header::home`.
const NO_HOME: usize = usize::MAX;

/// A fiber's timer, as its home worker's `time::Timers` keeps it: the
/// sequence number and deadline of its heap entry (`seq` 0: none), and the
/// deadline the fiber waits for now (`None`: it waits without one, or runs).
/// The entry may fire before `want`; it is then re-filed (module docs of
/// `time.rs`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimerSlot {
    pub(crate) seq: u64,
    pub(crate) at: Option<Instant>,
    pub(crate) want: Option<Instant>,
}

/// Everything a fiber is, besides its stack contents.
pub(crate) struct Header {
    id: FiberId,
    name: Option<Box<str>>,
    /// The park state word (park.rs).
    park: ParkState,
    cancel: AtomicBool,
    /// Set when its body has returned (just before `join` can see it).
    finished: AtomicBool,
    /// The runtime that runs this fiber.
    exec: Arc<dyn Executor>,
    home: AtomicUsize,
    reason: AtomicU8,
    yielder: Cell<*const Yielder<(), Suspend>>,
    run: UnsafeCell<Run>,
    /// Its entry in the home worker's timer heap, and the deadline it waits
    /// for (home worker only; `time::Timers`).
    timer: Cell<TimerSlot>,
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
    locals: UnsafeCell<Locals>,
    /// Written once by `start` (before the fiber ever runs), then read by
    /// the overflow handler on the fiber's thread.
    overflow: UnsafeCell<OverflowInfo>,
    /// Index in the home worker's fiber registry (guarded by its mutex).
    slot: AtomicUsize,
    /// IO calls in a row without parking (the op budget, reactor/
    /// registration.rs).
    ops: Cell<u32>,
    /// Debug builds: set while some thread runs the fiber, to catch a double
    /// resume (RELIABILITY row 2) the moment it would happen.
    #[cfg(debug_assertions)]
    running_on: AtomicU64,
}

// SAFETY: the non-Sync fields (`yielder`, `run`, `timer`, `nested`,
// `valgrind_stack`, `cancel_unwinding`, `ops`, `locals`, `overflow`) are only
// touched by the one thread that currently runs the fiber (the table in the
// module docs): the scheduler hands a fiber to one worker at a time and
// never moves a started fiber to another thread. Before the first run `run`
// holds only the reserved stack and the task with the spawned closure, which
// is `Send` (or, for `spawn_local`, never leaves its thread). The rest are
// atomics or immutable.
unsafe impl Send for Header {}
// SAFETY: as for Send: shared access from other threads only reads immutable
// fields or atomics.
unsafe impl Sync for Header {}

impl Header {
    /// A new, not yet started fiber that will run `task` on `stack` (the
    /// stack reserved for it at spawn) under `exec`.
    pub(crate) fn new(
        id: FiberId,
        name: Option<Box<str>>,
        exec: Arc<dyn Executor>,
        stack: FiberStack,
        task: Arc<dyn RunTask>,
    ) -> FiberRef {
        // The name's bytes live in the boxed str this header owns (moving
        // the box does not move them).
        let overflow = OverflowInfo::new(&stack, id.as_u64(), name.as_deref());
        Arc::new(Header {
            id,
            name,
            park: ParkState::new(),
            cancel: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            exec,
            home: AtomicUsize::new(NO_HOME),
            reason: AtomicU8::new(WaitReason::Runnable as u8),
            yielder: Cell::new(std::ptr::null()),
            run: UnsafeCell::new(Run::Pending { stack, task }),
            timer: Cell::new(TimerSlot::default()),
            nested: Cell::new(false),
            valgrind_stack: Cell::new(0),
            cancel_unwinding: Cell::new(false),
            locals: UnsafeCell::new(Locals::default()),
            overflow: UnsafeCell::new(overflow),
            slot: AtomicUsize::new(usize::MAX),
            ops: Cell::new(0),
            #[cfg(debug_assertions)]
            running_on: AtomicU64::new(0),
        })
    }

    /// The park state word (park.rs and the worker's commit).
    pub(crate) fn park_state(&self) -> &ParkState {
        &self.park
    }

    /// The runtime that runs this fiber.
    pub(crate) fn exec(&self) -> &Arc<dyn Executor> {
        &self.exec
    }

    /// Sequence number of the fiber's entry in its worker's timer heap, 0 if
    /// none (`time::Timers`, home worker only).
    pub(crate) fn timer_seq(&self) -> u64 {
        self.timer.get().seq
    }

    /// The fiber's timer state (`time::Timers`, home worker only).
    pub(crate) fn timer(&self) -> TimerSlot {
        self.timer.get()
    }

    /// `time::Timers`, on the home worker: records the fiber's timer state.
    pub(crate) fn set_timer(&self, slot: TimerSlot) {
        self.timer.set(slot);
    }

    /// Index in the home worker's fiber registry (`usize::MAX`: not
    /// registered). Read and written under the registry's mutex.
    pub(crate) fn registry_slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// The home worker's registry, under its mutex.
    pub(crate) fn set_registry_slot(&self, index: usize) {
        self.slot.store(index, Ordering::Relaxed);
    }

    /// Marks the body returned (before the join result is published), so
    /// `stats()` and `dump()` taken after a join never still show it.
    pub(crate) fn set_finished(&self) {
        self.finished.store(true, Ordering::Release);
    }

    /// The fiber, at each IO call: counts it against a budget of `budget`
    /// calls in a row; `true` (and a fresh count) once it is spent.
    pub(crate) fn spend_op(&self, budget: u32) -> bool {
        let n = self.ops.get() + 1;
        if n >= budget {
            self.ops.set(0);
            true
        } else {
            self.ops.set(n);
            false
        }
    }

    /// The fiber, after it parked for IO: a fresh op budget.
    pub(crate) fn reset_ops(&self) {
        self.ops.set(0);
    }

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

    /// Marks the fiber cancelled without waking it (it is about to run, or
    /// `park`'s `request_cancel` wakes it next).
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
    pub(crate) fn reason(&self) -> WaitReason {
        WaitReason::from_u8(self.reason.load(Ordering::Relaxed))
    }

    /// The fiber, just before it parks: what `runtime::dump` will show.
    pub(crate) fn set_reason(&self, reason: WaitReason) {
        self.reason.store(reason as u8, Ordering::Relaxed);
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
        let header: *const Header = self;
        *run = Run::Started(Coroutine::with_stack(stack, move |yielder, ()| {
            // SAFETY: the coroutine lives in this header's `run` field, so
            // the header (pinned in its `Arc`) outlives every run of it; the
            // worker also holds a reference for the whole resume.
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
    pub(crate) fn locals_ptr(&self) -> *mut Locals {
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
    pub(crate) fn next() -> FiberId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        FiberId(NonZeroU64::new(id).expect("fiber id counter overflowed"))
    }

    /// The id as a number (for logs and metrics).
    pub fn as_u64(&self) -> u64 {
        self.0.get()
    }
}

/// The payload of a fiber that was cancelled with
/// [`JoinHandle::cancel`](crate::JoinHandle::cancel) or by
/// runtime shutdown; `join` returns it as the `Err` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("fiber was cancelled")
    }
}

/// One fiber's (or thread's) table of fiber-local values.
#[derive(Default)]
pub(crate) struct Locals(pub(super) Vec<Option<Box<dyn Any>>>);

/// Rounds of teardown before the values still being re-created are leaked.
const MAX_ROUNDS: usize = 64;

impl Locals {
    /// Drops every value, on the calling fiber (or thread). Values created by
    /// those destructors are dropped too, round after round, until the table
    /// stays empty. Each destructor runs under `catch_unwind`, so one that
    /// panics is reported and the others still run. Destructors that keep
    /// re-creating values for `MAX_ROUNDS` rounds get what is left leaked
    /// (and reported): dropping it later would run it on whatever thread
    /// drops the fiber's header, which may not be the fiber's.
    pub(crate) fn clear_from(cell: impl Fn() -> *mut Locals, who: impl Fn() -> String) {
        for _ in 0..MAX_ROUNDS {
            // SAFETY: `cell` yields this fiber's (or thread's) table; the
            // borrow ends at the `take`, before any destructor runs.
            let table = std::mem::take(unsafe { &mut (*cell()).0 });
            if table.is_empty() {
                return;
            }
            for value in table.into_iter().flatten() {
                let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
                if let Err(payload) = dropped {
                    crate::diag::warn(format_args!(
                        "threadlet: a fiber-local value's destructor panicked on {} ({}); the \
                         fiber's other fiber-local values are still dropped",
                        who(),
                        panic_message(&*payload)
                    ));
                    // A payload whose own drop panics is leaked instead.
                    let quiet = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
                    std::mem::forget(quiet);
                }
            }
        }
        // SAFETY: as above.
        let left = std::mem::take(unsafe { &mut (*cell()).0 });
        let count = left.iter().flatten().count();
        if count > 0 {
            std::mem::forget(left);
            crate::diag::warn(format_args!(
                "threadlet: fiber-local destructors on {} kept creating new fiber-local values \
                 for {MAX_ROUNDS} rounds; leaking the {count} left rather than dropping them off \
                 their thread. Do not touch fiber-locals from a fiber-local's destructor.",
                who()
            ));
        }
    }
}

/// The text of a panic payload, for reports.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Unit-test support: fibers that never run, for the structures that hold
/// fibers (timer heaps, queues).
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// An executor that is never asked to run anything: a test fiber is
    /// never parked (`park` state EMPTY), so an unpark only leaves a token.
    struct NoExec;

    impl Executor for NoExec {
        fn wake(&self, _: FiberRef) {
            unreachable!("a test fiber is never parked");
        }
        fn unpark_worker_thread(&self, _: usize) {
            unreachable!("a test fiber never waits in place");
        }
        fn run_cancelled(&self, _: &Header) -> bool {
            false
        }
        fn stall_threshold(&self) -> Duration {
            Duration::from_secs(1)
        }
        fn submit(&self, _: FiberRef, _: bool) -> bool {
            false
        }
        fn alloc_stack(&self, _: Option<usize>) -> io::Result<FiberStack> {
            Err(io::Error::other("test executor has no stacks"))
        }
        fn add_timer(&self, _: Instant, _: FiberRef) {}
        fn cancel_timer(&self, _: &Header) {}
        fn fiber_finished(&self) {}
    }

    /// A fiber header with no stack and no task, never started.
    pub(crate) fn fiber() -> FiberRef {
        Arc::new(Header {
            id: FiberId::next(),
            name: None,
            park: ParkState::new(),
            cancel: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            exec: Arc::new(NoExec),
            home: AtomicUsize::new(NO_HOME),
            reason: AtomicU8::new(WaitReason::Runnable as u8),
            yielder: Cell::new(std::ptr::null()),
            run: UnsafeCell::new(Run::Done),
            timer: Cell::new(TimerSlot::default()),
            nested: Cell::new(false),
            valgrind_stack: Cell::new(0),
            cancel_unwinding: Cell::new(false),
            locals: UnsafeCell::new(Locals::default()),
            overflow: UnsafeCell::new(OverflowInfo {
                guard_lo: 0,
                guard_hi: 0,
                stack_size: 0,
                id: 0,
                name_ptr: std::ptr::null(),
                name_len: 0,
            }),
            slot: AtomicUsize::new(usize::MAX),
            ops: Cell::new(0),
            #[cfg(debug_assertions)]
            running_on: AtomicU64::new(0),
        })
    }
}
