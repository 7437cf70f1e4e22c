//! Synchronisation primitives and channels that fibers and plain OS threads
//! share, in any mix: a thread may block on a [`Mutex`] a fiber holds, a
//! channel may connect a thread to a fiber and back.
//!
//! Every type mirrors its std twin (names, signatures, poisoning); the ones
//! without a std twin follow tokio ([`Semaphore`]) or crossbeam
//! ([`WaitGroup`], [`mpmc`], [`select!`](crate::select)). On a fiber a wait
//! parks the fiber (its worker runs other fibers meanwhile); on a plain thread
//! it parks the thread.
//!
//! # How it is built
//! Everything waits through `park`/`Unparker` only (it never touches the
//! scheduler). The shared core is `waitq.rs`: a waiter that a counterpart
//! *selects* (completes) or its owner *aborts* (timeout, cancellation) —
//! exactly one of the two — and a FIFO wait list. The lock algorithms
//! (`raw_mutex.rs`, `raw_rwlock.rs`) and the channel core (`chan.rs`) are
//! pure code on top of it, model-checked with loom in `tests/loom_sync.rs`.
//!
//! Uncontended paths are one atomic operation: [`Mutex::lock`] and its
//! unlock are one CAS each, with no allocation and no syscall. A waiter node
//! is allocated only when a call must wait.
//!
//! # Fairness
//! - [`Mutex`]: bounded barging. An unlock wakes the first waiter and
//!   releases the lock; newcomers may take it first, but a waiter that keeps
//!   losing keeps its place at the head and, after about 1 ms (or 8 lost
//!   races), is handed the lock directly (see `raw_mutex.rs`).
//! - [`RwLock`], [`Semaphore`]: FIFO handoff once anyone waits.
//! - channels: FIFO among blocked senders and among blocked receivers, with
//!   direct handoff (see `chan.rs`); `select!` starts at a random arm.
//!
//! # Cancellation
//! A fiber cancelled (`JoinHandle::cancel`, runtime shutdown) while it waits
//! here unwinds, unless the wait was already completed for it (a lock handed
//! to it, a message delivered to it): then the call returns normally and the
//! fiber unwinds at its next park. Guards dropped during that unwind poison
//! their lock, as a panic would. A `Condvar::wait` cut short this way does not
//! re-take the mutex (its guard is released, not dropped).

mod barrier;
mod chan;
mod condvar;
pub mod mpmc;
pub mod mpsc;
mod mutex;
mod once;
pub mod oneshot;
mod raw_mutex;
mod raw_rwlock;
mod rwlock;
mod select;
mod semaphore;
mod waitgroup;
mod waitq;

pub use barrier::{Barrier, BarrierWaitResult};
pub use condvar::{Condvar, WaitTimeoutResult};
pub use mutex::{Mutex, MutexGuard};
pub use once::OnceLock;
pub use rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use semaphore::{Semaphore, SemaphorePermit};
pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};
// std::sync's stable items that need no fiber version (they never wait, or,
// for `Once`/`LazyLock`, wait only while another thread runs a short
// initialiser), so `use std::sync::{mpsc, Arc, Mutex}` becomes
// `use threadlet::sync::{mpsc, Arc, Mutex}`.
pub use std::sync::{atomic, Arc, LazyLock, Once, OnceState, Weak};
pub use waitgroup::WaitGroup;

/// Support for the [`select!`](crate::select) macro; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use super::select::{
        recv_arm, select, send_arm, Arm, Mode, RecvArm, SelectRecv, SelectSend, SendArm,
    };
}

use std::time::{Duration, Instant};

use crate::context;
use crate::park::{self, Unparker, WaitReason};

impl waitq::Wake for Unparker {
    #[inline]
    fn wake(&self) {
        self.unpark();
    }
}

/// The waiter type of every primitive here.
type Waiter = waitq::Waiter<Unparker>;

/// Is the calling fiber cancelled (and not already unwinding)? Exactly the
/// condition under which `park::check_cancel` unwinds.
fn cancel_requested() -> bool {
    context::with_current_fiber(|f| f.is_some_and(|f| f.is_cancelled() && !f.is_unwinding()))
}

/// Unwinds the calling fiber with `Cancelled`; only call it after
/// [`cancel_requested`] returned `true`, holding no published waiter.
fn unwind_cancelled() -> ! {
    park::check_cancel();
    unreachable!("unwind_cancelled called on a fiber that is not cancelled")
}

/// The `park` step of the core's wait loops: parks once (until `deadline`, if
/// any) and says whether to keep waiting (`false`: deadline passed or the
/// fiber was cancelled).
fn parker(deadline: Option<Instant>, reason: WaitReason) -> impl FnMut() -> bool {
    move || {
        park::park_until(deadline, reason);
        !(cancel_requested() || deadline.is_some_and(|d| Instant::now() >= d))
    }
}

/// `now + timeout`, or `None` (no deadline) if that overflows `Instant`.
fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// std's poisoning convention: `value` as `Err(PoisonError)` when the lock
/// it came from is poisoned, as `Ok` otherwise.
fn poison_result<G>(poisoned: bool, value: G) -> std::sync::LockResult<G> {
    if poisoned {
        Err(std::sync::PoisonError::new(value))
    } else {
        Ok(value)
    }
}
