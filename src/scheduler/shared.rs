//! A runtime's shared state: what every worker, handle and fiber of it
//! sees (the per-worker inbox, stealer, registry and counters; the injector;
//! the idle coordination; the pollers), and the `Executor` the layers below
//! the scheduler call (wake, submit, timers, stacks).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Stealer, Worker as Deque};

use super::monitor::Monitor;
use super::{idle, worker, Local};
use crate::fiber::{lock, Executor, FiberRef, Header};
use crate::reactor::Reactor;
use crate::stack::{normalize_stack_size, FiberStack, StackGuard, StackPool};

/// What a runtime is configured with (from `runtime::Builder`).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) stack_size: usize,
    pub(crate) stack_guard: StackGuard,
    pub(crate) stall_threshold: Duration,
    pub(crate) thread_name: String,
}

/// Started fibers of one worker, for shutdown (cancel them) and `dump`.
#[derive(Default)]
pub(crate) struct Registry {
    pub(super) slots: Vec<Option<FiberRef>>,
    pub(super) free: Vec<usize>,
}

impl Registry {
    pub(super) fn insert(&mut self, fiber: &FiberRef) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        fiber.set_registry_slot(index);
        self.slots[index] = Some(fiber.clone());
    }

    pub(super) fn remove(&mut self, fiber: &Header) {
        let index = fiber.registry_slot();
        if let Some(slot) = self.slots.get_mut(index) {
            if slot.take().is_some() {
                self.free.push(index);
            }
        }
    }

    pub(super) fn fibers(&self) -> impl Iterator<Item = &FiberRef> {
        self.slots.iter().flatten()
    }
}

/// Keeps a value on cache lines of its own (128 bytes: Intel's adjacent-line
/// prefetcher moves lines in pairs), so one thread's writes to it do not
/// evict what other threads read next to it.
#[repr(C, align(128))]
#[derive(Default)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The part of a worker that other threads see. `repr(C)` keeps the groups
/// in this order: what other threads write (a wake into the inbox and its
/// counter) and what the worker writes on every resume (`running`,
/// `switches`) sit on different cache lines, or a cross-worker wake and the
/// worker's next resume would bounce one line between two cores.
#[repr(C)]
pub(crate) struct WorkerShared {
    /// Fibers woken by other threads (the injector pads its own ends).
    pub(super) inbox: Injector<FiberRef>,
    // Read-mostly.
    pub(super) stealer: Stealer<FiberRef>,
    pub(super) thread: OnceLock<Thread>,
    /// The worker thread's kernel id, 0 until it starts (monitor reports).
    pub(super) tid: std::sync::atomic::AtomicI32,
    // Written by other threads.
    /// Fibers woken from another thread into its inbox (for `stats`).
    pub(super) inbox_wakes: Padded<AtomicU64>,
    /// Times another thread woke it from its poller (for `stats`).
    pub(super) wakeups: AtomicU64,
    // Written by the worker itself.
    /// Id of the fiber it is running, 0 when none (for the monitor and dump).
    pub(super) running: Padded<AtomicU64>,
    /// Number of resumes so far (the monitor's progress signal).
    pub(super) switches: AtomicU64,
    pub(super) registry: Mutex<Registry>,
}

/// Counters behind `runtime::Stats`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) spawned: AtomicU64,
    pub(crate) stalls: AtomicU64,
}

/// A runtime's state shared by its workers, its handles and its fibers.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(super) workers: Box<[WorkerShared]>,
    pub(super) injector: Injector<FiberRef>,
    /// Who sleeps, who searches, who gets woken (idle.rs).
    pub(super) idle: idle::Idle,
    /// Fibers spawned and not yet finished.
    pub(super) alive: AtomicUsize,
    pub(super) shutdown: AtomicBool,
    pub(crate) reactor: Reactor,
    pub(super) pool: StackPool,
    pub(crate) counters: Counters,
    /// The process that built the runtime (see `fork`).
    pub(super) pid: u32,
}

/// Bit of `Shared::alive` set once the workers have decided to exit: no
/// fiber is admitted after it (`submit` refuses), so none can be left queued
/// where no worker will run it. Set only while the count is zero, by a CAS,
/// so a spawn and the last worker's exit decision are totally ordered.
const CLOSED: usize = 1 << (usize::BITS - 1);

/// The pid of this process, refreshed in a forked child by an atfork
/// handler, so checking "am I the process that built this runtime?" costs
/// one atomic load instead of a `getpid` syscall.
static PROCESS_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

extern "C" fn after_fork_in_child() {
    // SAFETY: getpid is async-signal-safe and has no preconditions.
    PROCESS_ID.store(unsafe { libc::getpid() } as u32, Ordering::Relaxed);
}

/// Records this process's pid and arranges for forked children to refresh it.
fn process_id() -> u32 {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        after_fork_in_child();
        // SAFETY: registers a plain function with no captured state; it only
        // stores to an atomic, which is allowed in a forked child.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    PROCESS_ID.load(Ordering::Relaxed)
}

