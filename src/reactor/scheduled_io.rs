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
//! One `Vec<Unparker>` per direction under one mutex, so one fiber may read
//! while another writes. A waiter publishes itself, re-checks the word, and
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

/// Readiness and waiters of one registered source.
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    waiters: Mutex<[Vec<Unparker>; 2]>,
    pub(super) token: Token,
}

impl ScheduledIo {
    /// A source just registered under `token`: not ready. Callers register
    /// only after a syscall said `WouldBlock`, and `EPOLL_CTL_ADD` reports a
    /// source that is ready by then as an event, so nothing is lost.
    pub(super) fn new(token: Token) -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(0),
            waiters: Mutex::new([Vec::new(), Vec::new()]),
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
        // Usually one or two waiters: take them without allocating, and keep
        // the lists' capacity for the next waits. Unpark outside the lock.
        let mut few: [Option<Unparker>; 2] = [None, None];
        let mut more: Vec<Unparker> = Vec::new();
        {
            let mut lists = lock(&self.waiters);
            for (i, dir) in [Direction::Read, Direction::Write].into_iter().enumerate() {
                if bits & dir.mask() == 0 {
                    continue;
                }
                for waiter in lists[i].drain(..) {
                    match few.iter_mut().find(|slot| slot.is_none()) {
                        Some(slot) => *slot = Some(waiter),
                        None => more.push(waiter),
                    }
                }
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
        let mut lists = lock(&self.waiters);
        let list = &mut lists[dir as usize];
        if let Some(i) = list.iter().position(|w| w.same_as(waiter)) {
            list.swap_remove(i);
        }
    }
}
