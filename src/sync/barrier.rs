//! `Barrier`: std's API over a wait list.
//!
//! Protocol: `state` (an internal mutex) holds how many callers arrived in
//! the current round and the round's waiters. The caller that completes the
//! round (the leader) resets the count and selects every waiter of the round
//! (`waitq.rs`), under the mutex, so a new round never mixes with the old
//! one. A fiber cancelled while waiting removes its entry and un-counts
//! itself; if the round completed first, it simply leaves.

use std::fmt;
use std::sync::Mutex as StdMutex;

use super::waitq::{self, lock, Arc, WaitList};
use super::{parker, unwind_cancelled, Waiter};
use crate::park::{Unparker, WaitReason};

/// Lets a fixed number of fibers or threads wait for each other, like
/// [`std::sync::Barrier`].
///
/// ```
/// use std::sync::Arc;
/// use threadlet::sync::Barrier;
///
/// threadlet::run(|| {
///     let barrier = Arc::new(Barrier::new(3));
///     let handles: Vec<_> = (0..3)
///         .map(|_| {
///             let b = barrier.clone();
///             threadlet::spawn(move || b.wait().is_leader())
///         })
///         .collect();
///     let leaders = handles.into_iter().map(|h| h.join().unwrap()).filter(|l| *l).count();
///     assert_eq!(leaders, 1);
/// });
/// ```
pub struct Barrier {
    n: usize,
    state: StdMutex<Round>,
}

struct Round {
    arrived: usize,
    waiters: WaitList<Unparker, ()>,
}

/// Returned by [`Barrier::wait`]; one caller per round is the leader.
pub struct BarrierWaitResult(bool);

impl BarrierWaitResult {
    /// `true` for exactly one caller of each round (the one that completed it).
    pub fn is_leader(&self) -> bool {
        self.0
    }
}

impl fmt::Debug for BarrierWaitResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWaitResult")
            .field("is_leader", &self.0)
            .finish()
    }
}

impl Barrier {
    /// A barrier for `n` parties (`0` and `1` never wait).
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n,
            state: StdMutex::new(Round {
                arrived: 0,
                waiters: WaitList::new(),
            }),
        }
    }

    /// Waits until `n` parties have called `wait` in this round.
    pub fn wait(&self) -> BarrierWaitResult {
        let mut round = lock(&self.state);
        round.arrived += 1;
        if round.arrived >= self.n {
            round.arrived = 0;
            let woken = round.waiters.select_all();
            drop(round);
            woken.iter().for_each(|w| w.wake());
            return BarrierWaitResult(true);
        }
        let waiter = Arc::new(Waiter::new(Unparker::current()));
        round.waiters.push_back(waiter.clone(), 1, ());
        drop(round);
        if waitq::wait(&waiter, parker(None, WaitReason::Barrier)).is_some() {
            return BarrierWaitResult(false);
        }
        let mut round = lock(&self.state);
        if round.waiters.remove(&waiter).is_some() {
            round.arrived -= 1;
        }
        drop(round);
        unwind_cancelled();
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier").finish_non_exhaustive()
    }
}
