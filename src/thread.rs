//! `std::thread` for fibers: the same names and signatures, so that
//! `use std::thread;` becomes `use threadlet::thread;` and the code below it
//! stays as it is — `thread::spawn`, `thread::sleep`, `thread::Builder`,
//! `thread::scope`, `thread::current().name()`, `handle.thread().unpark()`.
//!
//! ```
//! use threadlet::thread;
//! use std::time::Duration;
//!
//! threadlet::run(|| {
//!     let handle = thread::Builder::new()
//!         .name("worker".into())
//!         .spawn(|| {
//!             thread::sleep(Duration::from_millis(10)); // parks the fiber
//!             thread::current().name().map(str::to_owned)
//!         })
//!         .unwrap();
//!     assert_eq!(handle.thread().name(), Some("worker"));
//!     assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
//!
//!     let mut counts = [0; 4];
//!     thread::scope(|s| {
//!         for c in &mut counts {
//!             s.spawn(move || *c += 1);
//!         }
//!     });
//!     assert_eq!(counts, [1; 4]);
//! });
//! ```
//!
//! Each item is the fiber API under its std name: [`Thread`] is
//! [`fiber::Fiber`](crate::fiber::Fiber), [`ThreadId`] is
//! [`fiber::FiberId`](crate::fiber::FiberId), [`JoinHandle`] and
//! [`Builder`] are the fiber ones (with std's `thread()` and `spawn_scoped`
//! added here). What differs from std:
//! - [`spawn`], [`scope`] and [`Builder::spawn`] need a runtime (call them on
//!   a fiber, inside [`crate::run`]); [`current`] needs a fiber. [`sleep`],
//!   [`park`], [`park_timeout`] and [`yield_now`] also work on plain threads,
//!   where they are std's.
//! - `JoinHandle::join` of a cancelled fiber is `Err` with a
//!   [`Cancelled`](crate::fiber::Cancelled) payload.
//! - `thread_local!` still means per worker thread (see the crate docs);
//!   [`LocalKey`] and [`AccessError`] are std's, for code that names them.

use std::io;

pub use crate::fiber::{
    current, park, park_timeout, scope, sleep, spawn, yield_now, Builder, Fiber as Thread,
    FiberId as ThreadId, JoinHandle, Scope, ScopedJoinHandle,
};
pub use std::thread::{available_parallelism, panicking, AccessError, LocalKey, Result};

impl<T> JoinHandle<T> {
    /// The fiber's handle, like `std::thread::JoinHandle::thread`.
    pub fn thread(&self) -> &Thread {
        self.fiber()
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// The fiber's handle, like `std::thread::ScopedJoinHandle::thread`.
    pub fn thread(&self) -> &Thread {
        self.fiber()
    }
}

impl Builder {
    /// Spawns a scoped fiber with this configuration, like
    /// `std::thread::Builder::spawn_scoped`.
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope Scope<'scope, 'env>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        scope.spawn_with(self, f)
    }
}