impl Shared {
    /// Builds the shared state and the per-worker fresh deques (which move
    /// into the worker threads).
    pub(crate) fn new(config: Config) -> io::Result<(Arc<Shared>, Vec<Deque<FiberRef>>)> {
        let n = config.workers;
        let deques: Vec<Deque<FiberRef>> = (0..n).map(|_| Deque::new_lifo()).collect();
        let workers = deques
            .iter()
            .map(|d| WorkerShared {
                inbox: Injector::new(),
                stealer: d.stealer(),
                thread: OnceLock::new(),
                inbox_wakes: Padded(AtomicU64::new(0)),
                wakeups: AtomicU64::new(0),
                registry: Mutex::new(Registry::default()),
                running: Padded(AtomicU64::new(0)),
                switches: AtomicU64::new(0),
                tid: std::sync::atomic::AtomicI32::new(0),
            })
            .collect();
        let pool = StackPool::new(config.stack_size, config.stack_guard);
        let shared = Arc::new(Shared {
            config,
            workers,
            injector: Injector::new(),
            idle: idle::Idle::new(n),
            alive: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            reactor: Reactor::new(n)?,
            pool,
            counters: Counters::default(),
            pid: process_id(),
        });
        Ok((shared, deques))
    }

    /// Number of workers.
    pub(crate) fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// (fibers woken into another worker's inbox, wakes of a sleeping
    /// worker by another thread, `epoll_wait` calls), summed over workers.
    pub(crate) fn wake_counts(&self) -> (u64, u64, u64) {
        let mut sums = (0, 0, 0);
        for (i, w) in self.workers.iter().enumerate() {
            sums.0 += w.inbox_wakes.load(Ordering::Relaxed);
            sums.1 += w.wakeups.load(Ordering::Relaxed);
            sums.2 += self.reactor.poller(i).polls();
        }
        sums
    }

    /// Fibers alive (spawned, not finished).
    pub(crate) fn alive(&self) -> usize {
        self.alive.load(Ordering::Acquire) & !CLOSED
    }

    /// Counts a new fiber in, unless the runtime is closed. One `fetch_add`
    /// on the spawn path, as before the gate existed: a refused spawn takes
    /// its transient count back (`CLOSED` is set only at zero and never
    /// cleared, so that count can never keep the gate from closing, and
    /// workers decide to exit on the bit itself, not on the count).
    fn admit(&self) -> bool {
        let before = self.alive.fetch_add(1, Ordering::AcqRel);
        if before & CLOSED != 0 {
            self.alive.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// A worker that saw shutdown and found nothing to run: closes the
    /// runtime if no fiber is alive, or sees it closed. `true`: exit.
    pub(crate) fn try_close(&self) -> bool {
        let n = self.alive.load(Ordering::Acquire);
        if n & CLOSED != 0 {
            return true;
        }
        if n != 0 {
            return false;
        }
        match self
            .alive
            .compare_exchange(0, CLOSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // Siblings asleep waiting for the last fiber: let them see it.
                self.notify_all();
                true
            }
            Err(n) => n & CLOSED != 0,
        }
    }

    /// Has a worker closed the runtime (see `CLOSED`)?
    pub(crate) fn is_closed(&self) -> bool {
        self.alive.load(Ordering::Acquire) & CLOSED != 0
    }

    /// This thread's worker, if it is a worker of *this* runtime.
    pub(super) fn local(&self) -> Option<&Local> {
        let local = Local::current()?;
        std::ptr::eq(Arc::as_ptr(&local.shared), self).then_some(local)
    }

    /// Wakes worker `index` if it sleeps (after pushing into its inbox).
    pub(super) fn notify_worker(&self, index: usize) {
        self.idle.notify_worker(index, |i| self.wake_worker(i));
    }

    /// Makes worker `i`'s `epoll_wait` return (it was claimed asleep).
    pub(super) fn wake_worker(&self, i: usize) {
        self.workers[i].wakeups.fetch_add(1, Ordering::Relaxed);
        self.reactor.poller(i).wake();
    }

    /// After pushing stealable work: wake one sleeping worker to take it,
    /// unless some worker is already searching (idle.rs).
    pub(crate) fn notify_any(&self) {
        self.idle.notify_any(|i| self.wake_worker(i));
    }

    /// Wakes every worker (shutdown, last fiber gone).
    pub(super) fn notify_all(&self) {
        self.idle.notify_all(|i| self.wake_worker(i));
    }

    /// Starts shutdown: every worker cancels its fibers and exits once no
    /// fiber is alive.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.notify_all();
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Is this a forked child's copy of a runtime built by its parent (whose
    /// threads do not exist here)?
    pub(crate) fn is_forked_copy(&self) -> bool {
        PROCESS_ID.load(Ordering::Relaxed) != self.pid
    }

    /// Releases the runtime's fds and stack slabs (after the workers exited).
    pub(crate) fn close(&self) {
        self.reactor.close();
        self.pool.release_free();
    }

    /// Per-fiber info for `runtime::dump`.
    pub(crate) fn dump(&self) -> Vec<(FiberRef, usize, bool)> {
        let mut out = Vec::new();
        for (index, w) in self.workers.iter().enumerate() {
            let running = w.running.load(Ordering::Acquire);
            for fiber in lock(&w.registry).fibers().filter(|f| !f.is_finished()) {
                out.push((fiber.clone(), index, running == fiber.id().as_u64()));
            }
        }
        out
    }
}

impl Executor for Shared {
    fn wake(&self, fiber: FiberRef) {
        let home = fiber.home();
        if let Some(local) = self.local() {
            if local.index == home {
                local.push_local(fiber);
                return;
            }
        }
        let worker = &self.workers[home];
        worker.inbox.push(fiber);
        worker.inbox_wakes.fetch_add(1, Ordering::Relaxed);
        self.notify_worker(home);
    }

