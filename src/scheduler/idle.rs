//! A worker's sleep-state word: the handshake that keeps a worker from
//! sleeping through work queued for it (RELIABILITY row 1). Pure: no crate
//! imports, so `tests/loom_idle.rs` model-checks this exact code.
//!
//! | state           | meaning                                             |
//! |-----------------|-----------------------------------------------------|
//! | AWAKE           | running or searching for work                       |
//! | SLEEPING        | about to park, or parked, on its thread             |
//! | POLLING         | about to block, or blocked, in `epoll_wait`         |
//! | WOKEN_SEARCHING | woken to look for stealable work; counted as a searcher by its waker |
//!
//! The handshake is Dekker's: the worker *publishes* SLEEPING/POLLING, issues a
//! SeqCst fence, then *re-checks* every queue it could be given work through;
//! a producer *pushes* its work, issues a SeqCst fence, then *reads* the state.
//! With both fences, at least one side sees the other: either the worker finds
//! the work in its re-check, or the producer sees it asleep and wakes it. The
//! wake itself is a CAS from the sleeping state, so a sleeper is woken (one
//! syscall) by one producer only.

#[cfg(all(loom, test))]
use loom::sync::atomic::{fence, AtomicU32, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// Running or searching.
pub(crate) const AWAKE: u32 = 0;
/// Parked on its thread.
pub(crate) const SLEEPING: u32 = 1;
/// Blocked in the reactor.
pub(crate) const POLLING: u32 = 2;
/// Woken to search; its waker added it to the searcher count.
pub(crate) const WOKEN_SEARCHING: u32 = 3;

/// How a producer must wake a worker it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WakeBy {
    /// `Thread::unpark` of the worker's thread.
    Unpark,
    /// The reactor's waker (the worker is in `epoll_wait`).
    Reactor,
}

/// One worker's sleep state.
#[derive(Debug)]
pub(crate) struct SleepState(AtomicU32);

impl Default for SleepState {
    fn default() -> Self {
        SleepState(AtomicU32::new(AWAKE))
    }
}

impl SleepState {
    /// Worker: publish that it is going to sleep (`polling`: in the reactor).
    /// The caller must then re-check all its work sources before blocking.
    pub(crate) fn prepare(&self, polling: bool) {
        self.0
            .store(if polling { POLLING } else { SLEEPING }, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Worker: is it still asleep (nobody claimed it)?
    pub(crate) fn is_asleep(&self) -> bool {
        matches!(self.0.load(Ordering::Acquire), SLEEPING | POLLING)
    }

    /// Is it blocked (or about to block) in the reactor?
    pub(crate) fn is_polling(&self) -> bool {
        self.0.load(Ordering::Acquire) == POLLING
    }

    /// Worker: back to AWAKE. Returns `true` if it was woken as a searcher
    /// (it then owns one count of the searcher counter).
    pub(crate) fn wake_up(&self) -> bool {
        self.0.swap(AWAKE, Ordering::SeqCst) == WOKEN_SEARCHING
    }

    /// Producer, after pushing work (with its own SeqCst fence before): claim
    /// the worker if it sleeps. `as_searcher`: mark it WOKEN_SEARCHING.
    pub(crate) fn claim(&self, as_searcher: bool) -> Option<WakeBy> {
        let state = self.0.load(Ordering::SeqCst);
        let by = match state {
            SLEEPING => WakeBy::Unpark,
            POLLING => WakeBy::Reactor,
            _ => return None,
        };
        let next = if as_searcher { WOKEN_SEARCHING } else { AWAKE };
        self.0
            .compare_exchange(state, next, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| by)
    }
}

/// Producer side fence: call between pushing work and `claim`.
pub(crate) fn producer_fence() {
    fence(Ordering::SeqCst);
}
