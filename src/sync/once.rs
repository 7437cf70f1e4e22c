//! `OnceLock`: std's API, initialised once even under contention.
//!
//! | state      | meaning                                           |
//! |------------|---------------------------------------------------|
//! | INCOMPLETE | no value; the next caller of `get_or_init` runs it |
//! | RUNNING    | one caller runs its init; the others wait          |
//! | COMPLETE   | the value is written (never changes while shared)  |
//!
//! INCOMPLETE -> RUNNING by a CAS (the initialiser); RUNNING -> COMPLETE
//! (Release, after the value is written) or back to INCOMPLETE if the init
//! panics or is cancelled (a drop guard), and then the initialiser selects
//! every waiter. A waiter publishes itself under `waiters` only after
//! re-checking the state there, and the initialiser takes `waiters` after
//! its state store, so no waiter sleeps through the transition. A woken
//! waiter re-checks: on INCOMPLETE it competes to run its own init, as std's.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex as StdMutex;

use super::waitq::{self, lock, Arc, WaitList};
use super::{parker, unwind_cancelled, Waiter};
use crate::park::{Unparker, WaitReason};

const INCOMPLETE: u8 = 0;
const RUNNING: u8 = 1;
const COMPLETE: u8 = 2;

/// A cell written once, usable from fibers and threads alike, like
/// [`std::sync::OnceLock`]: concurrent `get_or_init` callers run one init,
/// the others park until it finishes.
///
/// ```
/// use threadlet::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
/// threadlet::run(|| {
///     let value = CONFIG.get_or_init(|| "loaded".to_string());
///     assert_eq!(value, "loaded");
/// });
/// ```
pub struct OnceLock<T> {
    state: AtomicU8,
    waiters: StdMutex<WaitList<Unparker, ()>>,
    value: UnsafeCell<MaybeUninit<T>>,
    _owns: PhantomData<T>,
}

// SAFETY: as std's OnceLock: `&OnceLock` hands out `&T` to many threads
// (`T: Sync`) and may move a `T` in from any thread (`T: Send`).
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T: RefUnwindSafe + UnwindSafe> RefUnwindSafe for OnceLock<T> {}
impl<T: UnwindSafe> UnwindSafe for OnceLock<T> {}

/// Resets RUNNING to INCOMPLETE and wakes the waiters if the init unwinds.
struct InitGuard<'a, T> {
    cell: &'a OnceLock<T>,
}

impl<T> Drop for InitGuard<'_, T> {
    fn drop(&mut self) {
        self.cell.finish(INCOMPLETE);
    }
}

impl<T> OnceLock<T> {
    /// An empty cell. `const`, so it can initialise a `static`.
    pub const fn new() -> OnceLock<T> {
        OnceLock {
            state: AtomicU8::new(INCOMPLETE),
            waiters: StdMutex::new(WaitList::new()),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            _owns: PhantomData,
        }
    }

    /// The value, if initialised.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) == COMPLETE {
            // SAFETY: COMPLETE (acquire) means the value was written before
            // the release store, and it is not changed while shared.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// A mutable reference to the value, if initialised.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if *self.state.get_mut() == COMPLETE {
            // SAFETY: COMPLETE means written; `&mut self` is exclusive.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// Sets the value if the cell is empty; `Err(value)` if it was not.
    /// Waits if another caller is initialising it.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("init runs once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, initialising it with `f` if the cell is empty. Concurrent
    /// callers run one `f`; the others wait for it. If `f` panics the panic
    /// reaches this caller and the cell stays empty (another caller's `f`
    /// then runs). Calling it again from inside `f` waits forever.
    pub fn get_or_init<F>(&self, f: F) -> &T
    where
        F: FnOnce() -> T,
    {
        if let Some(value) = self.get() {
            return value;
        }
        let mut f = Some(f);
        loop {
            match self.state.compare_exchange(
                INCOMPLETE,
                RUNNING,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let guard = InitGuard { cell: self };
                    let value = (f.take().expect("init runs once"))();
                    // SAFETY: RUNNING is ours: nobody else reads or writes
                    // the value until we publish COMPLETE.
                    unsafe { (*self.value.get()).write(value) };
                    std::mem::forget(guard);
                    self.finish(COMPLETE);
                }
                Err(COMPLETE) => {}
                Err(_) => self.wait_while_running(RUNNING),
            }
            if let Some(value) = self.get() {
                return value;
            }
        }
    }

    /// Waits until the cell is initialised (by someone else), like
    /// `std::sync::OnceLock::wait`.
    pub fn wait(&self) -> &T {
        loop {
            if let Some(value) = self.get() {
                return value;
            }
            let state = self.state.load(Ordering::Acquire);
            self.wait_while_running(state);
        }
    }

    /// Consumes the cell and returns its value, if any.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if *self.state.get_mut() == COMPLETE {
            *self.state.get_mut() = INCOMPLETE;
            // SAFETY: it was COMPLETE (written) and is now marked empty, so
            // it is read out exactly once; `&mut self` is exclusive.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }

    /// Publishes `state` (COMPLETE or INCOMPLETE) and wakes every waiter.
    fn finish(&self, state: u8) {
        self.state.store(state, Ordering::Release);
        let woken = lock(&self.waiters).select_all();
        woken.iter().for_each(|w| w.wake());
    }

    /// Parks until the state is no longer `seen` (RUNNING, or INCOMPLETE for
    /// `wait`).
    fn wait_while_running(&self, seen: u8) {
        let waiter = Arc::new(Waiter::new(Unparker::current()));
        {
            let mut waiters = lock(&self.waiters);
            if self.state.load(Ordering::Acquire) != seen {
                return;
            }
            waiters.push_back(waiter.clone(), 1, ());
        }
        if waitq::wait(&waiter, parker(None, WaitReason::OnceInit)).is_none() {
            lock(&self.waiters).remove(&waiter);
            unwind_cancelled();
        }
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T> Default for OnceLock<T> {
    fn default() -> OnceLock<T> {
        OnceLock::new()
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_tuple("OnceLock");
        match self.get() {
            Some(v) => d.field(v),
            None => d.field(&format_args!("<uninit>")),
        };
        d.finish()
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> OnceLock<T> {
        let cell = OnceLock::new();
        if let Some(value) = self.get() {
            let _ = cell.set(value.clone());
        }
        cell
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> OnceLock<T> {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}
