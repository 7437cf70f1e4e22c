//! The park protocol: the one way anything in threadlet waits.
//!
//! A fiber that must wait publishes an [`Unparker`] for itself wherever the
//! waker will look (a wait list, a timer, a reactor slot), re-checks its
//! condition, and calls [`park`]. Whoever makes the condition true calls
//! [`Unparker::unpark`]. Plain OS threads use the same calls: their `Unparker`
//! is the thread itself and `park` is `std::thread::park`. So every primitive
//! works from fibers and threads in any mix, and none of them touches the
//! scheduler's queues.
//!
//! # The state word (one per fiber, `park/state.rs`)
//!
//! | state            | meaning                                               |
//! |------------------|-------------------------------------------------------|
//! | EMPTY            | running or runnable; no wake pending                  |
//! | NOTIFIED         | a wake arrived while not parked (a token)             |
//! | PARKED           | suspended, committed by its worker; owned by the waker|
//! | PARKED_IN_PLACE  | blocking its worker thread (fiber is unwinding)       |
//!
//! | transition                 | who             | when                                  |
//! |----------------------------|-----------------|---------------------------------------|
//! | NOTIFIED -> EMPTY          | fiber           | `park` entry: token consumed, no wait |
//! | (suspend "park")           | fiber           | otherwise: switch to the worker stack |
//! | EMPTY -> PARKED            | worker          | *after* the switch (commit)           |
//! | NOTIFIED -> EMPTY, requeue | worker          | commit lost to a wake: run it again   |
//! | EMPTY/NOTIFIED -> NOTIFIED | any waker       | fiber not committed: leave a token    |
//! | PARKED -> EMPTY, schedule  | any waker       | exactly one waker wins the CAS        |
//! | EMPTY -> PARKED_IN_PLACE   | fiber           | `park` while `thread::panicking()`    |
//! | PARKED_IN_PLACE -> EMPTY   | waker / timeout | waker then unparks the worker thread  |
//!
//! Ordering: every transition is an acquire-release RMW, so what a waker wrote
//! before `unpark` is visible to the fiber after `park` returns. Because PARKED
//! is written only by the worker after the fiber's registers are saved, no
//! waker can schedule a fiber whose stack is still in use (no double resume),
//! and because a wake before the commit leaves NOTIFIED, the commit fails and
//! the worker re-runs the fiber (no lost wake). The loom model in
//! `tests/loom_park.rs` checks both properties.
//!
//! Tokens follow `std::thread::park`: a wake with nobody parked is kept for
//! the next park, and `park` may return spuriously. Every caller re-checks its
//! condition in a loop.
//!
//! # Cancellation
//! A cancelled fiber's `park` returns at once; waiting loops call
//! [`check_cancel`] at a point where they hold no published waiter (after
//! removing it), which unwinds the fiber with a [`Cancelled`] payload.
//! Waits for one result of other work (join, `unblock`, `scope`, `block_on`,
//! `timeout`) go through [`Completion`] (`park/completion.rs`), which hands
//! the cancellation back to its caller first, so that the caller decides
//! what happens to that work — cancel it, abandon it, or wait for it —
//! before it unwinds (RELIABILITY row 23).
//!
//! # Unwinding
//! While `std::thread::panicking()` is true, a fiber never switches stacks:
//! std's panic count is per thread, so a switch would make every other fiber of
//! the worker see `panicking() == true` (and poison locks). It blocks the
//! worker thread in place instead (PARKED_IN_PLACE).

mod completion;
pub(crate) mod state;

use std::thread::{self, Thread};
use std::time::Instant;

use crate::context;
use crate::fiber::{Cancelled, FiberRef, Header, Suspend};
pub(crate) use completion::{Completion, Interrupted};
use state::Wake;

/// Reason shown by `runtime::dump` for a fiber parked by `fiber::park`.
pub(crate) const PARKED: &&str = &"parked";

/// A handle that wakes one waiting fiber or thread.
#[derive(Clone, Debug)]
pub(crate) enum Unparker {
    /// A fiber: wakes through its park state word.
    Fiber(FiberRef),
    /// A plain OS thread: `Thread::unpark`.
    Thread(Thread),
}

