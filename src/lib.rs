//! threadlet: stackful green threads (fibers) for Rust.
//!
//! Write plain blocking code — `stream.read(&mut buf)?`, `mutex.lock()`,
//! `rx.recv()` — and run it on fibers: each call that would block parks the
//! fiber (on an epoll registration, a timer, a lock, a channel) and its worker
//! thread switches to another ready fiber. A pool of worker threads shares the
//! fibers by work stealing. No `async`, no colored functions; a fiber costs a
//! few KiB of memory, so a million of them fit in a few GiB.
//!
//! **Your code, unchanged.** With the default `hook` feature, threadlet also
//! intercepts the libc calls that `std::net`, `std::thread::sleep`,
//! `ToSocketAddrs` and the crates built on them make (HTTP clients, database
//! and cache drivers, TLS and WebSocket libraries), so code written for
//! threads parks the fiber too — see [What parks](#what-parks-and-what-does-not).
//!
//! # A tour
//!
//! ```
//! use std::io::{Read, Write};
//! use threadlet::net::{TcpListener, TcpStream};
//!
//! threadlet::run(|| {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     // A thread-per-connection echo server... on fibers.
//!     threadlet::spawn(move || {
//!         for stream in listener.incoming() {
//!             let mut stream = stream.unwrap();
//!             threadlet::spawn(move || {
//!                 let mut buf = [0; 1024];
//!                 loop {
//!                     let n = stream.read(&mut buf).unwrap();
//!                     if n == 0 { break; }
//!                     stream.write_all(&buf[..n]).unwrap();
//!                 }
//!             });
//!         }
//!     });
//!     let mut client = TcpStream::connect(addr).unwrap();
//!     client.write_all(b"hello").unwrap();
//!     let mut reply = [0; 5];
//!     client.read_exact(&mut reply).unwrap();
//!     assert_eq!(&reply, b"hello");
//! }); // the server fiber is cancelled and unwound when `run` returns
//! ```
//!
//! - **Runtime.** [`run`] starts a runtime (one worker per CPU), runs a
//!   closure on a fiber and shuts down when it returns. [`Runtime::builder`]
//!   configures workers, stack size and guard pages; [`Runtime::block_on`],
//!   [`Runtime::spawn`] and [`runtime::Handle`] get work in from outside;
//!   [`runtime::stats`] and [`runtime::dump`] show what the fibers are doing.
//! - **Fibers** ([`fiber`], and [`thread`] under std's names): [`spawn`]
//!   mirrors `std::thread::spawn`;
//!   [`fiber::Builder`] names fibers and sizes their stacks; [`JoinHandle`]
//!   joins (a panic comes back as `Err`, as with threads) and cancels;
//!   [`fiber::scope`] lets fibers borrow; [`fiber::spawn_local`] pins `!Send`
//!   work to the current worker; [`fiber_local!`] is `thread_local!` per fiber.
//! - **Network** ([`net`]): `TcpListener`, `TcpStream`, `UdpSocket`, and the
//!   Unix socket types, with std's methods, `Read`/`Write` for `T` and `&T`,
//!   read/write timeouts. [`net::serve`]`(addr, handler)` is a whole server:
//!   each connection runs `handler` on a fresh fiber, and accepting belongs to
//!   the runtime (whichever worker is free accepts), so a CPU-bound request
//!   never holds up new connections; [`net::Server::shutdown`] closes the
//!   port and waits for the running handlers. [`io::wait_readable`], [`io::wait_writable`] and
//!   [`io::Async`] make any fd (a pipe, a tty, a foreign socket) fiber-aware.
//! - **Sync** ([`sync`]): `Mutex`, `RwLock`, `Condvar`, `Barrier`, `OnceLock`
//!   (std semantics, poisoning included), `Semaphore`, `WaitGroup`, channels
//!   ([`sync::mpsc`] like std, [`sync::mpmc`] like crossbeam, [`sync::oneshot`])
//!   and [`select!`]. Every one works between fibers, between plain threads,
//!   and between the two.
//! - **Time** ([`time`]): `sleep`, `sleep_until`, and `timeout`, which runs a
//!   closure on a fiber and cancels it when time runs out.
//! - **Blocking work**: [`unblock`] runs a closure on an elastic pool of
//!   threads while the fiber parks; [`fs`] mirrors `std::fs` through it;
//!   [`signal::Signals`] waits for Unix signals; [`block_on`] drives a
//!   `Future` from a fiber.
//!
//! # Migrating thread-per-connection code
//!
//! Change the `use` lines:
//!
//! ```text
//! -use std::net::{TcpListener, TcpStream};
//! -use std::sync::{mpsc, Arc, Mutex};
//! -use std::thread;
//! +use threadlet::net::{TcpListener, TcpStream};
//! +use threadlet::sync::{mpsc, Arc, Mutex};
//! +use threadlet::thread;
//! ```
//!
//! and run `main`'s body inside [`run`] — [`migration`] walks through a
//! complete server and lists every behaviour that differs from std. Everything that takes `Read + Write`
//! (`BufReader`, rustls' `StreamOwned`, tungstenite, serde_json readers) works
//! unchanged on fiber sockets. `std::sync::Mutex` still works but blocks the
//! whole worker while contended; [`sync::Mutex`] parks only the fiber.
//!
//! # What parks and what does not
//!
//! On a fiber, these park the fiber (its worker runs other fibers meanwhile);
//! on a plain thread they block the thread, as always:
//! - threadlet's own types: [`net`], [`io::wait_readable`], [`io::Async`],
//!   [`sync`], [`time`], [`thread`]/[`fiber`] (`sleep`, `park`, `join`),
//!   [`unblock`], [`fs`] (through [`unblock`]), [`signal`], [`block_on`];
//! - with the `hook` feature (default; glibc Linux), the libc calls of
//!   unchanged code on **sockets the caller sees as blocking**: `read`,
//!   `write`, `readv`, `writev`, `recv`, `recvfrom`, `recvmsg`, `send`,
//!   `sendto`, `sendmsg`, `accept`, `accept4`, `connect` — so `std::net` and
//!   every client library over it (ureq, redis, tungstenite, rustls over a
//!   std `TcpStream`...); `poll` on up to 64 fds of any kind (std's
//!   `connect_timeout` uses it); the sleeps `nanosleep`, `clock_nanosleep`,
//!   `usleep`, `sleep` (so `std::thread::sleep`); and `getaddrinfo` (so
//!   `ToSocketAddrs` with a host name), which runs on the blocking pool.
//!   Results are the blocking call's: byte counts, EOF, `ECONNREFUSED`,
//!   `SO_RCVTIMEO`/`SO_SNDTIMEO` expiring as `EAGAIN` (`WouldBlock`). The
//!   socket's blocking flag is never changed for good (`fcntl(F_GETFL)` shows
//!   what you set); a socket you made nonblocking is left alone.
//!
//! These still block the worker:
//! - file, pipe, tty and stdin/stdout/stderr IO through std or libc (their
//!   flags are shared with other processes) — use [`fs`], [`io::Async`] or
//!   [`unblock`];
//! - std's `Mutex`, `Condvar`, `mpsc`, `Barrier` and `thread::park` (futexes,
//!   not syscalls threadlet can hook) — use [`sync`] and [`thread`];
//! - `select`, `epoll_wait`, `poll` on more than 64 fds, `sendfile`,
//!   `splice`, `recvmmsg`/`sendmmsg`, the `_FORTIFY_SOURCE` variants C code
//!   may call (`__read_chk`...), and anything that makes raw syscalls itself
//!   (rustix's linux_raw backend, io_uring);
//! - C libraries' blocking calls that glibc makes internally, and every call
//!   on musl or other non-glibc targets, or with `default-features = false`.
//!
//! A fiber cancelled while parked in a hooked call gets an error from it
//! (`ECANCELED`; a sleep returns early), because a libc function cannot
//! unwind; it unwinds at its next threadlet call.
//!
//! # Caveats
//!
//! - **What no hook can park blocks the worker.** A fiber that calls a
//!   blocking function threadlet neither wraps nor hooks (file IO, a std
//!   `Mutex` held across a wait, a C library's own event loop, a long CPU
//!   loop) stalls every other fiber of its worker. Wrap it in [`unblock`];
//!   break CPU loops with [`yield_now`]. The monitor thread reports a fiber
//!   that holds its worker for more than 100 ms without parking — its name
//!   and id, the worker, how long, what the thread is blocked in (a futex,
//!   a read, a sleep) or that it spins on the CPU, and the fix — as a `log`
//!   warning, or on stderr when no logger is installed (rate-limited);
//!   [`runtime::Stats::stalls`] counts them.
//! - **Thread-locals are per worker, not per fiber.** A started fiber never
//!   changes thread, so `thread_local!` values, `Rc`s reachable from them and
//!   std guards behave as on an OS thread — but the fibers of one worker share
//!   them. Use [`fiber_local!`] for per-fiber state.
//! - **Don't hold std locks or `RefCell` borrows across blocking calls.** A
//!   fiber that parks while holding a `std::sync::Mutex` can deadlock its own
//!   worker when a sibling fiber tries the same lock; the stall report above
//!   names the blocked fiber and says so. Use [`sync::Mutex`].
//! - **Cancellation** ([`JoinHandle::cancel`], runtime shutdown, an expired
//!   [`time::timeout`]) unwinds a fiber at its current or next blocking call,
//!   running its destructors. A fiber that never blocks cannot be cancelled,
//!   and keeps shutdown waiting. Cancellation reaches what the fiber waits
//!   on: the fiber of a [`time::timeout`] and the fibers of a
//!   [`fiber::scope`] are cancelled too (and waited for), a [`block_on`]
//!   future is dropped; an [`unblock`] closure cannot be interrupted and
//!   runs to its end on the pool, which drops its result.
//!   Like a panic, a cancellation poisons the
//!   locks whose guards it unwinds through (std's rule for an interrupted
//!   critical section; [`JoinHandle::cancel`] says why).
//! - **Don't wait in `Drop` for a sibling fiber.** A fiber that unwinds (a
//!   panic or a cancellation) cannot switch stacks — std's panic state is
//!   per thread — so a destructor of it that waits blocks its whole worker.
//!   While it waits, the worker still runs its *cancelled* fibers (they
//!   unwind anyway), so runtime shutdown always finishes and cancelling the
//!   fiber that holds what the destructor waits for ends the wait. A live
//!   sibling of the same worker cannot run (it would see a panic that is not
//!   its own and poison std locks): a destructor that locks a mutex such a
//!   sibling holds, or joins it, deadlocks that worker, and threadlet
//!   reports it (naming the fiber and what it waits for) once the wait
//!   passes the stall threshold. Release such resources before panicking,
//!   or hand the cleanup to a new fiber or to [`unblock`].
//! - **Stacks are fixed-size** (256 KiB of virtual memory by default, of which
//!   only touched pages cost memory). Overflowing one aborts the process with
//!   `fiber '<name>' (id N) has overflowed its stack of K KiB`, as std does for
//!   threads; raise the size with [`fiber::Builder::stack_size`] or
//!   [`runtime::Builder::stack_size`].
//! - **Read/write timeouts** return `ErrorKind::TimedOut` (std on Unix says
//!   `WouldBlock`; code written for std that checks both keeps working).
//! - **valgrind**: on x86_64 fiber stacks are registered with valgrind's
//!   client requests (a few register instructions per fiber natively), so
//!   memcheck runs without "client switching stacks?" warnings
//!   (`examples/valgrind_switch.rs`). On other architectures run it with
//!   `--max-stackframe=` above the largest distance between two stacks
//!   (a slab of 1024 default stacks spans ~260 MiB).
//! - Linux only.
//!
//! # How it works
//!
//! - **Fibers** are corosensei coroutines on stacks carved from large slabs
//!   (one `mmap` for up to 1024 stacks), each with a guard page installed by
//!   `madvise(MADV_GUARD_INSTALL)` — no split mapping, so a million stacks
//!   cost a few dozen memory mappings — or `mprotect` on kernels before 6.13.
//!   A SIGSEGV handler on an alternate stack turns a guard-page fault into the
//!   overflow report. Free stacks are cached per worker; a stack that grew
//!   deep gives its pages back before reuse, and an idle worker gives back
//!   the pages of cached stacks nobody used lately (and unmaps wholly free
//!   slabs), so memory returns a few seconds after a burst.
//! - **Parking** is one protocol for everything that waits: the fiber
//!   switches to its worker, and only then does the worker commit "parked";
//!   a wake that came in between is kept as a token and the fiber runs again.
//!   So no wake is lost and no fiber is resumed twice for one wake (checked
//!   with the loom model checker). Plain threads use the same wait lists with
//!   `thread::park`.
//! - **Scheduling.** A fiber that has started runs only on the worker that
//!   first ran it — the reason `spawn` can be safe with thread-locals around —
//!   while fibers not yet started are stolen by idle workers. Each worker has
//!   a private run queue, an inbox for wakes from other threads, and a
//!   stealable deque of fresh fibers; a global injector takes spawns from
//!   outside. Idle workers spin, then sleep: ~1 µs when their work comes from
//!   their own sockets, longer (sized from the wake latency they measured,
//!   at most 64 µs) when it comes from other workers, so two fibers that
//!   hand messages across workers do not pay a sleep and a wake each. A new
//!   fiber wakes an idle worker only when nobody is already looking for
//!   work, and a spawner's lone new fiber is left to its own worker for a
//!   moment: the spawner is usually about to wait for it.
//! - **IO.** Each worker owns an epoll instance (edge-triggered). A socket
//!   registers with the poller of the worker whose fiber first waits on it,
//!   so its events wake that worker's fibers without crossing threads; an
//!   idle worker blocks in its own `epoll_wait` until its nearest timer, and
//!   other threads wake it through its poller's waker. An IO call tries the
//!   syscall first and parks only on `WouldBlock`. Timers live in a
//!   per-worker heap; a timeout re-armed later on every read (a read timeout)
//!   reuses the fiber's entry, re-filed once when it comes due, so it costs
//!   one heap push per timeout period, not one per read.
//!
//! In the repository, `docs/ARCHITECTURE.md` goes into detail (the layers,
//! what each file does, the protocols), and `docs/RELIABILITY.md` lists
//! every failure mode threadlet guards against with the tests that prove
//! each.

