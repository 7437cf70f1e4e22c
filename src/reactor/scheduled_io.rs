//! `ScheduledIo`: the readiness word and the wait lists of one registered
//! source.
//!
//! # The readiness word
//! One `AtomicUsize`: direction bits in the low 16 bits, a tick counter above.
//!
//! | bit            | set by                                   | cleared by                                          |
//! |----------------|------------------------------------------|-----------------------------------------------------|
//! | `READABLE`     | the poller (EPOLLIN, or with a hang-up/error) | `clear(Read)` after `WouldBlock`; `clear_drained(Read)` after a short read |
//! | `WRITABLE`     | the poller (EPOLLOUT, or with a hang-up/error) | `clear(Write)` after `WouldBlock`; `clear_drained(Write)` after a short write |
//! | `READ_CLOSED`  | the poller (EPOLLRDHUP / EPOLLHUP)       | `clear(Read)` only (a short read keeps it: the EOF is still to be seen) |
//! | `WRITE_CLOSED` | the poller (EPOLLHUP / EPOLLERR on write) | `clear(Write)` only                                |
//! | `ERROR`        | the poller (EPOLLERR)                    | `clear` of either direction                         |
//! | `SHUTDOWN`     | deregistration, `forget`, poller close   | never: a deregistered source stays dead             |
//!
//! The tick rule: every `set_ready` (an event, or a deregistration) adds one
//! to the tick in the same CAS that sets its bits; every clear is a CAS that
//! succeeds only while the tick still equals the tick of the word the caller
//! read *before* the syscall that said "nothing to do". So an event that
//! arrives between that syscall and the clear is never erased (RELIABILITY
//! row 3). Clears never touch the tick.
//!
//! A clear also drops the direction's closed and error bits: the kernel has
//! just said "nothing to do", and a sticky bit (an `EPOLLERR` whose error was
//! already consumed) would turn every later wait into a busy loop. Only
//! `SHUTDOWN` is permanent.
//!
//! # The wait lists
//! One list per direction under one mutex, so one fiber may read while
//! another writes. A list keeps its first waiter inline (the common case: one
//! fiber reads a connection) and only further ones in a `Vec`, so a wait on a
//! cold connection touches the `ScheduledIo`'s own lines, not a separate
//! heap buffer as well. A waiter publishes itself, re-checks the word, and
//! parks (registration.rs); `set_ready` takes the lists of the directions it
//! made ready and unparks them *outside* the lock. The park protocol routes
//! each woken fiber to its own worker (the polling worker's own fibers go
//! straight to its run queue, others through their worker's inbox).
//!
//! Who touches what: the word by CAS from any thread; the lists under their
//! lock, by waiters (add/remove) and by whoever calls `set_ready` (the poller
//! that owns the source, a deregistration, a test hook).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use mio::Token;

use crate::fiber::lock;
use crate::park::Unparker;

/// Readiness bits (low 16 bits of the readiness word).
pub(crate) const READABLE: usize = 1 << 0;
/// Writable readiness.
pub(crate) const WRITABLE: usize = 1 << 1;
/// Peer closed its write side (read returns 0).
pub(crate) const READ_CLOSED: usize = 1 << 2;
/// Our write side can no longer write.
pub(crate) const WRITE_CLOSED: usize = 1 << 3;
/// Error condition on the socket.
pub(crate) const ERROR: usize = 1 << 4;
/// The source was deregistered (its owner is closing it).
pub(crate) const SHUTDOWN: usize = 1 << 5;
pub(super) const BITS: usize = 0xffff;
const TICK_ONE: usize = 1 << 16;

/// A direction of interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Waiting to read (or accept).
    Read,
    /// Waiting to write (or connect).
    Write,
}

impl Direction {
    /// Bits that make an operation in this direction worth retrying.
    pub(crate) fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED | ERROR | SHUTDOWN,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR | SHUTDOWN,
        }
    }
}

/// The waiters of one direction: the first inline, any others after it.
#[derive(Default)]
struct WaitList {
    first: Option<Unparker>,
    more: Vec<Unparker>,
}

impl WaitList {
    fn push(&mut self, waiter: Unparker) {
        if self.first.is_none() {
            self.first = Some(waiter);
        } else {
            self.more.push(waiter);
        }
    }

    fn remove(&mut self, waiter: &Unparker) {
        if self.first.as_ref().is_some_and(|w| w.same_as(waiter)) {
            // Keep "inline first" filled while others wait.
            self.first = self.more.pop();
        } else if let Some(i) = self.more.iter().position(|w| w.same_as(waiter)) {
            self.more.swap_remove(i);
        }
    }
}

/// Readiness and waiters of one registered source.
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<[WaitList; 2]>,
    pub(super) token: Token,
}

