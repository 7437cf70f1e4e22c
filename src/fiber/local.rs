//! `fiber_local!`: values that are per fiber, as `thread_local!` values are
//! per thread. Fibers of one worker share that worker's thread-locals; these
//! are each fiber's own. On a plain thread the same key gives a per-thread
//! value, so code using it works outside fibers too.
//!
//! Storage: a table of boxed values indexed by a key number that each
//! `LocalKey` draws once from a global counter. Boxes never move while their
//! fiber lives, so `with` can hand out a reference and release the table
//! before calling user code (which may itself use other fiber-locals). The
//! table is emptied on the fiber, at its end, so destructors run there.

use std::any::Any;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::header::Locals;
use crate::context;

thread_local! {
    static THREAD_LOCALS: UnsafeCell<Locals> = UnsafeCell::new(Locals::default());
}

/// A key for a fiber-local value, created by [`fiber_local!`](crate::fiber_local).
pub struct LocalKey<T: 'static> {
    key: AtomicUsize,
    init: fn() -> T,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            key: AtomicUsize::new(0),
            init,
        }
    }

    fn index(&'static self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let key = self.key.load(Ordering::Acquire);
        if key != 0 {
            return key - 1;
        }
        let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .key
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => fresh - 1,
            Err(won) => won - 1,
        }
    }

    /// Calls `f` with this fiber's value, creating it on first use. On a plain
    /// thread the value is per thread.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        let index = self.index();
        let table = table_ptr();
        // SAFETY: `table` is the caller's own table (its fiber's, or its
        // thread's), touched only by the caller; each borrow below ends before
        // user code (init or f) runs.
        let existing = unsafe { slot(table, index) };
        let ptr = match existing {
            Some(ptr) => ptr,
            None => {
                let value: Box<dyn Any> = Box::new((self.init)());
                // SAFETY: as above; `init` has returned, no borrow is live.
                let entries = unsafe { &mut (*table).0 };
                if entries.len() <= index {
                    entries.resize_with(index + 1, || None);
                }
                // If `init` itself initialised this key (recursion), keep the
                // first value, like thread_local!'s lazy init would panic;
                // we prefer the earlier one and drop ours.
                entries[index].get_or_insert(value).as_ref() as *const dyn Any
            }
        };
        // SAFETY: the box lives until the table is cleared at fiber (or
        // thread) end, which cannot happen during this call.
        let value = unsafe { &*ptr };
        f(value.downcast_ref::<T>().expect("fiber_local key type"))
    }
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// The caller's table: its fiber's, or its thread's.
fn table_ptr() -> *mut Locals {
    let fiber = context::with_current_fiber(|f| f.map(|f| f.locals_ptr()));
    fiber.unwrap_or_else(|| THREAD_LOCALS.with(|t| t.get()))
}

/// # Safety
/// `table` must be the caller's own table and not borrowed elsewhere.
unsafe fn slot(table: *mut Locals, index: usize) -> Option<*const dyn Any> {
    // SAFETY: per the contract.
    let entries = unsafe { &(*table).0 };
    entries
        .get(index)
        .and_then(|e| e.as_ref())
        .map(|b| b.as_ref() as *const dyn Any)
}

/// Declares fiber-local statics, like `std::thread_local!`:
///
/// ```
/// use std::cell::Cell;
/// threadlet::fiber_local! {
///     static REQUESTS: Cell<u32> = Cell::new(0);
/// }
/// threadlet::run(|| {
///     REQUESTS.with(|r| r.set(r.get() + 1));
///     let other = threadlet::spawn(|| REQUESTS.with(|r| r.get()));
///     assert_eq!(other.join().unwrap(), 0); // each fiber has its own
///     assert_eq!(REQUESTS.with(|r| r.get()), 1);
/// });
/// ```
#[macro_export]
macro_rules! fiber_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::fiber::LocalKey<$t> = $crate::fiber::LocalKey::new({
            fn __threadlet_init() -> $t { $init }
            __threadlet_init
        });
        $crate::fiber_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $crate::fiber_local!($(#[$attr])* $vis static $name: $t = $init;);
    };
}
