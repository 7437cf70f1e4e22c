//! Timers, `sleep`, `sleep_until` and `timeout`.
//!
//! # Design
//! Every worker owns a binary heap of deadlines for the fibers it runs. A
//! fiber arms a timer only for itself, and only on its home worker, so the
//! heap is touched by exactly one thread: no lock, no atomics.
//!
//! A fiber's timer state lives in its header (`TimerSlot`): `seq`/`at`, the
//! sequence number and deadline of its entry in the heap (0: none), and
//! `want`, the deadline it waits for right now (`None` while it runs or
//! waits without one). The states and who moves between them (all on the
//! home worker):
//!
//! | event | entry in the heap | `want` |
//! |---|---|---|
//! | park with deadline `d`, no entry or one due after `d` | push `(d, new seq)`; an old entry goes stale | `d` |
//! | park with deadline `d`, entry due at or before `d` | kept: nothing pushed | `d` |
//! | woken (`cancel`) | kept | `None` |
//! | entry due, `want` passed | popped, fiber unparked | `None` |
//! | entry due, `want` later | re-filed at `want` (same seq) | unchanged |
//! | entry due, `want` `None` | popped, nothing happens | `None` |
//! | fiber finished (`discard`) | stale | `None` |
//!
//! Why: a server that re-arms a read timeout on every read (each one a
//! little later than the last) would otherwise push and cancel one heap
//! entry per read, O(log n) with a cache miss per level at 10k connections.
//! Keeping the earlier entry and re-filing it once when it comes due costs
//! one push per *timeout period* per connection instead (tokio's timer
//! entries are reset lazily the same way). The price: a worker may wake at
//! an entry's older deadline to re-file it, at most once per period.
//!
//! Stale entries (`seq` no longer the fiber's) are skipped when they reach
//! the top, and the heap is rebuilt without them once they outnumber the
//! live ones.
//!
//! The worker sleeps (in `epoll_wait` or a thread park) no longer than until
//! its nearest entry, then fires what is due through the park protocol.
//! Plain threads never use these heaps: their timed waits are
//! `thread::park_timeout`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

use crate::fiber::header::TimerSlot;
use crate::fiber::{self, FiberRef, Header};
use crate::park::{self, Interrupted};

struct Entry {
    deadline: Instant,
    seq: u64,
    fiber: FiberRef,
}

impl Entry {
    fn is_live(&self) -> bool {
        self.fiber.timer_seq() == self.seq
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

/// One worker's timers (see the module docs). Not shared between threads.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    next_seq: u64,
    stale: usize,
}

impl Timers {
    /// `fiber` parks until `deadline` at the latest: keep its entry if that
    /// comes due no later, else file a new one (module docs).
    pub(crate) fn add(&mut self, deadline: Instant, fiber: FiberRef) {
        let mut slot = fiber.timer();
        slot.want = Some(deadline);
        if slot.seq != 0 && slot.at.is_some_and(|at| at <= deadline) {
            fiber.set_timer(slot);
            return;
        }
        let replaced = slot.seq != 0;
        self.next_seq += 1;
        slot.seq = self.next_seq;
        slot.at = Some(deadline);
        // The new seq first: a rebuild in `note_stale` must see the old
        // entry as stale, or it keeps it and stops counting it.
        fiber.set_timer(slot);
        if replaced {
            self.note_stale();
        }
        self.heap.push(Entry {
            deadline,
            seq: self.next_seq,
            fiber,
        });
    }

    /// `fiber` was woken (or its wait ended): it no longer waits for its
    /// deadline. Its entry stays, for the next wait to reuse.
    pub(crate) fn cancel(&mut self, fiber: &Header) {
        let mut slot = fiber.timer();
        slot.want = None;
        fiber.set_timer(slot);
    }

    /// `fiber` finished: its entry goes stale (and stops holding it alive).
    pub(crate) fn discard(&mut self, fiber: &Header) {
        let slot = fiber.timer();
        fiber.set_timer(TimerSlot::default());
        if slot.seq != 0 {
            self.note_stale();
        }
    }

    /// One more stale entry; rebuilds the heap once they outnumber the live.
    fn note_stale(&mut self) {
        self.stale += 1;
        if self.stale > 64 && self.stale * 2 > self.heap.len() {
            let live: Vec<Entry> = std::mem::take(&mut self.heap)
                .into_vec()
                .into_iter()
                .filter(Entry::is_live)
                .collect();
            self.heap = BinaryHeap::from(live);
            self.stale = 0;
        }
    }

