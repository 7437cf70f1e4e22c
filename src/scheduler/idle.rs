//! The spinning protocol: which worker sleeps, which one is woken, and the
//! count of workers *searching* for stealable work. Everything that wakes a
//! worker goes through here (`notify_worker`, `notify_any`, `notify_all`),
//! and so does every change of the searcher count. Pure: no crate imports
//! (the caller passes the wake itself as a closure), so `tests/loom_idle.rs`
//! model-checks this exact code.
//!
//! # Why this shape (Go's runtime/proc.go weighed the same choices)
//! Work appears on one thread and must reach an idle one without waking
//! every thread for every spawn and without a worker sleeping next to work:
//! - One central run queue and sleep list under a lock would make the
//!   decision easy and every spawn, wake and sleep contend on that lock.
//! - Handing each new fiber straight to a sleeping worker (wake it, give it
//!   the fiber) costs a wake per spawn, and the woken thread often finds the
//!   spawner already done with the fiber's work: threads thrash between
//!   sleeping and running.
//! - Waking an idle worker for every new fiber without handing it over is
//!   worse still: most woken workers find nothing and go back to sleep.
//!
//! So, as Go does: a worker that runs out of work becomes a *searcher*
//! before it sleeps; new stealable work wakes a sleeper only when nobody is
//! searching (someone searching will find it), and that sleeper is woken as
//! a searcher (counted before it runs, so a burst of spawns wakes one worker,
//! not one per spawn); a searcher that finds work while it is the last one
//! searching wakes another, so stealing fans out as long as there is more.
//! The last searcher to give up re-checks every queue after it stops counting
//! (its `idle` re-check), so a spawn that saw "someone searches" is not lost.
//!
//! # A worker's sleep word
//! | state           | meaning                                             | set by |
//! |-----------------|-----------------------------------------------------|--------|
//! | AWAKE           | running, searching, or woken by another thread      | the worker (`woke`), a waker's claim |
//! | SLEEPING        | about to block, or blocked, in its own `epoll_wait` | the worker (`prepare_sleep`) |
//! | WOKEN_SEARCHING | claimed by `notify_any`; counted as a searcher by its waker | a waker's claim |
//!
//! The sleep handshake is Dekker's: the worker *publishes* SLEEPING, issues a
//! SeqCst fence, then *re-checks* every queue it could be given work through;
//! a producer *pushes* its work, issues a SeqCst fence, then *reads* the
//! word. With both fences at least one side sees the other: the worker finds
//! the work in its re-check, or the producer sees it asleep and wakes it. The
//! wake is a CAS from SLEEPING, so one sleeper costs one wake syscall (an
//! eventfd write to its poller) however many producers race. A sleeper that
//! returns from `epoll_wait` on its own (its sockets, its timer) swaps AWAKE
//! back and learns from the old value whether another thread woke it.
//!
//! # The searcher count
//! `searching` counts workers that are searching or were woken to search. A
//! worker adds itself when it starts a search (`start_search`), a waker adds
//! the sleeper it claims as a searcher; the worker removes itself once, when
//! it finds work (`found_work`, which may wake the next searcher) or gives up
//! (`give_up`). Each worker's own `Cell<bool>` says whether it holds a count,
//! so the count never goes below zero or leaks.
//!
//! # How long a searcher spins ([`SpinBudget`])
//! Between its steal rounds a searcher spins, looking at its inbox; the
//! length of that spin is learned, per worker, from what ended its last idle
//! periods, never fixed by a mode that sticks:
//! | what happened | next spin |
//! |---|---|
//! | its own poller or a timer ended the sleep (IO-bound fibers, which never move) | `SPIN_MIN` (~1 µs): spinning would only take CPU from the rest of the machine |
//! | work from another thread was found while searching (a steal, a fiber woken into its inbox) | at least `SPIN_REMOTE` (~5 µs, about the fixed long spin of before on this CPU) |
//! | another thread woke it for its inbox after it slept `t` < `SPIN_MAX` | `2t`, capped at `SPIN_MAX` (~64 µs): a spin that long would have caught that wake without the sleep |
//! | another thread woke it after a longer sleep, or woke it to search (a spawn) | `SPIN_REMOTE` |
//!
//! The third row is what keeps a ping-pong between fibers on two workers out
//! of the slow mode: once each side sleeps, every message costs a wake
//! through the eventfd (tens of µs on a VM), longer than any fixed short
//! spin, so both sides keep sleeping. Measuring the sleep that a wake ended
//! sizes the spin to the actual wake latency of the machine; the next
//! message then finds the other side spinning. The cap bounds what an
//! unproductive spin costs: at most `SPIN_MAX` of CPU per idle period, and
//! only while other threads keep waking this one that often.

use std::cell::Cell;
use std::time::Duration;

#[cfg(all(loom, test))]
use loom::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};
#[cfg(not(all(loom, test)))]
use std::sync::atomic::{fence, AtomicU32, AtomicUsize, Ordering};

