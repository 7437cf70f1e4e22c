//! `WaitGroup`: crossbeam's API over a counter and a wait list.
//!
//! Protocol: `count` is the number of live handles. A handle's drop
//! decrements it; the one that reaches zero takes the waiters' mutex and
//! selects every waiter. `wait` drops its own handle, then publishes its
//! waiter under the mutex only after re-checking `count` there, so it either
//! sees zero or is published before the last drop takes the mutex.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;

use super::waitq::{self, lock, Arc, WaitList};
use super::{parker, unwind_cancelled, Waiter};
use crate::park::{Unparker, WaitReason};

/// Waits for a group of fibers or threads to finish, like crossbeam's
/// `WaitGroup`: every clone is one participant, dropping a clone means
/// "done", and [`WaitGroup::wait`] waits until every other clone is dropped.
///
/// ```
/// use threadlet::sync::WaitGroup;
///
/// threadlet::run(|| {
///     let wg = WaitGroup::new();
///     for _ in 0..4 {
///         let wg = wg.clone();
///         threadlet::spawn(move || drop(wg));
///     }
///     wg.wait();
/// });
/// ```
pub struct WaitGroup {
    inner: Arc<Inner>,
}

struct Inner {
    count: AtomicUsize,
    waiters: StdMutex<WaitList<Unparker, ()>>,
}

impl WaitGroup {
    /// A group with one participant (this handle).
    pub fn new() -> WaitGroup {
        WaitGroup {
            inner: Arc::new(Inner {
                count: AtomicUsize::new(1),
                waiters: StdMutex::new(WaitList::new()),
            }),
        }
    }

    /// Drops this handle and waits until every other clone is dropped.
    pub fn wait(self) {
        let inner = self.inner.clone();
        drop(self);
        loop {
            if inner.count.load(Ordering::Acquire) == 0 {
                return;
            }
            let waiter = Arc::new(Waiter::new(Unparker::current()));
            {
                let mut waiters = lock(&inner.waiters);
                if inner.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                waiters.push_back(waiter.clone(), 1, ());
            }
            if waitq::wait(&waiter, parker(None, WaitReason::WaitGroup)).is_none() {
                lock(&inner.waiters).remove(&waiter);
                unwind_cancelled();
            }
        }
    }
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup::new()
    }
}

impl Clone for WaitGroup {
    fn clone(&self) -> WaitGroup {
        self.inner.count.fetch_add(1, Ordering::Relaxed);
        WaitGroup {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for WaitGroup {
    fn drop(&mut self) {
        if self.inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let woken = lock(&self.inner.waiters).select_all();
            woken.iter().for_each(|w| w.wake());
        }
    }
}

impl fmt::Debug for WaitGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitGroup")
            .field("count", &self.inner.count.load(Ordering::Relaxed))
            .finish()
    }
}
