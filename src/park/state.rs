//! The park state word of one fiber: the pure state machine described by the
//! table at the top of `park.rs` (whose "Unwinding" section says why an
//! unwinding fiber waits in place, PARKED_IN_PLACE, and what its worker runs
//! meanwhile). It imports nothing from the crate, so the
//! loom model in `tests/loom_park.rs` checks exactly this code.

#[cfg(all(loom, test))]
use loom::sync::atomic::{AtomicU32, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{AtomicU32, Ordering};

/// Running (or runnable), no wake pending.
pub(crate) const EMPTY: u32 = 0;
/// A wake arrived while the fiber was not parked: its next park returns at once.
pub(crate) const NOTIFIED: u32 = 1;
/// Suspended and committed by its worker: the next wake must schedule it.
pub(crate) const PARKED: u32 = 2;
/// Blocking its worker thread in place (the fiber is unwinding a panic).
pub(crate) const PARKED_IN_PLACE: u32 = 3;

/// What an `unpark` call must do after updating the state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Nothing: the fiber was running; the token is left for its next park.
    Token,
    /// The fiber was parked: put it back on its worker's run queue.
    Schedule,
    /// The fiber blocks its worker thread in place: unpark that thread.
    Thread,
}

/// One fiber's park state word.
#[derive(Debug)]
pub(crate) struct ParkState(AtomicU32);

impl ParkState {
    /// A fresh fiber: running, no token.
    pub(crate) fn new() -> ParkState {
        ParkState(AtomicU32::new(EMPTY))
    }

    /// Fiber side, before it suspends: consumes a pending token. `true` means
    /// "a wake is already here, do not park".
    pub(crate) fn take_token(&self) -> bool {
        self.0
            .compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Worker side, after the fiber's stack is no longer in use (step 2 of the
    /// protocol). `true`: the fiber is now parked and belongs to whoever wakes
    /// it. `false`: a wake arrived since the fiber decided to park; the token
    /// is consumed and the worker must run the fiber again.
    pub(crate) fn commit(&self) -> bool {
        match self
            .0
            .compare_exchange(EMPTY, PARKED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => {
                debug_assert_eq!(state, NOTIFIED, "commit saw park state {state}");
                self.0.store(EMPTY, Ordering::Relaxed);
                false
            }
        }
    }

    /// Fiber side, when it must block its thread instead of switching.
    /// `true`: now PARKED_IN_PLACE, wait with [`ParkState::is_parked_in_place`].
    /// `false`: a token was pending and is consumed; do not wait.
    pub(crate) fn park_in_place(&self) -> bool {
        match self
            .0
            .compare_exchange(EMPTY, PARKED_IN_PLACE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(_) => {
                self.0.store(EMPTY, Ordering::Relaxed);
                false
            }
        }
    }

    /// Parked (committed, or blocking in place)?
    pub(crate) fn is_parked(&self) -> bool {
        matches!(self.0.load(Ordering::Acquire), PARKED | PARKED_IN_PLACE)
    }

    /// Still blocked in place (no wake yet)?
    pub(crate) fn is_parked_in_place(&self) -> bool {
        self.0.load(Ordering::Acquire) == PARKED_IN_PLACE
    }

    /// Gives up an in-place wait that timed out. `false` if a wake won the race
    /// (the state is then already EMPTY and the wake is spent on this return).
    pub(crate) fn cancel_in_place(&self) -> bool {
        self.0
            .compare_exchange(PARKED_IN_PLACE, EMPTY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Any thread: wakes the fiber. Exactly one caller gets `Schedule` (or
    /// `Thread`) per committed park, so a fiber is never resumed twice for one
    /// wake.
    pub(crate) fn unpark(&self) -> Wake {
        let mut state = self.0.load(Ordering::Acquire);
        loop {
            let (next, wake) = match state {
                EMPTY | NOTIFIED => (NOTIFIED, Wake::Token),
                PARKED => (EMPTY, Wake::Schedule),
                _ => (EMPTY, Wake::Thread),
            };
            // A release RMW even for NOTIFIED -> NOTIFIED, so the waker's
            // writes are visible to the fiber that consumes the token.
            match self
                .0
                .compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return wake,
                Err(actual) => state = actual,
            }
        }
    }
}
