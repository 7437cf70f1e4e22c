//! `Mutex` and `MutexGuard`: std's API and poisoning over `RawMutex`.
//!
//! Protocol: the data is reachable only through a guard, and a guard exists
//! only while `raw` is locked by its creator (the lock algorithm and its
//! fairness are in `raw_mutex.rs`). Poisoning is std's: a guard remembers
//! whether its thread was already panicking when it was made; if it is
//! dropped during a panic that started later, it sets `poison`. "Panicking"
//! is `park::unwinding()`: `thread::panicking()` on a thread, and on a fiber
//! too except while it runs nested on an unwinding sibling's stack (park.rs,
//! "Unwinding"), where that sibling's panic is not this fiber's.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::raw_mutex::RawMutex;
use super::{parker, unwind_cancelled, LockResult, TryLockError, TryLockResult};
use crate::park::{Unparker, WaitReason};

/// A mutual exclusion lock usable from fibers and threads alike, like
/// [`std::sync::Mutex`] (same API, same poisoning).
///
/// Uncontended `lock` and unlock are one atomic operation each. A fiber that
/// must wait parks (its worker runs other fibers); a thread blocks. Waiters
/// are served first come, first served, with bounded barging (see the
/// [module docs](crate::sync)).
///
/// # Poisoning and cancellation
/// As std's: a guard dropped while its holder unwinds from a panic that
/// started after it locked poisons the mutex. Cancellation
/// ([`JoinHandle::cancel`](crate::JoinHandle::cancel), an expired
/// [`time::timeout`](crate::time::timeout), runtime shutdown) unwinds too,
/// so a fiber cancelled while holding the lock poisons it. That is a
/// decision, not an accident: a cancellation lands at whichever blocking call
/// the critical section was in (a condvar wait, a channel send, socket IO),
/// so the section's update may be half done exactly as after a panic, and
/// the lock cannot tell a harmless spot from a harmful one. The next `lock`
/// returns `Err(PoisonError)`; [`PoisonError::into_inner`](std::sync::PoisonError::into_inner)
/// gives the guard anyway and [`Mutex::clear_poison`] clears the flag once
/// the data is repaired.
///
/// ```
/// use threadlet::sync::Mutex;
///
/// static COUNT: Mutex<u32> = Mutex::new(0);
/// threadlet::run(|| {
///     let handles: Vec<_> = (0..10)
///         .map(|_| threadlet::spawn(|| *COUNT.lock().unwrap() += 1))
///         .collect();
///     handles.into_iter().for_each(|h| h.join().unwrap());
/// });
/// assert_eq!(*COUNT.lock().unwrap(), 10);
/// ```
pub struct Mutex<T: ?Sized> {
    pub(super) raw: RawMutex<Unparker>,
    poison: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: the data is only reached through a guard, and guards are exclusive
// (one at a time, guaranteed by `raw`), so sharing the Mutex only ever moves
// access to `T` between threads: `T: Send` suffices, as for std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T: ?Sized> UnwindSafe for Mutex<T> {}
impl<T: ?Sized> RefUnwindSafe for Mutex<T> {}

/// Starvation policy of the raw lock: a waiter that lost `losses` races is
/// handed the lock once it has lost 8 of them, or 1 ms after its first loss.
pub(super) fn starving() -> impl FnMut(u32) -> bool {
    let mut first_loss: Option<Instant> = None;
    move |losses| {
        let since = *first_loss.get_or_insert_with(Instant::now);
        losses >= 8 || since.elapsed() >= Duration::from_millis(1)
    }
}

impl<T> Mutex<T> {
    /// A new unlocked mutex. `const`, so it can initialise a `static`.
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: RawMutex::new(),
            poison: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the mutex and returns the data; `Err` (still holding the
    /// data) if it is poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        let data = self.data.into_inner();
        super::poison_result(poisoned, data)
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Takes the raw lock, parking or blocking as needed. A cancelled fiber
    /// unwinds from here unless the lock was already handed to it.
    #[inline]
    pub(super) fn lock_raw(&self) {
        if !self.raw.lock(
            Unparker::current,
            parker(None, WaitReason::MutexLock),
            starving(),
        ) {
            unwind_cancelled();
        }
    }

    /// Acquires the mutex, waiting until it is free. `Err` (still holding
    /// the guard) if another holder panicked while holding it.
    ///
    /// Like std's, it is not reentrant: locking it again from the fiber or
    /// thread that holds it waits forever.
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        self.lock_raw();
        MutexGuard::new(self)
    }

    /// Acquires the mutex if it is free right now.
    ///
    /// # Errors
    /// `WouldBlock` if it is held; `Poisoned` (with the guard) if poisoned.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        if self.raw.try_lock() {
            Ok(MutexGuard::new(self)?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Has a holder panicked while holding the lock?
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state (the data is declared consistent again).
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// A mutable reference to the data; no locking needed (`&mut self`).
    /// `Err` (still holding the reference) if poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        let data = self.data.get_mut();
        super::poison_result(poisoned, data)
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Mutex<T> {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

/// Proof of holding a [`Mutex`]; unlocks when dropped. Like std's, it is not
/// `Send` (it stays with the fiber or thread that locked).
#[must_use = "if unused the Mutex will immediately unlock"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) lock: &'a Mutex<T>,
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only hands out `&T`, so it may be shared when
// `T: Sync`, as std's guard.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// Wraps a lock the caller just took; reports poisoning.
    pub(super) fn new(lock: &'a Mutex<T>) -> LockResult<MutexGuard<'a, T>> {
        let guard = MutexGuard {
            lock,
            panicking: crate::park::unwinding(),
            _not_send: PhantomData,
        };
        super::poison_result(lock.is_poisoned(), guard)
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock, so nobody else accesses the data.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock exclusively, and `&mut self`
        // makes this the only reference derived from it.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        if !self.panicking && crate::park::unwinding() {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.raw.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
