//! The blocking pool: [`unblock`] runs a closure on a process-wide, elastic
//! pool of OS threads and parks the calling fiber until it returns, so a
//! worker thread never blocks in the kernel on a file, a DNS lookup or any
//! other call that has no readiness to wait for.
//!
//! # The pool (one per process, `POOL`)
//! All pool state sits in one mutex (`PoolState`) with one condvar:
//! - `queue`: jobs not yet taken by a thread (FIFO);
//! - `threads`: live pool threads (running a job or idle);
//! - `idle`: threads inside the idle wait loop of `run_thread`;
//! - `cap`, `idle_timeout`: configuration ([`set_max_blocking_threads`]).
//!
//! | event                      | who        | effect                                               |
//! |----------------------------|------------|------------------------------------------------------|
//! | submit                     | caller     | push job; `idle > 0`: notify one                     |
//! |                            |            | `queue.len() > idle` and `threads < cap`: start one  |
//! | thread start               | submitter  | `threads += 1` before the spawn, undone if it fails  |
//! | thread finds a job         | pool thread| pop front, run it *without* the lock                 |
//! | thread finds none          | pool thread| `idle += 1`, wait on the condvar (deadline: timeout) |
//! | wakes (notify, timeout)    | pool thread| re-checks the queue *first*; a job wins over retiring|
//! | idle deadline passed       | pool thread| `idle -= 1; threads -= 1`, exits                     |
//! | job done, `threads > cap`  | pool thread| `threads -= 1`, exits (the cap was lowered)          |
//!
//! Why no job is stranded: a job is queued only while (a) an idle thread will
//! look at the queue when it wakes (it was notified, or it timed out and
//! re-checks before retiring), or (b) more jobs than idle threads exist and a
//! new thread was started, or (c) the pool is at its cap and every thread is
//! busy, so each takes the next job when it finishes. If starting a thread
//! fails while no thread exists at all, the submitter takes a job back and
//! runs it on its own thread (logged): slower, never lost.
//!
//! # The result slot (one per call)
//!
//! An `Arc<Completion<thread::Result<T>>>` (park/completion.rs) shared by the
//! caller and the job: the job `set`s the closure's result (or panic), the
//! caller waits for it. A cancelled caller `abandon`s the slot and unwinds;
//! the job then drops the result on its pool thread when it finishes, and
//! the last of the two `Arc`s frees the slot — nothing dangles, nothing is
//! freed under the pool thread (the closure owns everything it uses).

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::context;
use crate::fiber::lock;
use crate::park::{self, Completion, WaitReason};

/// Default cap on the number of pool threads.
const DEFAULT_MAX_THREADS: usize = 512;
/// Default time an idle pool thread waits for work before it exits.
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A unit of work for the pool. It completes its own result slot.
type Job = Box<dyn FnOnce() + Send + 'static>;

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    idle: usize,
    cap: usize,
    idle_timeout: Duration,
    /// Threads ever started, for their names.
    started: usize,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
}

static POOL: Pool = Pool {
    state: Mutex::new(PoolState {
        queue: VecDeque::new(),
        threads: 0,
        idle: 0,
        cap: DEFAULT_MAX_THREADS,
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        started: 0,
    }),
    work: Condvar::new(),
};

impl Pool {
    /// Queues `job`. `Err(job)` hands a job back to run on the caller's thread
    /// when no pool thread exists and none can be started.
    fn submit(&'static self, job: Job) -> Result<(), Job> {
        let mut st = lock(&self.state);
        st.queue.push_back(job);
        if st.idle > 0 {
            self.work.notify_one();
        }
        if st.queue.len() <= st.idle || st.threads >= st.cap {
            return Ok(());
        }
        st.threads += 1;
        st.started += 1;
        let name = format!("threadlet-blocking-{}", st.started);
        drop(st);
        let spawned = thread::Builder::new()
            .name(name)
            .spawn(move || self.run_thread());
        let Err(e) = spawned else {
            return Ok(());
        };
        let mut st = lock(&self.state);
        st.threads -= 1;
        if st.threads > 0 {
            // The running threads take it when they are done.
            log::warn!("threadlet: cannot start another blocking-pool thread ({e}); the call waits for a busy one");
            return Ok(());
        }
        // Nobody will ever look at the queue: run a job here. Each submitter
        // that fails this way takes exactly one, so all of them run.
        let job = st.queue.pop_back();
        drop(st);
        log::warn!(
            "threadlet: cannot start a blocking-pool thread ({e}); running the blocking call on the calling thread"
        );
        match job {
            Some(job) => Err(job),
            None => Ok(()),
        }
    }

