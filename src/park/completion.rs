//! `Completion<T>`: one slot that a producer fills and one consumer waits
//! on — the wait behind `JoinHandle::join`, `unblock`, `fiber::scope`,
//! `block_on` and `time::timeout`. It is the only place that writes the
//! "publish the waiter, re-check, park, withdraw, check for cancellation"
//! sequence for them, so each of those callers only decides what a
//! cancellation means for the work it waits on.
//!
//! # States (`state`, one atomic byte)
//!
//! | state     | meaning                                  | `value`            |
//! |-----------|------------------------------------------|--------------------|
//! | EMPTY     | no value; the consumer may be waiting    | None               |
//! | WRITING   | one producer is storing its value        | that producer's    |
//! | FULL      | a value is stored                        | the consumer's     |
//! | ABANDONED | the consumer is gone                     | None               |
//!
//! | transition              | who      | effect                                     |
//! |-------------------------|----------|--------------------------------------------|
//! | EMPTY -> WRITING -> FULL | producer (`set`) | stores the value, then takes the waiter and unparks it |
//! | `set` on WRITING/FULL   | producer | its value is dropped: wakes collapse into one |
//! | `set` on ABANDONED      | producer | its value is dropped by the producer        |
//! | FULL -> EMPTY           | consumer (`wait*`) | takes the value; the slot can be filled again |
//! | EMPTY -> ABANDONED, FULL -> ABANDONED | consumer (`abandon`) | a value already there is returned |
//!
//! Who touches `value`: the one producer that won EMPTY -> WRITING writes
//! it, and the release store of FULL publishes the write; the consumer reads
//! it only after an acquire load of FULL, and gives it back (EMPTY, release)
//! only after reading. There is one consumer at a time: the fiber or thread
//! that owns the `JoinHandle`, or that runs the `block_on` / `unblock` /
//! `scope` / `timeout` call. The waiter sits in its own mutex.
//!
//! `wait` taking the value (back to EMPTY) makes the slot reusable, which `block_on` (a wake is `set(())`; extra wakes
//! collapse into one) and `scope` (woken each time its running count hits
//! zero) rely on; one-shot users simply never set twice.
//!
//! Why no wake is lost: the consumer publishes itself as the waiter under the
//! mutex, then re-checks for FULL; `set` stores FULL, then takes the waiter
//! under the same mutex. Either the consumer's re-check sees FULL or `set`
//! sees the waiter; an unpark that lands before the park leaves a token
//! (park.rs). A waiter that `set` takes after the consumer already returned
//! (it saw FULL first) costs that fiber one spurious wake, which every park
//! tolerates.
//!
//! Cancellation: a cancellable wait returns [`Interrupted::Cancelled`]
//! (waiter withdrawn, nothing unwound yet) when the calling fiber is
//! cancelled and no value is there — a value that is already there wins. The
//! caller then deals with the work it was waiting for (cancel it, abandon
//! the slot, or wait for it uncancellably) and unwinds with
//! `park::unwind_cancelled`. A fiber that is unwinding a panic is never
//! interrupted (park.rs, "Unwinding").

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::{Unparker, WaitReason};

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const FULL: u8 = 2;
const ABANDONED: u8 = 3;

/// Why a wait ended without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupted {
    /// The calling fiber was cancelled (cancellable waits only).
    Cancelled,
    /// The deadline passed.
    TimedOut,
}

/// A single-slot completion (module docs).
pub(crate) struct Completion<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
    waiter: Mutex<Option<Unparker>>,
}

// SAFETY: `value` is written only by the producer that owns the WRITING
// state and read only by the single consumer after it saw FULL (module
// docs), so no two threads ever touch it at once; values move from producer
// to consumer threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Completion<T> {}

impl<T> Completion<T> {
    /// An empty slot.
    pub(crate) const fn new() -> Completion<T> {
        Completion {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
            waiter: Mutex::new(None),
        }
    }

