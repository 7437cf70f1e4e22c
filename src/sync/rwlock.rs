//! `RwLock` and its guards: std's API and poisoning over `RawRwLock`.
//!
//! Protocol: shared data is reached only through guards; read guards exist
//! only while `raw` counts their read lock, a write guard only while `raw`
//! holds the writer bit (the algorithm and its FIFO fairness are in
//! `raw_rwlock.rs`). As in std, only a panic while *writing* poisons.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};

use super::raw_rwlock::{Kind, RawRwLock};
use super::{parker, unwind_cancelled, LockResult, TryLockError, TryLockResult};
use crate::park::{Unparker, WaitReason};

/// A reader-writer lock usable from fibers and threads alike, like
/// [`std::sync::RwLock`] (same API, same poisoning).
///
/// Once anyone waits, the lock is handed out in arrival order, so writers
/// are not starved by readers nor readers by writers.
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock<Unparker>,
    poison: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: as std's RwLock: guards hand out `&T` to several threads at once
// (so `T: Sync`) and `&mut T`/ownership to one at a time (so `T: Send`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

impl<T: ?Sized> UnwindSafe for RwLock<T> {}
impl<T: ?Sized> RefUnwindSafe for RwLock<T> {}

impl<T> RwLock<T> {
    /// A new unlocked lock. `const`, so it can initialise a `static`.
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: RawRwLock::new(),
            poison: AtomicBool::new(false),
            data: UnsafeCell::new(value),
        }
    }

    /// Consumes the lock and returns the data; `Err` (with it) if poisoned.
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.load(Ordering::Relaxed);
        let data = self.data.into_inner();
        super::poison_result(poisoned, data)
    }
}

impl<T: ?Sized> RwLock<T> {
    fn lock_raw(&self, kind: Kind, reason: WaitReason) {
        if !self.raw.lock(kind, Unparker::current, parker(None, reason)) {
            unwind_cancelled();
        }
    }

    /// Takes shared read access, waiting while a writer holds or waits.
    /// `Err` (with the guard) if poisoned. Not reentrant: a reader that reads
    /// again while a writer waits would wait behind that writer forever.
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        self.lock_raw(Kind::Read, WaitReason::RwLockRead);
        self.read_guard()
    }

    /// Takes read access if possible right now.
    ///
    /// # Errors
    /// `WouldBlock` if a writer holds or waits; `Poisoned` if poisoned.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.raw.try_read() {
            Ok(self.read_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Takes exclusive write access, waiting until nobody else holds it.
    /// `Err` (with the guard) if poisoned.
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        self.lock_raw(Kind::Write, WaitReason::RwLockWrite);
        self.write_guard()
    }

    /// Takes write access if the lock is free right now.
    ///
    /// # Errors
    /// `WouldBlock` if it is held or waited for; `Poisoned` if poisoned.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        if self.raw.try_write() {
            Ok(self.write_guard()?)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Has a writer panicked while holding the lock?
    pub fn is_poisoned(&self) -> bool {
        self.poison.load(Ordering::Relaxed)
    }

    /// Clears the poisoned state.
    pub fn clear_poison(&self) {
        self.poison.store(false, Ordering::Relaxed);
    }

    /// A mutable reference to the data (no locking: `&mut self`).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.is_poisoned();
        let data = self.data.get_mut();
        super::poison_result(poisoned, data)
    }

    fn read_guard(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        let guard = RwLockReadGuard {
            lock: self,
            _not_send: PhantomData,
        };
        super::poison_result(self.is_poisoned(), guard)
    }

    fn write_guard(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        let guard = RwLockWriteGuard {
            lock: self,
            panicking: crate::park::unwinding(),
            _not_send: PhantomData,
        };
        super::poison_result(self.is_poisoned(), guard)
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> RwLock<T> {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned());
        d.finish_non_exhaustive()
    }
}

/// Shared read access to an [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: it only hands out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}

/// Exclusive write access to an [`RwLock`]; released when dropped.
#[must_use = "if unused the RwLock will immediately unlock"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared write guard only hands out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: a read lock is held: no writer exists until it is released.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the write lock is held exclusively.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the write lock is held exclusively, and `&mut self` makes
        // this the only reference derived from the guard.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.raw.read_unlock();
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns the write lock into a read lock without releasing it, like
    /// std's `RwLockWriteGuard::downgrade`: no writer can get in between, and
    /// readers waiting at the head of the queue get in at once.
    ///
    /// ```
    /// use threadlet::sync::{RwLock, RwLockWriteGuard};
    ///
    /// let lock = RwLock::new(1);
    /// let mut w = lock.write().unwrap();
    /// *w += 1;
    /// let r = RwLockWriteGuard::downgrade(w);
    /// assert_eq!(*r, 2);
    /// assert!(lock.try_read().is_ok());
    /// assert!(lock.try_write().is_err());
    /// ```
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let lock = s.lock;
        // A panic while writing poisons, as the write guard's drop would.
        if !s.panicking && crate::park::unwinding() {
            lock.poison.store(true, Ordering::Relaxed);
        }
        std::mem::forget(s);
        lock.raw.downgrade();
        RwLockReadGuard {
            lock,
            _not_send: PhantomData,
        }
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        if !self.panicking && crate::park::unwinding() {
            self.lock.poison.store(true, Ordering::Relaxed);
        }
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}
