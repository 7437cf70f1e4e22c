//! `threadlet::thread` mirrors `std::thread`; `threadlet::sync` re-exports
//! what it does not reimplement; `RwLockWriteGuard::downgrade`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use threadlet::sync::{Arc, LazyLock, Once, RwLock, RwLockWriteGuard, Weak};
use threadlet::thread;

fn on_two_workers<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    threadlet::Runtime::builder()
        .workers(2)
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn builder_names_and_sizes_and_handles_know_their_thread() {
    on_two_workers(|| {
        let h = thread::Builder::new()
            .name("named".into())
            .stack_size(64 << 10)
            .spawn(|| {
                (
                    thread::current().id(),
                    thread::current().name().map(String::from),
                )
            })
            .unwrap();
        let (id, name) = h.join().unwrap();
        assert_eq!(name.as_deref(), Some("named"));
        let h2 = thread::spawn(|| thread::current().id());
        let id2_outside: thread::ThreadId = h2.thread().id();
        assert_eq!(h2.join().unwrap(), id2_outside);
        assert_ne!(id, id2_outside);
    });
}

#[test]
fn is_finished_park_unpark_and_park_timeout() {
    on_two_workers(|| {
        let parked = thread::spawn(|| {
            thread::park();
            7
        });
        let t: thread::Thread = parked.thread().clone();
        t.unpark();
        assert_eq!(parked.join().unwrap(), 7);

        let start = Instant::now();
        thread::park_timeout(Duration::from_millis(20));
        assert!(start.elapsed() >= Duration::from_millis(15) || thread::panicking());

        let h = thread::spawn(thread::yield_now);
        while !h.is_finished() {
            thread::sleep(Duration::from_millis(1));
        }
        let r: thread::Result<()> = h.join();
        assert!(r.is_ok());
        assert!(thread::available_parallelism().unwrap().get() >= 1);
        assert!(!thread::panicking());
    });
}

#[test]
fn scope_and_spawn_scoped_borrow() {
    on_two_workers(|| {
        let total = AtomicUsize::new(0);
        let data = vec![1, 2, 3, 4];
        thread::scope(|s| {
            for x in &data {
                s.spawn(|| total.fetch_add(*x, Ordering::SeqCst));
            }
            let h = thread::Builder::new()
                .name("scoped".into())
                .spawn_scoped(s, || data.len())
                .unwrap();
            assert_eq!(h.thread().name(), Some("scoped"));
            assert_eq!(h.join().unwrap(), 4);
        });
        assert_eq!(total.load(Ordering::SeqCst), 10);
    });
}

#[test]
fn sync_re_exports_are_std_items() {
    static INIT: Once = Once::new();
    static LAZY: LazyLock<usize> = LazyLock::new(|| 41 + 1);
    let a: Arc<u8> = Arc::new(1);
    let w: Weak<u8> = Arc::downgrade(&a);
    // The very same types as std's: they interoperate with std APIs.
    let _: std::sync::Arc<u8> = a.clone();
    INIT.call_once(|| {});
    assert!(INIT.is_completed());
    assert_eq!(*LAZY, 42);
    assert_eq!(w.upgrade().as_deref(), Some(&1));
    let n = threadlet::sync::atomic::AtomicUsize::new(3);
    assert_eq!(n.load(threadlet::sync::atomic::Ordering::Relaxed), 3);
}

#[test]
fn downgrade_keeps_writers_out_and_lets_waiting_readers_in() {
    on_two_workers(|| {
        let lock = Arc::new(RwLock::new(0));
        let mut w = lock.write().unwrap();
        *w = 5;
        // A reader and then a writer queue up behind the write lock (in that
        // order: the queue is FIFO, and a writer first would keep the reader
        // out after the downgrade too).
        let l = lock.clone();
        let reader = thread::spawn(move || *l.read().unwrap());
        while !parked_on("rwlock read") {
            thread::yield_now();
        }
        let l = lock.clone();
        let writer = thread::spawn(move || {
            *l.write().unwrap() = 9;
        });
        while !parked_on("rwlock write") {
            thread::yield_now();
        }
        let r = RwLockWriteGuard::downgrade(w);
        // The waiting reader gets in while we still read; the writer waits.
        assert_eq!(reader.join().unwrap(), 5);
        assert!(!writer.is_finished());
        assert_eq!(*r, 5);
        drop(r);
        writer.join().unwrap();
        assert_eq!(*lock.read().unwrap(), 9);
    });
}

/// Is some fiber of this runtime parked on `what`?
fn parked_on(what: &str) -> bool {
    threadlet::runtime::dump()
        .iter()
        .any(|f| f.state.contains(what))
}
