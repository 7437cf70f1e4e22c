//! The reactor: one `mio::Poll` (epoll) per runtime, and the readiness state
//! of every registered source.
//!
//! # Protocol
//! - A source is registered once, edge-triggered, for read and write. Its
//!   [`ScheduledIo`] keeps a readiness word — direction bits in the low 16
//!   bits, a tick counter above — and one wait list per direction, so one
//!   fiber may read while another writes.
//! - An IO call tries the syscall first. On `WouldBlock` it clears the
//!   direction's readiness *only if the tick is unchanged* since it read the
//!   readiness it acted on (an event that arrived meanwhile is not erased),
//!   then publishes its waiter, re-checks readiness (an event between the
//!   syscall and the publish is not lost), and parks. That loop is written
//!   once, in `net/wait.rs` (`io_loop`), for every net type and `io::Async`.
//! - Sources register lazily, after a syscall said `WouldBlock`, so a new
//!   registration starts with no readiness: `EPOLL_CTL_ADD` itself reports an
//!   fd that is ready by then as an event.
//! - A clear also drops the direction's closed and error bits: the kernel has
//!   just said "nothing to do", and a sticky bit would turn every later wait
//!   into a busy loop. Only `SHUTDOWN` is permanent.
//! - The poller (exactly one worker at a time: whoever holds `poll`) turns
//!   each event into readiness bits with a new tick and unparks the waiters of
//!   the ready directions; the park protocol routes each fiber to its own
//!   worker. New work for a worker that polls arrives through `mio::Waker`.
//! - Tokens are `(generation << 32) | slot`. Deregistration frees the slot
//!   and bumps its generation, so an event for a closed fd (or a reused fd
//!   number) never reaches the new owner's waiters.
//! - Deregistration also marks the `ScheduledIo` closed and wakes every
//!   waiter, which then sees the error instead of sleeping forever. The fd is
//!   closed only after it is deregistered. (A source whose registered fd was
//!   closed by a clone while other fds of the same file live on is released
//!   with `forget`: its epoll entry dies with the file's last fd, and the
//!   generation keeps any event still in flight away from the slot's next
//!   owner.)
//!
//! Who touches what: `poll` (the epoll instance and its event buffer) only
//! the poller holding its lock; `handles` (a registry clone and the waker)
//! any thread, under the read lock, and `close` under the write lock;
//! `sources` (the slab) under its lock, by register/deregister and by the
//! poller resolving a batch of tokens (while it holds `poll`: the one lock
//! order is `poll`, then `sources`; nothing takes `poll` under `sources`);
//! each `ScheduledIo`'s word by CAS from anyone, its wait lists under their
//! own lock, never held while unparking.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, TryLockError};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use crate::fiber::lock;
use crate::park::Unparker;

const WAKER_TOKEN: Token = Token(usize::MAX);

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
const BITS: usize = 0xffff;
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
    token: Token,
}

impl ScheduledIo {
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

struct Slot {
    generation: u32,
    io: Option<Arc<ScheduledIo>>,
}

#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slab {
    /// The registration `token` names, unless its slot has moved on to a
    /// newer generation (the source was deregistered, maybe the slot reused).
    fn lookup(&self, token: Token) -> Option<Arc<ScheduledIo>> {
        let index = token.0 & 0xffff_ffff;
        let generation = (token.0 >> 32) as u32;
        let slot = self.slots.get(index)?;
        if slot.generation != generation {
            return None;
        }
        slot.io.clone()
    }
}

/// One runtime's epoll instance and registrations.
///
/// Every fd it holds (the epoll instance, a duplicate of it for registering
/// while another thread polls, the waker's eventfd) is closed by
/// [`Reactor::close`] at runtime shutdown, even if handles to the runtime's
/// shared state live on.
pub(crate) struct Reactor {
    poll: Mutex<Option<(Poll, Events)>>,
    handles: RwLock<Option<(Registry, Waker)>>,
    sources: Mutex<Slab>,
}

fn closed() -> io::Error {
    io::Error::other("the threadlet runtime this socket was registered with has shut down; use the socket from a fiber of a running runtime")
}