    /// The loop of one pool thread: run jobs, wait when idle, retire after
    /// `idle_timeout` without work (or when above the cap).
    fn run_thread(&'static self) {
        let mut st = lock(&self.state);
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                // The job catches the closure's panic itself; this only guards
                // against a panicking destructor of an abandoned result.
                let _ = panic::catch_unwind(AssertUnwindSafe(job));
                st = lock(&self.state);
                if st.threads > st.cap {
                    st.threads -= 1;
                    return;
                }
                continue;
            }
            st.idle += 1;
            let deadline = Instant::now() + st.idle_timeout;
            loop {
                if !st.queue.is_empty() {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    st.idle -= 1;
                    st.threads -= 1;
                    return;
                }
                st = self
                    .work
                    .wait_timeout(st, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            st.idle -= 1;
        }
    }
}

/// Sets the most threads the blocking pool (shared by every runtime in the
/// process) may run at once; the default is 512. Calls beyond the cap wait in
/// a queue for a free thread. Lowering the cap retires surplus threads as they
/// finish their current call.
///
/// # Errors
/// `InvalidInput` for 0 (the pool needs at least one thread).
pub fn set_max_blocking_threads(max: usize) -> io::Result<()> {
    if max == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "set_max_blocking_threads(0): the blocking pool needs at least one thread; pass 1 or more",
        ));
    }
    let mut st = lock(&POOL.state);
    st.cap = max;
    Ok(())
}

/// Sets how long an idle pool thread waits for work before it exits
/// (default 10 s). For tests of the pool itself.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn set_blocking_idle_timeout(timeout: Duration) {
    lock(&POOL.state).idle_timeout = timeout;
}

/// The number of live blocking-pool threads (busy or idle).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn blocking_threads() -> usize {
    lock(&POOL.state).threads
}

/// Does [`unblock`] run its closure in place on this thread (a plain thread,
/// or a fiber that is unwinding)? Callers use it to skip copies.
pub(crate) fn runs_inline() -> bool {
    context::current_fiber_ptr().is_null() || crate::park::unwinding()
}

/// Runs `f` on the blocking pool and parks the calling fiber until it
/// returns; the worker thread meanwhile runs other fibers. Use it for calls
/// that block in the kernel and cannot be waited for with readiness: file IO,
/// `getaddrinfo`, a C library that blocks, a long CPU-bound computation.
///
/// The pool is process-wide and started lazily: it grows on demand up to a cap
/// (512 threads by default, see [`set_max_blocking_threads`]); its threads are
/// named `threadlet-blocking-N` and exit after about 10 s without work.
///
/// - **Panics** in `f` are caught on the pool thread and re-raised here (with
///   the original payload), as `JoinHandle::join` + `resume_unwind` would.
/// - **On a plain thread** (not a fiber) `f` simply runs in place: blocking
///   that thread is what the caller asked for, and it saves two thread
///   switches. The same holds on a fiber that is unwinding a panic (it cannot
///   switch stacks then).
/// - **Cancellation**: if the calling fiber is cancelled (`JoinHandle::cancel`
///   or runtime shutdown) while `f` runs, the fiber unwinds at once with the
///   `Cancelled` payload, like at any other park point; `f` cannot be stopped
///   and runs to completion on its pool thread, which then drops its result.
///   So a runtime shuts down promptly even when a call like a terminal read
///   never returns. If `f` had already finished, its result is returned
///   instead.
///
/// # Panics
/// Re-raises the panic of `f`.
pub fn unblock<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if runs_inline() {
        return f();
    }
    let slot = Arc::new(Completion::new());
    let job_slot = slot.clone();
    let job: Job = Box::new(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        // Dropped here, on the pool thread, if the caller abandoned the slot.
        job_slot.set(result);
    });
    if let Err(job) = POOL.submit(job) {
        job();
    }
    let result = match slot.wait(WaitReason::Unblock) {
        Ok(result) => result,
        // Cancelled: the closure cannot be interrupted. Leave it running and
        // unwind now, unless its result arrived in the meantime.
        Err(_) => match slot.abandon() {
            Some(result) => result,
            None => park::unwind_cancelled(),
        },
    };
    match result {
        Ok(value) => value,
        Err(payload) => panic::resume_unwind(payload),
    }
}
