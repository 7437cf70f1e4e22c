//! `Condvar`: std's API over a wait list, working with threadlet's `Mutex`.
//!
//! Protocol: `wait` publishes its waiter in `waiters` *before* it releases
//! the mutex, so a notifier that changed the condition under the mutex (and
//! notifies after) always finds it. `notify_one` selects the first live
//! waiter (`waitq.rs`), `notify_all` every one; the woken waiter re-takes the
//! mutex. A timed-out waiter aborts and removes its entry; if the abort loses
//! to a notification it reports "not timed out". A waiter cancelled after it
//! was notified passes the notification on (`notify_one`), so a cancellation
//! never swallows a wake meant for the others; it unwinds *without* the mutex
//! (its guard is forgotten, never dropped, so nothing is unlocked twice).
//! Spurious wakeups do not happen here, but callers should still loop, as
//! with std (`wait_while`).

use std::fmt;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use super::mutex::{starving, MutexGuard};
use super::waitq::{self, lock, Arc, WaitList};
use super::{cancel_requested, deadline_after, parker, unwind_cancelled, LockResult, Waiter};
use crate::park::{Unparker, WaitReason};

/// Whether a timed wait on a [`Condvar`] timed out, like
/// [`std::sync::WaitTimeoutResult`] (which cannot be built outside std).
#[derive(Debug, PartialEq, Eq, Copy, Clone)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait ended because its timeout elapsed.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// A condition variable for threadlet's [`Mutex`](super::Mutex), usable from
/// fibers and threads alike, like [`std::sync::Condvar`].
///
/// ```
/// use std::sync::Arc;
/// use threadlet::sync::{Condvar, Mutex};
///
/// threadlet::run(|| {
///     let pair = Arc::new((Mutex::new(false), Condvar::new()));
///     let pair2 = pair.clone();
///     threadlet::spawn(move || {
///         *pair2.0.lock().unwrap() = true;
///         pair2.1.notify_one();
///     });
///     let ready = pair.1.wait_while(pair.0.lock().unwrap(), |ready| !*ready).unwrap();
///     assert!(*ready);
/// });
/// ```
pub struct Condvar {
    waiters: StdMutex<WaitList<Unparker, ()>>,
}

impl Condvar {
    /// A new condition variable. `const`, so it can initialise a `static`.
    pub const fn new() -> Condvar {
        Condvar {
            waiters: StdMutex::new(WaitList::new()),
        }
    }

    /// Releases the guard's mutex, waits until notified, re-takes the mutex.
    /// `Err` (holding the guard) if the mutex is poisoned when re-taken.
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        let (guard, _) = self.wait_until(guard, None);
        super::poison_result(guard.lock.is_poisoned(), guard)
    }

    /// Waits while `condition` holds (checked first, and after every wake),
    /// like [`std::sync::Condvar::wait_while`].
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`Condvar::wait`], but gives up after `dur`.
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        dur: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let (guard, timed_out) = self.wait_until(guard, deadline_after(dur));
        let result = (guard, WaitTimeoutResult(timed_out));
        super::poison_result(result.0.lock.is_poisoned(), result)
    }

    /// Waits while `condition` holds, for at most `dur` in all, like
    /// [`std::sync::Condvar::wait_timeout_while`].
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        dur: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let start = Instant::now();
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            let Some(left) = dur.checked_sub(start.elapsed()) else {
                return Ok((guard, WaitTimeoutResult(true)));
            };
            guard = self.wait_timeout(guard, left)?.0;
        }
    }

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        let woken = lock(&self.waiters).select_one();
        if let Some(entry) = woken {
            entry.waiter.wake();
        }
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        let woken = lock(&self.waiters).select_all();
        woken.iter().for_each(|w| w.wake());
    }

    /// The wait itself; returns the re-locked guard and "timed out".
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> (MutexGuard<'a, T>, bool) {
        let mutex = guard.lock;
        let waiter = Arc::new(Waiter::new(Unparker::current()));
        lock(&self.waiters).push_back(waiter.clone(), 1, ());
        mutex.raw.unlock();
        let notified = waitq::wait(&waiter, parker(deadline, WaitReason::CondvarWait)).is_some();
        if !notified {
            lock(&self.waiters).remove(&waiter);
        }
        let relocked = !cancel_requested()
            && mutex.raw.lock(
                Unparker::current,
                parker(None, WaitReason::MutexLock),
                starving(),
            );
        if !relocked {
            // Cancelled: leave without the mutex, passing on our wake.
            if notified {
                self.notify_one();
            }
            std::mem::forget(guard);
            unwind_cancelled();
        }
        (guard, !notified)
    }
}

impl Default for Condvar {
    fn default() -> Condvar {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}