    /// The earliest live entry's deadline (perhaps one that will only be
    /// re-filed when it comes due).
    pub(crate) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if top.is_live() {
                return Some(top.deadline);
            }
            self.heap.pop();
            self.stale = self.stale.saturating_sub(1);
        }
        None
    }

    /// Fires every live timer due at `now`. Returns how many fired.
    pub(crate) fn fire(&mut self, now: Instant) -> usize {
        let mut fired = 0;
        while let Some(top) = self.heap.peek() {
            if top.is_live() && top.deadline > now {
                break;
            }
            let mut entry = self.heap.pop().expect("peeked");
            if !entry.is_live() {
                self.stale = self.stale.saturating_sub(1);
                continue;
            }
            let mut slot = entry.fiber.timer();
            match slot.want {
                Some(want) if want > now => {
                    // Waits for a later deadline than this entry's: re-file.
                    slot.at = Some(want);
                    entry.fiber.set_timer(slot);
                    entry.deadline = want;
                    self.heap.push(entry);
                }
                Some(_) => {
                    entry.fiber.set_timer(TimerSlot::default());
                    park::unpark_fiber(&entry.fiber);
                    fired += 1;
                }
                None => entry.fiber.set_timer(TimerSlot::default()),
            }
        }
        fired
    }

    /// Is there anything (live or stale) in the heap?
    pub(crate) fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

/// Puts the calling fiber (or thread) to sleep for at least `dur`.
pub fn sleep(dur: Duration) {
    fiber::sleep(dur)
}

/// Puts the calling fiber (or thread) to sleep until `deadline`.
pub fn sleep_until(deadline: Instant) {
    fiber::sleep_until(deadline)
}

