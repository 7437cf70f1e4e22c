//! `Completion<T>`: one slot that a producer fills and one consumer waits
//! on — the wait behind `JoinHandle::join`, `unblock`, `fiber::scope`,
//! `block_on` and `time::timeout`. It is the only place that writes the
//! "publish the waiter, re-check, park, withdraw, check for cancellation"
//! sequence for them, so each of those callers only decides what a
//! cancellation means for the work it waits on.
//!
//! # States (all in `inner`, under its mutex)
//!
//! | state     | `value` | `waiter`          | `abandoned` |
//! |-----------|---------|-------------------|-------------|
//! | EMPTY     | None    | None, or the consumer while it waits | false |
//! | FULL      | Some    | None              | false       |
//! | ABANDONED | None    | None              | true        |
//!
//! | transition           | who      | effect                                              |
//! |----------------------|----------|-----------------------------------------------------|
//! | `set`: EMPTY -> FULL | producer | stores the value, takes the waiter, unparks it after unlocking |
//! | `set` on FULL        | producer | the new value is dropped (the first one stays)      |
//! | `set` on ABANDONED   | producer | the value is dropped, after unlocking, by the producer |
//! | `wait*`: FULL -> EMPTY | consumer | takes the value (the slot can be filled again)    |
//! | `wait*` on EMPTY     | consumer | publishes itself as waiter, parks, re-checks        |
//! | `wait*` gives up     | consumer | withdraws its waiter (cancelled / deadline passed)  |
//! | `abandon`            | consumer | -> ABANDONED; returns a value that was already there |
//!
//! `full` mirrors "a value is stored" for lock-free peeks (`is_set`).
//!
//! One consumer at a time. `wait` taking the value (back to EMPTY) makes the
//! slot reusable, which `block_on` (a wake is `set(())`; extra wakes
//! collapse into one) and `scope` (woken each time its running count hits
//! zero) rely on; one-shot users simply never set twice.
//!
//! Why no wake is lost: the consumer checks for the value and publishes
//! itself as the waiter in one critical section, and `set` stores the value
//! and takes the waiter in another, so either the consumer sees the value or
//! `set` sees the waiter; an unpark that lands before the park leaves a token
//! (park.rs). The mutex also orders the value: what the producer wrote before
//! `set` is visible to the consumer that takes it.
//!
//! Cancellation: a cancellable wait returns [`Interrupted::Cancelled`]
//! (waiter withdrawn, nothing unwound yet) when the calling fiber is
//! cancelled and no value is there — a value that is already there wins. The
//! caller then deals with the work it was waiting for (cancel it, abandon
//! the slot, or wait for it uncancellably) and unwinds with
//! `park::unwind_cancelled`. A fiber that is unwinding a panic is never
//! interrupted (park.rs, "Unwinding").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::Unparker;

/// Why a wait ended without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The calling fiber was cancelled (cancellable waits only).
    Cancelled,
    /// The deadline passed.
    TimedOut,
}

struct Inner<T> {
    value: Option<T>,
    waiter: Option<Unparker>,
    abandoned: bool,
}

/// A single-slot completion (module docs).
pub(crate) struct Completion<T> {
    full: AtomicBool,
    inner: Mutex<Inner<T>>,
}

impl<T> Completion<T> {
    /// An empty slot.
    pub(crate) const fn new() -> Completion<T> {
        Completion {
            full: AtomicBool::new(false),
            inner: Mutex::new(Inner {
                value: None,
                waiter: None,
                abandoned: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Nothing panics while holding it, and the state is valid anyway.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is a value stored (not yet taken)?
    pub(crate) fn is_set(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Producer: stores `value` and wakes the consumer. Returns `false` (and
    /// drops `value` here, outside the lock) when the slot was abandoned or
    /// already holds a value.
    pub(crate) fn set(&self, value: T) -> bool {
        let mut inner = self.lock();
        if inner.abandoned || inner.value.is_some() {
            drop(inner);
            drop(value);
            return false;
        }
        inner.value = Some(value);
        self.full.store(true, Ordering::Release);
        let waiter = inner.waiter.take();
        drop(inner);
        if let Some(waiter) = waiter {
            waiter.unpark();
        }
        true
    }

    /// Consumer: gives up the slot. A later `set` drops its value; a value
    /// that is already there is returned.
    pub(crate) fn abandon(&self) -> Option<T> {
        let mut inner = self.lock();
        inner.abandoned = true;
        inner.waiter = None;
        self.full.store(false, Ordering::Release);
        inner.value.take()
    }

    /// Consumer: waits for the value; `Err(Cancelled)` if the calling fiber
    /// is cancelled first. On a plain thread it blocks the thread.
    pub(crate) fn wait(&self, reason: &'static &'static str) -> Result<T, Interrupted> {
        self.wait_inner(None, true, reason)
    }

    /// Consumer: as [`Completion::wait`], giving up with `Err(TimedOut)`
    /// once `deadline` (if any) has passed.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        reason: &'static &'static str,
    ) -> Result<T, Interrupted> {
        self.wait_inner(deadline, true, reason)
    }

    /// Consumer: waits even if the calling fiber is cancelled (only the
    /// deadline, if any, ends it), for waits that must not be cut short.
    pub(crate) fn wait_uncancellable(
        &self,
        deadline: Option<Instant>,
        reason: &'static &'static str,
    ) -> Result<T, Interrupted> {
        self.wait_inner(deadline, false, reason)
    }

    fn wait_inner(
        &self,
        deadline: Option<Instant>,
        cancellable: bool,
        reason: &'static &'static str,
    ) -> Result<T, Interrupted> {
        loop {
            {
                let mut inner = self.lock();
                if let Some(value) = inner.value.take() {
                    self.full.store(false, Ordering::Release);
                    inner.waiter = None;
                    return Ok(value);
                }
                let interrupted = if cancellable && super::cancelled() {
                    Some(Interrupted::Cancelled)
                } else if deadline.is_some_and(|d| Instant::now() >= d) {
                    Some(Interrupted::TimedOut)
                } else {
                    None
                };
                if let Some(why) = interrupted {
                    inner.waiter = None;
                    return Err(why);
                }
                if inner.waiter.is_none() {
                    inner.waiter = Some(Unparker::current());
                }
            }
            super::park_inner(deadline, reason, cancellable);
        }
    }
}
