//! `fiber::Builder`: names and sizes a new fiber, allocates its stack and
//! header, and hands it to its runtime (or, when the runtime has shut down,
//! completes its join with `Cancelled` at once).

use std::cell::{Cell, UnsafeCell};
use std::io;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use super::{BodyCell, Executor, Fiber, FiberId, Header, JoinHandle, Task};
use crate::context;
use crate::park::Completion;

/// Configures a new fiber, like `std::thread::Builder`.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the fiber (shown in panics, stack-overflow reports and `dump`).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the stack size in bytes. Rounded up to whole pages; sizes below
    /// 16 KiB are raised to 16 KiB; sizes above 1 GiB make `spawn` fail.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Spawns the fiber on the current runtime.
    ///
    /// # Errors
    /// An absurd stack size (`InvalidInput`), or no memory mapping for the
    /// stack (`OutOfMemory`, naming `vm.max_map_count`).
    ///
    /// # Panics
    /// When called outside a threadlet runtime (see [`crate::run`]).
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let exec = current_executor("fiber::Builder::spawn");
        self.spawn_on(exec, f)
    }

    /// Like [`Builder::spawn`], but the fiber stays on the current worker
    /// thread from birth, so `f` need not be `Send` (like tokio's `LocalSet`).
    ///
    /// # Panics
    /// When not called from a fiber.
    pub fn spawn_local<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let exec = current_executor("fiber::spawn_local");
        // A pinned fiber is created, run and finished on this worker thread
        // only, so neither `F` nor `T` ever crosses a thread; the JoinHandle
        // is `!Send` when `T` is, which keeps it on this thread too.
        self.spawn_inner(exec, true, f)
    }

    /// Spawns a `Send` fiber onto `exec` (used by `spawn`, `Runtime::spawn`,
    /// `Handle::spawn_with` and scopes).
    pub(crate) fn spawn_on<F, T>(self, exec: Arc<dyn Executor>, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn_inner(exec, false, f)
    }

    fn spawn_inner<F, T>(
        self,
        exec: Arc<dyn Executor>,
        pinned: bool,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let stack = exec.alloc_stack(self.stack_size)?;
        let name = self.name.map(String::into_boxed_str);
        let task = Arc::new(Task {
            packet: Completion::new(),
            body: BodyCell {
                taken: Cell::new(false),
                f: UnsafeCell::new(ManuallyDrop::new(f)),
            },
        });
        let header = Header::new(FiberId::next(), name, exec.clone(), stack, task.clone());
        if !exec.submit(header.clone(), pinned) {
            // The runtime has shut down: nothing will ever run this fiber.
            // SAFETY: never queued, so this thread is its only owner.
            drop(unsafe { header.take_stack() });
            header.request_cancel_quiet();
            header.set_finished();
            task.refuse();
        }
        Ok(JoinHandle {
            fiber: Fiber { inner: header },
            task,
        })
    }
}

/// The executor of the calling fiber; panics with the fix when there is none.
pub(crate) fn current_executor(what: &str) -> Arc<dyn Executor> {
    context::with_current_fiber(|f| f.map(|f| f.exec().clone())).unwrap_or_else(|| {
        panic!(
            "{what} must be called from a fiber of a threadlet runtime: start one with \
             `threadlet::run(|| ...)` (or `Runtime::block_on`) and spawn from inside it, \
             or use `Runtime::spawn` / `Handle::spawn` from outside"
        )
    })
}
