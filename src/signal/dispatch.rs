//! The signal handler, the self-pipe, the registry and the dispatcher thread.
//!
//! # Shared state and who touches it
//! - `PENDING[sig]` (atomics): set by the handler, cleared (swap) by the
//!   dispatcher.
//! - `WRITE_FD` (atomic): the pipe's write end, stored once when the pipe is
//!   created, read by the handler and by `unsubscribe` (to wake the
//!   dispatcher). The pipe is never closed.
//! - `REGISTRY` (mutex): the live subscribers, the saved previous disposition
//!   and user count of every installed signal, the pipe's read end and
//!   whether the dispatcher runs. Taken by `subscribe`, `unsubscribe` and the
//!   dispatcher; never by the handler.
//! - `Subscriber::state` (mutex): one `Signals`' queue and waiters. Taken by
//!   its waiters and by the dispatcher (always *after* `REGISTRY`: the lock
//!   order is registry, then subscriber).
//!
//! # Handler and dispatcher (no signal is lost)
//! Handler: `PENDING[sig] := true`, then `write(pipe, [sig])` (a full pipe
//! just drops the byte: the flag is set and the pipe is non-empty, so the
//! dispatcher wakes anyway). Dispatcher loop: `poll` until readable, read the
//! pipe empty, then for each byte read (arrival order) and then each signal
//! number, `swap(PENDING[sig], false)`; every signal whose flag was set is
//! delivered. A handler run that sets its flag after the swap wrote its byte
//! after the drain, so the next `poll` returns at once.
//!
//! # Installing and restoring
//! `subscribe` installs the handler for each signal whose user count goes
//! 0 → 1 (saving the previous `sigaction`) and `unsubscribe` restores the
//! saved one when the count goes 1 → 0, both under `REGISTRY`, so the handler
//! is installed exactly while some subscriber wants the signal.
//!
//! # Fork
//! A forked child inherits `REGISTRY` saying "dispatcher running" — but that
//! thread is the parent's — and a pipe shared with the parent, whose
//! dispatcher would read the child's bytes. `REGISTRY.pid` records the
//! process the pipe and dispatcher belong to; the first `subscribe` in
//! another process (a child) creates a pipe of its own, marks the
//! dispatcher not running (so it starts one) and wakes it once in case a
//! signal arrived meanwhile. The inherited write end is left open (never
//! closed, as above: a handler may be using it); the read end is closed.
//!
//! # Dispatcher lifetime
//! `subscribe` starts the dispatcher if `running` is false and sets it.
//! `unsubscribe` of the last subscriber writes a 0 byte to wake it. The
//! dispatcher exits only when, under `REGISTRY`, it finds no subscriber; it
//! clears `running` in the same critical section, so a concurrent `subscribe`
//! either sees it running (and the dispatcher then sees the new subscriber)
//! or starts a new one.

use std::collections::VecDeque;
use std::io;
use std::mem;
use std::os::raw::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::fiber::lock;
use crate::park::Unparker;

/// One more than the highest signal number handled (Linux: 64).
pub(super) const NSIG: usize = 65;

static PENDING: [AtomicBool; NSIG] = [const { AtomicBool::new(false) }; NSIG];
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);

/// An installed signal: how many subscribers want it and what to restore.
struct Installed {
    users: usize,
    previous: libc::sigaction,
}

struct Registry {
    subs: Vec<Arc<Subscriber>>,
    installed: [Option<Installed>; NSIG],
    /// The pipe's read end, once created.
    read_fd: c_int,
    running: bool,
    /// The process that created the pipe and dispatcher (0: none yet).
    pid: libc::pid_t,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a
// signal mask); the registry is only used under its mutex.
unsafe impl Send for Registry {}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    subs: Vec::new(),
    installed: [const { None }; NSIG],
    read_fd: -1,
    running: false,
    pid: 0,
});

