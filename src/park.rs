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
//! | EMPTY -> PARKED_IN_PLACE   | fiber           | `park` while it unwinds (`unwinding`) |
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
//! # Unwinding (RELIABILITY rows 9 and 21)
//! While a fiber unwinds (a panic, or a cancellation), it never switches
//! stacks: std's panic count is per thread (`resume_unwind` and `panic!`
//! raise it, the `catch_unwind` that stops the unwind lowers it), so a switch
//! would leave a fiber suspended mid-unwind with its count still on the
//! thread, and every other fiber of the worker would see `panicking() ==
//! true` from then on: their std and threadlet guards would poison locks they
//! left normally, their waits would turn into thread blocks, and `Drop` code
//! that checks `panicking()` would misbehave. There is no API to save and
//! restore the count. So a park while unwinding blocks the worker thread in
//! place (PARKED_IN_PLACE) — and nothing else of that worker can run, which
//! is a deadlock when the destructor waits for something only a sibling on
//! the same worker can give (a mutex it holds, its end for a `join`).
//!
//! Decision: the in-place wait runs in slices (`IN_PLACE_SLICE`). Between
//! slices it runs, *nested* on its own stack, the worker's runnable fibers
//! that are **cancelled** — and only those. A cancelled fiber unwinds at its
//! next park point anyway, so the panic count it sees while nested changes
//! nothing it does: it resumes from a park inside threadlet, reaches
//! `check_cancel`, unwinds (the count goes to 2, its fiber body's
//! `catch_unwind` takes it back to 1), and its guards release and poison
//! exactly as on its own. Because `thread::panicking()` then speaks for the
//! sibling below it, a nested fiber asks `Header::is_unwinding` (set by
//! `check_cancel` when its own unwind starts) instead; park, cancellation and
//! the sync guards' poisoning all go through `unwinding()`. A nested fiber
//! that is not (yet) unwinding may park normally (it switches back to the
//! in-place waiter's stack, and the thread's count is again exactly the
//! waiter's);
//! one that unwinds and must wait blocks in place in turn, and may itself run
//! cancelled fibers. Before each slice the waiter also fires the worker's due
//! timers and, if the runtime is shutting down, cancels the worker's fibers
//! (the worker loop cannot while it is blocked). Hence:
//! - shutdown always finishes (every fiber is cancelled, so whoever holds
//!   what a destructor waits for runs nested and lets go), whatever order the
//!   fibers unwind in — unless two destructors wait for each other (a true
//!   cycle, as between two threads), which is reported as below;
//! - `JoinHandle::cancel` of the holder, from anywhere, ends such a wait.
//!
//! What is not done, and why: running a sibling that is *not* cancelled.
//! It would see `panicking() == true` for a panic that is not its own, so a
//! std `MutexGuard` it drops would poison a lock it left normally (nothing in
//! threadlet can change std's guards), and it cannot be moved to another
//! worker (a started fiber stays on its thread: thread-locals and `!Send`
//! guards). So a panicking fiber whose destructor waits for a live sibling of
//! its worker (locks a mutex the sibling holds across a sleep, joins it)
//! cannot finish. It is reported instead, once the wait passes the runtime's
//! stall threshold: a warning naming the fiber, what it waits for and why it
//! cannot end (`report_stuck`, through `log`, or stderr when no logger is
//! enabled). Dropping the runtime then still finishes (shutdown cancels the
//! sibling, which then runs nested). On a runtime with several workers the
//! sibling usually lives elsewhere and the wait simply ends.
//!
//! Limit: the nested fiber's code between its park returning and its
//! `check_cancel` is threadlet's own wait-loop code; if it panicked for
//! real before `check_cancel`, the fiber could not tell that unwind from the
//! sibling's. No wait loop does that.

mod completion;
pub(crate) mod reason;
pub(crate) mod state;

use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::context;
use crate::fiber::header::{Cancelled, FiberRef, Header, Suspend};
pub(crate) use completion::{Completion, Interrupted};
pub(crate) use reason::WaitReason;
use state::Wake;

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

impl Header {
    /// Requests cancellation and wakes the fiber so it notices (the cancel
    /// flag lives in the header; the wake is this layer's).
    pub(crate) fn request_cancel(self: &FiberRef) {
        self.request_cancel_quiet();
        unpark_fiber(self);
    }
}

/// Wakes a fiber: schedules it if parked, else leaves a token.
pub(crate) fn unpark_fiber(fiber: &FiberRef) {
    match fiber.park_state().unpark() {
        Wake::Token => {}
        Wake::Schedule => fiber.exec().wake(fiber.clone()),
        Wake::Thread => fiber.exec().unpark_worker_thread(fiber.home()),
    }
}

