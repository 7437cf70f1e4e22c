//! The raw lock under `sync::Mutex` (and the Condvar's relock). Pure: only
//! `super::waitq` and std/loom, so `tests/loom_sync.rs` checks this code.
//!
//! # State word
//!
//! | bit    | meaning                                                       |
//! |--------|---------------------------------------------------------------|
//! | LOCKED | someone owns the lock                                         |
//! | QUEUED | the wait list is not empty: `unlock` must take the slow path  |
//!
//! QUEUED changes only under the queue's mutex, so under that mutex
//! `QUEUED == !queue.is_empty()` (the queue may hold dead entries of aborted
//! waiters; the unlocker skips them).
//!
//! Fast paths (uncontended): `lock` is one CAS `0 -> LOCKED` (Acquire),
//! `unlock` one CAS `LOCKED -> 0` (Release). No allocation, no syscall.
//!
//! Slow `lock`: spin briefly while nobody is queued; then, under the queue
//! mutex, set QUEUED with a CAS that also checks LOCKED is still set (if the
//! lock was released meanwhile, retry the grab instead), publish the waiter,
//! drop the mutex and wait. Because the unlocker must take the queue mutex to
//! see the waiter, and QUEUED was set while LOCKED was, no unlock can miss it.
//!
//! Slow `unlock`, under the queue mutex: pop the first live waiter and either
//! - *wake* it (token RETRY): the lock is released, the waiter competes for it
//!   with newcomers (barging). Throughput: the lock never sits idle while a
//!   parked fiber is being scheduled, and a fiber that unlocks and relocks at
//!   once does not pay a context switch each time; or
//! - *hand off* (token HANDOFF), if the waiter is *starving*: LOCKED stays set
//!   and ownership passes to it directly; nobody can barge.
//!
//! # Why a waiter cannot starve (bounded barging)
//! A woken waiter that loses the race goes back to the *front* of the queue
//! (it keeps its place) and counts the loss. Once the caller's policy
//! (`starving(losses)`) says it has waited long enough, its entry is marked
//! starving and the next unlock hands the lock to it. So every waiter reaches
//! the head in FIFO order and is then overtaken only a bounded number of times
//! (in the crate: for at most about 1 ms, as Go's mutex does).
//!
//! # Giving up (cancellation)
//! A waiter whose `park` says stop aborts its waiter; if the abort loses to a
//! selection it honours it: HANDOFF means it owns the lock (returns `true`),
//! RETRY means the lock was released to it, so it goes back to grabbing (it
//! then either takes the lock, or queues behind a new owner whose unlock will
//! wake the next waiter) — no wake is lost. A successful abort removes its
//! entry and clears QUEUED if the queue became empty.

#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicU32, Ordering};

use super::waitq::{self, lock, Arc, Mutex, WaitList, Waiter, Wake};

const LOCKED: u32 = 1;
const QUEUED: u32 = 2;

/// Token: the lock is yours.
const HANDOFF: usize = 1;
/// Token: the lock was released; try again.
const RETRY: usize = 2;

/// How many times a slow `lock` spins before it queues.
const SPINS: u32 = 6;

/// The raw lock (module docs). Entries carry "starving".
#[derive(Debug)]
pub(crate) struct RawMutex<W> {
    state: AtomicU32,
    queue: Mutex<WaitList<W, bool>>,
}

impl<W: Wake> RawMutex<W> {
    /// An unlocked lock.
    #[cfg(not(all(loom, test)))]
    pub(crate) const fn new() -> RawMutex<W> {
        RawMutex {
            state: AtomicU32::new(0),
            queue: Mutex::new(WaitList::new()),
        }
    }

    /// An unlocked lock.
    #[cfg(all(loom, test))]
    pub(crate) fn new() -> RawMutex<W> {
        RawMutex {
            state: AtomicU32::new(0),
            queue: Mutex::new(WaitList::new()),
        }
    }

