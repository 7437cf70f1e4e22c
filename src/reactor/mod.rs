//! The IO driver: one poller (an epoll instance and a `mio::Waker`) per
//! worker, and the readiness state of every source registered with it.
//!
//! Files: `scheduled_io.rs` (a source's readiness word and wait lists, with
//! the table of its bits and the tick rule), `registration.rs` (lazy
//! registration and `io_loop`, the one wait routine of every IO call),
//! `sys.rs` (the `poll(2)` fallback for threads that cannot park).
//!
//! # Protocol
//! - Each worker owns a [`Poller`]. Only that worker calls [`Poller::poll`]:
//!   blocking when it is idle (no longer than its nearest timer), with a zero
//!   timeout now and then when it is busy. Any thread may register, deregister
//!   and [`Poller::wake`] it.
//! - A source is registered once, edge-triggered, for read and write, lazily:
//!   with the poller of the worker whose fiber first waits on it (after a
//!   syscall said `WouldBlock`, so a new registration starts with no readiness
//!   and `EPOLL_CTL_ADD` itself reports an fd that is ready by then). Its
//!   events are then seen by that worker, which wakes its own fibers without
//!   crossing threads; a waiter of another worker is unparked through that
//!   worker's inbox (the park protocol routes every fiber home).
//! - Tokens are `(generation << 32) | slot` in the poller's own slab.
//!   Deregistration (always with the poller the source registered with: the
//!   registration keeps it) frees the slot and bumps its generation, so an
//!   event for a closed fd (or a reused fd number) never reaches the new
//!   owner's waiters. It also sets `SHUTDOWN` and wakes every waiter. The fd
//!   is closed only after it is deregistered. (A source whose registered fd
//!   was closed by a clone while other fds of the same file live on is
//!   released with `forget`: its epoll entry dies with the file's last fd.)
//! - A *shared* entry ([`Poller::add_shared`]) is a listening socket watched
//!   by every poller at once with `EPOLLEXCLUSIVE`: the kernel hands a new
//!   connection to one poller that is blocked in `epoll_wait` (or leaves it on
//!   the ready list of every busy one), and that poller's worker runs the
//!   entry's hook on its own stack. A hook that accepted something asks to be
//!   re-armed: `EPOLL_CTL_DEL` + `EPOLL_CTL_ADD` put this poller at the back of
//!   the socket's wait queue, so the next connection goes to another idle
//!   worker first (the kernel wakes the first exclusive waiter in queue order).
//!
//! Who touches what: `poll` (the epoll instance and its event buffer) only the
//! owning worker, and `close`; `handles` (the epoll fd number and the waker)
//! any thread under the read lock, `close` under the write lock, so no
//! `epoll_ctl` ever runs on a closed (or reused) epoll fd number; `sources`
//! under its lock, by register/deregister and by the owner resolving a batch
//! of tokens (lock order `poll`, then `sources`; nothing takes `poll` under
//! `sources`); each `ScheduledIo`'s word by CAS from anyone, its wait lists
//! under their own lock, never held while unparking; hooks run outside every
//! lock.

mod registration;
mod scheduled_io;
pub(crate) mod sys;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use crate::fiber::lock;
pub(crate) use registration::{
    can_park, io_loop, spend_budget, timed_out, wait_on, IoCall, Registration,
};
pub(crate) use scheduled_io::{
    Direction, ScheduledIo, ERROR, READABLE, READ_CLOSED, SHUTDOWN, WRITABLE, WRITE_CLOSED,
};

const WAKER_TOKEN: Token = Token(usize::MAX);

/// What a shared entry's poller runs when the entry is ready: returns `true`
/// when it took something (the entry is then re-armed at the back of the
/// socket's wait queue).
pub(crate) type ReadyHook = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
enum Entry {
    Io(Arc<ScheduledIo>),
    Shared(RawFd, ReadyHook),
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slab {
    /// The entry `token` names, unless its slot has moved on to a newer
    /// generation (the source was deregistered, maybe the slot reused).
    fn lookup(&self, token: Token) -> Option<&Entry> {
        let slot = self.slots.get(token.0 & 0xffff_ffff)?;
        if slot.generation != (token.0 >> 32) as u32 {
            return None;
        }
        slot.entry.as_ref()
    }

    /// Puts `make(token)` in a free slot; returns its token.
    fn insert(&mut self, make: impl FnOnce(Token) -> Entry) -> io::Result<Token> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).map_err(|_| {
                    io::Error::other("too many registered sources (more than 2^32)")
                })?;
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                i
            }
        };
        let slot = &mut self.slots[index as usize];
        let token = Token(((slot.generation as usize) << 32) | index as usize);
        slot.entry = Some(make(token));
        Ok(token)
    }

    /// Frees the slot of `token` if it still belongs to that generation (so
    /// a second release never frees a reused slot).
    fn release(&mut self, token: Token) {
        let index = token.0 & 0xffff_ffff;
        if let Some(slot) = self.slots.get_mut(index) {
            if slot.generation == (token.0 >> 32) as u32 && slot.entry.take().is_some() {
                slot.generation = slot.generation.wrapping_add(1);
                self.free.push(index as u32);
            }
        }
    }
}