impl ScheduledIo {
    /// A source just registered under `token`: not ready. Callers register
    /// only after a syscall said `WouldBlock`, and `EPOLL_CTL_ADD` reports a
    /// source that is ready by then as an event, so nothing is lost.
    pub(super) fn new(token: Token) -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(0),
            waiters: Mutex::new(Default::default()),
            token,
        }
    }

    /// The readiness word: direction bits and tick.
    pub(crate) fn readiness(&self) -> usize {
        self.readiness.load(Ordering::Acquire)
    }

    /// Is any bit of `dir` set in `word`?
    pub(crate) fn is_ready(word: usize, dir: Direction) -> bool {
        word & dir.mask() != 0
    }

    /// Has the source been deregistered?
    pub(crate) fn is_shutdown(&self) -> bool {
        self.readiness() & SHUTDOWN != 0
    }

    /// After `WouldBlock`: clears `dir`'s readiness bits if the tick still
    /// equals the one in `seen` (the word the caller read *before* the syscall
    /// that said `WouldBlock`). The closed and error bits of the direction are
    /// cleared too: the kernel has just said "nothing to do", and a sticky bit
    /// (an `EPOLLERR` whose error was already consumed, say) would otherwise
    /// make every later wait return at once — a busy loop. A new state change
    /// brings a new event with a new tick. `SHUTDOWN` is never cleared.
    pub(crate) fn clear(&self, dir: Direction, seen: usize) {
        let bits = match dir {
            Direction::Read => READABLE | READ_CLOSED | ERROR,
            Direction::Write => WRITABLE | WRITE_CLOSED | ERROR,
        };
        self.clear_bits(bits, seen);
    }

    /// After a short stream read or write: clears only the plain readable
    /// (writable) bit, if the tick still equals the one in `seen`. The
    /// closed and error bits stay: a FIN that came with the last bytes is
    /// reported once by edge-triggered epoll, so the next read must still
    /// try the syscall to see the EOF.
    pub(crate) fn clear_drained(&self, dir: Direction, seen: usize) {
        self.clear_bits(
            match dir {
                Direction::Read => READABLE,
                Direction::Write => WRITABLE,
            },
            seen,
        );
    }

    fn clear_bits(&self, bit: usize, seen: usize) {
        let mut current = self.readiness();
        while current & !BITS == seen & !BITS {
            match self.readiness.compare_exchange_weak(
                current,
                current & !bit,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Adds readiness bits with a new tick and wakes waiters that care.
    pub(crate) fn set_ready(&self, bits: usize) {
        let mut current = self.readiness();
        loop {
            let next = ((current & !BITS).wrapping_add(TICK_ONE)) | (current & BITS) | bits;
            match self.readiness.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        // Usually one waiter per direction, kept inline: take those without
        // allocating, and keep the lists' capacity for the next waits.
        // Unpark outside the lock.
        let mut few: [Option<Unparker>; 2] = [None, None];
        let mut more: Vec<Unparker> = Vec::new();
        {
            let mut lists = lock(&self.waiters);
            for (i, dir) in [Direction::Read, Direction::Write].into_iter().enumerate() {
                if bits & dir.mask() == 0 {
                    continue;
                }
                few[i] = lists[i].first.take();
                more.append(&mut lists[i].more);
            }
        }
        for waiter in few.into_iter().flatten().chain(more) {
            waiter.unpark();
        }
    }

    /// Publishes the caller as a waiter for `dir`.
    pub(crate) fn add_waiter(&self, dir: Direction, waiter: Unparker) {
        lock(&self.waiters)[dir as usize].push(waiter);
    }

    /// Removes the caller's waiter for `dir` if it is still listed.
    pub(crate) fn remove_waiter(&self, dir: Direction, waiter: &Unparker) {
        lock(&self.waiters)[dir as usize].remove(waiter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fiber::header::test_support;

    fn fiber() -> Unparker {
        Unparker::Fiber(test_support::fiber())
    }

    fn listed(list: &WaitList) -> usize {
        list.first.iter().count() + list.more.len()
    }

    #[test]
    fn the_first_waiter_is_inline_and_removal_keeps_it_filled() {
        let (a, b, c) = (fiber(), fiber(), fiber());
        let mut list = WaitList::default();
        list.push(a.clone());
        assert!(list.first.as_ref().is_some_and(|w| w.same_as(&a)));
        assert!(list.more.is_empty(), "one waiter needs no heap buffer");
        list.push(b.clone());
        list.push(c.clone());
        assert_eq!(listed(&list), 3);
        // Removing the inline one moves another into its place.
        list.remove(&a);
        assert_eq!(listed(&list), 2);
        assert!(list.first.is_some());
        // Removing one that is not listed changes nothing.
        list.remove(&a);
        assert_eq!(listed(&list), 2);
        list.remove(&b);
        list.remove(&c);
        assert_eq!(listed(&list), 0);
    }

    #[test]
    fn set_ready_takes_the_waiters_of_the_directions_it_makes_ready() {
        let io = ScheduledIo::new(Token(1));
        let (r1, r2, w) = (fiber(), fiber(), fiber());
        io.add_waiter(Direction::Read, r1);
        io.add_waiter(Direction::Read, r2);
        io.add_waiter(Direction::Write, w.clone());
        io.set_ready(READABLE);
        {
            let lists = lock(&io.waiters);
            assert_eq!(listed(&lists[Direction::Read as usize]), 0);
            assert_eq!(listed(&lists[Direction::Write as usize]), 1);
        }
        io.remove_waiter(Direction::Write, &w);
        assert_eq!(listed(&lock(&io.waiters)[Direction::Write as usize]), 0);
    }
}
