//! `Semaphore`: a counting semaphore with FIFO handoff (tokio's names).
//!
//! # State word: `permits << 1 | QUEUED`
//! QUEUED changes only under the queue mutex, where it equals "the queue is
//! not empty". While QUEUED is set the permit count stays zero: a released
//! permit is handed straight to the first live waiter (selected with the
//! permit), and only permits nobody waits for are added to the count.
//!
//! - `try_acquire` / fast `acquire`: one CAS taking a permit if the count is
//!   above zero (which implies nobody waits, so nobody is overtaken).
//! - slow `acquire`, under the mutex: take a permit if one appeared, else set
//!   QUEUED with a CAS that confirms the count is still zero, and publish.
//! - release (`add_permits`): one CAS adding to the count if QUEUED is clear;
//!   otherwise, under the mutex, select waiters first, add the rest, clear
//!   QUEUED if the queue emptied.
//! - a timed-out or cancelled waiter removes its entry (clearing QUEUED if
//!   the queue emptied); if its abort lost to a handoff it owns the permit.
//!
//! Fairness: strict FIFO once anyone waits (direct handoff), so no waiter is
//! overtaken.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use super::waitq::{self, lock, Arc, WaitList};
use super::{cancel_requested, deadline_after, parker, unwind_cancelled, Waiter};
use crate::park::{Unparker, WaitReason};

const QUEUED: usize = 1;
const PERMIT: usize = 2;
/// The most permits a semaphore can hold.
const MAX_PERMITS: usize = usize::MAX >> 1;

/// A counting semaphore usable from fibers and threads alike, like
/// `tokio::sync::Semaphore`: [`Semaphore::acquire`] waits for a permit and
/// returns it as a guard that gives it back when dropped.
///
/// ```
/// use threadlet::sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// assert!(sem.try_acquire().is_none());
/// drop(a);
/// assert!(sem.try_acquire().is_some());
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    queue: StdMutex<WaitList<Unparker, ()>>,
}

/// One permit of a [`Semaphore`]; given back when dropped.
#[must_use = "dropping a permit releases it at once"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
}

impl Semaphore {
    /// A semaphore holding `permits` permits.
    ///
    /// # Panics
    /// If `permits` exceeds `usize::MAX >> 1`.
    pub const fn new(permits: usize) -> Semaphore {
        assert!(
            permits <= MAX_PERMITS,
            "Semaphore::new: at most usize::MAX >> 1 permits"
        );
        Semaphore {
            state: AtomicUsize::new(permits * PERMIT),
            queue: StdMutex::new(WaitList::new()),
        }
    }

    /// Permits available right now.
    pub fn available_permits(&self) -> usize {
        self.state.load(Ordering::Acquire) / PERMIT
    }

    /// Takes a permit if one is available right now (never overtakes a
    /// waiter: when someone waits, none is available).
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        let mut s = self.state.load(Ordering::Relaxed);
        while s >= PERMIT {
            match self.state.compare_exchange_weak(
                s,
                s - PERMIT,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(SemaphorePermit { sem: self }),
                Err(now) => s = now,
            }
        }
        None
    }

    /// Waits for a permit (first come, first served).
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        match self.acquire_until(None) {
            Some(permit) => permit,
            None => unwind_cancelled(),
        }
    }

    /// Waits at most `timeout` for a permit; `None` if none came in time.
    pub fn acquire_timeout(&self, timeout: Duration) -> Option<SemaphorePermit<'_>> {
        let permit = self.acquire_until(deadline_after(timeout));
        if permit.is_none() && cancel_requested() {
            unwind_cancelled();
        }
        permit
    }

    fn acquire_until(&self, deadline: Option<Instant>) -> Option<SemaphorePermit<'_>> {
        if let Some(permit) = self.try_acquire() {
            return Some(permit);
        }
        let waiter = {
            let mut q = lock(&self.queue);
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let (next, got) = if s >= PERMIT {
                    (s - PERMIT, true)
                } else {
                    (s | QUEUED, false)
                };
                match self.state.compare_exchange_weak(
                    s,
                    next,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) if got => return Some(SemaphorePermit { sem: self }),
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            }
            let waiter = Arc::new(Waiter::new(Unparker::current()));
            q.push_back(waiter.clone(), 1, ());
            waiter
        };
        if waitq::wait(&waiter, parker(deadline, WaitReason::Semaphore)).is_some() {
            return Some(SemaphorePermit { sem: self });
        }
        let mut q = lock(&self.queue);
        q.remove(&waiter);
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        None
    }

    /// Adds `n` permits, handing them to waiters first.
    ///
    /// # Panics
    /// If the total would exceed `usize::MAX >> 1`.
    pub fn add_permits(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut s = self.state.load(Ordering::Relaxed);
        while s & QUEUED == 0 {
            let next = Self::added(s, n);
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(now) => s = now,
            }
        }
        let mut q = lock(&self.queue);
        let mut left = n;
        let mut woken = Vec::new();
        while left > 0 {
            match q.select_one() {
                Some(entry) => {
                    woken.push(entry.waiter);
                    left -= 1;
                }
                None => break,
            }
        }
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        if left > 0 {
            // The queue is empty (select_one found nobody): plain permits.
            Self::added(self.state.load(Ordering::Relaxed), left);
            self.state.fetch_add(left * PERMIT, Ordering::Release);
        }
        drop(q);
        woken.iter().for_each(|w| w.wake());
    }

    fn added(s: usize, n: usize) -> usize {
        let permits = (s / PERMIT)
            .checked_add(n)
            .filter(|p| *p <= MAX_PERMITS)
            .expect("Semaphore::add_permits: more than usize::MAX >> 1 permits");
        (permits * PERMIT) | (s & QUEUED)
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken for good (it is not given back on drop).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.sem.add_permits(1);
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("permits", &self.available_permits())
            .finish()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}
