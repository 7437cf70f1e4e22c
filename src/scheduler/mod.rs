//! The scheduler: worker threads, their queues, and how work finds a worker.
//!
//! # Rules
//! - A fiber that has started runs only on the worker that first ran it (its
//!   *home*): thread-locals, `Rc`s reachable from them, std guards and OS
//!   thread identity behave as on an OS thread, which keeps `spawn` safe.
//! - Each worker has a private run queue of its started fibers (touched only by
//!   its own thread), an *inbox* that other threads push wakes into, and a
//!   stealable deque of *fresh* (never started) fibers. A global injector takes
//!   spawns from threads that are not workers.
//! - A wake on the home worker's own thread goes straight to its run queue; a
//!   wake from anywhere else goes to the home's inbox and wakes that worker if
//!   it sleeps, through its poller's waker (`idle.rs` is the handshake).
//! - New stealable work wakes one sleeping worker, and only when nobody is
//!   already searching (Go's "spinning" rule), so a burst of spawns does not
//!   wake every thread; a searcher that finds work while it is the last one
//!   searching wakes another, so stealing fans out when there is more.
//! - A spawn from a worker wakes nobody while it is the only fresh fiber
//!   queued there (like Go's `runnext` and tokio's LIFO slot): spawn-then-
//!   join runs the child on the same worker with no syscall. The monitor
//!   wakes a sibling if such a fiber waits while its worker makes no
//!   progress for a sample period.
//! - Each worker owns a poller (reactor/mod.rs): an idle worker blocks in its
//!   own `epoll_wait` (no longer than its nearest timer); a busy one peeks at
//!   it without blocking every 61 ticks (at most every 100 µs). Sockets
//!   register with the poller of the worker whose fiber first waits on them,
//!   so their events wake that worker's fibers without crossing threads.
//!
//! Files: `idle.rs` (the spinning protocol: sleep words, the searcher count,
//! every `notify_*`), `worker.rs` (the worker loop), `shared.rs` (the state
//! every worker, handle and fiber of a runtime shares, and the `Executor` the
//! layers below call), `monitor.rs` (the stall monitor). This file is the
//! index.

mod idle;
mod monitor;
mod shared;
mod worker;

pub(crate) use monitor::Monitor;
pub(crate) use shared::{start_monitor, start_workers, Config, Shared};
use shared::{RunQueue, WorkerShared};
pub(crate) use worker::Local;