    /// Takes the lock if it is free; never waits.
    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Ordering::Relaxed);
        while s & LOCKED == 0 {
            match self.state.compare_exchange_weak(
                s,
                s | LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
        false
    }

    /// Takes the lock, waiting if needed. `waker` makes the waiter's waker
    /// (called at most once, on the slow path); `park` parks once and says
    /// whether to keep waiting; `starving(losses)` says whether a waiter that
    /// lost `losses` races must now be handed the lock. `false`: `park` said
    /// stop and the lock is not held.
    #[inline]
    pub(crate) fn lock(
        &self,
        waker: impl FnOnce() -> W,
        park: impl FnMut() -> bool,
        starving: impl FnMut(u32) -> bool,
    ) -> bool {
        if self
            .state
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return true;
        }
        self.lock_slow(waker, park, starving)
    }

    #[cold]
    fn lock_slow(
        &self,
        waker: impl FnOnce() -> W,
        mut park: impl FnMut() -> bool,
        mut starving: impl FnMut(u32) -> bool,
    ) -> bool {
        let mut waker = Some(waker);
        let mut waiter: Option<Arc<Waiter<W>>> = None;
        let mut spins = 0;
        let mut losses = 0;
        loop {
            if self.try_lock() {
                return true;
            }
            if spins < SPINS && self.state.load(Ordering::Relaxed) & QUEUED == 0 {
                for _ in 0..(1 << spins) {
                    std::hint::spin_loop();
                }
                spins += 1;
                continue;
            }
            let w = waiter
                .get_or_insert_with(|| {
                    Arc::new(Waiter::new((waker.take().expect("waker made once"))()))
                })
                .clone();
            {
                let mut q = lock(&self.queue);
                // Set QUEUED only while LOCKED: then the owner's unlock must
                // come through the queue mutex and will see this waiter.
                let mut s = self.state.load(Ordering::Relaxed);
                let queued = loop {
                    if s & LOCKED == 0 {
                        break false;
                    }
                    match self.state.compare_exchange_weak(
                        s,
                        s | QUEUED,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => break true,
                        Err(now) => s = now,
                    }
                };
                if !queued {
                    continue;
                }
                if losses == 0 {
                    q.push_back(w.clone(), HANDOFF, false);
                } else {
                    let starve = starving(losses);
                    q.push_front(w.clone(), HANDOFF, starve);
                }
            }
            match waitq::wait(&w, &mut park) {
                Some(HANDOFF) => return true,
                Some(_) => {
                    // RETRY: released to us; compete again, keeping our place.
                    losses += 1;
                    w.reset();
                }
                None => {
                    let mut q = lock(&self.queue);
                    q.remove(&w);
                    if q.is_empty() {
                        self.state.fetch_and(!QUEUED, Ordering::Relaxed);
                    }
                    return false;
                }
            }
        }
    }

    /// Releases the lock.
    ///
    /// The caller must hold the lock (the safe wrappers guarantee it).
    #[inline]
    pub(crate) fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.unlock_slow();
    }

    #[cold]
    fn unlock_slow(&self) {
        let mut q = lock(&self.queue);
        // Nobody else changes the state now: LOCKED is ours, and QUEUED only
        // changes under `q`.
        debug_assert_eq!(self.state.load(Ordering::Relaxed) & LOCKED, LOCKED);
        while let Some(entry) = q.pop_front() {
            let rest = if q.is_empty() { 0 } else { QUEUED };
            if entry.payload {
                if entry.waiter.try_select(HANDOFF) {
                    self.state.store(LOCKED | rest, Ordering::Relaxed);
                    drop(q);
                    entry.waiter.wake();
                    return;
                }
            } else if entry.waiter.try_select(RETRY) {
                self.state.store(rest, Ordering::Release);
                drop(q);
                entry.waiter.wake();
                return;
            }
            // A dead entry (its owner aborted): skip it.
        }
        self.state.store(0, Ordering::Release);
    }
}