// The layers, lowest first: a file uses only files of the layers before it
// (docs/ARCHITECTURE.md has the per-file table).
// Leaves: diagnostics output, valgrind client requests, fiber stacks.
mod diag;
mod stack;
mod valgrind;

// The fiber core interleaves file by file: park/state.rs and park/reason.rs,
// then fiber/header.rs, then context.rs (per-thread state), then park.rs and
// park/completion.rs, then fiber.rs and the rest of fiber/.
mod context;

mod park;

pub mod fiber;

// Built on parking: block_on, the sync primitives, sleep/timeout and timers,
// the blocking pool and what uses it, signals, std::thread's names.
mod blocking;
pub mod fs;
mod future;
pub mod signal;
pub mod sync;
pub mod thread;
pub mod time;

// The IO driver (per-worker pollers), then the scheduler (workers, monitor).
mod reactor;

mod scheduler;

// Fiber-aware IO over the reactor, then the syscall hooks over both.
pub mod io;
pub mod net;

#[cfg(all(feature = "hook", target_os = "linux", target_env = "gnu"))]
#[allow(unreachable_pub)] // the interposed libc symbols are `pub extern "C"`: public to the linker
mod hook;

// The runtime: builder, handle, stats, dump. (net/serve.rs is the one file
// above it: it spawns handlers through a runtime handle.)
pub mod runtime;

#[doc = include_str!("../docs/migration.md")]
pub mod migration {}

#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use blocking::{blocking_threads, set_blocking_idle_timeout};
pub use blocking::{set_max_blocking_threads, unblock};
pub use fiber::{spawn, yield_now, JoinHandle};
pub use future::block_on;
pub use runtime::{run, Runtime};