impl Unparker {
    /// The unparker of the caller: its fiber, or its thread.
    pub(crate) fn current() -> Unparker {
        match context::current_fiber() {
            Some(fiber) => Unparker::Fiber(fiber),
            None => Unparker::Thread(thread::current()),
        }
    }

    /// Wakes the waiter (or leaves it a token if it is not parked yet).
    pub(crate) fn unpark(&self) {
        match self {
            Unparker::Fiber(fiber) => unpark_fiber(fiber),
            Unparker::Thread(thread) => thread.unpark(),
        }
    }

    /// Do both handles wake the same fiber or thread?
    pub(crate) fn same_as(&self, other: &Unparker) -> bool {
        match (self, other) {
            (Unparker::Fiber(a), Unparker::Fiber(b)) => std::sync::Arc::ptr_eq(a, b),
            (Unparker::Thread(a), Unparker::Thread(b)) => a.id() == b.id(),
            _ => false,
        }
    }
}

/// Wakes a fiber: schedules it if parked, else leaves a token.
pub(crate) fn unpark_fiber(fiber: &FiberRef) {
    match fiber.park.unpark() {
        Wake::Token => {}
        Wake::Schedule => fiber.exec.wake(fiber.clone()),
        Wake::Thread => fiber.exec.unpark_worker_thread(fiber.home()),
    }
}

/// Parks the caller until it is unparked (or spuriously). `reason` is what
/// `runtime::dump` shows meanwhile, e.g. `&"mutex lock"`.
pub(crate) fn park(reason: &'static &'static str) {
    park_until(None, reason)
}

/// Parks the caller until it is unparked, `deadline` passes, or spuriously.
pub(crate) fn park_until(deadline: Option<Instant>, reason: &'static &'static str) {
    park_inner(deadline, reason, true)
}

fn park_inner(deadline: Option<Instant>, reason: &'static &'static str, cancellable: bool) {
    let ptr = context::current_fiber_ptr();
    if ptr.is_null() {
        park_thread(deadline);
        return;
    }
    // SAFETY: a non-null current fiber pointer is valid while this thread runs
    // that fiber (context.rs), which lasts for this whole call.
    let fiber = unsafe { &*ptr };
    if thread::panicking() {
        park_in_place(fiber, deadline);
        return;
    }
    if (cancellable && fiber.is_cancelled()) || fiber.park.take_token() {
        return;
    }
    if let Some(deadline) = deadline {
        if deadline <= Instant::now() {
            return;
        }
        fiber.exec.add_timer(deadline, fiber);
    }
    fiber.set_reason(reason);
    fiber.suspend(Suspend::Park);
    if deadline.is_some() {
        fiber.exec.cancel_timer(fiber);
    }
}

fn park_thread(deadline: Option<Instant>) {
    match deadline {
        None => thread::park(),
        Some(deadline) => {
            let now = Instant::now();
            if deadline > now {
                thread::park_timeout(deadline - now);
            }
        }
    }
}

/// Blocks the worker thread without switching (the fiber is unwinding).
fn park_in_place(fiber: &Header, deadline: Option<Instant>) {
    if !fiber.park.park_in_place() {
        return;
    }
    while fiber.park.is_parked_in_place() {
        park_thread(deadline);
        if deadline.is_some_and(|d| Instant::now() >= d) {
            fiber.park.cancel_in_place();
            return;
        }
    }
}

/// Is the caller a cancelled fiber that is not already unwinding? Exactly
/// the condition under which [`check_cancel`] unwinds.
pub(crate) fn cancelled() -> bool {
    context::with_current_fiber(|f| f.is_some_and(|f| f.is_cancelled())) && !thread::panicking()
}

/// Unwinds the current fiber with a [`Cancelled`] payload if it was cancelled
/// (and is not already unwinding). Call it where no waiter is published.
pub(crate) fn check_cancel() {
    if cancelled() {
        unwind_cancelled();
    }
}

/// Unwinds the calling fiber with a [`Cancelled`] payload. For a wait that
/// saw [`cancelled`] (or [`Interrupted::Cancelled`]) and has cleaned up.
pub(crate) fn unwind_cancelled() -> ! {
    std::panic::resume_unwind(Box::new(Cancelled))
}
