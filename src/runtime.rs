//! The runtime: worker threads, their shared state, and the ways in —
//! [`run`], [`Runtime::block_on`], [`Runtime::spawn`], [`Handle`] — plus
//! introspection ([`stats`], [`dump`]).
//!
//! Shutdown (when [`run`]'s closure returns, or a [`Runtime`] is dropped):
//! every fiber still alive is cancelled — it unwinds at its park point, its
//! destructors run, its sockets close — fibers never started are dropped
//! unrun, the workers exit once no fiber is alive, their threads are joined,
//! and the reactor's fds and the stack slabs are released. Only then does
//! `run` return. A fiber that never blocks (a pure CPU loop) cannot be
//! unwound and keeps shutdown waiting, as a thread that never exits keeps
//! `join` waiting.
//!
//! Fork: a forked child has a copy of its parent's runtimes but none of their
//! threads. Spawning on such a copy is an error naming the cause; dropping
//! it forgets the (absent) threads, closes the child's copies of the
//! reactor's fds and returns, leaving the parent's fibers alone. A new
//! runtime (and `signal::Signals`) in the child works normally.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::fiber::{self, Executor, FiberId, JoinHandle};
use crate::scheduler::{self, Config, Monitor, Shared};
pub use crate::stack::StackGuard;
use crate::stack::{normalize_stack_size, DEFAULT_STACK_SIZE};

/// Configures a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    workers: Option<usize>,
    stack_size: usize,
    stack_guard: StackGuard,
    stall_threshold: Duration,
    thread_name: String,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: None,
            stack_size: DEFAULT_STACK_SIZE,
            stack_guard: StackGuard::Auto,
            stall_threshold: Duration::from_millis(100),
            thread_name: "threadlet-worker".to_owned(),
        }
    }
}

impl Builder {
    /// A builder with the defaults: one worker per CPU, 256 KiB stacks.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Number of worker threads (default: `std::thread::available_parallelism`).
    /// Zero is raised to one.
    pub fn workers(mut self, n: usize) -> Builder {
        self.workers = Some(n.max(1));
        self
    }

    /// Default stack size of the runtime's fibers, in bytes (default 256 KiB
    /// of virtual memory; only touched pages cost memory). Rounded up to whole
    /// pages; below 16 KiB is raised to 16 KiB; above 1 GiB makes `build` fail.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = bytes;
        self
    }

    /// How stack guard pages are made (default: `madvise(MADV_GUARD_INSTALL)`
    /// where the kernel has it, else `mprotect`).
    pub fn stack_guard(mut self, guard: StackGuard) -> Builder {
        self.stack_guard = guard;
        self
    }

    /// How long a fiber may run without blocking or yielding before the
    /// monitor reports its worker as stalled (default 100 ms).
    pub fn stall_threshold(mut self, threshold: Duration) -> Builder {
        self.stall_threshold = threshold;
        self
    }

    /// Name prefix of the worker threads (default `threadlet-worker`).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// Starts the runtime's threads.
    ///
    /// # Errors
    /// An absurd stack size (`InvalidInput`), or the OS refusing a thread,
    /// an epoll instance or an eventfd.
    pub fn build(self) -> io::Result<Runtime> {
        crate::stack::install_overflow_handler();
        #[cfg(all(feature = "hook", target_os = "linux", target_env = "gnu"))]
        crate::hook::link();
        let workers = self
            .workers
            .unwrap_or_else(|| thread::available_parallelism().map_or(1, |n| n.get()));
        let config = Config {
            workers,
            stack_size: normalize_stack_size(self.stack_size)?,
            stack_guard: self.stack_guard,
            stall_threshold: self.stall_threshold,
            thread_name: self.thread_name,
        };
        let (shared, deques) = Shared::new(config)?;
        let threads = scheduler::start_workers(&shared, deques)?;
        let monitor = match scheduler::start_monitor(&shared) {
            Ok(m) => Some(m),
            Err(e) => {
                log::warn!("threadlet: no stall monitor ({e}); stalls will not be reported");
                None
            }
        };
        Ok(Runtime {
            shared,
            threads,
            monitor,
        })
    }
}