/// Runs `f` on a new fiber and waits at most `dur` for it. If it finishes in
/// time its value is returned (its panic is re-raised here). If not, the
/// fiber is cancelled — it unwinds at its current or next blocking call,
/// running its destructors — and the result is an `io::Error` of kind
/// `TimedOut`; `timeout` returns at once and does not wait for that unwind.
///
/// If the fiber that calls `timeout` is itself cancelled while it waits, the
/// inner fiber is cancelled too and joined, but for no longer than `dur`
/// would have waited anyway (an inner fiber that never blocks cannot be
/// interrupted; past the deadline it is left to unwind on its own, as on
/// expiry). Then the caller unwinds with `Cancelled`. So cancelling a
/// request handler also stops the work it runs under a timeout.
///
/// A lock `f` holds when time runs out is poisoned, as if `f` had panicked
/// there ([`JoinHandle::cancel`](crate::JoinHandle::cancel) says why): the
/// expiry cut its critical section short at a blocking call, so the data
/// may be half updated. Keep blocking calls out of critical sections you
/// run under a timeout, or recover with `PoisonError::into_inner`.
///
/// ```
/// use std::time::Duration;
/// threadlet::run(|| {
///     let quick = threadlet::time::timeout(Duration::from_secs(5), || 40 + 2);
///     assert_eq!(quick.unwrap(), 42);
///     let slow = threadlet::time::timeout(Duration::from_millis(10), || {
///         threadlet::time::sleep(Duration::from_secs(3600));
///     });
///     assert_eq!(slow.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
///
/// # Panics
/// Outside a threadlet runtime, or when `f` panics.
pub fn timeout<F, T>(dur: Duration, f: F) -> io::Result<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let deadline = Instant::now().checked_add(dur);
    let handle = fiber::spawn(f);
    let result = match handle.join_until(deadline, true) {
        Ok(result) => result,
        Err(Interrupted::TimedOut) => {
            handle.cancel();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("operation timed out after {dur:?}; the fiber running it was cancelled"),
            ));
        }
        Err(Interrupted::Cancelled) => {
            // Nested cancellation (RELIABILITY row 23): the inner work goes
            // with the caller, which waits for it up to the same deadline.
            handle.cancel();
            let _ = handle.join_until(deadline, false);
            park::unwind_cancelled()
        }
    };
    match result {
        Ok(value) => Ok(value),
        Err(payload) => std::panic::resume_unwind(payload),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::fiber::header::test_support;
    use crate::fiber::FiberRef;
    use crate::time::Timers;

    /// Did a timer fire for `f` since the last check? (Firing unparks it; a
    /// test fiber is never parked, so the wake is left as its park token.)
    fn fired(f: &FiberRef) -> bool {
        f.park_state().take_token()
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let (a, b, c) = (
            test_support::fiber(),
            test_support::fiber(),
            test_support::fiber(),
        );
        let mut timers = Timers::default();
        timers.add(at(30), c.clone());
        timers.add(at(10), a.clone());
        timers.add(at(20), b.clone());
        assert_eq!(timers.next_deadline(), Some(at(10)));
        assert_eq!(timers.fire(at(5)), 0);
        assert!(!fired(&a) && !fired(&b) && !fired(&c));
        assert_eq!(timers.fire(at(20)), 2);
        assert!(fired(&a) && fired(&b) && !fired(&c));
        assert_eq!((a.timer_seq(), b.timer_seq()), (0, 0));
        assert_eq!(timers.next_deadline(), Some(at(30)));
        assert_eq!(timers.fire(at(30)), 1);
        assert!(fired(&c));
        assert_eq!(timers.next_deadline(), None);
        assert!(timers.is_empty());
    }

    #[test]
    fn a_cancelled_timer_never_fires() {
        let t0 = Instant::now();
        let f = test_support::fiber();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_millis(10), f.clone());
        timers.cancel(&f);
        // The entry stays for a later wait to reuse; when it comes due with
        // nobody waiting, it goes without a wake.
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.fire(t0 + Duration::from_secs(1)), 0);
        assert!(!fired(&f));
        assert_eq!(f.timer_seq(), 0);
        assert_eq!(timers.next_deadline(), None);
        assert!(timers.is_empty());
        // Cancelling a disarmed timer is a no-op.
        timers.cancel(&f);
        assert_eq!(timers.stale, 0);
    }

    #[test]
    fn a_later_deadline_reuses_the_entry_and_is_refiled_when_it_comes_due() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let f = test_support::fiber();
        let mut timers = Timers::default();
        // A read timeout re-armed on every read, each a little later: one
        // heap entry for all of them.
        for ms in [10, 11, 12, 13] {
            timers.add(at(ms), f.clone());
            timers.cancel(&f);
        }
        timers.add(at(50), f.clone());
        assert_eq!(timers.heap.len(), 1, "no push per re-arm");
        // Due at its first deadline, but the fiber waits until 50: re-filed,
        // no wake.
        assert_eq!(timers.next_deadline(), Some(at(10)));
        assert_eq!(timers.fire(at(20)), 0);
        assert!(!fired(&f));
        assert_eq!(timers.next_deadline(), Some(at(50)));
        assert_eq!(timers.fire(at(50)), 1);
        assert!(fired(&f));
        assert!(timers.is_empty());
    }

    #[test]
    fn an_earlier_deadline_files_a_new_entry() {
        let t0 = Instant::now();
        let f = test_support::fiber();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_millis(50), f.clone());
        timers.add(t0 + Duration::from_millis(10), f.clone());
        // The first entry is stale: neither the deadline nor a fire sees it.
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.fire(t0 + Duration::from_millis(10)), 1);
        assert!(fired(&f));
        assert_eq!(timers.fire(t0 + Duration::from_millis(60)), 0);
        assert!(!fired(&f));
        assert!(timers.is_empty());
    }

    #[test]
    fn entries_replaced_by_earlier_deadlines_are_compacted() {
        let t0 = Instant::now();
        let f = test_support::fiber();
        let mut timers = Timers::default();
        // Each deadline earlier than the last: every add files a new entry
        // and makes the previous one stale.
        for ms in (1..=200u64).rev() {
            timers.add(t0 + Duration::from_millis(ms), f.clone());
        }
        assert!(
            timers.heap.len() < 100,
            "stale entries kept: {} for one live timer",
            timers.heap.len()
        );
        assert_eq!(timers.heap.len() - timers.stale, 1, "the count is exact");
        assert_eq!(timers.fire(t0 + Duration::from_secs(1)), 1);
        assert!(fired(&f));
        assert!(timers.is_empty());
    }

    #[test]
    fn a_finished_fibers_entry_is_discarded() {
        let t0 = Instant::now();
        let f = test_support::fiber();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_millis(10), f.clone());
        timers.cancel(&f);
        timers.discard(&f);
        assert_eq!(timers.stale, 1);
        assert_eq!(timers.next_deadline(), None, "stale: skipped");
        assert!(timers.is_empty(), "and dropped, with its hold on the fiber");
        assert_eq!(std::sync::Arc::strong_count(&f), 1);
    }

    #[test]
    fn stale_entries_are_compacted_once_they_outnumber_the_live_ones() {
        let t0 = Instant::now();
        let fibers: Vec<FiberRef> = (0..200).map(|_| test_support::fiber()).collect();
        let mut timers = Timers::default();
        for (i, f) in fibers.iter().enumerate() {
            timers.add(t0 + Duration::from_millis(i as u64 + 1), f.clone());
        }
        // The first 150 (the earliest) finish: once stale entries pass 64
        // and half the heap, the heap is rebuilt from the live ones only.
        for f in &fibers[..150] {
            timers.discard(f);
        }
        assert!(
            timers.heap.len() < 200,
            "no compaction: {} entries for 50 live timers",
            timers.heap.len()
        );
        assert_eq!(timers.heap.len() - timers.stale, 50);
        assert_eq!(
            timers.next_deadline(),
            Some(t0 + Duration::from_millis(151))
        );
        assert_eq!(timers.fire(t0 + Duration::from_secs(1)), 50);
        assert!(fibers[150..].iter().all(fired));
        assert!(fibers[..150].iter().all(|f| !fired(f)));
        assert!(timers.is_empty());
    }
}
