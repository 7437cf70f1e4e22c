//! `fiber::scope`: fibers that may borrow from the caller's stack, like
//! `std::thread::scope`.
//!
//! Soundness rests on one rule: `scope` does not return (or unwind) until
//! every fiber spawned in it has finished and dropped everything that borrows
//! from the scope. Each scoped fiber stores its result in a slot it shares
//! with its handle, drops its own reference to the slot, and only then
//! decrements `running`; `scope` waits for `running == 0` with a wait that
//! cancellation cannot cut short.
//!
//! Cancellation (RELIABILITY row 23): when the fiber that runs `scope` is
//! cancelled while it waits for its scoped fibers, it cancels each of them
//! (they unwind at their next park point) and keeps waiting until they have
//! all finished — it cannot leave earlier, since they borrow from its stack.
//! It then unwinds with `Cancelled`.

use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use super::{current_executor, lock, Builder, Executor, Fiber, FiberRef, JoinHandle};
use crate::park::{self, Completion, WaitReason};

struct ScopeData {
    running: AtomicUsize,
    unjoined_panic: AtomicBool,
    /// Set each time `running` drops to zero.
    all_done: Completion<()>,
    /// The scoped fibers that may still run (finished ones are pruned as
    /// more are spawned), to cancel them when the scope's fiber is cancelled;
    /// `None` once it was: fibers spawned after that (by scoped fibers) are
    /// cancelled at once.
    children: Mutex<Option<Vec<FiberRef>>>,
}

impl ScopeData {
    fn finished_one(&self) {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.all_done.set(());
        }
    }

    fn add_child(&self, fiber: &FiberRef) {
        let mut children = lock(&self.children);
        match children.as_mut() {
            Some(list) => {
                if list.len() == list.capacity() {
                    list.retain(|f| !f.is_finished());
                }
                list.push(fiber.clone());
            }
            None => {
                drop(children);
                fiber.request_cancel();
            }
        }
    }

    /// Waits until every scoped fiber has finished. Returns `true` if the
    /// calling fiber was cancelled meanwhile (its scoped fibers were then
    /// cancelled too, and still waited for).
    fn wait_all(&self) -> bool {
        let mut cancelled = false;
        // A value left by an earlier drop to zero is stale if more fibers
        // were spawned since: the loop re-checks the count after each wake.
        while self.running.load(Ordering::Acquire) != 0 {
            if cancelled {
                let _ = self.all_done.wait_uncancellable(None, WaitReason::Scope);
            } else if self.all_done.wait(WaitReason::Scope).is_err() {
                cancelled = true;
                let children = lock(&self.children).take().unwrap_or_default();
                for child in children {
                    child.request_cancel();
                }
            }
        }
        cancelled
    }
}

/// A scope to spawn borrowing fibers in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    exec: Arc<dyn Executor>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to join a scoped fiber.
pub struct ScopedJoinHandle<'scope, T> {
    handle: JoinHandle<()>,
    result: Arc<ResultSlot<T>>,
    scope: PhantomData<&'scope ()>,
}

struct ResultSlot<T> {
    value: Mutex<Option<thread::Result<T>>>,
    data: Arc<ScopeData>,
}

impl<T> Drop for ResultSlot<T> {
    fn drop(&mut self) {
        let value = self.value.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(value, Some(Err(_))) {
            self.data.unjoined_panic.store(true, Ordering::Relaxed);
        }
    }
}

/// Creates a scope in which fibers may borrow non-`'static` data. All fibers
/// spawned in it are joined before `scope` returns; if one of them panicked
/// and was not joined, `scope` panics after they have all finished.
///
/// # Panics
/// When called outside a threadlet runtime.
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let scope = Scope {
        data: Arc::new(ScopeData {
            running: AtomicUsize::new(0),
            unjoined_panic: AtomicBool::new(false),
            all_done: Completion::new(),
            children: Mutex::new(Some(Vec::new())),
        }),
        exec: current_executor("fiber::scope"),
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    if scope.data.wait_all() && result.is_ok() {
        park::unwind_cancelled();
    }
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.data.unjoined_panic.load(Ordering::Relaxed) => {
            panic!("a scoped fiber panicked")
        }
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a fiber that may borrow from outside the scope.
    ///
    /// # Panics
    /// If no stack can be mapped for it.
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        self.spawn_with(Builder::new(), f)
            .unwrap_or_else(|e| panic!("fiber::Scope::spawn failed: {e}"))
    }

    /// Spawns a scoped fiber configured by `builder`.
    ///
    /// # Errors
    /// As [`Builder::spawn`].
    pub fn spawn_with<F, T>(
        &'scope self,
        builder: Builder,
        f: F,
    ) -> std::io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let result = Arc::new(ResultSlot {
            value: Mutex::new(None),
            data: self.data.clone(),
        });
        // Counted before the body exists: dropping the body un-counts it.
        self.data.running.fetch_add(1, Ordering::AcqRel);
        let body = ScopedBody {
            f,
            slot: result.clone(),
            _finish: Finish(self.data.clone()),
        };
        let body: Box<dyn FnOnce() + Send + 'scope> = Box::new(move || body.run());
        // SAFETY: `scope` waits until every body has run to its end (the
        // `Finish` drops after everything in the body that borrows),
        // so nothing borrowed for 'scope is used after 'scope ends.
        let body: Box<dyn FnOnce() + Send + 'static> = unsafe { std::mem::transmute(body) };
        match builder.spawn_on(self.exec.clone(), body) {
            Ok(handle) => {
                self.data.add_child(&handle.fiber().inner);
                Ok(ScopedJoinHandle {
                    handle,
                    result,
                    scope: PhantomData,
                })
            }
            // The unrun body was dropped, and with it its `Finish`.
            Err(e) => Err(e),
        }
    }
}

/// What a scoped fiber runs. Fields drop in declaration order, so whether the
/// body runs or is dropped unrun (cancelled before it started), everything
/// that may borrow from the scope is gone before `Finish` tells the scope.
struct ScopedBody<F, T> {
    f: F,
    slot: Arc<ResultSlot<T>>,
    _finish: Finish,
}

impl<F: FnOnce() -> T, T> ScopedBody<F, T> {
    fn run(self) {
        let ScopedBody { f, slot, _finish } = self;
        let value = panic::catch_unwind(AssertUnwindSafe(f));
        *lock(&slot.value) = Some(value);
        drop(slot);
        drop(_finish);
    }
}

/// Tells the scope that one fiber is done, when dropped.
struct Finish(Arc<ScopeData>);

impl Drop for Finish {
    fn drop(&mut self) {
        self.0.finished_one();
    }
}

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the fiber; `Err` holds its panic payload.
    pub fn join(self) -> thread::Result<T> {
        let outer = self.handle.join();
        let inner = lock(&self.result.value).take();
        match (inner, outer) {
            (Some(value), _) => value,
            (None, Err(payload)) => Err(payload),
            (None, Ok(())) => unreachable!("scoped fiber finished without a result"),
        }
    }

    /// The fiber's handle.
    pub fn fiber(&self) -> &Fiber {
        self.handle.fiber()
    }

    /// Has the fiber finished?
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field("running", &self.data.running.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle").finish_non_exhaustive()
    }
}