/// One worker's epoll instance, its waker and its registrations.
///
/// Its two fds (the epoll instance and the waker's eventfd) are closed by
/// [`Poller::close`] at runtime shutdown, even if registrations still hold
/// the poller.
pub(crate) struct Poller {
    poll: Mutex<Option<(Poll, Events)>>,
    handles: RwLock<Option<(RawFd, Waker)>>,
    sources: Mutex<Slab>,
    /// `epoll_wait` calls so far (owner writes, anyone reads: for `stats`).
    polls: AtomicU64,
}

fn closed() -> io::Error {
    io::Error::other("the threadlet runtime this socket was registered with has shut down; use the socket from a fiber of a running runtime")
}

/// `epoll_ctl(2)`.
fn ctl(epfd: RawFd, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: token.0 as u64,
    };
    // SAFETY: `event` is a valid epoll_event for the call; `epfd` is open
    // (callers hold the read lock of `handles`, which `close` takes for
    // writing before closing it).
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut event) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Edge-triggered read + write + peer hang-up: what mio registers too, so
/// mio's `Event` accessors read our events.
const SOURCE_EVENTS: u32 =
    (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
/// A listening socket shared by every poller: level-triggered, exclusive.
const SHARED_EVENTS: u32 = (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32;

impl Poller {
    /// Creates the epoll instance and its waker (two fds, both CLOEXEC).
    pub(crate) fn new() -> io::Result<Poller> {
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
        let epfd = poll.as_raw_fd();
        Ok(Poller {
            poll: Mutex::new(Some((poll, Events::with_capacity(1024)))),
            handles: RwLock::new(Some((epfd, waker))),
            sources: Mutex::new(Slab::default()),
            polls: AtomicU64::new(0),
        })
    }

    /// `epoll_wait` calls so far.
    pub(crate) fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    fn epoll_ctl(&self, op: libc::c_int, fd: RawFd, events: u32, token: Token) -> io::Result<()> {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        match handles.as_ref() {
            Some((epfd, _)) => ctl(*epfd, op, fd, events, token),
            None => Err(closed()),
        }
    }

    /// Registers `fd` edge-triggered for read and write.
    pub(crate) fn register(&self, fd: RawFd) -> io::Result<Arc<ScheduledIo>> {
        let mut io = None;
        let token = lock(&self.sources).insert(|token| {
            let new = Arc::new(ScheduledIo::new(token));
            io = Some(new.clone());
            Entry::Io(new)
        })?;
        if let Err(e) = self.epoll_ctl(libc::EPOLL_CTL_ADD, fd, SOURCE_EVENTS, token) {
            lock(&self.sources).release(token);
            return Err(e);
        }
        Ok(io.expect("set by insert"))
    }

    /// Deregisters `fd` (call before closing it), then wakes every waiter
    /// with `SHUTDOWN` set.
    pub(crate) fn deregister(&self, fd: RawFd, io: &ScheduledIo) {
        let _ = self.epoll_ctl(libc::EPOLL_CTL_DEL, fd, 0, io.token);
        self.forget(io);
    }

    /// Frees `io`'s slot without touching epoll (for a source whose fd is
    /// already closed: the kernel dropped its epoll entry with the last fd of
    /// its file), then wakes every waiter with `SHUTDOWN`. Idempotent.
    pub(crate) fn forget(&self, io: &ScheduledIo) {
        lock(&self.sources).release(io.token);
        io.set_ready(SHUTDOWN);
    }

    /// Watches the listening socket `fd` (level-triggered, `EPOLLEXCLUSIVE`):
    /// when it is readable, the owner of this poller runs `hook` (module
    /// docs). Undo with [`Poller::remove_shared`] before `fd` closes.
    pub(crate) fn add_shared(&self, fd: RawFd, hook: ReadyHook) -> io::Result<Token> {
        let token = lock(&self.sources).insert(|_| Entry::Shared(fd, hook))?;
        if let Err(e) = self.epoll_ctl(libc::EPOLL_CTL_ADD, fd, SHARED_EVENTS, token) {
            lock(&self.sources).release(token);
            return Err(e);
        }
        Ok(token)
    }

    /// Stops watching a shared entry. Its hook may still be running (or about
    /// to run, from a batch already read): hooks check their own stop flag.
    pub(crate) fn remove_shared(&self, fd: RawFd, token: Token) {
        let _ = self.epoll_ctl(libc::EPOLL_CTL_DEL, fd, 0, token);
        lock(&self.sources).release(token);
    }

    /// Owner only: waits up to `timeout` for events and dispatches them:
    /// readiness to sources (waking their waiters), hooks of shared entries
    /// run here. Returns the number of events (the waker's not counted).
    ///
    /// `woke` runs right after `epoll_wait` returns, before any dispatch (the
    /// worker marks itself awake there, so the wakes its dispatch causes do
    /// not try to wake it).
    pub(crate) fn poll(&self, timeout: Option<Duration>, woke: impl FnOnce()) -> usize {
        let mut guard = lock(&self.poll);
        let Some((poll, events)) = guard.as_mut() else {
            woke();
            return 0;
        };
        // Single writer (the owner): a plain store, no locked RMW.
        self.polls
            .store(self.polls.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        let result = poll.poll(events, timeout);
        woke();
        match result {
            Ok(()) => {}
            // mio retries nothing: EINTR (a signal hit this worker) just
            // means "look again", with the deadline the caller recomputes.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => log::error!("threadlet: epoll_wait failed: {e}"),
        }
        // Resolve the batch's tokens under one slab lock (lock order: poll,
        // then sources), then dispatch outside both locks.
        let mut ready: Vec<(Entry, usize, Token)> = Vec::with_capacity(events.iter().count());
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
                if let Some(entry) = slab.lookup(event.token()) {
                    ready.push((entry.clone(), bits, event.token()));
                }
            }
        }
        drop(guard);
        for (entry, bits, token) in ready {
            match entry {
                Entry::Io(io) => io.set_ready(bits),
                Entry::Shared(fd, hook) => {
                    if hook() {
                        self.rearm_shared(fd, token);
                    }
                }
            }
        }
        count
    }

    /// Moves this poller to the back of the shared socket's wait queue (the
    /// kernel offers each new connection to the first exclusive waiter), so
    /// idle workers take turns. `EPOLL_CTL_ADD` reports a backlog that is
    /// still there, so nothing waits for the next connection. If the entry
    /// was removed meanwhile, nothing is re-added.
    fn rearm_shared(&self, fd: RawFd, token: Token) {
        let slab = lock(&self.sources);
        if slab.lookup(token).is_none() {
            return;
        }
        // Under the slab lock: `remove_shared` (which releases the slot under
        // this lock) cannot interleave, so a removed entry is never re-added.
        let _ = self.epoll_ctl(libc::EPOLL_CTL_DEL, fd, 0, token);
        if let Err(e) = self.epoll_ctl(libc::EPOLL_CTL_ADD, fd, SHARED_EVENTS, token) {
            log::error!("threadlet: cannot re-arm a listening socket: {e}");
        }
    }

    /// Interrupts the owner's `epoll_wait` (or makes its next one return).
    pub(crate) fn wake(&self) {
        let handles = self.handles.read().unwrap_or_else(|e| e.into_inner());
        if let Some((_, waker)) = handles.as_ref() {
            if let Err(e) = waker.wake() {
                log::error!("threadlet: reactor wake failed: {e}");
            }
        }
    }

    /// Closes the epoll fd and the waker (runtime shutdown). Later
    /// registrations fail and later polls return at once; every source still
    /// registered gets `SHUTDOWN`.
    pub(crate) fn close(&self) {
        self.handles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        lock(&self.poll).take();
        let mut slab = lock(&self.sources);
        let ios: Vec<_> = slab
            .slots
            .iter_mut()
            .filter_map(|s| match s.entry.take() {
                Some(Entry::Io(io)) => Some(io),
                _ => None,
            })
            .collect();
        drop(slab);
        for io in ios {
            io.set_ready(SHUTDOWN);
        }
    }

    /// In a forked child, whose copy of the runtime has no threads: closes
    /// this process's copies of the poller's fds (the epoll instance and the
    /// waker stay open in the parent), waking nobody, and only if no thread
    /// of the parent held their lock at the fork (a lock taken there is never
    /// released here; its fds then stay open).
    pub(crate) fn close_after_fork(&self) {
        if let Ok(mut handles) = self.handles.try_write() {
            handles.take();
        }
        if let Ok(mut poll) = self.poll.try_lock() {
            poll.take();
        }
    }

    #[cfg(test)]
    fn is_registered(&self, token: Token) -> bool {
        lock(&self.sources).lookup(token).is_some()
    }
}

/// The pollers of one runtime, one per worker (index = worker index).
pub(crate) struct Reactor {
    pollers: Box<[Arc<Poller>]>,
}

impl Reactor {
    /// `workers` pollers (two fds each).
    pub(crate) fn new(workers: usize) -> io::Result<Reactor> {
        let pollers = (0..workers)
            .map(|_| Poller::new().map(Arc::new))
            .collect::<io::Result<_>>()?;
        Ok(Reactor { pollers })
    }

    /// Worker `index`'s poller.
    pub(crate) fn poller(&self, index: usize) -> &Arc<Poller> {
        &self.pollers[index]
    }

    /// Every poller, in worker order.
    pub(crate) fn pollers(&self) -> &[Arc<Poller>] {
        &self.pollers
    }

    /// Closes this process's copies of every poller's fds in a forked child
    /// (see [`Poller::close_after_fork`]).
    pub(crate) fn close_after_fork(&self) {
        for p in self.pollers.iter() {
            p.close_after_fork();
        }
    }

    /// Closes every poller (runtime shutdown).
    pub(crate) fn close(&self) {
        for p in self.pollers.iter() {
            p.close();
        }
    }
}

/// The poller of the worker this thread is, if it is one (a new reference).
pub(crate) fn current_poller() -> Option<Arc<Poller>> {
    let ptr = crate::context::poller_ptr() as *const Poller;
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a worker publishes `Arc::as_ptr` of its poller for exactly as
    // long as its loop runs, holding a strong reference (through the
    // runtime's shared state) the whole time; only this thread reads the
    // cell, so the pointee is alive. Adding a count keeps them balanced.
    unsafe {
        Arc::increment_strong_count(ptr);
        Some(Arc::from_raw(ptr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let reactor = Poller::new().unwrap();
        let (r1, w1) = pipe();
        let old_fd = r1.as_raw_fd();
        let old = reactor.register(old_fd).unwrap();
        reactor.deregister(old_fd, &old);
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
        let new = reactor.register(new_fd).unwrap();
        assert_eq!(
            new.token.0 & 0xffff_ffff,
            old.token.0 & 0xffff_ffff,
            "same slot"
        );
        assert_ne!(new.token, old.token, "new generation");
        write_byte(&w2);
        assert_eq!(reactor.poll(Some(Duration::from_secs(5)), || {}), 1);
        assert!(ScheduledIo::is_ready(new.readiness(), Direction::Read));
        assert_eq!(
            old.readiness(),
            old_word,
            "the old registration saw nothing"
        );
        assert!(!reactor.is_registered(old.token));

        // Releasing the old token again must not free the reused slot.
        reactor.forget(&old);
        assert!(reactor.is_registered(new.token));
        reactor.close();
    }

    /// A clear with a stale tick leaves a newer event's bits alone.
    #[test]
    fn clear_keeps_readiness_that_arrived_after_the_syscall() {
        let reactor = Poller::new().unwrap();
        let (r, w) = pipe();
        let fd = r.as_raw_fd();
        let io = reactor.register(fd).unwrap();
        let seen = io.readiness();
        write_byte(&w);
        assert_eq!(reactor.poll(Some(Duration::from_secs(5)), || {}), 1);
        io.clear(Direction::Read, seen);
        assert!(
            ScheduledIo::is_ready(io.readiness(), Direction::Read),
            "event erased"
        );
        io.clear(Direction::Read, io.readiness());
        assert!(!ScheduledIo::is_ready(io.readiness(), Direction::Read));
        reactor.deregister(fd, &io);
        reactor.close();
    }
}