/// In a forked child: forget the parent's dispatcher and pipe (see "Fork").
fn leave_parent(reg: &mut Registry) -> io::Result<()> {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    if reg.pid == pid {
        return Ok(());
    }
    let inherited = reg.pid != 0 && reg.read_fd >= 0;
    if inherited {
        let old_read = reg.read_fd;
        reg.read_fd = -1;
        reg.running = false;
        ensure_pipe(reg)?;
        // SAFETY: closes this process's copy of the parent's read end, which
        // nothing here uses any more (the handler only writes).
        unsafe { libc::close(old_read) };
        // A signal caught before the swap wrote to the old pipe; its pending
        // flag is set: make the new dispatcher look.
        wake_dispatcher();
    }
    reg.pid = pid;
    Ok(())
}

/// Writes a 0 byte to the pipe: the dispatcher wakes and scans every flag.
fn wake_dispatcher() {
    let fd = WRITE_FD.load(Ordering::SeqCst);
    let byte = 0u8;
    // SAFETY: writes one valid byte to the pipe's write end (never closed);
    // a full pipe already wakes the dispatcher.
    unsafe { libc::write(fd, ptr::addr_of!(byte).cast::<c_void>(), 1) };
}

/// One `Signals`: the signals it wants and what it has received.
pub(super) struct Subscriber {
    /// Bit `sig` set for each wanted signal.
    pub(super) mask: u128,
    pub(super) state: Mutex<SubState>,
}

/// A subscriber's queue and waiters (under `Subscriber::state`).
pub(super) struct SubState {
    queue: VecDeque<c_int>,
    /// Bit `sig` set while `sig` is in `queue`.
    queued: u128,
    /// Fibers or threads parked in `wait`, with their wait ids.
    pub(super) waiters: Vec<(u64, Unparker)>,
}

impl SubState {
    /// The oldest received signal.
    pub(super) fn pop(&mut self) -> Option<c_int> {
        let sig = self.queue.pop_front()?;
        self.queued &= !(1 << sig);
        Some(sig)
    }
}

impl Subscriber {
    /// Dispatcher side: queues `sig` (unless already queued) and wakes the
    /// waiters.
    fn deliver(&self, sig: c_int) {
        let waiters = {
            let mut st = lock(&self.state);
            if st.queued & (1 << sig) == 0 {
                st.queued |= 1 << sig;
                st.queue.push_back(sig);
            }
            mem::take(&mut st.waiters)
        };
        for (_, waiter) in waiters {
            waiter.unpark();
        }
    }
}

/// The handler: async-signal-safe calls only (an atomic store and `write`),
/// with `errno` saved and restored.
extern "C" fn on_signal(sig: c_int) {
    // SAFETY: `__errno_location` returns this thread's errno slot, valid for
    // the thread's lifetime; reading and writing it is async-signal-safe.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno };
    if let Some(flag) = usize::try_from(sig).ok().and_then(|s| PENDING.get(s)) {
        flag.store(true, Ordering::SeqCst);
    }
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: `write` is async-signal-safe; the buffer is one valid byte.
        // The fd is the pipe's write end, which is never closed. A failure
        // (full pipe) is fine: the pending flag carries the signal.
        unsafe { libc::write(fd, ptr::addr_of!(byte).cast::<c_void>(), 1) };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// Creates the process's self-pipe once; returns its read end.
fn ensure_pipe(reg: &mut Registry) -> io::Result<c_int> {
    if reg.read_fd >= 0 {
        return Ok(reg.read_fd);
    }
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("Signals::new: cannot create the signal self-pipe: {e} (is the fd limit, ulimit -n, exhausted?)"),
        ));
    }
    reg.read_fd = fds[0];
    WRITE_FD.store(fds[1], Ordering::SeqCst);
    Ok(fds[0])
}

/// Installs threadlet's handler for `sig`, returning the previous action.
fn install(sig: c_int) -> io::Result<libc::sigaction> {
    // SAFETY: an all-zero sigaction is a valid value (SIG_DFL, no flags).
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: as above.
    let mut previous: libc::sigaction = unsafe { mem::zeroed() };
    // SAFETY: both pointers are valid sigaction values; `sig` was validated.
    if unsafe { libc::sigaction(sig, &action, &mut previous) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("Signals::new: cannot install a handler for signal {sig}: {e}"),
        ));
    }
    Ok(previous)
}

