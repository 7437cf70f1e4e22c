//! The raw reader-writer lock under `sync::RwLock`. Pure: only
//! `super::waitq` and std/loom, so `tests/loom_sync.rs` checks this code.
//!
//! # State word
//!
//! | bits         | meaning                                               |
//! |--------------|-------------------------------------------------------|
//! | WRITER (1)   | a writer owns the lock                                |
//! | QUEUED (2)   | the wait list is not empty                            |
//! | readers (×4) | how many readers own the lock                         |
//!
//! As in `raw_mutex.rs`, QUEUED changes only under the queue mutex, so there
//! `QUEUED == !queue.is_empty()`.
//!
//! Fast paths: a reader adds 4 with a CAS if neither WRITER nor QUEUED is
//! set; a writer CASes `0 -> WRITER`; releases are one RMW unless QUEUED.
//!
//! # Fairness: FIFO handoff once anyone waits
//! While QUEUED is set nobody takes the fast path, so a newcomer queues
//! behind the waiters: a waiting writer is never overtaken by a stream of
//! readers, and a waiting reader never by a stream of writers. Whenever the
//! lock is released with QUEUED set (the last reader out, or the writer), the
//! releaser *grants* under the queue mutex: it pops waiters from the front
//! while they are compatible with the current state (one writer when the
//! lock is free; every leading reader while no writer holds it), adds them to
//! the state itself (handoff), and wakes them. A waiter that aborts
//! (cancellation) removes its entry and grants too, since the waiter behind
//! it may have become grantable. Handoff rather than barging is chosen here
//! because reader/writer phases make barging unfair by construction (readers
//! could keep the count above zero forever).

#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicUsize, Ordering};

use super::waitq::{self, lock, Arc, Mutex, WaitList, Waiter, Wake};

const WRITER: usize = 1;
const QUEUED: usize = 2;
const READER: usize = 4;
const READERS: usize = !(WRITER | QUEUED);

/// Token: granted.
const GRANTED: usize = 1;

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Shared access.
    Read,
    /// Exclusive access.
    Write,
}

/// The raw reader-writer lock (module docs).
#[derive(Debug)]
pub(crate) struct RawRwLock<W> {
    state: AtomicUsize,
    queue: Mutex<WaitList<W, Kind>>,
}

impl<W: Wake> RawRwLock<W> {
    /// An unlocked lock.
    #[cfg(not(all(loom, test)))]
    pub(crate) const fn new() -> RawRwLock<W> {
        RawRwLock {
            state: AtomicUsize::new(0),
            queue: Mutex::new(WaitList::new()),
        }
    }

    /// An unlocked lock.
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> RawRwLock<W> {
        RawRwLock {
            state: AtomicUsize::new(0),
            queue: Mutex::new(WaitList::new()),
        }
    }

    /// Takes a read lock if nobody writes or waits.
    #[inline]
    pub(crate) fn try_read(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            if s & (WRITER | QUEUED) != 0 {
                return false;
            }
            let next = s
                .checked_add(READER)
                .expect("too many readers of one RwLock");
            match self
                .state
                .compare_exchange_weak(s, next, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Takes the write lock if it is free and nobody waits.
    #[inline]
    pub(crate) fn try_write(&self) -> bool {
        self.state
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Takes the lock in `kind` mode, waiting if needed (see
    /// `RawMutex::lock` for `waker` and `park`). `false`: `park` said stop
    /// and the lock is not held.
    #[inline]
    pub(crate) fn lock(
        &self,
        kind: Kind,
        waker: impl FnOnce() -> W,
        park: impl FnMut() -> bool,
    ) -> bool {
        let fast = match kind {
            Kind::Read => self.try_read(),
            Kind::Write => self.try_write(),
        };
        fast || self.lock_slow(kind, waker, park)
    }

    #[cold]
    fn lock_slow(&self, kind: Kind, waker: impl FnOnce() -> W, park: impl FnMut() -> bool) -> bool {
        let w = {
            let mut q = lock(&self.queue);
            let mut s = self.state.load(Ordering::Relaxed);
            loop {
                let free = match kind {
                    Kind::Read => s & WRITER == 0,
                    Kind::Write => s & (WRITER | READERS) == 0,
                };
                let (next, acquire) = if q.is_empty() && free {
                    let add = if kind == Kind::Read { READER } else { WRITER };
                    (s + add, true)
                } else {
                    (s | QUEUED, false)
                };
                match self.state.compare_exchange_weak(
                    s,
                    next,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) if acquire => return true,
                    Ok(_) => break,
                    Err(now) => s = now,
                }
            }
            let w = Arc::new(Waiter::new(waker()));
            q.push_back(w.clone(), GRANTED, kind);
            w
        };
        match waitq::wait(&w, park) {
            Some(_) => true,
            None => {
                let mut q = lock(&self.queue);
                q.remove(&w);
                let wake = self.grant(&mut q);
                drop(q);
                wake.iter().for_each(|w| w.wake());
                false
            }
        }
    }

    /// Releases a read lock.
    #[inline]
    pub(crate) fn read_unlock(&self) {
        let prev = self.state.fetch_sub(READER, Ordering::Release);
        debug_assert!(prev & READERS != 0, "read_unlock without a reader");
        if prev == READER | QUEUED {
            self.release_slow();
        }
    }

    /// Releases the write lock.
    #[inline]
    pub(crate) fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.state.fetch_and(!WRITER, Ordering::Release);
        self.release_slow();
    }

    /// Turns the held write lock into one read lock, atomically: no writer
    /// can take the lock in between. Leading readers that wait are granted
    /// too (a waiting writer stays first in line).
    #[inline]
    pub(crate) fn downgrade(&self) {
        // WRITER (1) + 3 = READER (4), QUEUED untouched: one RMW.
        let prev = self.state.fetch_add(READER - WRITER, Ordering::Release);
        debug_assert!(prev & WRITER != 0, "downgrade without the write lock");
        if prev & QUEUED != 0 {
            self.release_slow();
        }
    }

    #[cold]
    fn release_slow(&self) {
        let mut q = lock(&self.queue);
        let wake = self.grant(&mut q);
        drop(q);
        wake.iter().for_each(|w| w.wake());
    }

    /// Under the queue mutex: hands the lock to the leading compatible
    /// waiters; clears QUEUED if the queue empties. Returns whom to wake.
    fn grant(&self, q: &mut WaitList<W, Kind>) -> Vec<Arc<Waiter<W>>> {
        let mut woken = Vec::new();
        while let Some(head) = q.front() {
            let kind = head.payload;
            // Acquire: the releases of the owners that left happen before the
            // grant, hence before the new owner (through its selection).
            let s = self.state.load(Ordering::Acquire);
            let free = match kind {
                Kind::Read => s & WRITER == 0,
                Kind::Write => s & (WRITER | READERS) == 0,
            };
            if !free {
                break;
            }
            let entry = q.pop_front().expect("head exists");
            // Count the new owner in *before* selecting it: once selected it
            // may run and release at once. Only grants (under `q`) add while
            // QUEUED is set; releases only subtract, so `free` still holds.
            let add = if kind == Kind::Read { READER } else { WRITER };
            self.state.fetch_add(add, Ordering::Relaxed);
            if !entry.waiter.try_select(GRANTED) {
                self.state.fetch_sub(add, Ordering::Relaxed);
                continue; // aborted: skip
            }
            woken.push(entry.waiter);
            if kind == Kind::Write {
                break;
            }
        }
        if q.is_empty() {
            self.state.fetch_and(!QUEUED, Ordering::Relaxed);
        }
        woken
    }
}
