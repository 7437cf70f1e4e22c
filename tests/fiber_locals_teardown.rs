//! Fiber-local values never outlive their fiber's thread (issue 9, item 7):
//! every value, including ones re-created by destructors and ones behind a
//! destructor that panics, is dropped on the fiber before `join` returns.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use threadlet::fiber::{self, FiberId};

/// Fiber that ran each drop of `Again`, in order.
static AGAIN_DROPS: Mutex<Vec<Option<FiberId>>> = Mutex::new(Vec::new());
/// How many more times `Again`'s destructor re-creates its key.
static AGAIN_LEFT: AtomicUsize = AtomicUsize::new(0);

struct Again;
impl Drop for Again {
    fn drop(&mut self) {
        AGAIN_DROPS
            .lock()
            .unwrap()
            .push(fiber::try_current().map(|f| f.id()));
        if AGAIN_LEFT.fetch_sub(1, Ordering::SeqCst) > 1 {
            // Touching the key re-creates the value: another round.
            AGAIN.with(|_| ());
        }
    }
}

threadlet::fiber_local! {
    static AGAIN: Again = Again;
}

#[test]
fn values_recreated_by_destructors_are_all_dropped_on_the_fiber() {
    const ROUNDS: usize = 40; // well past the 8 rounds std-like teardown does
    AGAIN_LEFT.store(ROUNDS, Ordering::SeqCst);
    let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
    let h = rt.spawn(|| {
        AGAIN.with(|_| ());
        fiber::current().id()
    });
    let id = h.join().unwrap();
    let drops = AGAIN_DROPS.lock().unwrap().clone();
    assert_eq!(
        drops.len(),
        ROUNDS,
        "only {} of {ROUNDS} values were dropped before join returned",
        drops.len()
    );
    assert!(
        drops.iter().all(|d| *d == Some(id)),
        "a value was dropped off its fiber: {drops:?}"
    );
    drop(rt);
}

/// Fiber that dropped `Later`.
static LATER_DROPPED_ON: Mutex<Option<Option<FiberId>>> = Mutex::new(None);

struct Later;
impl Drop for Later {
    fn drop(&mut self) {
        *LATER_DROPPED_ON.lock().unwrap() = Some(fiber::try_current().map(|f| f.id()));
    }
}

struct Boom;
impl Drop for Boom {
    fn drop(&mut self) {
        LATER.with(|_| ());
        panic!("fiber-local destructor panics on purpose");
    }
}

threadlet::fiber_local! {
    static BOOM: Boom = Boom;
    static LATER: Later = Later;
    static COUNT: Cell<u32> = Cell::new(0);
}

#[test]
fn a_panicking_destructor_does_not_stop_the_others() {
    let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
    let h = rt.spawn(|| {
        BOOM.with(|_| ());
        COUNT.with(|c| c.set(c.get() + 1));
        fiber::current().id()
    });
    let id = h
        .join()
        .expect("a local's destructor panic is not the fiber's result");
    assert_eq!(
        *LATER_DROPPED_ON.lock().unwrap(),
        Some(Some(id)),
        "the value created by the panicking destructor was not dropped on its fiber"
    );
    drop(rt);
}

static FOREVER_DROPS: AtomicUsize = AtomicUsize::new(0);

struct Forever;
impl Drop for Forever {
    fn drop(&mut self) {
        FOREVER_DROPS.fetch_add(1, Ordering::SeqCst);
        FOREVER.with(|_| ());
    }
}

threadlet::fiber_local! {
    static FOREVER: Forever = Forever;
}

#[test]
fn endless_recreation_is_leaked_not_dropped_elsewhere() {
    let rt = threadlet::Runtime::builder().workers(1).build().unwrap();
    rt.spawn(|| FOREVER.with(|_| ())).join().unwrap();
    let at_join = FOREVER_DROPS.load(Ordering::SeqCst);
    assert!(at_join >= 8, "teardown gave up after {at_join} rounds");
    drop(rt);
    // The last value was leaked: nothing dropped it after the fiber ended.
    assert_eq!(FOREVER_DROPS.load(Ordering::SeqCst), at_join);
}
