//! [`serve`]: a TCP server whose accepting belongs to the runtime.
//!
//! # Design
//! - The listening socket is watched by *every* worker's poller at once,
//!   level-triggered with `EPOLLEXCLUSIVE` (reactor/mod.rs, "shared entry"),
//!   rather than by one accept-loop fiber. A pinned accept loop stops
//!   accepting whenever its worker is held by a CPU-bound handler; here the
//!   kernel offers a new connection to a poller blocked in `epoll_wait` — an
//!   idle worker — and leaves it on the ready list of busy ones, which see it
//!   at their next peek. `EPOLLEXCLUSIVE` wakes one idle worker per
//!   connection instead of all of them (no thundering herd at 64 workers).
//! - The worker whose poller reports the socket runs the *accept hook* on its
//!   own stack: `accept4` (non-blocking, `SOCK_CLOEXEC`) up to [`BATCH`]
//!   connections, each handed to `handler` on a fresh fiber — stealable like
//!   any fresh fiber, so a sibling that searches takes it if this worker is
//!   busy. A hook that accepted something asks its poller to re-arm the entry
//!   at the back of the socket's wait queue, so the next connection goes to
//!   another idle worker first: connections spread over the workers even
//!   when handlers mostly wait.
//! - Why not one `SO_REUSEPORT` listener per worker: the kernel hashes each
//!   connection to one listener by its addresses, whatever that worker is
//!   doing, so a connection hashed to a worker held by a CPU-bound handler
//!   would wait for it. (`SO_REUSEPORT` across processes stays possible: set
//!   it on nothing here, it is not needed within one process.)
//! - Errors: `ECONNABORTED` and `EINTR` are retried at once; on
//!   EMFILE/ENFILE/ENOBUFS/ENOMEM the server stops watching the socket for a
//!   back-off (5 ms doubling to 1 s while it persists; a fiber sleeps it out
//!   and re-arms), reports the error through `log`, and never spins.
//! - Stopping ([`Server::shutdown`], or dropping the [`Server`]): the stop
//!   flag is set under the write side of `gate`, which every hook holds for
//!   reading while it accepts, so once it is set no hook accepts again; then
//!   every poller's entry is removed and the socket is closed — the port is
//!   closed when `shutdown` returns. `shutdown` then parks until the handlers
//!   still running (counted from their spawn to their end, unwinding
//!   included) are done; called from one of its own handlers, it does not
//!   wait for that one.
//!
//! Who touches what: `gate` (the stop flag) as above; `entries` (the
//! per-poller registrations) under its lock, by `serve`, a back-off and
//! `stop`; `running` under its lock, by the hook (spawn), each handler's end
//! and `shutdown`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use mio::Token;

use super::{TcpListener, TcpStream, ToSocketAddrs};
use crate::context;
use crate::fiber::{self, lock, FiberId};
use crate::park::{self, Unparker, WaitReason};
use crate::reactor::{Poller, ReadyHook};
use crate::runtime::Handle;

/// Connections one hook call accepts at most before it lets its worker run
/// the handlers (the rest wait in the backlog; the entry stays ready).
const BATCH: usize = 64;
/// First and largest back-off after EMFILE/ENFILE/ENOBUFS/ENOMEM.
const BACKOFF_MIN_MS: u32 = 5;
const BACKOFF_MAX_MS: u32 = 1000;

const SHUTDOWN_WAIT: WaitReason = WaitReason::ServeShutdown;

type Handler = dyn Fn(TcpStream) + Send + Sync;

/// Handlers spawned and not finished, and who waits for them.
#[derive(Default)]
struct Running {
    count: usize,
    /// Fibers of handlers that have started (to spot `shutdown` from a
    /// handler).
    ids: Vec<FiberId>,
    waiter: Option<Unparker>,
}

struct Inner {
    /// The listening socket; `None` once stopped (the fd is closed then).
    listener: Mutex<Option<TcpListener>>,
    fd: RawFd,
    /// The stop flag (module docs).
    gate: RwLock<bool>,
    entries: Mutex<Vec<(Arc<Poller>, Token)>>,
    handler: Arc<Handler>,
    runtime: Handle,
    running: Mutex<Running>,
    backoff_ms: AtomicU32,
    /// A back-off is under way (the socket is not watched meanwhile).
    paused: AtomicBool,
}