/// A threadlet runtime: a pool of worker threads running fibers.
pub struct Runtime {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<()>>,
    monitor: Option<Monitor>,
}

impl Runtime {
    /// A [`Builder`] for a runtime.
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A runtime with the default configuration.
    ///
    /// # Errors
    /// As [`Builder::build`].
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// Runs `f` on a fiber of this runtime and blocks the calling thread (or
    /// parks the calling fiber) until it returns. A panic in `f` is re-raised
    /// here. Fibers `f` spawned keep running until the runtime is dropped.
    pub fn block_on<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        match self.spawn(f).join() {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// Spawns a fiber on this runtime, from any thread.
    ///
    /// # Panics
    /// If no stack can be mapped (see [`Handle::spawn_with`]).
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.handle().spawn(f)
    }

    /// A cloneable handle to spawn onto this runtime from anywhere.
    pub fn handle(&self) -> Handle {
        Handle {
            shared: self.shared.clone(),
        }
    }

    /// Statistics of this runtime.
    pub fn stats(&self) -> Stats {
        self.handle().stats()
    }

    fn shutdown(&mut self) {
        if self.shared.is_forked_copy() {
            // A forked child dropping the runtime its parent built: the
            // worker and monitor threads do not exist here, so there is
            // nothing to signal or join (joining them fails or blocks), and
            // the fibers are the parent's (unwinding them here would run the
            // parent's destructors a second time, on state the parent still
            // owns). Forget the thread handles, close this process's copies
            // of the reactor's fds, and leave the rest to exit or exec.
            self.threads.drain(..).for_each(std::mem::forget);
            std::mem::forget(self.monitor.take());
            self.shared.reactor.close_after_fork();
            return;
        }
        self.shared.begin_shutdown();
        let on_own_worker =
            scheduler::Local::current().is_some_and(|l| Arc::ptr_eq(&l.shared, &self.shared));
        if on_own_worker {
            // Dropped from one of its own fibers: the workers cannot be
            // joined from here; they exit on their own once drained.
            log::warn!("threadlet: a Runtime was dropped on one of its own fibers; its threads finish in the background");
            self.threads.clear();
            return;
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(mut m) = self.monitor.take() {
            m.stop();
        }
        self.shared.close();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.shared.worker_count())
            .finish_non_exhaustive()
    }
}

/// A cloneable reference to a runtime, for spawning from any thread.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

impl Handle {
    /// The runtime of the calling fiber, if any.
    pub fn try_current() -> Option<Handle> {
        // A fiber never changes thread once started, and a worker thread
        // runs only its own runtime's fibers: the worker this fiber runs on
        // belongs to the fiber's runtime.
        if crate::context::current_fiber_ptr().is_null() {
            return None;
        }
        let local = scheduler::Local::current()?;
        Some(Handle {
            shared: local.shared.clone(),
        })
    }

    /// The runtime of the calling fiber.
    ///
    /// # Panics
    /// Outside a fiber; start one with [`run`].
    pub fn current() -> Handle {
        Handle::try_current().expect(
            "threadlet::runtime::Handle::current() called outside a fiber; run your code with `threadlet::run(|| ...)`",
        )
    }