/// Running or searching.
pub(crate) const AWAKE: u32 = 0;
/// Blocked (or about to block) in its poller.
pub(crate) const SLEEPING: u32 = 1;
/// Woken to search; its waker added it to the searcher count.
pub(crate) const WOKEN_SEARCHING: u32 = 2;

/// What ended a worker's sleep (from `Idle::woke`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Woken {
    /// Its own poller returned (its sockets, its timer, or a stale wake), or
    /// its re-check found work before it blocked.
    ByItself,
    /// Another thread claimed it: work was pushed to its inbox, or the
    /// runtime is shutting down.
    ByOther,
    /// Another thread claimed it to search for stealable work; it now holds
    /// one count of the searcher counter.
    ToSearch,
}

/// One worker's sleep word, alone on its cache line(s): wakers CAS it while
/// the worker next to it in the array may be CASed by another waker, and a
/// shared line would bounce between them on every cross-worker wake.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct SleepState(AtomicU32);

impl Default for SleepState {
    fn default() -> Self {
        SleepState(AtomicU32::new(AWAKE))
    }
}

impl SleepState {
    /// Worker: publish "going to sleep", then fence. The caller must then
    /// re-check all its work sources before blocking.
    fn prepare(&self) {
        self.0.store(SLEEPING, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    /// Still asleep (nobody claimed it)?
    fn is_asleep(&self) -> bool {
        self.0.load(Ordering::SeqCst) == SLEEPING
    }

    /// Worker: back to AWAKE; what the word held says who woke it.
    fn wake_up(&self) -> Woken {
        match self.0.swap(AWAKE, Ordering::SeqCst) {
            WOKEN_SEARCHING => Woken::ToSearch,
            SLEEPING => Woken::ByItself,
            _ => Woken::ByOther,
        }
    }

    /// Producer (after its fence): claim the worker if it sleeps. The load
    /// first keeps the common case (the worker is awake) a read of a line
    /// only its worker writes, where a failing CAS would still take the line
    /// exclusive and make the worker's next write fetch it back.
    fn claim(&self, as_searcher: bool) -> bool {
        let next = if as_searcher { WOKEN_SEARCHING } else { AWAKE };
        self.0.load(Ordering::SeqCst) == SLEEPING
            && self
                .0
                .compare_exchange(SLEEPING, next, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }
}

/// The idle coordination of one runtime.
#[derive(Debug)]
pub(crate) struct Idle {
    sleepers: Box<[SleepState]>,
    /// Workers searching for stealable work (or woken to).
    searching: AtomicUsize,
    /// Where `notify_any` starts looking, so wakes spread over the workers.
    next: AtomicUsize,
}

impl Idle {
    /// Coordination for `workers` workers, all awake.
    pub(crate) fn new(workers: usize) -> Idle {
        Idle {
            sleepers: (0..workers).map(|_| SleepState::default()).collect(),
            searching: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// Workers counted as searching now (a snapshot; for the loom models).
    #[allow(dead_code)]
    pub(crate) fn searching(&self) -> usize {
        self.searching.load(Ordering::SeqCst)
    }

    /// Is worker `index` asleep (nobody claimed it yet)? (For the loom
    /// models.)
    #[allow(dead_code)]
    pub(crate) fn is_asleep(&self, index: usize) -> bool {
        self.sleepers[index].is_asleep()
    }

    // ---- producers -------------------------------------------------------

    /// After pushing into worker `index`'s inbox: wake it if it sleeps.
    /// Returns whether `wake` was called.
    pub(crate) fn notify_worker(&self, index: usize, wake: impl Fn(usize)) -> bool {
        fence(Ordering::SeqCst);
        if self.sleepers[index].claim(false) {
            wake(index);
            return true;
        }
        false
    }

    /// After pushing stealable work: wake one sleeping worker to search for
    /// it, unless some worker is searching already. Returns whether `wake`
    /// was called.
    pub(crate) fn notify_any(&self, wake: impl Fn(usize)) -> bool {
        fence(Ordering::SeqCst);
        if self.searching.load(Ordering::SeqCst) != 0 {
            return false;
        }
        let n = self.sleepers.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n.max(1);
        for i in (0..n).map(|k| (start + k) % n) {
            if !self.sleepers[i].is_asleep() {
                continue;
            }
            // Count it as a searcher before it wakes, so a second spawn right
            // behind this one does not wake another worker.
            self.searching.fetch_add(1, Ordering::SeqCst);
            if self.sleepers[i].claim(true) {
                wake(i);
                return true;
            }
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        false
    }

    /// Wakes every sleeping worker (shutdown, last fiber gone).
    pub(crate) fn notify_all(&self, wake: impl Fn(usize)) {
        fence(Ordering::SeqCst);
        for i in 0..self.sleepers.len() {
            if self.sleepers[i].claim(false) {
                wake(i);
            }
        }
    }

    // ---- the worker `index` itself, with its own `searching` flag ---------

    /// Starts (or continues) a search for stealable work.
    pub(crate) fn start_search(&self, me: &Cell<bool>) {
        if !me.replace(true) {
            self.searching.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Found work: stops searching; the last searcher to stop wakes another,
    /// so remaining stealable work keeps being picked up.
    pub(crate) fn found_work(&self, me: &Cell<bool>, wake: impl Fn(usize)) {
        if me.replace(false) && self.searching.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.notify_any(wake);
        }
    }

    /// Gives up searching (about to sleep). The caller's re-check after
    /// `prepare_sleep` covers work pushed while it still counted.
    pub(crate) fn give_up(&self, me: &Cell<bool>) {
        if me.replace(false) {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Publishes "worker `index` is going to sleep"; re-check every work
    /// source after this, and block only if all are empty.
    pub(crate) fn prepare_sleep(&self, index: usize) {
        self.sleepers[index].prepare();
    }

    /// The worker is awake again (its poller returned, or its re-check found
    /// work). A worker woken to search takes over the count its waker added.
    pub(crate) fn woke(&self, index: usize, me: &Cell<bool>) -> Woken {
        let woken = self.sleepers[index].wake_up();
        // A sleeper gave up its own count before sleeping, so `me` is false
        // here; should it not be, keep the count exact anyway.
        if woken == Woken::ToSearch && me.replace(true) {
            self.searching.fetch_sub(1, Ordering::SeqCst);
        }
        woken
    }
}

/// Spin length after work from the worker's own poller or timers.
pub(crate) const SPIN_MIN: Duration = Duration::from_micros(1);
/// Spin length after work from another thread.
pub(crate) const SPIN_REMOTE: Duration = Duration::from_micros(5);
/// The longest spin: the longest sleep a spin is sized to bridge.
pub(crate) const SPIN_MAX: Duration = Duration::from_micros(64);

/// One worker's learned spin length (module docs, "How long a searcher
/// spins"). Only the worker itself touches it.
#[derive(Debug)]
pub(crate) struct SpinBudget(Cell<Duration>);

impl Default for SpinBudget {
    fn default() -> Self {
        SpinBudget(Cell::new(SPIN_MIN))
    }
}

impl SpinBudget {
    /// How long the next search may spin in all.
    pub(crate) fn get(&self) -> Duration {
        self.0.get()
    }

    /// Work from another thread turned up while searching (a steal, the
    /// inbox): spin at least `SPIN_REMOTE` next time.
    pub(crate) fn remote_work(&self) {
        self.0.set(self.0.get().max(SPIN_REMOTE));
    }

    /// A sleep of `slept` ended by `woken`: size the next spin from it.
    pub(crate) fn after_sleep(&self, woken: Woken, slept: Duration) {
        let next = match woken {
            Woken::ByItself => SPIN_MIN,
            Woken::ByOther if slept < SPIN_MAX => (slept * 2).clamp(SPIN_REMOTE, SPIN_MAX),
            // Woken to search (a spawn burst): the stealable work is there
            // now or not at all; a long spin would only take the CPU the
            // spawner needs (on a VM its vCPU may share a core with ours).
            Woken::ByOther | Woken::ToSearch => SPIN_REMOTE,
        };
        self.0.set(next);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_spin_follows_what_ended_the_last_sleep() {
        let spin = SpinBudget::default();
        assert_eq!(spin.get(), SPIN_MIN);
        // Woken by another thread after 20 µs: spin long enough to have
        // caught that wake, with room (2x).
        spin.after_sleep(Woken::ByOther, Duration::from_micros(20));
        assert_eq!(spin.get(), Duration::from_micros(40));
        // A very short sleep still gets the remote floor; a long one too.
        spin.after_sleep(Woken::ByOther, Duration::from_nanos(500));
        assert_eq!(spin.get(), SPIN_REMOTE);
        // Woken to search (a spawn): no growth, however short the sleep.
        spin.after_sleep(Woken::ToSearch, Duration::from_micros(20));
        assert_eq!(spin.get(), SPIN_REMOTE);
        spin.after_sleep(Woken::ByOther, Duration::from_micros(50));
        assert_eq!(spin.get(), SPIN_MAX, "capped");
        spin.after_sleep(Woken::ByOther, Duration::from_millis(5));
        assert_eq!(spin.get(), SPIN_REMOTE);
        // Its own poller or timer: back to the short spin at once (no mode
        // that sticks).
        spin.after_sleep(Woken::ByItself, Duration::from_micros(20));
        assert_eq!(spin.get(), SPIN_MIN);
        // Work from another thread found while searching: at least remote.
        spin.remote_work();
        assert_eq!(spin.get(), SPIN_REMOTE);
        spin.after_sleep(Woken::ByOther, Duration::from_micros(30));
        spin.remote_work();
        assert_eq!(spin.get(), Duration::from_micros(60), "never shortened");
    }
}