/// A TCP server started by [`serve`]: it accepts connections until it is
/// shut down or dropped.
pub struct Server {
    inner: Arc<Inner>,
    local_addr: SocketAddr,
}

/// Binds a TCP listener to `addr` and serves every connection it accepts by
/// running `handler` on a fresh fiber (it may run on any worker).
///
/// Accepting belongs to the runtime, not to one fiber: every worker watches
/// the socket and whichever is free accepts, so a handler that keeps its
/// worker busy (a CPU-bound request) never delays new connections while
/// another worker is free, and connections spread over the workers. The
/// server runs until [`Server::shutdown`] or until the `Server` is dropped.
///
/// ```
/// use std::io::{Read, Write};
/// use threadlet::net::{self, TcpStream};
///
/// threadlet::run(|| {
///     let server = net::serve("127.0.0.1:0", |mut conn: TcpStream| {
///         let mut buf = [0; 5];
///         conn.read_exact(&mut buf).unwrap();
///         conn.write_all(&buf).unwrap();
///     })
///     .unwrap();
///     let mut client = TcpStream::connect(server.local_addr()).unwrap();
///     client.write_all(b"hello").unwrap();
///     let mut buf = [0; 5];
///     client.read_exact(&mut buf).unwrap();
///     assert_eq!(&buf, b"hello");
///     server.shutdown();
/// });
/// ```
///
/// # Errors
/// Outside a fiber of a threadlet runtime; the errors of
/// [`TcpListener::bind`] (an unresolvable address, a port in use); the OS
/// refusing to watch the socket.
pub fn serve<A, F>(addr: A, handler: F) -> io::Result<Server>
where
    A: ToSocketAddrs,
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let runtime = Handle::try_current().ok_or_else(|| {
        io::Error::other(
            "net::serve must be called from a fiber of a threadlet runtime: call it inside \
             threadlet::run(|| ...)",
        )
    })?;
    let listener = TcpListener::bind(addr)?;
    let local_addr = listener.local_addr()?;
    let fd = listener.as_raw_fd();
    let inner = Arc::new(Inner {
        listener: Mutex::new(Some(listener)),
        fd,
        gate: RwLock::new(false),
        entries: Mutex::new(Vec::new()),
        handler: Arc::new(handler),
        runtime,
        running: Mutex::new(Running::default()),
        backoff_ms: AtomicU32::new(0),
        paused: AtomicBool::new(false),
    });
    if let Err(e) = inner.watch() {
        inner.stop();
        return Err(e);
    }
    Ok(Server { inner, local_addr })
}

impl Server {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting — the listening socket is closed when this returns,
    /// so new connects are refused — then waits for the handlers that are
    /// still running (on a fiber it parks; on a thread it blocks). Called
    /// from one of this server's own handlers, it waits for the others. A
    /// fiber cancelled while it waits stops waiting (and unwinds); accepting
    /// has stopped by then.
    pub fn shutdown(self) {
        self.inner.stop();
        let me = current_id();
        loop {
            let mut running = lock(&self.inner.running);
            let mine = me.is_some_and(|id| running.ids.contains(&id));
            if running.count <= usize::from(mine) {
                return;
            }
            running.waiter = Some(Unparker::current());
            drop(running);
            park::park(SHUTDOWN_WAIT);
            // A cancelled caller stops waiting (accepting has stopped
            // already); the stale waiter it leaves is harmless.
            park::check_cancel();
        }
    }
}

impl Drop for Server {
    /// Stops accepting (the running handlers go on).
    fn drop(&mut self) {
        self.inner.stop();
    }
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// The id of the calling fiber, if the caller is one.
fn current_id() -> Option<FiberId> {
    context::with_current_fiber(|f| f.map(|f| f.id()))
}

/// Decrements the running count when a handler ends (or never starts).
struct RunningGuard(Arc<Inner>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        let me = current_id();
        let waiter = {
            let mut running = lock(&self.0.running);
            running.count -= 1;
            if let Some(i) = me.and_then(|id| running.ids.iter().position(|x| *x == id)) {
                running.ids.swap_remove(i);
            }
            running.waiter.take()
        };
        if let Some(w) = waiter {
            w.unpark();
        }
    }
}

impl Inner {
    /// Adds the socket to every worker's poller.
    fn watch(self: &Arc<Self>) -> io::Result<()> {
        let mut entries = lock(&self.entries);
        for poller in self.runtime.reactor().pollers() {
            let me = Arc::downgrade(self);
            let hook: ReadyHook = Arc::new(move || me.upgrade().is_some_and(|s| s.accept_batch()));
            let token = poller.add_shared(self.fd, hook)?;
            entries.push((poller.clone(), token));
        }
        Ok(())
    }

