//! The wait-queue core shared by every primitive in `sync`: a waiter, the
//! selection protocol that decides who completes a wait, and a FIFO list of
//! waiters. Pure: it imports nothing from the crate (the waker type `W` and
//! the way to park are parameters), so `tests/loom_sync.rs` model-checks this
//! exact code.
//!
//! # The waiter (one per blocking call)
//!
//! | state       | meaning                                                    |
//! |-------------|------------------------------------------------------------|
//! | WAITING (0) | published in one or more wait lists, not decided yet       |
//! | token (>0)  | *selected*: a counterpart completed (or granted) operation `token` |
//! | ABORTED     | the owner gave up (timeout, cancellation); nobody may complete it |
//!
//! | transition        | who                         | how                         |
//! |-------------------|-----------------------------|-----------------------------|
//! | WAITING -> token  | a counterpart (unlocker, sender, notifier), holding the lock of the list the entry is in | CAS, AcqRel |
//! | WAITING -> ABORTED| the owner, after `park` says "stop" | CAS, AcqRel          |
//! | token/ABORTED -> WAITING | the owner, when no list holds it any more (reuse) | store |
//!
//! Exactly one CAS wins, so a wait is completed once or aborted, never both:
//! an owner whose abort fails was selected and must honour the selection
//! (take the lock, take the message), which is how a lock handed to a
//! cancelled fiber or a message sent to a timed-out receiver is never lost.
//! A counterpart prepares the result *before* its CAS (writes the packet) and
//! undoes it if the CAS fails, all while holding the list's lock; the CAS
//! releases the prepared data to the owner, who reads it after an acquire
//! load of the state. After a successful CAS the counterpart touches nothing
//! of the owner except its own clone of the waiter, through which it wakes it
//! (`W::wake`), after dropping the list's lock.
//!
//! # Lists
//! A [`WaitList`] is a FIFO of entries `(waiter, token, payload)`; it has no
//! lock of its own: the primitive that owns it keeps it under its internal
//! mutex (the same one that guards the primitive's state, so "check the
//! condition, then publish the waiter" is atomic with respect to the wakers).
//! Entries whose waiter was aborted or selected elsewhere stay in the list
//! until the owner removes them or a counterpart pops and skips them.
//!
//! # Waiting
//! [`wait`] is the one wait loop: re-check, park, re-check. `park` returns
//! `false` when the owner must stop (deadline passed, fiber cancelled); the
//! loop then tries to abort. Wakes follow `std::thread::park` token semantics,
//! so a wake between the publish and the park is never lost, and spurious
//! returns are harmless.

#[cfg(all(loom, test))]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicUsize, Ordering};

use std::collections::VecDeque;

/// Not decided yet.
const WAITING: usize = 0;
/// Given up by its owner.
const ABORTED: usize = usize::MAX;

/// Something that wakes the owner of a waiter (a fiber or thread in the
/// crate, a loom thread in the model).
pub(crate) trait Wake {
    /// Wakes the owner, or leaves it a token if it is not parked yet.
    fn wake(&self);
}

/// Locks an internal mutex, ignoring poison: every critical section in `sync`
/// leaves its data consistent even if it unwinds.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One blocking call's waiter (module docs).
#[derive(Debug)]
pub(crate) struct Waiter<W> {
    state: AtomicUsize,
    waker: W,
}

impl<W: Wake> Waiter<W> {
    /// A waiter, not selected.
    pub(crate) fn new(waker: W) -> Waiter<W> {
        Waiter {
            state: AtomicUsize::new(WAITING),
            waker,
        }
    }