    /// Spawns a fiber on the runtime.
    ///
    /// On a runtime that has shut down — dropped, or its workers exiting
    /// after [`run`] returned — the fiber never runs: the closure is dropped
    /// at once, on the calling thread, and the handle's `join` returns
    /// `Err` holding [`fiber::Cancelled`] without waiting (the same result as
    /// a fiber spawned during shutdown that never got to start). Never a
    /// hang: the check and the workers' decision to exit are one atomic
    /// step, so no fiber is left queued where no worker will run it. A
    /// panic was not chosen because spawns from destructors during shutdown
    /// are common and a panic there would abort the process.
    ///
    /// # Panics
    /// If no stack can be mapped; [`Handle::spawn_with`] returns that error.
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_with(fiber::Builder::new(), f)
            .unwrap_or_else(|e| panic!("threadlet: spawn failed: {e}"))
    }

    /// Spawns a fiber configured by `builder` on the runtime (on a runtime
    /// that has shut down: as [`Handle::spawn`], `Ok` with a handle whose
    /// `join` returns `Err(Cancelled)` at once).
    ///
    /// # Errors
    /// As [`fiber::Builder::spawn`].
    pub fn spawn_with<F, T>(&self, builder: fiber::Builder, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let exec: Arc<dyn Executor> = self.shared.clone();
        builder.spawn_on(exec, f)
    }

    /// Statistics of the runtime.
    pub fn stats(&self) -> Stats {
        let s = &self.shared;
        let wakes = s.wake_counts();
        Stats {
            fibers_alive: s.alive(),
            fibers_spawned: s
                .counters
                .spawned
                .load(std::sync::atomic::Ordering::Relaxed),
            workers: s.worker_count(),
            stalls: s.counters.stalls.load(std::sync::atomic::Ordering::Relaxed),
            cross_worker_wakes: wakes.0,
            worker_wakeups: wakes.1,
            epoll_waits: wakes.2,
        }
    }

    /// One entry per started fiber of the runtime.
    pub fn dump(&self) -> Vec<FiberInfo> {
        self.shared
            .dump()
            .into_iter()
            .map(|(fiber, worker, running)| FiberInfo {
                id: fiber.id(),
                name: fiber.name().map(str::to_owned),
                // Parked first: a fiber blocking its worker in place while it
                // unwinds is both "running" and waiting; say for what.
                state: if fiber.is_parked() {
                    fiber.reason().as_str().to_owned()
                } else if running {
                    "running".to_owned()
                } else {
                    "runnable".to_owned()
                },
                worker: Some(worker),
            })
            .collect()
    }

    /// The runtime's reactor (for net/io registration).
    pub(crate) fn reactor(&self) -> &crate::reactor::Reactor {
        &self.shared.reactor
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Counters describing a runtime (see [`stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Fibers spawned and not yet finished.
    pub fibers_alive: usize,
    /// Fibers spawned since the runtime started.
    pub fibers_spawned: u64,
    /// Worker threads.
    pub workers: usize,
    /// Stalls the monitor reported: a fiber ran past the stall threshold
    /// without blocking or yielding while its worker's other fibers waited.
    pub stalls: u64,
    /// Fibers woken from another thread (into their worker's inbox): a
    /// socket polled by another worker, a channel send from another worker.
    pub cross_worker_wakes: u64,
    /// Times a sleeping worker was woken by another thread (its poller's
    /// waker).
    pub worker_wakeups: u64,
    /// `epoll_wait` calls of all workers' pollers.
    pub epoll_waits: u64,
}

/// One fiber, as [`dump`] describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FiberInfo {
    /// The fiber's id.
    pub id: FiberId,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// What it is doing, in words: `"running"`, `"runnable"`, `"sleeping"`,
    /// `"parked: tcp read"`, `"parked: mutex lock"`, ...
    pub state: String,
    /// The worker it runs on.
    pub worker: Option<usize>,
}

/// Statistics of the calling fiber's runtime.
///
/// # Panics
/// Outside a fiber (use [`Runtime::stats`] from outside).
pub fn stats() -> Stats {
    Handle::current().stats()
}

/// Every started fiber of the calling fiber's runtime, with its state.
///
/// # Panics
/// Outside a fiber (use [`Handle::dump`] from outside).
pub fn dump() -> Vec<FiberInfo> {
    Handle::current().dump()
}

/// Runs `f` on a fiber of a fresh runtime with the default configuration and
/// returns its result; a panic in `f` is re-raised. When `f` returns, the
/// fibers still alive are cancelled and unwound and the runtime's threads are
/// joined before `run` returns. Several `run`s may run at once (say, in
/// parallel tests); each is independent.
///
/// # Panics
/// If the runtime cannot start (no threads or fds), or when `f` panics.
pub fn run<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let runtime =
        Runtime::new().unwrap_or_else(|e| panic!("threadlet::run: cannot start the runtime: {e}"));
    let result = runtime.spawn(f).join();
    drop(runtime);
    match result {
        Ok(value) => value,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
