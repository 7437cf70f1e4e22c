//! Timers, `sleep`, `sleep_until` and `timeout`.
//!
//! # Design
//! Every worker owns a binary heap of deadlines for the fibers it runs. A
//! fiber arms a timer only for itself, and only on its home worker, so the
//! heap is touched by exactly one thread: no lock, no atomics. Insert is
//! O(log n). Cancel is O(1): the fiber's header holds the sequence number of
//! its armed entry (`Header::timer`, 0 when none); cancelling zeroes it and the
//! entry becomes stale. Stale entries are skipped when they reach the top and
//! the heap is rebuilt without them once they outnumber the live ones, so a
//! server that re-arms read timeouts at a high rate keeps a heap about the size
//! of its live timers (amortised O(1) per cancel).
//!
//! The worker sleeps (in `epoll_wait` or a thread park) no longer than until
//! its nearest deadline, then fires what is due: each live entry zeroes the
//! fiber's `timer` and unparks it through the park protocol. Plain threads
//! never use these heaps: their timed waits are `thread::park_timeout`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::time::{Duration, Instant};

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
    /// Arms `fiber`'s timer for `deadline` (replacing an armed one).
    pub(crate) fn add(&mut self, deadline: Instant, fiber: FiberRef) {
        self.cancel(&fiber);
        self.next_seq += 1;
        fiber.set_timer_seq(self.next_seq);
        self.heap.push(Entry {
            deadline,
            seq: self.next_seq,
            fiber,
        });
    }

    /// Disarms `fiber`'s timer if it is still armed.
    pub(crate) fn cancel(&mut self, fiber: &Header) {
        if fiber.timer_seq() == 0 {
            return;
        }
        fiber.set_timer_seq(0);
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

    /// The earliest live deadline.
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
            let entry = self.heap.pop().expect("peeked");
            if entry.is_live() {
                entry.fiber.set_timer_seq(0);
                park::unpark_fiber(&entry.fiber);
                fired += 1;
            } else {
                self.stale = self.stale.saturating_sub(1);
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
        assert_eq!(f.timer_seq(), 0);
        assert_eq!(timers.fire(t0 + Duration::from_secs(1)), 0);
        assert!(!fired(&f));
        assert_eq!(timers.next_deadline(), None);
        assert!(timers.is_empty());
        // Cancelling a disarmed timer is a no-op.
        timers.cancel(&f);
        assert_eq!(timers.stale, 0);
    }

    #[test]
    fn re_arming_replaces_the_armed_timer() {
        let t0 = Instant::now();
        let f = test_support::fiber();
        let mut timers = Timers::default();
        timers.add(t0 + Duration::from_millis(10), f.clone());
        timers.add(t0 + Duration::from_millis(50), f.clone());
        // The first entry is stale: neither the deadline nor a fire sees it.
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_millis(50)));
        assert_eq!(timers.fire(t0 + Duration::from_millis(20)), 0);
        assert!(!fired(&f));
        assert_eq!(timers.fire(t0 + Duration::from_millis(50)), 1);
        assert!(fired(&f));
    }

    #[test]
    fn stale_entries_are_compacted_once_they_outnumber_the_live_ones() {
        let t0 = Instant::now();
        let fibers: Vec<FiberRef> = (0..200).map(|_| test_support::fiber()).collect();
        let mut timers = Timers::default();
        for (i, f) in fibers.iter().enumerate() {
            timers.add(t0 + Duration::from_millis(i as u64 + 1), f.clone());
        }
        // Cancel the first 150 (the earliest): once stale entries pass 64
        // and half the heap, the heap is rebuilt from the live ones only.
        for f in &fibers[..150] {
            timers.cancel(f);
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