    fn waiter(&self) -> MutexGuard<'_, Option<Unparker>> {
        // Nothing panics while holding it, and the state is valid anyway.
        self.waiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Is a value stored (not yet taken)?
    pub(crate) fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) == FULL
    }

    /// Producer: stores `value` and wakes the consumer. Returns `false` (and
    /// drops `value` here) when the slot was abandoned or already holds (or
    /// is receiving) a value.
    pub(crate) fn set(&self, value: T) -> bool {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            drop(value);
            return false;
        }
        // SAFETY: winning EMPTY -> WRITING makes this the only thread that
        // touches `value` until the FULL store below publishes it.
        unsafe { *self.value.get() = Some(value) };
        self.state.store(FULL, Ordering::Release);
        let waiter = self.waiter().take();
        if let Some(waiter) = waiter {
            waiter.unpark();
        }
        true
    }

    /// Consumer: takes a stored value, if any.
    #[inline]
    fn try_take(&self) -> Option<T> {
        if self.state.load(Ordering::Acquire) != FULL {
            return None;
        }
        // SAFETY: FULL was observed with acquire, so the producer's write is
        // visible and finished; no producer writes again before the EMPTY
        // store below, and this is the single consumer.
        let value = unsafe { (*self.value.get()).take() };
        self.state.store(EMPTY, Ordering::Release);
        value
    }

    /// Consumer: gives up the slot. A later `set` drops its value; a value
    /// that is already there is returned.
    pub(crate) fn abandon(&self) -> Option<T> {
        let mine = self.waiter().take();
        drop(mine);
        loop {
            match self.state.load(Ordering::Acquire) {
                FULL => {
                    // SAFETY: as in `try_take`.
                    let value = unsafe { (*self.value.get()).take() };
                    self.state.store(ABANDONED, Ordering::Release);
                    return value;
                }
                EMPTY => {
                    if self
                        .state
                        .compare_exchange(EMPTY, ABANDONED, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        return None;
                    }
                }
                // A producer is between its two steps: a few instructions,
                // unless its thread was preempted there.
                WRITING => std::thread::yield_now(),
                _ => return None,
            }
        }
    }
    /// Consumer: waits for the value; `Err(Cancelled)` if the calling fiber
    /// is cancelled first. On a plain thread it blocks the thread.
    pub(crate) fn wait(&self, reason: WaitReason) -> Result<T, Interrupted> {
        self.wait_inner(None, true, reason)
    }

    /// Consumer: as [`Completion::wait`], giving up with `Err(TimedOut)`
    /// once `deadline` (if any) has passed.
    pub(crate) fn wait_until(
        &self,
        deadline: Option<Instant>,
        reason: WaitReason,
    ) -> Result<T, Interrupted> {
        self.wait_inner(deadline, true, reason)
    }

    /// Consumer: waits even if the calling fiber is cancelled (only the
    /// deadline, if any, ends it), for waits that must not be cut short.
    pub(crate) fn wait_uncancellable(
        &self,
        deadline: Option<Instant>,
        reason: WaitReason,
    ) -> Result<T, Interrupted> {
        self.wait_inner(deadline, false, reason)
    }

    #[inline]
    fn wait_inner(
        &self,
        deadline: Option<Instant>,
        cancellable: bool,
        reason: WaitReason,
    ) -> Result<T, Interrupted> {
        let mut published = false;
        loop {
            if let Some(value) = self.try_take() {
                return Ok(value);
            }
            // Checked after a park only: `park_inner` itself returns at once
            // for a cancelled fiber or a passed deadline, so the first round
            // goes straight to publishing (the join after a spawn is hot).
            let interrupted = if !published {
                None
            } else if cancellable && super::cancelled() {
                Some(Interrupted::Cancelled)
            } else if deadline.is_some_and(|d| Instant::now() >= d) {
                Some(Interrupted::TimedOut)
            } else {
                None
            };
            if let Some(why) = interrupted {
                if published {
                    let mine = self.waiter().take();
                    drop(mine);
                }
                // A value that arrived meanwhile wins.
                return self.try_take().ok_or(why);
            }
            // The first round replaces whatever an earlier wait left there.
            let stale = {
                let mut waiter = self.waiter();
                match published && waiter.is_some() {
                    true => None,
                    false => waiter.replace(Unparker::current()),
                }
            };
            drop(stale);
            published = true;
            // Re-check after publishing: `set` may have missed the waiter.
            if let Some(value) = self.try_take() {
                return Ok(value);
            }
            super::park_inner(deadline, reason, cancellable);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn first_value_wins_and_is_taken_once() {
        let c = Completion::new();
        assert!(!c.is_set());
        assert!(c.set(1));
        assert!(!c.set(2), "a second value collapses into the first");
        assert!(c.is_set());
        assert_eq!(c.wait(WaitReason::Join), Ok(1));
        assert!(!c.is_set());
        // Empty again: reusable.
        assert!(c.set(3));
        assert_eq!(c.wait(WaitReason::Join), Ok(3));
    }

    #[test]
    fn deadline_ends_a_wait_without_a_value() {
        let c = Completion::<u8>::new();
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            c.wait_until(Some(past), WaitReason::Join),
            Err(Interrupted::TimedOut)
        );
        assert_eq!(
            c.wait_uncancellable(Some(past), WaitReason::Join),
            Err(Interrupted::TimedOut)
        );
    }

    #[test]
    fn abandoned_slot_drops_later_values() {
        let c = Completion::new();
        assert_eq!(c.abandon(), None);
        let value = Arc::new(());
        assert!(!c.set(value.clone()));
        assert_eq!(
            Arc::strong_count(&value),
            1,
            "the refused value was dropped"
        );
        let full = Completion::new();
        assert!(full.set(7));
        assert_eq!(full.abandon(), Some(7), "a value already there is returned");
        assert!(!full.set(8));
    }

    #[test]
    fn threads_hand_over_values_without_losing_a_wake() {
        for _ in 0..200 {
            let c = Arc::new(Completion::new());
            let producer = {
                let c = c.clone();
                std::thread::spawn(move || assert!(c.set(42u32)))
            };
            assert_eq!(c.wait(WaitReason::Join), Ok(42));
            producer.join().unwrap();
        }
    }
}