/// Puts back the action saved by [`install`].
fn restore(sig: c_int, previous: &libc::sigaction) {
    // SAFETY: `previous` is the action the kernel gave back for this signal.
    if unsafe { libc::sigaction(sig, previous, ptr::null_mut()) } != 0 {
        log::warn!(
            "threadlet: cannot restore the previous disposition of signal {sig}: {}",
            io::Error::last_os_error()
        );
    }
}

/// Registers a subscriber for the signals in `mask` (already validated),
/// installing handlers and starting the dispatcher as needed.
pub(super) fn subscribe(mask: u128) -> io::Result<Arc<Subscriber>> {
    let mut reg = lock(&REGISTRY);
    leave_parent(&mut reg)?;
    let read_fd = ensure_pipe(&mut reg)?;
    let mut added = Vec::new();
    for sig in 1..NSIG as c_int {
        if mask & (1 << sig) == 0 {
            continue;
        }
        let slot = &mut reg.installed[sig as usize];
        if let Some(installed) = slot {
            installed.users += 1;
            added.push(sig);
            continue;
        }
        match install(sig) {
            Ok(previous) => {
                *slot = Some(Installed { users: 1, previous });
                added.push(sig);
            }
            Err(e) => {
                release(&mut reg, &added);
                return Err(e);
            }
        }
    }
    if !reg.running {
        let started = thread::Builder::new()
            .name("threadlet-signal".into())
            .spawn(move || dispatcher(read_fd));
        if let Err(e) = started {
            release(&mut reg, &added);
            return Err(io::Error::new(
                e.kind(),
                format!("Signals::new: cannot start the signal dispatcher thread: {e}"),
            ));
        }
        reg.running = true;
    }
    let sub = Arc::new(Subscriber {
        mask,
        state: Mutex::new(SubState {
            queue: VecDeque::new(),
            queued: 0,
            waiters: Vec::new(),
        }),
    });
    reg.subs.push(sub.clone());
    Ok(sub)
}

/// Drops one user of each signal in `sigs`, restoring dispositions at zero.
fn release(reg: &mut Registry, sigs: &[c_int]) {
    for &sig in sigs {
        let slot = &mut reg.installed[sig as usize];
        let Some(installed) = slot else { continue };
        installed.users -= 1;
        if installed.users == 0 {
            restore(sig, &installed.previous);
            *slot = None;
        }
    }
}

/// Removes a subscriber (its `Signals` was dropped).
pub(super) fn unsubscribe(sub: &Arc<Subscriber>) {
    let mut reg = lock(&REGISTRY);
    reg.subs.retain(|s| !Arc::ptr_eq(s, sub));
    let sigs: Vec<c_int> = (1..NSIG as c_int)
        .filter(|&s| sub.mask & (1 << s) != 0)
        .collect();
    release(&mut reg, &sigs);
    if reg.subs.is_empty() && reg.running {
        // Wake the dispatcher so it sees it has nothing left to do.
        wake_dispatcher();
    }
}

/// The dispatcher thread: waits on the pipe and fans signals out.
fn dispatcher(read_fd: c_int) {
    let mut buf = [0u8; 256];
    let mut order = Vec::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: read_fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, -1) };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            log::warn!(
                "threadlet: poll on the signal pipe failed: {}",
                io::Error::last_os_error()
            );
            thread::sleep(std::time::Duration::from_millis(10));
        }
        order.clear();
        loop {
            // SAFETY: reads into a valid buffer of `buf.len()` bytes.
            let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast::<c_void>(), buf.len()) };
            if n > 0 {
                order.extend(buf[..n as usize].iter().map(|&b| c_int::from(b)));
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        let fired: Vec<c_int> = order
            .iter()
            .copied()
            .chain(1..NSIG as c_int)
            .filter(|&sig| {
                usize::try_from(sig)
                    .ok()
                    .and_then(|s| PENDING.get(s))
                    .is_some_and(|flag| flag.swap(false, Ordering::SeqCst))
            })
            .collect();
        let mut reg = lock(&REGISTRY);
        for sig in fired {
            for sub in reg.subs.iter().filter(|s| s.mask & (1 << sig) != 0) {
                sub.deliver(sig);
            }
        }
        if reg.subs.is_empty() {
            reg.running = false;
            return;
        }
    }
}