    /// Removes the socket from every poller.
    fn unwatch(&self) {
        for (poller, token) in lock(&self.entries).drain(..) {
            poller.remove_shared(self.fd, token);
        }
    }

    /// The hook: runs on the worker whose poller saw the socket readable.
    /// True when it accepted something.
    fn accept_batch(self: &Arc<Self>) -> bool {
        let stopped = self.gate.read().unwrap_or_else(|e| e.into_inner());
        if *stopped {
            return false;
        }
        let mut accepted = false;
        let mut n = 0;
        while n < BATCH {
            // SAFETY: `fd` is the open listening socket: it is closed only
            // after `stop` set the flag under the write lock, and we hold the
            // read lock. Null address pointers are allowed by accept4.
            let r = unsafe {
                libc::accept4(
                    self.fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if r >= 0 {
                n += 1;
                accepted = true;
                // SAFETY: accept4 just returned this fd; nobody else owns it.
                let conn = unsafe { OwnedFd::from_raw_fd(r) };
                self.spawn_handler(conn);
                continue;
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ECONNABORTED | libc::EINTR) => continue,
                Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                    drop(stopped);
                    self.back_off(e);
                    return false;
                }
                _ if e.kind() == io::ErrorKind::WouldBlock => break,
                _ => {
                    log::error!("threadlet: net::serve accept failed: {e}");
                    break;
                }
            }
        }
        if accepted && self.backoff_ms.load(Ordering::Relaxed) != 0 {
            self.backoff_ms.store(0, Ordering::Relaxed);
        }
        accepted
    }

    fn spawn_handler(self: &Arc<Self>, conn: OwnedFd) {
        let stream = TcpStream::from_accepted(conn);
        lock(&self.running).count += 1;
        let guard = RunningGuard(self.clone());
        let handler = self.handler.clone();
        let spawned = self.runtime.spawn_with(
            fiber::Builder::new().name("net::serve handler".into()),
            move || {
                let guard = guard;
                if let Some(id) = current_id() {
                    lock(&guard.0.running).ids.push(id);
                }
                handler(stream);
            },
        );
        // On failure the closure (with the guard and the connection) is
        // dropped: the count goes back down and the connection closes.
        if let Err(e) = spawned {
            log::error!("threadlet: net::serve cannot start a handler fiber: {e}");
        }
    }

    /// Out of fds or memory: stop watching for a while (the backlog would
    /// report the socket ready on every poll), then watch again.
    fn back_off(self: &Arc<Self>, e: io::Error) {
        // Several workers may hit the limit at once: one back-off is enough.
        if self.paused.swap(true, Ordering::AcqRel) {
            return;
        }
        let ms = self
            .backoff_ms
            .load(Ordering::Relaxed)
            .clamp(BACKOFF_MIN_MS, BACKOFF_MAX_MS);
        self.backoff_ms
            .store((ms * 2).min(BACKOFF_MAX_MS), Ordering::Relaxed);
        log::warn!(
            "threadlet: net::serve cannot accept ({e}); pausing accepts for {ms} ms. Raise the \
             fd limit (ulimit -n) or serve fewer connections at once"
        );
        self.unwatch();
        let me = Arc::downgrade(self);
        let resume = move || {
            fiber::sleep(Duration::from_millis(ms as u64));
            if let Some(inner) = me.upgrade() {
                let stopped = inner.gate.read().unwrap_or_else(|e| e.into_inner());
                if !*stopped {
                    if let Err(e) = inner.watch() {
                        log::error!("threadlet: net::serve cannot watch its socket again: {e}");
                    }
                }
                inner.paused.store(false, Ordering::Release);
            }
        };
        if let Err(e) = self.runtime.spawn_with(fiber::Builder::new(), resume) {
            log::error!("threadlet: net::serve cannot schedule its back-off: {e}");
        }
    }

    /// Stops accepting and closes the socket (idempotent).
    fn stop(&self) {
        {
            let mut stopped = self.gate.write().unwrap_or_else(|e| e.into_inner());
            if *stopped {
                return;
            }
            *stopped = true;
        }
        self.unwatch();
        lock(&self.listener).take();
    }
}