impl Reactor {
    /// Creates the epoll instance and its waker (two fds, both CLOEXEC).
    pub(crate) fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
        Ok(Reactor {
            poll: Mutex::new(Some((poll, Events::with_capacity(1024)))),
            handles: RwLock::new(Some((registry, waker))),
            sources: Mutex::new(Slab::default()),
        })
    }

    /// In a forked child, whose copy of the runtime has no threads: closes
    /// this process's copies of the reactor's fds (the epoll instance and
    /// the waker stay open in the parent), waking nobody, and only if no
    /// thread of the parent held their lock at the fork (a lock taken there
    /// is never released here; its fds then stay open).
    pub(crate) fn close_after_fork(&self) {
        if let Ok(mut handles) = self.handles.try_write() {
            handles.take();
        }
        if let Ok(mut poll) = self.poll.try_lock() {
            poll.take();
        }
    }

    /// Registers `source` edge-triggered for read and write.
    pub(crate) fn register(&self, source: &mut impl Source) -> io::Result<Arc<ScheduledIo>> {
        let token = {
            let mut slab = lock(&self.sources);
            let index = match slab.free.pop() {
                Some(i) => i,
                None => {
                    slab.slots.push(Slot {
                        generation: 0,
                        io: None,
                    });
                    u32::try_from(slab.slots.len() - 1).map_err(|_| {
                        io::Error::other("too many registered sources (more than 2^32)")
                    })?
                }
            };
            let slot = &mut slab.slots[index as usize];
            let token = Token(((slot.generation as usize) << 32) | index as usize);
            slot.io = Some(Arc::new(ScheduledIo {
                // Not ready: callers register only after a syscall said
                // `WouldBlock`, and `EPOLL_CTL_ADD` reports a source that is
                // ready by then as an event, so nothing is lost.
                readiness: AtomicUsize::new(0),
                waiters: Mutex::new([Vec::new(), Vec::new()]),
                token,
            }));
            (token, slot.io.clone().expect("just set"))
        };
        let (token, io) = token;
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        let result = match handles.as_ref() {
            Some((registry, _)) => {
                registry.register(source, token, Interest::READABLE | Interest::WRITABLE)
            }
            None => Err(closed()),
        };
        drop(handles);
        if let Err(e) = result {
            self.release(token);
            return Err(e);
        }
        Ok(io)
    }

    /// Deregisters `source` (call before closing its fd), then wakes every
    /// waiter with SHUTDOWN set.
    pub(crate) fn deregister(&self, source: &mut impl Source, io: &ScheduledIo) {
        if let Some((registry, _)) = self
            .handles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            let _ = registry.deregister(source);
        }
        self.release(io.token);
        io.set_ready(SHUTDOWN);
    }

    /// Frees `io`'s slot without touching epoll (for a source whose fd is
    /// already closed: the kernel dropped its epoll entry with the last fd of
    /// its file), then wakes every waiter with `SHUTDOWN`. Idempotent.
    pub(crate) fn forget(&self, io: &ScheduledIo) {
        self.release(io.token);
        io.set_ready(SHUTDOWN);
    }

    /// Frees the slot of `token` if it still belongs to that token's
    /// generation (so a second release never frees a reused slot).
    fn release(&self, token: Token) {
        let index = token.0 & 0xffff_ffff;
        let generation = (token.0 >> 32) as u32;
        let mut slab = lock(&self.sources);
        if let Some(slot) = slab.slots.get_mut(index) {
            if slot.generation == generation && slot.io.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                slab.free.push(index as u32);
            }
        }
    }

    #[cfg(test)]
    fn lookup(&self, token: Token) -> Option<Arc<ScheduledIo>> {
        lock(&self.sources).lookup(token)
    }

    /// Becomes the poller if nobody else is, waits up to `timeout` for events
    /// and dispatches them. `None` if another thread holds the poller role.
    /// `before_wait` runs once the role is held and before blocking (the
    /// worker publishes "I am polling" there).
    pub(crate) fn try_poll(
        &self,
        timeout: Option<Duration>,
        before_wait: impl FnOnce() -> bool,
    ) -> Option<usize> {
        let mut guard = match self.poll.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let (poll, events) = guard.as_mut()?;
        // `before_wait` may find work after all: then only peek (timeout 0).
        let timeout = if before_wait() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        match poll.poll(events, timeout) {
            Ok(()) => {}
            // mio retries nothing: EINTR (a signal hit this worker) just
            // means "look again", with the deadline the caller recomputes.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => log::error!("threadlet: epoll_wait failed: {e}"),
        }
        // Resolve the batch's tokens under one slab lock (lock order: poll,
        // then sources), then dispatch outside both locks.
        let mut ready: Vec<(Arc<ScheduledIo>, usize)> = Vec::with_capacity(events.iter().count());
        let mut count = 0;
        {
            let slab = lock(&self.sources);
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    continue;
                }
                count += 1;
                let mut bits = 0;
                if event.is_readable() {
                    bits |= READABLE;
                }
                if event.is_writable() {
                    bits |= WRITABLE;
                }
                if event.is_read_closed() {
                    bits |= READ_CLOSED | READABLE;
                }
                if event.is_write_closed() {
                    bits |= WRITE_CLOSED | WRITABLE;
                }
                if event.is_error() {
                    bits |= ERROR | READABLE | WRITABLE;
                }
                if let Some(io) = slab.lookup(event.token()) {
                    ready.push((io, bits));
                }
            }
        }
        drop(guard);
        for (io, bits) in ready {
            io.set_ready(bits);
        }
        Some(count)
    }

    /// Interrupts the poller's `epoll_wait`.
    pub(crate) fn wake(&self) {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, waker)) = handles.as_ref() {
            if let Err(e) = waker.wake() {
                log::error!("threadlet: reactor wake failed: {e}");
            }
        }
    }

    /// Closes the epoll fd (runtime shutdown). Later registrations fail and
    /// later polls return at once.
    pub(crate) fn close(&self) {
        self.handles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        lock(&self.poll).take();
        let mut slab = lock(&self.sources);
        let ios: Vec<_> = slab.slots.iter_mut().filter_map(|s| s.io.take()).collect();
        drop(slab);
        for io in ios {
            io.set_ready(SHUTDOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::unix::SourceFd;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two fds pipe2 writes.
        let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        assert_eq!(r, 0);
        // SAFETY: pipe2 just returned these fds; nobody else owns them.
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }

    fn write_byte(fd: &OwnedFd) {
        // SAFETY: writes one byte from a valid buffer.
        let n = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(n, 1);
    }

    /// RELIABILITY row 5: a new source that reuses a closed source's fd
    /// number (and its slot) never delivers readiness to the old one.
    #[test]
    fn reused_fd_and_slot_never_reach_the_old_registration() {
        let reactor = Reactor::new().unwrap();
        let (r1, w1) = pipe();
        let old_fd = r1.as_raw_fd();
        let old = reactor.register(&mut SourceFd(&old_fd)).unwrap();
        reactor.deregister(&mut SourceFd(&old_fd), &old);
        let old_word = old.readiness();
        assert!(
            old.is_shutdown(),
            "deregistration wakes waiters with SHUTDOWN"
        );
        drop((r1, w1));

        let (r2, w2) = pipe();
        // Usually the same fd number (the kernel hands out the lowest free
        // one), unless a parallel test took it; the slot is reused either way.
        let _same_fd = r2.as_raw_fd() == old_fd;
        let new_fd = r2.as_raw_fd();
        let new = reactor.register(&mut SourceFd(&new_fd)).unwrap();
        assert_eq!(
            new.token.0 & 0xffff_ffff,
            old.token.0 & 0xffff_ffff,
            "same slot"
        );
        assert_ne!(new.token, old.token, "new generation");
        write_byte(&w2);
        reactor
            .try_poll(Some(Duration::from_secs(5)), || true)
            .unwrap();
        assert!(ScheduledIo::is_ready(new.readiness(), Direction::Read));
        assert_eq!(
            old.readiness(),
            old_word,
            "the old registration saw nothing"
        );
        assert!(reactor.lookup(old.token).is_none());

        // Releasing the old token again must not free the reused slot.
        reactor.forget(&old);
        assert!(reactor.lookup(new.token).is_some());
        reactor.close();
    }

    /// A clear with a stale tick leaves a newer event's bits alone.
    #[test]
    fn clear_keeps_readiness_that_arrived_after_the_syscall() {
        let reactor = Reactor::new().unwrap();
        let (r, w) = pipe();
        let fd = r.as_raw_fd();
        let io = reactor.register(&mut SourceFd(&fd)).unwrap();
        let seen = io.readiness();
        write_byte(&w);
        reactor
            .try_poll(Some(Duration::from_secs(5)), || true)
            .unwrap();
        io.clear(Direction::Read, seen);
        assert!(
            ScheduledIo::is_ready(io.readiness(), Direction::Read),
            "event erased"
        );
        io.clear(Direction::Read, io.readiness());
        assert!(!ScheduledIo::is_ready(io.readiness(), Direction::Read));
        reactor.deregister(&mut SourceFd(&fd), &io);
        reactor.close();
    }
}