    fn unpark_worker_thread(&self, home: usize) {
        if let Some(t) = self.workers[home].thread.get() {
            t.unpark();
        }
    }

    fn submit(&self, fiber: FiberRef, local_only: bool) -> bool {
        if !self.admit() {
            return false;
        }
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        match self.local() {
            Some(local) if local_only => {
                fiber.set_home(local.index);
                local.push_local(fiber);
            }
            Some(local) => {
                local.fresh.push(fiber);
                // One fresh fiber is this worker's own next job: the common
                // spawn-then-join runs it here as soon as the spawner parks,
                // with no cross-thread wake. Wake a sibling only when there is
                // more than that (the monitor wakes one if a lone fresh fiber
                // waits behind a spawner that does not park). A spawn from
                // the worker's own stack (net::serve's accept hook, run by its
                // poller) has no spawner that parks, and the fiber woken by
                // the next event of the same batch may be a CPU-bound one it
                // would wait behind: offer it to a sibling at once.
                if local.fresh.len() > 1 || crate::context::current_fiber_ptr().is_null() {
                    self.notify_any();
                }
            }
            None => {
                assert!(!local_only, "spawn_local needs a worker thread");
                self.injector.push(fiber);
                self.notify_any();
            }
        }
        true
    }

    fn alloc_stack(&self, size: Option<usize>) -> io::Result<FiberStack> {
        if self.is_forked_copy() {
            return Err(io::Error::other(
                "this threadlet runtime was started by the parent of a fork(): its worker threads \
                 do not exist in this child process; start a new runtime in the child \
                 (threadlet::run) or exec a new program",
            ));
        }
        let size = match size {
            Some(s) => normalize_stack_size(s)?,
            None => self.pool.default_size(),
        };
        match self.local() {
            Some(local) => self.pool.alloc(size, Some(&mut local.stacks.borrow_mut())),
            None => self.pool.alloc(size, None),
        }
    }

    fn run_cancelled(&self, waiting: &Header) -> bool {
        self.local()
            .is_some_and(|local| local.run_cancelled_nested(waiting))
    }

    fn stall_threshold(&self) -> Duration {
        self.config.stall_threshold
    }

    fn add_timer(&self, deadline: Instant, fiber: FiberRef) {
        let local = self.local().expect("timer armed off its home worker");
        debug_assert!(std::ptr::eq(
            Arc::as_ptr(&fiber),
            crate::context::current_fiber_ptr()
        ));
        local.timers.borrow_mut().add(deadline, fiber);
    }

    fn cancel_timer(&self, fiber: &Header) {
        if let Some(local) = self.local() {
            local.timers.borrow_mut().cancel(fiber);
        }
    }

    fn fiber_finished(&self) {
        let before = self.alive.fetch_sub(1, Ordering::AcqRel);
        if before & !CLOSED == 1 && self.is_shutting_down() {
            self.notify_all();
        }
    }
}

/// Spawns the worker threads of a runtime.
pub(crate) fn start_workers(
    shared: &Arc<Shared>,
    deques: Vec<Deque<FiberRef>>,
) -> io::Result<Vec<thread::JoinHandle<()>>> {
    let mut threads = Vec::with_capacity(deques.len());
    for (index, deque) in deques.into_iter().enumerate() {
        let shared2 = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("{}-{index}", shared.config.thread_name))
            .spawn(move || worker::run(shared2, index, deque));
        match spawned {
            Ok(t) => {
                let _ = shared.workers[index].thread.set(t.thread().clone());
                threads.push(t);
            }
            Err(e) => {
                shared.begin_shutdown();
                for t in threads {
                    let _ = t.join();
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot start threadlet worker thread {index}: {e}; use fewer workers"),
                ));
            }
        }
    }
    Ok(threads)
}

/// Starts the stall monitor thread.
pub(crate) fn start_monitor(shared: &Arc<Shared>) -> io::Result<Monitor> {
    Monitor::start(shared.clone())
}

/// Queue type used by the worker's private run queue.
pub(super) type RunQueue = VecDeque<FiberRef>;