    /// Counterpart: completes the wait with `token` (> 0). `false`: the
    /// waiter was already selected or aborted; undo any prepared result.
    pub(crate) fn try_select(&self, token: usize) -> bool {
        debug_assert!(token != WAITING && token != ABORTED);
        self.state
            .compare_exchange(WAITING, token, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Owner: gives up. `false`: it was selected first; honour the selection.
    pub(crate) fn try_abort(&self) -> bool {
        self.state
            .compare_exchange(WAITING, ABORTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The selecting token, if a counterpart selected this waiter.
    pub(crate) fn selected(&self) -> Option<usize> {
        match self.state.load(Ordering::Acquire) {
            WAITING | ABORTED => None,
            token => Some(token),
        }
    }

    /// Is it still undecided (a live entry)?
    pub(crate) fn is_waiting(&self) -> bool {
        self.state.load(Ordering::Acquire) == WAITING
    }

    /// Owner: makes the waiter reusable. Only when no list holds it.
    pub(crate) fn reset(&self) {
        self.state.store(WAITING, Ordering::Relaxed);
    }

    /// Wakes the owner.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }
}

/// Waits until `waiter` is selected (returns its token) or `park` returns
/// `false` and the abort wins (returns `None`: the caller must then remove its
/// entries from the lists it published them in). `park` parks once and says
/// whether to keep waiting.
pub(crate) fn wait<W: Wake>(waiter: &Waiter<W>, mut park: impl FnMut() -> bool) -> Option<usize> {
    loop {
        if let Some(token) = waiter.selected() {
            return Some(token);
        }
        if !park() {
            if waiter.try_abort() {
                return None;
            }
            // Selected between the park and the abort: honour it.
            return waiter.selected();
        }
    }
}

/// One published waiter in a [`WaitList`].
#[derive(Debug)]
pub(crate) struct Entry<W, P> {
    /// Whose wait this is.
    pub(crate) waiter: Arc<Waiter<W>>,
    /// The token a counterpart selects the waiter with.
    pub(crate) token: usize,
    /// Per-primitive data (a packet for a message, a lock kind...).
    pub(crate) payload: P,
}

/// A FIFO of waiters, kept under its primitive's internal mutex.
#[derive(Debug)]
pub(crate) struct WaitList<W, P> {
    entries: VecDeque<Entry<W, P>>,
}

impl<W, P> Default for WaitList<W, P> {
    fn default() -> Self {
        WaitList::new()
    }
}

impl<W, P> WaitList<W, P> {
    /// An empty list (no allocation until the first waiter).
    pub(crate) const fn new() -> WaitList<W, P> {
        WaitList {
            entries: VecDeque::new(),
        }
    }

    /// Are there no entries (live or dead)?
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a waiter.
    pub(crate) fn push_back(&mut self, waiter: Arc<Waiter<W>>, token: usize, payload: P) {
        self.entries.push_back(Entry {
            waiter,
            token,
            payload,
        });
    }

    /// Puts a waiter first (it keeps its place after losing a race).
    pub(crate) fn push_front(&mut self, waiter: Arc<Waiter<W>>, token: usize, payload: P) {
        self.entries.push_front(Entry {
            waiter,
            token,
            payload,
        });
    }

    /// Takes the first entry, live or dead.
    pub(crate) fn pop_front(&mut self) -> Option<Entry<W, P>> {
        self.entries.pop_front()
    }

    /// The first entry.
    pub(crate) fn front(&self) -> Option<&Entry<W, P>> {
        self.entries.front()
    }

    /// Removes `waiter`'s entry, if a counterpart did not pop it already.
    pub(crate) fn remove(&mut self, waiter: &Arc<Waiter<W>>) -> Option<Entry<W, P>> {
        let i = self
            .entries
            .iter()
            .position(|e| Arc::ptr_eq(&e.waiter, waiter))?;
        self.entries.remove(i)
    }

    /// Is there a live entry of a waiter other than `me`?
    pub(crate) fn has_live_other(&self, me: &Arc<Waiter<W>>) -> bool
    where
        W: Wake,
    {
        self.entries
            .iter()
            .any(|e| !Arc::ptr_eq(&e.waiter, me) && e.waiter.is_waiting())
    }
}

impl<W: Wake, P> WaitList<W, P> {
    /// Selects the first live waiter with its token and removes it; dead
    /// entries met on the way are dropped. The caller wakes the returned
    /// waiter after dropping the lock that guards this list.
    pub(crate) fn select_one(&mut self) -> Option<Entry<W, P>> {
        while let Some(entry) = self.entries.pop_front() {
            if entry.waiter.try_select(entry.token) {
                return Some(entry);
            }
        }
        None
    }

    /// Selects every live waiter, each with its own token, and empties the
    /// list. The caller wakes them after dropping the lock.
    pub(crate) fn select_all(&mut self) -> Vec<Arc<Waiter<W>>> {
        self.entries
            .drain(..)
            .filter(|e| e.waiter.try_select(e.token))
            .map(|e| e.waiter)
            .collect()
    }
}