/// Parks the caller until it is unparked (or spuriously). `reason` is what
/// `runtime::dump` shows meanwhile, e.g. `&"mutex lock"`.
pub(crate) fn park(reason: WaitReason) {
    park_until(None, reason)
}

/// Parks the caller until it is unparked, `deadline` passes, or spuriously.
pub(crate) fn park_until(deadline: Option<Instant>, reason: WaitReason) {
    park_inner(deadline, reason, true)
}

fn park_inner(deadline: Option<Instant>, reason: WaitReason, cancellable: bool) {
    let ptr = context::current_fiber_ptr();
    if ptr.is_null() {
        park_thread(deadline);
        return;
    }
    // SAFETY: a non-null current fiber pointer is valid while this thread runs
    // that fiber (context.rs), which lasts for this whole call.
    let fiber = unsafe { &*ptr };
    if fiber.is_unwinding() {
        park_in_place(fiber, deadline, reason);
        return;
    }
    if (cancellable && fiber.is_cancelled()) || fiber.park_state().take_token() {
        return;
    }
    if let Some(deadline) = deadline {
        if deadline <= Instant::now() {
            return;
        }
        let me = context::current_fiber().expect("the current fiber is set (checked above)");
        fiber.exec().add_timer(deadline, me);
    }
    fiber.set_reason(reason);
    fiber.suspend(Suspend::Park);
    if deadline.is_some() {
        fiber.exec().cancel_timer(fiber);
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

/// How often a fiber blocked in place looks for cancelled siblings to run.
/// A wake of the fiber itself unparks the thread at once; this only bounds
/// how late a sibling cancelled from another thread is noticed.
const IN_PLACE_SLICE: Duration = Duration::from_millis(10);

/// Blocks the worker thread without switching (the fiber is unwinding), in
/// slices: between them it runs the worker's runnable cancelled fibers
/// nested (they may hold what it waits for), and once the wait passes the
/// stall threshold it is reported (module docs, "Unwinding").
fn park_in_place(fiber: &Header, deadline: Option<Instant>, reason: WaitReason) {
    if !fiber.park_state().park_in_place() {
        return;
    }
    fiber.set_reason(reason);
    let since = Instant::now();
    let report_at = since + fiber.exec().stall_threshold();
    let mut reported = false;
    while fiber.park_state().is_parked_in_place() {
        if fiber.exec().run_cancelled(fiber) {
            continue;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            fiber.park_state().cancel_in_place();
            return;
        }
        if !reported && now >= report_at {
            reported = true;
            report_stuck(fiber, reason, now - since);
        }
        let mut until = now + IN_PLACE_SLICE;
        if let Some(d) = deadline {
            until = until.min(d);
        }
        if !reported {
            until = until.min(report_at);
        }
        if fiber.park_state().is_parked_in_place() {
            thread::park_timeout(until.saturating_duration_since(now));
        }
    }
}

/// Is the caller a cancelled fiber that is not already unwinding? Exactly
/// the condition under which [`check_cancel`] unwinds.
pub(crate) fn cancelled() -> bool {
    context::with_current_fiber(|f| f.is_some_and(|f| f.is_cancelled() && !f.is_unwinding()))
}

/// A destructor of an unwinding fiber has blocked its worker past the stall
/// threshold: say who, for what, and why nothing else can run.
fn report_stuck(fiber: &Header, reason: WaitReason, waited: Duration) {
    let reason = reason.what();
    crate::diag::warn(format_args!(
        "threadlet: fiber '{}' (id {}) is unwinding (a panic or a cancellation) and a \
         destructor has waited {} ms for {reason}. An unwinding fiber cannot switch stacks \
         (std's panic state is per thread), so it blocks worker {} in place and no other fiber \
         of that worker can run until the wait ends: if only one of them can end it (a lock it \
         holds, a fiber to join, a message to send), this is a deadlock. Do not wait in `Drop` \
         for what sibling fibers provide: release such resources before panicking, or hand \
         the cleanup to a new fiber (`threadlet::spawn`) or to `threadlet::unblock`.",
        fiber.name().unwrap_or("<unnamed>"),
        fiber.id().as_u64(),
        waited.as_millis(),
        fiber.home()
    ));
}

/// Is the calling fiber (or thread) unwinding? `thread::panicking()`, except
/// for a fiber resumed nested on an unwinding sibling's stack (see
/// `Header::is_unwinding`). Use it instead of `thread::panicking()` for
/// every decision about the caller's own unwinding (park, cancel, poison).
pub(crate) fn unwinding() -> bool {
    context::with_current_fiber(|f| match f {
        Some(f) => f.is_unwinding(),
        None => thread::panicking(),
    })
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
    context::with_current_fiber(|f| {
        if let Some(f) = f {
            f.set_cancel_unwinding();
        }
    });
    std::panic::resume_unwind(Box::new(Cancelled))
}
